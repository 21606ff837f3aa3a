//! IPv6 and dual stack on a 3-node cluster in namespaces: Calico's IPv6 route shapes (blackholes,
//! plain routes to other nodes' blocks, `/128` workload routes, VXLAN over IPv6), the sysctls,
//! ping and ping6 between every pod, resyncs and restarts that change nothing, repairs, and an
//! IPv6-only node. The IPv4 lines of a dual-stack node are those of an IPv4-only one.

mod common;

use std::net::IpAddr;

use brindle_dataplane::{Dataplane, EncapMode};
use brindle_netlink::Handle;
use brindle_testkit::Netns;
use common::{Cluster, DUAL, Modes, V6, lines};

const NEVER: Modes = Modes {
    ipip: EncapMode::Never,
    vxlan: EncapMode::Never,
};

fn cluster(cross_subnet: bool, modes: Modes, families: common::Families) -> (Cluster, Vec<Dataplane>) {
    let mut c = Cluster::with_families(3, cross_subnet, modes, families);
    for i in 0..3 {
        c.add_pod(i);
    }
    let dps = c.start_all();
    (c, dps)
}

fn routes6(ns: &Netns) -> Vec<String> {
    lines(&ns.ip(&["-6", "route"]))
}

fn assert_has(routes: &[String], want: &str) {
    assert!(
        routes.iter().any(|r| r == want),
        "missing `{want}` in:\n{}",
        routes.join("\n")
    );
}

#[test]
fn dual_stack_routes_sysctls_pings_resync_repair_and_restart() {
    let (c, mut dps) = cluster(false, NEVER, DUAL);
    let n0 = &c.nodes[0];
    let cali = &n0.pods[0].iface;
    // IPv6: Calico's lines (BIRD6's blackhole and block routes, the CNI's /128).
    let r6 = routes6(&n0.ns);
    for want in [
        "blackhole fd00:10:233::/122 dev lo proto bird metric 1024 pref medium".to_string(),
        "fd00:10:233::40/122 via fd00:20::81 dev eth0 proto bird metric 1024 pref medium".to_string(),
        "fd00:10:233::80/122 via fd00:20::82 dev eth0 proto bird metric 1024 pref medium".to_string(),
        format!("fd00:10:233::1 dev {cali} metric 1024 pref medium"),
    ] {
        assert_has(&r6, &want);
    }
    // IPv4: exactly the IPv4-only lines.
    let r4 = lines(&n0.ns.ip(&["route"]));
    for want in [
        "10.233.87.0/24 via 172.20.42.81 dev eth0 proto bird".to_string(),
        "10.233.124.0/24 via 172.20.42.82 dev eth0 proto bird".to_string(),
        "blackhole 10.233.94.0/24 proto bird".to_string(),
        format!("10.233.94.1 dev {cali} scope link"),
    ] {
        assert_has(&r4, &want);
    }
    // Felix's sysctls: node-wide IPv6 forwarding, proxy NDP and forwarding on the workload
    // interface, no router advertisements accepted there.
    let h = Handle::open_named(n0.ns.name()).unwrap();
    assert_eq!(h.sysctl("net.ipv6.conf.all.forwarding").unwrap(), "1");
    for (key, want) in [("proxy_ndp", "1"), ("forwarding", "1"), ("accept_ra", "0")] {
        assert_eq!(
            h.sysctl(&format!("net/ipv6/conf/{cali}/{key}")).unwrap(),
            want,
            "{key}"
        );
    }
    // The pod's IPv6 gateway is the host end's link-local address.
    let pod_routes = lines(&n0.pods[0].ns.ip(&["-6", "route"]));
    assert_has(
        &pod_routes,
        "default via fe80::ecee:eeff:feee:eeee dev eth0 metric 1024 pref medium",
    );
    let bad = c.ping_all();
    assert!(bad.is_empty(), "failed pairs: {bad:?}");
    // The node itself reaches a remote pod over IPv6.
    let remote = c.nodes[2].pods[0].ip6.unwrap().to_string();
    assert!(common::ping(&n0.ns, &remote), "node 0 -> {remote}");

    // NAT66 (`natOutgoing` on the IPv6 pool, in `ip6 brindle`): the external host sees the
    // node's IPv6 address, never the pod's, and answers.
    let node6 = n0.ip6.unwrap().addr().to_string();
    c.ext.run("nft", &["add", "table", "ip6", "seen"]);
    c.ext.run(
        "nft",
        &["add chain ip6 seen input { type filter hook input priority 0; }"],
    );
    c.ext.run(
        "nft",
        &[&format!(
            "add rule ip6 seen input ip6 saddr {node6} icmpv6 type echo-request counter"
        )],
    );
    c.ext.run(
        "nft",
        &[&format!(
            "add rule ip6 seen input ip6 saddr {} counter",
            common::POOL6
        )],
    );
    assert!(
        common::ping(&n0.pods[0].ns, "2001:db8::1"),
        "pod cannot reach the external IPv6 host"
    );
    let seen = c.ext.run("nft", &["list", "table", "ip6", "seen"]);
    let counts: Vec<u64> = seen
        .split("packets ")
        .skip(1)
        .map(|s| s.split_whitespace().next().unwrap().parse().unwrap())
        .collect();
    assert!(counts[0] > 0 && counts[1] == 0, "external saw: {seen}");

    // A resync of an unchanged kernel plans nothing (IPv6 routes compare in the kernel's form).
    let r = dps[0].apply(&c.desired(0), Cluster::opts());
    assert!(r.errors.is_empty(), "{:?}", r.errors);
    assert_eq!((r.routes.replaced, r.routes.deleted), (0, 0), "{:?}", r.routes);

    // Behind its back: an IPv6 block route deleted, another moved, the workload /128 deleted; a
    // stale owned IPv6 route and foreign IPv6 routes added.
    let ns = &n0.ns;
    ns.ip(&["-6", "route", "del", "fd00:10:233::40/122"]);
    ns.ip(&[
        "-6",
        "route",
        "replace",
        "fd00:10:233::80/122",
        "via",
        "fd00:20::99",
        "dev",
        "eth0",
        "proto",
        "bird",
    ]);
    ns.ip(&["-6", "route", "del", "fd00:10:233::1", "dev", cali]);
    ns.ip(&[
        "-6",
        "route",
        "add",
        "fd00:10:233::c0/122",
        "via",
        "fd00:20::77",
        "dev",
        "eth0",
        "proto",
        "bird",
    ]);
    ns.ip(&[
        "-6",
        "route",
        "add",
        "2001:db8:1::/64",
        "via",
        "fd00:20::1",
        "proto",
        "static",
    ]);
    ns.ip(&["-6", "route", "add", "2001:db8:2::7", "dev", "eth0"]);
    let r = dps[0].apply(&c.desired(0), Cluster::opts());
    assert!(r.errors.is_empty(), "{:?}", r.errors);
    assert_eq!((r.routes.replaced, r.routes.deleted), (3, 1), "{:?}", r.routes);
    let after = routes6(ns);
    for l in &r6 {
        assert_has(&after, l);
    }
    assert!(
        !after.iter().any(|l| l.starts_with("fd00:10:233::c0/122")),
        "stale route kept"
    );
    assert_has(
        &after,
        "2001:db8:1::/64 via fd00:20::1 dev eth0 proto static metric 1024 pref medium",
    );
    assert_has(&after, "2001:db8:2::7 dev eth0 metric 1024 pref medium");
    // The kernel's own IPv6 routes on the workload interface are left alone.
    assert_has(
        &after,
        &format!("fe80::/64 dev {cali} proto kernel metric 256 pref medium"),
    );

    // Restart: a new dataplane adopts everything, IPv4 and IPv6, and traffic never stopped.
    drop(dps.remove(0));
    assert!(c.ping_all().is_empty());
    let h = Handle::open_named(ns.name()).unwrap();
    let (_dp, report) = Dataplane::start(h, c.config(0), &c.desired(0)).unwrap();
    assert!(report.errors.is_empty(), "{:?}", report.errors);
    assert_eq!(
        (report.routes.replaced, report.routes.deleted),
        (0, 0),
        "{report:?}"
    );
}

#[test]
fn vxlan_v6_always() {
    let (c, _dps) = cluster(
        false,
        Modes {
            ipip: EncapMode::Never,
            vxlan: EncapMode::Always,
        },
        DUAL,
    );
    let n0 = &c.nodes[0].ns;
    let r6 = routes6(n0);
    assert_has(
        &r6,
        "fd00:10:233::40/122 via fd00:10:233::40 dev vxlan-v6.calico proto 80 metric 1024 onlink pref medium",
    );
    assert_has(
        &r6,
        "fd00:10:233::80/122 via fd00:10:233::80 dev vxlan-v6.calico proto 80 metric 1024 onlink pref medium",
    );
    // IPv4 keeps its own device.
    assert_has(
        &lines(&n0.ip(&["route"])),
        "10.233.87.0/24 via 10.233.87.0 dev vxlan.calico proto 80 onlink",
    );
    let link = n0.ip(&["-d", "link", "show", "vxlan-v6.calico"]);
    for want in [
        "vxlan id 4096",
        "local fd00:20::80",
        "dev eth0",
        "dstport 4789",
        "nolearning",
        "mtu 1430",
    ] {
        assert!(link.contains(want), "no `{want}` in {link}");
    }
    let mac = brindle_netlink::mac_to_string(&brindle_dataplane::vxlan::vtep_mac_v6("bgp-master1"));
    assert!(link.contains(&format!("link/ether {mac}")), "{link}");
    let addr = n0.ip(&["-6", "addr", "show", "dev", "vxlan-v6.calico"]);
    assert!(addr.contains("inet6 fd00:10:233::/128"), "{addr}");
    let peer_mac = brindle_netlink::mac_to_string(&brindle_dataplane::vxlan::vtep_mac_v6("bgp-master2"));
    let neigh = n0.ip(&["-6", "neigh", "show", "dev", "vxlan-v6.calico"]);
    assert!(
        neigh.contains(&format!("fd00:10:233::40 lladdr {peer_mac} PERMANENT")),
        "{neigh}"
    );
    let fdb = n0.run("bridge", &["fdb", "show", "dev", "vxlan-v6.calico"]);
    assert!(
        fdb.contains(&format!("{peer_mac} dst fd00:20::81 self permanent")),
        "{fdb}"
    );
    let frames = common::count_on_fabric(&c.fabric, "ip6 nexthdr udp udp dport 4789");
    let bad = c.ping_all();
    assert!(bad.is_empty(), "failed pairs: {bad:?}");
    assert!(frames() > 0, "no VXLAN over IPv6 on the fabric");
    // Pods' MTU leaves room for the IPv6 outer header.
    let pod = c.nodes[0].pods[0].ns.ip(&["link", "show", "eth0"]);
    assert!(pod.contains("mtu 1430"), "{pod}");
}

#[test]
fn vxlan_v6_cross_subnet() {
    let (c, _dps) = cluster(
        true,
        Modes {
            ipip: EncapMode::Never,
            vxlan: EncapMode::CrossSubnet,
        },
        DUAL,
    );
    let r6 = routes6(&c.nodes[0].ns);
    assert_has(
        &r6,
        "fd00:10:233::40/122 via fd00:20::81 dev eth0 proto 80 metric 1024 pref medium",
    );
    assert_has(
        &r6,
        "fd00:10:233::80/122 via fd00:10:233::80 dev vxlan-v6.calico proto 80 metric 1024 onlink pref medium",
    );
    let r2 = routes6(&c.nodes[2].ns);
    assert_has(
        &r2,
        "fd00:10:233::/122 via fd00:10:233:: dev vxlan-v6.calico proto 80 metric 1024 onlink pref medium",
    );
    let frames = common::count_on_fabric(&c.fabric, "ip6 nexthdr udp udp dport 4789");
    let near = c.nodes[1].pods[0].ip6.unwrap().to_string();
    assert!(common::ping(&c.nodes[0].pods[0].ns, &near));
    assert_eq!(frames(), 0, "same-subnet IPv6 traffic was encapsulated");
    let bad = c.ping_all();
    assert!(bad.is_empty(), "failed pairs: {bad:?}");
    assert!(frames() > 0, "no VXLAN over IPv6 across the router");
}

#[test]
fn ipv6_only_nodes() {
    let (c, _dps) = cluster(false, NEVER, V6);
    let n0 = &c.nodes[0];
    let r6 = routes6(&n0.ns);
    assert_has(
        &r6,
        "fd00:10:233::40/122 via fd00:20::81 dev eth0 proto bird metric 1024 pref medium",
    );
    assert_has(
        &r6,
        "blackhole fd00:10:233::/122 dev lo proto bird metric 1024 pref medium",
    );
    // Nothing IPv4: no routes of Brindle's, no tunnel device.
    assert_eq!(n0.ns.ip(&["-4", "route", "show", "proto", "bird"]), "");
    assert!(!n0.ns.ip(&["link"]).contains("tunl0"));
    for p in c.nodes.iter().flat_map(|n| &n.pods) {
        assert_eq!(p.addrs().len(), 1);
        assert!(matches!(p.addrs()[0], IpAddr::V6(_)));
    }
    let bad = c.ping_all();
    assert!(bad.is_empty(), "failed pairs: {bad:?}");
}
