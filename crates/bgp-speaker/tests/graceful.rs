//! Graceful restart (RFC 4724) with real peers and a real process: a Brindle speaker process
//! (`brindle-bgp-testd`) is killed with SIGKILL and started again as a restarting speaker.
//! Its peer — BIRD 2 (kernel protocol), FRR (zebra) or another Brindle speaker — keeps its
//! routes installed throughout (sampled every 10 ms in the peer's kernel table, or its route
//! stream), and the route the restarted speaker no longer announces is swept after its
//! End-of-RIB, long before the restart time. The restarted speaker relearns the peer's route
//! and reports initial convergence after the peer's End-of-RIB.

mod common;

use std::time::{Duration, Instant};

use brindle_bgp_speaker::RouteEvent;
use common::daemons::{Bird, Frr, ME, THEIR_BLOCK, THEM};
use common::testd::{KernelWatch, RestartCase, Testd};
use common::*;

const KEPT: &str = "10.233.94.0/24";
const DROPPED: &str = "10.233.95.0/24";
const T: Duration = Duration::from_secs(30);

/// The Brindle node at .80 peering with .81 (passive: .81 > .80 as strings, Calico's rule).
fn testd_args<'a>(originate: &[&'a str], restarting: bool) -> Vec<&'a str> {
    let mut a = vec![
        "--router-id",
        ME,
        "--as",
        "64512",
        "--peer",
        "172.20.42.81,passive,hold=9,fast,mesh",
    ];
    for p in originate {
        a.extend(["--originate", p]);
    }
    if restarting {
        a.extend(["--restarting", "--deferral-s", "60"]);
    }
    a
}

/// Kills the speaker, restarts it announcing only `KEPT`, and checks what the peer's kernel
/// saw meanwhile.
fn kill_and_restart(testd: &mut Testd, kernel: &KernelWatch, peer_dump: &dyn Fn() -> String) {
    let case = RestartCase {
        kept: KEPT,
        dropped: DROPPED,
        restart_args: &testd_args(&[KEPT], true),
        theirs: THEIR_BLOCK,
        their_next_hop: THEM,
    };
    case.run(testd, kernel, peer_dump);
}

#[test]
fn bird2_keeps_our_routes_in_its_kernel_through_kill9() {
    let fab = Fabric::new(2);
    let bird = Bird::facing_me(
        &fab.nodes[1],
        "Mesh_172_20_42_80",
        "protocol kernel { ipv4 { import none; export where source = RTS_BGP; }; }",
        "",
    );
    let kernel = KernelWatch::start(&fab.nodes[1]);
    let mut testd = Testd::start(&fab.nodes[0], &testd_args(&[KEPT, DROPPED], false));
    let dump = || bird.birdc("show protocols all Mesh_172_20_42_80") + &bird.birdc("show route");
    kill_and_restart(&mut testd, &kernel, &dump);
    // BIRD took the restart as graceful, and its session is up again.
    let proto = bird.birdc("show protocols all Mesh_172_20_42_80");
    assert!(proto.contains("Established"), "{proto}");
}

#[test]
fn frr_keeps_our_routes_in_its_kernel_through_kill9() {
    let fab = Fabric::new(2);
    let frr = Frr::with_config(
        &fab.nodes[1],
        &format!(
            "hostname brindle-test-bgpd
router bgp 64512
 bgp router-id {THEM}
 bgp graceful-restart
 no bgp ebgp-requires-policy
 no bgp network import-check
 timers bgp 3 9
 neighbor {ME} remote-as 64512
 neighbor {ME} timers connect 1
 address-family ipv4 unicast
  network {THEIR_BLOCK}
 exit-address-family
"
        ),
    );
    let kernel = KernelWatch::start(&fab.nodes[1]);
    let mut testd = Testd::start(&fab.nodes[0], &testd_args(&[KEPT, DROPPED], false));
    let dump = || frr.vtysh(&[&format!("show bgp neighbors {ME}"), "show bgp ipv4 unicast"]);
    kill_and_restart(&mut testd, &kernel, &dump);
}

#[test]
fn brindle_keeps_a_restarting_brindles_routes() {
    let fab = Fabric::new(2);
    // The helper: a Brindle speaker in-process at .81 (active towards .80), with its route
    // stream watched.
    let helper = BrindleNode::start(&fab.nodes[1], ip(THEM));
    helper.set_peers(vec![peer(ME, false, None)]);
    helper.originate(&[THEIR_BLOCK]);
    let mut testd = Testd::start(&fab.nodes[0], &testd_args(&[KEPT, DROPPED], false));
    let dump = || format!("{}\n{}", testd.dump(), helper.dump());
    wait_for(
        "helper learns both",
        T,
        || helper.route_via(KEPT).is_some() && helper.route_via(DROPPED).is_some(),
        dump,
    );
    let before = helper.events().len();
    testd.kill9();
    wait_for(
        "helper marks them stale",
        T,
        || helper.peer_status(ME).routes_stale == 2,
        || helper.dump(),
    );
    assert_eq!(
        helper.route_via(KEPT),
        Some(ip(ME)),
        "stale routes stay in the stream"
    );
    testd.restart(&testd_args(&[KEPT], true));
    let dump = || format!("{}\n{}", testd.dump(), helper.dump());
    wait_for(
        "dropped route withdrawn",
        T,
        || helper.route_via(DROPPED).is_none(),
        dump,
    );
    wait_for(
        "no stale route left",
        T,
        || helper.peer_status(ME).routes_stale == 0,
        dump,
    );
    wait_for("restarted speaker converged", T, || testd.converged(), dump);
    assert!(testd.has_route(THEIR_BLOCK, THEM), "{}", dump());
    // The kept route never left the stream; the dropped one left exactly once.
    let events = helper.events();
    let after: Vec<&RouteEvent> = events[before..].iter().collect();
    assert!(
        !after
            .iter()
            .any(|e| matches!(e, RouteEvent::Withdraw(p) if p.to_string() == KEPT)),
        "{after:?}"
    );
    assert_eq!(
        after
            .iter()
            .filter(|e| matches!(e, RouteEvent::Withdraw(p) if p.to_string() == DROPPED))
            .count(),
        1,
        "{after:?}"
    );
}

#[test]
fn brindle_drops_routes_when_the_peer_does_not_come_back() {
    let fab = Fabric::new(2);
    let helper = BrindleNode::start(&fab.nodes[1], ip(THEM));
    helper.set_peers(vec![peer(ME, false, None)]);
    // The speaker advertises a 3 s restart time: the helper keeps its routes that long.
    let mut args = testd_args(&[KEPT], false);
    args[5] = "172.20.42.81,passive,hold=9,fast,mesh,gr=3";
    let mut testd = Testd::start(&fab.nodes[0], &args);
    wait_for(
        "learned",
        T,
        || helper.route_via(KEPT).is_some(),
        || helper.dump(),
    );
    testd.kill9();
    let t0 = Instant::now();
    wait_for(
        "kept as stale",
        T,
        || helper.peer_status(ME).routes_stale == 1,
        || helper.dump(),
    );
    wait_for(
        "dropped after the restart time",
        T,
        || helper.route_via(KEPT).is_none(),
        || helper.dump(),
    );
    assert!(t0.elapsed() >= Duration::from_secs(2), "{:?}", t0.elapsed());
}

#[test]
fn shutdown_graceful_keeps_routes_and_shutdown_flushes() {
    let fab = Fabric::new(2);
    let helper = BrindleNode::start(&fab.nodes[1], ip(THEM));
    helper.set_peers(vec![peer(ME, false, None)]);
    let mut testd = Testd::start(&fab.nodes[0], &testd_args(&[KEPT], false));
    wait_for(
        "learned",
        T,
        || helper.route_via(KEPT).is_some(),
        || helper.dump(),
    );
    // A planned restart: no NOTIFICATION, the helper keeps the route.
    assert_eq!(testd.ctl("shutdown-graceful").trim(), "ok");
    wait_for(
        "kept as stale",
        T,
        || helper.peer_status(ME).routes_stale == 1,
        || helper.dump(),
    );
    testd.restart(&testd_args(&[KEPT], true));
    wait_for(
        "refreshed",
        T,
        || helper.peer_status(ME).routes_stale == 0,
        || helper.dump(),
    );
    assert_eq!(helper.route_via(KEPT), Some(ip(ME)));
    // A real shutdown: Cease/Hard Reset (RFC 8538, both sides set N), the route goes at once.
    wait_for("converged", T, || testd.converged(), || testd.dump());
    assert_eq!(testd.ctl("shutdown").trim(), "ok");
    wait_for(
        "flushed",
        Duration::from_secs(5),
        || helper.route_via(KEPT).is_none(),
        || helper.dump(),
    );
}
