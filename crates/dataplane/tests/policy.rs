//! Workload policy enforced by Brindle's tables, with real traffic between pods in network
//! namespaces: each node's policy calculation drives its PolicyDataplane, and TCP connects
//! between pods must match what the calculation's evaluator expects.

mod common;

use std::net::{IpAddr, Ipv6Addr};
use std::time::Duration;

use brindle_dataplane::EncapMode;
use brindle_policy::TierInput;
use brindle_policy::ir::{EndpointToHostAction, Settings, TierDefault};
use common::Modes;
use common::packets::{send_raw, udp_packet, udp_sink};
use common::policy::{PolicyCluster, alive, connect, global_policy, listen, network_policy, reach, wait_dad};

const NONE: Modes = Modes {
    ipip: EncapMode::Never,
    vxlan: EncapMode::Never,
};
const VXLAN: Modes = Modes {
    ipip: EncapMode::Never,
    vxlan: EncapMode::Always,
};
const IPIP: Modes = Modes {
    ipip: EncapMode::Always,
    vxlan: EncapMode::Never,
};

#[test]
fn pod_to_pod_across_nodes_is_filtered_in_every_encapsulation() {
    for (mode, modes) in [("none", NONE), ("vxlan", VXLAN), ("ipip", IPIP)] {
        let mut pc = PolicyCluster::new(
            2,
            modes,
            &[
                (0, "x", "a", &[("app", "a")]),
                (1, "x", "b", &[("app", "b")]),
                (1, "y", "c", &[("app", "c")]),
            ],
        );
        let all = [
            "x/a->x/b", "x/a->y/c", "x/b->x/a", "x/b->y/c", "y/c->x/a", "y/c->x/b",
        ];
        assert_eq!(pc.matrix(80), all, "{mode}: profiles allow everything");
        // x/b: ingress only from app=a (same namespace), TCP 80.
        pc.add_policy(&network_policy(
            "x",
            "b-from-a",
            "app == 'b'",
            Some("- action: Allow\n  protocol: TCP\n  source:\n    selector: app == 'a'\n  destination:\n    ports: [80]\n"),
            None,
        ));
        let (m80, m81) = (pc.matrix(80), pc.matrix(81));
        assert_eq!(m80, pc.expected(80), "{mode}: port 80");
        assert_eq!(m81, pc.expected(81), "{mode}: port 81");
        assert!(m80.contains(&"x/a->x/b".to_string()), "{mode}: {m80:?}");
        assert!(!m80.contains(&"y/c->x/b".to_string()), "{mode}: {m80:?}");
        assert!(!m81.contains(&"x/a->x/b".to_string()), "{mode}: {m81:?}");
        eprintln!("{mode}: port 80 {m80:?}, port 81 {m81:?}");
    }
}

#[test]
fn spoofed_sources_are_dropped_v4_and_v6() {
    // Policy off: anti-spoofing belongs to the host part and holds without policy too.
    let mut c = common::Cluster::new(2, false, NONE);
    c.add_pod(0);
    c.add_pod(0);
    c.add_pod(1);
    let _dps = c.start_all();
    assert!(c.ping_all().is_empty());
    let (a, a2, b) = (&c.nodes[0].pods[0], &c.nodes[0].pods[1], &c.nodes[1].pods[0]);

    // IPv4, across nodes: a forges an address of node 1's block (a pod there could have it).
    let mut sink = udp_sink(&b.ns, false, 9999);
    let forged: IpAddr = "10.233.87.77".parse().unwrap();
    for src in [forged, IpAddr::V4(a.ip)] {
        send_raw(
            &a.ns,
            udp_packet(src, IpAddr::V4(b.ip), 5555, 9999, b"x"),
            IpAddr::V4(b.ip),
        );
    }
    let got = sink(Duration::from_secs(1));
    assert_eq!(got, [IpAddr::V4(a.ip)], "only the pod's own address gets through");
    let raw = c.nodes[0]
        .ns
        .run("nft", &["list", "chain", "ip", "brindle", "raw-cali-PREROUTING"]);
    assert!(
        raw.contains("packets 1 "),
        "the forged packet was counted:\n{raw}"
    );

    // IPv6, on one node: a and a2 get IPv6 addresses and routes the way Calico gives them.
    let node = &c.nodes[0].ns;
    node.sysctl("net.ipv6.conf.all.forwarding", "1");
    let (ip6a, ip6a2): (Ipv6Addr, Ipv6Addr) = ("fd00:aa::1".parse().unwrap(), "fd00:aa::2".parse().unwrap());
    for (pod, ip) in [(a, ip6a), (a2, ip6a2)] {
        pod.ns
            .ip(&["-6", "addr", "add", &format!("{ip}/128"), "dev", "eth0", "nodad"]);
        node.ip(&["-6", "route", "add", &format!("{ip}/128"), "dev", &pod.iface]);
        wait_dad(node, &pod.iface);
        pod.ns.ip(&[
            "-6",
            "route",
            "add",
            "default",
            "via",
            "fe80::ecee:eeff:feee:eeee",
            "dev",
            "eth0",
        ]);
    }
    let mut sink6 = udp_sink(&a2.ns, true, 9999);
    let forged6: IpAddr = "fd00:bb::9".parse().unwrap();
    for src in [forged6, IpAddr::V6(ip6a)] {
        send_raw(
            &a.ns,
            udp_packet(src, IpAddr::V6(ip6a2), 5555, 9999, b"x"),
            IpAddr::V6(ip6a2),
        );
    }
    let got = sink6(Duration::from_secs(2));
    assert_eq!(
        got,
        [IpAddr::V6(ip6a)],
        "only the pod's own IPv6 address gets through"
    );
    let raw6 = node.run("nft", &["list", "chain", "ip6", "brindle", "raw-cali-PREROUTING"]);
    assert!(
        raw6.contains("packets 1 "),
        "the forged packet was counted:\n{raw6}"
    );
}

/// Brindle's IPv4 table as `nft -j` lists it, with counter values and handles dropped and
/// objects in a fixed order (a repaired table counts from zero again, and a recreated one
/// lists its objects in the order they were made); rules keep their order within a chain.
fn table_objects(ns: &brindle_testkit::Netns) -> Vec<String> {
    fn scrub(v: &mut serde_json::Value) {
        match v {
            serde_json::Value::Object(m) => {
                m.remove("handle");
                if let Some(c) = m.get_mut("counter") {
                    *c = serde_json::Value::Null;
                }
                m.values_mut().for_each(scrub);
            }
            serde_json::Value::Array(a) => a.iter_mut().for_each(scrub),
            _ => {}
        }
    }
    let out = ns.run("nft", &["-j", "list", "table", "ip", "brindle"]);
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    let mut objs: Vec<(String, String)> = v["nftables"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|o| o.get("metainfo").is_none())
        .map(|o| {
            let mut o = o.clone();
            scrub(&mut o);
            let key = if let Some(r) = o.get("rule") {
                format!("rule {}", r["chain"])
            } else {
                o.to_string()
            };
            (key, o.to_string())
        })
        .collect();
    objs.sort_by(|a, b| a.0.cmp(&b.0));
    objs.into_iter().map(|(_, o)| o).collect()
}

/// The ruleset generation of a namespace.
fn generation(ns: &brindle_testkit::Netns) -> u32 {
    let fd = brindle_netlink::NetnsFd::named(ns.name()).unwrap();
    brindle_netlink::nftables::Nft::open(&fd)
        .unwrap()
        .generation()
        .unwrap()
        .id
}

#[test]
fn fail_closed_one_transaction_per_change_and_repairs() {
    let mut pc = PolicyCluster::new(
        2,
        NONE,
        &[(0, "x", "a", &[("app", "a")]), (1, "x", "b", &[("app", "b")])],
    );
    let (a, b) = (pc.index("x/a"), pc.index("x/b"));
    pc.add_policy(&network_policy(
        "x",
        "b-from-clients",
        "app == 'b'",
        Some("- action: Allow\n  protocol: TCP\n  source:\n    selector: role == 'client'\n  destination:\n    ports: [80]\n"),
        None,
    ));
    assert!(!reach(pc.pod_ns(a), pc.pod_ip(b), 80), "a is no client yet");

    // A label change is a set element in place: one transaction, no chain rewritten.
    let node1 = pc.c.nodes[1].ns.name().to_string();
    let g = generation(&pc.c.nodes[1].ns);
    pc.pods[a].labels.insert("role".into(), "client".into());
    let w = pc.announce(a);
    assert_eq!(generation(&pc.c.nodes[1].ns), g + 1, "one transaction on {node1}");
    assert!(w[0].changes.is_empty(), "node 0 has no policy that uses the set");
    let ch = &w[1].changes;
    assert_eq!(
        (ch.elements_added, ch.chains_rewritten, ch.chains_created),
        (1, 0, 0),
        "{ch:?}"
    );
    assert!(w[1].refused.is_none() && !w[1].read_back);
    assert!(reach(pc.pod_ns(a), pc.pod_ip(b), 80));
    assert!(!reach(pc.pod_ns(a), pc.pod_ip(b), 81));

    // A rule change rewrites that policy's chain only, where the policy is active.
    let mut established = connect(pc.pod_ns(a), pc.pod_ip(b), 80, Duration::from_secs(1)).expect("allowed");
    let w = pc.add_policy(&network_policy(
        "x",
        "b-from-clients",
        "app == 'b'",
        Some("- action: Allow\n  protocol: TCP\n  source:\n    selector: role == 'client'\n  destination:\n    ports: [81]\n"),
        None,
    ));
    assert_eq!(
        w[0].changes,
        Default::default(),
        "node 0 has no endpoint the policy selects"
    );
    assert_eq!(w[1].changes.chains_rewritten, 1, "{:?}", w[1].changes);
    assert_eq!(
        w[1].changes.objects,
        ["chain ip filter-cali-pi-np/x/b-from-clients"]
    );
    assert!(!reach(pc.pod_ns(a), pc.pod_ip(b), 80));
    assert!(reach(pc.pod_ns(a), pc.pod_ip(b), 81));
    assert!(
        alive(&mut established),
        "conntrack keeps an established flow (as Felix)"
    );

    // Fail closed: a pod the tables do not know yet is cut off both ways.
    let n = pc.add_pod_unannounced(1, "x", "new", &[("role", "client")]);
    assert!(
        !reach(pc.pod_ns(n), pc.pod_ip(a), 80),
        "unknown interface: egress dropped"
    );
    assert!(
        !reach(pc.pod_ns(a), pc.pod_ip(n), 80),
        "unknown interface: ingress dropped"
    );
    let dispatch = pc.c.nodes[1].ns.run(
        "nft",
        &["list", "chain", "ip", "brindle", "filter-cali-to-wl-dispatch"],
    );
    let unknown = dispatch
        .lines()
        .find(|l| l.contains("Unknown interface"))
        .unwrap_or_default();
    assert!(!unknown.contains("packets 0 "), "dropped as unknown:\n{dispatch}");
    pc.announce(n);
    assert!(reach(pc.pod_ns(n), pc.pod_ip(a), 80));
    assert!(reach(pc.pod_ns(n), pc.pod_ip(b), 81), "a client of b");

    // The reconciler: changes behind Brindle's back are noticed and put back; other tables
    // are never touched.
    let ns1 = pc.c.nodes[1].ns.name().to_string();
    let node1 = &pc.c.nodes[1].ns;
    node1.run("nft", &["add", "table", "ip", "other"]);
    node1.run("nft", &["add", "chain", "ip", "other", "c"]);
    node1.run("nft", &["add", "rule", "ip", "other", "c", "counter"]);
    let mut mon = pc.dps[1].policy().monitor().unwrap();
    let before = table_objects(node1);
    let pol = "filter-cali-pi-np/x/b-from-clients";
    let listing = node1.run("nft", &["-a", "list", "chain", "ip", "brindle", pol]);
    let handle = listing
        .lines()
        .find(|l| l.contains("dport 81"))
        .and_then(|l| l.rsplit("handle ").next())
        .expect("the rule's handle")
        .trim()
        .to_string();
    let sabotage: [&[&str]; 4] = [
        &["delete", "rule", "ip", "brindle", pol, "handle", &handle],
        &[
            "delete",
            "element",
            "ip",
            "brindle",
            "filter-cali-to-wl-dispatch",
            "{",
            &pc.c.nodes[1].pods[0].iface,
            "}",
        ],
        &["flush", "table", "ip", "brindle"],
        &["delete", "table", "ip", "brindle"],
    ];
    for s in sabotage {
        let t = std::time::Instant::now();
        node1.run("nft", s);
        assert!(
            mon.wait(Duration::from_secs(5)),
            "{ns1}: `nft {}` not noticed",
            s.join(" ")
        );
        let w = pc.dps[1].policy().check(true).unwrap();
        eprintln!(
            "`nft {}`: restored in {:?} ({:?})",
            s.join(" "),
            t.elapsed(),
            w.changes.objects
        );
        assert!(!w.changes.is_empty());
        assert_eq!(table_objects(node1), before);
    }
    assert!(reach(pc.pod_ns(a), pc.pod_ip(b), 81));
    assert!(
        node1
            .run("nft", &["list", "table", "ip", "other"])
            .contains("counter")
    );
    // Nothing changed since: the check is one generation read.
    let w = pc.dps[1].policy().check(false).unwrap();
    assert!(!w.read_back && w.changes.is_empty());

    // A restarted agent adopts the tables: nothing is written before its first resync, and
    // that resync finds nothing to change.
    let h = brindle_netlink::Handle::open_named(&ns1).unwrap();
    let mut cfg = pc.c.config(1);
    cfg.policy.enabled = true;
    let g = generation(node1);
    let (mut dp, _) = brindle_dataplane::Dataplane::start(h, cfg, &pc.c.desired(1)).unwrap();
    assert_eq!(generation(node1), g, "no write before the policy state is known");
    let w = dp.policy().resync(pc.calcs[1].state()).unwrap();
    assert!(w.read_back && w.changes.is_empty(), "{:?}", w.changes);
    assert_eq!(generation(node1), g);
}

#[test]
fn host_to_workload_and_workload_to_host() {
    let mut pc = PolicyCluster::new(1, NONE, &[(0, "x", "a", &[("app", "a")])]);
    let a = pc.index("x/a");
    let node = pc.c.nodes[0].ns.name().to_string();
    let _host_listener = listen(&pc.c.nodes[0].ns, &[8080]);
    let host_ip = IpAddr::V4(pc.c.nodes[0].ip);
    pc.add_policy(&network_policy("x", "deny-in", "all()", Some("[]"), None));
    assert!(
        reach(&pc.c.nodes[0].ns, pc.pod_ip(a), 80),
        "{node}: host to workload is never checked against ingress policy"
    );
    assert!(
        !reach(pc.pod_ns(a), host_ip, 8080),
        "DefaultEndpointToHostAction Drop (Felix's default)"
    );
    let accept = Settings {
        default_endpoint_to_host_action: EndpointToHostAction::Accept,
        ..Settings::default()
    };
    let w = pc.change(|c| c.set_settings(accept.clone()));
    assert!(w[0].changes.chains_rewritten >= 1, "{:?}", w[0].changes);
    assert!(
        reach(pc.pod_ns(a), host_ip, 8080),
        "DefaultEndpointToHostAction Accept"
    );
    pc.add_policy(&network_policy("x", "deny-out", "all()", None, Some("[]")));
    assert!(
        !reach(pc.pod_ns(a), host_ip, 8080),
        "the workload's egress policy comes first"
    );
}

#[test]
fn kernel_verdicts_match_the_evaluator_tiers_pass_order_named_ports_nets() {
    let mut pc = PolicyCluster::new(
        2,
        NONE,
        &[
            (0, "x", "a", &[("app", "a"), ("role", "client")]),
            (1, "x", "b", &[("app", "b")]),
            (1, "y", "c", &[("app", "c"), ("role", "client")]),
            (0, "y", "d", &[("app", "d")]),
        ],
    );
    let (a, b, c) = (pc.index("x/a"), pc.index("x/b"), pc.index("y/c"));
    pc.set_ports(b, &[("http", "TCP", 81)]);
    let (ip_a, ip_c) = (pc.pod_ip(a), pc.pod_ip(c));
    // A security tier before the default one: d may reach nobody; everything else is passed on.
    pc.change(|calc| {
        calc.upsert_tier(TierInput {
            name: "security".into(),
            order: Some(100.0),
            default_action: TierDefault::Deny,
        })
    });
    pc.add_policy(&global_policy(
        "deny-d",
        "security",
        1.0,
        "all()",
        Some("- action: Deny\n  source:\n    selector: app == 'd'\n- action: Pass\n"),
        None,
    ));
    // x/b: TCP 80 from c is denied before anything allows it; the named port from clients (in
    // x) is allowed; then, a second policy: TCP from the pool except a, not on port 81.
    pc.add_policy(&network_policy(
        "x",
        "b-first",
        "app == 'b'",
        Some(&format!(
            "- action: Deny\n  protocol: TCP\n  source:\n    nets: [{ip_c}/32]\n  destination:\n    ports: [80]\n\
             - action: Allow\n  protocol: TCP\n  source:\n    selector: role == 'client'\n  destination:\n    ports: [http]\n"
        )),
        None,
    ));
    let mut more = network_policy(
        "x",
        "b-more",
        "app == 'b'",
        Some(&format!(
            "- action: Allow\n  protocol: TCP\n  source:\n    nets: [10.233.64.0/18]\n    notNets: [{ip_a}/32]\n  destination:\n    notPorts: [81]\n"
        )),
        None,
    );
    more.order = Some(2000.0);
    pc.add_policy(&more);
    // y/c: no TCP 81 out, the rest allowed.
    pc.add_policy(&network_policy(
        "y",
        "c-out",
        "app == 'c'",
        None,
        Some("- action: Deny\n  protocol: TCP\n  destination:\n    ports: [81]\n- action: Allow\n"),
    ));
    for port in [80, 81] {
        let (got, want) = (pc.matrix(port), pc.expected(port));
        eprintln!("port {port}: {got:?}");
        assert_eq!(got, want, "port {port}: the kernel against the evaluator");
        assert!(
            !got.is_empty() && got.len() < 12,
            "a matrix that tells something: {got:?}"
        );
        assert!(
            !got.iter().any(|p| p.starts_with("y/d->")),
            "tier security denies d"
        );
    }
}

#[test]
fn ipv6_workload_policy() {
    let mut pc = PolicyCluster::with(
        1,
        NONE,
        &[
            (0, "x", "a", &[("app", "a")]),
            (0, "x", "b", &[("app", "b")]),
            (0, "x", "c", &[("app", "c")]),
        ],
        Settings::default(),
        brindle_dataplane::PolicyConfig {
            enabled: true,
            ipv6: true,
            ..Default::default()
        },
    );
    let ips: Vec<Ipv6Addr> = ["fd00:aa::1", "fd00:aa::2", "fd00:aa::3"]
        .iter()
        .map(|s| s.parse().unwrap())
        .collect();
    for (i, ip) in ips.iter().enumerate() {
        pc.add_ipv6(i, *ip);
    }
    let (a, b, c) = (pc.index("x/a"), pc.index("x/b"), pc.index("x/c"));
    let v6 = |i: usize| IpAddr::V6(ips[i]);
    assert!(reach(pc.pod_ns(a), v6(b), 81), "profiles allow IPv6 too");
    pc.add_policy(&network_policy(
        "x",
        "b-from-a",
        "app == 'b'",
        Some("- action: Allow\n  protocol: TCP\n  source:\n    selector: app == 'a'\n  destination:\n    ports: [80]\n"),
        None,
    ));
    assert!(
        reach(pc.pod_ns(a), v6(b), 80),
        "a's IPv6 address is in the v6 selector set"
    );
    assert!(!reach(pc.pod_ns(a), v6(b), 81));
    assert!(!reach(pc.pod_ns(c), v6(b), 80));
    assert!(reach(pc.pod_ns(a), pc.pod_ip(b), 80), "and IPv4 the same");
    assert!(!reach(pc.pod_ns(c), pc.pod_ip(b), 80));
    let t = pc.c.nodes[0].ns.run("nft", &["list", "table", "ip6", "brindle"]);
    assert!(t.contains("ip6 saddr @cali60s-"), "{t}");
    assert!(t.contains("map filter-cali-to-wl-dispatch"), "{t}");
}
