//! RIB: the RFC 4271 §9.1 decision process step by step, withdrawals, peer flush, local
//! origination shadowing learned routes, interning, and Calico's export policy.

use std::net::{IpAddr, Ipv4Addr};

use brindle_bgp_core::*;
use brindle_bgp_wire::*;
use ipnet::IpNet;

mod support;
use support::*;

#[test]
fn decision_process_steps() {
    type Tweak = fn(&mut PathAttrs);
    // Each row: (what differs, tweak for peer A's path, tweak for B's, expected winner).
    let rows: Vec<(&str, Tweak, Tweak, char)> = vec![
        ("local pref", |a| a.local_pref = Some(200), |_| {}, 'A'),
        (
            "as path length",
            |a| a.as_path = Some(AsPath::sequence(vec![65001, 65002])),
            |b| b.as_path = Some(AsPath::sequence(vec![65001])),
            'B',
        ),
        (
            "origin",
            |a| a.origin = Some(Origin::Incomplete),
            |b| b.origin = Some(Origin::Egp),
            'B',
        ),
        (
            "med, same neighbour AS",
            |a| {
                a.as_path = Some(AsPath::sequence(vec![65001]));
                a.med = Some(10)
            },
            |b| {
                b.as_path = Some(AsPath::sequence(vec![65001]));
                b.med = Some(5)
            },
            'B',
        ),
        (
            "med ignored across AS, falls to router id",
            |a| {
                a.as_path = Some(AsPath::sequence(vec![65001]));
                a.med = Some(10)
            },
            |b| {
                b.as_path = Some(AsPath::sequence(vec![65002]));
                b.med = Some(5)
            },
            'A',
        ),
        ("router id (A lower)", |_| {}, |_| {}, 'A'),
        (
            "originator id replaces router id",
            |a| a.originator_id = Some(Ipv4Addr::new(10, 9, 9, 9)),
            |b| b.originator_id = Some(Ipv4Addr::new(10, 1, 1, 1)),
            'B',
        ),
        (
            "cluster list length",
            |a| {
                a.originator_id = Some(Ipv4Addr::new(10, 1, 1, 1));
                a.cluster_list = vec![ME, ME]
            },
            |b| {
                b.originator_id = Some(Ipv4Addr::new(10, 1, 1, 1));
                b.cluster_list = vec![ME]
            },
            'B',
        ),
    ];
    for (name, ta, tb, want) in rows {
        for order in [false, true] {
            let mut rib = Rib::new(ME, 64512);
            let a = peer(&mut rib, [172, 20, 42, 81], [172, 20, 42, 81], 64512);
            let b = peer(&mut rib, [172, 20, 42, 82], [172, 20, 42, 82], 64512);
            let mut pa = attrs([172, 20, 42, 81]);
            let mut pb = attrs([172, 20, 42, 82]);
            ta(&mut pa);
            tb(&mut pb);
            if order {
                announce(&mut rib, b, pb, &["10.233.1.0/24"]);
                announce(&mut rib, a, pa, &["10.233.1.0/24"]);
            } else {
                announce(&mut rib, a, pa, &["10.233.1.0/24"]);
                announce(&mut rib, b, pb, &["10.233.1.0/24"]);
            }
            let w = if want == 'A' {
                "172.20.42.81"
            } else {
                "172.20.42.82"
            };
            assert_eq!(
                best_peer(&rib, "10.233.1.0/24"),
                Some(w.parse().unwrap()),
                "{name} (order {order})"
            );
        }
    }
    // eBGP over iBGP.
    let mut rib = Rib::new(ME, 64512);
    let i = peer(&mut rib, [172, 20, 42, 81], [1, 1, 1, 1], 64512);
    let e = peer(&mut rib, [172, 20, 42, 82], [9, 9, 9, 9], 65000);
    announce(&mut rib, i, attrs([172, 20, 42, 81]), &["10.233.1.0/24"]);
    let mut ea = attrs([172, 20, 42, 82]);
    ea.as_path = Some(AsPath::default());
    announce(&mut rib, e, ea, &["10.233.1.0/24"]);
    assert_eq!(
        best_peer(&rib, "10.233.1.0/24"),
        Some("172.20.42.82".parse().unwrap())
    );
    // Peer address breaks the last tie.
    let mut rib = Rib::new(ME, 64512);
    let b = peer(&mut rib, [172, 20, 42, 82], [7, 7, 7, 7], 64512);
    let a = peer(&mut rib, [172, 20, 42, 81], [7, 7, 7, 7], 64512);
    announce(&mut rib, b, attrs([172, 20, 42, 82]), &["10.233.1.0/24"]);
    announce(&mut rib, a, attrs([172, 20, 42, 81]), &["10.233.1.0/24"]);
    assert_eq!(
        best_peer(&rib, "10.233.1.0/24"),
        Some("172.20.42.81".parse().unwrap())
    );
}

#[test]
fn changes_withdrawals_and_peer_flush() {
    let mut rib = Rib::new(ME, 64512);
    let a = peer(&mut rib, [172, 20, 42, 81], [172, 20, 42, 81], 64512);
    let b = peer(&mut rib, [172, 20, 42, 82], [172, 20, 42, 82], 64512);
    announce(
        &mut rib,
        a,
        attrs([172, 20, 42, 81]),
        &["10.233.87.0/24", "10.233.88.0/24"],
    );
    let ch = rib.drain_changes();
    assert_eq!(ch.len(), 2);
    assert_eq!(
        ch[0].best.as_ref().unwrap().next_hop,
        "172.20.42.81".parse::<IpAddr>().unwrap()
    );
    assert_eq!(rib.attr_sets(), 2, "one set for the UPDATE plus the local set");
    // A worse path from b changes nothing visible.
    let mut worse = attrs([172, 20, 42, 82]);
    worse.local_pref = Some(50);
    announce(&mut rib, b, worse, &["10.233.87.0/24"]);
    assert!(rib.drain_changes().is_empty());
    // Withdrawing a's path makes b's the best.
    apply(
        &mut rib,
        a,
        UpdateMsg {
            withdrawn: vec![Nlri::new(net("10.233.87.0/24"))],
            ..UpdateMsg::default()
        },
    );
    let ch = rib.drain_changes();
    assert_eq!(ch.len(), 1);
    assert_eq!(
        ch[0].best.as_ref().unwrap().peer,
        "172.20.42.82".parse::<IpAddr>().unwrap()
    );
    assert_eq!(rib.peer_route_count(a), 1);
    // Flushing b drops its route.
    rib.remove_peer(b);
    let ch = rib.drain_changes();
    assert_eq!(
        ch,
        vec![RouteChange {
            prefix: net("10.233.87.0/24"),
            best: None,
            had_learned: true
        }]
    );
    assert_eq!(rib.len(), 1);
    rib.remove_peer(a);
    assert!(rib.is_empty());
    assert_eq!(rib.attr_sets(), 1, "only the local set is left");
}

#[test]
fn local_origination_shadows_learned_routes() {
    let mut rib = Rib::new(ME, 64512);
    let a = peer(&mut rib, [172, 20, 42, 81], [172, 20, 42, 81], 64512);
    announce(&mut rib, a, attrs([172, 20, 42, 81]), &["10.233.94.0/24"]);
    rib.drain_changes();
    rib.originate(net("10.233.94.0/24"));
    assert_eq!(
        rib.drain_changes(),
        vec![RouteChange {
            prefix: net("10.233.94.0/24"),
            best: None,
            had_learned: true
        }]
    );
    assert_eq!(rib.best(net("10.233.94.0/24")), None);
    rib.withdraw_local(net("10.233.94.0/24"));
    assert_eq!(
        best_peer(&rib, "10.233.94.0/24"),
        Some("172.20.42.81".parse().unwrap())
    );
    assert_eq!(rib.originated(), Vec::<IpNet>::new());
}

#[test]
fn loops_are_ignored() {
    let mut rib = Rib::new(ME, 64512);
    let e = peer(&mut rib, [172, 20, 42, 1], [172, 20, 42, 1], 65000);
    let mut a = attrs([172, 20, 42, 1]);
    a.as_path = Some(AsPath::sequence(vec![65000, 64512]));
    let st = apply(
        &mut rib,
        e,
        UpdateMsg {
            attrs: a,
            nlri: vec![Nlri::new(net("10.1.0.0/16"))],
            ..UpdateMsg::default()
        },
    );
    assert_eq!((st.announced, st.ignored), (0, 1));
    let i = peer(&mut rib, [172, 20, 42, 81], [172, 20, 42, 81], 64512);
    let mut a = attrs([172, 20, 42, 81]);
    a.originator_id = Some(ME);
    let st = apply(
        &mut rib,
        i,
        UpdateMsg {
            attrs: a,
            nlri: vec![Nlri::new(net("10.2.0.0/16"))],
            ..UpdateMsg::default()
        },
    );
    assert_eq!(st.ignored, 1);
    assert!(rib.is_empty());
}

#[test]
fn ipv6_routes_via_mp_reach() {
    let mut rib = Rib::new(ME, 64512);
    let a = peer(&mut rib, [172, 20, 42, 81], [172, 20, 42, 81], 64512);
    let u = UpdateMsg {
        attrs: PathAttrs {
            next_hop: None,
            ..attrs([0, 0, 0, 0])
        },
        mp_reach: Some(OwnedMpReach {
            family: Family::IPV6_UNICAST,
            next_hop: MpNextHop::V6 {
                global: "fd00::81".parse().unwrap(),
                link_local: Some("fe80::1".parse().unwrap()),
            },
            nlri: vec![Nlri::new(net("fd00:94::/122"))],
        }),
        ..UpdateMsg::default()
    };
    apply(&mut rib, a, u);
    let b = rib.best(net("fd00:94::/122")).unwrap();
    assert_eq!(b.next_hop, "fd00::81".parse::<IpAddr>().unwrap());
    assert_eq!(b.attrs.link_local, Some("fe80::1".parse().unwrap()));
}

fn target(ibgp: bool) -> ExportTarget {
    ExportTarget {
        peer_addr: "172.20.42.81".parse().unwrap(),
        local_as: 64512,
        remote_as: if ibgp { 64512 } else { 65000 },
        next_hop_v4: Some(ME),
        next_hop_v6: None,
        next_hop_v6_link_local: None,
        families: vec![Family::IPV4_UNICAST],
        rr_client: false,
        next_hop: NextHopMode::Auto,
        filters: Default::default(),
    }
}

#[test]
fn export_policy_and_adj_rib_out() {
    let mut rib = Rib::new(ME, 64512);
    let a = peer(&mut rib, [172, 20, 42, 81], [172, 20, 42, 81], 64512);
    announce(&mut rib, a, attrs([172, 20, 42, 81]), &["10.233.87.0/24"]);
    rib.originate(net("10.233.94.0/24"));
    rib.originate(net("10.233.87.5/32"));
    rib.originate(net("fd00:94::/122"));
    let policy = ExportPolicy {
        learned_to_ebgp: vec![net("10.233.0.0/16")],
    };

    // iBGP: only what we originate (v4 family only here), next hop self, LOCAL_PREF 100.
    let d = desired(&rib, &target(true), &policy);
    assert_eq!(
        d.keys().copied().collect::<Vec<_>>(),
        vec![net("10.233.87.5/32"), net("10.233.94.0/24")]
    );
    let out = &d[&net("10.233.94.0/24")];
    assert_eq!(out.attrs.next_hop, Some(ME));
    assert_eq!(out.attrs.local_pref, Some(100));
    assert_eq!(out.attrs.as_path, Some(AsPath::default()));
    // eBGP: also learned routes inside the pools, our AS prepended, no LOCAL_PREF.
    let mut t = target(false);
    t.peer_addr = "172.20.42.1".parse().unwrap();
    let d = desired(&rib, &t, &policy);
    assert!(d.contains_key(&net("10.233.87.0/24")));
    assert_eq!(
        d[&net("10.233.94.0/24")].attrs.as_path,
        Some(AsPath::sequence(vec![64512]))
    );
    assert_eq!(d[&net("10.233.94.0/24")].attrs.local_pref, None);

    // Adj-RIB-Out sends a diff: everything first, then only the withdrawal.
    let mut out = AdjRibOut::new();
    let bytes = out.sync(desired(&rib, &target(true), &policy), &ctx());
    let msgs = decode_all(&bytes);
    assert_eq!(msgs.iter().map(|u| u.nlri.len()).sum::<usize>(), 2);
    assert_eq!(msgs.len(), 1, "one attribute set, one UPDATE");
    rib.withdraw_local(net("10.233.87.5/32"));
    let bytes = out.sync(desired(&rib, &target(true), &policy), &ctx());
    let msgs = decode_all(&bytes);
    assert_eq!(msgs.len(), 1);
    assert_eq!(msgs[0].withdrawn, vec![Nlri::new(net("10.233.87.5/32"))]);
    assert!(out.sync(desired(&rib, &target(true), &policy), &ctx()).is_empty());
}

use brindle_bgp_core::export::desired;
