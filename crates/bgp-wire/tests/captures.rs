//! Decoding of messages captured from BIRD 2, BIRD 1.6, GoBGP, FRR and ExaBGP (see
//! `captures/README.md`), and semantic round trips of each through our encoder.

use std::net::{Ipv4Addr, Ipv6Addr};
use std::path::PathBuf;

use brindle_bgp_wire::capability::*;
use brindle_bgp_wire::*;
use ipnet::IpNet;

fn capture(name: &str) -> Vec<u8> {
    let p = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/captures")
        .join(name);
    std::fs::read(&p).unwrap_or_else(|e| panic!("read {}: {e}", p.display()))
}

fn ctx() -> Ctx {
    Ctx {
        four_octet_as: true,
        ..Ctx::default()
    }
}

fn decode(name: &str) -> (Vec<u8>, Message<'static>) {
    let bytes: &'static [u8] = Box::leak(capture(name).into_boxed_slice());
    let m = Message::decode(bytes, &ctx()).unwrap_or_else(|e| panic!("{name}: {e}"));
    (bytes.to_vec(), m)
}

fn update(name: &str) -> Update<'static> {
    match decode(name).1 {
        Message::Update(u) => u,
        m => panic!("{name}: not an UPDATE: {m:?}"),
    }
}

fn net(s: &str) -> IpNet {
    s.parse().unwrap()
}

#[test]
fn every_capture_decodes_and_round_trips() {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/captures");
    let mut n = 0;
    for e in std::fs::read_dir(&dir).unwrap() {
        let path = e.unwrap().path();
        if path.extension().is_none_or(|x| x != "bin") {
            continue;
        }
        let name = path.file_name().unwrap().to_str().unwrap().to_string();
        let (bytes, m) = decode(&name);
        let out = match &m {
            Message::Open(o) => OutMessage::Open(o.clone()),
            Message::Update(u) => OutMessage::Update(u.to_owned_msg()),
            Message::Notification(x) => OutMessage::Notification(x.clone()),
            Message::Keepalive => OutMessage::Keepalive,
            Message::RouteRefresh(r) => OutMessage::RouteRefresh(*r),
        };
        let re = out.to_bytes(&ctx());
        let again = Message::decode(&re, &ctx()).unwrap_or_else(|e| panic!("{name} re-decode: {e}"));
        match (&m, &again) {
            (Message::Update(a), Message::Update(b)) => {
                assert_eq!(a.to_owned_msg(), b.to_owned_msg(), "{name}")
            }
            (Message::Open(_), _) => {
                // BIRD 1.6 packs all capabilities in one optional parameter, the others one per
                // parameter: equal in meaning, not in bytes.
                assert_eq!(m, again, "{name}");
            }
            _ => {
                assert_eq!(m, again, "{name}");
                // KEEPALIVE, NOTIFICATION and ROUTE-REFRESH re-encode byte for byte.
                assert_eq!(bytes, re, "{name}");
            }
        }
        n += 1;
    }
    assert!(n >= 25, "only {n} captures");
}

#[test]
fn bird2_open_capabilities() {
    let Message::Open(o) = decode("bird2-open.bin").1 else {
        panic!()
    };
    assert_eq!(o.version, 4);
    assert_eq!(o.asn(), 64512);
    assert_eq!(o.hold_time, 9);
    assert_eq!(o.bgp_id, Ipv4Addr::new(10, 77, 0, 1));
    assert!(o.families().contains(&Family::IPV4_UNICAST));
    assert!(o.families().contains(&Family::IPV6_UNICAST));
    assert!(o.has(CAP_ROUTE_REFRESH));
    assert!(o.has(CAP_ENHANCED_ROUTE_REFRESH));
    let gr = o.graceful_restart().expect("graceful restart");
    assert_eq!(gr.restart_time, 120);
    assert_eq!(
        o.add_path(Family::IPV4_UNICAST),
        Some(AddPathMode {
            receive: true,
            send: true
        })
    );
}

#[test]
fn other_daemons_open() {
    for (name, id, asn) in [
        ("bird16-open.bin", "10.77.4.2", 64513),
        ("gobgp-open.bin", "10.77.1.2", 64512),
        ("frr-open.bin", "10.77.2.2", 64512),
        ("exabgp-open.bin", "10.77.3.2", 64512),
    ] {
        let Message::Open(o) = decode(name).1 else {
            panic!("{name}")
        };
        assert_eq!(o.bgp_id, id.parse::<Ipv4Addr>().unwrap(), "{name}");
        assert_eq!(o.asn(), asn, "{name}");
        assert_eq!(o.four_octet_as(), Some(asn), "{name}");
    }
    // FRR sends FQDN (73) and others we keep verbatim.
    let Message::Open(frr) = decode("frr-open.bin").1 else {
        panic!()
    };
    assert!(
        frr.capabilities
            .iter()
            .any(|c| matches!(c, Capability::Unknown { code: 73, .. }))
    );
}

#[test]
fn bird2_ipv4_update_and_withdraw() {
    let u = update("bird2-update-ipv4.bin");
    let nlri: Vec<IpNet> = u.nlri().map(|n| n.prefix).collect();
    assert_eq!(nlri, vec![net("10.233.94.0/24"), net("10.233.95.0/26")]);
    assert_eq!(u.attrs.origin, Some(Origin::Igp));
    assert_eq!(u.attrs.as_path, Some(AsPath::default()));
    assert_eq!(u.attrs.next_hop, Some(Ipv4Addr::new(10, 77, 3, 1)));
    assert_eq!(u.attrs.local_pref, Some(100));
    let w = update("bird2-withdraw-ipv4.bin");
    assert_eq!(w.withdrawn().count(), 2);
    assert_eq!(w.nlri().count(), 0);
}

#[test]
fn ipv6_next_hops() {
    let u = update("bird2-update-ipv6.bin");
    let (fam, nh, nlri) = u.mp_nlri().expect("mp_reach");
    assert_eq!(fam, Family::IPV6_UNICAST);
    assert!(matches!(nh, MpNextHop::V6 { global, .. } if global == "fd77:3::1".parse::<Ipv6Addr>().unwrap()));
    assert_eq!(
        nlri.map(|n| n.prefix).collect::<Vec<_>>(),
        vec![net("fd00:94::/122")]
    );

    let u = update("frr-update-ipv6.bin");
    let (_, nh, nlri) = u.mp_nlri().expect("mp_reach");
    let MpNextHop::V6 { global, link_local } = nh else {
        panic!("{nh:?}")
    };
    assert_eq!(global, "fd77:2::2".parse::<Ipv6Addr>().unwrap());
    assert!(link_local.expect("link-local").segments()[0] == 0xfe80);
    assert_eq!(
        nlri.map(|n| n.prefix).collect::<Vec<_>>(),
        vec![net("fd00:124::/64")]
    );
}

/// BIRD 2 on an eBGP session over IPv6 (`capture-v6.sh`): MP_REACH_NLRI with global and
/// link-local next hops, the communities and large communities Calico's prefix advertisements
/// add (sorted), then the MP_UNREACH_NLRI withdrawing both prefixes.
#[test]
fn bird2_ipv6_communities_and_withdrawal() {
    let u = update("bird2-update-ipv6-communities.bin");
    let (fam, nh, nlri) = u.mp_nlri().expect("mp_reach");
    assert_eq!(fam, Family::IPV6_UNICAST);
    let MpNextHop::V6 { global, link_local } = nh else {
        panic!("{nh:?}")
    };
    assert_eq!(global, "fd78::1".parse::<Ipv6Addr>().unwrap());
    assert_eq!(link_local.expect("link-local").segments()[0], 0xfe80);
    assert_eq!(
        nlri.map(|n| n.prefix).collect::<Vec<_>>(),
        vec![net("fd00:95::/122"), net("fd00:94::/122")]
    );
    assert_eq!(u.attrs.next_hop, None);
    assert_eq!(u.attrs.communities, vec![64512 << 16 | 1, 65000 << 16 | 600]);
    assert_eq!(
        u.attrs.large_communities,
        vec![[64512, 6, 6], [4_200_000_000, 1, 2]]
    );
    assert_eq!(u.attrs.as_path, Some(AsPath::sequence(vec![64512])));

    let w = update("bird2-withdraw-ipv6.bin");
    let (fam, gone) = w.mp_withdrawn().expect("mp_unreach");
    assert_eq!(fam, Family::IPV6_UNICAST);
    assert_eq!(
        gone.map(|n| n.prefix).collect::<Vec<_>>(),
        vec![net("fd00:95::/122"), net("fd00:94::/122")]
    );
    assert_eq!(w.end_of_rib(), None);

    let u = update("bird2-update-ipv4-communities.bin");
    assert_eq!(u.attrs.communities, vec![65000 << 16 | 100]);
    assert_eq!(u.attrs.large_communities, vec![[65000, 100, 7]]);
    assert_eq!(
        u.nlri().map(|n| n.prefix).collect::<Vec<_>>(),
        vec![net("10.233.94.0/24")]
    );
}

#[test]
fn end_of_rib_both_forms() {
    for name in [
        "bird2-eor-ipv4.bin",
        "bird16-eor-ipv4.bin",
        "frr-eor-ipv4.bin",
        "exabgp-eor-ipv4.bin",
    ] {
        assert_eq!(update(name).end_of_rib(), Some(Family::IPV4_UNICAST), "{name}");
    }
    for name in ["bird2-eor-ipv6.bin", "frr-eor-ipv6.bin", "exabgp-eor-ipv6.bin"] {
        assert_eq!(update(name).end_of_rib(), Some(Family::IPV6_UNICAST), "{name}");
    }
    assert_eq!(update("bird2-update-ipv4.bin").end_of_rib(), None);
    assert_eq!(update("gobgp-withdraw.bin").end_of_rib(), None);
}

#[test]
fn exabgp_attributes() {
    let u = update("exabgp-update-attrs.bin");
    let a = &u.attrs;
    let all: Vec<_> = u.nlri().map(|n| n.prefix).collect();
    assert!(all.contains(&net("198.51.100.0/24")) || all.contains(&net("198.51.101.0/25")));
    let (with_med, other) = if a.med.is_some() {
        (u.clone(), update("exabgp-update-attrs2.bin"))
    } else {
        (update("exabgp-update-attrs2.bin"), u.clone())
    };
    let a = &with_med.attrs;
    assert_eq!(a.med, Some(50));
    assert_eq!(a.origin, Some(Origin::Egp));
    assert_eq!(a.communities, vec![(64512 << 16) | 100, 65000 << 16 | 1]);
    assert_eq!(a.large_communities, vec![[64512, 1, 2]]);
    assert_eq!(a.as_path, Some(AsPath::sequence(vec![65001, 4_200_000_001])));
    let b = &other.attrs;
    assert_eq!(b.local_pref, Some(200));
    assert!(b.atomic_aggregate);
    assert_eq!(b.aggregator, Some((65001, Ipv4Addr::new(10, 0, 0, 1))));
    assert_eq!(b.originator_id, Some(Ipv4Addr::new(10, 9, 9, 9)));
    assert_eq!(b.cluster_list, vec![Ipv4Addr::new(10, 8, 8, 8)]);
}

#[test]
fn bird16_ebgp_update_has_its_as() {
    let u = update("bird16-update-ebgp.bin");
    assert_eq!(u.attrs.as_path.as_ref().and_then(|p| p.first_as()), Some(64513));
    assert_eq!(
        u.nlri().map(|n| n.prefix).collect::<Vec<_>>(),
        vec![net("203.0.113.0/24")]
    );
}

#[test]
fn notifications_and_route_refresh() {
    let Message::Notification(n) = decode("bird2-notification-cease.bin").1 else {
        panic!()
    };
    assert_eq!((n.code, n.subcode), (6, 2));
    assert_eq!(n.description(), "Administrative shutdown");
    for name in ["bird2-route-refresh.bin", "bird16-route-refresh.bin"] {
        let Message::RouteRefresh(r) = decode(name).1 else {
            panic!("{name}")
        };
        assert_eq!(r.family, Family::IPV4_UNICAST);
    }
}
