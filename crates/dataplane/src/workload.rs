//! The workload side, shared by the CNI plugin and the agent: host-side sysctls of a `cali*`
//! interface (calico.md §4.3 step 6, Felix's `configureProcSysForInterface`), the pod `/32` route,
//! node-wide forwarding, and Felix's permanent ARP entries for workloads.

use std::collections::{HashMap, HashSet};
use std::net::IpAddr;

use brindle_netlink::Handle;

use crate::error::Error;
use crate::state::Workload;

/// Node-wide: `net.ipv4.ip_forward=1`.
pub fn configure_node(h: &Handle) -> Result<(), Error> {
    h.set_sysctls(&[("net.ipv4.ip_forward", "1")])?;
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
    for w in workloads {
        let (Some(mac), Some(&index)) = (w.mac, links.get(&w.iface)) else {
            continue;
        };
        want.insert((index, IpAddr::V4(w.ip)));
        let present = existing
            .iter()
            .any(|n| n.index == index && n.ip == Some(IpAddr::V4(w.ip)) && n.mac == Some(mac) && n.permanent);
        if !present && let Err(e) = h.replace_neighbour(index, &w.iface, IpAddr::V4(w.ip), mac) {
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
