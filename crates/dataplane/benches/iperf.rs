//! iperf3 TCP pod-to-pod across two nodes: IPIP (whatever path this kernel gets: bpf-ipip here)
//! vs no encapsulation vs VXLAN, interleaved round by round. Goal: IPIP ≥ 0.85 × no
//! encapsulation and ≥ VXLAN. Pod MTUs as Calico: 1480 (IPIP), 1500 (none), 1450 (VXLAN).
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
        ),
        (
            "none",
            Modes {
                ipip: EncapMode::Never,
                vxlan: EncapMode::Never,
            },
        ),
        (
            "vxlan",
            Modes {
                ipip: EncapMode::Never,
                vxlan: EncapMode::Always,
            },
        ),
    ];
    let dir = TempDir::new("dp-iperf");
    let mut setups = Vec::new();
    for (name, m) in modes {
        let mut c = Cluster::new(2, false, m);
        c.add_pod(0);
        c.add_pod(1);
        let dps = c.start_all();
        let path = dps[0].status().ipip.map(|p| p.to_string()).unwrap_or_default();
        let server = {
            let mut cmd = c.nodes[1].pods[0].ns.cmd("iperf3");
            cmd.args(["-s"]);
            Daemon::spawn(&format!("iperf3-{name}"), cmd, &dir.join(&format!("{name}.log")))
        };
        assert!(
            common::ping(&c.nodes[0].pods[0].ns, &c.nodes[1].pods[0].ip.to_string()),
            "{name}: no connectivity"
        );
        setups.push((name, path, c, dps, server, Vec::new()));
    }
    std::thread::sleep(Duration::from_millis(300));
    for r in 0..rounds {
        for (name, _, c, _, _, results) in setups.iter_mut() {
            let out = c.nodes[0].pods[0]
                .ns
                .cmd("iperf3")
                .args([
                    "-c",
                    &c.nodes[1].pods[0].ip.to_string(),
                    "-t",
                    &secs.to_string(),
                    "-O",
                    "1",
                    "-J",
                ])
                .output()
                .unwrap();
            let g = gbps(&String::from_utf8_lossy(&out.stdout));
            eprintln!("round {r} {name}: {g:.2} Gbit/s");
            results.push(g);
        }
    }
    println!(
        "iperf3 TCP pod → pod across nodes, {rounds} interleaved rounds of {secs} s, Gbit/s (min / median / max):"
    );
    let mut med = std::collections::HashMap::new();
    for (name, path, _, _, _, results) in setups.iter_mut() {
        let (lo, hi) = (
            results.iter().cloned().fold(f64::MAX, f64::min),
            results.iter().cloned().fold(0.0, f64::max),
        );
        let m = median(results);
        med.insert(*name, m);
        println!("  {name:<6} {lo:6.2} / {m:6.2} / {hi:6.2}  {path}");
    }
    let (ipip, none, vxlan) = (med["ipip"], med["none"], med["vxlan"]);
    println!("  ipip / none  = {:.2} (goal ≥ 0.85)", ipip / none);
    println!("  ipip / vxlan = {:.2} (goal ≥ 1.00)", ipip / vxlan);
    println!("  vxlan / none = {:.2}", vxlan / none);
    // Servers die before their namespaces (drop order of the tuple fields is fine: the cluster
    // owns the namespaces, the Daemon is dropped explicitly first).
    for (_, _, _, _, server, _) in setups.iter_mut() {
        server.kill();
    }
}
