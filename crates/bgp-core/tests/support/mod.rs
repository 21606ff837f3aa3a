//! Helpers shared by the RIB tests: UPDATEs built, encoded and decoded as a peer's would be.
#![allow(dead_code)]

use std::net::{IpAddr, Ipv4Addr};

use brindle_bgp_core::*;
use brindle_bgp_wire::*;
use ipnet::IpNet;

pub const ME: Ipv4Addr = Ipv4Addr::new(172, 20, 42, 80);

pub fn ctx() -> Ctx {
    Ctx {
        four_octet_as: true,
        ..Ctx::default()
    }
}

pub fn net(s: &str) -> IpNet {
    s.parse().unwrap()
}

pub fn attrs(nh: [u8; 4]) -> PathAttrs {
    PathAttrs {
        origin: Some(Origin::Igp),
        as_path: Some(AsPath::default()),
        next_hop: Some(Ipv4Addr::from(nh)),
        local_pref: Some(100),
        ..PathAttrs::default()
    }
}

pub fn apply(rib: &mut Rib, peer: PeerId, u: UpdateMsg) -> UpdateStats {
    let b = OutMessage::Update(u).to_bytes(&ctx());
    let Message::Update(u) = Message::decode(&b, &ctx()).unwrap() else {
        panic!()
    };
    rib.apply_update(peer, &u)
}

pub fn announce(rib: &mut Rib, peer: PeerId, a: PathAttrs, prefixes: &[&str]) -> UpdateStats {
    apply(
        rib,
        peer,
        UpdateMsg {
            attrs: a,
            nlri: prefixes.iter().map(|p| Nlri::new(net(p))).collect(),
            ..UpdateMsg::default()
        },
    )
}

pub fn peer(rib: &mut Rib, addr: [u8; 4], id: [u8; 4], asn: u32) -> PeerId {
    rib.add_peer(PeerInfo::new(
        IpAddr::V4(Ipv4Addr::from(addr)),
        Ipv4Addr::from(id),
        asn,
        64512,
    ))
}

/// Peer `172.20.42.<last>`.
pub fn addr(last: u8) -> IpAddr {
    IpAddr::V4(Ipv4Addr::new(172, 20, 42, last))
}

/// Export towards `172.20.42.<last>` in AS `asn` from this node (AS 64512, next hop [`ME`]).
pub fn target(last: u8, asn: u32, rr_client: bool) -> ExportTarget {
    ExportTarget {
        peer_addr: addr(last),
        local_as: 64512,
        remote_as: asn,
        next_hop_v4: Some(ME),
        next_hop_v6: None,
        next_hop_v6_link_local: None,
        families: vec![Family::IPV4_UNICAST],
        rr_client,
        next_hop: NextHopMode::Auto,
        filters: Default::default(),
    }
}

pub fn best_peer(rib: &Rib, p: &str) -> Option<IpAddr> {
    rib.best(net(p)).map(|b| b.peer)
}

pub fn decode_all(mut b: &[u8]) -> Vec<UpdateMsg> {
    let mut v = Vec::new();
    while !b.is_empty() {
        let len = header::frame_len(b, 4096).unwrap().unwrap();
        let Message::Update(u) = Message::decode(&b[..len], &ctx()).unwrap() else {
            panic!()
        };
        v.push(u.to_owned_msg());
        b = &b[len..];
    }
    v
}
