//! The route reconciler: desired routes in, the minimal add/replace/delete batch out.
//!
//! It owns only its routes, in the main table: `proto bird` (block routes and blackholes),
//! `proto 80` (Felix-style vxlan routes) and boot-protocol host routes (`/32`, `/128`) on
//! workload interfaces (`cali*`), in both families. Every other route is foreign and never
//! touched, even when it occupies a key Brindle wants (that is reported as a conflict, like
//! BIRD's `Netlink: File exists`); the kernel's own IPv6 routes on `cali*` (`fe80::/64 proto
//! kernel`, the local table) are foreign too. A restarted agent adopts what it finds: identical
//! routes are left in place, so nothing is flushed.
//!
//! Desired routes are built in the kernel's form ([`Route::normalized`]): IPv6 routes carry
//! metric 1024 and no scope, as `ip -6 route` shows Calico's (`fd00::1 dev cali… metric 1024`),
//! so a resync of an unchanged table plans nothing.

use std::collections::{HashMap, HashSet};
use std::net::IpAddr;

use brindle_netlink::{Handle, Route, RouteKind, RouteOp, TABLE_MAIN, proto, scope};
use ipnet::IpNet;

use crate::state::{DesiredState, EncapMode, RouteEncap, VxlanConfig};

/// Device names the computation needs (`None`: the device does not exist now).
#[derive(Debug, Clone, Default)]
pub struct Devices {
    pub by_name: HashMap<String, u32>,
    /// The link holding the node's IPv4 address.
    pub underlay: Option<u32>,
    /// The link holding the node's IPv6 address.
    pub underlay_v6: Option<u32>,
}

pub const TUNL0: &str = "tunl0";
pub const VXLAN_DEV: &str = "vxlan.calico";
/// Felix's VXLAN-over-IPv6 device.
pub const VXLAN_V6_DEV: &str = "vxlan-v6.calico";

/// The VTEP address of each remote node (by node address) of one VXLAN device.
fn vteps(cfg: &Option<VxlanConfig>) -> HashMap<IpAddr, IpAddr> {
    cfg.iter()
        .flat_map(|v| v.remotes.iter().map(|r| (r.node_ip, r.vtep_ip)))
        .collect()
}

/// Computes the routes `state` asks for. Routes whose device is missing are left out and
/// reported (retried at the next resync, when the device may exist).
pub fn desired_routes(state: &DesiredState, devs: &Devices) -> (Vec<Route>, Vec<String>) {
    let mut out = Vec::new();
    let mut problems = Vec::new();
    for b in &state.local_blocks {
        out.push(Route::blackhole(*b).with_protocol(proto::BIRD).normalized());
    }
    let vteps4 = vteps(&state.vxlan);
    let vteps6 = vteps(&state.vxlan_v6);
    for rb in &state.remote_blocks {
        let dst = rb.dst;
        let v6 = rb.node_ip.is_ipv6();
        let (underlay, vxlan_dev, vteps) = if v6 {
            (devs.underlay_v6, VXLAN_V6_DEV, &vteps6)
        } else {
            (devs.underlay, VXLAN_DEV, &vteps4)
        };
        let encap = RouteEncap::decide(rb.ipip, rb.vxlan, state.node.net_for(rb.node_ip), rb.node_ip);
        let felix = rb.vxlan != EncapMode::Never;
        let protocol = if felix { proto::FELIX } else { proto::BIRD };
        match encap {
            RouteEncap::Direct => match underlay {
                Some(dev) => out.push(
                    Route::via(dst, rb.node_ip, dev)
                        .with_protocol(protocol)
                        .normalized(),
                ),
                None => problems.push(format!(
                    "route {dst} via {}: no interface holds the node's IPv{} address",
                    rb.node_ip,
                    if v6 { 6 } else { 4 }
                )),
            },
            RouteEncap::Ipip => match devs.by_name.get(TUNL0) {
                Some(&dev) => out.push(
                    Route::via(dst, rb.node_ip, dev)
                        .with_protocol(proto::BIRD)
                        .with_onlink(true),
                ),
                None => problems.push(format!(
                    "route {dst} via {} dev {TUNL0}: device {TUNL0} missing",
                    rb.node_ip
                )),
            },
            RouteEncap::Vxlan => match (devs.by_name.get(vxlan_dev), vteps.get(&rb.node_ip)) {
                (Some(&dev), Some(vtep)) => out.push(
                    Route::via(dst, *vtep, dev)
                        .with_protocol(proto::FELIX)
                        .with_onlink(true)
                        .normalized(),
                ),
                (None, _) => {
                    problems.push(format!("route {dst} dev {vxlan_dev}: device {vxlan_dev} missing"))
                }
                (_, None) => problems.push(format!(
                    "route {dst} dev {vxlan_dev}: node {} has no VTEP",
                    rb.node_ip
                )),
            },
        }
    }
    for w in &state.workloads {
        let dst = IpNet::from(w.ip);
        match devs.by_name.get(&w.iface) {
            Some(&dev) => out.push(Route::dev(dst, dev, scope::LINK).normalized()),
            None => problems.push(format!(
                "route {} dev {}: device {} missing",
                w.ip, w.iface, w.iface
            )),
        }
    }
    (out, problems)
}

/// Which routes Brindle owns.
#[derive(Debug, Clone)]
pub struct Ownership {
    /// Workload interface prefixes (Felix's `InterfacePrefix`, default `cali`).
    pub iface_prefixes: Vec<String>,
}

impl Default for Ownership {
    fn default() -> Self {
        Ownership {
            iface_prefixes: vec!["cali".into()],
        }
    }
}

impl Ownership {
    /// True for Brindle's routes (see the module docs).
    pub fn owns(&self, r: &Route, names: &dyn Fn(u32) -> Option<String>) -> bool {
        if r.table != TABLE_MAIN || r.multipath {
            return false;
        }
        match r.protocol {
            proto::BIRD | proto::FELIX => true,
            proto::BOOT => {
                r.dst.prefix_len() == r.dst.max_prefix_len()
                    && r.kind == RouteKind::Unicast
                    && r.gateway.is_none()
                    && r.oif
                        .and_then(names)
                        .is_some_and(|n| self.iface_prefixes.iter().any(|p| n.starts_with(p.as_str())))
            }
            _ => false,
        }
    }
}

/// A fast, non-cryptographic hasher for route keys (the FxHash multiply-rotate scheme): the
/// keys come from the kernel and from our own state, not from an adversary, and SipHash was a
/// visible share of planning 100k routes.
#[derive(Default, Clone, Copy)]
pub(crate) struct FxHasher(u64);

impl std::hash::Hasher for FxHasher {
    fn write(&mut self, bytes: &[u8]) {
        for chunk in bytes.chunks(8) {
            let mut w = [0u8; 8];
            w[..chunk.len()].copy_from_slice(chunk);
            self.write_u64(u64::from_le_bytes(w));
        }
    }
    fn write_u8(&mut self, i: u8) {
        self.write_u64(u64::from(i));
    }
    fn write_u32(&mut self, i: u32) {
        self.write_u64(u64::from(i));
    }
    fn write_u64(&mut self, i: u64) {
        self.0 = (self.0.rotate_left(5) ^ i).wrapping_mul(0x51_7c_c1_b7_27_22_0a_95);
    }
    fn write_usize(&mut self, i: usize) {
        self.write_u64(i as u64);
    }
    fn finish(&self) -> u64 {
        self.0
    }
}

pub(crate) type FastMap<K, V> = HashMap<K, V, std::hash::BuildHasherDefault<FxHasher>>;
type FastSet<K> = HashSet<K, std::hash::BuildHasherDefault<FxHasher>>;

/// The changes that turn `actual` into `desired`, touching only owned routes.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Plan {
    pub ops: Vec<RouteOp>,
    /// Desired routes whose key is held by a foreign route (left alone).
    pub conflicts: Vec<Route>,
}

/// The fields that make two routes with the same key the same route. A blackhole has no device,
/// though the kernel reports IPv6 ones on `lo`.
pub(crate) fn same(a: &Route, b: &Route) -> bool {
    a.kind == b.kind
        && a.gateway == b.gateway
        && (a.oif == b.oif || a.kind == RouteKind::Blackhole)
        && a.onlink == b.onlink
        && a.protocol == b.protocol
        && a.scope == b.scope
        && a.prefsrc == b.prefsrc
        && !b.multipath
}

/// Pure planning. With `prune` false, owned routes that are not desired are kept (a restarting
/// agent does not yet know every route: it must not delete what it will re-learn).
pub fn plan(desired: &[Route], actual: &[Route], owned: &dyn Fn(&Route) -> bool, prune: bool) -> Plan {
    // One entry per key; a key rarely holds several routes (other metrics make other keys), so
    // extra holders go to a side map instead of a Vec per key.
    let mut first: FastMap<_, &Route> = FastMap::with_capacity_and_hasher(actual.len(), Default::default());
    let mut more: FastMap<_, Vec<&Route>> = FastMap::default();
    for a in actual {
        if let Some(prev) = first.insert(a.key(), a) {
            first.insert(a.key(), prev);
            more.entry(a.key()).or_default().push(a);
        }
    }
    let holders = |k| {
        first
            .get(&k)
            .into_iter()
            .copied()
            .chain(more.get(&k).into_iter().flatten().copied())
    };
    let mut p = Plan::default();
    let mut wanted = FastSet::with_capacity_and_hasher(desired.len(), Default::default());
    for d in desired {
        let k = d.key();
        if !wanted.insert(k) {
            continue; // duplicate desire: the first wins
        }
        if !first.contains_key(&k) {
            p.ops.push(RouteOp::Replace(d.clone()));
        } else if holders(k).any(|a| same(d, a)) {
            continue;
        } else if holders(k).all(owned) {
            p.ops.push(RouteOp::Replace(d.clone()));
        } else {
            p.conflicts.push(d.clone());
        }
    }
    if prune {
        for a in actual {
            if !wanted.contains(&a.key()) && owned(a) {
                p.ops.push(RouteOp::Delete(a.clone()));
            }
        }
    }
    p
}

/// What one reconcile did.
#[derive(Debug, Default, Clone)]
pub struct RouteReport {
    pub replaced: usize,
    pub deleted: usize,
    pub unchanged: usize,
    /// How long reading the main table took (Felix's `felix_route_table_list_seconds`).
    pub list_seconds: f64,
    /// Problems naming the route: missing devices, refused routes, conflicts.
    pub errors: Vec<String>,
}

/// Reads the kernel's routes, plans and applies in one batch.
pub fn reconcile(
    h: &mut Handle,
    desired: &[Route],
    ownership: &Ownership,
    prune: bool,
) -> Result<RouteReport, brindle_netlink::Error> {
    let t0 = std::time::Instant::now();
    let actual = h.routes(Some(TABLE_MAIN))?;
    let list_seconds = t0.elapsed().as_secs_f64();
    let names = h.link_names()?;
    let name_of = |i: u32| names.get(&i).cloned();
    let owned = |r: &Route| ownership.owns(r, &name_of);
    let p = plan(desired, &actual, &owned, prune);
    let mut report = RouteReport {
        unchanged: desired.len().saturating_sub(
            p.ops.iter().filter(|o| matches!(o, RouteOp::Replace(_))).count() + p.conflicts.len(),
        ),
        list_seconds,
        ..Default::default()
    };
    for c in &p.conflicts {
        report.errors.push(format!(
            "route {} conflicts with a route Brindle does not own; left alone",
            c.render(&name_of)
        ));
    }
    let failed: HashSet<usize> = match h.apply_routes(&p.ops) {
        Ok(()) => HashSet::new(),
        Err(e) => {
            let idx = e.failures.iter().map(|(i, _)| *i).collect();
            report
                .errors
                .extend(e.failures.into_iter().map(|(_, err)| err.to_string()));
            idx
        }
    };
    for (i, op) in p.ops.iter().enumerate() {
        if failed.contains(&i) {
            continue;
        }
        match op {
            RouteOp::Delete(_) => report.deleted += 1,
            _ => report.replaced += 1,
        }
    }
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;
    use brindle_netlink::proto;

    fn n(s: &str) -> IpNet {
        s.parse().unwrap()
    }

    fn names(i: u32) -> Option<String> {
        match i {
            5 => Some("tunl0".into()),
            7 => Some("cali36dac03ac5d".into()),
            8 => Some("eth0".into()),
            _ => None,
        }
    }

    fn tun(dst: &str, gw: &str) -> Route {
        Route::via(n(dst), gw.parse().unwrap(), 5)
            .with_protocol(proto::BIRD)
            .with_onlink(true)
    }

    #[test]
    fn plans_minimal_changes_and_leaves_foreign_routes() {
        let own = Ownership::default();
        let owned = |r: &Route| own.owns(r, &names);
        let wl = Route::dev(n("10.233.94.1/32"), 7, scope::LINK);
        let bh = Route::blackhole(n("10.233.94.0/24")).with_protocol(proto::BIRD);
        let foreign = Route::via(n("192.0.2.0/24"), "172.20.42.1".parse().unwrap(), 8);
        let foreign_host = Route::dev(n("198.51.100.1/32"), 8, scope::LINK);
        let stale = tun("10.233.200.0/24", "172.20.42.99");
        let moved = tun("10.233.87.0/24", "172.20.42.99");
        let actual = vec![
            bh.clone(),
            wl.clone(),
            foreign.clone(),
            foreign_host,
            stale.clone(),
            moved,
        ];
        let desired = vec![
            bh.clone(),
            wl.clone(),
            tun("10.233.87.0/24", "172.20.42.81"),
            tun("10.233.124.0/24", "172.20.42.82"),
        ];
        let p = plan(&desired, &actual, &owned, true);
        assert_eq!(
            p.ops,
            vec![
                RouteOp::Replace(tun("10.233.87.0/24", "172.20.42.81")),
                RouteOp::Replace(tun("10.233.124.0/24", "172.20.42.82")),
                RouteOp::Delete(stale),
            ]
        );
        assert!(p.conflicts.is_empty());
        // Without pruning, the stale route stays (adoption during a restart).
        let p = plan(&desired, &actual, &owned, false);
        assert_eq!(p.ops.len(), 2);
        // A desired route whose key a foreign route holds is a conflict, not a replace.
        let clash = Route::via(n("192.0.2.0/24"), "172.20.42.81".parse().unwrap(), 5)
            .with_protocol(proto::BIRD)
            .with_onlink(true);
        let p = plan(std::slice::from_ref(&clash), &actual, &owned, false);
        assert_eq!(p.conflicts, vec![clash]);
        assert!(p.ops.is_empty());
        // Nothing to do when the kernel already matches.
        assert_eq!(plan(&[bh, wl], &actual, &owned, false), Plan::default());
    }

    #[test]
    fn owns_only_brindle_routes() {
        let own = Ownership::default();
        assert!(own.owns(&Route::dev(n("10.233.94.1/32"), 7, scope::LINK), &names));
        assert!(!own.owns(&Route::dev(n("10.233.94.1/32"), 8, scope::LINK), &names));
        assert!(!own.owns(&Route::dev(n("10.233.94.0/24"), 7, scope::LINK), &names));
        assert!(own.owns(&tun("10.233.87.0/24", "172.20.42.81"), &names));
        assert!(!own.owns(&tun("10.233.87.0/24", "172.20.42.81").with_table(100), &names));
        let kernel = Route::dev(n("172.20.40.0/22"), 8, scope::LINK).with_protocol(proto::KERNEL);
        assert!(!own.owns(&kernel, &names));
    }
}
