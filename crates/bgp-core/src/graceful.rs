//! Graceful restart bookkeeping (RFC 4724, RFC 8538), pure: inputs plus `now` to actions.
//!
//! - [`Helper`]: the receiving speaker's state for one peer (§4.2). When the peer's session
//!   goes down gracefully its routes are kept, marked stale, until it comes back and sends
//!   End-of-RIB (or a bounded stale time passes); if it does not come back within the restart
//!   time it announced, they go.
//! - [`Deferral`]: the restarting speaker's route-selection deferral (§4.1): "done" once every
//!   peer that will send End-of-RIB has sent it, or the Selection_Deferral_Timer ran out; then
//!   "settled" once the peers §4.1 excludes because they restarted too have sent theirs as well
//!   (same deadline), the point from which the dataplane may drop routes nobody re-sent.
//!
//! The driver executes the [`GrAction`]s on the RIB and arms one timer per [`Helper`] (the
//! instant [`Helper::deadline`] gives), calling [`Helper::expire`] when it fires.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use brindle_bgp_wire::{Family, GracefulRestart};

/// What the RIB must do with a peer's routes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum GrAction {
    /// Keep the routes of these families, marked stale; delete those still stale from an
    /// earlier restart and those of other families (`Rib::mark_stale`).
    MarkStale(Vec<Family>),
    /// Delete the routes still stale in these families (`Rib::sweep_stale`).
    Sweep(Vec<Family>),
    /// Delete every route of the peer and forget it (`Rib::remove_peer`).
    Flush,
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
enum Phase {
    /// No stale routes.
    #[default]
    Idle,
    /// The session is down; its routes of `families` are kept until `until` (the restart time
    /// the peer announced).
    Restarting { families: Vec<Family>, until: Instant },
    /// The session is back; stale routes of `families` wait for End-of-RIB, at most until
    /// `until` (the stale-routes time).
    Refreshing { families: Vec<Family>, until: Instant },
}

/// The receiving speaker's graceful-restart state for one peer (RFC 4724 §4.2).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Helper {
    phase: Phase,
}

impl Helper {
    pub fn new() -> Helper {
        Helper::default()
    }

    /// When [`Helper::expire`] must run (`None`: no timer).
    pub fn deadline(&self) -> Option<Instant> {
        match &self.phase {
            Phase::Idle => None,
            Phase::Restarting { until, .. } | Phase::Refreshing { until, .. } => Some(*until),
        }
    }

    /// True while the peer's routes are retained through a restart.
    pub fn restarting(&self) -> bool {
        matches!(self.phase, Phase::Restarting { .. })
    }

    /// True while some of the peer's routes are stale.
    pub fn has_stale(&self) -> bool {
        self.phase != Phase::Idle
    }

    /// The Established session went down. `graceful`: the session says graceful restart
    /// applies (a TCP failure, or with RFC 8538 a NOTIFICATION other than Hard Reset);
    /// `peer_cap`: the capability the peer sent on that session; `families`: those it had
    /// negotiated. A consecutive restart (stale routes still waiting) deletes the routes the
    /// peer never refreshed, which [`GrAction::MarkStale`] does.
    pub fn down(
        &mut self,
        graceful: bool,
        peer_cap: Option<&GracefulRestart>,
        families: &[Family],
        now: Instant,
    ) -> Vec<GrAction> {
        let retained: Vec<Family> = match peer_cap {
            Some(cap) if graceful && cap.restart_time > 0 => families
                .iter()
                .copied()
                .filter(|f| cap.families.iter().any(|g| g.family == *f))
                .collect(),
            _ => Vec::new(),
        };
        if retained.is_empty() {
            self.phase = Phase::Idle;
            return vec![GrAction::Flush];
        }
        let restart = Duration::from_secs(u64::from(peer_cap.map_or(0, |c| c.restart_time)));
        self.phase = Phase::Restarting {
            families: retained.clone(),
            until: now + restart,
        };
        vec![GrAction::MarkStale(retained)]
    }

    /// The session is Established again with `peer_cap` (the capability in the new OPEN) and
    /// `families` negotiated. Stale routes of families the peer no longer preserves (no
    /// capability, family absent, or Forwarding State bit clear) go at once; the others wait
    /// for End-of-RIB, at most `stale_time`.
    pub fn established(
        &mut self,
        peer_cap: Option<&GracefulRestart>,
        families: &[Family],
        now: Instant,
        stale_time: Duration,
    ) -> Vec<GrAction> {
        let stale = match std::mem::take(&mut self.phase) {
            Phase::Idle => return Vec::new(),
            Phase::Restarting { families, .. } | Phase::Refreshing { families, .. } => families,
        };
        let preserved = |f: &Family| {
            families.contains(f)
                && peer_cap.is_some_and(|c| {
                    c.families
                        .iter()
                        .any(|g| g.family == *f && g.forwarding_preserved)
                })
        };
        let (keep, sweep): (Vec<Family>, Vec<Family>) = stale.into_iter().partition(preserved);
        let mut out = Vec::new();
        if !sweep.is_empty() {
            out.push(GrAction::Sweep(sweep));
        }
        if !keep.is_empty() {
            self.phase = Phase::Refreshing {
                families: keep,
                until: now + stale_time,
            };
        }
        out
    }

    /// End-of-RIB for `family` arrived: the routes still stale in it go.
    pub fn end_of_rib(&mut self, family: Family) -> Vec<GrAction> {
        let Phase::Refreshing { families, .. } = &mut self.phase else {
            return Vec::new();
        };
        let Some(i) = families.iter().position(|f| *f == family) else {
            return Vec::new();
        };
        families.remove(i);
        if families.is_empty() {
            self.phase = Phase::Idle;
        }
        vec![GrAction::Sweep(vec![family])]
    }

    /// The timer fired: a peer that did not come back within its restart time loses its
    /// routes; stale routes still waiting for End-of-RIB after the stale time go.
    pub fn expire(&mut self, now: Instant) -> Vec<GrAction> {
        match &self.phase {
            Phase::Restarting { until, .. } if now >= *until => {
                self.phase = Phase::Idle;
                vec![GrAction::Flush]
            }
            Phase::Refreshing { families, until } if now >= *until => {
                let f = families.clone();
                self.phase = Phase::Idle;
                vec![GrAction::Sweep(f)]
            }
            _ => Vec::new(),
        }
    }
}

/// The restarting speaker's route-selection deferral (RFC 4724 §4.1), keyed by peer `K`.
///
/// Converged when the peer set is known and every peer has either sent End-of-RIB for each
/// family it negotiated, or is excluded: it advertised no graceful restart capability, or its
/// Restart State bit is set (it restarted too and will not wait for us). A peer that never
/// comes up holds convergence until the deadline.
#[derive(Clone, Debug)]
pub struct Deferral<K: Ord + Clone> {
    deadline: Instant,
    peers_known: bool,
    /// Peers that must still come up or send End-of-RIB: `None` until Established, then the
    /// families whose End-of-RIB is missing.
    waiting: BTreeMap<K, Option<Vec<Family>>>,
    done: bool,
    /// Peers that came back with their Restart State bit set and the families whose End-of-RIB
    /// is missing. §4.1 excludes them from the deferral (they may be waiting for our routes
    /// before sending theirs), but their tables are still on the way: when every node of a
    /// mesh restarts at once, "done" comes before any route does.
    restarted: BTreeMap<K, Vec<Family>>,
    settled: bool,
    settled_told: bool,
}

impl<K: Ord + Clone> Deferral<K> {
    /// Starts deferring until at most `now + limit`.
    pub fn new(now: Instant, limit: Duration) -> Deferral<K> {
        Deferral {
            deadline: now + limit,
            peers_known: false,
            waiting: BTreeMap::new(),
            done: false,
            restarted: BTreeMap::new(),
            settled: false,
            settled_told: false,
        }
    }

    /// A deferral that is over from the start (a speaker that did not restart).
    pub fn converged() -> Deferral<K> {
        Deferral {
            deadline: Instant::now(),
            peers_known: true,
            waiting: BTreeMap::new(),
            done: true,
            restarted: BTreeMap::new(),
            settled: true,
            settled_told: true,
        }
    }

    pub fn done(&self) -> bool {
        self.done
    }

    /// True once the deferral is done and every restarted peer has sent End-of-RIB too (or the
    /// deadline passed): every route the peers will re-send has been received.
    pub fn settled(&self) -> bool {
        self.settled
    }

    /// True exactly once, the first time it is asked after [`Deferral::settled`] turned true
    /// (the driver's cue to report initial convergence).
    pub fn take_settled(&mut self) -> bool {
        if self.settled && !self.settled_told {
            self.settled_told = true;
            return true;
        }
        false
    }

    /// When [`Deferral::expire`] must run (`None` once settled).
    pub fn deadline(&self) -> Option<Instant> {
        (!self.settled).then_some(self.deadline)
    }

    fn check_settled(&mut self) {
        if self.done && !self.settled && self.restarted.values().all(Vec::is_empty) {
            self.settled = true;
        }
    }

    fn check(&mut self) -> bool {
        let done = self.check_done();
        self.check_settled();
        done
    }

    fn check_done(&mut self) -> bool {
        if !self.done
            && self.peers_known
            && self
                .waiting
                .values()
                .all(|w| w.as_ref().is_some_and(Vec::is_empty))
        {
            self.done = true;
            return true;
        }
        false
    }

    /// The configured peers (replacing the previous set); peers already accounted for keep
    /// their progress. Returns true if this completed the convergence.
    pub fn set_peers(&mut self, peers: impl IntoIterator<Item = K>) -> bool {
        if self.done {
            let peers: Vec<K> = peers.into_iter().collect();
            self.restarted.retain(|k, _| peers.contains(k));
            self.check_settled();
            return false;
        }
        let mut next = BTreeMap::new();
        for k in peers {
            let w = self.waiting.remove(&k).unwrap_or(None);
            next.insert(k, w);
        }
        self.waiting = next;
        let waiting = &self.waiting;
        self.restarted.retain(|k, _| waiting.contains_key(k));
        self.peers_known = true;
        self.check()
    }

    /// `peer` reached Established with `peer_cap` and `families`.
    pub fn established(&mut self, peer: &K, peer_cap: Option<&GracefulRestart>, families: &[Family]) -> bool {
        if self.settled || !self.waiting.contains_key(peer) {
            return false;
        }
        if peer_cap.is_some_and(|c| c.restarting) {
            self.restarted.insert(peer.clone(), families.to_vec());
        } else {
            self.restarted.remove(peer);
        }
        if self.done {
            self.check_settled();
            return false;
        }
        let Some(w) = self.waiting.get_mut(peer) else {
            return false;
        };
        let pending = match peer_cap {
            Some(c) if !c.restarting => families.to_vec(),
            _ => Vec::new(),
        };
        // A flapping peer restarts its accounting, but families it finished stay finished.
        *w = Some(match w.take() {
            Some(old) => pending.into_iter().filter(|f| old.contains(f)).collect(),
            None => pending,
        });
        self.check()
    }

    /// End-of-RIB for `family` from `peer`.
    pub fn end_of_rib(&mut self, peer: &K, family: Family) -> bool {
        if let Some(Some(fams)) = self.waiting.get_mut(peer) {
            fams.retain(|f| *f != family);
        }
        if let Some(fams) = self.restarted.get_mut(peer) {
            fams.retain(|f| *f != family);
        }
        self.check()
    }

    /// The Selection_Deferral_Timer fired.
    pub fn expire(&mut self, now: Instant) -> bool {
        if now < self.deadline {
            return false;
        }
        self.settled = true;
        if !self.done {
            self.done = true;
            return true;
        }
        false
    }
}
