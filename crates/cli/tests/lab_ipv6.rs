//! End to end, IPv6 (issue 13): `brindle lab up --ip-family dual|6`. Three labs, each checked
//! for many things (CI time is short; a lab per assertion would not be):
//! - dual stack with IPIP for IPv4 (IPv6 routed natively, as Calico): `node status` with both
//!   tables, every peer Established in each; IPv4 and IPv6 route shapes on every node; the full
//!   ping and ping6 matrix through `brindle lab ping`; NAT44 and NAT66 seen from the router's
//!   outside address (the source is the node's address, not the pod's); `lab status` and `lab
//!   view`; an agent killed with SIGKILL and restarted under ping6 streams loses nothing.
//! - IPv6 only with VXLAN Always: no IPv4 on the nodes or pods, `vxlan-v6.calico` routes with
//!   `onlink`, ping6 matrix, NAT66.
//! - dual stack with VXLAN CrossSubnet over two subnets: native routes inside a subnet,
//!   `vxlan.calico` / `vxlan-v6.calico` between subnets.
//!
//! And the options a lab refuses, before anything is made.

mod lab_support;

use std::net::{IpAddr, SocketAddr, UdpSocket};
use std::process::Command;
use std::time::Duration;

use brindle_lab::plan::{EXTERNAL_ADDR, EXTERNAL_ADDR6, POOL6_CIDR};
use brindle_lab::state::PodRecord;
use lab_support::{BIN, TestLab, is_time, ping_stream, wait_for};

const NODES: [&str; 3] = ["bgp-master1", "bgp-node1", "bgp-node2"];

/// Checks one family's table of `node status`: `peers` each on a row, node-to-node mesh, up,
/// Established; or "No IPvN peers found." when `peers` is empty.
fn assert_status_table(out: &str, family: u8, peers: &[String]) {
    let lines: Vec<&str> = out.lines().collect();
    let title = format!("IPv{family} BGP status");
    let at = lines
        .iter()
        .position(|l| *l == title)
        .unwrap_or_else(|| panic!("no {title:?} in:\n{out}"));
    if peers.is_empty() {
        assert_eq!(lines[at + 1], format!("No IPv{family} peers found."), "{out}");
        return;
    }
    assert!(lines[at + 1].starts_with("+--"), "{out}");
    assert_eq!(
        lines[at + 2].split('|').map(str::trim).collect::<Vec<_>>()[1..6],
        ["PEER ADDRESS", "PEER TYPE", "STATE", "SINCE", "INFO"],
        "{out}"
    );
    let rows: Vec<Vec<&str>> = lines[at + 4..]
        .iter()
        .take_while(|l| l.starts_with('|'))
        .map(|l| l.split('|').map(str::trim).collect())
        .collect();
    assert_eq!(rows.len(), peers.len(), "IPv{family} peers:\n{out}");
    for p in peers {
        let row = rows
            .iter()
            .find(|r| r[1] == p)
            .unwrap_or_else(|| panic!("no IPv{family} peer {p} in:\n{out}"));
        assert_eq!(row[2], "node-to-node mesh", "{out}");
        assert_eq!(row[3], "up", "{out}");
        assert!(is_time(row[4]), "SINCE {:?}", row[4]);
        assert_eq!(row[5], "Established", "{out}");
    }
}

/// Every node's `node status`: both tables list the other nodes (by the family's address).
fn assert_mesh_established(lab: &TestLab, v4: bool, v6: bool) {
    let l = lab.lab();
    for n in &l.plan().nodes {
        let others = l.plan().nodes.iter().filter(|o| o.name != n.name);
        let v4_peers: Vec<String> = if v4 {
            others.clone().map(|o| o.addr.addr().to_string()).collect()
        } else {
            vec![]
        };
        let v6_peers: Vec<String> = if v6 {
            others.map(|o| o.addr6.addr().to_string()).collect()
        } else {
            vec![]
        };
        let out = lab.stdout(&n.name, &["brindle", "node", "status"]);
        assert!(out.starts_with("Calico process is running.\n"), "{out}");
        assert_status_table(&out, 4, &v4_peers);
        assert_status_table(&out, 6, &v6_peers);
    }
}

/// `ip -4 route` or `ip -6 route` of a node, line by line.
fn routes(lab: &TestLab, node: &str, family: u8) -> Vec<String> {
    lab.stdout(node, &["ip", &format!("-{family}"), "route"])
        .lines()
        .map(|l| l.trim_end().to_string())
        .collect()
}

/// A route to `dst` whose line has every one of `parts` (in order).
fn assert_route(routes: &[String], dst: &str, parts: &[&str]) {
    let ok = routes.iter().any(|r| {
        let mut rest = match r.strip_prefix(&format!("{dst} ")) {
            Some(rest) => rest,
            None => return false,
        };
        parts.iter().all(|p| match rest.find(p) {
            Some(i) => {
                rest = &rest[i + p.len()..];
                true
            }
            None => false,
        })
    });
    assert!(
        ok,
        "no `{dst} … {}` in:\n{}",
        parts.join(" … "),
        routes.join("\n")
    );
}

/// IPv6 route shapes of a natively routed (or, with `vxlan`, VXLAN Always) dual-stack or v6
/// lab, on every node: its own blocks `blackhole … proto bird`, every other node's block via
/// that node's IPv6 address on eth0 `proto bird` (or via its VTEP on `vxlan-v6.calico`
/// `onlink`), its pods' /128 on their cali interface.
fn assert_v6_routes(lab: &TestLab, vxlan: bool) {
    let l = lab.lab();
    let blocks = l.blocks6_by_node().unwrap();
    let pool: ipnet::Ipv6Net = POOL6_CIDR.parse().unwrap();
    for n in &l.plan().nodes {
        let r = routes(lab, &n.name, 6);
        for (owner, set) in &blocks {
            assert!(
                !set.is_empty() || l.state().spec.pods == 0,
                "{owner} has no IPv6 block"
            );
            for b in set {
                assert!(pool.contains(b), "{b} outside {pool}");
                let b = b.to_string();
                if *owner == n.name {
                    let line = r.iter().find(|x| x.starts_with(&format!("blackhole {b} ")));
                    assert!(
                        line.is_some_and(|x| x.contains("proto bird")),
                        "{}: no `blackhole {b} … proto bird` in:\n{}",
                        n.name,
                        r.join("\n")
                    );
                } else if vxlan {
                    assert_route(&r, &b, &["via fd00:10:233:", "dev vxlan-v6.calico", "onlink"]);
                } else {
                    let peer = l.plan().node(owner).unwrap().addr6.addr().to_string();
                    assert_route(&r, &b, &[&format!("via {peer} dev eth0"), "proto bird"]);
                }
            }
        }
        for p in l.state().pods.iter().filter(|p| p.node == n.name) {
            let ip = p.ip6().expect("IPv6 pod address");
            let cali = p.host_if.as_deref().unwrap();
            assert!(cali.starts_with("cali"), "{cali}");
            assert_route(&r, ip, &[&format!("dev {cali}")]);
        }
    }
}

/// IPv4 route shapes of the IPIP lab, on every node (the seed's lines).
fn assert_v4_ipip_routes(lab: &TestLab) {
    let l = lab.lab();
    let blocks = l.blocks_by_node().unwrap();
    for n in &l.plan().nodes {
        let r = routes(lab, &n.name, 4);
        for (owner, set) in &blocks {
            for b in set {
                let b = b.to_string();
                if *owner == n.name {
                    assert_route(&r, &format!("blackhole {b}"), &["proto bird"]);
                } else {
                    let peer = l.plan().node(owner).unwrap().addr.addr().to_string();
                    assert_route(&r, &b, &[&format!("via {peer} dev tunl0 proto bird onlink")]);
                }
            }
        }
        for p in l.state().pods.iter().filter(|p| p.node == n.name) {
            let cali = p.host_if.as_deref().unwrap();
            assert_route(&r, p.ip4().unwrap(), &[&format!("dev {cali} scope link")]);
        }
    }
}

/// `brindle lab ping` (the CLI): every pair of pods reachable over each family the lab has.
fn lab_ping(lab: &TestLab, families: &[u8]) {
    let out = Command::new(BIN)
        .args(["lab", "ping", "--name", &lab.name])
        .env("BRINDLE_LAB_ROOT", lab.root.path())
        .output()
        .expect("run brindle lab ping");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "lab ping:\n{text}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let pods = lab.lab().state().pods.len();
    let pairs = pods * (pods - 1);
    for f in families {
        let tool = if *f == 6 { "ping6" } else { "ping" };
        assert!(text.contains(&format!("IPv{f} ({tool})")), "{text}");
    }
    assert_eq!(
        text.matches(&format!("{pairs} of {pairs} pairs reachable"))
            .count(),
        families.len(),
        "{text}"
    );
}

/// A UDP datagram from `pod` to the router's outside address `ext`: the router (which has no
/// route to any pool) must see it from the pod's node, never from the pod (NAT44 / NAT66).
fn assert_nat_seen_from_outside(lab: &TestLab, pod: &PodRecord, ext: IpAddr) {
    let l = lab.lab();
    let router = brindle_netlink::NetnsFd::named(&l.plan().router).unwrap();
    let listener = router
        .run(|| UdpSocket::bind(SocketAddr::new(ext, 0)))
        .unwrap()
        .expect("bind on the router's outside address");
    listener.set_read_timeout(Some(Duration::from_secs(1))).unwrap();
    let to = listener.local_addr().unwrap();
    let pod_ns = brindle_netlink::NetnsFd::named(&pod.netns).unwrap();
    let any: SocketAddr = if ext.is_ipv6() {
        "[::]:0".parse().unwrap()
    } else {
        "0.0.0.0:0".parse().unwrap()
    };
    let node = l.plan().node(&pod.node).unwrap();
    let want: IpAddr = if ext.is_ipv6() {
        node.addr6.addr().into()
    } else {
        node.addr.addr().into()
    };
    // A few tries: the first datagram may wait for neighbour discovery.
    for attempt in 0..5 {
        pod_ns
            .run(|| UdpSocket::bind(any).and_then(|s| s.send_to(b"nat?", to)))
            .unwrap()
            .unwrap_or_else(|e| panic!("send from {} to {to}: {e}", pod.name));
        let mut buf = [0u8; 16];
        match listener.recv_from(&mut buf) {
            Ok((n, from)) => {
                assert_eq!(&buf[..n], b"nat?");
                assert_eq!(
                    from.ip(),
                    want,
                    "{} → {ext}: seen from {from}, not from its node {want} (pod addresses {:?})",
                    pod.name,
                    pod.ips
                );
                return;
            }
            Err(e) if attempt < 4 => eprintln!("no datagram yet ({e}), again"),
            Err(e) => panic!("{} → {ext}: nothing arrived at the router: {e}", pod.name),
        }
    }
}

/// SIGKILL bgp-node2's agent and restart it under three ping6 streams (bgp-master1's pod to
/// bgp-node1's and bgp-node2's, bgp-node1's to bgp-node2's) and one IPv4 stream: none may lose
/// a packet.
fn kill_and_restart_under_ping6(lab: &TestLab) {
    let mut l = lab.lab();
    let pod = |node: &str| l.state().pods.iter().find(|p| p.node == node).unwrap().clone();
    let (p1, p2, p3) = (pod("bgp-master1"), pod("bgp-node1"), pod("bgp-node2"));
    let streams = [
        ("v6 1→2", ping_stream(&p1.netns, p2.ip6().unwrap(), 400)),
        ("v6 1→3", ping_stream(&p1.netns, p3.ip6().unwrap(), 400)),
        ("v6 2→3", ping_stream(&p2.netns, p3.ip6().unwrap(), 400)),
        ("v4 1→3", ping_stream(&p1.netns, p3.ip4().unwrap(), 400)),
    ];
    std::thread::sleep(Duration::from_millis(500));
    l.signal_agent("bgp-node2", libc::SIGKILL).unwrap();
    std::thread::sleep(Duration::from_millis(300));
    l.restart_agent("bgp-node2").unwrap();
    for (name, s) in streams {
        let (sent, recv) = s.join().unwrap();
        eprintln!("ping stream {name} across the agent's SIGKILL and restart: {sent} sent, {recv} received");
        assert_eq!(sent, 400, "{name}");
        assert_eq!(recv, sent, "{name}: packets lost across the agent restart");
    }
    wait_for(
        "the restarted agent's BGP convergence",
        Duration::from_secs(20),
        || lab.agent_log("bgp-node2").contains("BGP initial convergence"),
    );
    lab.lab().wait_converged(Duration::from_secs(30)).unwrap();
}

/// `lab status` of an IPv6 lab: the family in the title, every node with its IPv6 address and
/// all its IPv6 peers up, every pod with its IPv6 address.
/// `lab probe` in a dual-stack lab: one truth table per family, every pair reachable (no
/// policy); `--ip-family 6` probes IPv6 only.
fn assert_probe_both_families(lab: &TestLab) {
    let probe = |extra: &[&str]| {
        let out = Command::new(BIN)
            .args(["lab", "probe", "--name", &lab.name, "--ports", "80"])
            .args(extra)
            .env("BRINDLE_LAB_ROOT", lab.root.path())
            .output()
            .expect("run brindle lab probe");
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        assert!(
            out.status.success(),
            "{text}{}",
            String::from_utf8_lossy(&out.stderr)
        );
        text
    };
    let n = lab.lab().state().pods.len();
    let all = format!("{0} of {0} reachable", n * (n - 1));
    let text = probe(&[]);
    assert!(text.contains("IPv4 TCP/80 (rows: from"), "{text}");
    assert!(text.contains("IPv6 TCP/80 (rows: from"), "{text}");
    assert_eq!(text.matches(&all).count(), 2, "{text}");
    let text = probe(&["--ip-family", "6"]);
    assert!(text.starts_with("TCP/80 (rows: from"), "{text}");
    assert_eq!(text.matches(&all).count(), 1, "{text}");
}

fn assert_lab_status(lab: &TestLab, title: &str) {
    let out = Command::new(BIN)
        .args(["lab", "status", "--name", &lab.name])
        .env("BRINDLE_LAB_ROOT", lab.root.path())
        .output()
        .expect("run brindle lab status");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}");
    assert!(text.lines().next().unwrap().contains(title), "{text}");
    assert!(
        text.contains("IPV6 ADDRESS") && text.contains("V6 PEERS UP"),
        "{text}"
    );
    let l = lab.lab();
    let peers = format!("{0}/{0}", l.plan().nodes.len() - 1);
    for n in &l.plan().nodes {
        let line = text
            .lines()
            .find(|x| x.starts_with(&format!("{} ", n.name)))
            .unwrap_or_else(|| panic!("no {} in:\n{text}", n.name));
        assert!(line.contains(&n.addr6.to_string()), "{line}");
        assert!(line.contains(&peers), "{line}");
        assert!(line.ends_with("yes"), "{line}");
    }
    for p in &l.state().pods {
        assert!(text.contains(p.ip6().unwrap()), "{} missing:\n{text}", p.name);
    }
    // The same as JSON.
    let out = Command::new(BIN)
        .args(["lab", "status", "--name", &lab.name, "-o", "json"])
        .env("BRINDLE_LAB_ROOT", lab.root.path())
        .output()
        .expect("run brindle lab status -o json");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    let family = l.state().spec.ip_family;
    assert_eq!(v["ipFamily"], family.as_str());
    let others = l.plan().nodes.len() - 1;
    for (n, j) in l.plan().nodes.iter().zip(v["nodes"].as_array().unwrap()) {
        assert_eq!(j["name"], n.name.as_str());
        assert_eq!(j["ipv6Address"], n.addr6.to_string().as_str());
        assert_eq!(j["peersV6"]["established"], others, "{j}");
        assert_eq!(j["ready"], true, "{j}");
        if family.has_v4() {
            assert_eq!(j["ipv4Address"], n.addr.to_string().as_str());
            assert_eq!(j["peersV4"]["established"], others, "{j}");
        } else {
            assert!(j["ipv4Address"].is_null(), "{j}");
        }
    }
    for (p, j) in l.state().pods.iter().zip(v["pods"].as_array().unwrap()) {
        let ips: Vec<&str> = j["ips"]
            .as_array()
            .unwrap()
            .iter()
            .map(|x| x.as_str().unwrap())
            .collect();
        assert_eq!(ips, p.addresses(), "{j}");
        assert_eq!(ips.len(), if family.has_v4() { 2 } else { 1 }, "{j}");
    }
}

#[test]
fn dual_stack_ipip_lab() {
    let lab = TestLab::up("6d", &["--ip-family", "dual"]);
    let l = lab.lab();
    // Every pod has an IPv4 and an IPv6 address, in that order (Kubernetes' podIPs).
    for p in &l.state().pods {
        let (v4, v6) = (p.ip4().unwrap(), p.ip6().unwrap());
        assert_eq!(p.ips, [v4, v6], "{}", p.name);
        assert!(v4.starts_with("10.233."), "{v4}");
        assert!(
            POOL6_CIDR
                .parse::<ipnet::Ipv6Net>()
                .unwrap()
                .contains(&v6.parse::<std::net::Ipv6Addr>().unwrap())
        );
    }
    // Both pools, the IPv6 one never IPIP.
    let pools = lab.stdout("bgp-master1", &["brindle", "get", "ippool", "-o", "wide"]);
    let rows: Vec<Vec<&str>> = pools.lines().map(|l| l.split_whitespace().collect()).collect();
    assert!(
        rows.contains(&vec![
            "default-pool",
            "10.233.64.0/18",
            "true",
            "Always",
            "Never",
            "false",
            "all()"
        ]),
        "{pools}"
    );
    assert!(
        rows.contains(&vec![
            "default-ipv6-ippool",
            POOL6_CIDR,
            "true",
            "Never",
            "Never",
            "false",
            "all()"
        ]),
        "{pools}"
    );
    // The nodes' underlay: IPv6 next to IPv4, IPv6 forwarding on.
    for n in &l.plan().nodes {
        let a = lab.stdout(&n.name, &["ip", "-6", "addr", "show", "dev", "eth0"]);
        assert!(a.contains(&format!("inet6 {} scope global", n.addr6)), "{a}");
        assert_eq!(
            lab.stdout(&n.name, &["sysctl", "-n", "net.ipv6.conf.all.forwarding"])
                .trim(),
            "1"
        );
    }
    assert_mesh_established(&lab, true, true);
    assert_v4_ipip_routes(&lab);
    assert_v6_routes(&lab, false);
    lab_ping(&lab, &[4, 6]);
    assert_probe_both_families(&lab);
    let pod = l.state().pods[0].clone();
    assert_nat_seen_from_outside(&lab, &pod, EXTERNAL_ADDR6.into());
    assert_nat_seen_from_outside(&lab, &pod, EXTERNAL_ADDR.into());
    assert_lab_status(&lab, "dual stack");
    // `lab view` draws a dual-stack lab.
    let dir = brindle_testkit::TempDir::new("labview6");
    let file = dir.join("lab.html");
    lab.view_to(&file);
    // The page embeds the lab's state (drawn by its script): every node, every IPv6 block and
    // every pod's IPv6 address are in it.
    let html = std::fs::read_to_string(&file).unwrap();
    for n in NODES {
        assert!(html.contains(&format!("\"{n}\"")), "{n} not in the page");
    }
    for (_, blocks) in l.blocks6_by_node().unwrap() {
        for b in blocks {
            assert!(html.contains(&b.addr().to_string()), "block {b} not in the page");
        }
    }
    for p in &l.state().pods {
        let ip6 = p.ip6().unwrap();
        assert!(html.contains(&format!("\"{ip6}\"")), "{ip6} not in the page");
    }
    kill_and_restart_under_ping6(&lab);
    assert_mesh_established(&lab, true, true);
    lab_ping(&lab, &[4, 6]);
}

#[test]
fn ipv6_only_vxlan_always_lab() {
    let lab = TestLab::up("6o", &["--ip-family", "6", "--encap", "vxlan"]);
    let l = lab.lab();
    for n in &l.plan().nodes {
        // No IPv4 on the underlay: the node is IPv6 only (`IP=none`).
        assert_eq!(
            lab.stdout(&n.name, &["ip", "-4", "addr", "show", "dev", "eth0"]),
            ""
        );
    }
    for p in &l.state().pods {
        assert_eq!(p.ip4(), None, "{}", p.name);
        assert!(p.ip6().is_some(), "{}", p.name);
    }
    let pools = lab.stdout("bgp-master1", &["brindle", "get", "ippool", "-o", "wide"]);
    let rows: Vec<Vec<&str>> = pools
        .lines()
        .skip(1)
        .map(|l| l.split_whitespace().collect())
        .collect();
    assert_eq!(
        rows.into_iter().filter(|r| !r.is_empty()).collect::<Vec<_>>(),
        [vec![
            "default-ipv6-ippool",
            POOL6_CIDR,
            "true",
            "Never",
            "Always",
            "false",
            "all()"
        ]],
        "{pools}"
    );
    assert_mesh_established(&lab, false, true);
    assert_v6_routes(&lab, true);
    lab_ping(&lab, &[6]);
    let pod = l.state().pods.last().unwrap().clone();
    assert_nat_seen_from_outside(&lab, &pod, EXTERNAL_ADDR6.into());
    assert_lab_status(&lab, "IPv6 only");
}

#[test]
fn dual_stack_vxlan_cross_subnet_lab() {
    let lab = TestLab::up(
        "6x",
        &[
            "--ip-family",
            "dual",
            "--encap",
            "vxlan",
            "--cross-subnet",
            "--pods",
            "1",
        ],
    );
    let l = lab.lab();
    assert_mesh_established(&lab, true, true);
    // bgp-master1 and bgp-node2 share subnet A; bgp-node1 is behind the router on subnet B.
    let (b4, b6) = (l.blocks_by_node().unwrap(), l.blocks6_by_node().unwrap());
    let of4 = |n: &str| b4.iter().find(|(o, _)| o == n).unwrap().1.clone();
    let of6 = |n: &str| b6.iter().find(|(o, _)| o == n).unwrap().1.clone();
    let r4 = routes(&lab, "bgp-master1", 4);
    let r6 = routes(&lab, "bgp-master1", 6);
    let node2 = l.plan().node("bgp-node2").unwrap();
    for b in of4("bgp-node2") {
        assert_route(
            &r4,
            &b.to_string(),
            &[&format!("via {} dev eth0", node2.addr.addr())],
        );
    }
    for b in of6("bgp-node2") {
        assert_route(
            &r6,
            &b.to_string(),
            &[&format!("via {} dev eth0", node2.addr6.addr())],
        );
    }
    for b in of4("bgp-node1") {
        assert_route(&r4, &b.to_string(), &["dev vxlan.calico", "onlink"]);
    }
    for b in of6("bgp-node1") {
        assert_route(
            &r6,
            &b.to_string(),
            &["via fd00:10:233:", "dev vxlan-v6.calico", "onlink"],
        );
    }
    assert!(!r6.iter().any(|r| r.contains("tunl0")), "{}", r6.join("\n"));
    lab_ping(&lab, &[4, 6]);
}

/// Options an IPv6 lab refuses, each naming the flag and why, with nothing made.
#[test]
fn ip_family_options_are_checked_before_anything_is_made() {
    brindle_testkit::require::root();
    let root = brindle_testkit::TempDir::new("labs");
    for (args, needle) in [
        (vec!["--ip-family", "5"], "--ip-family 5: expected 4, 6 or dual"),
        (
            vec!["--ip-family", "6", "--encap", "ipip"],
            "--ip-family 6 --encap ipip: IPIP carries IPv4 only (Calico has no IPIP for IPv6 pools)",
        ),
        (
            vec!["--ip-family", "dual", "--cross-subnet"],
            "--cross-subnet --ip-family dual needs --encap vxlan",
        ),
    ] {
        let name = brindle_testkit::names::unique("6v");
        let out = Command::new(BIN)
            .args(["lab", "up", "--name", &name])
            .args(&args)
            .env("BRINDLE_LAB_ROOT", root.path())
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{args:?} accepted");
        assert!(err.contains(needle), "{args:?}: {err}");
        assert!(!root.path().join(&name).exists(), "{args:?} left a lab directory");
        assert!(
            !std::path::Path::new("/run/netns")
                .join(format!("{name}-fabric"))
                .exists()
        );
    }
}
