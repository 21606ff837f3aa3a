//! Transitions of a running node's export rules (what the speaker's `reconfigure` does with
//! them): the export policy and the route-reflector cluster id change over a RIB that holds
//! routes and Adj-RIB-Outs that were already sent, and syncing each peer's Adj-RIB-Out again
//! yields exactly the UPDATEs and withdrawals the new rules call for; a peer becoming a
//! reflector client changes what others get; a cluster id change drops the paths that loop
//! under it.

use std::net::Ipv4Addr;

use brindle_bgp_core::*;

mod support;
use support::*;

const CLUSTER: Ipv4Addr = Ipv4Addr::new(10, 255, 0, 1);

fn pools(p: &[&str]) -> ExportPolicy {
    ExportPolicy {
        learned_to_ebgp: p.iter().map(|s| net(s)).collect(),
    }
}

/// What one sync of `out` towards `t` sends: (announced, withdrawn) prefixes.
fn sync(
    rib: &Rib,
    t: &ExportTarget,
    policy: &ExportPolicy,
    out: &mut AdjRibOut,
) -> (Vec<String>, Vec<String>) {
    let mut ann = Vec::new();
    let mut wd = Vec::new();
    for u in decode_all(&out.sync(export::desired(rib, t, policy), &ctx())) {
        ann.extend(u.nlri.iter().map(|n| n.prefix.to_string()));
        wd.extend(u.withdrawn.iter().map(|n| n.prefix.to_string()));
    }
    ann.sort();
    wd.sort();
    (ann, wd)
}

fn strs(v: &[&str]) -> Vec<String> {
    v.iter().map(|s| s.to_string()).collect()
}

/// This node (.80) with iBGP peers .1 (maybe a reflector client) and .3, eBGP .9; .1 sent a
/// pool route and another one, .3 one route; the node originates its block.
fn node() -> (Rib, PeerId, PeerId) {
    let mut rib = Rib::new(ME, 64512);
    let one = rib.add_peer(PeerInfo::new(
        addr(1),
        Ipv4Addr::new(172, 20, 42, 1),
        64512,
        64512,
    ));
    let three = rib.add_peer(PeerInfo::new(
        addr(3),
        Ipv4Addr::new(172, 20, 42, 3),
        64512,
        64512,
    ));
    rib.add_peer(PeerInfo::new(
        addr(9),
        Ipv4Addr::new(172, 20, 42, 9),
        65000,
        64512,
    ));
    rib.originate(net("10.233.0.0/26"));
    announce(
        &mut rib,
        one,
        attrs([172, 20, 42, 1]),
        &["10.233.1.0/26", "192.168.5.0/24"],
    );
    announce(&mut rib, three, attrs([172, 20, 42, 3]), &["10.234.3.0/26"]);
    rib.discard_changes();
    (rib, one, three)
}

#[test]
fn export_policy_change_sends_only_the_difference() {
    let (rib, _, _) = node();
    let ebgp = target(9, 65000, false);
    let ibgp = target(3, 64512, false);
    let (mut out_e, mut out_i) = (AdjRibOut::new(), AdjRibOut::new());
    let none = pools(&[]);
    // The session came up under no pool: only our block.
    assert_eq!(
        sync(&rib, &ebgp, &none, &mut out_e),
        (strs(&["10.233.0.0/26"]), vec![])
    );
    assert_eq!(
        sync(&rib, &ibgp, &none, &mut out_i),
        (strs(&["10.233.0.0/26"]), vec![])
    );
    // A pool is created: the eBGP peer gets the learned route inside it, nothing else; the
    // iBGP peer gets nothing (iBGP-learned routes do not go to iBGP peers).
    let one = pools(&["10.233.0.0/16"]);
    assert_eq!(
        sync(&rib, &ebgp, &one, &mut out_e),
        (strs(&["10.233.1.0/26"]), vec![])
    );
    assert_eq!(sync(&rib, &ibgp, &one, &mut out_i), (vec![], vec![]));
    // Syncing again under the same policy sends nothing.
    assert_eq!(sync(&rib, &ebgp, &one, &mut out_e), (vec![], vec![]));
    // A second pool, covering .3's route.
    let two = pools(&["10.233.0.0/16", "10.234.0.0/16"]);
    assert_eq!(
        sync(&rib, &ebgp, &two, &mut out_e),
        (strs(&["10.234.3.0/26"]), vec![])
    );
    // Both pools deleted: withdrawals of exactly what they let through.
    assert_eq!(
        sync(&rib, &ebgp, &none, &mut out_e),
        (vec![], strs(&["10.233.1.0/26", "10.234.3.0/26"]))
    );
    assert_eq!(out_e.sent().len(), 1);
}

#[test]
fn cluster_id_and_client_changes_reflect_and_unreflect() {
    let (mut rib, one, _) = node();
    let policy = pools(&[]);
    let (mut to_3, mut to_1) = (AdjRibOut::new(), AdjRibOut::new());
    let t3 = target(3, 64512, false);
    assert_eq!(
        sync(&rib, &t3, &policy, &mut to_3),
        (strs(&["10.233.0.0/26"]), vec![])
    );
    assert_eq!(
        sync(&rib, &target(1, 64512, false), &policy, &mut to_1).1,
        Vec::<String>::new()
    );
    // The node becomes a reflector and .1 its client: .1's routes go to .3 (next hop and
    // ORIGINATOR_ID .1, our cluster id listed), .3's go to .1.
    assert_eq!(rib.change_cluster_id(Some(CLUSTER)), 0);
    let info = rib.peer(one).unwrap().clone();
    rib.update_peer(
        one,
        PeerInfo {
            rr_client: true,
            ..info.clone()
        },
    );
    let t1 = target(1, 64512, true);
    assert_eq!(
        sync(&rib, &t3, &policy, &mut to_3),
        (strs(&["10.233.1.0/26", "192.168.5.0/24"]), vec![])
    );
    let a = to_3.sent().get(&net("10.233.1.0/26")).unwrap();
    assert_eq!(a.attrs.next_hop, Some(Ipv4Addr::new(172, 20, 42, 1)));
    assert_eq!(a.attrs.originator_id, Some(Ipv4Addr::new(172, 20, 42, 1)));
    assert_eq!(a.attrs.cluster_list, vec![CLUSTER]);
    assert_eq!(
        sync(&rib, &t1, &policy, &mut to_1),
        (strs(&["10.234.3.0/26"]), vec![])
    );
    // Another cluster id: the reflected routes carry the new one (re-announced), no withdrawal.
    let other = Ipv4Addr::new(10, 255, 0, 2);
    rib.change_cluster_id(Some(other));
    assert_eq!(
        sync(&rib, &t3, &policy, &mut to_3),
        (strs(&["10.233.1.0/26", "192.168.5.0/24"]), vec![])
    );
    assert_eq!(
        to_3.sent().get(&net("10.233.1.0/26")).unwrap().attrs.cluster_list,
        vec![other]
    );
    // No reflector any more: withdrawn on both sides.
    rib.change_cluster_id(None);
    rib.update_peer(one, info);
    assert_eq!(
        sync(&rib, &t3, &policy, &mut to_3),
        (vec![], strs(&["10.233.1.0/26", "192.168.5.0/24"]))
    );
    assert_eq!(
        sync(&rib, &target(1, 64512, false), &policy, &mut to_1),
        (vec![], strs(&["10.234.3.0/26"]))
    );
}

#[test]
fn a_new_cluster_id_drops_the_paths_that_loop_under_it() {
    let (mut rib, one, three) = node();
    // .3 sent a route that went through cluster 10.255.0.1 (another reflector of it).
    let mut looped = attrs([172, 20, 42, 3]);
    looped.originator_id = Some(Ipv4Addr::new(172, 20, 42, 7));
    looped.cluster_list = vec![Ipv4Addr::new(10, 9, 9, 9), CLUSTER];
    announce(
        &mut rib,
        three,
        looped.clone(),
        &["10.235.0.0/26", "10.235.1.0/26"],
    );
    announce(&mut rib, one, attrs([172, 20, 42, 1]), &["10.235.1.0/26"]);
    rib.discard_changes();
    assert_eq!(rib.peer_route_count(three), 3);
    // Joining that cluster makes them loops (RFC 4456 §8): both paths go; where .1 had a path
    // too (already best: shorter CLUSTER_LIST) it stays, the other prefix is gone.
    assert_eq!(rib.change_cluster_id(Some(CLUSTER)), 2);
    assert_eq!(rib.peer_route_count(three), 1);
    assert_eq!(best_peer(&rib, "10.235.1.0/26"), Some(addr(1)));
    assert_eq!(best_peer(&rib, "10.235.0.0/26"), None);
    let changed: Vec<String> = rib
        .drain_changes()
        .into_iter()
        .map(|c| format!("{} {:?}", c.prefix, c.best.map(|b| b.peer)))
        .collect();
    assert_eq!(changed, ["10.235.0.0/26 None"]);
    // And a route announced again with the cluster id in it is refused, as at session start.
    let st = announce(&mut rib, three, looped, &["10.235.2.0/26"]);
    assert_eq!(st.ignored, 1);
    // Leaving the cluster drops nothing.
    assert_eq!(rib.change_cluster_id(None), 0);
}
