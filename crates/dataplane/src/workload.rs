//! The workload side, shared by the CNI plugin and the agent: host-side sysctls of a `cali*`
//! interface (calico.md §4.3 step 6, Felix's `configureProcSysForInterface`, IPv4 and IPv6), the
//! pod `/32` route, node-wide forwarding, and Felix's permanent ARP entries for workloads (IPv4
//! only, as Felix: IPv6 neighbours are resolved by NDP).
//!
//! How a pod's IPv6 default route works (Calico's CNI plugin, `dataplane_linux.go`): the host
//! end has MAC `ee:ee:ee:ee:ee:ee`, so its link-local address is `fe80::ecee:eeff:feee:eeee`,
//! the pod's gateway; the host answers the pod's neighbour solicitations for it as for any
//! address of its own (no proxy entry is needed), and routes the pod's `/128` through the `cali`
//! interface. `proxy_ndp=1` is set as Felix sets it.

use std::collections::{HashMap, HashSet};
use std::net::Ipv4Addr;

use brindle_netlink::{Handle, Route, scope};
use ipnet::{IpNet, Ipv4Net};

use crate::error::Error;
use crate::state::Workload;

/// The IPv4 sysctls Calico sets on a workload's host interface. `rp_filter` copies the host's
/// `net.ipv4.conf.default.rp_filter` (Felix; `1` when unreadable).
pub fn workload_sysctls(iface: &str, default_rp_filter: &str) -> Vec<(String, String)> {
    vec![
        (format!("net/ipv4/conf/{iface}/route_localnet"), "1".into()),
        (format!("net/ipv4/neigh/{iface}/proxy_delay"), "0".into()),
        (format!("net/ipv4/conf/{iface}/proxy_arp"), "1".into()),
        (format!("net/ipv4/conf/{iface}/forwarding"), "1".into()),
        (
            format!("net/ipv4/conf/{iface}/rp_filter"),
            default_rp_filter.into(),
        ),
    ]
}

/// Applies [`workload_sysctls`] to `iface` in the handle's namespace, plus `accept_ra=0` when
/// IPv6 is enabled (failure there is not an error, as in Calico).
pub fn configure_workload_iface(h: &Handle, iface: &str) -> Result<(), Error> {
    configure_workload_iface_for(h, iface, false)
}

/// [`configure_workload_iface`] for an endpoint that may or may not send from other source
/// addresses (`allowSpoofedSourcePrefixes`): with spoofing allowed the kernel's own reverse
/// path filter is off on the interface (`rp_filter=0`, as Felix does), since it would drop
/// what the endpoint may send; the nftables RPF check, which skips exactly the allowed
/// prefixes, still drops every other spoofed source. The effective kernel value is the
/// maximum of `all` and the interface's.
pub fn configure_workload_iface_for(h: &Handle, iface: &str, allow_spoofing: bool) -> Result<(), Error> {
    let rp = if allow_spoofing {
        "0".to_string()
    } else {
        h.sysctl("net.ipv4.conf.default.rp_filter")
            .unwrap_or_else(|_| "1".into())
    };
    let pairs = workload_sysctls(iface, &rp);
    let refs: Vec<(&str, &str)> = pairs.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    h.set_sysctls(&refs)?;
    if let Err(e) = h.set_sysctls(&[(&format!("net/ipv6/conf/{iface}/accept_ra"), "0")]) {
        tracing::debug!(%e, "accept_ra not set (IPv6 disabled?)");
    }
    Ok(())
}

/// The IPv6 sysctls Felix's IPv6 endpoint manager sets on a workload's host interface
/// (`accept_ra=0` is set for both families by [`configure_workload_iface`]).
pub fn workload_sysctls_v6(iface: &str) -> Vec<(String, String)> {
    vec![
        (format!("net/ipv6/conf/{iface}/proxy_ndp"), "1".into()),
        (format!("net/ipv6/conf/{iface}/forwarding"), "1".into()),
    ]
}

/// Applies [`workload_sysctls_v6`] to `iface` (a node that routes IPv6).
pub fn configure_workload_iface_v6(h: &Handle, iface: &str) -> Result<(), Error> {
    let pairs = workload_sysctls_v6(iface);
    let refs: Vec<(&str, &str)> = pairs.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    h.set_sysctls(&refs)?;
    Ok(())
}

/// Node-wide: `net.ipv4.ip_forward=1`.
pub fn configure_node(h: &Handle) -> Result<(), Error> {
    h.set_sysctls(&[("net.ipv4.ip_forward", "1")])?;
    Ok(())
}

/// Node-wide for a node that routes IPv6: `net.ipv6.conf.all.forwarding=1` (Felix, when
/// IPv6 is enabled).
pub fn configure_node_v6(h: &Handle) -> Result<(), Error> {
    h.set_sysctls(&[("net.ipv6.conf.all.forwarding", "1")])?;
    Ok(())
}

/// Adds `<ip> dev <iface> scope link` (boot protocol, as Calico's CNI). An identical route is
/// accepted; one for the same IP on another interface is an error naming both (calico.md §4.3).
pub fn add_workload_route(h: &mut Handle, ip: Ipv4Addr, index: u32, iface: &str) -> Result<(), Error> {
    let dst = IpNet::V4(Ipv4Net::new(ip, 32).expect("/32"));
    let want = Route::dev(dst, index, scope::LINK);
    match h.add_route(&want) {
        Ok(()) => Ok(()),
        Err(e) if e.is_exists() => {
            let existing = h
                .routes(Some(brindle_netlink::TABLE_MAIN))?
                .into_iter()
                .find(|r| r.key() == want.key());
            match existing {
                Some(r) if r.oif == Some(index) => Ok(()),
                Some(r) => {
                    let other = r
                        .oif
                        .and_then(|i| h.link_by_index(i).ok().flatten())
                        .map(|l| l.name)
                        .unwrap_or_else(|| "another device".into());
                    Err(Error::Conflict(format!(
                        "route {ip}/32 already exists for an interface other than '{iface}': {other}"
                    )))
                }
                None => Err(e.into()),
            }
        }
        Err(e) => Err(e.into()),
    }
}

/// Permanent ARP entries `<pod ip> lladdr <pod mac> dev cali… nud permanent` for workloads with
/// a known MAC; permanent entries on workload interfaces for addresses no longer desired are
/// removed. Returns problems naming the entry (retried at the next resync).
pub fn reconcile_workload_arp(
    h: &mut Handle,
    workloads: &[Workload],
    links: &HashMap<String, u32>,
    iface_prefixes: &[String],
) -> Vec<String> {
    let mut errors = Vec::new();
    let existing = match h.neighbours(None) {
        Ok(n) => n,
        Err(e) => return vec![e.to_string()],
    };
    let mut want = HashSet::new();
    for w in workloads.iter().filter(|w| w.ip.is_ipv4()) {
        let (Some(mac), Some(&index)) = (w.mac, links.get(&w.iface)) else {
            continue;
        };
        want.insert((index, w.ip));
        let present = existing
            .iter()
            .any(|n| n.index == index && n.ip == Some(w.ip) && n.mac == Some(mac) && n.permanent);
        if !present && let Err(e) = h.replace_neighbour(index, &w.iface, w.ip, mac) {
            errors.push(e.to_string());
        }
    }
    let names: HashMap<u32, &String> = links.iter().map(|(n, i)| (*i, n)).collect();
    for n in existing.iter().filter(|n| n.permanent) {
        let Some(name) = names.get(&n.index) else { continue };
        if !iface_prefixes.iter().any(|p| name.starts_with(p.as_str())) {
            continue;
        }
        if let Some(ip) = n.ip
            && ip.is_ipv4()
            && !want.contains(&(n.index, ip))
            && let Err(e) = h.delete_neighbour(n.index, name, ip)
        {
            errors.push(e.to_string());
        }
    }
    errors
}

#[cfg(test)]
mod tests {
    #[test]
    fn sysctls_are_calicos() {
        let s = super::workload_sysctls("cali36dac03ac5d", "2");
        assert!(s.contains(&("net/ipv4/conf/cali36dac03ac5d/proxy_arp".into(), "1".into())));
        assert!(s.contains(&("net/ipv4/neigh/cali36dac03ac5d/proxy_delay".into(), "0".into())));
        assert!(s.contains(&("net/ipv4/conf/cali36dac03ac5d/rp_filter".into(), "2".into())));
        assert_eq!(s.len(), 5);
        let s6 = super::workload_sysctls_v6("cali36dac03ac5d");
        assert_eq!(
            s6,
            vec![
                (
                    "net/ipv6/conf/cali36dac03ac5d/proxy_ndp".to_string(),
                    "1".to_string()
                ),
                (
                    "net/ipv6/conf/cali36dac03ac5d/forwarding".to_string(),
                    "1".to_string()
                ),
            ]
        );
    }
}
