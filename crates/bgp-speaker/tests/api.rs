//! The speaker's API on its own: configuration errors change nothing, BIRD-style status while
//! a peer cannot be reached, the listener's backlog, a failed start or a shutdown leaving no
//! port bound, connections from addresses that are no peer summed up in the log instead of a
//! line each.

mod common;

use std::time::Duration;

use std::net::{Ipv4Addr, SocketAddr};

use brindle_bgp_speaker::{Error, PeerConfig, PeerType, ProtoState, Speaker, SpeakerConfig};
use common::testd::Testd;
use common::*;

#[test]
fn invalid_peer_lists_change_nothing() {
    let fab = Fabric::new(1);
    let node = BrindleNode::start(&fab.nodes[0], Fabric::addr(0));
    node.set_peers(vec![peer("172.20.42.81", true, None)]);
    let bad: Vec<(PeerConfig, &str)> = vec![
        (
            PeerConfig {
                hold_time: 2,
                ..peer("172.20.42.82", false, None)
            },
            "hold time",
        ),
        (
            PeerConfig {
                keepalive: Some(5),
                ..peer("172.20.42.82", false, None)
            },
            "keepalive",
        ),
        (peer("172.20.42.82", false, Some(&"x".repeat(81))), "password"),
        (
            PeerConfig {
                remote_as: 0,
                ..peer("172.20.42.82", false, None)
            },
            "AS number 0",
        ),
        (
            PeerConfig {
                source_address: Some(ip("fd00::1")),
                ..peer("172.20.42.82", false, None)
            },
            "source address family",
        ),
        (peer("0.0.0.0", false, None), "unicast"),
        (
            PeerConfig {
                families: Vec::new(),
                ..peer("172.20.42.82", false, None)
            },
            "no address family",
        ),
        (
            PeerConfig {
                families: vec![brindle_bgp_speaker::Family::new(1, 128)],
                ..peer("172.20.42.82", false, None)
            },
            "is not IPv4 or IPv6 unicast",
        ),
    ];
    for (p, what) in bad {
        let err = node
            .try_set_peers(vec![peer("172.20.42.81", true, None), p])
            .unwrap_err();
        let text = err.to_string();
        assert!(
            matches!(err, Error::InvalidPeer { .. }) && text.contains(what),
            "{text}"
        );
    }
    let dup = node.try_set_peers(vec![
        peer("172.20.42.81", true, None),
        peer("172.20.42.81", false, None),
    ]);
    assert!(dup.unwrap_err().to_string().contains("configured twice"));
    let st = node.status();
    assert_eq!(st.len(), 1);
    assert_eq!(st[0].info, "Passive");
}

#[test]
fn status_while_the_peer_is_unreachable() {
    let fab = Fabric::new(2);
    let node = BrindleNode::start(&fab.nodes[0], Fabric::addr(0));
    node.set_peers(vec![
        // Nobody listens on .81: refused.
        peer("172.20.42.81", false, None),
        PeerConfig {
            port: 1179,
            peer_type: PeerType::Global,
            ..peer("172.20.42.82", true, None)
        },
    ]);
    wait_for(
        "connection refused shown",
        Duration::from_secs(10),
        || node.peer_status("172.20.42.81").info == "Active        Socket: Connection refused",
        || node.dump(),
    );
    let st = node.status();
    assert_eq!(st[0].name, "Global_172_20_42_82_port_1179");
    assert_eq!((st[0].state, st[0].info.as_str()), (ProtoState::Start, "Passive"));
    assert_eq!(st[1].name, "Mesh_172_20_42_81");
    assert_eq!(st[1].state, ProtoState::Start);
    assert_eq!(st[1].peer_type.calico_name(), "node-to-node mesh");
    // Removing the peers: gone from the status.
    node.set_peers(vec![]);
    assert!(node.status().is_empty());
}

#[test]
fn families_and_listen_addresses() {
    use brindle_bgp_speaker::{Family, SpeakerConfig};
    // Calico's model: a session carries the family of its peer's address.
    assert_eq!(peer("172.20.42.81", false, None).families, [Family::IPV4_UNICAST]);
    assert_eq!(peer("fd80::81", false, None).families, [Family::IPV6_UNICAST]);
    let mut cfg = SpeakerConfig::new("172.20.42.80".parse().unwrap(), AS);
    cfg.listen_on_wildcard(1790);
    assert_eq!(cfg.listen, ["0.0.0.0:1790".parse().unwrap()]);
    cfg.node_v6 = Some("fd80::80".parse().unwrap());
    cfg.listen_on_wildcard(179);
    let want: Vec<std::net::SocketAddr> = vec!["0.0.0.0:179".parse().unwrap(), "[::]:179".parse().unwrap()];
    assert_eq!(cfg.listen, want);
    cfg.listen_on_node_addresses(179);
    let want: Vec<std::net::SocketAddr> = vec![
        "172.20.42.80:179".parse().unwrap(),
        "[fd80::80]:179".parse().unwrap(),
    ];
    assert_eq!(cfg.listen, want);
}

#[test]
fn listener_has_a_large_backlog() {
    let fab = Fabric::new(1);
    let _node = BrindleNode::start(&fab.nodes[0], Fabric::addr(0));
    let ss = fab.nodes[0].run("ss", &["-ltnH", "sport = :179"]);
    // For a listening socket, Send-Q is the backlog (BIRD's is 8: `ss -ltn` on BIRD 2.0.12).
    let q: Vec<&str> = ss.split_whitespace().collect();
    assert_eq!(q.get(2), Some(&"4096"), "{ss}");
}

#[test]
fn a_failed_start_and_a_shutdown_leave_no_port_bound() {
    let fab = Fabric::new(1);
    fab.nodes[0]
        .spawn_in(|| {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async {
                let held = std::net::TcpListener::bind("0.0.0.0:1790").unwrap();
                let mut cfg = SpeakerConfig::new(Ipv4Addr::new(172, 20, 42, 80), AS);
                cfg.listen = vec![
                    SocketAddr::from((Ipv4Addr::UNSPECIFIED, 179)),
                    SocketAddr::from((Ipv4Addr::UNSPECIFIED, 1790)),
                ];
                let Err(err) = Speaker::start(cfg.clone()) else {
                    panic!("started on a taken port")
                };
                assert!(
                    matches!(&err, Error::Listen { addr, .. } if addr.port() == 1790),
                    "{err}"
                );
                // Port 179, bound before 1790 failed, was let go: with 1790 free it starts.
                drop(held);
                let h = Speaker::start(cfg.clone()).expect("starts once the port is free");
                // Once shutdown returns, the ports are free for the next speaker (a restart).
                h.shutdown_graceful().await.unwrap();
                let again = Speaker::start(cfg).expect("restarts on the same ports at once");
                again.shutdown().await.unwrap();
                std::net::TcpListener::bind("0.0.0.0:179").expect("179 closed by shutdown");
            })
        })
        .join()
        .unwrap();
}

#[test]
fn refused_connections_are_summed_up_not_logged_one_by_one() {
    let fab = Fabric::new(2);
    // A speaker whose only peer is .82: connections from .81 are refused.
    let d = Testd::start(
        &fab.nodes[0],
        &[
            "--router-id",
            "172.20.42.80",
            "--as",
            "64512",
            "--peer",
            "172.20.42.82,passive",
        ],
    );
    const N: usize = 2000;
    let made = fab.nodes[1]
        .spawn_in(|| {
            (0..N)
                .filter(|_| std::net::TcpStream::connect("172.20.42.80:179").is_ok())
                .count()
        })
        .join()
        .unwrap();
    assert_eq!(made, N);
    let refused_lines = |log: &str| -> (usize, u64) {
        let firsts = log
            .lines()
            .filter(|l| l.contains("connection from an address that is no peer refused"))
            .count();
        let summed = log
            .lines()
            .filter(|l| l.contains("addresses that are no peer refused"))
            .filter_map(|l| {
                l.split("count=")
                    .nth(1)?
                    .split_whitespace()
                    .next()?
                    .parse::<u64>()
                    .ok()
            })
            .sum();
        (firsts, summed)
    };
    // The first one at once, then every other one in the summaries (one per 10 s).
    wait_for(
        "the summary of the refused connections",
        Duration::from_secs(30),
        || refused_lines(&d.log()) == (1, N as u64 - 1),
        || d.log(),
    );
    let log = d.log();
    assert!(log.contains("from=172.20.42.81:"), "{log}");
    assert!(log.contains("distinct_sources=1 "), "{log}");
    assert!(log.lines().count() < 20, "{log}");
}
