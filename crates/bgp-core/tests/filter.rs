//! BGPFilter semantics (confd's rendering into BIRD functions, evaluated as BIRD does): a table
//! of rule × prefix × direction → verdict, first match over a peer's filters in order, the
//! defaults when nothing matches, BGPFilter resources read from YAML, and the filters at work
//! in the RIB (import, with live re-evaluation) and in export (with Calico's rules after them).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::sync::Arc;

use brindle_bgp_core::filter::{
    Action, BgpFilter, Direction, MatchOperator, PrefixMatch, RouteFacts, Rule, Verdict, evaluate, glob_match,
};
use brindle_bgp_core::*;
use brindle_bgp_wire::*;

mod support;
use support::*;

fn facts(prefix: &str, learned: bool, iface: Option<&'static str>) -> RouteFacts<'static> {
    RouteFacts {
        prefix: net(prefix),
        learned,
        interface: iface,
    }
}

fn cidr_rule(cidr: &str, op: MatchOperator, lengths: Option<(i32, i32)>, action: Action) -> Rule {
    let prefix = match lengths {
        Some((lo, hi)) => PrefixMatch::with_lengths(net(cidr), op, Some(lo), Some(hi)),
        None => PrefixMatch {
            cidr: net(cidr),
            op,
            lengths: None,
        },
    };
    Rule {
        prefix: Some(prefix),
        ..Rule::always(action)
    }
}

fn only(list: Direction, v6: bool, rules: Vec<Rule>) -> Vec<BgpFilter> {
    let mut f = BgpFilter {
        name: "f".into(),
        ..BgpFilter::default()
    };
    match (list, v6) {
        (Direction::Import, false) => f.import_v4 = rules,
        (Direction::Import, true) => f.import_v6 = rules,
        (Direction::Export, false) => f.export_v4 = rules,
        (Direction::Export, true) => f.export_v6 = rules,
    }
    vec![f]
}

use Action::{Accept, Reject};
use MatchOperator::{Equal, In, NotEqual, NotIn};

/// One rule against routes: `Some(verdict)` when it matches, `None` when evaluation goes on.
#[test]
fn rule_prefix_direction_table() {
    type Row = (&'static str, Rule, &'static str, Option<Verdict>);
    let rows: Vec<Row> = vec![
        // matchOperator without prefixLength: BIRD's =, !=, ~, !~ on prefixes.
        (
            "Equal, same",
            cidr_rule("10.0.0.0/16", Equal, None, Accept),
            "10.0.0.0/16",
            Some(Verdict::Accept),
        ),
        (
            "Equal, longer",
            cidr_rule("10.0.0.0/16", Equal, None, Accept),
            "10.0.1.0/24",
            None,
        ),
        (
            "Equal, other",
            cidr_rule("10.0.0.0/16", Equal, None, Accept),
            "10.1.0.0/16",
            None,
        ),
        (
            "NotEqual, same",
            cidr_rule("10.0.0.0/16", NotEqual, None, Reject),
            "10.0.0.0/16",
            None,
        ),
        (
            "NotEqual, longer",
            cidr_rule("10.0.0.0/16", NotEqual, None, Reject),
            "10.0.1.0/24",
            Some(Verdict::Reject),
        ),
        (
            "In, equal",
            cidr_rule("10.0.0.0/16", In, None, Accept),
            "10.0.0.0/16",
            Some(Verdict::Accept),
        ),
        (
            "In, inside",
            cidr_rule("10.0.0.0/16", In, None, Accept),
            "10.0.200.7/32",
            Some(Verdict::Accept),
        ),
        (
            "In, shorter",
            cidr_rule("10.0.0.0/16", In, None, Accept),
            "10.0.0.0/8",
            None,
        ),
        (
            "In, outside",
            cidr_rule("10.0.0.0/16", In, None, Accept),
            "10.1.0.0/24",
            None,
        ),
        (
            "NotIn, inside",
            cidr_rule("10.0.0.0/16", NotIn, None, Reject),
            "10.0.3.0/24",
            None,
        ),
        (
            "NotIn, outside",
            cidr_rule("10.0.0.0/16", NotIn, None, Reject),
            "192.168.0.0/24",
            Some(Verdict::Reject),
        ),
        (
            "NotIn, shorter",
            cidr_rule("10.0.0.0/16", NotIn, None, Reject),
            "10.0.0.0/8",
            Some(Verdict::Reject),
        ),
        // prefixLength: [cidr{min,max}] with min >= the cidr's length, max <= 32/128.
        (
            "In /16-24, a /24",
            cidr_rule("10.0.0.0/8", In, Some((16, 24)), Accept),
            "10.5.5.0/24",
            Some(Verdict::Accept),
        ),
        (
            "In /16-24, a /26",
            cidr_rule("10.0.0.0/8", In, Some((16, 24)), Accept),
            "10.5.5.0/26",
            None,
        ),
        (
            "In /16-24, the /8",
            cidr_rule("10.0.0.0/8", In, Some((16, 24)), Accept),
            "10.0.0.0/8",
            None,
        ),
        (
            "In min below cidr",
            cidr_rule("10.0.0.0/16", In, Some((8, 32)), Accept),
            "10.0.0.0/16",
            Some(Verdict::Accept),
        ),
        (
            "In min below cidr, /12",
            cidr_rule("10.0.0.0/16", In, Some((8, 32)), Accept),
            "10.0.0.0/12",
            None,
        ),
        (
            "NotIn /25-32, a /26",
            cidr_rule("10.0.10.0/24", NotIn, Some((25, 32)), Reject),
            "10.0.10.64/26",
            None,
        ),
        (
            "NotIn /25-32, the /24",
            cidr_rule("10.0.10.0/24", NotIn, Some((25, 32)), Reject),
            "10.0.10.0/24",
            Some(Verdict::Reject),
        ),
        // Equal against a prefix set: BIRD's runtime error, the route is rejected.
        (
            "Equal with prefixLength",
            cidr_rule("10.0.0.0/16", Equal, Some((16, 24)), Accept),
            "10.0.0.0/16",
            Some(Verdict::Error),
        ),
        (
            "NotEqual with prefixLength",
            cidr_rule("10.0.0.0/16", NotEqual, Some((16, 24)), Accept),
            "172.16.0.0/16",
            Some(Verdict::Error),
        ),
        // IPv6.
        (
            "v6 In",
            cidr_rule("fd00::/8", In, None, Accept),
            "fd00:94::/122",
            Some(Verdict::Accept),
        ),
        (
            "v6 In /48-64, a /122",
            cidr_rule("fd00::/8", In, Some((48, 64)), Accept),
            "fd00:94::/122",
            None,
        ),
        (
            "v6 In /48-64, a /64",
            cidr_rule("fd00::/8", In, Some((48, 64)), Accept),
            "fd00:94::/64",
            Some(Verdict::Accept),
        ),
        (
            "v6 Equal /128",
            cidr_rule("fd00::1/128", Equal, None, Reject),
            "fd00::1/128",
            Some(Verdict::Reject),
        ),
        // No condition at all: always.
        (
            "bare Reject",
            Rule::always(Reject),
            "10.9.9.0/24",
            Some(Verdict::Reject),
        ),
    ];
    for (what, rule, prefix, want) in rows {
        let v6 = prefix.contains(':');
        for dir in [Direction::Import, Direction::Export] {
            let filters = only(dir, v6, vec![rule.clone()]);
            let got = evaluate(&filters, dir, &facts(prefix, true, Some("eth0")));
            assert_eq!(got, want, "{what}: {prefix} {dir:?}");
            // The other direction's and the other family's lists do not apply.
            let other = if dir == Direction::Import {
                Direction::Export
            } else {
                Direction::Import
            };
            assert_eq!(
                evaluate(&filters, other, &facts(prefix, true, None)),
                None,
                "{what}"
            );
        }
    }
}

#[test]
fn source_and_interface_conditions() {
    let remote = Rule {
        remote_peers_only: true,
        ..Rule::always(Reject)
    };
    let f = only(Direction::Export, false, vec![remote]);
    // Learned routes match RemotePeers; what we originate does not.
    assert_eq!(
        evaluate(&f, Direction::Export, &facts("10.1.0.0/24", true, None)),
        Some(Verdict::Reject)
    );
    assert_eq!(
        evaluate(&f, Direction::Export, &facts("10.1.0.0/24", false, None)),
        None
    );

    let iface = |pat: &str| {
        only(
            Direction::Export,
            false,
            vec![Rule {
                interface: Some(pat.into()),
                ..Rule::always(Accept)
            }],
        )
    };
    let on = |pat: &str, i: Option<&'static str>| {
        evaluate(&iface(pat), Direction::Export, &facts("10.1.0.1/32", false, i)).is_some()
    };
    assert!(on("cali*", Some("cali12345abcdef")));
    assert!(!on("cali*", Some("eth0")));
    assert!(on("*.calico", Some("vxlan.calico")));
    assert!(!on("*.calico", Some("tunl0")));
    assert!(on("eth?", Some("eth1")));
    // No interface reads as "": only a pattern matching the empty name takes it.
    assert!(on("*", None));
    assert!(!on("eth*", None));
    // All conditions must hold.
    let both = only(
        Direction::Import,
        false,
        vec![Rule {
            interface: Some("eth0".into()),
            ..cidr_rule("10.0.0.0/8", In, None, Reject)
        }],
    );
    assert_eq!(
        evaluate(
            &both,
            Direction::Import,
            &facts("10.1.0.0/16", true, Some("eth0"))
        ),
        Some(Verdict::Reject)
    );
    assert_eq!(
        evaluate(
            &both,
            Direction::Import,
            &facts("10.1.0.0/16", true, Some("eth1"))
        ),
        None
    );
    assert_eq!(
        evaluate(
            &both,
            Direction::Import,
            &facts("11.0.0.0/16", true, Some("eth0"))
        ),
        None
    );
}

#[test]
fn first_match_wins_over_rules_and_filters() {
    let a = BgpFilter {
        name: "a".into(),
        import_v4: vec![
            cidr_rule("10.0.1.0/24", Equal, None, Accept),
            cidr_rule("10.0.0.0/16", In, None, Reject),
        ],
        ..BgpFilter::default()
    };
    let b = BgpFilter {
        name: "b".into(),
        import_v4: vec![cidr_rule("10.0.0.0/8", In, None, Accept), Rule::always(Reject)],
        ..BgpFilter::default()
    };
    let both = vec![a.clone(), b.clone()];
    let v = |fs: &[BgpFilter], p: &str| evaluate(fs, Direction::Import, &facts(p, true, None));
    assert_eq!(v(&both, "10.0.1.0/24"), Some(Verdict::Accept), "a's first rule");
    assert_eq!(v(&both, "10.0.2.0/24"), Some(Verdict::Reject), "a's second rule");
    assert_eq!(
        v(&both, "10.9.0.0/24"),
        Some(Verdict::Accept),
        "falls through to b"
    );
    assert_eq!(v(&both, "192.168.0.0/24"), Some(Verdict::Reject), "b's catch-all");
    // Order of filters matters.
    let swapped = vec![b, a];
    assert_eq!(v(&swapped, "10.0.2.0/24"), Some(Verdict::Accept));
    // Nothing matches: import accepts, export falls to Calico's rules (None).
    let none = vec![BgpFilter {
        name: "n".into(),
        import_v4: vec![cidr_rule("10.0.0.0/8", In, None, Reject)],
        export_v4: vec![cidr_rule("10.0.0.0/8", In, None, Reject)],
        ..BgpFilter::default()
    }];
    assert!(filter::import_accepts(
        &none,
        &facts("192.168.0.0/24", true, None)
    ));
    assert!(!filter::import_accepts(&none, &facts("10.1.0.0/24", true, None)));
    assert_eq!(
        evaluate(&none, Direction::Export, &facts("192.168.0.0/24", false, None)),
        None
    );
}

#[test]
fn glob() {
    for (p, s, want) in [
        ("*", "", true),
        ("*", "anything", true),
        ("cali*", "cali", true),
        ("cali*", "xcali", false),
        ("*.cali", "wg-v6.cali", true),
        ("a*b*c", "aXXbYYc", true),
        ("a*b*c", "aXXcYYb", false),
        ("??", "ab", true),
        ("??", "abc", false),
        ("eth0", "eth0", true),
        ("eth0", "eth01", false),
    ] {
        assert_eq!(glob_match(p, s), want, "{p} ~ {s}");
    }
}

#[test]
fn from_resource_yaml() {
    let yaml = "apiVersion: projectcalico.org/v3
kind: BGPFilter
metadata:
  name: edge
spec:
  exportV4:
  - {action: Accept, matchOperator: In, cidr: 77.0.0.0/16}
  - {action: Reject, matchOperator: In, cidr: 77.1.0.0/16}
  importV4:
  - {action: Reject, source: RemotePeers, interface: 'eth*', matchOperator: NotIn, cidr: 44.0.0.0/16, prefixLength: {min: 20}}
  importV6:
  - {action: Accept}
";
    let r = brindle_model::load_str("t", yaml).unwrap();
    let brindle_model::Resource::BGPFilter(f) = &r[0] else {
        panic!()
    };
    let bf = BgpFilter::from_resource(f).unwrap();
    assert_eq!(bf.name, "edge");
    assert_eq!(bf.export_v4.len(), 2);
    assert_eq!(
        bf.import_v4[0],
        Rule {
            prefix: Some(PrefixMatch {
                cidr: net("44.0.0.0/16"),
                op: NotIn,
                lengths: Some((20, 32)),
            }),
            remote_peers_only: true,
            interface: Some("eth*".into()),
            action: Reject,
        }
    );
    assert_eq!(bf.import_v6, vec![Rule::always(Accept)]);
    // A rule validation would refuse is an error naming the filter, list and rule.
    let bad = yaml.replace("matchOperator: In, cidr: 77.1.0.0/16", "cidr: 77.1.0.0/16");
    let r = brindle_model::load_str("t", &bad).unwrap();
    let brindle_model::Resource::BGPFilter(f) = &r[0] else {
        panic!()
    };
    let e = BgpFilter::from_resource(f).unwrap_err().to_string();
    assert_eq!(e, "BGPFilter(edge): exportV4 rule 1: cidr without matchOperator");
    // A BGPPeer's list: missing and unreadable filters are left out, the rest kept in order.
    let good = brindle_model::load_str("t", yaml).unwrap();
    let brindle_model::Resource::BGPFilter(good) = &good[0] else {
        panic!()
    };
    let names: Vec<String> = ["edge", "nope", "bad"].iter().map(|s| s.to_string()).collect();
    let bad_f = brindle_model::resources::BGPFilter {
        metadata: brindle_model::ObjectMeta::named("bad"),
        ..f.clone()
    };
    let (list, skipped) = filter::from_model::peer_filters(&names, |n| match n {
        "edge" => Some(good),
        "bad" => Some(&bad_f),
        _ => None,
    });
    assert_eq!(list.iter().map(|f| f.name.as_str()).collect::<Vec<_>>(), ["edge"]);
    assert_eq!(
        skipped,
        [
            "BGPFilter(nope) does not exist",
            "BGPFilter(bad): exportV4 rule 1: cidr without matchOperator"
        ]
    );
}

// The filters at work.

const PEER_IF: &str = "eth0";

fn filtered_peer(rib: &mut Rib) -> PeerId {
    rib.add_peer(PeerInfo {
        interface: Some(Arc::from(PEER_IF)),
        ..PeerInfo::new(
            IpAddr::V4(Ipv4Addr::new(172, 20, 42, 1)),
            Ipv4Addr::new(172, 20, 42, 1),
            65000,
            64512,
        )
    })
}

fn ebgp_attrs() -> PathAttrs {
    PathAttrs {
        as_path: Some(AsPath::sequence(vec![65000])),
        local_pref: None,
        ..attrs([172, 20, 42, 1])
    }
}

fn announce_v6(rib: &mut Rib, peer: PeerId, prefixes: &[&str]) -> UpdateStats {
    apply(
        rib,
        peer,
        UpdateMsg {
            attrs: PathAttrs {
                next_hop: None,
                ..ebgp_attrs()
            },
            mp_reach: Some(OwnedMpReach {
                family: Family::IPV6_UNICAST,
                next_hop: MpNextHop::V6 {
                    global: "fd80::1".parse().unwrap(),
                    link_local: Some("fe80::1".parse().unwrap()),
                },
                nlri: prefixes.iter().map(|p| Nlri::new(net(p))).collect(),
            }),
            ..UpdateMsg::default()
        },
    )
}

#[test]
fn import_filters_in_the_rib_and_live_changes() {
    let mut rib = Rib::new(ME, 64512);
    let p = filtered_peer(&mut rib);
    let reject_10 = Arc::<[BgpFilter]>::from(vec![BgpFilter {
        name: "no-10".into(),
        import_v4: vec![cidr_rule("10.0.0.0/8", In, None, Reject)],
        import_v6: vec![cidr_rule("fd00:87::/32", In, None, Reject)],
        ..BgpFilter::default()
    }]);
    rib.set_import_filters(p, reject_10.clone());
    let st = announce(
        &mut rib,
        p,
        ebgp_attrs(),
        &["10.1.0.0/16", "10.2.0.0/16", "192.168.5.0/24"],
    );
    assert_eq!((st.announced, st.filtered), (1, 2));
    let st = announce_v6(&mut rib, p, &["fd00:87::/64", "fd00:94::/64"]);
    assert_eq!((st.announced, st.filtered), (1, 1));
    assert!(rib.best(net("10.1.0.0/16")).is_none());
    assert!(rib.best(net("192.168.5.0/24")).is_some());
    assert!(rib.best(net("fd00:87::/64")).is_none());
    let v6 = rib.best(net("fd00:94::/64")).unwrap();
    assert_eq!(v6.next_hop, "fd80::1".parse::<IpAddr>().unwrap());
    assert_eq!(v6.attrs.link_local, Some("fe80::1".parse::<Ipv6Addr>().unwrap()));
    assert_eq!((rib.peer_route_count(p), rib.peer_filtered_count(p)), (2, 3));
    rib.drain_changes();

    // A withdrawal of a filtered route forgets it.
    apply(
        &mut rib,
        p,
        UpdateMsg {
            withdrawn: vec![Nlri::new(net("10.2.0.0/16"))],
            ..UpdateMsg::default()
        },
    );
    assert_eq!(rib.peer_filtered_count(p), 2);

    // The filter changes: rejected routes come back, newly rejected ones go, without the peer.
    let reject_192 = Arc::<[BgpFilter]>::from(vec![BgpFilter {
        name: "no-192".into(),
        import_v4: vec![cidr_rule("192.168.0.0/16", In, None, Reject)],
        ..BgpFilter::default()
    }]);
    assert_eq!(rib.set_import_filters(p, reject_192), (1, 2));
    assert!(rib.best(net("10.1.0.0/16")).is_some());
    assert!(rib.best(net("fd00:87::/64")).is_some());
    assert!(rib.best(net("192.168.5.0/24")).is_none());
    assert!(rib.best(net("10.2.0.0/16")).is_none(), "withdrawn while filtered");
    let changes = rib.drain_changes();
    let mut changed: Vec<String> = changes.iter().map(|c| c.prefix.to_string()).collect();
    changed.sort();
    assert_eq!(changed, ["10.1.0.0/16", "192.168.5.0/24", "fd00:87::/64"]);
    assert_eq!((rib.peer_route_count(p), rib.peer_filtered_count(p)), (3, 1));

    // No filters: everything in.
    rib.set_import_filters(p, Arc::from(Vec::new()));
    assert_eq!((rib.peer_route_count(p), rib.peer_filtered_count(p)), (4, 0));
    // A graceful restart forgets what was set aside (the peer sends it again); removing the
    // peer frees every attribute set.
    rib.set_import_filters(p, reject_10);
    assert_eq!(rib.peer_filtered_count(p), 2);
    rib.mark_stale(p, &[Family::IPV4_UNICAST, Family::IPV6_UNICAST]);
    assert_eq!(rib.peer_filtered_count(p), 0);
    rib.remove_peer(p);
    assert_eq!(rib.attr_sets(), 1, "only the pinned local set is left");
}

fn target(filters: Vec<BgpFilter>, families: Vec<Family>) -> ExportTarget {
    ExportTarget {
        peer_addr: "172.20.42.2".parse().unwrap(),
        local_as: 64512,
        remote_as: 65001,
        next_hop_v4: Some(ME),
        next_hop_v6: Some("fd80::80".parse().unwrap()),
        next_hop_v6_link_local: Some("fe80::80".parse().unwrap()),
        families,
        rr_client: false,
        next_hop: NextHopMode::Auto,
        filters: Arc::from(filters),
    }
}

fn local(communities: &[&str]) -> LocalRoute {
    LocalRoute {
        communities: CommunitySet::of(communities.iter().map(|c| c.parse().unwrap())),
        interface: None,
    }
}

#[test]
fn export_filters_before_calico_rules() {
    let mut rib = Rib::new(ME, 64512);
    let p = filtered_peer(&mut rib);
    rib.originate_with(net("10.233.94.0/24"), &local(&["65000:100", "65000:100:7"]));
    rib.originate_with(net("10.233.95.0/24"), &local(&["65000:200"]));
    rib.originate(net("fd00:94::/122"));
    // A borrowed address on a workload interface: BGPFilter sees its interface.
    let borrowed = LocalRoute {
        interface: Some(Arc::from("cali1234567890a")),
        ..local(&["65000:100"])
    };
    rib.originate_with(net("10.233.64.7/32"), &borrowed);
    announce(&mut rib, p, ebgp_attrs(), &["10.233.87.0/24", "203.0.113.0/24"]);
    let pools = ExportPolicy {
        learned_to_ebgp: vec![net("10.233.64.0/18")],
    };
    let both = vec![Family::IPV4_UNICAST, Family::IPV6_UNICAST];
    let filters = vec![BgpFilter {
        name: "edge".into(),
        export_v4: vec![
            cidr_rule("10.233.95.0/24", Equal, None, Accept),
            cidr_rule("10.233.87.0/24", Equal, None, Reject),
            cidr_rule("203.0.113.0/24", Equal, None, Accept),
        ],
        export_v6: vec![Rule::always(Reject)],
        ..BgpFilter::default()
    }];
    let no_workloads = vec![BgpFilter {
        name: "no-workloads".into(),
        export_v4: vec![Rule {
            interface: Some("cali*".into()),
            ..Rule::always(Reject)
        }],
        ..BgpFilter::default()
    }];
    let plain = export::desired(&rib, &target(Vec::new(), both.clone()), &pools);
    let filtered = export::desired(&rib, &target(filters, both.clone()), &pools);
    let keys = |m: &std::collections::BTreeMap<ipnet::IpNet, Arc<OutAttrs>>| {
        m.keys().map(|k| k.to_string()).collect::<Vec<_>>()
    };
    // Calico's rules: our blocks (v4 and v6) and the learned pool route; not the learned route
    // outside the pools (the peer it came from is another: .1 → .2).
    assert_eq!(
        keys(&plain),
        [
            "10.233.64.7/32",
            "10.233.87.0/24",
            "10.233.94.0/24",
            "10.233.95.0/24",
            "fd00:94::/122"
        ]
    );
    let nw = export::desired(&rib, &target(no_workloads, both.clone()), &pools);
    assert_eq!(
        keys(&nw),
        [
            "10.233.87.0/24",
            "10.233.94.0/24",
            "10.233.95.0/24",
            "fd00:94::/122"
        ],
        "the /32 on a cali interface is filtered, the blackholed blocks (no interface) are not"
    );
    // The interface goes with the prefix; originating it plain again drops it.
    rib.originate(net("10.233.64.7/32"));
    assert!(rib.local_interface(&net("10.233.64.7/32")).is_none());
    rib.originate_with(net("10.233.64.7/32"), &borrowed);
    // The filter: .95 accepted (without its communities), .87 rejected, 203.0.113.0/24
    // accepted although outside the pools, every IPv6 route rejected; .94 falls through.
    assert_eq!(
        keys(&filtered),
        [
            "10.233.64.7/32",
            "10.233.94.0/24",
            "10.233.95.0/24",
            "203.0.113.0/24"
        ]
    );
    let a94 = &plain[&net("10.233.94.0/24")].attrs;
    assert_eq!(a94.communities, vec![65000 << 16 | 100]);
    assert_eq!(a94.large_communities, vec![[65000, 100, 7]]);
    assert_eq!(
        filtered[&net("10.233.94.0/24")].attrs.communities,
        a94.communities
    );
    assert_eq!(
        plain[&net("10.233.95.0/24")].attrs.communities,
        vec![65000 << 16 | 200]
    );
    assert!(filtered[&net("10.233.95.0/24")].attrs.communities.is_empty());
    // IPv6 next hop: global and, since the peer is on our link, link-local (RFC 2545).
    assert_eq!(
        plain[&net("fd00:94::/122")].mp_next_hop,
        Some(MpNextHop::V6 {
            global: "fd80::80".parse().unwrap(),
            link_local: Some("fe80::80".parse().unwrap()),
        })
    );
    // An IPv4-only session gets no IPv6 route, filters or not.
    let v4only = export::desired(&rib, &target(Vec::new(), vec![Family::IPV4_UNICAST]), &pools);
    assert!(v4only.keys().all(|k| k.addr().is_ipv4()));
}

#[test]
fn communities_from_prefix_advertisements() {
    let yaml = "apiVersion: projectcalico.org/v3
kind: BGPConfiguration
metadata:
  name: default
spec:
  communities:
  - {name: bgp-large-community, value: '63400:300:100'}
  - {name: blocks, value: '65001:10'}
  prefixAdvertisements:
  - cidr: 10.233.64.0/18
    communities: [blocks, '65001:20', bgp-large-community, unknown-name]
  - cidr: 10.233.94.0/24
    communities: ['65001:30', blocks]
  - cidr: fd00:94::/64
    communities: ['65001:60']
";
    let r = brindle_model::load_str("t", yaml).unwrap();
    let brindle_model::Resource::BGPConfiguration(c) = &r[0] else {
        panic!()
    };
    let pa = PrefixAdvertisements::from_spec(&c.spec);
    let show = |p: &str| {
        pa.for_prefix(&net(p))
            .iter()
            .map(|c| c.to_string())
            .collect::<Vec<_>>()
    };
    // Containment, not equality: a block inside the pool gets the pool's communities, and
    // those of every other advertisement covering it; sorted, without duplicates.
    assert_eq!(
        show("10.233.94.0/24"),
        ["65001:10", "65001:20", "65001:30", "63400:300:100"]
    );
    assert_eq!(show("10.233.95.0/26"), ["65001:10", "65001:20", "63400:300:100"]);
    assert_eq!(show("10.233.64.0/18"), ["65001:10", "65001:20", "63400:300:100"]);
    assert!(show("10.233.0.0/16").is_empty(), "wider than the advertisement");
    assert!(show("10.96.0.10/32").is_empty());
    assert_eq!(show("fd00:94::1/128"), ["65001:60"]);
    // A node's own prefix advertisements replace the global ones.
    let node_yaml = yaml
        .replace("name: default", "name: node.n1")
        .replace("  - cidr: fd00:94::/64\n    communities: ['65001:60']\n", "");
    let node_yaml = node_yaml.replace(
        "10.233.94.0/24\n    communities: ['65001:30', blocks]",
        "10.233.94.0/24\n    communities: ['65001:99']",
    );
    let r = brindle_model::load_str("t", &node_yaml).unwrap();
    let brindle_model::Resource::BGPConfiguration(n) = &r[0] else {
        panic!()
    };
    let eff = PrefixAdvertisements::effective(Some(&c.spec), Some(&n.spec));
    assert!(eff.for_prefix(&net("fd00:94::1/128")).is_empty());
    assert!(
        eff.for_prefix(&net("10.233.94.0/24"))
            .iter()
            .any(|c| c.to_string() == "65001:99")
    );
    assert_eq!(
        PrefixAdvertisements::effective(Some(&c.spec), None),
        PrefixAdvertisements::from_spec(&c.spec)
    );
    // Parsing.
    assert_eq!("1:2".parse::<Community>(), Ok(Community::Standard(65538)));
    assert!("65536:1".parse::<Community>().is_err());
    assert!("1:2:3:4".parse::<Community>().is_err());
    assert!("+1:2".parse::<Community>().is_err());
    assert_eq!(
        "4294967295:0:1".parse::<Community>(),
        Ok(Community::Large([u32::MAX, 0, 1]))
    );
}

/// The same rejected announcement twice: the second replaces the first's set-aside copy, which
/// held the only reference to the very attribute set the second UPDATE carries (found by the
/// bgp_decode fuzzer: the set was freed mid-UPDATE and its count later went below zero).
#[test]
fn a_rejected_announcement_repeated_keeps_its_attributes() {
    let mut rib = Rib::new(ME, 64512);
    let p = filtered_peer(&mut rib);
    rib.set_import_filters(
        p,
        Arc::from(vec![BgpFilter {
            name: "no-87".into(),
            import_v6: vec![cidr_rule("fd00:87::/32", In, None, Reject)],
            ..BgpFilter::default()
        }]),
    );
    for _ in 0..2 {
        let st = announce_v6(&mut rib, p, &["fd00:87::/64"]);
        assert_eq!((st.announced, st.filtered), (0, 1));
        assert_eq!(rib.peer_filtered_count(p), 1);
        assert_eq!(rib.attr_sets(), 2, "the pinned local set and the set-aside one");
    }
    // A later, different set reuses no freed slot while the set-aside one is alive.
    announce_v6(&mut rib, p, &["fd00:94::/64"]);
    rib.set_import_filters(p, Arc::from(Vec::new()));
    assert_eq!((rib.peer_route_count(p), rib.peer_filtered_count(p)), (2, 0));
    rib.remove_peer(p);
    assert_eq!(rib.attr_sets(), 1, "only the pinned local set is left");
}
