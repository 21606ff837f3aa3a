//! Reconfiguration in place (`SpeakerHandle::reconfigure`, BIRD's `configure`), in namespaces
//! with real sessions: the export policy (Calico's IP pools) and the route-reflector cluster id
//! change on a running speaker, and each peer gets exactly the UPDATEs and withdrawals the new
//! rules call for, while no session goes down (their `since` stays the same on both ends).
//! What only a new speaker can take is refused and changes nothing.

mod common;

use std::net::{IpAddr, Ipv4Addr};
use std::time::{Duration, Instant};

use brindle_bgp_speaker::{Error, ExportPolicy, PeerConfig, PeerType, RouteEvent, SpeakerConfig};
use common::*;

const T: Duration = Duration::from_secs(20);
const EBGP_AS: u32 = 65001;
const CLUSTER: Ipv4Addr = Ipv4Addr::new(10, 255, 0, 1);
/// Node 1's block, inside the pool.
const B_POOL: &str = "10.233.1.0/26";
/// Node 1's route outside every pool.
const B_OTHER: &str = "192.168.5.0/24";
/// Node 3's block, outside the pool.
const D_BLOCK: &str = "10.234.4.0/26";
const A_BLOCK: &str = "10.233.0.0/26";

fn v4(i: usize) -> Ipv4Addr {
    Ipv4Addr::new(172, 20, 42, 80 + i as u8)
}

fn to(i: usize, asn: u32, passive: bool) -> PeerConfig {
    PeerConfig {
        passive,
        hold_time: 9,
        timers: test_timers(),
        ..PeerConfig::new(IpAddr::V4(v4(i)), asn, PeerType::Global)
    }
}

/// Node A (0)'s peers: B (1) iBGP, maybe a reflector client; C (2) eBGP; D (3) iBGP.
fn a_peers(b_client: bool) -> Vec<PeerConfig> {
    vec![
        PeerConfig {
            rr_client: b_client,
            ..to(1, AS, false)
        },
        to(2, EBGP_AS, false),
        to(3, AS, false),
    ]
}

fn a_config(pools: &[&str], cluster: Option<Ipv4Addr>) -> SpeakerConfig {
    SpeakerConfig {
        export: ExportPolicy {
            learned_to_ebgp: pools.iter().map(|p| net(p)).collect(),
        },
        cluster_id: cluster,
        ..SpeakerConfig::new(v4(0), AS)
    }
}

fn adds_and_withdrawals(n: &BrindleNode) -> Vec<(bool, String)> {
    n.events()
        .into_iter()
        .map(|e| match e {
            RouteEvent::Add(r) | RouteEvent::Replace(r) => (true, r.prefix.to_string()),
            RouteEvent::Withdraw(p) => (false, p.to_string()),
        })
        .collect()
}

/// Waits until `n`'s route events are `want`, then checks none follow for a moment.
fn expect_events(n: &BrindleNode, name: &str, want: &[(bool, &str)]) {
    let want: Vec<(bool, String)> = want.iter().map(|(a, p)| (*a, p.to_string())).collect();
    wait_for(
        &format!("{name}'s route events {want:?}"),
        T,
        || adds_and_withdrawals(n) == want,
        || format!("{:?}\n{}", adds_and_withdrawals(n), n.dump()),
    );
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(adds_and_withdrawals(n), want, "{name}: more than expected");
}

#[test]
fn export_policy_and_cluster_id_change_in_place() {
    let fab = Fabric::new(4);
    let a = BrindleNode::start_with(&fab.nodes[0], a_config(&[], None));
    let b = BrindleNode::start(&fab.nodes[1], Fabric::addr(1));
    let c = BrindleNode::start_with(&fab.nodes[2], SpeakerConfig::new(v4(2), EBGP_AS));
    let d = BrindleNode::start(&fab.nodes[3], Fabric::addr(3));
    a.set_peers(a_peers(false));
    b.set_peers(vec![to(0, AS, true)]);
    c.set_peers(vec![to(0, AS, true)]);
    d.set_peers(vec![to(0, AS, true)]);
    a.originate(&[A_BLOCK]);
    b.originate(&[B_POOL, B_OTHER]);
    d.originate(&[D_BLOCK]);
    let nodes = [&a, &b, &c, &d];
    let up = || {
        ["172.20.42.81", "172.20.42.82", "172.20.42.83"]
            .iter()
            .all(|p| a.established(p))
    };
    wait_for("A's three sessions", T, up, || a.dump());
    // Everyone has what the initial rules give: A's own block; A learned B's and D's routes.
    expect_events(&c, "C", &[(true, A_BLOCK)]);
    expect_events(&d, "D", &[(true, A_BLOCK)]);
    expect_events(&b, "B", &[(true, A_BLOCK)]);
    wait_for(
        "A learns B's and D's routes",
        T,
        || a.routes().len() == 3,
        || a.dump(),
    );
    // When each session came up, on both ends.
    let since = || -> Vec<_> {
        let mut v: Vec<_> = a
            .status()
            .into_iter()
            .map(|p| (p.address, p.since, p.info))
            .collect();
        for n in &nodes[1..] {
            v.extend(n.status().into_iter().map(|p| (p.address, p.since, p.info)));
        }
        v
    };
    let before = since();
    assert!(
        before.iter().all(|(_, _, info)| info == "Established"),
        "{before:?}"
    );

    // A pool appears: the eBGP peer gets B's route inside it (only that one), nobody else
    // gets anything.
    a.reconfigure(a_config(&["10.233.0.0/16"], None), a_peers(false))
        .unwrap();
    expect_events(&c, "C", &[(true, A_BLOCK), (true, B_POOL)]);
    assert_eq!(c.route_via(B_POOL), Some(Fabric::addr(0)), "eBGP: next hop self");
    expect_events(&d, "D", &[(true, A_BLOCK)]);
    expect_events(&b, "B", &[(true, A_BLOCK)]);
    // The pool goes: a withdrawal to the eBGP peer.
    a.reconfigure(a_config(&[], None), a_peers(false)).unwrap();
    expect_events(&c, "C", &[(true, A_BLOCK), (true, B_POOL), (false, B_POOL)]);

    // A becomes a route reflector with B as its client (a live change of B's options):
    // B's routes are reflected to D (next hop kept), D's to B; the eBGP peer gets nothing.
    a.reconfigure(a_config(&[], Some(CLUSTER)), a_peers(true))
        .unwrap();
    let mut d_events = [(true, A_BLOCK), (true, B_POOL), (true, B_OTHER)];
    d_events.sort();
    wait_for(
        "D learns B's routes through the reflector",
        T,
        || {
            let mut e = adds_and_withdrawals(&d);
            e.sort();
            e == d_events
                .iter()
                .map(|(a, p)| (*a, p.to_string()))
                .collect::<Vec<_>>()
        },
        || d.dump(),
    );
    assert_eq!(
        d.route_via(B_POOL),
        Some(Fabric::addr(1)),
        "reflected: next hop kept"
    );
    expect_events(&b, "B", &[(true, A_BLOCK), (true, D_BLOCK)]);
    assert_eq!(b.route_via(D_BLOCK), Some(Fabric::addr(3)));
    expect_events(&c, "C", &[(true, A_BLOCK), (true, B_POOL), (false, B_POOL)]);

    // Not a reflector any more: what was reflected is withdrawn.
    a.reconfigure(a_config(&[], None), a_peers(false)).unwrap();
    wait_for(
        "D and B lose the reflected routes",
        T,
        || d.routes().len() == 1 && b.routes().len() == 1,
        || format!("{}\n{}", d.dump(), b.dump()),
    );
    assert!(d.routes().contains_key(&net(A_BLOCK)) && b.routes().contains_key(&net(A_BLOCK)));

    // No session went down on either end through all of it.
    assert_eq!(since(), before, "a session was reset");

    // What only a new speaker can take is refused, and nothing changes.
    let t0 = Instant::now();
    let mut other = a_config(&["10.233.0.0/16"], None);
    other.router_id = Ipv4Addr::new(172, 20, 42, 99);
    let err = a.reconfigure(other, a_peers(false)).unwrap_err();
    assert!(matches!(err, Error::RestartNeeded("router id")), "{err}");
    let mut port = a_config(&["10.233.0.0/16"], None);
    port.listen = vec![std::net::SocketAddr::from((Ipv4Addr::UNSPECIFIED, 1790))];
    assert!(matches!(
        a.reconfigure(port, a_peers(false)),
        Err(Error::RestartNeeded("listen addresses"))
    ));
    // A client without a cluster id is invalid: refused, nothing changes.
    assert!(matches!(
        a.reconfigure(a_config(&["10.233.0.0/16"], None), a_peers(true)),
        Err(Error::InvalidPeer { .. })
    ));
    std::thread::sleep(Duration::from_millis(500).saturating_sub(t0.elapsed()));
    expect_events(&c, "C", &[(true, A_BLOCK), (true, B_POOL), (false, B_POOL)]);
    assert_eq!(since(), before, "a refused change reset a session");
}

#[test]
fn a_per_peer_option_change_resets_only_that_session() {
    let fab = Fabric::new(3);
    let a = BrindleNode::start(&fab.nodes[0], Fabric::addr(0));
    let b = BrindleNode::start(&fab.nodes[1], Fabric::addr(1));
    let c = BrindleNode::start(&fab.nodes[2], Fabric::addr(2));
    let peers = |hold_c: u16| {
        vec![
            to(1, AS, false),
            PeerConfig {
                hold_time: hold_c,
                ..to(2, AS, false)
            },
        ]
    };
    a.set_peers(peers(9));
    b.set_peers(vec![to(0, AS, true)]);
    c.set_peers(vec![to(0, AS, true)]);
    wait_for(
        "both sessions",
        T,
        || a.established("172.20.42.81") && a.established("172.20.42.82"),
        || a.dump(),
    );
    let b_since = a.peer_status("172.20.42.81").since;
    let c_since = a.peer_status("172.20.42.82").since;
    // Another hold time for C: negotiated in the OPEN, so C's session restarts, B's does not.
    std::thread::sleep(Duration::from_millis(1100));
    a.reconfigure(SpeakerConfig::new(v4(0), AS), peers(12)).unwrap();
    wait_for(
        "C's session back with the new hold time",
        T,
        || a.established("172.20.42.82") && a.peer_status("172.20.42.82").since != c_since,
        || a.dump(),
    );
    assert_eq!(
        a.peer_status("172.20.42.81").since,
        b_since,
        "B's session was reset"
    );
}
