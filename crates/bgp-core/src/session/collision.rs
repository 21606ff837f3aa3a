//! Both ends connecting (RFC 4271 §6.8) and a peer connecting again while its session is
//! Established (RFC 4724 §4.2): which connection survives. Both ends must pick the same one
//! whatever the timing, and a connect that merely crossed the session coming up must never
//! pass for a restart of the peer.

use std::time::{Duration, Instant};

use brindle_bgp_wire::notification::cease_sub;
use brindle_bgp_wire::{Notification, OutMessage};

use super::{Conn, Session};
use crate::event::{ConnId, Output};
use crate::negotiate::Negotiated;
use crate::status::{BgpState, LastError};

impl Session {
    pub(super) fn on_accepted(&mut self, id: ConnId, now: Instant, out: &mut Vec<Output>) {
        // One incoming connection in progress at a time (BIRD keeps one too); an Established
        // incoming connection does not count: a restarted peer connects again while we may
        // still see its old session.
        let incoming_busy = self
            .conns
            .iter()
            .any(|c| !c.outgoing && c.state != BgpState::Established);
        if !self.enabled || self.delayed || incoming_busy {
            // BIRD refuses connections while disabled or waiting out an error; the peer retries.
            out.push(Output::Send {
                conn: id,
                msg: OutMessage::Notification(Notification::cease(cease_sub::CONNECTION_REJECTED)),
            });
            out.push(Output::Close(id));
            return;
        }
        // A new connection while Established is usually the peer's connect that crossed ours
        // (both ends active), not a restart: RFC 4724 §4.2 is applied on its OPEN
        // (`on_open`). If the peer did lose the old connection (its host restarted without
        // closing it), a KEEPALIVE there draws a reset from its kernel and the old session
        // ends as a TCP failure, graceful.
        if let Some((est, _)) = self.established()
            && self
                .last_probe
                .is_none_or(|t| now.duration_since(t) >= Duration::from_secs(1))
        {
            self.last_probe = Some(now);
            out.push(Output::Send {
                conn: est,
                msg: OutMessage::Keepalive,
            });
        }
        self.conns.push(Conn {
            id,
            outgoing: false,
            state: BgpState::OpenSent,
            negotiated: None,
        });
        self.send_open(id, out);
    }

    /// The OPEN on `id` was valid (`neg`): closes the losing connection if there are two.
    /// False when `id` lost (it is closed).
    pub(super) fn resolve_collision(&mut self, id: ConnId, neg: &Negotiated, out: &mut Vec<Output>) -> bool {
        // Collision detection (RFC 4271 §6.8).
        let collision = Notification::cease(cease_sub::CONNECTION_COLLISION_RESOLUTION);
        let other = self
            .conns
            .iter()
            .find(|c| c.id != id && c.state != BgpState::Connect)
            .map(|c| (c.id, c.state));
        if let Some((other, other_state)) = other {
            if other_state == BgpState::Established {
                let gr = self
                    .conns
                    .iter()
                    .find(|c| c.id == other)
                    .and_then(|c| c.negotiated.as_ref())
                    .is_some_and(|n| n.graceful_restart);
                let restarted = neg.peer_graceful_restart.as_ref().is_some_and(|g| g.restarting);
                if !(gr && restarted) {
                    // RFC 4271 §6.8: the Established session wins. This is how a connect
                    // that crossed ours ends; a peer that really lost the old connection
                    // gets it reset by the probe (`on_accepted`) and connects again.
                    self.close_with(id, Some(collision), |_| false, out);
                    return false;
                }
                // RFC 4724 §4.2: the peer says it restarted (Restart State bit), so the old
                // session is dead at its end: close it without NOTIFICATION, keep its
                // routes, go on with this one.
                self.close_with(other, None, |_| true, out);
                self.last_error = Some(LastError::Misc("Graceful restart".into()));
                self.after_socket_loss(out);
            } else {
                // The side with the higher identifier keeps the connection it initiated.
                let keep_ours = u32::from(self.cfg.router_id) > u32::from(neg.remote_id);
                let this_outgoing = self.conns.iter().any(|c| c.id == id && c.outgoing);
                let loser = if keep_ours == this_outgoing { other } else { id };
                self.close_with(loser, Some(collision), |_| false, out);
                if loser == id {
                    return false;
                }
            }
        }
        // An OPEN arrived: stop a connect still in progress (BIRD does), so it cannot reach
        // the peer after this session is up there and pass for a restart of ours.
        let connecting: Vec<ConnId> = self
            .conns
            .iter()
            .filter(|c| c.id != id && c.state == BgpState::Connect)
            .map(|c| c.id)
            .collect();
        for c in connecting {
            self.close_with(c, None, |_| false, out);
        }
        true
    }
}
