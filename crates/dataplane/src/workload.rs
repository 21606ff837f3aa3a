//! The agent's side of a workload's host interface: the IPv6 sysctls of a `cali*` interface
//! (Felix's `configureProcSysForInterface`; docs/CALICO.md §7), node-wide forwarding (IPv4 and
//! IPv6), and Felix's permanent ARP entries for workloads (IPv4 only, as Felix: IPv6 neighbours
//! are resolved by NDP). The IPv4 interface sysctls and the pod `/32` route, which the CNI plugin
//! needs too, live in `brindle_netlink::workload`.
//!
//! How a pod's IPv6 default route works (Calico's CNI plugin, `dataplane_linux.go`): the host
//! end has MAC `ee:ee:ee:ee:ee:ee`, so its link-local address is `fe80::ecee:eeff:feee:eeee`,
//! the pod's gateway; the host answers the pod's neighbour solicitations for it as for any
//! address of its own (no proxy entry is needed), and routes the pod's `/128` through the `cali`
//! interface. `proxy_ndp=1` is set as Felix sets it.

use std::collections::{HashMap, HashSet};

use brindle_netlink::Handle;

use crate::error::Error;
use crate::state::Workload;

/// The IPv6 sysctls Felix's IPv6 endpoint manager sets on a workload's host interface
/// (`accept_ra=0` is set for both families by `brindle_netlink::workload::configure_workload_iface`).
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
    fn v6_sysctls_are_felixs() {
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
