//! The session state machine as transition tables: state + input → outputs + next state, and
//! every NOTIFICATION the session sends, with BIRD's status text at each step.

use std::net::Ipv4Addr;
use std::time::{Duration, Instant};

use brindle_bgp_core::*;
use brindle_bgp_wire::notification::*;
use brindle_bgp_wire::*;
mod driver;
use driver::H;

const ME: Ipv4Addr = Ipv4Addr::new(172, 20, 42, 81);
const PEER: Ipv4Addr = Ipv4Addr::new(172, 20, 42, 82);

fn cfg(passive: bool) -> SessionConfig {
    SessionConfig {
        passive,
        hold_time: 90,
        ..SessionConfig::calico(64512, 64512, ME)
    }
}

fn open_bytes(asn: u32, id: Ipv4Addr, hold: u16) -> Vec<u8> {
    let o = Open::new(
        asn,
        hold,
        id,
        vec![
            Capability::MultiProtocol(Family::IPV4_UNICAST),
            Capability::RouteRefresh,
        ],
    );
    OutMessage::Open(o).to_bytes(&Ctx::default())
}

fn bytes_of(m: OutMessage) -> Vec<u8> {
    m.to_bytes(&Ctx::default())
}

impl H {
    fn new(passive: bool) -> H {
        H {
            s: Session::new(cfg(passive)),
            now: Instant::now(),
        }
    }
    fn info(&self) -> String {
        self.s.status().info
    }
    /// Start (active) → connect → OPEN exchange → Established, on connection 1.
    fn established(passive: bool) -> (H, ConnId) {
        let mut h = H::new(passive);
        h.feed(Input::Start);
        let c = if passive {
            let c = h.s.next_conn_id();
            h.feed(Input::Accepted(c));
            c
        } else {
            let out = h.feed(Input::TimerExpired(Timer::ConnectRetry));
            let Some(Output::Connect(c)) = out.first().cloned() else {
                panic!("{out:?}")
            };
            h.feed(Input::Connected(c));
            c
        };
        h.msg(c, &open_bytes(64512, PEER, 90));
        let out = h.msg(c, &bytes_of(OutMessage::Keepalive));
        assert!(
            out.iter().any(|o| matches!(o, Output::Established { .. })),
            "{out:?}"
        );
        (h, c)
    }
}

fn sends(out: &[Output]) -> Vec<&OutMessage> {
    out.iter()
        .filter_map(|o| match o {
            Output::Send { msg, .. } => Some(msg),
            _ => None,
        })
        .collect()
}

/// Code, subcode and data of a NOTIFICATION.
type Want = (u8, u8, Vec<u8>);

fn notification(out: &[Output]) -> Option<Want> {
    sends(out).into_iter().find_map(|m| match m {
        OutMessage::Notification(n) => Some((n.code, n.subcode, n.data.clone())),
        _ => None,
    })
}

fn has(out: &[Output], f: impl Fn(&Output) -> bool) -> bool {
    out.iter().any(f)
}

#[test]
fn active_session_transition_table() {
    let mut h = H::new(false);
    assert_eq!(h.s.status().proto, ProtoState::Down);
    // Idle --Start--> Active, connect delay armed (Calico: 2 s)
    let out = h.feed(Input::Start);
    assert_eq!(h.s.state(), BgpState::Active);
    assert!(has(&out, |o| *o
        == Output::SetTimer {
            timer: Timer::ConnectRetry,
            after: Duration::from_secs(2)
        }));
    assert_eq!(
        (h.s.status().proto, h.info()),
        (ProtoState::Start, "Active".to_string())
    );
    // Active --ConnectRetry expires--> Connect
    let out = h.feed(Input::TimerExpired(Timer::ConnectRetry));
    let Some(Output::Connect(c)) = out.first().cloned() else {
        panic!("{out:?}")
    };
    assert_eq!(h.s.state(), BgpState::Connect);
    // Connect --connect refused--> Active, retry after 5 s, BIRD's text
    let out = h.feed(Input::ConnectFailed {
        conn: c,
        error: "Connection refused".into(),
    });
    assert!(has(&out, |o| *o
        == Output::SetTimer {
            timer: Timer::ConnectRetry,
            after: Duration::from_secs(5)
        }));
    assert_eq!(h.info(), "Active        Socket: Connection refused");
    // Active --retry--> Connect --connected--> OpenSent (OPEN sent, 240 s hold)
    let out = h.feed(Input::TimerExpired(Timer::ConnectRetry));
    let Some(Output::Connect(c)) = out.first().cloned() else {
        panic!("{out:?}")
    };
    assert_eq!(h.info(), "Connect       Socket: Connection refused");
    let out = h.feed(Input::Connected(c));
    assert!(matches!(sends(&out)[..], [OutMessage::Open(_)]));
    assert!(has(&out, |o| *o
        == Output::SetTimer {
            timer: Timer::HoldTimer(c),
            after: Duration::from_secs(240)
        }));
    assert_eq!(h.s.state(), BgpState::OpenSent);
    // OpenSent --OPEN--> OpenConfirm (KEEPALIVE sent, hold = min(90, 30) = 30, keepalive 10)
    let out = h.msg(c, &open_bytes(64512, PEER, 30));
    assert!(matches!(sends(&out)[..], [OutMessage::Keepalive]));
    assert!(has(&out, |o| *o
        == Output::SetTimer {
            timer: Timer::HoldTimer(c),
            after: Duration::from_secs(30)
        }));
    assert!(has(&out, |o| *o
        == Output::SetTimer {
            timer: Timer::Keepalive(c),
            after: Duration::from_secs(10)
        }));
    assert_eq!(h.s.state(), BgpState::OpenConfirm);
    // OpenConfirm --KEEPALIVE--> Established
    let out = h.msg(c, &bytes_of(OutMessage::Keepalive));
    let neg = out
        .iter()
        .find_map(|o| match o {
            Output::Established { negotiated, .. } => Some(negotiated.clone()),
            _ => None,
        })
        .expect("established");
    assert_eq!((neg.hold_time, neg.keepalive, neg.remote_id), (30, 10, PEER));
    assert_eq!(
        (h.s.status().proto, h.info()),
        (ProtoState::Up, "Established".to_string())
    );
    assert!(h.s.status().since.is_some());
    // Established --keepalive timer--> KEEPALIVE sent, re-armed
    let out = h.feed(Input::TimerExpired(Timer::Keepalive(c)));
    assert!(matches!(sends(&out)[..], [OutMessage::Keepalive]));
    // Established --UPDATE--> hold restarted, delivered to the RIB
    let eor = bytes_of(OutMessage::Update(UpdateMsg::end_of_rib(Family::IPV4_UNICAST)));
    let out = h.msg(c, &eor);
    assert!(has(&out, |o| *o == Output::DeliverUpdate { conn: c }));
    assert!(has(&out, |o| *o
        == Output::SetTimer {
            timer: Timer::HoldTimer(c),
            after: Duration::from_secs(30)
        }));
    // Established --ROUTE-REFRESH--> refresh requested
    let rr = bytes_of(OutMessage::RouteRefresh(RouteRefresh {
        family: Family::IPV4_UNICAST,
        subtype: 0,
    }));
    let out = h.msg(c, &rr);
    assert!(has(&out, |o| matches!(
        o,
        Output::RouteRefresh {
            family: Family::IPV4_UNICAST,
            ..
        }
    )));
    // Established --Stop--> Cease/admin shutdown, Down, proto down
    let out = h.feed(Input::Stop {
        cease_subcode: cease_sub::ADMINISTRATIVE_SHUTDOWN,
    });
    assert_eq!(notification(&out), Some((6, 2, vec![])));
    assert!(has(&out, |o| *o == Output::Down { graceful: false }));
    assert!(has(&out, |o| *o == Output::Close(c)));
    assert_eq!(
        (h.s.status().proto, h.s.state()),
        (ProtoState::Down, BgpState::Idle)
    );
}

#[test]
fn passive_session_waits_and_accepts() {
    let mut h = H::new(true);
    let out = h.feed(Input::Start);
    assert!(!has(&out, |o| matches!(
        o,
        Output::SetTimer {
            timer: Timer::ConnectRetry,
            ..
        }
    )));
    assert_eq!(h.info(), "Passive");
    assert_eq!(h.s.status().proto, ProtoState::Start);
    // A connect retry never makes a passive session connect.
    let out = h.feed(Input::TimerExpired(Timer::ConnectRetry));
    assert!(!has(&out, |o| matches!(o, Output::Connect(_))));
    let (mut h, c) = H::established(true);
    // Peer closes: BIRD shows the socket error, passive again.
    let out = h.feed(Input::Closed { conn: c, error: None });
    assert!(has(&out, |o| *o == Output::Down { graceful: false }));
    assert_eq!(h.info(), "Passive       Socket: Connection closed");
}

#[test]
fn disabled_session_rejects_connections() {
    let mut h = H::new(true);
    let c = h.s.next_conn_id();
    let out = h.feed(Input::Accepted(c));
    assert_eq!(notification(&out), Some((6, 5, vec![])));
    assert!(has(&out, |o| *o == Output::Close(c)));
}

/// Every protocol error the session detects, from Established or OpenSent, with the
/// NOTIFICATION it sends and the BIRD text it then shows.
#[test]
fn notification_paths() {
    type Case = (
        &'static str,
        fn(&mut H, ConnId) -> Vec<Output>,
        (u8, u8, Vec<u8>),
        &'static str,
    );
    let from_established: Vec<Case> = vec![
        (
            "hold timer expired",
            |h, c| h.feed(Input::TimerExpired(Timer::HoldTimer(c))),
            (4, 0, vec![]),
            "Idle          BGP Error: Hold timer expired",
        ),
        (
            "OPEN in Established",
            |h, c| h.msg(c, &open_bytes(64512, PEER, 90)),
            (5, 3, vec![]),
            "Idle          BGP Error: Unexpected message in Established state",
        ),
        (
            "bad marker",
            |h, c| {
                let e = header::frame_len(&[0u8; 19], 4096).unwrap_err();
                h.feed(Input::DecodeError { conn: c, error: e })
            },
            (1, 1, vec![]),
            "Idle          BGP Error: Connection not synchronized",
        ),
        (
            "bad length",
            |h, c| {
                let mut m = bytes_of(OutMessage::Keepalive);
                m[17] = 18;
                let e = header::frame_len(&m, 4096).unwrap_err();
                h.feed(Input::DecodeError { conn: c, error: e })
            },
            (1, 2, vec![0, 18]),
            "Idle          BGP Error: Bad message length",
        ),
        (
            "bad type",
            |h, c| {
                let mut m = bytes_of(OutMessage::Keepalive);
                m[18] = 42;
                let e = Message::decode(&m, &Ctx::default()).unwrap_err();
                h.feed(Input::DecodeError { conn: c, error: e })
            },
            (1, 3, vec![42]),
            "Idle          BGP Error: Bad message type",
        ),
        (
            "malformed attribute list",
            |h, c| {
                let mut m = vec![0xff; 16];
                m.extend_from_slice(&[0, 24, 2, 0, 0, 0, 9, 0]);
                let e = Message::decode(&m, &Ctx::default()).unwrap_err();
                h.feed(Input::DecodeError { conn: c, error: e })
            },
            (3, 1, vec![]),
            "Idle          BGP Error: Malformed attribute list",
        ),
        (
            "unrecognized well-known attribute (RFC 7606 keeps the reset)",
            |h, c| {
                let mut m = vec![0xff; 16];
                m.extend_from_slice(&[0, 27, 2, 0, 0, 0, 4, 0x40, 99, 1, 0]);
                let e = Message::decode(&m, &Ctx::default()).unwrap_err();
                h.feed(Input::DecodeError { conn: c, error: e })
            },
            (3, 2, vec![0x40, 99, 1, 0]),
            "Idle          BGP Error: Unrecognized well-known attribute",
        ),
    ];
    for (name, f, want, text) in from_established {
        let (mut h, c) = H::established(false);
        let out = f(&mut h, c);
        assert_eq!(notification(&out), Some(want), "{name}");
        assert!(has(&out, |o| *o == Output::Close(c)), "{name}");
        assert!(has(&out, |o| *o == Output::Down { graceful: false }), "{name}");
        // Error wait (Calico: 5 s) before starting again.
        assert!(
            has(&out, |o| *o
                == Output::SetTimer {
                    timer: Timer::IdleHold,
                    after: Duration::from_secs(5)
                }),
            "{name}: {out:?}"
        );
        assert_eq!(h.info(), text, "{name}");
        assert_eq!(h.s.status().proto, ProtoState::Start, "{name}");
    }

    // OPEN checks, from OpenSent.
    let open_cases: Vec<(&str, Vec<u8>, Want)> = vec![
        ("bad peer AS", open_bytes(64513, PEER, 90), (2, 2, vec![])),
        (
            "bad BGP identifier (ours, iBGP)",
            open_bytes(64512, ME, 90),
            (2, 3, vec![]),
        ),
        (
            "bad BGP identifier (zero)",
            open_bytes(64512, Ipv4Addr::UNSPECIFIED, 90),
            (2, 3, vec![]),
        ),
        (
            "unacceptable hold time 1",
            open_bytes(64512, PEER, 1),
            (2, 6, vec![]),
        ),
        (
            "unacceptable hold time 2",
            open_bytes(64512, PEER, 2),
            (2, 6, vec![]),
        ),
        (
            "unsupported version",
            {
                let mut b = open_bytes(64512, PEER, 90);
                b[19] = 3;
                b
            },
            (2, 1, vec![0, 4]),
        ),
        (
            "no common family",
            {
                let o = Open::new(
                    64512,
                    90,
                    PEER,
                    vec![Capability::MultiProtocol(Family::new(25, 70))],
                );
                bytes_of(OutMessage::Open(o))
            },
            (2, 7, vec![1, 4, 0, 1, 0, 1, 1, 4, 0, 2, 0, 1]),
        ),
        (
            "KEEPALIVE in OpenSent",
            bytes_of(OutMessage::Keepalive),
            (5, 1, vec![]),
        ),
    ];
    for (name, bytes, want) in open_cases {
        let mut h = H::new(true);
        h.feed(Input::Start);
        let c = h.s.next_conn_id();
        h.feed(Input::Accepted(c));
        let out = h.msg(c, &bytes);
        assert_eq!(notification(&out), Some(want), "{name}");
        assert!(has(&out, |o| *o == Output::Close(c)), "{name}");
        assert!(!has(&out, |o| matches!(o, Output::Down { .. })), "{name}");
    }
    // Unsupported optional parameter comes from the decoder.
    let mut h = H::new(true);
    h.feed(Input::Start);
    let c = h.s.next_conn_id();
    h.feed(Input::Accepted(c));
    let mut m = vec![0xff; 16];
    m.extend_from_slice(&[0, 32, 1, 4, 0xfc, 0, 0, 90, 1, 2, 3, 4, 3, 1, 1, 0]);
    let e = Message::decode(&m, &Ctx::default()).unwrap_err();
    let out = h.feed(Input::DecodeError { conn: c, error: e });
    assert_eq!(notification(&out), Some((2, 4, vec![])));

    // UPDATE in OpenConfirm → FSM error 5/2.
    let mut h = H::new(true);
    h.feed(Input::Start);
    let c = h.s.next_conn_id();
    h.feed(Input::Accepted(c));
    h.msg(c, &open_bytes(64512, PEER, 90));
    let out = h.msg(
        c,
        &bytes_of(OutMessage::Update(UpdateMsg::end_of_rib(Family::IPV4_UNICAST))),
    );
    assert_eq!(notification(&out), Some((5, 2, vec![])));
}

#[test]
fn received_notification_and_error_wait_backoff() {
    let (mut h, c) = H::established(false);
    let n = bytes_of(OutMessage::Notification(Notification::hold_timer_expired()));
    let out = h.msg(c, &n);
    assert!(
        notification(&out).is_none(),
        "no NOTIFICATION answers a NOTIFICATION"
    );
    assert!(has(&out, |o| *o == Output::Down { graceful: false }));
    assert_eq!(h.info(), "Idle          Received: Hold timer expired");
    // Accepting is refused during the error wait.
    let c2 = h.s.next_conn_id();
    let out = h.feed(Input::Accepted(c2));
    assert_eq!(notification(&out), Some((6, 5, vec![])));
    // After the wait: connect at once.
    let out = h.feed(Input::TimerExpired(Timer::IdleHold));
    assert!(has(&out, |o| *o
        == Output::SetTimer {
            timer: Timer::ConnectRetry,
            after: Duration::ZERO
        }));
    let out = h.feed(Input::TimerExpired(Timer::ConnectRetry));
    let Some(Output::Connect(c3)) = out.first().cloned() else {
        panic!()
    };
    h.feed(Input::Connected(c3));
    // A second error soon after doubles the wait (5 → 10 s), up to 30 s.
    let out = h.feed(Input::TimerExpired(Timer::HoldTimer(c3)));
    assert!(
        has(&out, |o| *o
            == Output::SetTimer {
                timer: Timer::IdleHold,
                after: Duration::from_secs(10)
            }),
        "{out:?}"
    );
}

#[test]
fn hold_time_zero_means_no_keepalives() {
    let mut h = H::new(true);
    h.feed(Input::Start);
    let c = h.s.next_conn_id();
    h.feed(Input::Accepted(c));
    let out = h.msg(c, &open_bytes(64512, PEER, 0));
    assert!(has(&out, |o| *o == Output::CancelTimer(Timer::HoldTimer(c))));
    assert!(!has(&out, |o| matches!(
        o,
        Output::SetTimer {
            timer: Timer::Keepalive(_),
            ..
        }
    )));
    let out = h.msg(c, &bytes_of(OutMessage::Keepalive));
    let Some(Output::Established { negotiated, .. }) =
        out.iter().find(|o| matches!(o, Output::Established { .. }))
    else {
        panic!()
    };
    assert_eq!((negotiated.hold_time, negotiated.keepalive), (0, 0));
}

/// RFC 4271 §6.8: with two connections, the side with the higher BGP identifier keeps the one
/// it initiated; the other gets Cease/Connection Collision Resolution.
#[test]
fn collision_detection() {
    for (my_id, peer_id, ours_survives) in [(Ipv4Addr::new(172, 20, 42, 90), PEER, true), (ME, PEER, false)] {
        let mut h = H {
            s: Session::new(SessionConfig {
                router_id: my_id,
                ..cfg(false)
            }),
            now: Instant::now(),
        };
        h.feed(Input::Start);
        let out = h.feed(Input::TimerExpired(Timer::ConnectRetry));
        let Some(Output::Connect(ours)) = out.first().cloned() else {
            panic!()
        };
        h.feed(Input::Connected(ours));
        let theirs = h.s.next_conn_id();
        h.feed(Input::Accepted(theirs));
        // Their OPEN arrives on our connection first: OpenConfirm there.
        let out = h.msg(ours, &open_bytes(64512, peer_id, 90));
        if ours_survives {
            // We keep ours: theirs is closed with Cease/7.
            assert!(has(&out, |o| *o == Output::Close(theirs)), "{out:?}");
            assert_eq!(notification(&out), Some((6, 7, vec![])));
            let out = h.msg(ours, &bytes_of(OutMessage::Keepalive));
            assert!(has(
                &out,
                |o| matches!(o, Output::Established { conn, .. } if *conn == ours)
            ));
        } else {
            // The peer's id is higher: the connection we initiated loses.
            assert!(has(&out, |o| *o == Output::Close(ours)), "{out:?}");
            assert_eq!(notification(&out), Some((6, 7, vec![])));
            h.msg(theirs, &open_bytes(64512, peer_id, 90));
            let out = h.msg(theirs, &bytes_of(OutMessage::Keepalive));
            assert!(has(
                &out,
                |o| matches!(o, Output::Established { conn, .. } if *conn == theirs)
            ));
        }
    }
    // A new connection while Established loses.
    let (mut h, _) = H::established(false);
    let c2 = h.s.next_conn_id();
    h.feed(Input::Accepted(c2));
    let out = h.msg(c2, &open_bytes(64512, PEER, 90));
    assert_eq!(notification(&out), Some((6, 7, vec![])));
    assert!(has(&out, |o| *o == Output::Close(c2)));
    assert!(!has(&out, |o| matches!(o, Output::Down { .. })));
    assert_eq!(h.s.state(), BgpState::Established);
}

#[test]
fn calico_mesh_rule_and_names() {
    // confd's `bird.cfg.template`: passive when the peer's address is greater as a string.
    assert!(!mesh_passive("172.20.42.9", "172.20.42.81"));
    assert!(mesh_passive("172.20.42.81", "172.20.42.9"));
    assert!(mesh_passive("172.20.42.80", "172.20.42.81"));
    assert_eq!(
        PeerType::Mesh.protocol_name("172.20.42.81".parse().unwrap(), None),
        "Mesh_172_20_42_81"
    );
    assert_eq!(
        PeerType::Mesh.protocol_name("fd80:24e2:f998:72d7::2".parse().unwrap(), None),
        "Mesh_fd80_24e2_f998_72d7__2"
    );
    assert_eq!(
        PeerType::Global.protocol_name("10.0.0.1".parse().unwrap(), Some(1179)),
        "Global_10_0_0_1_port_1179"
    );
    assert_eq!(PeerType::Node.calico_name(), "node specific");
}

#[test]
fn four_octet_local_as_sends_as_trans() {
    let cfg = SessionConfig::calico(4_200_000_001, 4_200_000_001, ME);
    let o = negotiate::local_open(&cfg);
    assert_eq!(o.my_as, AS_TRANS);
    assert_eq!(o.asn(), 4_200_000_001);
    assert!(o.graceful_restart().is_some());
}

#[test]
fn since_is_rendered_as_bird_does() {
    use std::time::{Duration, UNIX_EPOCH};
    let t = UNIX_EPOCH + Duration::from_secs(1_479_686_404); // 2016-11-21 00:00:04 UTC
    assert_eq!(status::format_since(t, t + Duration::from_secs(3600)), "00:00:04");
    assert_eq!(
        status::format_since(t, t + Duration::from_secs(20 * 3600)),
        "2016-11-21"
    );
    let t = UNIX_EPOCH + Duration::from_secs(951_827_696); // 2000-02-29 12:34:56 UTC
    assert_eq!(
        status::format_since(t, t + Duration::from_secs(86_400 * 3)),
        "2000-02-29"
    );
    assert_eq!(status::format_since(t, t), "12:34:56");
}

#[test]
fn enhanced_route_refresh_markers_are_not_requests() {
    let (mut h, c) = H::established(false);
    for subtype in [1u8, 2] {
        let rr = bytes_of(OutMessage::RouteRefresh(RouteRefresh {
            family: Family::IPV4_UNICAST,
            subtype,
        }));
        let out = h.msg(c, &rr);
        assert!(!has(&out, |o| matches!(o, Output::RouteRefresh { .. })));
    }
}
