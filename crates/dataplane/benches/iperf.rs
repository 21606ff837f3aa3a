//! iperf3 TCP pod-to-pod across two nodes: IPIP (whatever path this kernel gets: bpf-ipip here)
//! vs no encapsulation vs VXLAN, and IPv6 without encapsulation and over `vxlan-v6.calico` on
//! the same dual-stack clusters, interleaved round by round. Goals: IPIP ≥ 0.85 × no
//! encapsulation and ≥ VXLAN; IPv6 without encapsulation ≥ 0.95 × IPv4. Pod MTUs as Calico:
//! 1480 (IPIP), 1500 (none), 1430 (dual-stack VXLAN: the IPv6 device's host − 70 is the
//! smallest, and a pod has one MTU for both families).
//!
//! `cargo bench -p brindle-dataplane --bench iperf [-- ROUNDS SECONDS]`

#[path = "../tests/common/mod.rs"]
mod common;

use std::time::Duration;

use brindle_dataplane::EncapMode;
use brindle_testkit::{Daemon, TempDir};
use common::{Cluster, Modes, iperf_gbps as gbps, median};

fn main() {
    let args: Vec<String> = std::env::args().skip(1).filter(|a| !a.starts_with('-')).collect();
    let rounds: usize = args.first().and_then(|s| s.parse().ok()).unwrap_or(5);
    let secs: u32 = args.get(1).and_then(|s| s.parse().ok()).unwrap_or(5);
    brindle_testkit::require::command("iperf3", "iperf3");
    let modes = [
        (
            "ipip",
            Modes {
                ipip: EncapMode::Always,
                vxlan: EncapMode::Never,
            },
            common::V4,
        ),
        (
            "none",
            Modes {
                ipip: EncapMode::Never,
                vxlan: EncapMode::Never,
            },
            common::DUAL,
        ),
        (
            "vxlan",
            Modes {
                ipip: EncapMode::Never,
                vxlan: EncapMode::Always,
            },
            common::DUAL,
        ),
    ];
    let dir = TempDir::new("dp-iperf");
    // One cluster per mode (dual stack where Calico allows IPv6), one iperf3 server (both
    // families) per cluster; every (mode, family) is a run.
    let mut clusters = Vec::new();
    let mut runs: Vec<(String, usize, String, Vec<f64>)> = Vec::new();
    for (name, m, families) in modes {
        let mut c = Cluster::with_families(2, false, m, families);
        c.add_pod(0);
        c.add_pod(1);
        let dps = c.start_all();
        let path = dps[0]
            .status()
            .ipip
            .map(|p| format!(" ({p})"))
            .unwrap_or_default();
        let server = {
            let mut cmd = c.nodes[1].pods[0].ns.cmd("iperf3");
            cmd.args(["-s"]);
            Daemon::spawn(&format!("iperf3-{name}"), cmd, &dir.join(&format!("{name}.log")))
        };
        for dst in c.nodes[1].pods[0].addrs() {
            assert!(
                common::ping(&c.nodes[0].pods[0].ns, &dst.to_string()),
                "{name}: no connectivity to {dst}"
            );
            let family = if dst.is_ipv4() { "v4" } else { "v6" };
            runs.push((
                format!("{name} {family}{path}"),
                clusters.len(),
                dst.to_string(),
                Vec::new(),
            ));
        }
        clusters.push((c, dps, server));
    }
    std::thread::sleep(Duration::from_millis(300));
    for r in 0..rounds {
        for (label, ci, dst, results) in runs.iter_mut() {
            let c = &clusters[*ci].0;
            let out = c.nodes[0].pods[0]
                .ns
                .cmd("iperf3")
                .args(["-c", dst, "-t", &secs.to_string(), "-O", "1", "-J"])
                .output()
                .unwrap();
            let g = gbps(&String::from_utf8_lossy(&out.stdout));
            eprintln!("round {r} {label}: {g:.2} Gbit/s");
            results.push(g);
        }
    }
    println!(
        "iperf3 TCP pod → pod across nodes, {rounds} interleaved rounds of {secs} s, Gbit/s (min / median / max):"
    );
    let mut med = std::collections::HashMap::new();
    for (label, _, _, results) in runs.iter_mut() {
        let (lo, hi) = (
            results.iter().cloned().fold(f64::MAX, f64::min),
            results.iter().cloned().fold(0.0, f64::max),
        );
        let m = median(results);
        let key: String = label.split(" (").next().unwrap().to_string();
        med.insert(key, m);
        println!("  {label:<24} {lo:6.2} / {m:6.2} / {hi:6.2}");
    }
    let (ipip, none, vxlan) = (med["ipip v4"], med["none v4"], med["vxlan v4"]);
    let (none6, vxlan6) = (med["none v6"], med["vxlan v6"]);
    println!("  ipip / none  = {:.2} (goal ≥ 0.85)", ipip / none);
    println!("  ipip / vxlan = {:.2} (goal ≥ 1.00)", ipip / vxlan);
    println!("  vxlan / none = {:.2}", vxlan / none);
    println!("  none v6 / none v4   = {:.2} (goal ≥ 0.95)", none6 / none);
    println!("  vxlan v6 / vxlan v4 = {:.2}", vxlan6 / vxlan);
    // Servers die before their namespaces (the cluster owns the namespaces).
    for (_, _, server) in clusters.iter_mut() {
        server.kill();
    }
}
