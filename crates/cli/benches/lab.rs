//! Lab benchmarks (run as root; not timed tests):
//!
//! - `convergence [PODS]`: a 3-node lab with /31 blocks (every other pod needs a new block);
//!   each pod ADD on bgp-master1 (the CNI plugin, as a runtime runs it) is timed until
//!   bgp-node1's kernel holds a route to the pod's address (pods alternate between
//!   bgp-master1 and bgp-node2, each node staying under maxBlocksPerHost). Goal: p99 < 100 ms.
//! - `convergence6 [PODS]`: the same on a dual-stack lab (`--ip-family dual`, IPv6 routed
//!   natively) with /127 IPv6 blocks, timed until bgp-node1 routes the pod's IPv6 address.
//!   Goal: p99 < 100 ms.
//! - `scale [NODES]`: `lab up` of NODES nodes × 2 pods until every node routes to every block
//!   and every BGP session is Established (goal: 100 nodes < 60 s on 2 cores), then the agents'
//!   RSS (goals: < 30 MiB at 3 nodes, < 60 MiB at 100; calico-node: 250–560 MiB as reported in
//!   projectcalico/calico issues #2703, #3820, #4129).
//!
//! `cargo bench -p brindle --bench lab [-- convergence 60 | convergence6 60 | scale 100]` (all
//! three by default).

use std::net::IpAddr;
use std::path::Path;
use std::time::{Duration, Instant};

use brindle_lab::progress::{Quiet, Stderr};
use brindle_lab::{Lab, LabSpec};
use brindle_netlink::Handle;
use brindle_testkit::{TempDir, names};

const BIN: &str = env!("CARGO_BIN_EXE_brindle");

struct Guard(Option<Lab>);

impl Drop for Guard {
    fn drop(&mut self) {
        if let Some(l) = self.0.take()
            && let Err(e) = l.down(&Quiet)
        {
            eprintln!("lab down: {e}");
        }
    }
}

fn pct(v: &mut [f64], p: f64) -> f64 {
    if v.is_empty() {
        return f64::NAN;
    }
    v.sort_by(|a, b| a.total_cmp(b));
    let i = ((v.len() as f64 - 1.0) * p).round() as usize;
    v[i]
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

fn agent_rss(lab: &Lab) -> Vec<f64> {
    lab.state()
        .processes
        .iter()
        .filter(|p| p.role.starts_with("agent ") && p.is_alive())
        .map(|p| brindle_testkit::process::rss_kib(p.pid as u32))
        .map(|k| k as f64 / 1024.0)
        .collect()
}

/// The prefixes of family `v6` (other than the default and link-local) in `h`'s main table.
fn prefixes(h: &mut Handle, v6: bool) -> Vec<ipnet::IpNet> {
    h.routes(Some(brindle_netlink::TABLE_MAIN))
        .map(|rs| {
            rs.iter()
                .map(|r| r.dst)
                .filter(|n| {
                    n.prefix_len() > 0
                        && matches!(n, ipnet::IpNet::V6(_)) == v6
                        && !matches!(n.addr(), IpAddr::V6(a) if a.segments()[0] & 0xffc0 == 0xfe80)
                })
                .collect()
        })
        .unwrap_or_default()
}

/// Does `h`'s main table route `ip` (any prefix covering it, other than the default)?
fn routed(h: &mut Handle, ip: IpAddr) -> bool {
    h.routes(Some(brindle_netlink::TABLE_MAIN))
        .map(|rs| rs.iter().any(|r| r.dst.prefix_len() > 0 && r.dst.contains(&ip)))
        .unwrap_or(false)
}

fn convergence(pods: usize, v6: bool) {
    let root = TempDir::new("benchlab");
    let spec = LabSpec {
        name: names::unique("bc"),
        nodes: 3,
        pods: 0,
        block_size: 31,
        block_size6: 127,
        ip_family: if v6 {
            brindle_lab::spec::IpFamily::Dual
        } else {
            brindle_lab::spec::IpFamily::V4
        },
        ..Default::default()
    };
    eprintln!(
        "convergence{}: 3-node lab, {} blocks, {pods} pod ADDs on bgp-master1 and bgp-node2, watched from bgp-node1",
        if v6 { " (IPv6, dual-stack lab)" } else { "" },
        if v6 { "/127 IPv6" } else { "/31" }
    );
    let lab = Lab::up_in(root.path(), spec, Path::new(BIN), &Stderr::default()).expect("lab up");
    let mut g = Guard(Some(lab));
    let lab = g.0.as_mut().expect("lab");
    let b_ns = lab.plan().node("bgp-node1").expect("node").netns.clone();
    let mut hb = Handle::open_named(&b_ns).expect("netlink in bgp-node1");
    let (mut add, mut all, mut new_block, mut old_block, mut after_add) =
        (vec![], vec![], vec![], vec![], vec![]);
    for i in 0..pods {
        // Alternate the two other nodes so neither hits maxBlocksPerHost (20) with /31 blocks.
        let a = if i % 2 == 0 { "bgp-master1" } else { "bgp-node2" };
        let before = prefixes(&mut hb, v6);
        // Watch B's table from before the ADD: a new block's route can arrive before the
        // plugin has even returned.
        let stop = std::sync::atomic::AtomicBool::new(false);
        let t0 = Instant::now();
        let (rec, t_add, seen) = std::thread::scope(|s| {
            let watcher = s.spawn(|| {
                let mut h = Handle::open_named(&b_ns).expect("netlink in bgp-node1");
                let mut seen: Vec<(ipnet::IpNet, Duration)> = Vec::new();
                let deadline = Instant::now() + Duration::from_secs(10);
                while Instant::now() < deadline {
                    for p in prefixes(&mut h, v6) {
                        if !before.contains(&p) && !seen.iter().any(|(q, _)| *q == p) {
                            seen.push((p, t0.elapsed()));
                        }
                    }
                    if stop.load(std::sync::atomic::Ordering::Relaxed) {
                        break;
                    }
                    std::thread::sleep(Duration::from_micros(300));
                }
                seen
            });
            let rec = lab.add_pod(a).expect("pod ADD");
            let t_add = t0.elapsed();
            let ip = pod_ip(&rec, v6);
            let deadline = Instant::now() + Duration::from_secs(10);
            while !routed(&mut hb, ip) {
                assert!(
                    Instant::now() < deadline,
                    "no route to {ip} on bgp-node1 after 10 s"
                );
                std::thread::sleep(Duration::from_micros(300));
            }
            stop.store(true, std::sync::atomic::Ordering::Relaxed);
            (rec, t_add, watcher.join().expect("watcher"))
        });
        let ip = pod_ip(&rec, v6);
        add.push(ms(t_add));
        if before.iter().any(|p| p.contains(&ip)) {
            // Already routed: the pod is reachable from B once its own node has its /32.
            old_block.push(ms(t_add));
            all.push(ms(t_add));
        } else {
            let t = seen
                .iter()
                .filter(|(p, _)| p.contains(&ip))
                .map(|(_, t)| *t)
                .min()
                .unwrap_or_else(|| t0.elapsed());
            new_block.push(ms(t));
            all.push(ms(t.max(t_add)));
            after_add.push(ms(t.saturating_sub(t_add)));
        }
    }
    let rss = agent_rss(lab);
    println!(
        "\n== pod ADD on node A -> {}route on node B (3 nodes, {pods} pods) ==",
        if v6 { "IPv6 " } else { "" }
    );
    println!("{:<46} {:>6} {:>9} {:>9}", "", "n", "p50 ms", "p99 ms");
    for (what, v) in [
        ("CNI ADD (exec of the plugin, IPAM, veth)", &mut add),
        ("ADD start -> pod routed on B (max of both)", &mut all),
        ("  pods in a block B already routed", &mut old_block),
        ("  new block: ADD start -> block route on B", &mut new_block),
        ("  new block: route on B after ADD returned", &mut after_add),
    ] {
        let n = v.len();
        println!("{what:<46} {n:>6} {:>9.1} {:>9.1}", pct(v, 0.5), pct(v, 0.99));
    }
    println!("goal: p99 < 100 ms; naive 10-command CNI ADD alone: 18.8 ms p50 on this machine");
    print_rss("3 nodes", rss, 30.0);
}

/// The pod's address of the benchmarked family.
fn pod_ip(rec: &brindle_lab::state::PodRecord, v6: bool) -> IpAddr {
    let ip = if v6 { rec.ip6() } else { rec.ip4() };
    ip.expect("pod address of the family").parse().expect("address")
}

fn print_rss(what: &str, mut rss: Vec<f64>, goal: f64) {
    let n = rss.len();
    let max = rss.iter().cloned().fold(0.0, f64::max);
    println!(
        "agent RSS at {what}: median {:.1} MiB, max {:.1} MiB over {n} agents (goal < {goal} MiB; calico-node 250-560 MiB)",
        pct(&mut rss, 0.5),
        max
    );
}

fn scale(nodes: usize) {
    let root = TempDir::new("benchlab");
    let spec = LabSpec {
        name: names::unique("bs"),
        nodes,
        pods: 2,
        ..Default::default()
    };
    eprintln!("scale: lab up of {nodes} nodes x 2 pods");
    let t0 = Instant::now();
    let lab = Lab::up_in(root.path(), spec, Path::new(BIN), &Stderr::default()).expect("lab up");
    let took = t0.elapsed();
    let g = Guard(Some(lab));
    let lab = g.0.as_ref().expect("lab");
    // Settle, then measure memory with every session up.
    std::thread::sleep(Duration::from_secs(2));
    let rss = agent_rss(lab);
    let sessions: usize = lab.plan().nodes.len() * (lab.plan().nodes.len() - 1);
    println!("\n== {nodes}-node lab up, fully converged ==");
    println!(
        "lab up (namespaces, agents, {} pods through CNI, every route and all {sessions} BGP session ends up): {:.1} s (goal < 60 s at 100 nodes; Calico 800-node mesh BGP init ~240 s, projectcalico/calico#9976)",
        lab.state().pods.len(),
        took.as_secs_f64()
    );
    print_rss(
        &format!("{nodes} nodes"),
        rss,
        if nodes <= 3 { 30.0 } else { 60.0 },
    );
    let probe = lab.ping_sample(200).expect("ping");
    println!("pod pairs pinged after up: {} of {} reachable", probe.0, probe.1);
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).filter(|a| a != "--bench").collect();
    // SAFETY: geteuid has no preconditions.
    assert!(
        unsafe { libc::geteuid() } == 0,
        "the lab benchmarks need root (network namespaces)"
    );
    let num = |i: usize, d: usize| args.get(i).and_then(|s| s.parse().ok()).unwrap_or(d);
    match args.first().map(String::as_str) {
        Some("convergence") => convergence(num(1, 60), false),
        Some("convergence6") => convergence(num(1, 60), true),
        Some("scale") => scale(num(1, 100)),
        None => {
            convergence(60, false);
            convergence(60, true);
            scale(100);
        }
        Some(other) => {
            panic!("unknown benchmark {other:?} (convergence [PODS] | convergence6 [PODS] | scale [NODES])")
        }
    }
}
