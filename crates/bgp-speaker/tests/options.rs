//! BGPPeer / BGPConfiguration options against BIRD 2: GTSM (`ttlSecurity`), eBGP peers with
//! their AS (our AS prepended, next hop self, MED not passed on), a per-peer
//! local AS, `nextHopMode: Keep`, allowed local AS numbers, `sourceAddress: None`, and a
//! non-default listen port.

mod common;

use std::net::{Ipv4Addr, SocketAddr};
use std::time::Duration;

use brindle_bgp_speaker::{ExportPolicy, NextHopMode, PeerConfig, PeerType, SpeakerConfig};
use common::daemons::Bird;
use common::*;

const T: Duration = Duration::from_secs(30);

fn bird_session(ns: &brindle_testkit::Netns, me: &str, asn: u32, body: &str) -> Bird {
    Bird::with_config(
        ns,
        &format!(
            "router id {me};
protocol device {{ scan time 10; }}
protocol direct {{ ipv4; interface \"eth0\"; }}
protocol static own {{ ipv4; route 10.233.{}.0/24 blackhole; }}
protocol bgp Peer {{
  local {me} as {asn};
  connect delay time 1; connect retry time 1; error wait time 1, 5; hold time 9;
  {body}
}}
",
            me.rsplit('.').next().unwrap()
        ),
    )
}

fn ebgp_peer(addr: &str, asn: u32) -> PeerConfig {
    PeerConfig {
        hold_time: 9,
        timers: test_timers(),
        ..PeerConfig::new(ip(addr), asn, PeerType::Global)
    }
}

fn established(b: &Bird) -> bool {
    b.birdc("show protocols Peer").contains("Established")
}

#[test]
fn ttl_security() {
    let fab = Fabric::new(2);
    let node = BrindleNode::start(&fab.nodes[0], ip("172.20.42.80"));
    // BIRD checks GTSM too (`ttl security on`, directly connected: TTL 255 only).
    let bird = bird_session(
        &fab.nodes[1],
        "172.20.42.81",
        64512,
        "neighbor 172.20.42.80 as 64512; direct; ttl security on;
  ipv4 { import all; export where proto = \"own\"; next hop self; };",
    );
    node.set_peers(vec![PeerConfig {
        ttl_security: Some(1),
        ..peer("172.20.42.81", false, None)
    }]);
    let dump = || format!("{}\n{}", node.dump(), bird.birdc("show protocols all Peer"));
    wait_for(
        "GTSM session Established",
        T,
        || node.established("172.20.42.81"),
        dump,
    );
    wait_for(
        "route over it",
        T,
        || node.route_via("10.233.81.0/24").is_some(),
        dump,
    );

    // A peer that sends with an ordinary TTL (BIRD iBGP: 64) is out of range: no session.
    let fab = Fabric::new(2);
    let node = BrindleNode::start(&fab.nodes[0], ip("172.20.42.80"));
    let bird = bird_session(
        &fab.nodes[1],
        "172.20.42.81",
        64512,
        "neighbor 172.20.42.80 as 64512; ipv4 { import all; export all; };",
    );
    node.set_peers(vec![PeerConfig {
        ttl_security: Some(1),
        ..peer("172.20.42.81", false, None)
    }]);
    std::thread::sleep(Duration::from_secs(6));
    assert!(
        !node.established("172.20.42.81") && !established(&bird),
        "GTSM let a TTL-64 peer in: {}",
        node.dump()
    );
    // Without GTSM on our side the same peer comes up (the check above was GTSM's doing).
    node.set_peers(vec![peer("172.20.42.81", false, None)]);
    wait_for(
        "plain session",
        T,
        || node.established("172.20.42.81"),
        || node.dump(),
    );
}

#[test]
fn ebgp_peers_and_their_options() {
    let fab = Fabric::new(3);
    // Brindle at .80, AS 64512, listening on 1790, exporting learned routes in the pool.
    let mut cfg = SpeakerConfig::new(Ipv4Addr::new(172, 20, 42, 80), 64512);
    cfg.listen = vec![SocketAddr::from((Ipv4Addr::UNSPECIFIED, 1790))];
    cfg.export = ExportPolicy {
        learned_to_ebgp: vec![net("10.233.0.0/16")],
    };
    let node = BrindleNode::start_with(&fab.nodes[0], cfg);
    // BIRD A (.81, AS 65001) sends its block with MED 50 and our AS once in the path.
    let a = bird_session(
        &fab.nodes[1],
        "172.20.42.81",
        65001,
        "neighbor 172.20.42.80 port 1790 as 64512;
  ipv4 { import all; export filter { if proto = \"own\" then { bgp_med = 50; bgp_path.prepend(64512); accept; } reject; }; };",
    );
    // BIRD B (.82, AS 65002) peers with our per-peer local AS 64999.
    let b = bird_session(
        &fab.nodes[2],
        "172.20.42.82",
        65002,
        "neighbor 172.20.42.80 port 1790 as 64999; ipv4 { import all; export none; };",
    );
    let peers = |allow: u8, keep: bool| {
        vec![
            PeerConfig {
                allow_local_as: allow,
                passive: true,
                ..ebgp_peer("172.20.42.81", 65001)
            },
            PeerConfig {
                local_as: Some(64999),
                passive: true,
                next_hop: if keep {
                    NextHopMode::Keep
                } else {
                    NextHopMode::Auto
                },
                ..ebgp_peer("172.20.42.82", 65002)
            },
        ]
    };
    node.set_peers(peers(0, false));
    node.originate(&["10.233.80.0/24"]);
    let dump = || {
        format!(
            "{}\n{}\n{}",
            node.dump(),
            a.birdc("show route all"),
            b.birdc("show route all")
        )
    };
    wait_for(
        "both eBGP sessions",
        T,
        || established(&a) && established(&b),
        dump,
    );
    // Our block at A: our AS, next hop self (BIRD shows its own default LOCAL_PREF for eBGP
    // routes, so that we send none is checked on the wire in bgp-core's export tests).
    wait_for(
        "A has our block",
        T,
        || a.birdc("show route 10.233.80.0/24").contains("10.233.80.0/24"),
        dump,
    );
    let r = a.birdc("show route 10.233.80.0/24 all");
    assert!(r.contains("BGP.as_path: 64512"), "{r}");
    assert!(r.contains("BGP.next_hop: 172.20.42.80"), "{r}");
    // A's block has our AS in its path: refused (loop) until allowed once.
    std::thread::sleep(Duration::from_secs(2));
    assert_eq!(node.route_via("10.233.81.0/24"), None, "{}", dump());
    node.set_peers(peers(1, false));
    wait_for(
        "A's block accepted with allow local as 1",
        T,
        || node.route_via("10.233.81.0/24") == Some(ip("172.20.42.81")),
        dump,
    );
    // Re-exported to B (in the pool): the per-peer local AS prepended, next hop self, MED
    // from another AS not passed on.
    wait_for(
        "B has A's block",
        T,
        || b.birdc("show route 10.233.81.0/24").contains("10.233.81.0/24"),
        dump,
    );
    let r = b.birdc("show route 10.233.81.0/24 all");
    assert!(r.contains("BGP.as_path: 64999 65001 64512"), "{r}");
    assert!(r.contains("BGP.next_hop: 172.20.42.80"), "{r}");
    assert!(!r.contains("BGP.med"), "{r}");
    let r = b.birdc("show route 10.233.80.0/24 all");
    assert!(r.contains("BGP.as_path: 64999"), "{r}");
    // nextHopMode Keep towards B: A's address as next hop.
    node.set_peers(peers(1, true));
    wait_for(
        "B sees A's next hop",
        T,
        || {
            b.birdc("show route 10.233.81.0/24 all")
                .contains("BGP.next_hop: 172.20.42.81")
        },
        dump,
    );
}

#[test]
fn source_address_none() {
    let fab = Fabric::new(2);
    // The node address is a secondary one; the kernel would pick the primary (.80).
    fab.nodes[0].ip(&["addr", "add", "172.20.42.180/24", "dev", "eth0"]);
    let mut cfg = SpeakerConfig::new(Ipv4Addr::new(172, 20, 42, 180), 64512);
    cfg.node_v4 = Some(Ipv4Addr::new(172, 20, 42, 180));
    let node = BrindleNode::start_with(&fab.nodes[0], cfg);
    // BIRD only knows us as .80.
    let bird = bird_session(
        &fab.nodes[1],
        "172.20.42.81",
        64512,
        "neighbor 172.20.42.80 as 64512; passive on; ipv4 { import all; export all; };",
    );
    // Bound to the node's address (.180): BIRD refuses the unknown source.
    node.set_peers(vec![peer("172.20.42.81", false, None)]);
    std::thread::sleep(Duration::from_secs(4));
    assert!(!established(&bird), "{}", bird.birdc("show protocols all Peer"));
    // `sourceAddress: None`: the kernel picks .80 and the session comes up.
    node.set_peers(vec![PeerConfig {
        use_node_ip: false,
        ..peer("172.20.42.81", false, None)
    }]);
    wait_for(
        "session from the kernel's source",
        T,
        || established(&bird),
        || format!("{}\n{}", node.dump(), bird.birdc("show protocols all Peer")),
    );
}
