//! The RIB's part of graceful restart (RFC 4724 §4.2: stale routes stay best and in the route
//! stream, are refreshed, and swept) and of RFC 7606 (a treat-as-withdraw UPDATE withdraws what
//! it announces).

use brindle_bgp_core::*;
use brindle_bgp_wire::*;

mod support;
use support::*;

const V4: Family = Family::IPV4_UNICAST;
const V6: Family = Family::IPV6_UNICAST;

fn v6_announce(rib: &mut Rib, p: PeerId, prefix: &str) {
    apply(
        rib,
        p,
        UpdateMsg {
            attrs: PathAttrs {
                next_hop: None,
                ..attrs([0, 0, 0, 0])
            },
            mp_reach: Some(OwnedMpReach {
                family: V6,
                next_hop: MpNextHop::V6 {
                    global: "fd80:42::81".parse().unwrap(),
                    link_local: None,
                },
                nlri: vec![Nlri::new(net(prefix))],
            }),
            ..UpdateMsg::default()
        },
    );
}

#[test]
fn stale_routes_stay_best_until_swept() {
    let mut rib = Rib::new(ME, 64512);
    let a = peer(&mut rib, [172, 20, 42, 81], [172, 20, 42, 81], 64512);
    announce(
        &mut rib,
        a,
        attrs([172, 20, 42, 81]),
        &["10.233.87.0/24", "10.233.88.0/24"],
    );
    v6_announce(&mut rib, a, "fd00:87::/122");
    rib.drain_changes();

    // The session drops gracefully, IPv4 retained: IPv4 routes marked stale, still best, and
    // nothing in the route stream; the IPv6 route (family not retained) goes.
    assert_eq!(rib.mark_stale(a, &[V4]), (2, 1));
    assert_eq!(rib.peer_stale_count(a), 2);
    assert_eq!(best_peer(&rib, "10.233.87.0/24"), Some(ip("172.20.42.81")));
    let changes = rib.drain_changes();
    assert_eq!(changes.len(), 1, "{changes:?}");
    assert_eq!(
        (changes[0].prefix, changes[0].best.is_none()),
        (net("fd00:87::/122"), true)
    );

    // Back: the peer refreshes one prefix with the same attributes: no route change, no
    // longer stale.
    announce(&mut rib, a, attrs([172, 20, 42, 81]), &["10.233.87.0/24"]);
    assert_eq!(rib.peer_stale_count(a), 1);
    assert_eq!(rib.drain_changes(), vec![]);
    // End-of-RIB: the one never refreshed goes, as a withdrawal.
    assert_eq!(rib.sweep_stale(a, &[V4]), 1);
    let changes = rib.drain_changes();
    assert_eq!(changes.len(), 1);
    assert_eq!(
        (changes[0].prefix, changes[0].best.is_none()),
        (net("10.233.88.0/24"), true)
    );
    assert_eq!(rib.peer_route_count(a), 1);
    assert_eq!(rib.peer_stale_count(a), 0);
    assert_eq!(rib.sweep_stale(a, &[V4]), 0);
}

#[test]
fn refreshed_with_other_attributes_replaces() {
    let mut rib = Rib::new(ME, 64512);
    let a = peer(&mut rib, [172, 20, 42, 81], [172, 20, 42, 81], 64512);
    announce(&mut rib, a, attrs([172, 20, 42, 81]), &["10.233.87.0/24"]);
    rib.drain_changes();
    rib.mark_stale(a, &[V4]);
    // After its restart the peer sends another next hop: an ordinary replacement.
    announce(&mut rib, a, attrs([172, 20, 42, 99]), &["10.233.87.0/24"]);
    let changes = rib.drain_changes();
    assert_eq!(changes.len(), 1);
    assert_eq!(changes[0].best.as_ref().unwrap().next_hop, ip("172.20.42.99"));
    assert!(changes[0].had_learned);
    assert_eq!(rib.peer_stale_count(a), 0);
}

#[test]
fn consecutive_restart_deletes_what_was_not_refreshed() {
    let mut rib = Rib::new(ME, 64512);
    let a = peer(&mut rib, [172, 20, 42, 81], [172, 20, 42, 81], 64512);
    announce(
        &mut rib,
        a,
        attrs([172, 20, 42, 81]),
        &["10.1.0.0/24", "10.2.0.0/24"],
    );
    rib.mark_stale(a, &[V4]);
    announce(&mut rib, a, attrs([172, 20, 42, 81]), &["10.1.0.0/24"]);
    rib.drain_changes();
    // Down again before End-of-RIB: 10.2 (still stale) goes, 10.1 (refreshed) is kept stale.
    assert_eq!(rib.mark_stale(a, &[V4]), (1, 1));
    assert!(rib.best(net("10.2.0.0/24")).is_none());
    assert!(rib.best(net("10.1.0.0/24")).is_some());
    assert_eq!(rib.peer_stale_count(a), 1);
}

#[test]
fn stale_paths_compete_normally() {
    // RFC 4724: stale routes are not told apart in forwarding; a better fresh path wins and
    // the stale one stays as a candidate.
    let mut rib = Rib::new(ME, 64512);
    let a = peer(&mut rib, [172, 20, 42, 81], [172, 20, 42, 81], 64512);
    let b = peer(&mut rib, [172, 20, 42, 82], [172, 20, 42, 82], 64512);
    announce(&mut rib, a, attrs([172, 20, 42, 81]), &["10.9.0.0/24"]);
    rib.mark_stale(a, &[V4]);
    let mut better = attrs([172, 20, 42, 82]);
    better.local_pref = Some(200);
    announce(&mut rib, b, better, &["10.9.0.0/24"]);
    assert_eq!(best_peer(&rib, "10.9.0.0/24"), Some(ip("172.20.42.82")));
    // The stale path's peer never comes back: sweeping it does not touch b's route.
    rib.drain_changes();
    assert_eq!(rib.sweep_stale(a, &[V4]), 1);
    assert_eq!(rib.drain_changes(), vec![]);
    assert_eq!(best_peer(&rib, "10.9.0.0/24"), Some(ip("172.20.42.82")));
}

#[test]
fn treat_as_withdraw_withdraws_the_announced_prefixes() {
    let mut rib = Rib::new(ME, 64512);
    let a = peer(&mut rib, [172, 20, 42, 81], [172, 20, 42, 81], 64512);
    announce(
        &mut rib,
        a,
        attrs([172, 20, 42, 81]),
        &["10.233.87.0/24", "10.233.88.0/24"],
    );
    rib.drain_changes();
    // The peer re-announces 10.233.87.0/24 with a malformed COMMUNITIES attribute.
    let mut body = vec![0, 0];
    let attrs_bytes: Vec<u8> = [
        &[0x40u8, 1, 1, 0][..],
        &[0x40, 2, 0],
        &[0x40, 3, 4, 172, 20, 42, 81],
        &[0xc0, 8, 3, 0, 0, 0],
    ]
    .concat();
    body.extend_from_slice(&(attrs_bytes.len() as u16).to_be_bytes());
    body.extend_from_slice(&attrs_bytes);
    body.extend_from_slice(&[24, 10, 233, 87]);
    let mut m = vec![0xff; 16];
    m.extend_from_slice(&((19 + body.len()) as u16).to_be_bytes());
    m.push(2);
    m.extend_from_slice(&body);
    let Message::Update(u) = Message::decode(&m, &ctx()).unwrap() else {
        panic!()
    };
    let st = rib.apply_update(a, &u);
    assert!(st.treated_as_withdraw);
    assert_eq!((st.announced, st.withdrawn), (0, 1));
    assert!(rib.best(net("10.233.87.0/24")).is_none());
    assert!(
        rib.best(net("10.233.88.0/24")).is_some(),
        "other routes untouched"
    );
}

fn ip(s: &str) -> std::net::IpAddr {
    s.parse().unwrap()
}
