//! Network policy through a real agent: datastore write → rules in the kernel. One node
//! namespace, a SQLite datastore, `brindle node run`; 1000 WorkloadEndpoints (20 namespaces
//! × 10 pods × 5 nodes, as the CNI plugin writes them; 200 on the agent's node) are in the
//! store before the agent starts, then 1000 NetworkPolicies × 10 rules (each pod selected by 5 policies, 400 selector
//! sets) are written one after another while the agent runs. Measured: first write → the
//! last policy's chain in the kernel (and last write → kernel), against anchors run in the
//! same run, each in a fresh namespace: `iptables-restore` and `nft -f` of a flat rule set of
//! the same size (1000 chains × 10 rules). Then one policy change after another (a rule's
//! port), datastore write → the new rule in the kernel, p50/p99; the agent's RSS; and a
//! restart (`kill -9`) of the agent over the programmed tables: start → ready; and a cold
//! start (the tables deleted, as after a node reboot, the policies stored): start → every
//! policy chain in the kernel.
//!
//! Goals (issue 12): programming ≤ 1 × iptables-restore; one change p99 < 50 ms; RSS with 1000
//! policies and the endpoints < 60 MiB.
//!
//! `cargo bench -p brindle --bench agent_policy [-- CHANGES]` (root; release build).
//! `BRINDLE_BIN=<path>` runs another build of the agent (e.g. a release `brindle` driven by a
//! debug build of this program: the figures are the agent's and the kernel's).

use std::io::Write;
use std::net::Ipv4Addr;
use std::path::PathBuf;
use std::process::Stdio;
use std::time::{Duration, Instant};

use brindle_datastore::{Client, DatastoreConfig};
use brindle_model::resources::{NetworkPolicy, Profile, WorkloadEndpoint};
use brindle_model::{Kind, Resource};
use brindle_policy::ir::{Direction, PolicyId};
use brindle_testkit::{Daemon, Netns, TempDir};
use serde_json::{Value, json};

const BIN: &str = env!("CARGO_BIN_EXE_brindle");
const NODE: &str = "bench1";
const NAMESPACES: usize = 20;
const PODS: usize = 10;
/// The agent's node and four others: 1000 endpoints, 200 of them local.
const NODES: usize = 5;
const POLICIES: usize = 50;
const RULES: usize = 10;

fn resource<T: serde::de::DeserializeOwned>(v: Value) -> T {
    serde_json::from_value(v).expect("valid resource")
}

fn rules(m: usize, shift: usize) -> Value {
    Value::Array(
        (0..RULES)
            .map(|r| {
                json!({"action": "Allow", "protocol": "TCP",
                       "source": {"selector": format!("role == 'r{}'", (m + r) % 20)},
                       "destination": {"ports": [1000 + (m * RULES + r + shift) % 20000]}})
            })
            .collect(),
    )
}

fn policy(ns: usize, m: usize, shift: usize) -> NetworkPolicy {
    resource(
        json!({"kind": "NetworkPolicy", "apiVersion": "projectcalico.org/v3",
        "metadata": {"name": format!("p{m}"), "namespace": format!("ns{ns}")},
        "spec": {"order": 100 + m, "selector": format!("app == 'app{}'", m % PODS),
                 "types": ["Ingress"], "ingress": rules(m, shift)}}),
    )
}

fn seed(client: &Client) {
    let put = |r: Resource| {
        client.create(&r).expect("seed");
    };
    put(Resource::IPPool(resource(json!({"kind": "IPPool",
        "metadata": {"name": "default-ipv4-ippool"},
        "spec": {"cidr": "10.100.0.0/16", "blockSize": 26, "ipipMode": "Never",
                 "natOutgoing": true, "nodeSelector": "all()"}}))));
    for ns in 0..NAMESPACES {
        put(Resource::Profile(resource::<Profile>(json!({"kind": "Profile",
            "metadata": {"name": format!("kns.ns{ns}")},
            "spec": {"ingress": [{"action": "Allow"}], "egress": [{"action": "Allow"}],
                     "labelsToApply": {"pcns.projectcalico.org/name": format!("ns{ns}")}}}))));
        // Node 0 is the agent's (the local endpoints); the others' endpoints fill the
        // selector sets, as a cluster's would.
        for node in 0..NODES {
            let (host, suffix) = match node {
                0 => (NODE.to_string(), String::new()),
                n => (format!("remote{n}"), format!("-n{n}")),
            };
            for i in 0..PODS {
                let pod = format!("p{i}{suffix}");
                let name = WorkloadEndpoint::name_for(&host, "k8s", &pod, "eth0");
                let addr = Ipv4Addr::new(10, 100, (node * NAMESPACES + ns) as u8, i as u8 + 1);
                put(Resource::WorkloadEndpoint(resource(
                    json!({"kind": "WorkloadEndpoint",
                    "metadata": {"name": name, "namespace": format!("ns{ns}"),
                        "labels": {"app": format!("app{i}"), "role": format!("r{}", (i + ns + node) % 20),
                                   "projectcalico.org/namespace": format!("ns{ns}"),
                                   "projectcalico.org/orchestrator": "k8s"}},
                    "spec": {"orchestrator": "k8s", "node": host, "pod": pod,
                        "endpoint": "eth0", "interfaceName": format!("calibn{ns:02}p{i:02}"),
                        "ipNetworks": [format!("{addr}/32")],
                        "profiles": [format!("kns.ns{ns}")]}}),
                )));
            }
        }
    }
}

fn agent(ns: &Netns, dir: &TempDir, n: u32) -> Daemon {
    let bin = std::env::var("BRINDLE_BIN").unwrap_or_else(|_| BIN.to_string());
    let mut cmd = ns.cmd(bin);
    cmd.args(["node", "run"])
        .env("NODENAME", NODE)
        .env("IP", "172.30.9.2/24")
        .env("NO_DEFAULT_POOLS", "true")
        .env("CALICO_NETWORKING_BACKEND", "none")
        .env("BRINDLE_DATASTORE_TYPE", "sqlite")
        .env("BRINDLE_DATASTORE_PATH", dir.join("brindle.db"))
        .env("BRINDLE_STATE_DIR", dir.join("agent"))
        .env("BRINDLE_CTL_SOCKET", ctl(dir))
        .env("BRINDLE_IPAM_GC", "false")
        .env("BRINDLE_LOG", "warn");
    Daemon::spawn("agent", cmd, &dir.join(&format!("agent-{n}.log")))
}

fn ctl(dir: &TempDir) -> PathBuf {
    dir.join("brindle.ctl")
}

fn wait_ready(dir: &TempDir, a: &mut Daemon) {
    let t = Instant::now();
    while t.elapsed() < Duration::from_secs(300) {
        assert!(a.is_running(), "agent exited:\n{}", a.log());
        if brindle_ctl::control::query_status(&ctl(dir)).is_ok_and(|s| s.ready) {
            return;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    panic!("agent never ready:\n{}", a.log());
}

fn nft(ns: &Netns, args: &[&str]) -> String {
    let out = ns.cmd("nft").args(args).output().expect("nft");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn policy_chains(ns: &Netns) -> usize {
    nft(ns, &["list", "chains", "ip"])
        .lines()
        .filter(|l| l.contains("chain filter-cali-pi-"))
        .count()
}

/// Wall time of `program < input` in a fresh namespace.
fn timed_stdin(program: &str, args: &[&str], input: &str) -> f64 {
    let ns = Netns::new("apa");
    let mut c = ns.cmd(program);
    c.args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    let t = Instant::now();
    let mut child = c.spawn().unwrap_or_else(|e| panic!("{program}: {e}"));
    child.stdin.take().unwrap().write_all(input.as_bytes()).unwrap();
    let out = child.wait_with_output().unwrap();
    let took = t.elapsed().as_secs_f64();
    assert!(
        out.status.success(),
        "{program}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    took
}

/// RSS split into anonymous memory (the heap) and file-backed pages (the binary's code), MiB.
fn rss_split(pid: u32) -> String {
    let text = std::fs::read_to_string(format!("/proc/{pid}/smaps_rollup")).unwrap_or_default();
    let field = |name: &str| {
        text.lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse::<f64>().ok())
            .unwrap_or(0.0)
            / 1024.0
    };
    let anon = field("Anonymous:");
    format!("anonymous {anon:.1}, file {:.1}", field("Rss:") - anon)
}

fn pct(v: &[f64], p: f64) -> f64 {
    let mut s = v.to_vec();
    s.sort_by(|a, b| a.partial_cmp(b).unwrap());
    s[((s.len() as f64 - 1.0) * p).round() as usize]
}

fn main() {
    let changes: usize = std::env::args()
        .skip(1)
        .find_map(|a| a.parse().ok())
        .unwrap_or(100);
    let dir = TempDir::new("apb");
    let ns = Netns::node_with_uplink("apn", "172.30.9.2/24", "172.30.9.1");
    let ds = brindle_datastore::open(&DatastoreConfig::sqlite(dir.join("brindle.db"))).expect("datastore");
    let client = Client::new(ds);
    seed(&client);
    let mut a = agent(&ns, &dir, 1);
    wait_ready(&dir, &mut a);

    // Anchors, same run.
    let (ipt, flat) = brindle_testkit::anchors::flat_ruleset(NAMESPACES * POLICIES, RULES);
    let ipt_s = timed_stdin("iptables-restore", &[], &ipt);
    let nft_s = timed_stdin("nft", &["-f", "-"], &flat);

    // 1000 policies × 10 rules, written one by one while the agent runs.
    let t0 = Instant::now();
    for m in 0..POLICIES {
        for n in 0..NAMESPACES {
            client
                .create(&Resource::NetworkPolicy(policy(n, m, 0)))
                .expect("create policy");
        }
    }
    let written = t0.elapsed().as_secs_f64();
    let want = NAMESPACES * POLICIES;
    while policy_chains(&ns) < want {
        assert!(
            t0.elapsed() < Duration::from_secs(600),
            "never programmed:\n{}",
            a.log()
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    let programmed = t0.elapsed().as_secs_f64();
    let rss = brindle_testkit::process::rss_kib(a.pid()) as f64 / 1024.0;
    let rss_parts = rss_split(a.pid());

    // One change after another: a rule's port, datastore write → kernel.
    let chain =
        brindle_dataplane::policy::chains::policy_chain(&PolicyId::network("ns0", "p0"), Direction::Ingress);
    let mut lat = Vec::new();
    for c in 1..=changes {
        let mut p = policy(0, 0, c * 7);
        let cur = client
            .get(Kind::NetworkPolicy, "ns0", "p0")
            .unwrap()
            .expect("policy p0");
        p.metadata.resource_version = cur.metadata().resource_version.clone();
        let port = format!("dport {} ", 1000 + c * 7 % 20000);
        let t = Instant::now();
        client.update(&Resource::NetworkPolicy(p)).expect("update");
        while !nft(&ns, &["list", "chain", "ip", "brindle", &chain]).contains(&port) {
            assert!(
                t.elapsed() < Duration::from_secs(30),
                "change {c} never programmed"
            );
            std::thread::sleep(Duration::from_millis(1));
        }
        lat.push(t.elapsed().as_secs_f64() * 1e3);
    }

    // kill -9 and restart over the programmed tables: start → ready.
    a.signal(libc::SIGKILL);
    let _ = a.wait(Duration::from_secs(5));
    let t = Instant::now();
    let mut b = agent(&ns, &dir, 2);
    wait_ready(&dir, &mut b);
    let restart = t.elapsed().as_secs_f64();
    let rss_b = brindle_testkit::process::rss_kib(b.pid()) as f64 / 1024.0;
    let rss_b_parts = rss_split(b.pid());
    b.kill();

    // Cold start: the node's first start with the policies already stored (a node rebooted:
    // no Brindle tables), start -> every policy chain in the kernel.
    for family in ["ip", "ip6"] {
        let out = ns
            .cmd("nft")
            .args(["delete", "table", family, "brindle"])
            .output()
            .expect("nft");
        assert!(out.status.success(), "nft delete table {family} brindle failed");
    }
    assert_eq!(policy_chains(&ns), 0);
    let t = Instant::now();
    let mut c = agent(&ns, &dir, 3);
    while policy_chains(&ns) < want {
        assert!(c.is_running(), "agent exited:\n{}", c.log());
        assert!(
            t.elapsed() < Duration::from_secs(300),
            "cold start never programmed:\n{}",
            c.log()
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    let cold = t.elapsed().as_secs_f64();
    c.kill();

    println!("agent policy programming, {want} policies x {RULES} rules, 1000 endpoints (200 local):");
    println!("  iptables-restore (flat, same size)   {ipt_s:8.3} s   (anchor)");
    println!(
        "  nft -f (flat, same size)             {nft_s:8.3} s   {:.2}x iptables-restore",
        nft_s / ipt_s
    );
    println!(
        "  agent: first write -> kernel         {programmed:8.3} s   {:.2}x iptables-restore",
        programmed / ipt_s
    );
    println!(
        "  agent: last write -> kernel          {:8.3} s   {:.2}x iptables-restore (writes took {written:.3} s)",
        programmed - written,
        (programmed - written) / ipt_s
    );
    println!(
        "one policy change, write -> kernel ({changes}): p50 {:.1} ms, p99 {:.1} ms (goal p99 < 50 ms)",
        pct(&lat, 0.5),
        pct(&lat, 0.99)
    );
    println!(
        "agent RSS after programming: {rss:.1} MiB ({rss_parts}); after a restart: {rss_b:.1} MiB ({rss_b_parts}) (goal < 60 MiB)"
    );
    println!("restart (kill -9) over the programmed tables, start -> ready: {restart:.3} s");
    println!(
        "cold start (no tables, policies stored), start -> all policy chains in the kernel: {cold:.3} s   {:.2}x iptables-restore",
        cold / ipt_s
    );
}
