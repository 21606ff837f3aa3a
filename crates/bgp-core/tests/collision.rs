//! Both ends active, graceful restart on (RFC 4271 §6.8, RFC 4724 §4.2) as transition
//! tables: a connection that crosses an Established session loses to it (no restart is
//! inferred from it), a peer that says it restarted replaces its session, a Cease never
//! starts an error wait, a session loss lets a connection in progress carry on, and — checked
//! over random event sequences — an enabled active session is never left with no connection
//! and no timer to make one.

use std::collections::BTreeSet;
use std::net::Ipv4Addr;
use std::time::{Duration, Instant};

use brindle_bgp_core::*;
use brindle_bgp_wire::notification::*;
use brindle_bgp_wire::*;
mod driver;
use driver::H;

const ME: Ipv4Addr = Ipv4Addr::new(172, 20, 42, 81);
const PEER: Ipv4Addr = Ipv4Addr::new(172, 20, 42, 82);
const V4: Family = Family::IPV4_UNICAST;

fn ctx() -> Ctx {
    Ctx {
        four_octet_as: true,
        ..Ctx::default()
    }
}

fn gr(restarting: bool) -> GracefulRestart {
    GracefulRestart {
        restarting,
        notification: true,
        restart_time: 120,
        families: vec![GracefulRestartFamily {
            family: V4,
            forwarding_preserved: true,
        }],
    }
}

/// The peer's OPEN, with the graceful restart capability (`Some(R bit)`) or without.
fn open(restart_bit: Option<bool>) -> Vec<u8> {
    let mut caps = vec![Capability::MultiProtocol(V4), Capability::RouteRefresh];
    caps.extend(restart_bit.map(|r| Capability::GracefulRestart(gr(r))));
    OutMessage::Open(Open::new(64512, 90, PEER, caps)).to_bytes(&ctx())
}

fn keepalive() -> Vec<u8> {
    OutMessage::Keepalive.to_bytes(&ctx())
}

fn cease(sub: u8) -> Vec<u8> {
    OutMessage::Notification(Notification::cease(sub)).to_bytes(&ctx())
}

impl H {
    fn new(gr_on: bool) -> H {
        let mut s = Session::new(SessionConfig {
            hold_time: 90,
            graceful_restart: gr_on.then_some(120),
            ..SessionConfig::calico(64512, 64512, ME)
        });
        let now = Instant::now();
        s.handle(Input::Start, now);
        H { s, now }
    }
    fn connect(&mut self) -> ConnId {
        let out = self.feed(Input::TimerExpired(Timer::ConnectRetry));
        match out.first() {
            Some(Output::Connect(c)) => *c,
            _ => panic!("no connect: {out:?}"),
        }
    }
    fn accept(&mut self) -> (ConnId, Vec<Output>) {
        let c = self.s.next_conn_id();
        let out = self.feed(Input::Accepted(c));
        (c, out)
    }
    /// Established on our own connection with a peer advertising graceful restart (or not).
    fn established(gr_on: bool) -> (H, ConnId) {
        let mut h = H::new(gr_on);
        let c = h.connect();
        h.feed(Input::Connected(c));
        h.msg(c, &open(gr_on.then_some(false)));
        let out = h.msg(c, &keepalive());
        assert!(established_on(&out, c), "{out:?}");
        (h, c)
    }
}

fn down(out: &[Output]) -> Option<bool> {
    out.iter().find_map(|o| match o {
        Output::Down { graceful } => Some(*graceful),
        _ => None,
    })
}

fn sent(out: &[Output], on: ConnId) -> Vec<&OutMessage> {
    out.iter()
        .filter_map(|o| match o {
            Output::Send { conn, msg } if *conn == on => Some(msg),
            _ => None,
        })
        .collect()
}

fn notification_on(out: &[Output], on: ConnId) -> Option<(u8, u8)> {
    sent(out, on).into_iter().find_map(|m| match m {
        OutMessage::Notification(n) => Some((n.code, n.subcode)),
        _ => None,
    })
}

fn established_on(out: &[Output], on: ConnId) -> bool {
    out.iter()
        .any(|o| matches!(o, Output::Established { conn, .. } if *conn == on))
}

fn arms(out: &[Output], timer: Timer) -> bool {
    out.iter()
        .any(|o| matches!(o, Output::SetTimer { timer: t, .. } if *t == timer))
}

#[test]
fn a_crossing_connection_loses_to_the_established_session() {
    // The peer's connect crossed ours and arrives once our session is up: accepted (no
    // restart inferred), the Established connection probed with a KEEPALIVE, and on its OPEN
    // (no Restart State bit) the new connection gets Cease/Connection Collision Resolution.
    let (mut h, est) = H::established(true);
    let (new, out) = h.accept();
    assert_eq!(down(&out), None, "{out:?}");
    assert!(!out.contains(&Output::Close(est)));
    assert_eq!(sent(&out, est), [&OutMessage::Keepalive], "probe");
    assert!(matches!(sent(&out, new)[..], [OutMessage::Open(_)]), "{out:?}");
    let out = h.msg(new, &open(Some(false)));
    assert_eq!(
        notification_on(&out, new),
        Some((code::CEASE, cease_sub::CONNECTION_COLLISION_RESOLUTION))
    );
    assert!(out.contains(&Output::Close(new)));
    assert_eq!(down(&out), None);
    assert_eq!(h.s.state(), BgpState::Established);
    assert_eq!(h.s.status().info, "Established");
    // The peer's Cease on its losing connection arrives after: nothing changes.
    let out = h.msg(new, &cease(cease_sub::CONNECTION_COLLISION_RESOLUTION));
    assert!(out.is_empty(), "{out:?}");
    // Another one within a second is not probed again (RFC 4271 §4.4); the same without
    // graceful restart.
    let (_, out) = h.accept();
    assert!(sent(&out, est).is_empty(), "{out:?}");
    let (mut h, est) = H::established(false);
    let (new, out) = h.accept();
    assert_eq!(sent(&out, est), [&OutMessage::Keepalive]);
    let out = h.msg(new, &open(None));
    assert_eq!(notification_on(&out, new), Some((6, 7)));
    assert_eq!(h.s.state(), BgpState::Established);
}

#[test]
fn a_peer_that_says_it_restarted_replaces_its_session() {
    // RFC 4724 §4.2 with the Restart State bit: the old connection closes without
    // NOTIFICATION, Down is graceful, the new connection goes on to Established.
    let (mut h, old) = H::established(true);
    let (new, _) = h.accept();
    let out = h.msg(new, &open(Some(true)));
    assert_eq!(down(&out), Some(true), "{out:?}");
    assert!(out.contains(&Output::Close(old)));
    assert!(
        sent(&out, old).is_empty(),
        "no NOTIFICATION on the old one: {out:?}"
    );
    assert_eq!(sent(&out, new), [&OutMessage::Keepalive]);
    let out = h.msg(new, &keepalive());
    assert!(established_on(&out, new), "{out:?}");
    // The R bit without graceful restart negotiated on the old session proves nothing.
    let (mut h, _) = H::established(false);
    let (new, _) = h.accept();
    let out = h.msg(new, &open(Some(true)));
    assert_eq!((down(&out), notification_on(&out, new)), (None, Some((6, 7))));
}

#[test]
fn a_cease_starts_no_error_wait() {
    // The only connection loses a collision at the peer (or is refused while the peer waits
    // out an error): connect again after the connect retry time, accept meanwhile.
    for sub in [
        cease_sub::CONNECTION_COLLISION_RESOLUTION,
        cease_sub::CONNECTION_REJECTED,
    ] {
        let mut h = H::new(true);
        let c = h.connect();
        h.feed(Input::Connected(c));
        let out = h.msg(c, &cease(sub));
        assert!(!arms(&out, Timer::IdleHold), "{sub}: {out:?}");
        assert!(
            out.contains(&Output::SetTimer {
                timer: Timer::ConnectRetry,
                after: Duration::from_secs(5)
            }),
            "{sub}: {out:?}"
        );
        let (a, out) = h.accept();
        assert!(
            matches!(sent(&out, a)[..], [OutMessage::Open(_)]),
            "{sub}: {out:?}"
        );
    }
    // On the Established session (the peer's collision rule picked the other connection, or
    // it was shut down): Down (graceful with the N bit), then start again after the connect
    // delay, no error wait.
    let (mut h, est) = H::established(true);
    let out = h.msg(est, &cease(cease_sub::CONNECTION_COLLISION_RESOLUTION));
    assert_eq!(down(&out), Some(true));
    assert!(!arms(&out, Timer::IdleHold), "{out:?}");
    assert!(out.contains(&Output::SetTimer {
        timer: Timer::ConnectRetry,
        after: Duration::from_secs(2)
    }));
    // Any other NOTIFICATION still waits (BIRD's error wait).
    let (mut h, est) = H::established(true);
    let n = OutMessage::Notification(Notification::hold_timer_expired()).to_bytes(&ctx());
    assert!(arms(&h.msg(est, &n), Timer::IdleHold));
}

#[test]
fn a_connection_in_progress_survives_the_session_it_replaces() {
    // The peer (BIRD) took our crossing connect for a restart and closed the Established
    // connection: the connection it accepted goes on.
    let mut h = H::new(true);
    let (theirs, _) = h.accept();
    h.msg(theirs, &open(Some(false)));
    let out = h.msg(theirs, &keepalive());
    assert!(established_on(&out, theirs));
    // (Our connect was stopped by their OPEN; say one got through before.)
    let (mut h, est) = H::established(true);
    let (new, _) = h.accept();
    let out = h.feed(Input::Closed {
        conn: est,
        error: None,
    });
    assert_eq!(down(&out), Some(true));
    assert!(!out.contains(&Output::Close(new)), "{out:?}");
    h.msg(new, &open(Some(false)));
    let out = h.msg(new, &keepalive());
    assert!(established_on(&out, new), "{out:?}");
}

#[test]
fn an_open_stops_a_connect_in_progress_and_the_connect_timer() {
    let mut h = H::new(true);
    let ours = h.connect();
    let (theirs, _) = h.accept();
    let out = h.msg(theirs, &open(Some(false)));
    assert!(out.contains(&Output::Close(ours)), "{out:?}");
    // A connect timer firing now (armed before) makes no connection.
    let out = h.feed(Input::TimerExpired(Timer::ConnectRetry));
    assert!(!out.iter().any(|o| matches!(o, Output::Connect(_))), "{out:?}");
    // A failed connect is forgotten by the driver too.
    let mut h = H::new(true);
    let c = h.connect();
    let out = h.feed(Input::ConnectFailed {
        conn: c,
        error: "Connection refused".into(),
    });
    assert!(out.contains(&Output::Close(c)), "{out:?}");
}

/// xorshift64*: the sequences are random but the same on every run.
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: usize) -> usize {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        (self.0.wrapping_mul(0x2545_f491_4f6c_dd1d) >> 33) as usize % n
    }
}

/// The driver's view of one session: the connections it holds and the timers armed.
#[derive(Default)]
struct Driver {
    conns: BTreeSet<ConnId>,
    pending: BTreeSet<ConnId>,
    timers: Vec<Timer>,
}

impl Driver {
    fn apply(&mut self, out: &[Output]) {
        for o in out {
            match o {
                Output::Connect(c) => {
                    self.pending.insert(*c);
                }
                Output::Close(c) => {
                    self.conns.remove(c);
                    self.pending.remove(c);
                }
                Output::SetTimer { timer, .. } if !self.timers.contains(timer) => self.timers.push(*timer),
                Output::CancelTimer(t) => self.timers.retain(|x| x != t),
                _ => {}
            }
        }
    }
}

#[test]
fn an_active_session_always_gets_back_to_connecting() {
    let msgs = [
        open(Some(false)),
        open(Some(true)),
        open(None),
        keepalive(),
        cease(cease_sub::CONNECTION_COLLISION_RESOLUTION),
        cease(cease_sub::CONNECTION_REJECTED),
        OutMessage::Notification(Notification::hold_timer_expired()).to_bytes(&ctx()),
    ];
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    for run in 0..3000 {
        let mut h = H::new(rng.below(4) != 0);
        let mut d = Driver::default();
        d.timers.push(Timer::ConnectRetry);
        let mut trace = Vec::new();
        for _ in 0..40 {
            let live: Vec<ConnId> = d.conns.iter().copied().collect();
            let pending: Vec<ConnId> = d.pending.iter().copied().collect();
            let step = rng.below(6);
            let (what, out) = match step {
                0 if !d.timers.is_empty() => {
                    let t = d.timers.remove(rng.below(d.timers.len()));
                    (format!("{t:?} fires"), h.feed(Input::TimerExpired(t)))
                }
                1 if !pending.is_empty() => {
                    let c = pending[rng.below(pending.len())];
                    d.pending.remove(&c);
                    if rng.below(2) == 0 {
                        d.conns.insert(c);
                        (format!("{c:?} connected"), h.feed(Input::Connected(c)))
                    } else {
                        let error = "Connection refused".to_string();
                        (
                            format!("{c:?} refused"),
                            h.feed(Input::ConnectFailed { conn: c, error }),
                        )
                    }
                }
                2 => {
                    let (c, out) = h.accept();
                    d.conns.insert(c);
                    (format!("{c:?} accepted"), out)
                }
                3 if !live.is_empty() => {
                    let c = live[rng.below(live.len())];
                    let out = h.feed(Input::Closed { conn: c, error: None });
                    d.conns.remove(&c);
                    (format!("{c:?} closed"), out)
                }
                _ if !live.is_empty() => {
                    let c = live[rng.below(live.len())];
                    let m = rng.below(msgs.len());
                    (format!("{c:?} gets message {m}"), h.msg(c, &msgs[m]))
                }
                _ => continue,
            };
            d.apply(&out);
            trace.push(what);
            let idle = d.conns.is_empty() && d.pending.is_empty();
            let can_connect = d.timers.contains(&Timer::ConnectRetry) || d.timers.contains(&Timer::IdleHold);
            assert!(
                !idle || can_connect,
                "run {run}: no connection and no timer to make one after {trace:?}\n{:?}",
                h.s.status()
            );
            // At most one connection Established, and the session agrees with the driver.
            assert!(d.conns.len() + d.pending.len() <= 2, "run {run}: {trace:?}");
        }
    }
}
