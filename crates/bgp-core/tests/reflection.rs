//! Route reflection (RFC 4456) and the export rules of BGPPeer options: reflection between
//! clients and non-clients, ORIGINATOR_ID / CLUSTER_LIST and their loop checks, next hop
//! modes, allowed local AS (allowas-in), and the incremental Adj-RIB-Out.

use std::net::{IpAddr, Ipv4Addr};

use brindle_bgp_core::*;
use brindle_bgp_wire::*;

mod support;
use support::*;

const CLUSTER: Ipv4Addr = Ipv4Addr::new(10, 255, 0, 1);

fn add(rib: &mut Rib, last: u8, asn: u32, rr_client: bool) -> PeerId {
    rib.add_peer(PeerInfo {
        rr_client,
        ..PeerInfo::new(addr(last), Ipv4Addr::new(172, 20, 42, last), asn, 64512)
    })
}

/// The route reflector's view: clients .1 and .2, non-clients .3 and .4, eBGP .9.
fn reflector() -> (Rib, [PeerId; 5]) {
    let mut rib = Rib::new(ME, 64512);
    rib.set_cluster_id(Some(CLUSTER));
    let ids = [
        add(&mut rib, 1, 64512, true),
        add(&mut rib, 2, 64512, true),
        add(&mut rib, 3, 64512, false),
        add(&mut rib, 4, 64512, false),
        add(&mut rib, 9, 65000, false),
    ];
    (rib, ids)
}

fn export(rib: &Rib, t: &ExportTarget, prefix: &str) -> Option<OutAttrs> {
    export_route(rib, t, &ExportPolicy::default(), net(prefix))
}

#[test]
fn reflection_rules() {
    let (mut rib, [c1, _, n3, _, _]) = reflector();
    announce(&mut rib, c1, attrs([172, 20, 42, 1]), &["10.233.1.0/26"]);
    announce(&mut rib, n3, attrs([172, 20, 42, 3]), &["10.233.3.0/26"]);

    // A client's route goes to the other client and to non-clients, never back.
    for t in [target(2, 64512, true), target(3, 64512, false)] {
        let a = export(&rib, &t, "10.233.1.0/26").unwrap_or_else(|| panic!("{t:?}"));
        // Next hop unchanged, ORIGINATOR_ID = the client, our cluster id in CLUSTER_LIST,
        // LOCAL_PREF kept.
        assert_eq!(a.attrs.next_hop, Some(Ipv4Addr::new(172, 20, 42, 1)));
        assert_eq!(a.attrs.originator_id, Some(Ipv4Addr::new(172, 20, 42, 1)));
        assert_eq!(a.attrs.cluster_list, vec![CLUSTER]);
        assert_eq!(a.attrs.local_pref, Some(100));
        assert_eq!(a.attrs.as_path, Some(AsPath::default()));
    }
    assert!(export(&rib, &target(1, 64512, true), "10.233.1.0/26").is_none());
    // A non-client's route goes to clients only.
    assert!(export(&rib, &target(2, 64512, true), "10.233.3.0/26").is_some());
    assert!(export(&rib, &target(4, 64512, false), "10.233.3.0/26").is_none());
    // eBGP peers get neither (not in an exported pool), and never RR attributes.
    assert!(export(&rib, &target(9, 65000, false), "10.233.1.0/26").is_none());
    let policy = ExportPolicy {
        learned_to_ebgp: vec![net("10.233.0.0/16")],
    };
    let e = export_route(&rib, &target(9, 65000, false), &policy, net("10.233.1.0/26")).unwrap();
    assert_eq!(e.attrs.originator_id, None);
    assert!(e.attrs.cluster_list.is_empty());
    assert_eq!(e.attrs.as_path, Some(AsPath::sequence(vec![64512])));
    assert_eq!(e.attrs.next_hop, Some(ME));

    // A route reflected before keeps its originator; our cluster goes first.
    let mut via = attrs([172, 20, 42, 3]);
    via.originator_id = Some(Ipv4Addr::new(10, 0, 0, 7));
    via.cluster_list = vec![Ipv4Addr::new(10, 255, 0, 2)];
    announce(&mut rib, n3, via, &["10.233.7.0/26"]);
    let a = export(&rib, &target(1, 64512, true), "10.233.7.0/26").unwrap();
    assert_eq!(a.attrs.originator_id, Some(Ipv4Addr::new(10, 0, 0, 7)));
    assert_eq!(a.attrs.cluster_list, vec![CLUSTER, Ipv4Addr::new(10, 255, 0, 2)]);

    // Without a cluster id nothing is reflected (plain iBGP, RFC 4271 §9.2).
    rib.set_cluster_id(None);
    assert!(export(&rib, &target(2, 64512, true), "10.233.1.0/26").is_none());
}

#[test]
fn reflection_loop_checks() {
    let (mut rib, [c1, _, n3, _, _]) = reflector();
    // Our own cluster id in CLUSTER_LIST (the other reflector of our cluster sent it back).
    let mut a = attrs([172, 20, 42, 3]);
    a.originator_id = Some(Ipv4Addr::new(172, 20, 42, 1));
    a.cluster_list = vec![CLUSTER];
    assert_eq!(announce(&mut rib, n3, a, &["10.233.1.0/26"]).ignored, 1);
    // Our router id as ORIGINATOR_ID.
    let mut a = attrs([172, 20, 42, 1]);
    a.originator_id = Some(ME);
    assert_eq!(announce(&mut rib, c1, a, &["10.233.2.0/26"]).ignored, 1);
    assert!(rib.is_empty());
    // A client (no cluster id of its own) accepts what carries a reflector's cluster id.
    let mut client = Rib::new(Ipv4Addr::new(172, 20, 42, 1), 64512);
    let rr = peer(&mut client, [172, 20, 42, 80], [172, 20, 42, 80], 64512);
    let mut a = attrs([172, 20, 42, 2]);
    a.originator_id = Some(Ipv4Addr::new(172, 20, 42, 2));
    a.cluster_list = vec![CLUSTER];
    assert_eq!(announce(&mut client, rr, a, &["10.233.2.0/26"]).announced, 1);
    assert_eq!(
        client.best(net("10.233.2.0/26")).unwrap().next_hop,
        IpAddr::V4(Ipv4Addr::new(172, 20, 42, 2))
    );
}

#[test]
fn allowed_local_as() {
    let mut rib = Rib::new(ME, 64512);
    let e = rib.add_peer(PeerInfo {
        allow_local_as: 1,
        ..PeerInfo::new(addr(9), Ipv4Addr::new(172, 20, 42, 9), 65000, 64512)
    });
    let mut once = attrs([172, 20, 42, 9]);
    once.as_path = Some(AsPath::sequence(vec![65000, 64512, 65001]));
    assert_eq!(announce(&mut rib, e, once, &["10.1.0.0/16"]).announced, 1);
    let mut twice = attrs([172, 20, 42, 9]);
    twice.as_path = Some(AsPath::sequence(vec![65000, 64512, 64512]));
    assert_eq!(announce(&mut rib, e, twice, &["10.2.0.0/16"]).ignored, 1);
    // The AS checked is the session's (a per-peer local AS), not only the node's.
    let mut rib = Rib::new(ME, 64512);
    let e = rib.add_peer(PeerInfo::new(
        addr(9),
        Ipv4Addr::new(172, 20, 42, 9),
        65000,
        64999,
    ));
    let mut a = attrs([172, 20, 42, 9]);
    a.as_path = Some(AsPath::sequence(vec![65000, 64999]));
    assert_eq!(announce(&mut rib, e, a, &["10.3.0.0/16"]).ignored, 1);
}

#[test]
fn next_hop_modes() {
    let mut rib = Rib::new(ME, 64512);
    let e = add(&mut rib, 9, 65000, false);
    announce(&mut rib, e, attrs([172, 20, 42, 9]), &["10.233.9.0/24"]);
    rib.originate(net("10.233.80.0/24"));
    let policy = ExportPolicy {
        learned_to_ebgp: vec![net("10.233.0.0/16")],
    };
    let nh =
        |t: &ExportTarget, p: &str| export_route(&rib, t, &policy, net(p)).and_then(|a| a.attrs.next_hop);
    let learned_nh = Some(Ipv4Addr::new(172, 20, 42, 9));
    // eBGP-learned to iBGP: Auto keeps the next hop, Self sets ours.
    let mut ibgp = target(3, 64512, false);
    assert_eq!(nh(&ibgp, "10.233.9.0/24"), learned_nh);
    ibgp.next_hop = NextHopMode::SetSelf;
    assert_eq!(nh(&ibgp, "10.233.9.0/24"), Some(ME));
    // To another eBGP peer: Auto sets ours, Keep keeps the original (keepOriginalNextHop).
    let mut other = target(8, 65001, false);
    assert_eq!(nh(&other, "10.233.9.0/24"), Some(ME));
    other.next_hop = NextHopMode::Keep;
    assert_eq!(nh(&other, "10.233.9.0/24"), learned_nh);
    // What we originate always has our next hop.
    assert_eq!(nh(&other, "10.233.80.0/24"), Some(ME));
    // Never back to where it came from.
    assert_eq!(nh(&target(9, 65000, false), "10.233.9.0/24"), None);
}

#[test]
fn incremental_adj_rib_out() {
    let (mut rib, [c1, ..]) = reflector();
    let t = target(2, 64512, true);
    let policy = ExportPolicy::default();
    let mut out = AdjRibOut::new();
    rib.originate(net("10.233.80.0/24"));
    assert_eq!(rib.drain_changed_prefixes(), vec![net("10.233.80.0/24")]);
    assert_eq!(decode_all(&out.sync(desired(&rib, &t, &policy), &ctx())).len(), 1);
    // A client announces 3 prefixes in one UPDATE: one UPDATE out (one attribute set).
    announce(
        &mut rib,
        c1,
        attrs([172, 20, 42, 1]),
        &["10.233.1.0/26", "10.233.1.64/26", "10.233.1.128/26"],
    );
    let changed = rib.drain_changed_prefixes();
    assert_eq!(changed.len(), 3);
    let mut ex = Exporter::new(&rib, &t, &policy);
    for p in &changed {
        out.set(*p, ex.prefix(*p));
    }
    let msgs = decode_all(&out.flush(&ctx()));
    assert_eq!(msgs.len(), 1);
    assert_eq!(msgs[0].nlri.len(), 3);
    // Nothing changed: nothing queued, nothing sent.
    let mut ex = Exporter::new(&rib, &t, &policy);
    out.set(net("10.233.1.0/26"), ex.prefix(net("10.233.1.0/26")));
    assert!(!out.has_pending());
    // A withdrawal.
    apply(
        &mut rib,
        c1,
        UpdateMsg {
            withdrawn: vec![Nlri::new(net("10.233.1.64/26"))],
            ..UpdateMsg::default()
        },
    );
    let changed = rib.drain_changed_prefixes();
    let mut ex = Exporter::new(&rib, &t, &policy);
    for p in changed {
        out.set(p, ex.prefix(p));
    }
    let msgs = decode_all(&out.flush(&ctx()));
    assert_eq!(msgs[0].withdrawn, vec![Nlri::new(net("10.233.1.64/26"))]);
    assert_eq!(out.sent().len(), 3);
}

use brindle_bgp_core::export::desired;
