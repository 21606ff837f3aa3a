//! The BGP session state machine (RFC 4271 §8), sans-IO: [`Session::handle`] takes an
//! [`Input`] and the current time and returns [`Output`]s. It manages up to two connections
//! (ours and the peer's) and resolves collisions by BGP identifier (RFC 4271 §6.8).
//!
//! Restart behaviour follows BIRD, whose behaviour Calico users know: a protocol error (sent or
//! received NOTIFICATION, hold timer expiry) restarts the session after an error wait that
//! doubles from `error_wait_min` to `error_wait_max`; a socket error only waits the connect retry
//! time; a passive session never connects.
//!
//! Graceful restart (RFC 4724, RFC 8538) decides how an Established session ends
//! ([`Output::Down`]'s `graceful`): a TCP failure, or a new connection from a peer that says
//! it restarted (§4.2: the OPEN on it carries the Restart State bit; the old session is taken
//! as dead and the new one accepted), keep the peer's routes; with the N bit on both sides so
//! does any NOTIFICATION but Cease/Hard Reset, which a stop then sends instead of a plain Cease.
//!
//! Both ends may be active, so connections cross. A new connection while Established is not
//! taken for a restart by itself (it is usually the peer's connect that crossed ours): it is
//! accepted, the Established connection is probed with a KEEPALIVE (a peer host that lost it
//! answers with a reset), and on its OPEN it loses to the Established session (§6.8) unless
//! that OPEN says the peer restarted. A Cease, sent or received, is no error (BIRD): it never
//! starts an error wait. Whatever ends, an enabled active session is left with a connection
//! in progress or its connect timer armed.

use std::time::{Duration, Instant};

use brindle_bgp_wire::notification::{cease_sub, code, fsm_sub};
use brindle_bgp_wire::{Message, Notification, Open, OutMessage};

use crate::config::SessionConfig;
use crate::event::{ConnId, Input, Output, Timer};
use crate::negotiate::{self, Negotiated};
use crate::status::{self, BgpState, LastError, ProtoState};

mod collision;

/// RFC 4271 §8.2.2: the hold timer while waiting for the peer's OPEN ("a large value", 4 min).
const OPEN_HOLD: Duration = Duration::from_secs(240);

#[derive(Debug)]
struct Conn {
    id: ConnId,
    outgoing: bool,
    state: BgpState,
    negotiated: Option<Negotiated>,
}

/// A snapshot of the session for status displays.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SessionStatus {
    pub proto: ProtoState,
    pub state: BgpState,
    /// When `proto` last changed (`None` before the first start).
    pub since: Option<Instant>,
    /// BIRD's info column, e.g. `Established`, `Active        Socket: Connection refused`.
    pub info: String,
    pub last_error: Option<LastError>,
}

pub struct Session {
    cfg: SessionConfig,
    local_open: Open,
    enabled: bool,
    /// Waiting out an error before starting again (BIRD's startup delay).
    delayed: bool,
    /// State shown when there is no connection: Idle, or Active while waiting to connect.
    base: BgpState,
    conns: Vec<Conn>,
    next_conn: u64,
    proto: ProtoState,
    since: Option<Instant>,
    last_error: Option<LastError>,
    error_wait: Duration,
    last_error_at: Option<Instant>,
    /// When a KEEPALIVE last probed the Established connection because the peer connected
    /// again (RFC 4271 §4.4: at most one a second).
    last_probe: Option<Instant>,
}

impl Session {
    pub fn new(cfg: SessionConfig) -> Session {
        let local_open = negotiate::local_open(&cfg);
        Session {
            error_wait: Duration::ZERO,
            cfg,
            local_open,
            enabled: false,
            delayed: false,
            base: BgpState::Idle,
            conns: Vec::new(),
            next_conn: 1,
            proto: ProtoState::Down,
            since: None,
            last_error: None,
            last_error_at: None,
            last_probe: None,
        }
    }

    pub fn config(&self) -> &SessionConfig {
        &self.cfg
    }

    /// Sets or clears the Restart State bit of the OPENs sent from now on (RFC 4724 §4.1: set
    /// while this restarted speaker defers its route selection).
    pub fn set_restarting(&mut self, restarting: bool) {
        self.cfg.restarting = restarting;
        self.local_open = negotiate::local_open(&self.cfg);
    }

    /// A passive session connects too while this speaker restarts: the receiving speaker may
    /// wait for us (FRR's "NSF passive" state), and Calico's mesh rule makes half of the
    /// sessions passive. Collision detection sorts out a double connection.
    fn passive(&self) -> bool {
        self.cfg.passive && !self.cfg.restarting
    }

    /// A fresh connection id, for connections the driver accepted (pass it in
    /// [`Input::Accepted`]).
    pub fn next_conn_id(&mut self) -> ConnId {
        let id = ConnId(self.next_conn);
        self.next_conn += 1;
        id
    }

    /// The connection that is Established, if any.
    pub fn established(&self) -> Option<(ConnId, &Negotiated)> {
        self.conns
            .iter()
            .find(|c| c.state == BgpState::Established)
            .and_then(|c| c.negotiated.as_ref().map(|n| (c.id, n)))
    }

    pub fn state(&self) -> BgpState {
        self.conns
            .iter()
            .map(|c| c.state)
            .max()
            .unwrap_or(self.base)
            .max(self.base)
    }

    pub fn status(&self) -> SessionStatus {
        let state = self.state();
        let passive_idle = self.passive() && self.enabled && !self.delayed && state == BgpState::Idle;
        SessionStatus {
            proto: self.proto,
            state,
            since: self.since,
            info: status::info_text(self.proto, state, passive_idle, self.last_error.as_ref()),
            last_error: self.last_error.clone(),
        }
    }

    /// Feeds one input; returns what to do, in order.
    pub fn handle(&mut self, input: Input<'_>, now: Instant) -> Vec<Output> {
        let mut out = Vec::new();
        self.handle_into(input, now, &mut out);
        out
    }

    /// [`Session::handle`] appending to `out`, so a driver feeding many messages reuses one
    /// buffer (an UPDATE stream is one call per message).
    pub fn handle_into(&mut self, input: Input<'_>, now: Instant, out: &mut Vec<Output>) {
        let before = self.state();
        let out = &mut *out;
        match input {
            Input::Start => self.on_start(out),
            Input::Stop { cease_subcode } => self.on_stop(Some(cease_subcode), out),
            Input::Abort => self.on_stop(None, out),
            Input::Connected(id) => self.on_connected(id, out),
            Input::Accepted(id) => self.on_accepted(id, now, out),
            Input::ConnectFailed { conn, error } => {
                if self.remove(conn, out).is_some() {
                    // The driver forgets the attempt too.
                    out.push(Output::Close(conn));
                    self.last_error = Some(LastError::Socket(error));
                    self.after_socket_loss(out);
                }
            }
            Input::Closed { conn, error } => self.on_closed(conn, error, now, out),
            Input::Message { conn, msg } => self.on_message(conn, msg, now, out),
            Input::DecodeError { conn, error } => self.protocol_error(conn, error.notification, now, out),
            Input::TimerExpired(t) => self.on_timer(t, now, out),
        }
        let after = self.state();
        if before != after {
            out.push(Output::StateChanged {
                from: before,
                to: after,
            });
        }
        let proto = if !self.enabled {
            ProtoState::Down
        } else if after == BgpState::Established {
            ProtoState::Up
        } else {
            ProtoState::Start
        };
        if proto != self.proto {
            self.proto = proto;
            self.since = Some(now);
        }
    }

    fn conn_mut(&mut self, id: ConnId) -> Option<&mut Conn> {
        self.conns.iter_mut().find(|c| c.id == id)
    }

    /// Forgets a connection, cancelling its timers; returns it.
    fn remove(&mut self, id: ConnId, out: &mut Vec<Output>) -> Option<Conn> {
        let i = self.conns.iter().position(|c| c.id == id)?;
        let c = self.conns.remove(i);
        if c.state != BgpState::Connect {
            out.push(Output::CancelTimer(Timer::HoldTimer(id)));
            out.push(Output::CancelTimer(Timer::Keepalive(id)));
        }
        Some(c)
    }

    /// Sends a NOTIFICATION on `id` (if OPEN was sent there) and closes it. If it was the
    /// Established connection, reports Down, graceful as `graceful` decides from what was
    /// negotiated.
    fn close_with(
        &mut self,
        id: ConnId,
        n: Option<Notification>,
        graceful: impl FnOnce(&Negotiated) -> bool,
        out: &mut Vec<Output>,
    ) {
        if let Some(c) = self.remove(id, out) {
            if let Some(n) = n.filter(|_| c.state != BgpState::Connect) {
                out.push(Output::Send {
                    conn: id,
                    msg: OutMessage::Notification(n),
                });
            }
            out.push(Output::Close(id));
            if c.state == BgpState::Established {
                let graceful = c.negotiated.as_ref().is_some_and(graceful);
                out.push(Output::Down { graceful });
            }
        }
    }

    fn on_start(&mut self, out: &mut Vec<Output>) {
        if self.enabled {
            return;
        }
        self.enabled = true;
        self.last_error = None;
        self.run(self.cfg.connect_delay, out);
    }

    /// Leaves Idle: a passive session waits for the peer, an active one connects after `delay`.
    fn run(&mut self, delay: Duration, out: &mut Vec<Output>) {
        self.delayed = false;
        if self.passive() {
            self.base = BgpState::Idle;
        } else {
            self.base = BgpState::Active;
            out.push(Output::SetTimer {
                timer: Timer::ConnectRetry,
                after: delay,
            });
        }
    }

    /// ManualStop with a Cease (`Some(subcode)`) or, for a planned restart, without any
    /// NOTIFICATION (`None`).
    fn on_stop(&mut self, subcode: Option<u8>, out: &mut Vec<Output>) {
        let ids: Vec<(ConnId, bool)> = self
            .conns
            .iter()
            .map(|c| (c.id, c.negotiated.as_ref().is_some_and(|n| n.gr_notification)))
            .collect();
        for (id, n_bit) in ids {
            let n = subcode.map(|sub| {
                if n_bit {
                    // RFC 8538 §3: a plain Cease would keep our routes at the peer.
                    Notification::new(code::CEASE, cease_sub::HARD_RESET, vec![code::CEASE, sub])
                } else {
                    Notification::cease(sub)
                }
            });
            self.close_with(id, n, |neg| subcode.is_none() && neg.graceful_restart, out);
        }
        out.push(Output::CancelTimer(Timer::ConnectRetry));
        out.push(Output::CancelTimer(Timer::IdleHold));
        self.enabled = false;
        self.delayed = false;
        self.base = BgpState::Idle;
        self.last_error = None;
    }

    fn send_open(&mut self, id: ConnId, out: &mut Vec<Output>) {
        out.push(Output::Send {
            conn: id,
            msg: OutMessage::Open(self.local_open.clone()),
        });
        out.push(Output::SetTimer {
            timer: Timer::HoldTimer(id),
            after: OPEN_HOLD,
        });
    }

    fn on_connected(&mut self, id: ConnId, out: &mut Vec<Output>) {
        match self.conn_mut(id) {
            Some(c) if c.outgoing && c.state == BgpState::Connect => {
                c.state = BgpState::OpenSent;
                out.push(Output::CancelTimer(Timer::ConnectRetry));
                self.send_open(id, out);
            }
            // A connect we gave up on (stopped, or superseded): drop it.
            _ => out.push(Output::Close(id)),
        }
    }

    /// A socket went away before Established: an active session tries again after the connect
    /// retry time (no error wait, as BIRD).
    fn after_socket_loss(&mut self, out: &mut Vec<Output>) {
        if self.established().is_some() {
            return;
        }
        if self.enabled && !self.delayed && !self.passive() {
            self.base = BgpState::Active;
            if !self.conns.iter().any(|c| c.outgoing) {
                out.push(Output::SetTimer {
                    timer: Timer::ConnectRetry,
                    after: self.cfg.connect_retry,
                });
            }
        }
    }

    fn on_closed(&mut self, id: ConnId, error: Option<String>, now: Instant, out: &mut Vec<Output>) {
        let Some(c) = self.remove(id, out) else {
            return;
        };
        out.push(Output::Close(id));
        if c.state == BgpState::Established || self.established().is_none() {
            // (A crossing connection lost next to the Established one is no error of the
            // session's.)
            self.last_error = Some(LastError::Socket(
                error.unwrap_or_else(|| "Connection closed".into()),
            ));
        }
        if c.state == BgpState::Established {
            // RFC 4724 §4.2: a failed TCP session keeps a graceful peer's routes.
            let graceful = c.negotiated.as_ref().is_some_and(|n| n.graceful_restart);
            out.push(Output::Down { graceful });
            self.session_lost(now, out);
        } else {
            self.after_socket_loss(out);
        }
    }

    /// The Established connection went without an error of ours (socket loss, a Cease): a
    /// connection still in progress carries on (it may be the one the peer kept, e.g. BIRD
    /// taking our crossing connect for a restart), otherwise the session starts again.
    fn session_lost(&mut self, now: Instant, out: &mut Vec<Output>) {
        if self.conns.is_empty() {
            self.restart(false, now, out);
        } else {
            self.after_socket_loss(out);
        }
    }

    /// Restarts the whole session: closes every connection, then either waits the error wait
    /// (after a protocol error) or starts again at once.
    fn restart(&mut self, error_wait: bool, now: Instant, out: &mut Vec<Output>) {
        let ids: Vec<ConnId> = self.conns.iter().map(|c| c.id).collect();
        for id in ids {
            self.close_with(id, None, |n| n.graceful_restart, out);
        }
        out.push(Output::CancelTimer(Timer::ConnectRetry));
        if !self.enabled {
            return;
        }
        if error_wait {
            let recent = self
                .last_error_at
                .is_some_and(|t| now.duration_since(t) < self.cfg.error_forget);
            self.error_wait = if recent && !self.error_wait.is_zero() {
                (self.error_wait * 2).min(self.cfg.error_wait_max)
            } else {
                self.cfg.error_wait_min
            };
            self.last_error_at = Some(now);
            self.delayed = true;
            self.base = BgpState::Idle;
            out.push(Output::SetTimer {
                timer: Timer::IdleHold,
                after: self.error_wait,
            });
        } else {
            self.run(self.cfg.connect_delay, out);
        }
    }

    /// We detected a protocol error on `id`: NOTIFICATION, close, and restart after the error
    /// wait. If another connection is Established, only the faulty one goes.
    fn protocol_error(&mut self, id: ConnId, n: Notification, now: Instant, out: &mut Vec<Output>) {
        let Some(state) = self.conns.iter().find(|c| c.id == id).map(|c| c.state) else {
            return;
        };
        let other_established = self
            .conns
            .iter()
            .any(|c| c.id != id && c.state == BgpState::Established);
        self.close_with(id, Some(n.clone()), |neg| gr_after_notification(neg, &n), out);
        if other_established && state != BgpState::Established {
            return;
        }
        self.last_error = Some(LastError::Sent(n));
        self.restart(true, now, out);
    }

    fn on_message(&mut self, id: ConnId, msg: &Message<'_>, now: Instant, out: &mut Vec<Output>) {
        let Some(state) = self.conns.iter().find(|c| c.id == id).map(|c| c.state) else {
            return;
        };
        if let Message::Notification(n) = msg {
            self.close_with(id, None, |neg| gr_after_notification(neg, n), out);
            let others_up = self.conns.iter().any(|c| c.state == BgpState::Established);
            if others_up {
                return;
            }
            if n.code == code::CEASE {
                // A Cease is no error (BIRD waits no error time after one): the loser of a
                // collision, a refusal while the peer waits, an administrative stop. Another
                // connection in progress carries on; without one, start again.
                if self.conns.is_empty() {
                    self.last_error = Some(LastError::Received(n.clone()));
                }
                if state == BgpState::Established {
                    self.session_lost(now, out);
                } else {
                    self.after_socket_loss(out);
                }
            } else {
                self.last_error = Some(LastError::Received(n.clone()));
                self.restart(true, now, out);
            }
            return;
        }
        match (state, msg) {
            (BgpState::OpenSent, Message::Open(o)) => self.on_open(id, o, now, out),
            (BgpState::OpenConfirm, Message::Keepalive) => self.on_established(id, out),
            (BgpState::Established, Message::Keepalive) => self.restart_hold(id, out),
            (BgpState::Established, Message::Update(_)) => {
                self.restart_hold(id, out);
                out.push(Output::DeliverUpdate { conn: id });
            }
            (BgpState::Established, Message::RouteRefresh(r)) => {
                self.restart_hold(id, out);
                let negotiated = self
                    .established()
                    .is_some_and(|(_, n)| n.route_refresh && n.families.contains(&r.family));
                // RFC 2918 §4: a refresh for a family not negotiated is ignored; RFC 7313's
                // BoRR/EoRR (subtypes 1, 2) mark a peer's re-advertisement, not a request.
                if negotiated && r.subtype == 0 {
                    out.push(Output::RouteRefresh {
                        family: r.family,
                        subtype: r.subtype,
                    });
                }
            }
            (s, _) => {
                let sub = match s {
                    BgpState::OpenSent => fsm_sub::UNEXPECTED_IN_OPENSENT,
                    BgpState::OpenConfirm => fsm_sub::UNEXPECTED_IN_OPENCONFIRM,
                    BgpState::Established => fsm_sub::UNEXPECTED_IN_ESTABLISHED,
                    _ => fsm_sub::UNSPECIFIED,
                };
                self.protocol_error(id, Notification::fsm(sub), now, out);
            }
        }
    }

    fn restart_hold(&mut self, id: ConnId, out: &mut Vec<Output>) {
        let hold = self
            .conns
            .iter()
            .find(|c| c.id == id)
            .and_then(|c| c.negotiated.as_ref())
            .map_or(0, |n| n.hold_time);
        if hold > 0 {
            out.push(Output::SetTimer {
                timer: Timer::HoldTimer(id),
                after: Duration::from_secs(u64::from(hold)),
            });
        }
    }

    fn on_open(&mut self, id: ConnId, open: &Open, now: Instant, out: &mut Vec<Output>) {
        let neg = match negotiate::check_open(&self.cfg, &self.local_open, open) {
            Ok(n) => n,
            Err(n) => return self.protocol_error(id, n, now, out),
        };
        if !self.resolve_collision(id, &neg, out) {
            return;
        }
        let (hold, keepalive) = (neg.hold_time, neg.keepalive);
        if let Some(c) = self.conn_mut(id) {
            c.state = BgpState::OpenConfirm;
            c.negotiated = Some(neg);
        }
        out.push(Output::Send {
            conn: id,
            msg: OutMessage::Keepalive,
        });
        if hold == 0 {
            out.push(Output::CancelTimer(Timer::HoldTimer(id)));
        } else {
            out.push(Output::SetTimer {
                timer: Timer::HoldTimer(id),
                after: Duration::from_secs(u64::from(hold)),
            });
            out.push(Output::SetTimer {
                timer: Timer::Keepalive(id),
                after: Duration::from_secs(u64::from(keepalive)),
            });
        }
    }

    fn on_established(&mut self, id: ConnId, out: &mut Vec<Output>) {
        // Any other connection loses now (RFC 4271 §6.8).
        let others: Vec<ConnId> = self.conns.iter().filter(|c| c.id != id).map(|c| c.id).collect();
        for o in others {
            self.close_with(
                o,
                Some(Notification::cease(cease_sub::CONNECTION_COLLISION_RESOLUTION)),
                |_| false,
                out,
            );
        }
        out.push(Output::CancelTimer(Timer::ConnectRetry));
        self.base = BgpState::Idle;
        self.last_error = None;
        let Some(c) = self.conn_mut(id) else { return };
        c.state = BgpState::Established;
        let neg = c.negotiated.clone().expect("OpenConfirm has negotiated");
        self.restart_hold(id, out);
        out.push(Output::Established {
            conn: id,
            negotiated: Box::new(neg),
        });
    }

    fn on_timer(&mut self, t: Timer, now: Instant, out: &mut Vec<Output>) {
        match t {
            Timer::ConnectRetry => {
                // Not while a connection is ours already or has the peer's OPEN (BIRD):
                // a connect then would only cross the session coming up.
                let busy = self
                    .conns
                    .iter()
                    .any(|c| c.outgoing || matches!(c.state, BgpState::OpenConfirm | BgpState::Established));
                if self.enabled && !self.delayed && !self.passive() && !busy {
                    let id = self.next_conn_id();
                    // As in BIRD, the state is the connection's: Connect, not Active.
                    self.base = BgpState::Idle;
                    self.conns.push(Conn {
                        id,
                        outgoing: true,
                        state: BgpState::Connect,
                        negotiated: None,
                    });
                    out.push(Output::Connect(id));
                }
            }
            Timer::IdleHold => {
                if self.enabled && self.delayed {
                    // BIRD connects at once after the error wait.
                    self.run(Duration::ZERO, out);
                }
            }
            Timer::HoldTimer(id) => {
                if self.conns.iter().any(|c| c.id == id) {
                    self.protocol_error(id, Notification::hold_timer_expired(), now, out);
                }
            }
            Timer::Keepalive(id) => {
                let Some(c) = self.conns.iter().find(|c| c.id == id) else {
                    return;
                };
                let ka = c.negotiated.as_ref().map_or(0, |n| n.keepalive);
                if ka > 0 && matches!(c.state, BgpState::OpenConfirm | BgpState::Established) {
                    out.push(Output::Send {
                        conn: id,
                        msg: OutMessage::Keepalive,
                    });
                    out.push(Output::SetTimer {
                        timer: Timer::Keepalive(id),
                        after: Duration::from_secs(u64::from(ka)),
                    });
                }
            }
        }
    }
}

/// RFC 8538 §4: with the N bit on both sides, a NOTIFICATION (sent or received) keeps the
/// peer's routes, except Cease/Hard Reset.
fn gr_after_notification(neg: &Negotiated, n: &Notification) -> bool {
    let hard = n.code == code::CEASE && n.subcode == cease_sub::HARD_RESET;
    neg.graceful_restart && neg.gr_notification && !hard
}
