//! The pod's network, over netlink (Calico's `DoNetworking`,
//! `cni-plugin/pkg/dataplane/linux/dataplane_linux.go`): a veth pair whose pod end is created
//! directly in the pod's namespace (moving it afterwards would cost an RCU barrier per pod:
//! projectcalico/calico#7705, aws/amazon-vpc-cni-k8s#3764), the host end `cali…` with MAC
//! `ee:ee:ee:ee:ee:ee`, proxy ARP and `proxy_delay=0`, the pod end with `/32` addresses and routes
//! through the link-local gateway `169.254.1.1`, and `<ip>/32 dev cali… scope link` on the host.
//!
//! Each step is a function so ADD can roll back exactly what was done: deleting the host end
//! removes the pair, the pod's addresses and routes, and the host routes through it.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use brindle_netlink::{Handle, Mac, NetnsFd, Route, VethSpec, mac_to_string, scope};
use ipnet::IpNet;

use crate::error::CniError;

/// The host end's MAC (Calico's `DoNetworking`): the pod ARPs for 169.254.1.1 and proxy ARP
/// answers with this address; IPv6 link-local becomes `fe80::ecee:eeff:feee:eeee`.
pub const HOST_MAC: Mac = [0xee; 6];
/// The pod's IPv4 gateway, never assigned anywhere (answered by proxy ARP).
pub const GATEWAY_V4: Ipv4Addr = Ipv4Addr::new(169, 254, 1, 1);
/// The pod's IPv6 gateway: the host end's link-local address.
pub const GATEWAY_V6: Ipv6Addr = Ipv6Addr::new(0xfe80, 0, 0, 0, 0xecee, 0xeeff, 0xfeee, 0xeeee);

fn netlink(e: impl std::fmt::Display) -> CniError {
    CniError::internal(e.to_string())
}

/// A created veth pair.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Veth {
    pub host_name: String,
    pub host_index: u32,
    pub pod_name: String,
    pub pod_index: u32,
    pub pod_mac: Mac,
    pub mtu: u32,
}

impl Veth {
    pub fn pod_mac_string(&self) -> String {
        mac_to_string(&self.pod_mac)
    }
}

/// `addr/32` or `addr/128`.
pub fn host_net(addr: IpAddr) -> IpNet {
    IpNet::new(addr, if addr.is_ipv4() { 32 } else { 128 }).expect("full-length prefix")
}

/// Step `veth`: creates the pair with the pod end born in the pod's namespace. A host end of
/// the same name left by a previous sandbox of the same pod is removed first, as Calico does
/// (found from the create's `EEXIST`, so the common path costs no extra request); an interface
/// `ifname` already in the pod is an error (CNI spec: ADD must not reuse it).
pub fn create_veth(
    host: &mut Handle,
    pod: &mut Handle,
    host_name: &str,
    ifname: &str,
    mtu: Option<u32>,
) -> Result<Veth, CniError> {
    let pod_ns = pod.netns().try_clone().map_err(netlink)?;
    let spec = VethSpec {
        name: host_name,
        mac: Some(HOST_MAC),
        mtu,
        up: true,
        peer_name: ifname,
        peer_mac: None,
        peer_mtu: mtu,
        peer_netns: Some(&pod_ns),
    };
    if let Err(e) = host.add_veth(&spec) {
        if !e.is_exists() {
            return Err(netlink(e));
        }
        if pod.link_by_name(ifname).map_err(netlink)?.is_some() {
            return Err(CniError::internal(format!(
                "interface {ifname} already exists in netns {}",
                pod_ns.path().display()
            )));
        }
        if host.delete_link_by_name(host_name).map_err(netlink)? {
            crate::log::info(&format!(
                "removed a stale host interface {host_name} before creating it again"
            ));
        }
        host.add_veth(&spec).map_err(netlink)?;
    }
    let host_link = host.require_link(host_name).map_err(netlink)?;
    let pod_link = pod.require_link(ifname).map_err(netlink)?;
    Ok(Veth {
        host_name: host_name.to_string(),
        host_index: host_link.index,
        pod_name: ifname.to_string(),
        pod_index: pod_link.index,
        pod_mac: pod_link.mac.unwrap_or_default(),
        mtu: pod_link.mtu,
    })
}

/// Step `host-config`: Calico's sysctls on the host end (proxy ARP, `proxy_delay=0`,
/// forwarding, `route_localnet`; IPv6: no DAD, proxy NDP, forwarding).
pub fn configure_host(host: &Handle, veth: &Veth, v6: bool) -> Result<(), CniError> {
    brindle_netlink::workload::configure_workload_iface(host, &veth.host_name)
        .map_err(|e| CniError::internal(format!("configure host interface {}: {e}", veth.host_name)))?;
    if v6 {
        let n = &veth.host_name;
        let keys = [
            (format!("net/ipv6/conf/{n}/accept_dad"), "0"),
            (format!("net/ipv6/conf/{n}/disable_ipv6"), "0"),
            (format!("net/ipv6/conf/{n}/proxy_ndp"), "1"),
            (format!("net/ipv6/conf/{n}/forwarding"), "1"),
        ];
        let pairs: Vec<(&str, &str)> = keys.iter().map(|(k, v)| (k.as_str(), *v)).collect();
        host.set_sysctls(&pairs).map_err(netlink)?;
    }
    Ok(())
}

/// The routes a pod gets when nothing else is asked for: a default route per family it has an
/// address of.
pub fn default_routes(addrs: &[IpAddr]) -> Vec<IpNet> {
    let mut out = Vec::new();
    if addrs.iter().any(IpAddr::is_ipv4) {
        out.push(IpNet::V4(Default::default()));
    }
    if addrs.iter().any(IpAddr::is_ipv6) {
        out.push(IpNet::V6(Default::default()));
    }
    out
}

/// Step `pod-config`: the pod end up, `169.254.1.1 dev eth0 scope link`, each of `routes` via
/// `169.254.1.1` (IPv6: via `fe80::ecee:eeff:feee:eeee`) — normally just `default` — the
/// addresses as `/32` (`/128`), and `ip_forward` per `allow_ip_forwarding`.
pub fn configure_pod(
    pod: &mut Handle,
    veth: &Veth,
    addrs: &[IpAddr],
    routes: &[IpNet],
    allow_ip_forwarding: bool,
) -> Result<(), CniError> {
    let has_v4 = addrs.iter().any(IpAddr::is_ipv4);
    let has_v6 = addrs.iter().any(IpAddr::is_ipv6);
    let fwd = if allow_ip_forwarding { "1" } else { "0" };
    let dad_key = format!("net/ipv6/conf/{}/accept_dad", veth.pod_name);
    let mut sysctls: Vec<(&str, &str)> = Vec::new();
    if has_v4 {
        sysctls.push(("net/ipv4/ip_forward", fwd));
    }
    if has_v6 {
        sysctls.extend([
            ("net/ipv6/conf/all/disable_ipv6", "0"),
            ("net/ipv6/conf/default/disable_ipv6", "0"),
            ("net/ipv6/conf/lo/disable_ipv6", "0"),
            (dad_key.as_str(), "0"),
            ("net/ipv6/conf/all/forwarding", fwd),
        ]);
    }
    pod.set_sysctls(&sysctls).map_err(netlink)?;
    let change = brindle_netlink::LinkChange {
        up: Some(true),
        ..Default::default()
    };
    pod.set_link(veth.pod_index, &veth.pod_name, &change)
        .map_err(netlink)?;
    if has_v4 {
        let gw = IpNet::V4(ipnet::Ipv4Net::new(GATEWAY_V4, 32).expect("/32"));
        pod.add_route(&Route::dev(gw, veth.pod_index, scope::LINK))
            .map_err(netlink)?;
    }
    for dst in routes {
        let via = match dst {
            IpNet::V4(_) if has_v4 => IpAddr::V4(GATEWAY_V4),
            IpNet::V6(_) if has_v6 => IpAddr::V6(GATEWAY_V6),
            // A route of a family the pod has no address of cannot be used.
            _ => continue,
        };
        pod.add_route(&Route::via(dst.trunc(), via, veth.pod_index))
            .map_err(netlink)?;
    }
    for a in addrs {
        pod.add_address(veth.pod_index, &veth.pod_name, host_net(*a))
            .map_err(netlink)?;
    }
    Ok(())
}

/// Step `host-route`: `<ip>/32 dev cali… scope link` (IPv6 `/128`; boot protocol, as Calico's
/// CNI). An identical route is accepted (the agent may have added it first); the same
/// destination on another interface is an error naming both.
pub fn add_host_routes(host: &mut Handle, veth: &Veth, addrs: &[IpAddr]) -> Result<(), CniError> {
    for a in addrs {
        brindle_netlink::workload::add_workload_route(host, *a, veth.host_index, &veth.host_name)
            .map_err(netlink)?;
    }
    Ok(())
}

/// Rollback: deletes the host end (and with it the pod end and the host routes through it).
/// Best effort: errors are reported to stderr, the original error is what the caller returns.
pub fn remove_veth(host: &mut Handle, host_name: &str) {
    if let Err(e) = host.delete_link_by_name(host_name) {
        crate::log::warn(&format!("rollback: delete {host_name}: {e}"));
    }
}

/// DEL: deletes `ifname` inside the pod's namespace. `Ok(false)` when the namespace or the
/// interface is already gone (success for DEL).
pub fn remove_pod_interface(netns_path: &std::path::Path, ifname: &str) -> Result<bool, CniError> {
    let ns = match NetnsFd::open(netns_path) {
        Ok(ns) => ns,
        Err(e) if e.is_not_found() => return Ok(false),
        Err(e) => return Err(netlink(e)),
    };
    let mut pod = Handle::open(&ns).map_err(netlink)?;
    pod.delete_link_by_name(ifname).map_err(netlink)
}
