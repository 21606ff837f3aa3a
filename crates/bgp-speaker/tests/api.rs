//! The speaker's API on its own: configuration errors change nothing, BIRD-style status while
//! a peer cannot be reached, the listener's backlog.

mod common;

use std::time::Duration;

use brindle_bgp_speaker::{Error, PeerConfig, PeerType, ProtoState};
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
    // For a listening socket, Send-Q is the backlog (BIRD's is 8, perf.md B6).
    let q: Vec<&str> = ss.split_whitespace().collect();
    assert_eq!(q.get(2), Some(&"4096"), "{ss}");
}
