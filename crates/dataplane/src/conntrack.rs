//! Conntrack cleanup for local workload addresses that went away, as Felix's route table does
//! (`felix/routetable/conntrack_tracker.go` calling `felix/conntrack/conntrack.go`): once an
//! address is no longer a local workload's, or moved to another interface, the flows it had
//! are deleted from the node's conntrack table. Otherwise a flow the old pod's policy allowed
//! lives on, and `ct state established,related accept` lets it reach whichever pod is given the
//! address next, under whatever policy that pod has.
//!
//! When: after the routes are reconciled (the address's route is gone or points at its new
//! interface), and only in an apply that may prune: while a restarted agent is still learning
//! (`ApplyOptions::prune` false) an address missing from the desired state is not known to be
//! gone, so it is remembered and judged at the first pruning apply. The decision is pure
//! ([`gone`]); the deletion is best effort: a failure is reported (the apply's errors and
//! [`Cleanup::failed`]) and retried at the next applies, up to [`ATTEMPTS`] times.

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;

use brindle_netlink::{Conntrack, NetnsFd};

use crate::state::Workload;

/// Tries per address before giving up (Felix retries the `conntrack` command 3 times too).
pub const ATTEMPTS: u8 = 3;

/// What one apply's cleanup did (for the agent's metrics).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Cleanup {
    /// Addresses whose flows were deleted.
    pub addresses: usize,
    /// Flows deleted.
    pub flows_deleted: usize,
    /// Addresses whose cleanup failed this time.
    pub failed: usize,
}

/// The addresses of `before` that `now` no longer has on the same interface.
pub fn gone(before: &BTreeMap<IpAddr, String>, now: &BTreeMap<IpAddr, String>) -> BTreeSet<IpAddr> {
    before
        .iter()
        .filter(|(ip, iface)| now.get(ip) != Some(iface))
        .map(|(ip, _)| *ip)
        .collect()
}

/// Local workload addresses by interface, as the desired state lists them.
pub fn addresses(workloads: &[Workload]) -> BTreeMap<IpAddr, String> {
    workloads.iter().map(|w| (w.ip, w.iface.clone())).collect()
}

/// The tracker: what the last pruning apply had, the cleanups still to retry, the socket.
#[derive(Default)]
pub struct Tracker {
    known: BTreeMap<IpAddr, String>,
    /// Addresses whose cleanup failed, with the attempts made.
    retry: BTreeMap<IpAddr, u8>,
    socket: Option<Conntrack>,
}

impl Tracker {
    /// Called after the routes were reconciled. Returns what was done and the problems, each
    /// naming its address.
    pub fn apply(&mut self, netns: &NetnsFd, workloads: &[Workload], prune: bool) -> (Cleanup, Vec<String>) {
        let now = addresses(workloads);
        if !prune {
            // Not yet known to be gone: remember both until a pruning apply decides.
            self.known.extend(now);
            return (Cleanup::default(), Vec::new());
        }
        let mut todo: BTreeSet<IpAddr> = gone(&self.known, &now);
        todo.extend(self.retry.keys().copied());
        self.known = now;
        if todo.is_empty() {
            return (Cleanup::default(), Vec::new());
        }
        let addrs: Vec<IpAddr> = todo.iter().copied().collect();
        let list = addrs.iter().map(IpAddr::to_string).collect::<Vec<_>>().join(", ");
        let result = match self.socket.take() {
            Some(s) => Ok(s),
            None => Conntrack::open(netns),
        }
        .and_then(|mut s| {
            let r = s.delete_flows_of(&addrs);
            self.socket = Some(s);
            r
        });
        match result {
            Ok(d) => {
                for a in &addrs {
                    self.retry.remove(a);
                }
                tracing::info!(addresses = %list, flows = d.deleted, "deleted the conntrack flows of gone workload addresses");
                let done = Cleanup {
                    addresses: addrs.len(),
                    flows_deleted: d.deleted,
                    failed: 0,
                };
                (done, Vec::new())
            }
            Err(e) => {
                // A broken socket is reopened next time.
                self.socket = None;
                let mut errors = Vec::new();
                for a in &addrs {
                    let n = self.retry.entry(*a).or_insert(0);
                    *n += 1;
                    if *n >= ATTEMPTS {
                        self.retry.remove(a);
                        errors.push(format!(
                            "conntrack flows of gone workload address {a}: {e} (gave up after {ATTEMPTS} attempts)"
                        ));
                    } else {
                        errors.push(format!(
                            "conntrack flows of gone workload address {a}: {e} (will retry)"
                        ));
                    }
                }
                let done = Cleanup {
                    addresses: 0,
                    flows_deleted: 0,
                    failed: addrs.len(),
                };
                (done, errors)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(v: &[(&str, &str)]) -> BTreeMap<IpAddr, String> {
        v.iter()
            .map(|(a, i)| (a.parse().unwrap(), i.to_string()))
            .collect()
    }

    #[test]
    fn removed_and_moved_addresses_are_gone_kept_and_new_ones_are_not() {
        let before = m(&[
            ("10.233.94.1", "cali1"),
            ("10.233.94.2", "cali2"),
            ("fd00:10:233::2", "cali2"),
            ("10.233.94.3", "cali3"),
        ]);
        let now = m(&[
            ("10.233.94.1", "cali1"),
            ("10.233.94.3", "cali9"),
            ("10.233.94.4", "cali4"),
        ]);
        let g: Vec<String> = gone(&before, &now).iter().map(|a| a.to_string()).collect();
        assert_eq!(g, ["10.233.94.2", "10.233.94.3", "fd00:10:233::2"]);
        assert!(gone(&now, &now).is_empty());
        assert!(gone(&BTreeMap::new(), &now).is_empty());
    }
}
