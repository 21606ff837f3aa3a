//! Encode → decode round trips of synthetic messages, including 2-octet sessions (AS_TRANS,
//! AS4_PATH), ADD-PATH and the bulk packer.

use std::net::{Ipv4Addr, Ipv6Addr};

use brindle_bgp_wire::capability::*;
use brindle_bgp_wire::*;
use ipnet::{IpNet, Ipv4Net};
use proptest::prelude::*;

fn decode_update(bytes: &[u8], ctx: &Ctx) -> UpdateMsg {
    match Message::decode(bytes, ctx).unwrap() {
        Message::Update(u) => u.to_owned_msg(),
        m => panic!("{m:?}"),
    }
}

fn four() -> Ctx {
    Ctx {
        four_octet_as: true,
        ..Ctx::default()
    }
}

#[test]
fn open_round_trip_with_every_capability() {
    let o = Open::new(
        4_200_000_001,
        90,
        Ipv4Addr::new(172, 20, 42, 81),
        vec![
            Capability::MultiProtocol(Family::IPV4_UNICAST),
            Capability::MultiProtocol(Family::IPV6_UNICAST),
            Capability::RouteRefresh,
            Capability::EnhancedRouteRefresh,
            Capability::ExtendedMessage,
            Capability::GracefulRestart(GracefulRestart {
                restarting: true,
                notification: false,
                restart_time: 120,
                families: vec![GracefulRestartFamily {
                    family: Family::IPV4_UNICAST,
                    forwarding_preserved: true,
                }],
            }),
            Capability::AddPath(vec![(
                Family::IPV4_UNICAST,
                AddPathMode {
                    receive: true,
                    send: false,
                },
            )]),
            Capability::Unknown {
                code: 73,
                value: b"node".to_vec(),
            },
        ],
    );
    assert_eq!(o.my_as, AS_TRANS);
    let bytes = OutMessage::Open(o.clone()).to_bytes(&Ctx::default());
    let Message::Open(back) = Message::decode(&bytes, &Ctx::default()).unwrap() else {
        panic!()
    };
    assert_eq!(back, o);
    assert_eq!(back.asn(), 4_200_000_001);
    let gr = back.graceful_restart().unwrap();
    assert!(gr.restarting && gr.families[0].forwarding_preserved);
}

#[test]
fn negotiated_context() {
    let caps = |ap: Option<AddPathMode>| {
        let mut v = vec![Capability::MultiProtocol(Family::IPV4_UNICAST)];
        if let Some(m) = ap {
            v.push(Capability::AddPath(vec![(Family::IPV4_UNICAST, m)]));
        }
        v
    };
    let both = AddPathMode {
        receive: true,
        send: true,
    };
    let rx_only = AddPathMode {
        receive: true,
        send: false,
    };
    let a = Open::new(64512, 90, Ipv4Addr::new(1, 1, 1, 1), caps(Some(both)));
    let b = Open::new(64512, 90, Ipv4Addr::new(2, 2, 2, 2), caps(Some(rx_only)));
    let c = Ctx::negotiated(&a, &b);
    assert!(c.four_octet_as);
    assert!(!c.add_path_rx.ipv4, "b does not send");
    assert!(c.add_path_tx.ipv4, "b receives");
    let mut old = b.clone();
    old.capabilities
        .retain(|c| !matches!(c, Capability::FourOctetAs(_)));
    assert!(!Ctx::negotiated(&a, &old).four_octet_as);
}

#[test]
fn two_octet_session_uses_as_trans_and_as4_path() {
    let two = Ctx::default();
    let u = UpdateMsg {
        attrs: PathAttrs {
            origin: Some(Origin::Igp),
            as_path: Some(AsPath::sequence(vec![65001, 4_200_000_001, 64512])),
            next_hop: Some(Ipv4Addr::new(10, 0, 0, 1)),
            aggregator: Some((4_200_000_002, Ipv4Addr::new(10, 0, 0, 9))),
            ..PathAttrs::default()
        },
        nlri: vec![Nlri::new("10.1.0.0/16".parse().unwrap())],
        ..UpdateMsg::default()
    };
    let bytes = OutMessage::Update(u.clone()).to_bytes(&two);
    // AS_TRANS appears in the 2-octet AS_PATH.
    assert!(bytes.windows(2).any(|w| w == AS_TRANS.to_be_bytes()));
    let back = decode_update(&bytes, &two);
    assert_eq!(back.attrs.as_path, u.attrs.as_path, "AS4_PATH merged back");
    assert_eq!(back.attrs.aggregator, u.attrs.aggregator);
}

#[test]
fn ipv6_update_and_end_of_rib() {
    let u = UpdateMsg {
        attrs: PathAttrs {
            origin: Some(Origin::Incomplete),
            as_path: Some(AsPath::default()),
            local_pref: Some(100),
            ..PathAttrs::default()
        },
        mp_reach: Some(OwnedMpReach {
            family: Family::IPV6_UNICAST,
            next_hop: MpNextHop::V6 {
                global: "fd00::1".parse().unwrap(),
                link_local: Some("fe80::1".parse::<Ipv6Addr>().unwrap()),
            },
            nlri: vec![Nlri::new("fd00:94::/122".parse().unwrap())],
        }),
        mp_unreach: Some((
            Family::IPV6_UNICAST,
            vec![Nlri::new("fd00:95::/64".parse().unwrap())],
        )),
        ..UpdateMsg::default()
    };
    let bytes = OutMessage::Update(u.clone()).to_bytes(&four());
    assert_eq!(decode_update(&bytes, &four()), u);
    for fam in [Family::IPV4_UNICAST, Family::IPV6_UNICAST] {
        let b = OutMessage::Update(UpdateMsg::end_of_rib(fam)).to_bytes(&four());
        let Message::Update(e) = Message::decode(&b, &four()).unwrap() else {
            panic!()
        };
        assert_eq!(e.end_of_rib(), Some(fam));
    }
}

#[test]
fn add_path_identifiers() {
    let ctx = Ctx {
        add_path_rx: AddPathFamilies {
            ipv4: true,
            ipv6: false,
        },
        add_path_tx: AddPathFamilies {
            ipv4: true,
            ipv6: false,
        },
        ..four()
    };
    let u = UpdateMsg {
        attrs: PathAttrs {
            origin: Some(Origin::Igp),
            as_path: Some(AsPath::default()),
            next_hop: Some(Ipv4Addr::new(10, 0, 0, 1)),
            ..PathAttrs::default()
        },
        nlri: vec![
            Nlri {
                path_id: 7,
                prefix: "10.9.0.0/26".parse().unwrap(),
            },
            Nlri {
                path_id: 8,
                prefix: "10.9.0.0/26".parse().unwrap(),
            },
        ],
        withdrawn: vec![Nlri {
            path_id: 3,
            prefix: "10.8.0.0/24".parse().unwrap(),
        }],
        ..UpdateMsg::default()
    };
    let bytes = OutMessage::Update(u.clone()).to_bytes(&ctx);
    assert_eq!(decode_update(&bytes, &ctx), u);
}

#[test]
fn packer_splits_at_the_size_limit() {
    let ctx = four();
    let attrs = PathAttrs {
        origin: Some(Origin::Igp),
        as_path: Some(AsPath::default()),
        next_hop: Some(Ipv4Addr::new(10, 99, 0, 1)),
        local_pref: Some(100),
        ..PathAttrs::default()
    };
    let n = 5000u32;
    let mut p = UpdatePacker::announce(&ctx, Family::IPV4_UNICAST, &attrs, None);
    for i in 0..n {
        p.push_prefix(IpNet::V4(
            Ipv4Net::new(Ipv4Addr::from(0x0b00_0000 + (i << 8)), 24).unwrap(),
        ));
    }
    let bytes = p.finish();
    let mut pos = 0;
    let mut seen = 0;
    let mut msgs = 0;
    while pos < bytes.len() {
        let len = header::frame_len(&bytes[pos..], 4096).unwrap().unwrap();
        let Message::Update(u) = Message::decode(&bytes[pos..pos + len], &ctx).unwrap() else {
            panic!()
        };
        assert_eq!(u.attrs, attrs);
        for (k, nlri) in u.nlri().enumerate() {
            let want = Ipv4Addr::from(0x0b00_0000 + ((seen + k as u32) << 8));
            assert_eq!(nlri.prefix, IpNet::V4(Ipv4Net::new(want, 24).unwrap()));
        }
        seen += u.nlri().count() as u32;
        pos += len;
        msgs += 1;
    }
    assert_eq!(seen, n);
    assert_eq!(msgs, 5, "≈1013 /24 per 4096-byte UPDATE");

    let mut w = UpdatePacker::withdraw(&ctx, Family::IPV6_UNICAST);
    w.push_prefix("fd00::/64".parse().unwrap());
    let b = w.finish();
    let Message::Update(u) = Message::decode(&b, &ctx).unwrap() else {
        panic!()
    };
    let (f, it) = u.mp_withdrawn().unwrap();
    assert_eq!(f, Family::IPV6_UNICAST);
    assert_eq!(it.count(), 1);
}

fn arb_prefix() -> impl Strategy<Value = IpNet> {
    prop_oneof![
        (any::<u32>(), 0u8..=32)
            .prop_map(|(a, l)| IpNet::V4(Ipv4Net::new(Ipv4Addr::from(a), l).unwrap().trunc())),
        (any::<u128>(), 0u8..=128)
            .prop_map(|(a, l)| IpNet::V6(ipnet::Ipv6Net::new(Ipv6Addr::from(a), l).unwrap().trunc())),
    ]
}

fn arb_attrs() -> impl Strategy<Value = PathAttrs> {
    (
        0u8..3,
        proptest::collection::vec(any::<u32>(), 0..6),
        proptest::option::of(any::<u32>()),
        proptest::option::of(any::<u32>()),
        proptest::collection::vec(any::<u32>(), 0..4),
        proptest::collection::vec(any::<[u32; 3]>(), 0..3),
        any::<bool>(),
    )
        .prop_map(|(o, path, med, lp, comms, large, atomic)| PathAttrs {
            origin: Some([Origin::Igp, Origin::Egp, Origin::Incomplete][o as usize]),
            as_path: Some(AsPath::sequence(path)),
            next_hop: Some(Ipv4Addr::new(192, 0, 2, 1)),
            med,
            local_pref: lp,
            atomic_aggregate: atomic,
            communities: comms,
            large_communities: large,
            ..PathAttrs::default()
        })
}

proptest! {
    #[test]
    fn updates_round_trip(attrs in arb_attrs(), prefixes in proptest::collection::vec(arb_prefix(), 0..40)) {
        let (v4, v6): (Vec<IpNet>, Vec<IpNet>) = prefixes.into_iter().partition(|p| matches!(p, IpNet::V4(_)));
        let u = UpdateMsg {
            attrs,
            nlri: v4.into_iter().map(Nlri::new).collect(),
            mp_reach: (!v6.is_empty()).then(|| OwnedMpReach {
                family: Family::IPV6_UNICAST,
                next_hop: MpNextHop::V6 { global: "2001:db8::1".parse().unwrap(), link_local: None },
                nlri: v6.into_iter().map(Nlri::new).collect(),
            }),
            ..UpdateMsg::default()
        };
        for ctx in [four(), Ctx::default()] {
            let bytes = OutMessage::Update(u.clone()).to_bytes(&ctx);
            prop_assert_eq!(decode_update(&bytes, &ctx), u.clone());
        }
    }

    #[test]
    fn decoder_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..200), t in 1u8..6) {
        let mut m = vec![0xff; 16];
        m.extend_from_slice(&((19 + bytes.len()) as u16).to_be_bytes());
        m.push(t);
        m.extend_from_slice(&bytes);
        let _ = Message::decode(&m, &four());
        let _ = Message::decode(&m, &Ctx::default());
    }
}
