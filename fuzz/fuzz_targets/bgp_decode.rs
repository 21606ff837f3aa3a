//! BGP messages from a peer, down the path the speaker takes them: framing once, decoding once
//! (RFC 7606 error handling included), UPDATEs detached from the read's bytes and attached
//! again on the core's side (a copy of the bytes here), then into the RIB of peers of every
//! kind (iBGP, eBGP with BGPFilter import rules, reflector client; graceful restart marking and
//! sweeping and import filter changes in between), and the exports they cause (one peer with
//! export filters). Any bytes must give messages or DecodeErrors and RIB changes, never a panic;
//! whatever decodes must re-encode into something that decodes the same way, and every
//! export must encode into UPDATEs that decode.
//! Seeds: crates/bgp-wire/tests/captures (real BIRD, GoBGP, FRR, ExaBGP messages).
#![no_main]

use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;

use brindle_bgp_core::filter::{Action, MatchOperator, PrefixMatch, Rule};
use brindle_bgp_core::{
    AdjRibOut, BgpFilter, CommunitySet, ExportPolicy, ExportTarget, Exporter, LocalRoute, NextHopMode,
    PeerId, PeerInfo, Rib,
};
use brindle_bgp_wire::{AddPathFamilies, Ctx, Family, Message, OutMessage, header};
use libfuzzer_sys::fuzz_target;

fn rib() -> (Rib, [PeerId; 3]) {
    let mut rib = Rib::new(Ipv4Addr::new(172, 20, 42, 80), 64512);
    rib.set_cluster_id(Some(Ipv4Addr::new(10, 255, 0, 1)));
    let ip = |l| IpAddr::V4(Ipv4Addr::new(172, 20, 42, l));
    let ibgp = rib.add_peer(PeerInfo::new(
        ip(81),
        Ipv4Addr::new(172, 20, 42, 81),
        64512,
        64512,
    ));
    let ebgp = rib.add_peer(PeerInfo {
        allow_local_as: 1,
        interface: Some(Arc::from("eth0")),
        ..PeerInfo::new(ip(1), Ipv4Addr::new(172, 20, 42, 1), 65000, 64512)
    });
    let client = rib.add_peer(PeerInfo {
        rr_client: true,
        ..PeerInfo::new(ip(82), Ipv4Addr::new(172, 20, 42, 82), 64512, 64512)
    });
    rib.originate("10.233.94.0/24".parse().unwrap());
    rib.originate_with(
        "fd00:94::/122".parse().unwrap(),
        &LocalRoute {
            communities: CommunitySet::of(["65000:1".parse().unwrap(), "1:2:3".parse().unwrap()]),
            interface: Some(Arc::from("cali0")),
        },
    );
    rib.set_import_filters(ebgp, filters());
    (rib, [ibgp, ebgp, client])
}

/// Rules of every kind, both directions and families.
fn filters() -> Arc<[BgpFilter]> {
    let cidr = |c: &str, op, lengths| Rule {
        prefix: Some(PrefixMatch {
            cidr: c.parse().unwrap(),
            op,
            lengths,
        }),
        ..Rule::always(Action::Reject)
    };
    let rules = vec![
        cidr("10.0.0.0/8", MatchOperator::In, Some((16, 24))),
        Rule {
            action: Action::Accept,
            ..cidr("10.233.0.0/16", MatchOperator::NotEqual, None)
        },
        Rule {
            remote_peers_only: true,
            interface: Some("eth*".into()),
            ..Rule::always(Action::Reject)
        },
    ];
    let v6 = vec![
        cidr("fd00::/8", MatchOperator::NotIn, None),
        cidr("fd00::/16", MatchOperator::Equal, Some((16, 64))),
    ];
    Arc::from(vec![BgpFilter {
        name: "f".into(),
        import_v4: rules.clone(),
        export_v4: rules,
        import_v6: v6.clone(),
        export_v6: v6,
    }])
}

fn target(last: u8, asn: u32, rr_client: bool) -> ExportTarget {
    ExportTarget {
        peer_addr: IpAddr::V4(Ipv4Addr::new(172, 20, 42, last)),
        local_as: 64512,
        remote_as: asn,
        next_hop_v4: Some(Ipv4Addr::new(172, 20, 42, 80)),
        next_hop_v6: Some("fd80::80".parse().unwrap()),
        next_hop_v6_link_local: None,
        families: vec![Family::IPV4_UNICAST, Family::IPV6_UNICAST],
        rr_client,
        next_hop: if rr_client {
            NextHopMode::Keep
        } else {
            NextHopMode::Auto
        },
        filters: if asn == 64512 {
            Default::default()
        } else {
            filters()
        },
    }
}

fuzz_target!(|data: &[u8]| {
    let both = AddPathFamilies {
        ipv4: true,
        ipv6: true,
    };
    let policy = ExportPolicy {
        learned_to_ebgp: vec!["10.0.0.0/8".parse().unwrap(), "fd00::/8".parse().unwrap()],
    };
    let targets = [
        target(83, 64512, true),
        target(2, 65001, false),
        target(84, 64512, false),
    ];
    for (n, ctx) in [
        Ctx {
            four_octet_as: true,
            ..Ctx::default()
        },
        Ctx {
            ebgp: true,
            ..Ctx::default()
        },
        Ctx {
            four_octet_as: true,
            add_path_rx: both,
            add_path_tx: both,
            ..Ctx::default()
        },
    ]
    .into_iter()
    .enumerate()
    {
        let (mut rib, peers) = rib();
        let from = peers[n];
        let mut outs: Vec<AdjRibOut> = targets.iter().map(|_| AdjRibOut::new()).collect();
        // Framing as the speaker's reader does it, then each message; the "core" walks a copy
        // of the bytes, as its task gets the batch.
        let copy = data.to_vec();
        let mut rest = data;
        let mut count = 0usize;
        while let Ok(Some(len)) = header::frame_len(rest, ctx.max_len) {
            let msg = &rest[..len];
            rest = &rest[len..];
            count += 1;
            let Ok(m) = Message::decode_framed(msg, &ctx) else {
                assert!(Message::decode(msg, &ctx).is_err(), "framed decode differs");
                continue;
            };
            let out = match &m {
                Message::Open(o) => OutMessage::Open(o.clone()),
                Message::Update(decoded) => {
                    let u = decoded.clone().detach(data).attach(&copy);
                    assert_eq!(&u, decoded, "detach/attach changed the UPDATE");
                    match u.end_of_rib() {
                        Some(f) => {
                            rib.sweep_stale(from, &[f]);
                        }
                        None => {
                            rib.apply_update(from, &u);
                        }
                    }
                    OutMessage::Update(u.to_owned_msg())
                }
                Message::Notification(n) => OutMessage::Notification(n.clone()),
                Message::Keepalive => {
                    // A session flap with graceful restart, every few messages, and the
                    // import filters changing.
                    rib.mark_stale(from, &[Family::IPV4_UNICAST]);
                    let f = if count % 2 == 0 {
                        Arc::from(Vec::new())
                    } else {
                        filters()
                    };
                    rib.set_import_filters(from, f);
                    OutMessage::Keepalive
                }
                Message::RouteRefresh(r) => OutMessage::RouteRefresh(*r),
            };
            let bytes = out.to_bytes(&ctx);
            if bytes.len() <= ctx.max_len {
                let again = Message::decode(&bytes, &ctx);
                assert!(
                    again.is_ok(),
                    "re-encoded message does not decode: {m:?} -> {again:?}"
                );
            }
            // Exports of what changed, as the core sends them.
            let changed = rib.drain_changed_prefixes();
            for (t, out) in targets.iter().zip(outs.iter_mut()) {
                let mut ex = Exporter::new(&rib, t, &policy);
                for p in &changed {
                    out.set(*p, ex.prefix(*p));
                }
                let out_ctx = Ctx {
                    four_octet_as: count % 2 == 0,
                    ..Ctx::default()
                };
                let mut b: &[u8] = &out.flush(&out_ctx);
                while !b.is_empty() {
                    let len = header::frame_len(b, out_ctx.max_len)
                        .expect("export framing")
                        .expect("whole export message");
                    assert!(
                        matches!(Message::decode(&b[..len], &out_ctx), Ok(Message::Update(_))),
                        "export does not decode"
                    );
                    b = &b[len..];
                }
            }
        }
        rib.sweep_stale(from, &[Family::IPV4_UNICAST, Family::IPV6_UNICAST]);
        rib.remove_peer(from);
    }
});
