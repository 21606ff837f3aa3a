//! Both ends active, graceful restart on both: what real deployments have (a Calico BGPPeer
//! to a non-Calico router, BIRD or FRR configured active, two Brindle speakers both active).
//! Both sides connect at once, so connections cross (RFC 4271 §6.8), and a connection from
//! the peer can arrive while the session it crossed is already Established — which is not a
//! restart of the peer (RFC 4724 §4.2). Every session must come up once and stay up, and a
//! session lost for any reason must be back on both sides within a few connect retries.

mod common;

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::time::{Duration, Instant, SystemTime};

use brindle_bgp_speaker::{PeerConfig, ProtoState};
use brindle_testkit::Netns;
use common::daemons::{Bird, ME, THEIR_BLOCK, THEM};
use common::testd::Testd;
use common::*;

const T: Duration = Duration::from_secs(20);
/// How long a session must stay up, untouched, after all came up.
const STABLE: Duration = Duration::from_secs(3);
/// A lost session is back within this (test timers: 200 ms connect delay, 1 s connect retry,
/// 1–4 s error wait; the restart time below is 5 s, the lab's `maxRestartTime`).
const BACK: Duration = Duration::from_secs(8);

fn block(i: usize) -> String {
    format!("10.233.{}.0/24", 90 + i)
}

/// An active peer with graceful restart (5 s restart time, as in the lab that found the bug).
fn active(addr: IpAddr) -> PeerConfig {
    PeerConfig {
        passive: false,
        graceful_restart_time: Some(5),
        ..peer(&addr.to_string(), false, None)
    }
}

fn all_active(me: usize, n: usize) -> Vec<PeerConfig> {
    (0..n)
        .filter(|j| *j != me)
        .map(|j| active(Fabric::addr(j)))
        .collect()
}

/// Every session of every node: (node, peer) → when it came up.
fn up_since(nodes: &[BrindleNode]) -> BTreeMap<(usize, IpAddr), Option<SystemTime>> {
    let mut m = BTreeMap::new();
    for (i, n) in nodes.iter().enumerate() {
        for p in n.status() {
            m.insert((i, p.address), p.since.filter(|_| p.state == ProtoState::Up));
        }
    }
    m
}

fn all_up(nodes: &[BrindleNode]) -> bool {
    nodes
        .iter()
        .all(|n| n.status().iter().all(|p| p.info == "Established"))
}

fn full_mesh_routes(nodes: &[BrindleNode]) -> bool {
    nodes.iter().enumerate().all(|(i, n)| {
        (0..nodes.len())
            .filter(|j| *j != i)
            .all(|j| n.route_via(&block(j)) == Some(Fabric::addr(j)))
    })
}

fn dump(nodes: &[BrindleNode]) -> String {
    nodes.iter().map(BrindleNode::dump).collect::<Vec<_>>().join("\n")
}

/// Waits for the whole mesh, then checks that no session moves for `STABLE`.
fn assert_mesh_up_and_stable(nodes: &[BrindleNode], what: &str) {
    wait_for(
        &format!("{what}: every session Established, every block learned"),
        T,
        || all_up(nodes) && full_mesh_routes(nodes),
        || dump(nodes),
    );
    let before = up_since(nodes);
    std::thread::sleep(STABLE);
    let after = up_since(nodes);
    assert_eq!(before, after, "{what}: a session flapped\n{}", dump(nodes));
    assert!(full_mesh_routes(nodes), "{what}: routes lost\n{}", dump(nodes));
}

#[test]
fn three_active_speakers_started_together_twenty_rounds() {
    let fab = Fabric::new(3);
    for round in 0..20u64 {
        let nodes: Vec<BrindleNode> = (0..3)
            .map(|i| BrindleNode::start(&fab.nodes[i], Fabric::addr(i)))
            .collect();
        for (i, n) in nodes.iter().enumerate() {
            n.originate(&[&block(i)]);
        }
        // The peers are configured at the same moment, then with a growing offset between
        // the nodes (0–9.5 ms), so each round crosses the connections at another point of
        // the OPEN/KEEPALIVE exchange.
        let jitter = Duration::from_micros(500 * round);
        for (i, n) in nodes.iter().enumerate() {
            n.set_peers(all_active(i, 3));
            std::thread::sleep(jitter);
        }
        assert_mesh_up_and_stable(&nodes, &format!("round {round}"));
    }
}

/// `ss -K` in the namespace: the kernel aborts the BGP connections (RST to the peer).
fn kill_bgp_sockets(ns: &Netns) {
    ns.run("ss", &["-K", "-t", "sport", "=", ":179"]);
    ns.run("ss", &["-K", "-t", "dport", "=", ":179"]);
}

#[test]
fn lost_sessions_come_back_on_both_sides() {
    let fab = Fabric::new(3);
    let nodes: Vec<BrindleNode> = (0..3)
        .map(|i| BrindleNode::start(&fab.nodes[i], Fabric::addr(i)))
        .collect();
    for (i, n) in nodes.iter().enumerate() {
        n.originate(&[&block(i)]);
        n.set_peers(all_active(i, 3));
    }
    assert_mesh_up_and_stable(&nodes, "start");
    for round in 0..10 {
        let victim = round % 3;
        let before = up_since(&nodes);
        kill_bgp_sockets(&fab.nodes[victim]);
        let lost = Instant::now();
        wait_for(
            &format!("round {round}: node {victim}'s sessions went down"),
            T,
            || up_since(&nodes) != before,
            || dump(&nodes),
        );
        wait_for(
            &format!("round {round}: every session back"),
            BACK,
            || all_up(&nodes) && full_mesh_routes(&nodes),
            || dump(&nodes),
        );
        let took = lost.elapsed();
        assert_mesh_up_and_stable(&nodes, &format!("round {round} (back after {took:?})"));
    }
}

/// The speaker process at .80, active towards .81 with graceful restart.
fn testd_args(restarting: bool) -> Vec<&'static str> {
    let mut a = vec![
        "--router-id",
        ME,
        "--as",
        "64512",
        "--peer",
        "172.20.42.81,hold=9,fast,mesh,gr=5",
        "--originate",
        "10.233.94.0/24",
    ];
    if restarting {
        a.extend(["--restarting", "--deferral-s", "30"]);
    }
    a
}

#[test]
fn kill9_and_restart_while_the_other_side_keeps_connecting() {
    let fab = Fabric::new(2);
    let other = BrindleNode::start(&fab.nodes[1], ip(THEM));
    other.originate(&[THEIR_BLOCK]);
    other.set_peers(vec![active(ip(ME))]);
    let mut testd = Testd::start(&fab.nodes[0], &testd_args(false));
    let up = |testd: &Testd| {
        testd.established()
            && testd.has_route(THEIR_BLOCK, THEM)
            && other.established(ME)
            && other.route_via("10.233.94.0/24") == Some(ip(ME))
    };
    let dump = |testd: &Testd| format!("{}\n{}", testd.dump(), other.dump());
    wait_for("both up", T, || up(&testd), || dump(&testd));
    for round in 0..8u64 {
        testd.kill9();
        // Restart at another point of the other side's connect-retry cycle each round.
        std::thread::sleep(Duration::from_millis(150 * round));
        testd.restart(&testd_args(round % 2 == 1));
        wait_for(
            &format!("round {round}: both up again"),
            BACK,
            || up(&testd),
            || dump(&testd),
        );
        let since = other.peer_status(ME).since;
        std::thread::sleep(STABLE);
        let st = other.peer_status(ME);
        assert!(
            st.since == since && st.info == "Established" && testd.established(),
            "round {round}: the session flapped\n{}",
            dump(&testd)
        );
    }
}

#[test]
fn bird2_active_with_graceful_restart_on_both_sides() {
    let fab = Fabric::new(2);
    let bird = Bird::facing_me(&fab.nodes[1], "Node_172_20_42_80", "", "graceful restart time 5;");
    let proto = || bird.birdc("show protocols all Node_172_20_42_80");
    let bird_up = || proto().contains("Established");
    for round in 0..6u64 {
        let node = BrindleNode::start(&fab.nodes[0], ip(ME));
        node.originate(&["10.233.94.0/24"]);
        // Configured at another point of BIRD's connect-delay cycle each round.
        std::thread::sleep(Duration::from_millis(170 * round));
        node.set_peers(vec![active(ip(THEM))]);
        let dump = || format!("{}\n{}", node.dump(), proto());
        wait_for(
            &format!("round {round}: up with BIRD, routes both ways"),
            T,
            || {
                node.established(THEM)
                    && bird_up()
                    && node.route_via(THEIR_BLOCK) == Some(ip(THEM))
                    && bird.birdc("show route 10.233.94.0/24").contains("10.233.94.0/24")
            },
            dump,
        );
        let since = node.peer_status(THEM).since;
        std::thread::sleep(STABLE);
        let st = node.peer_status(THEM);
        assert!(
            st.since == since && st.info == "Established" && bird_up(),
            "round {round}: the session flapped\n{}",
            dump()
        );
        // A forced loss: both come back.
        kill_bgp_sockets(&fab.nodes[0]);
        wait_for(
            &format!("round {round}: the session went down"),
            T,
            || node.peer_status(THEM).since != since,
            dump,
        );
        wait_for(
            &format!("round {round}: back after the loss"),
            BACK,
            || node.established(THEM) && bird_up() && node.route_via(THEIR_BLOCK).is_some(),
            dump,
        );
    }
}
