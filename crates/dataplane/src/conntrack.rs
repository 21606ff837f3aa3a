//! Conntrack cleanup for local workload addresses that went away, as Felix's route table does
//! (`felix/routetable/conntrack_tracker.go` calling `felix/conntrack/conntrack.go`): once an
//! address is no longer a local workload's, or moved to another interface, the flows it had
//! are deleted from the node's conntrack table. Otherwise a flow the old pod's policy allowed
//! lives on, and `ct state established,related accept` lets it reach whichever pod is given the
//! address next, under whatever policy that pod has.
//!
//! When: an address that moved to another interface, before the routes are programmed (its
//! old flows go before its new route); an address that is gone, after the routes are
//! reconciled (its route is gone), and only in an apply that may prune: while a restarted agent is still learning
//! (`ApplyOptions::prune` false) an address missing from the desired state is not known to be
//! gone, so it is remembered and judged at the first pruning apply. The decision is pure
//! ([`gone`]).
//!
//! How: as Felix, on a worker thread, because a dump of a big table is slow (a quarter of a
//! second for 100k flows here) and the dataplane thread also carries policy changes. The worker
//! owns its own ctnetlink socket in the node's namespace and takes the addresses of each
//! pruning apply as one job (one dump per family for all of them). Before the routes are
//! programmed, an address that is wanted again while its cleanup is still running waits for it
//! (Felix's `WaitForPendingDeletion`): a new pod given the address never has its fresh flows
//! deleted by the cleanup of its predecessor. Best effort: a failure is reported (the apply's
//! errors, [`Cleanup::failed`]) and retried at the next applies, up to [`ATTEMPTS`] times.

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender};
use std::time::Duration;

use brindle_netlink::{Conntrack, NetnsFd};

use crate::state::Workload;

/// Tries per address before giving up (Felix retries the `conntrack` command 3 times too).
pub const ATTEMPTS: u8 = 3;

/// How long an apply waits for the cleanup of an address it wants to route again.
const WAIT: Duration = Duration::from_secs(10);

/// What the conntrack cleanup did, as one apply learnt it (for the agent's metrics).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Cleanup {
    /// Addresses handed to the worker by this apply.
    pub started: usize,
    /// Addresses whose flows the worker deleted (reported since the previous apply).
    pub addresses: usize,
    /// Flows deleted.
    pub flows_deleted: usize,
    /// Addresses whose cleanup failed.
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

/// A finished job: its addresses, and the flows deleted or the error.
struct Outcome {
    addrs: Vec<IpAddr>,
    result: Result<usize, String>,
}

/// The worker thread: jobs in, outcomes out. It ends when the tracker (the job sender) goes.
struct Worker {
    jobs: Sender<Vec<IpAddr>>,
    done: Receiver<Outcome>,
}

impl Worker {
    fn start(netns: &NetnsFd) -> Result<Worker, String> {
        let netns = netns.try_clone().map_err(|e| e.to_string())?;
        let (jobs, job_rx) = mpsc::channel::<Vec<IpAddr>>();
        let (done_tx, done) = mpsc::channel();
        std::thread::Builder::new()
            .name("conntrack-cleanup".into())
            .spawn(move || {
                let mut socket: Option<Conntrack> = None;
                while let Ok(addrs) = job_rx.recv() {
                    let result = match socket.take() {
                        Some(s) => Ok(s),
                        None => Conntrack::open(&netns),
                    }
                    .and_then(|mut s| {
                        let r = s.delete_flows_of(&addrs);
                        // A socket that failed is opened afresh for the next job.
                        if r.is_ok() {
                            socket = Some(s);
                        }
                        r
                    })
                    .map(|d| d.deleted)
                    .map_err(|e| e.to_string());
                    // Logged as it happens; the tracker reports the counts at the next apply.
                    let what = "the conntrack flows of gone workload addresses";
                    match &result {
                        Ok(flows) => tracing::info!(addresses = %list(&addrs), flows, "deleted {what}"),
                        Err(e) => tracing::warn!(addresses = %list(&addrs), "deleting {what} failed: {e}"),
                    }
                    if done_tx.send(Outcome { addrs, result }).is_err() {
                        return;
                    }
                }
            })
            .map_err(|e| format!("start the conntrack cleanup thread: {e}"))?;
        Ok(Worker { jobs, done })
    }
}

/// The tracker: what the last pruning apply had, the cleanups running and to retry.
#[derive(Default)]
pub struct Tracker {
    known: BTreeMap<IpAddr, String>,
    /// Addresses handed to the worker and not reported back yet.
    in_flight: BTreeSet<IpAddr>,
    /// Addresses whose cleanup failed, with the attempts made.
    retry: BTreeMap<IpAddr, u8>,
    worker: Option<Worker>,
    /// Learnt since the last [`Tracker::after_routes`].
    report: Cleanup,
    errors: Vec<String>,
}

impl Tracker {
    /// Called before the routes are programmed: takes the outcomes of finished jobs, starts the
    /// cleanup of addresses that moved to another interface (their old flows go before the new
    /// route, as Felix removes the old route, cleans up, then adds the new one), and waits for
    /// the running cleanups of addresses `workloads` wants.
    pub fn before_routes(&mut self, netns: &NetnsFd, workloads: &[Workload]) {
        self.collect(None);
        let now = addresses(workloads);
        let moved: Vec<IpAddr> = now
            .iter()
            .filter(|(ip, iface)| self.known.get(ip).is_some_and(|k| k != *iface))
            .map(|(ip, _)| *ip)
            .filter(|ip| !self.in_flight.contains(ip))
            .collect();
        if !moved.is_empty() {
            for ip in &moved {
                self.known.insert(*ip, now[ip].clone());
            }
            self.start(netns, moved);
        }
        while self.in_flight.iter().any(|a| now.contains_key(a)) {
            tracing::info!("waiting for the conntrack cleanup of an address given to a new workload");
            if !self.collect(Some(WAIT)) {
                let late = self.in_flight.iter().filter(|a| now.contains_key(a));
                self.errors.push(format!(
                    "conntrack cleanup of {} still running after {} s; routing the address anyway",
                    list(late),
                    WAIT.as_secs()
                ));
                break;
            }
        }
    }

    /// Called after the routes were reconciled: starts the cleanup of the addresses gone since
    /// the last pruning apply (and of those to retry). Returns what was learnt since the last
    /// call and the problems, each naming its address.
    pub fn after_routes(
        &mut self,
        netns: &NetnsFd,
        workloads: &[Workload],
        prune: bool,
    ) -> (Cleanup, Vec<String>) {
        let now = addresses(workloads);
        if !prune {
            // Not yet known to be gone: remember both until a pruning apply decides.
            self.known.extend(now);
            return self.take();
        }
        let mut todo: BTreeSet<IpAddr> = gone(&self.known, &now);
        todo.extend(self.retry.keys().copied());
        self.known = now;
        todo.retain(|a| !self.in_flight.contains(a));
        if !todo.is_empty() {
            self.start(netns, todo.into_iter().collect());
        }
        self.take()
    }

    /// Hands `addrs` to the worker (started on first use) as one job.
    fn start(&mut self, netns: &NetnsFd, addrs: Vec<IpAddr>) {
        if self.worker.is_none() {
            match Worker::start(netns) {
                Ok(w) => self.worker = Some(w),
                Err(e) => return self.failed(&addrs, &e),
            }
        }
        let sent = self
            .worker
            .as_ref()
            .is_some_and(|w| w.jobs.send(addrs.clone()).is_ok());
        if sent {
            tracing::info!(addresses = %list(&addrs), "deleting the conntrack flows of gone workload addresses");
            self.in_flight.extend(addrs.iter().copied());
            self.report.started += addrs.len();
        } else {
            self.worker = None;
            self.failed(&addrs, "the conntrack cleanup thread is gone");
        }
    }

    fn take(&mut self) -> (Cleanup, Vec<String>) {
        (std::mem::take(&mut self.report), std::mem::take(&mut self.errors))
    }

    /// Takes finished outcomes: all that are ready, or (with `wait`) at least one within it.
    /// False when waiting timed out.
    fn collect(&mut self, wait: Option<Duration>) -> bool {
        let Some(w) = &self.worker else {
            // Nothing can report on what was in flight (never the case: a job is only counted
            // in flight once a worker took it, and a lost worker fails its jobs below).
            self.in_flight.clear();
            return true;
        };
        let mut got = Vec::new();
        let mut lost = false;
        if let Some(t) = wait {
            match w.done.recv_timeout(t) {
                Ok(o) => got.push(o),
                Err(RecvTimeoutError::Timeout) => return false,
                Err(RecvTimeoutError::Disconnected) => lost = true,
            }
        }
        got.extend(w.done.try_iter());
        for o in got {
            for a in &o.addrs {
                self.in_flight.remove(a);
            }
            match o.result {
                Ok(flows) => {
                    for a in &o.addrs {
                        self.retry.remove(a);
                    }
                    self.report.addresses += o.addrs.len();
                    self.report.flows_deleted += flows;
                }
                Err(e) => self.failed(&o.addrs, &e),
            }
        }
        if lost {
            // The thread ended (it never does on its own): what it had is failed, and the
            // next job starts a new one.
            self.worker = None;
            let addrs: Vec<IpAddr> = std::mem::take(&mut self.in_flight).into_iter().collect();
            self.failed(&addrs, "the conntrack cleanup thread is gone");
        }
        true
    }

    fn failed(&mut self, addrs: &[IpAddr], e: &str) {
        self.report.failed += addrs.len();
        for a in addrs {
            let n = self.retry.entry(*a).or_insert(0);
            *n += 1;
            let what = if *n >= ATTEMPTS {
                self.retry.remove(a);
                format!("gave up after {ATTEMPTS} attempts")
            } else {
                "will retry".to_string()
            };
            self.errors.push(format!(
                "conntrack flows of gone workload address {a}: {e} ({what})"
            ));
        }
    }
}

fn list<'a>(addrs: impl IntoIterator<Item = &'a IpAddr>) -> String {
    addrs
        .into_iter()
        .map(IpAddr::to_string)
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(v: &[(&str, &str)]) -> BTreeMap<IpAddr, String> {
        v.iter()
            .map(|(a, i)| (a.parse().unwrap(), i.to_string()))
            .collect()
    }

    fn w(ip: &str, iface: &str) -> Workload {
        Workload {
            ip: ip.parse().unwrap(),
            iface: iface.into(),
            mac: None,
        }
    }

    /// The tracker's bookkeeping with a real worker in a namespace of its own (root).
    #[test]
    fn only_pruning_applies_start_cleanups_and_outcomes_come_back() {
        let ns = NetnsFd::new_anonymous().expect("a network namespace (run as root)");
        let mut t = Tracker::default();
        let both = [w("10.233.94.1", "cali1"), w("10.233.94.2", "cali2")];
        assert_eq!(t.after_routes(&ns, &both, true).0, Cleanup::default());
        // Gone while the agent may not prune: remembered, nothing started.
        assert_eq!(t.after_routes(&ns, &both[..1], false).0, Cleanup::default());
        let (c, errors) = t.after_routes(&ns, &both[..1], true);
        assert_eq!((c.started, errors.len()), (1, 0), "{errors:?}");
        // Wanted again: the next apply waits for it before routing.
        t.before_routes(&ns, &both);
        assert!(t.in_flight.is_empty());
        let (c, errors) = t.after_routes(&ns, &both, true);
        assert_eq!((c.started, c.addresses, c.failed), (0, 1, 0), "{errors:?}");
        // Moved to another interface: cleaned before its new route, and not again after.
        let moved = [w("10.233.94.1", "cali9"), w("10.233.94.2", "cali2")];
        t.before_routes(&ns, &moved);
        assert!(t.in_flight.is_empty());
        let (c, errors) = t.after_routes(&ns, &moved, true);
        assert_eq!((c.started, c.addresses, c.failed), (1, 1, 0), "{errors:?}");
        assert_eq!(t.after_routes(&ns, &moved, true).0, Cleanup::default());
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
