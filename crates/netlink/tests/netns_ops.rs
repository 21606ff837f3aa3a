//! Every operation against a real kernel, inside namespaces made for the test.

use std::net::IpAddr;

use brindle_netlink::{Handle, LinkChange, NetnsFd, Route, RouteOp, VethSpec, VxlanSpec, proto, scope};
use brindle_testkit::Netns;

fn net(s: &str) -> ipnet::IpNet {
    s.parse().unwrap()
}

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

/// A node namespace with eth0 172.20.42.80/22 (the other end in `fabric`).
fn node() -> (Netns, Netns, Handle) {
    let fabric = Netns::new("nlf");
    let node = Netns::new("nln");
    fabric.veth("n0", &node, "eth0");
    node.ip(&["addr", "add", "172.20.42.80/22", "dev", "eth0"]);
    node.ip(&["link", "set", "eth0", "up"]);
    fabric.ip(&["link", "set", "n0", "up"]);
    let h = Handle::open_named(node.name()).unwrap();
    (fabric, node, h)
}

#[test]
fn veth_with_peer_born_in_the_pod_namespace() {
    let (_f, node, mut h) = node();
    let pod = Netns::new("nlp");
    let pod_fd = NetnsFd::named(pod.name()).unwrap();
    h.add_veth(&VethSpec {
        name: "cali36dac03ac5d",
        mac: Some([0xee; 6]),
        mtu: Some(1480),
        up: true,
        peer_name: "eth0",
        peer_mtu: Some(1480),
        peer_netns: Some(&pod_fd),
        ..Default::default()
    })
    .unwrap();
    let host = h.require_link("cali36dac03ac5d").unwrap();
    assert_eq!(host.mac, Some([0xee; 6]));
    assert_eq!(host.mtu, 1480);
    assert!(host.up);
    assert_eq!(host.kind.as_deref(), Some("veth"));
    let mut ph = Handle::open(&pod_fd).unwrap();
    let eth0 = ph.require_link("eth0").unwrap();
    assert!(!eth0.up && eth0.mtu == 1480);
    ph.set_link(
        eth0.index,
        "eth0",
        &LinkChange {
            up: Some(true),
            ..Default::default()
        },
    )
    .unwrap();
    // The pod side: /32, 169.254.1.1 scope link, default via it.
    ph.add_address(eth0.index, "eth0", net("10.233.94.1/32")).unwrap();
    ph.add_route(&Route::dev(net("169.254.1.1/32"), eth0.index, scope::LINK))
        .unwrap();
    ph.add_route(&Route::via(net("0.0.0.0/0"), ip("169.254.1.1"), eth0.index))
        .unwrap();
    let out = pod.ip(&["route"]);
    assert_eq!(
        out,
        "default via 169.254.1.1 dev eth0 \n169.254.1.1 dev eth0 scope link \n"
    );
    assert_eq!(
        ph.addresses(Some(eth0.index)).unwrap()[0].net,
        net("10.233.94.1/32")
    );
    // Duplicate creation names the object.
    let err = h
        .add_veth(&VethSpec {
            name: "cali36dac03ac5d",
            peer_name: "x0",
            ..Default::default()
        })
        .unwrap_err();
    assert!(err.is_exists(), "{err}");
    assert!(
        err.to_string().starts_with("add link cali36dac03ac5d type veth"),
        "{err}"
    );
    // Delete.
    assert!(h.delete_link_by_name("cali36dac03ac5d").unwrap());
    assert!(!h.delete_link_by_name("cali36dac03ac5d").unwrap());
    assert!(h.link_by_name("cali36dac03ac5d").unwrap().is_none());
    drop(node);
}

#[test]
fn seed_route_lines_and_batches() {
    let (_f, node, mut h) = node();
    let ifb = "tunl0";
    h.add_ifb(ifb, Some(1480)).unwrap();
    let t = h.require_link(ifb).unwrap();
    h.set_link(
        t.index,
        ifb,
        &LinkChange {
            up: Some(true),
            ..Default::default()
        },
    )
    .unwrap();
    let eth0 = h.require_link("eth0").unwrap();
    let pod = Netns::new("nlp");
    node.veth("cali36dac03ac5d", &pod, "eth0");
    pod.ip(&["link", "set", "eth0", "up"]);
    let cali = h.require_link("cali36dac03ac5d").unwrap();
    h.set_link(
        cali.index,
        "cali",
        &LinkChange {
            up: Some(true),
            ..Default::default()
        },
    )
    .unwrap();
    let ops = vec![
        RouteOp::Add(
            Route::via(net("10.233.87.0/24"), ip("172.20.42.81"), t.index)
                .with_protocol(proto::BIRD)
                .with_onlink(true),
        ),
        RouteOp::Add(Route::blackhole(net("10.233.94.0/24")).with_protocol(proto::BIRD)),
        RouteOp::Add(Route::dev(net("10.233.94.1/32"), cali.index, scope::LINK)),
        // Refused: a gateway that is not on link without onlink.
        RouteOp::Add(
            Route::via(net("10.233.124.0/24"), ip("192.0.2.1"), eth0.index).with_protocol(proto::BIRD),
        ),
        // Refused: exists.
        RouteOp::Add(Route::blackhole(net("10.233.94.0/24")).with_protocol(proto::BIRD)),
    ];
    let err = h.apply_routes(&ops).unwrap_err();
    let idx: Vec<usize> = err.failures.iter().map(|(i, _)| *i).collect();
    assert_eq!(idx, vec![3, 4], "{err}");
    assert_eq!(
        err.failures[0].1.to_string().split(':').next().unwrap(),
        "add route 10.233.124.0/24 via 192.0.2.1 dev eth0 proto bird"
    );
    assert!(err.failures[1].1.is_exists());
    let out = node.ip(&["route"]);
    assert!(
        out.contains("10.233.87.0/24 via 172.20.42.81 dev tunl0 proto bird onlink \n"),
        "{out}"
    );
    assert!(out.contains("blackhole 10.233.94.0/24 proto bird \n"), "{out}");
    assert!(
        out.contains("10.233.94.1 dev cali36dac03ac5d scope link \n"),
        "{out}"
    );
    // Dump and parse back.
    let routes = h.routes(Some(brindle_netlink::TABLE_MAIN)).unwrap();
    let bird: Vec<_> = routes.iter().filter(|r| r.protocol == proto::BIRD).collect();
    assert_eq!(bird.len(), 2);
    let tun = routes.iter().find(|r| r.dst == net("10.233.87.0/24")).unwrap();
    assert!(tun.onlink && tun.oif == Some(t.index) && tun.gateway == Some(ip("172.20.42.81")));
    // Replace changes the gateway; delete removes it.
    h.replace_route(
        &Route::via(net("10.233.87.0/24"), ip("172.20.42.82"), t.index)
            .with_protocol(proto::BIRD)
            .with_onlink(true),
    )
    .unwrap();
    assert!(
        node.ip(&["route"])
            .contains("10.233.87.0/24 via 172.20.42.82 dev tunl0 proto bird onlink")
    );
    h.delete_route(&Route::blackhole(net("10.233.94.0/24")).with_protocol(proto::BIRD))
        .unwrap();
    let e = h
        .delete_route(&Route::blackhole(net("10.233.94.0/24")).with_protocol(proto::BIRD))
        .unwrap_err();
    assert!(e.is_not_found(), "{e}");
    assert_eq!(
        e.to_string(),
        "delete route blackhole 10.233.94.0/24 proto bird: No such process"
    );
}

#[test]
fn large_batch_is_applied_whole() {
    let (_f, node, mut h) = node();
    let eth0 = h.require_link("eth0").unwrap();
    let ops: Vec<RouteOp> = (0..5000u32)
        .map(|i| {
            let dst = format!("11.{}.{}.0/24", i >> 8, i & 255);
            RouteOp::Add(Route::via(net(&dst), ip("172.20.42.81"), eth0.index).with_protocol(proto::BIRD))
        })
        .collect();
    h.apply_routes(&ops).unwrap();
    let shown = node.ip(&["route", "show", "proto", "bird"]).lines().count();
    assert_eq!(shown, 5000);
    assert_eq!(
        h.routes(None)
            .unwrap()
            .iter()
            .filter(|r| r.protocol == proto::BIRD)
            .count(),
        5000
    );
    // Adding them again: every one refused and attributed.
    let err = h.apply_routes(&ops).unwrap_err();
    assert_eq!(err.failures.len(), 5000);
    assert_eq!(err.failures[4999].0, 4999);
    drop(node);
}

#[test]
fn vxlan_neighbours_fdb_and_sysctls() {
    let (_f, _node, mut h) = node();
    let eth0 = h.require_link("eth0").unwrap();
    let mac = [0x66, 0xee, 0, 0, 0, 0];
    h.add_vxlan(&VxlanSpec {
        name: "vxlan.calico",
        vni: 4096,
        port: 4789,
        local: "172.20.42.80".parse().unwrap(),
        dev: Some(eth0.index),
        learning: false,
        mac: Some(mac),
        mtu: Some(1450),
    })
    .unwrap();
    let vx = h.require_link("vxlan.calico").unwrap();
    let info = vx.vxlan.clone().unwrap();
    assert_eq!((info.vni, info.port, info.learning), (4096, 4789, false));
    assert_eq!(info.local, Some("172.20.42.80".parse().unwrap()));
    assert_eq!(vx.mac, Some(mac));
    assert_eq!(vx.mtu, 1450);
    let remote = [0x66, 0xee, 0, 0, 0, 1];
    h.replace_neighbour(vx.index, "vxlan.calico", ip("10.233.87.0"), remote)
        .unwrap();
    h.replace_fdb(vx.index, "vxlan.calico", remote, ip("172.20.42.81"))
        .unwrap();
    let n = h.neighbours(Some(vx.index)).unwrap();
    assert!(
        n.iter()
            .any(|n| n.ip == Some(ip("10.233.87.0")) && n.mac == Some(remote) && n.permanent)
    );
    let f = h.fdb(vx.index).unwrap();
    assert!(
        f.iter()
            .any(|e| e.mac == Some(remote) && e.ip == Some(ip("172.20.42.81"))),
        "{f:?}"
    );
    h.delete_fdb(vx.index, "vxlan.calico", remote, Some(ip("172.20.42.81")))
        .unwrap();
    h.delete_neighbour(vx.index, "vxlan.calico", ip("10.233.87.0"))
        .unwrap();
    assert!(h.fdb(vx.index).unwrap().iter().all(|e| e.mac != Some(remote)));
    // sysctls are per namespace: set in the node, unchanged in the caller's.
    let before = std::fs::read_to_string("/proc/sys/net/ipv4/ip_forward").unwrap();
    h.set_sysctls(&[
        ("net.ipv4.ip_forward", "1"),
        ("net/ipv4/conf/vxlan.calico/rp_filter", "0"),
    ])
    .unwrap();
    assert_eq!(h.sysctl("net.ipv4.ip_forward").unwrap(), "1");
    assert_eq!(
        std::fs::read_to_string("/proc/sys/net/ipv4/ip_forward").unwrap(),
        before
    );
    let e = h
        .set_sysctls(&[("net.ipv4.conf.nosuchdev.proxy_arp", "1")])
        .unwrap_err();
    assert!(
        e.to_string()
            .starts_with("set sysctl net.ipv4.conf.nosuchdev.proxy_arp=1"),
        "{e}"
    );
}

#[test]
fn vxlan_over_ipv6_neighbours_and_fdb() {
    let (_f, node, mut h) = node();
    node.ip(&["-6", "addr", "add", "fd00:20::80/64", "dev", "eth0", "nodad"]);
    let eth0 = h.require_link("eth0").unwrap();
    let mac = [0x66, 0xb9, 0xcf, 0xe5, 0x8a, 0x05];
    h.add_vxlan(&VxlanSpec {
        name: "vxlan-v6.calico",
        vni: 4096,
        port: 4789,
        local: ip("fd00:20::80"),
        dev: Some(eth0.index),
        learning: false,
        mac: Some(mac),
        mtu: Some(1430),
    })
    .unwrap();
    let vx = h.require_link("vxlan-v6.calico").unwrap();
    let info = vx.vxlan.clone().unwrap();
    assert_eq!(info.local, Some(ip("fd00:20::80")));
    assert_eq!((info.vni, info.port, info.dev), (4096, 4789, Some(eth0.index)));
    let shown = node.ip(&["-d", "link", "show", "vxlan-v6.calico"]);
    assert!(shown.contains("local fd00:20::80"), "{shown}");
    let remote = [0x66, 0xee, 0, 0, 0, 2];
    h.replace_neighbour(vx.index, "vxlan-v6.calico", ip("fd00:10:233::40"), remote)
        .unwrap();
    h.replace_fdb(vx.index, "vxlan-v6.calico", remote, ip("fd00:20::81"))
        .unwrap();
    assert!(
        h.neighbours(Some(vx.index))
            .unwrap()
            .iter()
            .any(|n| n.ip == Some(ip("fd00:10:233::40")) && n.mac == Some(remote) && n.permanent)
    );
    // The FDB entry's IPv6 destination is decoded (16 bytes).
    let f = h.fdb(vx.index).unwrap();
    assert!(
        f.iter()
            .any(|e| e.mac == Some(remote) && e.ip == Some(ip("fd00:20::81"))),
        "{f:?}"
    );
    let fdb = node.run("bridge", &["fdb", "show", "dev", "vxlan-v6.calico"]);
    assert!(
        fdb.contains("66:ee:00:00:00:02 dst fd00:20::81 self permanent"),
        "{fdb}"
    );
    h.delete_fdb(vx.index, "vxlan-v6.calico", remote, Some(ip("fd00:20::81")))
        .unwrap();
    assert!(h.fdb(vx.index).unwrap().iter().all(|e| e.mac != Some(remote)));
}

#[test]
fn ipip_is_reported_unsupported_or_works() {
    let (_f, _node, mut h) = node();
    match h.add_ipip("brtun0", None) {
        Ok(()) => assert_eq!(h.require_link("brtun0").unwrap().kind.as_deref(), Some("ipip")),
        Err(e) => assert!(e.is_unsupported(), "{e}"),
    }
    let e = h.require_link("nosuch0").unwrap_err();
    assert!(e.is_not_found());
    assert_eq!(e.to_string(), "get link nosuch0: device nosuch0 not found");
}

#[test]
fn monitor_decodes_route_link_and_neighbour_changes() {
    let (_f, node, mut h) = node();
    let mut m = brindle_netlink::Monitor::open(h.netns()).unwrap();
    let eth0 = h.require_link("eth0").unwrap().index;
    let r = Route::via(net("10.233.87.0/24"), ip("172.20.42.81"), eth0).with_protocol(proto::BIRD);
    h.add_route(&r).unwrap();
    h.delete_route(&r).unwrap();
    h.replace_neighbour(eth0, "eth0", ip("172.20.42.99"), [0xee; 6])
        .unwrap();
    node.ip(&["link", "add", "mon7a", "type", "veth", "peer", "name", "mon7b"]);
    let mut seen = Vec::new();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    let has =
        |seen: &[brindle_netlink::Change], f: &dyn Fn(&brindle_netlink::Change) -> bool| seen.iter().any(f);
    use brindle_netlink::Change;
    while std::time::Instant::now() < deadline
        && !(has(
            &seen,
            &|c| matches!(c, Change::Link { deleted: false, link } if link.name == "mon7a"),
        ) && has(
            &seen,
            &|c| matches!(c, Change::Route { deleted: true, route } if *route == r),
        ))
    {
        m.changes(std::time::Duration::from_millis(200), &mut seen);
    }
    assert!(
        has(
            &seen,
            &|c| matches!(c, Change::Route { deleted: false, route } if *route == r)
        ),
        "{seen:?}"
    );
    assert!(has(
        &seen,
        &|c| matches!(c, Change::Route { deleted: true, route } if *route == r)
    ));
    assert!(has(
        &seen,
        &|c| matches!(c, Change::Neighbour { deleted: false, neighbour }
        if neighbour.permanent && neighbour.ip == Some(ip("172.20.42.99")) && neighbour.mac == Some([0xee; 6]))
    ));
    assert!(has(
        &seen,
        &|c| matches!(c, Change::Link { deleted: false, link } if link.name == "mon7a")
    ));
}
