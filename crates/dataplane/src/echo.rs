//! Telling the dataplane's own writes from everyone else's in kernel notifications.
//!
//! Every route, neighbour or device the dataplane writes comes back to its monitor as a
//! notification (an *echo*). Re-applying on each one reconciles every change twice; ignoring
//! every notification would leave a route deleted behind our back missing until the periodic
//! resync. [`Expected`] is what the last apply left in the kernel, and
//! [`Expected::needs_repair`] says whether a notification disagrees with it: read after the apply
//! that caused them, echoes agree (nothing to do) and real changes disagree (repair now).
//!
//! The rules, per notification:
//! - a route added or replaced on a key the dataplane wants: a repair when it differs from what
//!   it wants (a foreign route took the key, or someone changed ours); on any other key: not
//!   ours to react to (foreign, or our own removal's leftovers), the periodic resync prunes;
//! - a route deleted on a key the dataplane wants: a repair (ours, or the foreign route holding
//!   that key, is gone);
//! - a link: a repair when a route of ours uses it (its routes may have gone with it), when a
//!   wanted route waits for it (a workload's `cali…` appearing), or when it is a tunnel device;
//! - an address on a tunnel device: a repair;
//! - a neighbour or FDB entry the dataplane keeps: a repair when deleted or no longer permanent
//!   with our MAC; the kernel's ARP churn on other entries is ignored;
//! - lost notifications: a repair.

use std::collections::{HashMap, HashSet};
use std::net::IpAddr;

use brindle_netlink::{Change, Mac, Route};
use ipnet::IpNet;

use crate::routes::{FastMap, TUNL0, VXLAN_DEV, VXLAN_V6_DEV, same};
use crate::state::DesiredState;

/// What the last apply left in the kernel, as far as notifications can disagree with it.
#[derive(Debug, Clone, Default)]
pub struct Expected {
    /// By key (the reconciler's fast hasher: this is rebuilt at every apply).
    routes: FastMap<(u32, IpNet, u32), Route>,
    /// Interfaces the wanted routes go through.
    oifs: HashSet<u32>,
    /// Interfaces wanted routes need that did not exist.
    missing: HashSet<String>,
    /// tunl0, vxlan.calico and vxlan-v6.calico, by index when they exist.
    tunnels: HashSet<u32>,
    /// Permanent neighbour and FDB entries kept: (link, address) → MAC.
    neighbours: HashMap<(u32, IpAddr), Mac>,
}

impl Expected {
    /// From the routes an apply wanted, the devices it saw (name → index) and the desired
    /// state's neighbour entries.
    pub fn new(routes: &[Route], devices: &HashMap<String, u32>, desired: &DesiredState) -> Expected {
        let mut e = Expected {
            oifs: routes.iter().filter_map(|r| r.oif).collect(),
            routes: routes.iter().map(|r| (r.key(), r.clone())).collect(),
            tunnels: [TUNL0, VXLAN_DEV, VXLAN_V6_DEV]
                .iter()
                .filter_map(|n| devices.get(*n).copied())
                .collect(),
            ..Expected::default()
        };
        for w in &desired.workloads {
            match (devices.get(&w.iface), w.mac) {
                // Static ARP entries only: IPv6 workloads get no static neighbour.
                (Some(&i), Some(mac)) if w.ip.is_ipv4() => {
                    e.neighbours.insert((i, w.ip), mac);
                }
                (Some(_), Some(_)) => {}
                (Some(_), None) => {}
                (None, _) => {
                    e.missing.insert(w.iface.clone());
                }
            }
        }
        for (cfg, dev) in [(&desired.vxlan, VXLAN_DEV), (&desired.vxlan_v6, VXLAN_V6_DEV)] {
            if let (Some(v), Some(&i)) = (cfg, devices.get(dev)) {
                for r in &v.remotes {
                    e.neighbours.insert((i, r.vtep_ip), r.mac);
                    e.neighbours.insert((i, r.node_ip), r.mac);
                }
            }
        }
        for dev in [TUNL0, VXLAN_DEV, VXLAN_V6_DEV] {
            let wanted = match dev {
                TUNL0 => desired.ipip.is_some(),
                VXLAN_DEV => desired.vxlan.is_some(),
                _ => desired.vxlan_v6.is_some(),
            };
            if wanted && !devices.contains_key(dev) {
                e.missing.insert(dev.to_string());
            }
        }
        e
    }

    /// Whether `change` disagrees with the last apply (see the module docs).
    pub fn needs_repair(&self, change: &Change) -> bool {
        match change {
            Change::Lost => true,
            Change::Route {
                deleted: false,
                route,
            } => self
                .routes
                .get(&route.key())
                .is_some_and(|want| !same(want, route)),
            Change::Route { deleted: true, route } => self.routes.contains_key(&route.key()),
            Change::Link { link, .. } => {
                self.oifs.contains(&link.index)
                    || self.tunnels.contains(&link.index)
                    || self.missing.contains(&link.name)
            }
            Change::Address { index } => self.tunnels.contains(index),
            Change::Neighbour { deleted, neighbour } => {
                let Some(ip) = neighbour.ip else { return false };
                match self.neighbours.get(&(neighbour.index, ip)) {
                    None => false,
                    Some(_) if *deleted => true,
                    Some(mac) => !neighbour.permanent || neighbour.mac != Some(*mac),
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::state::{NodeInfo, Workload};
    use brindle_netlink::{Link, Neighbour, proto, scope};

    fn n(s: &str) -> IpNet {
        s.parse().unwrap()
    }

    fn link(index: u32, name: &str) -> Link {
        Link {
            index,
            name: name.into(),
            kind: None,
            mtu: 1500,
            mac: None,
            up: true,
            lower_up: true,
            vxlan: None,
            link_index: None,
            link_netnsid: None,
        }
    }

    fn setup() -> (Expected, Route, Route) {
        let mut d = DesiredState::new(NodeInfo::v4("n1", "172.20.42.80/22".parse().unwrap()));
        d.workloads = vec![
            Workload {
                ip: "10.233.94.1".parse().unwrap(),
                iface: "cali1".into(),
                mac: Some([0xee; 6]),
            },
            Workload {
                ip: "10.233.94.2".parse().unwrap(),
                iface: "cali2".into(),
                mac: None,
            },
        ];
        let devices: HashMap<String, u32> =
            [("eth0".into(), 2), ("tunl0".into(), 5), ("cali1".into(), 7)].into();
        let remote = Route::via(n("10.233.87.0/24"), "172.20.42.81".parse().unwrap(), 5)
            .with_protocol(proto::BIRD)
            .with_onlink(true);
        let wl = Route::dev(n("10.233.94.1/32"), 7, scope::LINK);
        (
            Expected::new(&[remote.clone(), wl.clone()], &devices, &d),
            remote,
            wl,
        )
    }

    fn neigh(deleted: bool, index: u32, ip: &str, mac: Mac, permanent: bool) -> Change {
        Change::Neighbour {
            deleted,
            neighbour: Neighbour {
                index,
                ip: Some(ip.parse().unwrap()),
                mac: Some(mac),
                permanent,
            },
        }
    }

    fn route(deleted: bool, route: Route) -> Change {
        Change::Route { deleted, route }
    }

    #[test]
    fn echoes_of_our_writes_need_nothing() {
        let (e, remote, wl) = setup();
        assert!(!e.needs_repair(&route(false, remote)));
        assert!(!e.needs_repair(&route(false, wl)));
        assert!(!e.needs_repair(&neigh(false, 7, "10.233.94.1", [0xee; 6], true)));
        // Our prune of a route no longer wanted, and ARP churn on the underlay.
        let stale =
            Route::via(n("10.233.200.0/24"), "172.20.42.99".parse().unwrap(), 5).with_protocol(proto::BIRD);
        assert!(!e.needs_repair(&route(true, stale)));
        assert!(!e.needs_repair(&neigh(false, 2, "172.20.42.81", [1; 6], false)));
        assert!(!e.needs_repair(&Change::Link {
            deleted: false,
            link: link(9, "cali9")
        }));
    }

    #[test]
    fn changes_behind_our_back_are_repaired() {
        let (e, remote, _) = setup();
        assert!(e.needs_repair(&route(true, remote)));
        let moved =
            Route::via(n("10.233.87.0/24"), "172.20.42.99".parse().unwrap(), 5).with_protocol(proto::BIRD);
        assert!(e.needs_repair(&route(false, moved)));
        assert!(e.needs_repair(&Change::Link {
            deleted: true,
            link: link(7, "cali1")
        }));
        // The workload whose interface did not exist yet: its veth appears.
        assert!(e.needs_repair(&Change::Link {
            deleted: false,
            link: link(8, "cali2")
        }));
        assert!(e.needs_repair(&Change::Address { index: 5 }));
        assert!(e.needs_repair(&neigh(true, 7, "10.233.94.1", [0xee; 6], true)));
        assert!(e.needs_repair(&neigh(false, 7, "10.233.94.1", [0xee; 6], false)));
        assert!(e.needs_repair(&Change::Lost));
    }
}
