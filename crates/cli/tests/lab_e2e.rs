//! End to end: `brindle lab up` builds the seed's cluster (agents, BGP mesh, pods through the
//! CNI plugin) and it behaves like the seed: `node status`, `ip route`, `get ippool -o wide`,
//! every pod reaching every pod; the same with VXLAN, without encapsulation, across subnets and
//! on etcd; pods and nodes coming and going; an agent killed with SIGKILL and restarted without
//! losing a packet. Every lab has a unique name and is torn down by a guard, also on failure.

mod lab_support;

use std::process::Command;
use std::time::Duration;

use lab_support::{BIN, TestLab, is_time, ping_stream, wait_for};

/// The seed's `node status` with the two other nodes, checked line by line (SINCE varies).
fn assert_seed_node_status(out: &str) {
    let lines: Vec<&str> = out.split('\n').collect();
    let expected_fixed = [
        (0, "Calico process is running."),
        (1, ""),
        (2, "IPv4 BGP status"),
        (
            3,
            "+--------------+-------------------+-------+----------+-------------+",
        ),
        (
            4,
            "| PEER ADDRESS |     PEER TYPE     | STATE |  SINCE   |    INFO     |",
        ),
        (
            5,
            "+--------------+-------------------+-------+----------+-------------+",
        ),
        (
            8,
            "+--------------+-------------------+-------+----------+-------------+",
        ),
        (9, ""),
        (10, "IPv6 BGP status"),
        (11, "No IPv6 peers found."),
        (12, ""),
        (13, ""),
    ];
    assert_eq!(lines.len(), 14, "node status:\n{out}");
    for (i, l) in expected_fixed {
        assert_eq!(lines[i], l, "line {i} of node status:\n{out}");
    }
    for (i, peer) in [(6, "172.20.42.81"), (7, "172.20.42.82")] {
        let cells: Vec<&str> = lines[i].split('|').map(str::trim).collect();
        assert_eq!(cells[1], peer, "{out}");
        assert_eq!(cells[2], "node-to-node mesh");
        assert_eq!(cells[3], "up");
        assert!(is_time(cells[4]), "SINCE {:?}", cells[4]);
        assert_eq!(cells[5], "Established");
        assert_eq!(lines[i].len(), lines[3].len());
    }
}

#[test]
fn seed_cluster_ipip_always() {
    let lab = TestLab::up("es", &[]);
    assert_seed_node_status(&lab.stdout("bgp-master1", &["brindle", "node", "status"]));
    assert_eq!(
        lab.stdout("bgp-master1", &["brindle", "get", "ippool", "-o", "wide"]),
        "NAME           CIDR             NAT    IPIPMODE   VXLANMODE   DISABLED   SELECTOR   \n\
         default-pool   10.233.64.0/18   true   Always     Never       false      all()      \n\n"
    );
    let l = lab.lab();
    let pods: Vec<_> = l.state().pods.clone();
    let routes = lab.stdout("bgp-master1", &["ip", "route"]);
    // The article's lines, block for block: the lab's node names start their block search where
    // the article's nodes did (Go's math/rand seeded by the name's FNV-32, as Calico does), tunl0
    // takes .0 and the two pods .1 and .2. Only the cali names (a hash of each pod) differ.
    for want in [
        "10.233.87.0/24 via 172.20.42.81 dev tunl0 proto bird onlink",
        "10.233.124.0/24 via 172.20.42.82 dev tunl0 proto bird onlink",
        "blackhole 10.233.94.0/24 proto bird",
    ] {
        assert!(
            routes.lines().any(|r| r.trim_end() == want),
            "missing `{want}` in:\n{routes}"
        );
    }
    for ip in ["10.233.94.1", "10.233.94.2"] {
        assert!(
            routes.lines().any(|r| {
                let w: Vec<&str> = r.split_whitespace().collect();
                w.len() == 5
                    && w[0] == ip
                    && w[1] == "dev"
                    && w[2].starts_with("cali")
                    && w[3..] == ["scope", "link"]
            }),
            "missing `{ip} dev cali… scope link` in:\n{routes}"
        );
    }
    let blocks = l.blocks_by_node().unwrap();
    for (node, set) in &blocks {
        let ip = &l.plan().node(node).unwrap().addr.addr().to_string();
        for b in set {
            let want = if node == "bgp-master1" {
                format!("blackhole {b} proto bird")
            } else {
                format!("{b} via {ip} dev tunl0 proto bird onlink")
            };
            assert!(
                routes.lines().any(|r| r.trim_end() == want),
                "missing `{want}` in:\n{routes}"
            );
        }
    }
    for p in pods.iter().filter(|p| p.node == "bgp-master1") {
        let want = format!(
            "{} dev {} scope link",
            p.ip.as_ref().unwrap(),
            p.host_if.as_ref().unwrap()
        );
        assert!(p.host_if.as_ref().unwrap().starts_with("cali"));
        assert!(
            routes.lines().any(|r| r.trim_end() == want),
            "missing `{want}` in:\n{routes}"
        );
    }
    lab.ping_all();
    // A block route deleted behind the agent's back comes back at once (kernel monitor).
    let victim = routes
        .lines()
        .find(|r| r.contains("dev tunl0 proto bird onlink"))
        .expect("a remote block route")
        .trim_end()
        .to_string();
    let dst = victim.split_whitespace().next().unwrap().to_string();
    let ns = l.plan().node("bgp-master1").unwrap().netns.clone();
    let kernel = |kind: &str| -> u64 {
        let m = lab.stdout("bgp-master1", &["curl", "-sf", "http://127.0.0.1:9091/metrics"]);
        let line = format!("brindle_kernel_notifications_total{{kind=\"{kind}\"}} ");
        m.lines()
            .find_map(|l| l.strip_prefix(line.as_str()))
            .unwrap_or_else(|| panic!("no {line} in:\n{m}"))
            .parse()
            .unwrap()
    };
    let (echoes, repairs) = (kernel("echo"), kernel("repair"));
    let del = Command::new("ip")
        .args(["-n", &ns, "route", "del", &dst])
        .status()
        .unwrap();
    assert!(del.success());
    wait_for("the deleted route to be repaired", Duration::from_secs(5), || {
        lab.stdout("bgp-master1", &["ip", "route"])
            .lines()
            .any(|r| r.trim_end() == victim)
    });
    // The deletion was judged a change to repair, and the repair's own write an echo.
    wait_for(
        "the repair's echo to be recognised",
        Duration::from_secs(5),
        || kernel("echo") > echoes,
    );
    assert!(kernel("repair") > repairs);
    // NAT outgoing: a pod reaches the "internet" behind the router, which has no pod routes.
    let out = lab.exec(&pods[0].name, &["ping", "-c", "1", "-W", "2", "192.0.2.1"]);
    assert!(out.status.success(), "pod → 192.0.2.1 (NAT outgoing) failed");
    // Prometheus metrics (Felix's, kube-controllers' IPAM and the BIRD exporter's names) from
    // inside the node, on Felix's metrics port.
    let m = lab.stdout("bgp-master1", &["curl", "-sf", "http://127.0.0.1:9091/metrics"]);
    check_seed_metrics(&m);
    assert_eq!(
        lab.stdout("bgp-master1", &["curl", "-sf", "http://127.0.0.1:9099/readiness"]),
        "ready\n"
    );
    // Every agent runs the IPAM garbage collector; exactly one holds its lease (the lease is
    // taken within a few seconds of the first agent starting, long before convergence).
    let leaders: usize = ["bgp-master1", "bgp-node1", "bgp-node2"]
        .iter()
        .map(|n| {
            let m = lab.stdout(n, &["curl", "-sf", "http://127.0.0.1:9091/metrics"]);
            // Untyped: a counter under kube-controllers' name, without `_total`.
            assert!(
                m.contains("# TYPE ipam_allocations_gc_reclamations untyped"),
                "{m}"
            );
            usize::from(m.lines().any(|l| l == "brindle_ipam_gc_leader 1"))
        })
        .sum();
    assert_eq!(leaders, 1, "IPAM GC leaders among the agents");
    check_lab_view(&lab, &pods);
    check_node_diags(&lab);
    check_node_view(&lab, &pods);
}

/// `brindle node diags` on bgp-master1: a tarball under the temporary directory holding every
/// collector's file (the seed's blackhole route, Brindle's nftables table, the agent's metrics,
/// the node's datastore resources, its logs), with a CNI token and an etcd password redacted.
fn check_node_diags(lab: &TestLab) {
    let tmp = brindle_testkit::TempDir::new("diags");
    let l = lab.lab();
    let node_dir = l.dir().node_dir("bgp-master1");
    let cni_dir = tmp.join("net.d");
    std::fs::create_dir(&cni_dir).unwrap();
    std::fs::write(
        cni_dir.join("10-brindle.conflist"),
        format!(
            "{{\n  \"cniVersion\": \"0.3.1\",\n  \"name\": \"k8s-pod-network\",\n  \"plugins\": [\n    {{\n      \"type\": \"brindle\",\n      \"log_file_path\": \"{}\",\n      \"policy\": {{\n        \"type\": \"k8s\",\n        \"k8s_auth_token\": \"cni-token-s3cr3t\"\n      }}\n    }}\n  ]\n}}\n",
            l.dir().cni_log().display()
        ),
    )
    .unwrap();
    let out_dir = tmp.join("out");
    std::fs::create_dir(&out_dir).unwrap();
    let out = lab.stdout(
        "bgp-master1",
        &[
            "env",
            &format!("TMPDIR={}", out_dir.display()),
            "ETCD_PASSWORD=etcd-pass-s3cr3t",
            "brindle",
            "node",
            "diags",
            "--log-dir",
            node_dir.to_str().unwrap(),
            "--cni-net-dir",
            cni_dir.to_str().unwrap(),
        ],
    );
    assert!(
        out.starts_with("Collecting diagnostics\nUsing temp dir: "),
        "{out}"
    );
    let tarball = out
        .lines()
        .find_map(|l| l.strip_prefix("Diags saved to "))
        .unwrap_or_else(|| panic!("no tarball named in:\n{out}"));
    assert!(
        tarball.starts_with(out_dir.to_str().unwrap()) && tarball.ends_with(".tar.gz"),
        "{tarball}"
    );
    let list = Command::new("tar").args(["-tzf", tarball]).output().unwrap();
    assert!(list.status.success());
    let list = String::from_utf8_lossy(&list.stdout).into_owned();
    let top = list.lines().next().unwrap().trim_end_matches('/').to_string();
    assert!(top.starts_with("diags-"), "{list}");
    for f in [
        "SUMMARY.txt",
        "status/node-status.txt",
        "status/node-status.json",
        "network/ip-addr-v4.txt",
        "network/ip-addr-v6.txt",
        "network/ip-link.txt",
        "network/ip-route-v4.txt",
        "network/ip-route-v6.txt",
        "network/ip-rule-v4.txt",
        "network/ip-rule-v6.txt",
        "network/ip-neigh.txt",
        "network/tunl0/link.txt",
        "nftables/brindle.nft",
        "nftables/brindle-reader.txt",
        "sysctl.txt",
        "agent/metrics.txt",
        "agent/readiness.txt",
        "datastore/node.yaml",
        "datastore/workloadendpoints.yaml",
        "datastore/blocks.yaml",
        "datastore/ippools.yaml",
        "datastore/bgpconfigurations.yaml",
        "datastore/bgppeers.yaml",
        "logs/agent.log",
        "logs/cni-plugin/0-cni.log",
        "config/env.txt",
        "config/agent-env.txt",
        "config/cni-net.d/10-brindle.conflist",
        "config/calicoctl.cfg",
    ] {
        assert!(
            list.lines().any(|l| l == format!("{top}/{f}")),
            "{f} missing from the bundle:\n{list}"
        );
    }
    // Nothing failed on a healthy node: no error file.
    assert!(!list.contains(".error"), "{list}");
    let x = tmp.untar(tarball, "x");
    let read = |f: &str| std::fs::read_to_string(x.join(&top).join(f)).unwrap_or_else(|e| panic!("{f}: {e}"));
    assert_eq!(read("SUMMARY.txt"), "every collector succeeded\n");
    assert!(read("status/node-status.txt").starts_with("Calico process is running.\n"));
    let routes = read("network/ip-route-v4.txt");
    assert!(
        routes
            .lines()
            .any(|r| r.trim_end() == "blackhole 10.233.94.0/24 proto bird"),
        "{routes}"
    );
    assert!(read("nftables/brindle.nft").contains("table ip brindle {"));
    assert!(read("nftables/brindle-reader.txt").contains("table ip brindle {"));
    let sysctl = read("sysctl.txt");
    assert!(sysctl.contains("net.ipv4.ip_forward = 1\n"), "{sysctl}");
    assert!(sysctl.contains("net.ipv4.conf.tunl0.rp_filter = "), "{sysctl}");
    assert!(read("agent/metrics.txt").contains("felix_active_local_endpoints 2\n"));
    assert!(read("agent/readiness.txt").ends_with("ready\n"));
    let node = read("datastore/node.yaml");
    assert!(
        node.contains("kind: NodeList") && node.contains("name: bgp-master1"),
        "{node}"
    );
    assert!(!node.contains("bgp-node1"), "{node}");
    assert!(read("datastore/blocks.yaml").contains("10.233.94.0/24"));
    assert!(read("datastore/ippools.yaml").contains("10.233.64.0/18"));
    assert!(read("logs/agent.log").contains("brindle node starting"));
    let conf = read("config/cni-net.d/10-brindle.conflist");
    assert!(conf.contains("\"k8s_auth_token\": \"<redacted>\""), "{conf}");
    assert!(read("config/env.txt").contains("ETCD_PASSWORD=<redacted>\n"));
    assert!(read("config/calicoctl.cfg").contains("kind: CalicoAPIConfig"));
    // No secret anywhere in the bundle.
    let grep = Command::new("grep")
        .args(["-r", "-l", "s3cr3t"])
        .arg(&x)
        .output()
        .unwrap();
    assert!(
        grep.stdout.is_empty(),
        "secrets left in: {}",
        String::from_utf8_lossy(&grep.stdout)
    );
}

/// `brindle node view` on bgp-master1 (datastore + its own agent), drawn by headless
/// Chromium: the three nodes with their blocks and pods, this node's two sessions up, the
/// others' agents not asked. Screenshot: `target/tmp/lab_view/node.png`.
fn check_node_view(lab: &TestLab, pods: &[brindle_lab::state::PodRecord]) {
    let dir = brindle_testkit::TempDir::new("nodeview");
    let file = dir.join("node.html");
    let out = lab.stdout(
        "bgp-master1",
        &["brindle", "node", "view", "-o", file.to_str().unwrap()],
    );
    assert!(
        out.starts_with(&format!(
            "{}: node bgp-master1 (3 nodes, 2 sessions",
            file.display()
        )),
        "{out}"
    );
    let shots = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("lab_view");
    std::fs::create_dir_all(&shots).unwrap();
    let dom = brindle_testkit::chromium::dom_and_screenshot(
        &format!("file://{}", file.display()),
        &shots.join("node.png"),
    );
    let has = |needle: &str| assert!(dom.contains(needle), "missing {needle:?} in:\n{dom}");
    let count = |needle: &str| dom.matches(needle).count();
    has("Brindle: node bgp-master1");
    has("3 nodes, 2 of 2 session ends up, 3 blocks, 6 pods");
    assert_eq!(count("<g class=\"node ready\""), 1, "ready nodes:\n{dom}");
    assert_eq!(count("class=\"session up\""), 2, "session lines:\n{dom}");
    let l = lab.lab();
    for n in &l.plan().nodes {
        has(&format!("<article class=\"card\" data-node=\"{}\"", n.name));
    }
    // The other two nodes: drawn, their agents not asked (the page's script holds the words too).
    assert_eq!(count("/22 · agent not asked"), 2, "{dom}");
    for (node, blocks) in l.blocks_by_node().unwrap() {
        for b in blocks {
            assert_eq!(count(&format!("data-cidr=\"{b}\"")), 2, "{node}'s {b}:\n{dom}");
        }
    }
    for p in pods {
        let ip = p.ip.as_deref().expect("pod address");
        assert_eq!(count(&format!("data-ip=\"{ip}\"")), 2, "{}:\n{dom}", p.name);
    }
}

/// `brindle lab view -o FILE` on the live seed lab, drawn by headless Chromium: every node
/// with its agent ready, both ends of the three mesh sessions up, one block per node, every
/// pod where the lab put it. The screenshot stays in `target/tmp/lab_view/seed.png`.
fn check_lab_view(lab: &TestLab, pods: &[brindle_lab::state::PodRecord]) {
    let dir = brindle_testkit::TempDir::new("labview");
    let file = dir.join("lab.html");
    lab.view_to(&file);
    let shots = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("lab_view");
    std::fs::create_dir_all(&shots).unwrap();
    let url = format!("file://{}", file.display());
    let dom = brindle_testkit::chromium::dom_and_screenshot(&url, &shots.join("seed.png"));
    let has = |needle: &str| assert!(dom.contains(needle), "missing {needle:?} in:\n{dom}");
    let count = |needle: &str| dom.matches(needle).count();
    has(&format!("Brindle: lab {}", lab.name));
    has(">snapshot<");
    has("3 nodes, 6 of 6 session ends up, 3 blocks, 6 pods");
    assert_eq!(count("<g class=\"node ready\""), 3, "ready nodes:\n{dom}");
    assert_eq!(count("class=\"session up\""), 6, "session lines:\n{dom}");
    assert_eq!(count("class=\"session down\""), 0, "{dom}");
    let l = lab.lab();
    for n in &l.plan().nodes {
        has(&format!("<article class=\"card\" data-node=\"{}\"", n.name));
        // Both ends of each session towards this node.
        let peer = format!(
            "data-peer=\"{}\" data-peer-node=\"{}\" data-state=\"up\"",
            n.addr.addr(),
            n.name
        );
        assert_eq!(count(&peer), 2, "sessions towards {}:\n{dom}", n.name);
    }
    for (node, blocks) in l.blocks_by_node().unwrap() {
        for b in blocks {
            // Drawn in the topology and listed in the node's card.
            assert_eq!(count(&format!("data-cidr=\"{b}\"")), 2, "{node}'s {b}:\n{dom}");
        }
    }
    for p in pods {
        let ip = p.ip.as_deref().expect("pod address");
        assert_eq!(count(&format!("data-ip=\"{ip}\"")), 2, "{}:\n{dom}", p.name);
    }
}

/// Every series family `/metrics` promises, with its labels, on the seed lab's first node once
/// its two pods and both mesh sessions exist.
fn check_seed_metrics(m: &str) {
    let has = |line: &str| assert!(m.lines().any(|l| l == line), "missing `{line}` in:\n{m}");
    let family = |name: &str| {
        assert!(
            m.lines().any(|l| l.starts_with(name) && !l.starts_with('#')),
            "no `{name}` series in:\n{m}"
        )
    };
    has("felix_active_local_endpoints 2");
    has("felix_cluster_num_hosts 3");
    for name in [
        "felix_cluster_num_workload_endpoints ",
        "felix_resync_state ",
        "felix_resyncs_started ",
        "felix_int_dataplane_failures ",
        "felix_int_dataplane_apply_time_seconds_count ",
        "felix_calc_graph_update_time_seconds_count ",
        "felix_route_table_list_seconds_count ",
        "felix_nft_calls ",
        "felix_nftables_lines_executed{ip_version=\"4\",table=\"brindle\"} ",
        "felix_nft_chains{ip_version=\"4\",table=\"brindle\"} ",
        "felix_nft_rules{ip_version=\"4\",table=\"brindle\"} ",
        "felix_ipsets_calico{ip_version=\"4\"} ",
        "felix_ipsets_total ",
        // The seed lab's tunl0 is Brindle's BPF one on a kernel without ipip.
        "brindle_bpf_ipip_packets_total{program=\"encap\",result=\"forwarded\"} ",
        "brindle_bpf_ipip_packets_total{program=\"decap\",result=\"denied\"} ",
        "brindle_ipam_gc_leader ",
        "brindle_ipam_gc_passes_total ",
        "ipam_allocations_in_use{ippool=\"default-pool\",node=\"bgp-master1\"} ",
        "ipam_blocks{ippool=\"default-pool\",node=\"bgp-master1\"} ",
        "ipam_allocations_borrowed{",
        "ipam_allocations_gc_candidates{",
        "ipam_allocations_gc_reclamations{",
        "process_cpu_seconds_total ",
        "process_resident_memory_bytes ",
        "process_open_fds ",
        "process_start_time_seconds ",
        "brindle_build_info{",
    ] {
        family(name);
    }
    has("ipam_ippool_size{ippool=\"default-pool\"} 16384");
    for ip in ["172.20.42.81", "172.20.42.82"] {
        let peer = format!(
            "name=\"Mesh_{}\",proto=\"BGP\",ip_version=\"4\",peer_ip=\"{ip}\",peer_type=\"NodeMesh\"",
            ip.replace('.', "_")
        );
        has(&format!("bird_protocol_up{{{peer}}} 1"));
        has(&format!("bird_protocol_prefix_import_count{{{peer}}} 1"));
        has(&format!(
            "brindle_bgp_session_state{{{peer},state=\"Established\"}} 1"
        ));
        for name in [
            "bird_protocol_uptime",
            "bird_protocol_prefix_export_count",
            "bird_protocol_prefix_filter_count",
            "brindle_bgp_session_flaps_total",
        ] {
            family(&format!("{name}{{{peer}}} "));
        }
    }
    // The plugin reported its two ADDs on this node (the lab made them as a runtime does).
    has("brindle_cni_call_seconds_count{plugin=\"brindle\",command=\"ADD\",result=\"ok\"} 2");
}

#[test]
fn the_lab_ignores_the_callers_datastore_settings() {
    // A shell pointed at a real cluster: a calicoctl.cfg naming an etcd (nothing listens on
    // port 1), Brindle's and Calico's datastore variables.
    let hostile = brindle_testkit::TempDir::new("hostile");
    let cfg = hostile.join("calicoctl.cfg");
    std::fs::write(
        &cfg,
        "apiVersion: projectcalico.org/v3\nkind: CalicoAPIConfig\nmetadata: {}\nspec:\n  \
         datastoreType: etcdv3\n  etcdEndpoints: http://127.0.0.1:1\n",
    )
    .unwrap();
    let db = hostile.join("hostile.db");
    let env = [
        ("BRINDLE_CONFIG", cfg.display().to_string()),
        ("BRINDLE_DATASTORE_TYPE", "sqlite".to_string()),
        ("BRINDLE_DATASTORE_PATH", db.display().to_string()),
        ("DATASTORE_TYPE", "etcdv3".to_string()),
        ("ETCD_ENDPOINTS", "http://127.0.0.1:1".to_string()),
    ];
    let lab = TestLab::up_env("eh", &[], &env);
    let exec = |argv: &[&str]| {
        Command::new(BIN)
            .args(["lab", "exec", "--name", &lab.name, "bgp-master1", "--"])
            .args(argv)
            .envs(env.iter().map(|(k, v)| (k, v)))
            .env("BRINDLE_LAB_ROOT", lab.root.path())
            .output()
            .unwrap()
    };
    wait_for(
        "bgp-master1 ready on the lab's datastore",
        Duration::from_secs(20),
        || {
            let o = exec(&["curl", "-sf", "http://127.0.0.1:9099/readiness"]);
            o.status.success() && o.stdout == b"ready\n"
        },
    );
    let o = exec(&["brindle", "get", "nodes"]);
    let nodes = String::from_utf8_lossy(&o.stdout);
    assert!(
        o.status.success(),
        "get nodes: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    for n in ["bgp-master1", "bgp-node1", "bgp-node2"] {
        assert!(nodes.contains(n), "{n} missing from the lab's store:\n{nodes}");
    }
    assert!(!db.exists(), "a lab process opened the caller's {}", db.display());
}

#[test]
fn new_pod_reachable_and_deleted_node_routes_vanish() {
    let lab = TestLab::up("en", &[]);
    let mut l = lab.lab();
    let pod = l.add_pod("bgp-node2").unwrap();
    let ip = pod.ip.clone().unwrap();
    let from = l
        .state()
        .pods
        .iter()
        .find(|p| p.node == "bgp-master1")
        .unwrap()
        .netns
        .clone();
    wait_for(
        "the new pod on node 3 to answer node 1's pod",
        Duration::from_secs(10),
        || brindle_lab::ping::ping(&from, &ip).unwrap(),
    );
    // Node 2 leaves: its agent stops, its Node is deleted; its routes go everywhere.
    let before = lab.stdout("bgp-node1", &["ip", "route"]);
    l.signal_agent("bgp-node1", libc::SIGTERM).unwrap();
    // A clean shutdown leaves the kernel's routes for the next agent to adopt.
    assert_eq!(lab.stdout("bgp-node1", &["ip", "route"]), before);
    assert!(before.contains("proto bird"), "{before}");
    let out = lab.exec("bgp-master1", &["brindle", "delete", "node", "bgp-node1"]);
    assert!(
        out.status.success(),
        "delete node: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    for n in ["bgp-master1", "bgp-node2"] {
        wait_for(
            &format!("{n} to drop bgp-node1's routes"),
            Duration::from_secs(10),
            || !lab.stdout(n, &["ip", "route"]).contains("via 172.20.42.81"),
        );
        wait_for(
            &format!("{n} to drop the session to bgp-node1"),
            Duration::from_secs(10),
            || {
                !lab.stdout(n, &["brindle", "node", "status"])
                    .contains("172.20.42.81")
            },
        );
    }
}

#[test]
fn vxlan_cluster() {
    let lab = TestLab::up("ev", &["--encap", "vxlan"]);
    let routes = lab.stdout("bgp-master1", &["ip", "route"]);
    assert!(routes.contains("dev vxlan.calico proto 80 onlink"), "{routes}");
    assert_eq!(
        lab.stdout("bgp-master1", &["brindle", "get", "ippool", "-o", "wide"])
            .lines()
            .nth(1)
            .unwrap(),
        "default-pool   10.233.64.0/18   true   Never      Always      false      all()      "
    );
    lab.ping_all();
}

#[test]
fn cluster_without_encapsulation() {
    let lab = TestLab::up("e0", &["--encap", "none"]);
    let routes = lab.stdout("bgp-master1", &["ip", "route"]);
    assert!(
        routes.contains("via 172.20.42.81 dev eth0 proto bird"),
        "{routes}"
    );
    assert!(!routes.contains("tunl0"), "{routes}");
    lab.ping_all();
}

#[test]
fn cross_subnet_cluster() {
    let lab = TestLab::up("ex", &["--cross-subnet"]);
    let routes = lab.stdout("bgp-master1", &["ip", "route"]);
    // bgp-node2 shares node 1's subnet: plain route; bgp-node1 is behind the router: IPIP.
    assert!(
        routes.contains("via 172.20.42.82 dev eth0 proto bird"),
        "{routes}"
    );
    assert!(
        routes.contains("via 172.20.46.81 dev tunl0 proto bird onlink"),
        "{routes}"
    );
    lab.ping_all();
}

#[test]
fn etcd_cluster() {
    let lab = TestLab::up("ee", &["--datastore", "etcd"]);
    assert_seed_node_status(&lab.stdout("bgp-master1", &["brindle", "node", "status"]));
    lab.ping_all();
}

#[test]
fn node_status_without_an_agent_says_so_like_calicoctl() {
    brindle_testkit::require::root();
    let out = Command::new(BIN)
        .args(["node", "status"])
        .env("BRINDLE_CTL_SOCKET", "/nonexistent/brindle.ctl")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(String::from_utf8_lossy(&out.stdout), "");
    assert_eq!(
        String::from_utf8_lossy(&out.stderr),
        "Calico process is not running.\n"
    );
}

/// Kills bgp-node2's agent with SIGKILL and restarts it under three ping streams (between pods
/// of the two other nodes, and towards its own pod): none may lose a packet.
fn kill_and_restart_under_pings(lab: &TestLab) {
    under_pings(lab, "the agent restart", |l| {
        l.signal_agent("bgp-node2", libc::SIGKILL).unwrap();
        std::thread::sleep(Duration::from_millis(300));
        l.restart_agent("bgp-node2").unwrap();
    });
    // The restarted agent found the kernel state and restarted gracefully, and is back in the
    // mesh.
    let log = lab.agent_log("bgp-node2");
    assert!(log.contains("graceful restart"), "{log}");
    wait_for(
        "the restarted agent's BGP convergence",
        Duration::from_secs(20),
        || lab.agent_log("bgp-node2").contains("BGP initial convergence"),
    );
    let l2 = lab.lab();
    l2.wait_converged(Duration::from_secs(20)).unwrap();
    lab.ping_all();
}

/// Runs `action` 0.5 s into three streams of 400 pings (10 ms apart) between pods: bgp-master1's
/// to bgp-node1's and bgp-node2's, bgp-node1's to bgp-node2's. None may lose a packet.
fn under_pings(lab: &TestLab, what: &str, action: impl FnOnce(&mut brindle_lab::Lab)) {
    let mut l = lab.lab();
    let pod = |node: &str| l.state().pods.iter().find(|p| p.node == node).unwrap().clone();
    let (p1, p2, p3) = (pod("bgp-master1"), pod("bgp-node1"), pod("bgp-node2"));
    let s12 = ping_stream(&p1.netns, p2.ip.as_ref().unwrap(), 400);
    let s13 = ping_stream(&p1.netns, p3.ip.as_ref().unwrap(), 400);
    let s23 = ping_stream(&p2.netns, p3.ip.as_ref().unwrap(), 400);
    std::thread::sleep(Duration::from_millis(500));
    action(&mut l);
    let results = [
        ("1→2", s12.join().unwrap()),
        ("1→3", s13.join().unwrap()),
        ("2→3", s23.join().unwrap()),
    ];
    for (stream, (sent, recv)) in results {
        eprintln!(
            "ping stream {stream} across {what}: {sent} sent, {recv} received, {} lost",
            sent - recv
        );
        assert_eq!(sent, 400, "{stream}");
        assert_eq!(recv, sent, "{stream}: packets lost across {what}");
    }
}

#[test]
fn agent_killed_and_restarted_loses_no_packet() {
    let lab = TestLab::up("ek", &[]);
    kill_and_restart_under_pings(&lab);
}

/// The same with routes to other nodes' blocks from BGP only (FelixConfiguration
/// `programClusterRoutes: Disabled`, BIRD's way up to Calico v3.32): the other nodes keep the
/// killed node's routes through graceful restart (RFC 4724), and the restarted agent removes no
/// kernel route before its sessions' End-of-RIB.
#[test]
fn agent_killed_and_restarted_loses_no_packet_with_routes_from_bgp_only() {
    let lab = TestLab::up("eg", &[]);
    lab.apply(
        "bgp-master1",
        "apiVersion: projectcalico.org/v3\nkind: FelixConfiguration\nmetadata:\n  name: default\nspec:\n  programClusterRoutes: Disabled\n",
    );
    for n in ["bgp-master1", "bgp-node1", "bgp-node2"] {
        wait_for(
            &format!("{n} to take routes from BGP only"),
            Duration::from_secs(10),
            || lab.agent_log(n).contains("from BGP only"),
        );
    }
    kill_and_restart_under_pings(&lab);
    // A new pool changes every speaker's export pools, which each takes in place.
    under_pings(&lab, "a new pool", |_| {
        lab.apply(
            "bgp-master1",
            "apiVersion: projectcalico.org/v3\nkind: IPPool\nmetadata:\n  name: second-pool\nspec:\n  cidr: 10.99.0.0/24\n  ipipMode: Always\n  natOutgoing: true\n",
        );
        for n in ["bgp-master1", "bgp-node1", "bgp-node2"] {
            wait_for(
                &format!("{n}'s speaker to take the pool in place"),
                Duration::from_secs(10),
                || lab.agent_log(n).contains("export policy changed in place"),
            );
        }
    });
    // A new listen port for every node is what a speaker cannot take live: the whole mesh
    // restarts at once, each speaker gracefully (same router id and AS), and peers keep each
    // other's routes meanwhile.
    under_pings(&lab, "a new listen port everywhere", |_| {
        lab.apply(
            "bgp-master1",
            "apiVersion: projectcalico.org/v3\nkind: BGPConfiguration\nmetadata:\n  name: default\nspec:\n  listenPort: 1790\n",
        );
        for n in ["bgp-master1", "bgp-node1", "bgp-node2"] {
            wait_for(
                &format!("{n}'s speaker to restart gracefully"),
                Duration::from_secs(10),
                || lab.agent_log(n).contains("restarting the speaker gracefully"),
            );
        }
    });
    lab.lab()
        .wait_converged(Duration::from_secs(30))
        .expect("the mesh back on port 1790");
    // Felix's routing keys come from FelixConfiguration too, applied in place: the tunnel MTU.
    lab.apply(
        "bgp-master1",
        "apiVersion: projectcalico.org/v3\nkind: FelixConfiguration\nmetadata:\n  name: default\nspec:\n  programClusterRoutes: Disabled\n  ipipMTU: 1400\n",
    );
    for n in ["bgp-master1", "bgp-node1", "bgp-node2"] {
        wait_for(
            &format!("{n}'s tunl0 at MTU 1400"),
            Duration::from_secs(10),
            || {
                lab.stdout(n, &["ip", "-o", "link", "show", "tunl0"])
                    .contains(" mtu 1400 ")
            },
        );
    }
    lab.ping_all();
}

#[test]
fn exec_of_an_unknown_target_says_what_exists_and_a_taken_ip_is_refused() {
    let lab = TestLab::up("eu", &["--pods", "0", "--nodes", "2"]);
    // A second agent claiming bgp-master1's address under another name must not start.
    let state = lab.root.path().join(&lab.name).join("intruder");
    let out = lab.exec(
        "bgp-node1",
        &[
            "env",
            "NODENAME=intruder",
            "IP=172.20.42.80/22",
            &format!("BRINDLE_STATE_DIR={}", state.display()),
            &format!("BRINDLE_CTL_SOCKET={}", state.join("ctl").display()),
            "brindle",
            "node",
            "run",
        ],
    );
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("Calico node 'bgp-master1' is already using the IPv4 address 172.20.42.80"),
        "{err}"
    );
    let out = lab.exec("nosuchnode", &["true"]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("no node or pod named nosuchnode") && err.contains("bgp-master1"),
        "{err}"
    );
}
