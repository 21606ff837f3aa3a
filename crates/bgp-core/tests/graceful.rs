//! Graceful restart (RFC 4724, RFC 8538) as transition tables: how a session ends (graceful or
//! not) for every way it can end, the capability we send, and the pure bookkeeping of both
//! roles (receiving speaker's stale routes, restarting speaker's deferral).

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
const V6: Family = Family::IPV6_UNICAST;

fn ctx() -> Ctx {
    Ctx {
        four_octet_as: true,
        ..Ctx::default()
    }
}

fn gr(restarting: bool, n: bool, families: &[(Family, bool)], time: u16) -> GracefulRestart {
    GracefulRestart {
        restarting,
        notification: n,
        restart_time: time,
        families: families
            .iter()
            .map(|(f, fwd)| GracefulRestartFamily {
                family: *f,
                forwarding_preserved: *fwd,
            })
            .collect(),
    }
}

/// The peer's OPEN, with a graceful restart capability if `cap` is given.
fn peer_open(cap: Option<GracefulRestart>) -> Vec<u8> {
    let mut caps = vec![
        Capability::MultiProtocol(V4),
        Capability::MultiProtocol(V6),
        Capability::RouteRefresh,
    ];
    caps.extend(cap.map(Capability::GracefulRestart));
    OutMessage::Open(Open::new(64512, 90, PEER, caps)).to_bytes(&ctx())
}

impl H {
    /// A passive session Established on an accepted connection with a peer sending `cap`.
    fn established(cap: Option<GracefulRestart>) -> (H, ConnId) {
        let mut h = H {
            s: Session::new(SessionConfig {
                passive: true,
                hold_time: 90,
                ..SessionConfig::calico(64512, 64512, ME)
            }),
            now: Instant::now(),
        };
        h.feed(Input::Start);
        let c = h.s.next_conn_id();
        h.feed(Input::Accepted(c));
        h.msg(c, &peer_open(cap));
        let out = h.msg(c, &OutMessage::Keepalive.to_bytes(&ctx()));
        assert!(out.iter().any(|o| matches!(o, Output::Established { .. })));
        (h, c)
    }
}

fn down(out: &[Output]) -> Option<bool> {
    out.iter().find_map(|o| match o {
        Output::Down { graceful } => Some(*graceful),
        _ => None,
    })
}

fn notification(out: &[Output]) -> Option<(u8, u8, Vec<u8>)> {
    out.iter().find_map(|o| match o {
        Output::Send {
            msg: OutMessage::Notification(n),
            ..
        } => Some((n.code, n.subcode, n.data.clone())),
        _ => None,
    })
}

#[test]
fn our_capability_carries_r_f_and_n_bits() {
    let cfg = SessionConfig::calico(64512, 64512, ME);
    let o = negotiate::local_open(&cfg);
    let g = o.graceful_restart().expect("advertised");
    // Steady state: our forwarding survives a session loss, N bit on, not restarting.
    assert_eq!(*g, gr(false, true, &[(V4, true), (V6, true)], 120));
    let restarted = SessionConfig {
        restarting: true,
        forwarding_preserved: false,
        graceful_restart: Some(300),
        ..cfg.clone()
    };
    let g = negotiate::local_open(&restarted)
        .graceful_restart()
        .cloned()
        .unwrap();
    assert_eq!(g, gr(true, true, &[(V4, false), (V6, false)], 300));
    // The R bit goes once the deferral is over: later OPENs do not carry it.
    let mut s = Session::new(SessionConfig {
        restarting: true,
        ..cfg.clone()
    });
    s.set_restarting(false);
    let now = Instant::now();
    s.handle(Input::Start, now);
    let c = s.next_conn_id();
    let out = s.handle(Input::Accepted(c), now);
    let Some(OutMessage::Open(o)) = out.iter().find_map(|o| match o {
        Output::Send { msg, .. } => Some(msg.clone()),
        _ => None,
    }) else {
        panic!("{out:?}")
    };
    assert!(!o.graceful_restart().unwrap().restarting);
    // Restart time is 12 bits on the wire.
    let long = SessionConfig {
        graceful_restart: Some(10_000),
        ..cfg.clone()
    };
    assert_eq!(
        negotiate::local_open(&long)
            .graceful_restart()
            .unwrap()
            .restart_time,
        4095
    );
    // Graceful restart off: no capability.
    let off = SessionConfig {
        graceful_restart: None,
        ..cfg
    };
    assert!(negotiate::local_open(&off).graceful_restart().is_none());
}

#[test]
fn how_an_established_session_ends() {
    let with_n = || Some(gr(false, true, &[(V4, true)], 120));
    let without_n = || Some(gr(false, false, &[(V4, true)], 120));
    type Case = (
        &'static str,
        Option<GracefulRestart>,
        fn(&mut H, ConnId) -> Vec<Output>,
        bool,
    );
    let hold: fn(&mut H, ConnId) -> Vec<Output> = |h, c| h.feed(Input::TimerExpired(Timer::HoldTimer(c)));
    let closed: fn(&mut H, ConnId) -> Vec<Output> = |h, c| h.feed(Input::Closed { conn: c, error: None });
    let reset: fn(&mut H, ConnId) -> Vec<Output> = |h, c| {
        h.feed(Input::Closed {
            conn: c,
            error: Some("Connection reset by peer".into()),
        })
    };
    let cease: fn(&mut H, ConnId) -> Vec<Output> = |h, c| {
        let n = OutMessage::Notification(Notification::cease(cease_sub::ADMINISTRATIVE_SHUTDOWN));
        h.msg(c, &n.to_bytes(&ctx()))
    };
    let hard: fn(&mut H, ConnId) -> Vec<Output> = |h, c| {
        let n = Notification::new(code::CEASE, cease_sub::HARD_RESET, vec![6, 2]);
        h.msg(c, &OutMessage::Notification(n).to_bytes(&ctx()))
    };
    let cases: Vec<Case> = vec![
        // RFC 4724 §4.2: a TCP failure keeps a graceful peer's routes...
        ("peer closes, GR", with_n(), closed, true),
        ("peer resets, GR", with_n(), reset, true),
        ("peer closes, GR without N", without_n(), closed, true),
        // ...but not a peer without the capability.
        ("peer closes, no GR", None, closed, false),
        // RFC 4724 §4: a NOTIFICATION is a normal close; RFC 8538: not with N on both sides.
        ("Cease received, no N", without_n(), cease, false),
        ("Cease received, N", with_n(), cease, true),
        ("Hard Reset received, N", with_n(), hard, false),
        ("hold timer, no N", without_n(), hold, false),
        ("hold timer, N", with_n(), hold, true),
    ];
    for (name, cap, f, graceful) in cases {
        let (mut h, c) = H::established(cap);
        let out = f(&mut h, c);
        assert_eq!(down(&out), Some(graceful), "{name}: {out:?}");
    }
}

#[test]
fn stopping_flushes_or_keeps_as_asked() {
    // Stop with N negotiated: Cease/Hard Reset carrying the reason, so the peer flushes.
    let (mut h, _) = H::established(Some(gr(false, true, &[(V4, true)], 120)));
    let out = h.feed(Input::Stop {
        cease_subcode: cease_sub::PEER_DECONFIGURED,
    });
    assert_eq!(notification(&out), Some((6, 9, vec![6, 3])));
    assert_eq!(down(&out), Some(false));
    // Without N: a plain Cease.
    let (mut h, _) = H::established(Some(gr(false, false, &[(V4, true)], 120)));
    let out = h.feed(Input::Stop {
        cease_subcode: cease_sub::ADMINISTRATIVE_SHUTDOWN,
    });
    assert_eq!(notification(&out), Some((6, 2, vec![])));
    // Abort (a planned restart of this speaker): no NOTIFICATION at all, the peer keeps our
    // routes.
    let (mut h, c) = H::established(Some(gr(false, true, &[(V4, true)], 120)));
    let out = h.feed(Input::Abort);
    assert_eq!(notification(&out), None);
    assert!(out.contains(&Output::Close(c)));
    assert_eq!(down(&out), Some(true));
    assert_eq!(h.s.status().proto, ProtoState::Down);
}

#[test]
fn a_new_connection_replaces_a_restarted_peers_session() {
    // RFC 4724 §4.2: the peer restarted and connects again while we still see the old
    // session. The connection is accepted (the old one probed with a KEEPALIVE); its OPEN
    // says the peer restarted (R bit): the old one goes (no NOTIFICATION, routes kept).
    let (mut h, old) = H::established(Some(gr(false, false, &[(V4, true)], 120)));
    let new = h.s.next_conn_id();
    let out = h.feed(Input::Accepted(new));
    assert_eq!(down(&out), None, "{out:?}");
    assert!(
        out.iter()
            .any(|o| matches!(o, Output::Send { conn, msg: OutMessage::Open(_) } if *conn == new)),
        "{out:?}"
    );
    let out = h.msg(new, &peer_open(Some(gr(true, false, &[(V4, true)], 120))));
    assert_eq!(down(&out), Some(true), "{out:?}");
    assert!(out.contains(&Output::Close(old)));
    assert!(
        !out.iter()
            .any(|o| matches!(o, Output::Send { conn, msg: OutMessage::Notification(_) } if *conn == old))
    );
    let out = h.msg(new, &OutMessage::Keepalive.to_bytes(&ctx()));
    let neg = out
        .iter()
        .find_map(|o| match o {
            Output::Established { negotiated, .. } => Some(negotiated.clone()),
            _ => None,
        })
        .expect("Established again");
    assert!(neg.peer_graceful_restart.unwrap().restarting);
    // Without the capability the Established session wins: the new connection's OPEN gets
    // Cease/Connection Collision Resolution (RFC 4271 §6.8).
    let (mut h, _) = H::established(None);
    let c2 = h.s.next_conn_id();
    h.feed(Input::Accepted(c2));
    let out = h.msg(c2, &peer_open(None));
    assert_eq!(down(&out), None);
    assert_eq!(notification(&out), Some((6, 7, vec![])));
    assert!(out.contains(&Output::Close(c2)));
    assert_eq!(h.s.state(), BgpState::Established);
}

#[test]
fn helper_keeps_then_sweeps() {
    let t0 = Instant::now();
    let cap = gr(false, false, &[(V4, true), (V6, true)], 120);
    let mut h = Helper::new();
    // Down gracefully: both families kept, restart timer at the peer's restart time.
    assert_eq!(
        h.down(true, Some(&cap), &[V4, V6], t0),
        [GrAction::MarkStale(vec![V4, V6])]
    );
    assert_eq!(h.deadline(), Some(t0 + Duration::from_secs(120)));
    assert!(h.restarting());
    // Back with F set for IPv4 only: IPv6's stale routes go at once; IPv4's wait for EoR,
    // bounded by the stale time.
    let t1 = t0 + Duration::from_secs(30);
    let back = gr(true, false, &[(V4, true), (V6, false)], 120);
    assert_eq!(
        h.established(Some(&back), &[V4, V6], t1, Duration::from_secs(360)),
        [GrAction::Sweep(vec![V6])]
    );
    assert_eq!(h.deadline(), Some(t1 + Duration::from_secs(360)));
    assert_eq!(h.end_of_rib(V6), []);
    assert_eq!(h.end_of_rib(V4), [GrAction::Sweep(vec![V4])]);
    assert!(!h.has_stale());
    assert_eq!(h.deadline(), None);

    // Not back within the restart time: everything goes.
    let mut h = Helper::new();
    h.down(true, Some(&cap), &[V4], t0);
    assert_eq!(h.expire(t0 + Duration::from_secs(119)), []);
    assert_eq!(h.expire(t0 + Duration::from_secs(120)), [GrAction::Flush]);

    // Back, but no End-of-RIB within the stale time: the stale routes go.
    let mut h = Helper::new();
    h.down(true, Some(&cap), &[V4], t0);
    h.established(Some(&cap), &[V4], t1, Duration::from_secs(10));
    assert_eq!(
        h.expire(t1 + Duration::from_secs(10)),
        [GrAction::Sweep(vec![V4])]
    );

    // Back without the capability: the stale routes go at once.
    let mut h = Helper::new();
    h.down(true, Some(&cap), &[V4], t0);
    assert_eq!(
        h.established(None, &[V4], t1, Duration::from_secs(360)),
        [GrAction::Sweep(vec![V4])]
    );

    // Consecutive restart before End-of-RIB: MarkStale again (the RIB deletes what was never
    // refreshed) and the restart timer starts over.
    let mut h = Helper::new();
    h.down(true, Some(&cap), &[V4], t0);
    h.established(Some(&cap), &[V4], t1, Duration::from_secs(360));
    let t2 = t1 + Duration::from_secs(5);
    assert_eq!(
        h.down(true, Some(&cap), &[V4], t2),
        [GrAction::MarkStale(vec![V4])]
    );
    assert_eq!(h.deadline(), Some(t2 + Duration::from_secs(120)));

    // Not graceful, no capability, restart time 0, or no common family: flush.
    for (graceful, c, fams) in [
        (false, Some(cap.clone()), vec![V4]),
        (true, None, vec![V4]),
        (true, Some(gr(false, false, &[(V4, true)], 0)), vec![V4]),
        (true, Some(gr(false, false, &[(V6, true)], 120)), vec![V4]),
    ] {
        let mut h = Helper::new();
        assert_eq!(h.down(graceful, c.as_ref(), &fams, t0), [GrAction::Flush]);
        assert_eq!(h.deadline(), None);
    }
}

#[test]
fn restarting_speaker_defers_until_every_end_of_rib() {
    let t0 = Instant::now();
    let (a, b, c, d) = ("a", "b", "c", "d");
    let mut dfr: Deferral<&str> = Deferral::new(t0, Duration::from_secs(120));
    assert!(!dfr.done());
    // Nothing is decided before the peers are known.
    assert!(!dfr.end_of_rib(&a, V4));
    assert!(!dfr.set_peers([a, b, c, d]));
    let cap = gr(false, false, &[(V4, true)], 120);
    // a: GR, must send EoR for both families; b: no capability (excluded); c: restarted too
    // (R bit, excluded); d: never comes up.
    dfr.established(&a, Some(&cap), &[V4, V6]);
    dfr.established(&b, None, &[V4]);
    dfr.established(&c, Some(&gr(true, false, &[(V4, true)], 120)), &[V4]);
    assert!(!dfr.end_of_rib(&a, V4));
    assert!(!dfr.end_of_rib(&a, V6));
    assert!(!dfr.done(), "d is still missing");
    // d is deconfigured: the deferral is done (RFC 4724 §4.1 does not wait for c)…
    assert!(dfr.set_peers([a, b, c]));
    assert!(dfr.done());
    // …but c's table is still coming: not settled until its End-of-RIB, and the deadline
    // still bounds that.
    assert!(!dfr.settled() && !dfr.take_settled());
    assert_eq!(dfr.deadline(), Some(t0 + Duration::from_secs(120)));
    assert!(!dfr.end_of_rib(&c, V4));
    assert!(dfr.settled());
    assert!(dfr.take_settled());
    assert!(!dfr.take_settled(), "told once");
    assert_eq!(dfr.deadline(), None);

    // A peer that never sends End-of-RIB holds it until the deferral timer.
    let mut dfr: Deferral<&str> = Deferral::new(t0, Duration::from_secs(120));
    dfr.set_peers([a]);
    dfr.established(&a, Some(&cap), &[V4]);
    assert!(!dfr.expire(t0 + Duration::from_secs(119)));
    assert!(dfr.expire(t0 + Duration::from_secs(120)));
    assert!(dfr.done());

    // No peers at all: converged as soon as that is known.
    let mut dfr: Deferral<&str> = Deferral::new(t0, Duration::from_secs(120));
    assert!(dfr.set_peers([]));
    assert!(Deferral::<&str>::converged().done());
}

#[test]
fn a_whole_mesh_restarting_at_once_settles_only_with_every_table() {
    // Every node restarted (a settings change restarts every speaker): each peer comes back
    // with its R bit, so §4.1's deferral is done at once, before a single route arrived.
    // Settled waits for their End-of-RIB; a peer that flaps starts over; the timer bounds it.
    let t0 = Instant::now();
    let r = gr(true, false, &[(V4, true)], 120);
    let mut dfr: Deferral<&str> = Deferral::new(t0, Duration::from_secs(120));
    dfr.set_peers(["a", "b"]);
    dfr.established(&"a", Some(&r), &[V4]);
    assert!(!dfr.done(), "b is not up yet");
    assert!(dfr.established(&"b", Some(&r), &[V4]), "done: both excluded");
    assert!(!dfr.settled());
    dfr.end_of_rib(&"a", V4);
    assert!(!dfr.settled(), "b's table is missing");
    dfr.established(&"a", Some(&r), &[V4]);
    dfr.end_of_rib(&"b", V4);
    assert!(!dfr.settled(), "a flapped and must send its table again");
    dfr.end_of_rib(&"a", V4);
    assert!(dfr.settled() && dfr.take_settled());

    // A restarted peer that goes quiet: the deadline settles it, without a second "done".
    let mut dfr: Deferral<&str> = Deferral::new(t0, Duration::from_secs(120));
    dfr.set_peers(["a"]);
    assert!(dfr.established(&"a", Some(&r), &[V4]));
    assert!(!dfr.expire(t0 + Duration::from_secs(119)));
    assert!(!dfr.settled());
    assert!(!dfr.expire(t0 + Duration::from_secs(120)), "already done");
    assert!(dfr.settled());

    // A restarted peer deconfigured: nothing left to wait for.
    let mut dfr: Deferral<&str> = Deferral::new(t0, Duration::from_secs(120));
    dfr.set_peers(["a", "b"]);
    dfr.established(&"a", Some(&r), &[V4]);
    dfr.established(&"b", None, &[V4]);
    assert!(dfr.done() && !dfr.settled());
    dfr.set_peers(["b"]);
    assert!(dfr.settled());
}

#[test]
fn a_restarting_passive_session_connects() {
    // FRR as receiving speaker waits for the restarting peer ("NSF passive"): a session that
    // Calico's mesh rule makes passive connects while we restart, and stays passive after.
    let cfg = SessionConfig {
        passive: true,
        restarting: true,
        ..SessionConfig::calico(64512, 64512, ME)
    };
    let mut s = Session::new(cfg);
    let now = Instant::now();
    let out = s.handle(Input::Start, now);
    assert!(
        out.iter().any(|o| matches!(
            o,
            Output::SetTimer {
                timer: Timer::ConnectRetry,
                ..
            }
        )),
        "{out:?}"
    );
    let out = s.handle(Input::TimerExpired(Timer::ConnectRetry), now);
    assert!(matches!(out.first(), Some(Output::Connect(_))), "{out:?}");
    // Converged: passive again.
    let mut s = Session::new(SessionConfig {
        passive: true,
        ..SessionConfig::calico(64512, 64512, ME)
    });
    s.handle(Input::Start, now);
    let out = s.handle(Input::TimerExpired(Timer::ConnectRetry), now);
    assert!(!out.iter().any(|o| matches!(o, Output::Connect(_))));
    assert_eq!(s.status().info, "Passive");
}
