//! Interop with real BGP daemons in network namespaces: BIRD 2, BIRD 1.6 (Calico's BIRD line),
//! GoBGP, FRR and ExaBGP. For each: the session comes up, our block reaches their RIB and
//! theirs ours, withdrawals propagate both ways, a kill -9 and restart of the peer recovers,
//! and TCP MD5 works with the right key and keeps the session down with a wrong one.

mod common;

use std::time::Duration;

use brindle_bgp_speaker::ProtoState;
use common::daemons::Bird;
use common::daemons::*;
use common::*;

const OUR_BLOCK: &str = "10.233.94.0/24";
const T: Duration = Duration::from_secs(30);

fn full_cycle(daemon: &mut dyn PeerDaemon, node: &BrindleNode) {
    let name = daemon.name();
    node.originate(&[OUR_BLOCK]);
    wait_for(
        &format!("{name}: Established"),
        T,
        || node.established(THEM) && daemon.established(),
        || format!("{}\n{}", node.dump(), daemon.dump()),
    );
    let st = node.peer_status(THEM);
    assert_eq!(
        (st.name.as_str(), st.state),
        ("Mesh_172_20_42_81", ProtoState::Up)
    );
    assert!(st.since.is_some());

    // Our block in their RIB, theirs in ours with their address as next hop.
    wait_for(
        &format!("{name} has our block"),
        T,
        || daemon.has_route(OUR_BLOCK),
        || daemon.dump(),
    );
    wait_for(
        &format!("we have {name}'s block"),
        T,
        || node.route_via(THEIR_BLOCK) == Some(ip(THEM)),
        || node.dump(),
    );
    assert_eq!(node.peer_status(THEM).routes_imported, 1);

    // Withdrawals, both ways.
    node.originate(&[]);
    wait_for(
        &format!("{name} drops our block"),
        T,
        || !daemon.has_route(OUR_BLOCK),
        || daemon.dump(),
    );
    assert!(
        node.established(THEM) && daemon.established(),
        "{name}: a withdrawal must not reset the session"
    );
    daemon.withdraw_own();
    wait_for(
        &format!("{name}'s withdrawal reaches us"),
        T,
        || node.route_via(THEIR_BLOCK).is_none(),
        || node.dump(),
    );
    assert!(
        node.established(THEM) && daemon.established(),
        "{name}: a withdrawal must not reset the session"
    );
    daemon.announce_own();
    node.originate(&[OUR_BLOCK]);
    wait_for(
        &format!("{name} re-announces"),
        T,
        || node.route_via(THEIR_BLOCK).is_some(),
        || node.dump(),
    );
    wait_for(
        &format!("{name} has our block again"),
        T,
        || daemon.has_route(OUR_BLOCK),
        || daemon.dump(),
    );

    // The peer dies and comes back: its routes go, then return.
    daemon.restart();
    wait_for(
        &format!("{name} restarted: Established again"),
        T,
        || node.established(THEM) && daemon.established(),
        || format!("{}\n{}", node.dump(), daemon.dump()),
    );
    wait_for(
        &format!("{name} restarted: routes again"),
        T,
        || node.route_via(THEIR_BLOCK).is_some() && daemon.has_route(OUR_BLOCK),
        || format!("{}\n{}", node.dump(), daemon.dump()),
    );
    // The route event stream saw the withdrawal in between (the session went down).
    let events = node.events();
    assert!(
        events
            .iter()
            .filter(
                |e| matches!(e, brindle_bgp_speaker::RouteEvent::Withdraw(p) if p.to_string() == THEIR_BLOCK)
            )
            .count()
            >= 2,
        "{events:?}"
    );
}

fn md5_cycle(daemon: &dyn PeerDaemon, node: &BrindleNode) {
    let name = daemon.name();
    wait_for(
        &format!("{name}: MD5 session Established"),
        T,
        || node.established(THEM) && daemon.established(),
        || format!("{}\n{}", node.dump(), daemon.dump()),
    );
    // A wrong key: the changed peer restarts, and no session comes up.
    node.set_peers(vec![peer(THEM, false, Some("wrong-key"))]);
    std::thread::sleep(Duration::from_secs(6));
    let st = node.peer_status(THEM);
    assert_ne!(
        st.state,
        ProtoState::Up,
        "{name}: up with a wrong MD5 key: {st:?}"
    );
    assert!(!daemon.established(), "{name}: {}", daemon.dump());
    // The right key again: up.
    node.set_peers(vec![peer(THEM, false, Some("s3cr3t-calico"))]);
    wait_for(
        &format!("{name}: MD5 session back"),
        T,
        || node.established(THEM),
        || format!("{}\n{}", node.dump(), daemon.dump()),
    );
}

fn run(start: fn(&brindle_testkit::Netns, Option<&str>) -> Box<dyn PeerDaemon>) {
    let fab = Fabric::new(2);
    let node = BrindleNode::start(&fab.nodes[0], ip(ME));
    let mut daemon = start(&fab.nodes[1], None);
    node.set_peers(vec![peer(THEM, false, None)]);
    full_cycle(daemon.as_mut(), &node);
    drop(daemon);
    drop(node);
}

fn run_md5(start: fn(&brindle_testkit::Netns, Option<&str>) -> Box<dyn PeerDaemon>) {
    let fab = Fabric::new(2);
    let node = BrindleNode::start(&fab.nodes[0], ip(ME));
    let daemon = start(&fab.nodes[1], Some("s3cr3t-calico"));
    node.set_peers(vec![peer(THEM, false, Some("s3cr3t-calico"))]);
    md5_cycle(daemon.as_ref(), &node);
}

fn bird2(ns: &brindle_testkit::Netns, pw: Option<&str>) -> Box<dyn PeerDaemon> {
    Box::new(Bird::bird2(ns, pw))
}
fn bird16(ns: &brindle_testkit::Netns, pw: Option<&str>) -> Box<dyn PeerDaemon> {
    Box::new(Bird::bird16(ns, pw))
}
fn gobgp(ns: &brindle_testkit::Netns, pw: Option<&str>) -> Box<dyn PeerDaemon> {
    Box::new(Gobgp::start(ns, pw))
}
fn frr(ns: &brindle_testkit::Netns, pw: Option<&str>) -> Box<dyn PeerDaemon> {
    Box::new(Frr::start(ns, pw))
}
fn exabgp(ns: &brindle_testkit::Netns, pw: Option<&str>) -> Box<dyn PeerDaemon> {
    Box::new(Exabgp::start(ns, pw))
}

#[test]
fn bird2_interop() {
    run(bird2);
}
#[test]
fn bird16_interop() {
    run(bird16);
}
#[test]
fn gobgp_interop() {
    run(gobgp);
}
#[test]
fn frr_interop() {
    run(frr);
}
#[test]
fn exabgp_interop() {
    run(exabgp);
}
#[test]
fn bird2_md5() {
    run_md5(bird2);
}
#[test]
fn bird16_md5() {
    run_md5(bird16);
}
#[test]
fn gobgp_md5() {
    run_md5(gobgp);
}
#[test]
fn frr_md5() {
    run_md5(frr);
}
#[test]
fn exabgp_md5() {
    run_md5(exabgp);
}

/// An IPv6 session (Calico's bird6 side): IPv6 blocks both ways through MP_REACH_NLRI, with the
/// session addresses as next hops.
#[test]
fn bird2_ipv6_session() {
    let fab = Fabric::new(2);
    let node = BrindleNode::start_dual(&fab.nodes[0], ME, "fd80:42::80");
    let bird = Bird::with_config(
        &fab.nodes[1],
        "router id 172.20.42.81;
protocol device { scan time 10; }
protocol direct { ipv6; interface \"eth0\"; }
protocol static own6 { ipv6; route fd00:87::/122 blackhole; }
protocol bgp Mesh_fd80_42__80 {
  local fd80:42::81 as 64512; neighbor fd80:42::80 as 64512;
  connect delay time 1; connect retry time 1; error wait time 1, 5; hold time 9;
  ipv6 { import all; export where proto = \"own6\"; next hop self; };
}
",
    );
    node.set_peers(vec![peer("fd80:42::81", false, None)]);
    node.originate(&["fd00:94::/122", OUR_BLOCK]);
    let dump = || format!("{}\n{}", node.dump(), bird.birdc("show protocols all"));
    wait_for(
        "IPv6 session Established",
        T,
        || node.established("fd80:42::81"),
        dump,
    );
    assert_eq!(node.peer_status("fd80:42::81").name, "Mesh_fd80_42__81");
    wait_for(
        "BIRD's IPv6 block via its address",
        T,
        || node.route_via("fd00:87::/122") == Some(ip("fd80:42::81")),
        dump,
    );
    wait_for(
        "our IPv6 block in BIRD",
        T,
        || {
            let out = bird.birdc("show route fd00:94::/122");
            out.contains("fd00:94::/122") && out.contains("fd80:42::80")
        },
        dump,
    );
    // Only the negotiated family goes: no IPv4 route on an IPv6-only channel.
    assert!(!bird.birdc("show route").contains(OUR_BLOCK));
}
