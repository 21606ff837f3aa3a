//! CHECK: a real check, where Calico's is a no-op. Given the `prevResult` of the ADD, it
//! verifies that the pod end exists with its MAC, is up and holds its addresses and routes; that
//! the host end is `cali…` with Calico's MAC, up, with proxy ARP, and is the pod end's veth
//! peer; that the host routes to the pod exist through it; that the IPAM allocation of the
//! handle holds exactly the result's addresses; and that the WorkloadEndpoint is this
//! container's. Each failure names the object and what is wrong.

use std::collections::BTreeSet;
use std::net::IpAddr;

use brindle_netlink::{Handle, Link, Route, TABLE_MAIN, mac_to_string, scope};
use ipnet::IpNet;

use crate::alloc::{Allocator, Request};
use crate::context::Context;
use crate::error::CniError;
use crate::identity::Identity;
use crate::result::CniResult;
use crate::wiring::{self, GATEWAY_V4, GATEWAY_V6, HOST_MAC};

fn fail(msg: impl Into<String>) -> CniError {
    CniError::internal(msg)
}

fn netlink(e: brindle_netlink::Error) -> CniError {
    CniError::internal(e.to_string())
}

pub fn check(ctx: &Context) -> Result<(), CniError> {
    ctx.conf.validate()?;
    let prev = ctx
        .conf
        .prev_result
        .as_ref()
        .ok_or_else(|| CniError::invalid_netconf("CHECK needs prevResult (the result of the ADD)"))?;
    let prev = CniResult::from_value(prev)?;
    let node = ctx.files.nodename(&ctx.conf)?;
    let id = Identity::new(&ctx.inv.args, &ctx.inv.container_id, &ctx.inv.ifname, &node);
    let netns = ctx.open_netns()?;
    let sandbox = ctx.inv.netns.as_ref().map(|p| p.display().to_string());
    let host_name = id.host_veth();

    let pod_if = prev
        .interface_index(&ctx.inv.ifname, sandbox.as_deref())
        .ok_or_else(|| {
            fail(format!(
                "prevResult has no interface {} in sandbox {}",
                ctx.inv.ifname,
                sandbox.clone().unwrap_or_default()
            ))
        })?;
    prev.interface_index(&host_name, None)
        .ok_or_else(|| fail(format!("prevResult has no host interface {host_name}")))?;
    let addrs: Vec<IpAddr> = prev
        .ips
        .iter()
        .filter(|ip| ip.interface == Some(pod_if))
        .map(|ip| ip.address.addr())
        .collect();
    if addrs.is_empty() {
        return Err(fail(format!(
            "prevResult has no address on interface {}",
            ctx.inv.ifname
        )));
    }

    let mut pod = Handle::open(&netns).map_err(netlink)?;
    let pod_link = check_pod(&mut pod, ctx, &prev.interfaces[pod_if].mac, &addrs, &prev)?;
    let mut host = Handle::new().map_err(netlink)?;
    check_host(&mut host, &host_name, &pod_link, &addrs)?;

    let ds = ctx.datastore()?;
    let req = Request {
        conf: &ctx.conf,
        stdin: &ctx.stdin,
        inv: &ctx.inv,
        id: &id,
    };
    Allocator::new(&ctx.conf, &ctx.inv, Some(ds.clone()))?.check(&req, &addrs)?;
    check_endpoint(
        &brindle_datastore::Client::new(ds.clone()),
        &id,
        &host_name,
        &addrs,
    )
}

fn require_veth(h: &mut Handle, name: &str, where_: &str) -> Result<Link, CniError> {
    let l = h
        .link_by_name(name)
        .map_err(netlink)?
        .ok_or_else(|| fail(format!("interface {name} does not exist in {where_}")))?;
    if l.kind.as_deref() != Some("veth") {
        return Err(fail(format!(
            "interface {name} in {where_} is a {} device, not a veth",
            l.kind.as_deref().unwrap_or("plain")
        )));
    }
    if !l.up {
        return Err(fail(format!("interface {name} in {where_} is down")));
    }
    Ok(l)
}

fn check_pod(
    pod: &mut Handle,
    ctx: &Context,
    mac: &Option<String>,
    addrs: &[IpAddr],
    prev: &CniResult,
) -> Result<Link, CniError> {
    let ifname = &ctx.inv.ifname;
    let where_ = format!("netns {}", pod.netns().path().display());
    let link = require_veth(pod, ifname, &where_)?;
    if let Some(want) = mac {
        let have = link.mac.map(|m| mac_to_string(&m)).unwrap_or_default();
        if !have.eq_ignore_ascii_case(want) {
            return Err(fail(format!(
                "interface {ifname} in {where_} has MAC {have}, prevResult says {want}"
            )));
        }
    }
    let present: BTreeSet<IpNet> = pod
        .addresses(Some(link.index))
        .map_err(netlink)?
        .into_iter()
        .map(|a| a.net)
        .collect();
    for a in addrs {
        let want = wiring::host_net(*a);
        if !present.contains(&want) {
            return Err(fail(format!(
                "interface {ifname} in {where_} lacks address {want}"
            )));
        }
    }
    let routes = pod.routes(Some(TABLE_MAIN)).map_err(netlink)?;
    let has = |dst: IpNet, gw: Option<IpAddr>| {
        routes
            .iter()
            .any(|r| r.dst == dst && r.oif == Some(link.index) && r.gateway == gw)
    };
    let mut wanted: Vec<(IpNet, Option<IpAddr>)> = Vec::new();
    if addrs.iter().any(IpAddr::is_ipv4) {
        wanted.push((wiring::host_net(IpAddr::V4(GATEWAY_V4)), None));
    }
    let dsts: Vec<IpNet> = if ctx.conf.ipam.is_brindle() || prev.routes.is_empty() {
        wiring::default_routes(addrs)
    } else {
        prev.routes.iter().map(|r| r.dst.trunc()).collect()
    };
    for d in dsts {
        let gw = match d {
            IpNet::V4(_) => IpAddr::V4(GATEWAY_V4),
            IpNet::V6(_) => IpAddr::V6(GATEWAY_V6),
        };
        wanted.push((d, Some(gw)));
    }
    for (dst, gw) in wanted {
        if !has(dst, gw) {
            let via = gw.map(|g| format!(" via {g}")).unwrap_or_default();
            return Err(fail(format!(
                "route {dst}{via} dev {ifname} is missing in {where_}"
            )));
        }
    }
    Ok(link)
}

fn check_host(host: &mut Handle, name: &str, pod_link: &Link, addrs: &[IpAddr]) -> Result<(), CniError> {
    let link = require_veth(host, name, "the host namespace")?;
    if link.mac != Some(HOST_MAC) {
        let have = link.mac.map(|m| mac_to_string(&m)).unwrap_or_default();
        return Err(fail(format!(
            "host interface {name} has MAC {have}, expected ee:ee:ee:ee:ee:ee"
        )));
    }
    if link.link_index != Some(pod_link.index) || pod_link.link_index != Some(link.index) {
        return Err(fail(format!(
            "host interface {name} is not the veth peer of {} in the pod",
            pod_link.name
        )));
    }
    let proxy_arp = host
        .sysctl(&format!("net/ipv4/conf/{name}/proxy_arp"))
        .map_err(netlink)?;
    if addrs.iter().any(IpAddr::is_ipv4) && proxy_arp != "1" {
        return Err(fail(format!(
            "host interface {name} has proxy_arp={proxy_arp}, expected 1"
        )));
    }
    let routes = host.routes(Some(TABLE_MAIN)).map_err(netlink)?;
    for a in addrs {
        let want = Route::dev(wiring::host_net(*a), link.index, scope::LINK);
        if !routes
            .iter()
            // The kernel gives IPv6 routes metric 1024 when none is set: compare destination,
            // table and device.
            .any(|r| r.dst == want.dst && r.table == want.table && r.oif == Some(link.index))
        {
            return Err(fail(format!(
                "host route {} dev {name} scope link is missing",
                want.dst
            )));
        }
    }
    Ok(())
}

fn check_endpoint(
    client: &brindle_datastore::Client,
    id: &Identity,
    host_name: &str,
    addrs: &[IpAddr],
) -> Result<(), CniError> {
    let key = crate::endpoint::key_of(id);
    let wep = crate::endpoint::get(client, id)?
        .ok_or_else(|| fail(format!("WorkloadEndpoint {key} does not exist")))?;
    if wep.spec.container_id != id.container_id {
        return Err(fail(format!(
            "WorkloadEndpoint {key} belongs to container {}, not {}",
            wep.spec.container_id, id.container_id
        )));
    }
    if wep.spec.interface_name != host_name {
        return Err(fail(format!(
            "WorkloadEndpoint {key} names interface {}, expected {host_name}",
            wep.spec.interface_name
        )));
    }
    let have: BTreeSet<String> = wep.spec.ip_networks.iter().cloned().collect();
    let want: BTreeSet<String> = addrs.iter().map(|a| wiring::host_net(*a).to_string()).collect();
    if have != want {
        return Err(fail(format!(
            "WorkloadEndpoint {key} has ipNetworks {:?}, expected {:?}",
            have, want
        )));
    }
    Ok(())
}
