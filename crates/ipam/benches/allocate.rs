//! IPAM benchmark (a bench binary, printed as a comparison; not a timed test):
//!
//! - 1000 allocations for 1000 pods over 10 nodes, concurrently: one thread per node (as with
//!   a per-host CNI lock), then 4 per node (contending for the node's block), then as real
//!   processes (10 `brindle-ipam-stress` processes × 100 ADDs, each ADD also writing its
//!   endpoint, as CNI does). On SQLite and on a real etcd.
//! - Latency of one allocation from the node's affine block, sequential.
//!
//! The seed's pool (10.233.64.0/18 in /24 blocks); every node has its tunnel address first, as
//! after agent start-up. A fresh store per scenario.
//!
//! Anchors: Calico 3.26 on Kubernetes, 1000 pods on 10 nodes Running in 322 s (Spiderpool's
//! published IPAM comparison, `docs/concepts/ipam-performance.md`; whole pod start-up, not IPAM
//! alone); Calico's own test bar, one AutoAssign < 1 s (`libcalico-go/lib/ipam/ipam_test.go`).
//! Goals (issue 3): < 1 s on SQLite, < 3 s on etcd; ≤ 1 ms per allocation.
//!
//! `cargo bench -p brindle-ipam --bench allocate`

#[path = "../tests/support/mod.rs"]
mod support;

use std::time::{Duration, Instant};

use brindle_ipam::{AutoAssignArgs, Ipam};
use support::{Cluster, node_name};

const NODES: usize = 10;
const PODS: usize = 1000;

/// 1000 allocations, `per_node` threads per node, all at once. Returns the wall time.
fn threads(c: &Cluster, per_node: usize) -> Duration {
    c.setup_with(NODES, 24);
    let each = PODS / NODES / per_node;
    let start = Instant::now();
    std::thread::scope(|sc| {
        for n in 0..NODES {
            for t in 0..per_node {
                let ipam = c.ipam();
                sc.spawn(move || {
                    for i in 0..each {
                        let args = AutoAssignArgs::workload_v4(
                            &node_name(n),
                            &format!("k8s-pod-network.{n}-{t}-{i}"),
                        );
                        ipam.auto_assign(&args).expect("allocation");
                    }
                });
            }
        }
    });
    start.elapsed()
}

/// 10 processes (one per node), 100 ADDs each, endpoints written too.
fn processes(c: &Cluster) -> Duration {
    c.setup_with(NODES, 24);
    let start = Instant::now();
    let children: Vec<_> = (0..NODES)
        .map(|n| c.spawn(&node_name(n), 0, PODS / NODES, PODS / NODES, n as u64 + 1))
        .collect();
    // Their output (a few KB each) waits in the pipes.
    for mut ch in children {
        let status = ch.wait().unwrap();
        assert!(status.success(), "a stress worker failed: {status}");
    }
    start.elapsed()
}

/// Sequential allocations from one node's affine block: (p50, p99, mean).
fn latency(c: &Cluster) -> (Duration, Duration, Duration) {
    c.setup_with(NODES, 24);
    let ipam: Ipam = c.ipam();
    let mut v: Vec<Duration> = (0..200)
        .map(|i| {
            let args = AutoAssignArgs::workload_v4(&node_name(0), &format!("lat.{i}"));
            let t = Instant::now();
            ipam.auto_assign(&args).expect("allocation");
            t.elapsed()
        })
        .collect();
    let mean = v.iter().sum::<Duration>() / v.len() as u32;
    v.sort();
    (v[v.len() / 2], v[v.len() * 99 / 100], mean)
}

fn secs(d: Duration) -> String {
    format!("{:.3} s", d.as_secs_f64())
}

fn ms(d: Duration) -> String {
    format!("{:.3} ms", d.as_secs_f64() * 1e3)
}

fn main() {
    type Open = fn() -> Cluster;
    let stores: [(&str, Open); 2] = [("sqlite", Cluster::sqlite), ("etcd", Cluster::etcd)];
    let mut cols: Vec<Vec<String>> = Vec::new();
    for (name, mk) in stores {
        let t1 = threads(&mk(), 1);
        let t4 = threads(&mk(), 4);
        let p = processes(&mk());
        let (p50, p99, mean) = latency(&mk());
        eprintln!("{name}: done");
        cols.push(vec![
            secs(t1),
            secs(t4),
            secs(p),
            format!("{} / {}", ms(p50), ms(p99)),
            ms(mean),
        ]);
    }
    let rows = [
        (
            "1000 pods, 10 nodes x 1 thread",
            "goal <1 s sqlite, <3 s etcd; Calico/k8s 322 s (A2#23)",
        ),
        (
            "1000 pods, 10 nodes x 4 threads",
            "same goals; threads of a node contend for its block",
        ),
        (
            "1000 pods, 10 processes (+endpoints)",
            "as CNI invocations: process start, endpoint writes",
        ),
        (
            "1 allocation, affine block p50/p99",
            "goal <=1 ms; Calico test bar <1 s (A2#24)",
        ),
        ("1 allocation, affine block mean", ""),
    ];
    println!("\nBrindle IPAM benchmark (release build, this machine)");
    println!(
        "{:<40} {:>22} {:>22}  goal / anchor",
        "scenario", "sqlite", "etcd"
    );
    for (i, (label, note)) in rows.iter().enumerate() {
        println!("{label:<40} {:>22} {:>22}  {note}", cols[0][i], cols[1][i]);
    }
}
