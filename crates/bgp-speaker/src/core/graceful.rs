//! Graceful restart in the core (RFC 4724, RFC 8538): the receiving speaker's stale routes of
//! each peer (kept through its restart, swept at End-of-RIB or when its timers run out), and
//! our own restart's deferral ending in "initial convergence".

use std::cmp::Reverse;
use std::net::IpAddr;
use std::time::Instant;

use brindle_bgp_core::GrAction;
use brindle_bgp_wire::Family;

use super::{Core, Due};
use crate::peer::PeerCmd;

impl Core {
    /// Executes a helper's actions on the peer's routes and re-arms its timer.
    fn apply_gr(&mut self, addr: IpAddr, actions: Vec<GrAction>) {
        let Some(p) = self.peers.get_mut(&addr) else {
            return;
        };
        for a in actions {
            let Some(id) = p.rib_id else { break };
            match a {
                GrAction::MarkStale(families) => {
                    let (kept, deleted) = self.rib.mark_stale(id, &families);
                    tracing::info!(peer = %addr, kept, deleted, "graceful restart: routes kept as stale");
                }
                GrAction::Sweep(families) => {
                    let swept = self.rib.sweep_stale(id, &families);
                    tracing::info!(peer = %addr, ?families, swept, "graceful restart: stale routes swept");
                }
                GrAction::Flush => {
                    self.rib.remove_peer(id);
                    p.rib_id = None;
                }
            }
        }
        if let Some(t) = p.helper.deadline() {
            self.timers.push(Reverse((t, Due::Helper(addr, p.epoch))));
        }
    }

    /// The peer's Established session ended.
    pub(super) fn gr_down(&mut self, addr: IpAddr, graceful: bool) {
        let Some(p) = self.peers.get_mut(&addr) else {
            return;
        };
        let neg = p.negotiated.as_deref();
        let cap = neg.and_then(|n| n.peer_graceful_restart.as_ref());
        let families = neg.map(|n| n.families.clone()).unwrap_or_default();
        // Graceful restart needs our side enabled too (it was negotiated with our OPEN).
        let graceful = graceful && neg.is_some_and(|n| n.graceful_restart);
        let actions = p.helper.down(graceful, cap, &families, Instant::now());
        self.apply_gr(addr, actions);
    }

    /// The peer is Established again: what its new OPEN says about its stale routes, and
    /// whether our own deferral still waits for it.
    pub(super) fn gr_established(&mut self, addr: IpAddr) {
        let stale_time = self.cfg.stale_routes_time;
        let Some(p) = self.peers.get_mut(&addr) else {
            return;
        };
        let Some(neg) = p.negotiated.as_deref() else {
            return;
        };
        let cap = neg
            .peer_graceful_restart
            .as_ref()
            .filter(|_| neg.graceful_restart);
        let actions = p
            .helper
            .established(cap, &neg.families, Instant::now(), stale_time);
        let converged = self.deferral.established(&addr, cap, &neg.families);
        self.apply_gr(addr, actions);
        if converged {
            self.on_converged();
        }
        self.report_settled();
    }

    pub(super) fn on_end_of_rib(&mut self, addr: IpAddr, family: Family) {
        tracing::debug!(peer = %addr, %family, "End-of-RIB received");
        let Some(p) = self.peers.get_mut(&addr) else {
            return;
        };
        let actions = p.helper.end_of_rib(family);
        self.apply_gr(addr, actions);
        if self.deferral.end_of_rib(&addr, family) {
            self.on_converged();
        }
        self.report_settled();
    }

    /// Our restart deferral is over: say so, stop setting the Restart State bit, and send the
    /// End-of-RIB markers that waited for it.
    pub(super) fn on_converged(&mut self) {
        tracing::info!("bgp initial convergence after restart done");
        for p in self.peers.values() {
            let _ = p.cmd.send(PeerCmd::SetRestarting(false));
        }
        let all: Vec<IpAddr> = self.peers.keys().copied().collect();
        for a in all {
            self.maybe_end_of_rib(a);
        }
    }

    /// Initial convergence for the outside world ([`crate::SpeakerHandle::initial_convergence`]):
    /// the deferral is over and the peers that restarted with us have re-sent their tables too
    /// (`Deferral::settled`), so a dataplane may now drop what nobody re-sent.
    pub(super) fn report_settled(&mut self) {
        if self.deferral.take_settled() {
            // The End-of-RIB may close a batch whose UPDATEs are in the RIB but not yet
            // published: publish them first, so subscribers see the whole table before the flag.
            self.propagate();
            tracing::info!("bgp initial convergence: every peer's End-of-RIB received");
            let _ = self.converged.send(true);
        }
    }

    pub(super) fn fire_timers(&mut self, now: Instant) {
        while let Some(Reverse((t, due))) = self.timers.peek().copied() {
            if t > now {
                break;
            }
            self.timers.pop();
            match due {
                Due::Deferral => {
                    if self.deferral.expire(now) {
                        tracing::info!("bgp restart deferral timer expired");
                        self.on_converged();
                    }
                    self.report_settled();
                }
                Due::RefusedSummary => self.summarize_refused(now),
                Due::Helper(addr, epoch) => {
                    let Some(p) = self.peers.get_mut(&addr).filter(|p| p.epoch == epoch) else {
                        continue;
                    };
                    if p.helper.deadline() != Some(t) {
                        continue; // superseded
                    }
                    let actions = p.helper.expire(now);
                    if actions.contains(&GrAction::Flush) {
                        tracing::info!(peer = %addr, "graceful restart: peer not back in time, routes dropped");
                    }
                    self.apply_gr(addr, actions);
                }
            }
        }
        self.propagate();
    }
}
