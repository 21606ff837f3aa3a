//! Soak (run as root; not a timed test): one seed lab (`brindle lab up`: 3 nodes, 2 pods each,
//! full mesh), continuous pings between the seed pods — whose routes no change touches — and a
//! seeded random sequence of changes spread over the run: extra IPPools created and deleted,
//! BGPPeers to addresses where nothing listens, labels on Nodes and WorkloadEndpoints, pods
//! added and deleted through the CNI plugin. At the end: pings lost (each with the changes
//! around it), mesh session flaps (state-change times before/after, and every sample in
//! between), each agent's RSS at start/middle/end, `brindle ipam check` and `brindle lab ping`.
//! Exits non-zero on a lost ping, a flap, a failed change, or an unclean `ipam check`.
//!
//! `cargo bench -p brindle --bench soak`; environment: `SOAK_CHANGES` (1000), `SOAK_SECS` (600),
//! `SOAK_SEED` (from the clock; printed), `SOAK_BASELINE_SECS` (0: pings before any change, to
//! tell machine load from a bug), `SOAK_TAIL_SECS` (10: pings after the last change).

#[path = "../../tests/lab_support/mod.rs"]
mod lab_support;

mod changes;
mod observe;
mod pings;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use rand::SeedableRng;
use rand::rngs::StdRng;

use changes::{Kind, World};
use lab_support::TestLab;
use pings::Pinger;

fn env_num(name: &str, default: u64) -> u64 {
    match std::env::var(name) {
        Ok(v) => v
            .parse()
            .unwrap_or_else(|_| panic!("{name}={v:?} is not a number")),
        Err(_) => default,
    }
}

/// `brindle ARGS…` on bgp-master1 (as `brindle lab exec` runs it).
fn brindle(lab: &brindle_lab::Lab, args: &[&str]) -> std::process::Output {
    let argv: Vec<String> = std::iter::once("brindle")
        .chain(args.iter().copied())
        .map(String::from)
        .collect();
    let mut cmd = lab.command("bgp-master1", &argv).expect("command");
    cmd.output().unwrap_or_else(|e| panic!("{argv:?}: {e}"))
}

/// The seed pods' WorkloadEndpoints: (namespace, name).
fn seed_weps(lab: &brindle_lab::Lab) -> Vec<changes::Wep> {
    let out = brindle(lab, &["get", "workloadendpoints", "-A", "-o", "json"]);
    assert!(
        out.status.success(),
        "get workloadendpoints: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("weps json");
    let items = v["items"].as_array().cloned().unwrap_or_else(|| vec![v.clone()]);
    items
        .iter()
        .filter_map(|w| {
            let m = &w["metadata"];
            Some((
                m["namespace"].as_str()?.to_string(),
                m["name"].as_str()?.to_string(),
            ))
        })
        .collect()
}

fn ipam_check(lab: &brindle_lab::Lab) -> (bool, String) {
    let out = brindle(lab, &["ipam", "check"]);
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let last = text.lines().last().unwrap_or("").to_string();
    let clean = out.status.success() && last == "Check complete; found 0 problems.";
    (
        clean,
        if clean {
            last
        } else {
            format!("{text}{}", String::from_utf8_lossy(&out.stderr))
        },
    )
}

fn mib(k: Option<u64>) -> String {
    k.map(|k| format!("{:.1}", k as f64 / 1024.0))
        .unwrap_or_else(|| "dead".into())
}

struct Applied {
    at: Duration,
    kind: Kind,
    what: String,
    error: Option<String>,
}

/// Runs the soak; true when it passed. Every guard (soak pods, then the lab) drops on return.
fn soak() -> bool {
    let n_changes = env_num("SOAK_CHANGES", 1000);
    let secs = env_num("SOAK_SECS", 600);
    let seed = env_num(
        "SOAK_SEED",
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .expect("clock")
            .as_secs(),
    );
    let baseline = Duration::from_secs(env_num("SOAK_BASELINE_SECS", 0));
    let tail = Duration::from_secs(env_num("SOAK_TAIL_SECS", 10));
    eprintln!("soak: seed lab, {n_changes} changes over {secs} s, SOAK_SEED={seed}");

    let tl = TestLab::up("soak", &[]);
    let lab = tl.lab();
    eprintln!("soak: lab {} up", tl.name);
    let weps = seed_weps(&lab);
    let mut world = World::new(&lab, weps);
    let mut rng = StdRng::seed_from_u64(seed);

    let (since0, counters0, down0) = observe::mesh_sessions(&lab);
    assert!(down0.is_empty(), "mesh not established at start: {down0:?}");
    let rss0 = observe::agent_rss(&lab);

    let mut seed_pods: Vec<_> = lab
        .state()
        .pods
        .iter()
        .filter(|p| p.ip.is_some())
        .cloned()
        .collect();
    seed_pods.sort_by(|a, b| a.name.cmp(&b.name));
    let n = seed_pods.len();
    // Each pod pings the pod two places on (the next node's): every node pair, both ways.
    let pingers: Vec<Pinger> = (0..n)
        .map(|i| {
            let (a, b) = (&seed_pods[i], &seed_pods[(i + 2) % n]);
            Pinger::start(&lab, &a.name, &b.name, b.ip.as_deref().expect("ip"))
        })
        .collect();
    let t0 = Instant::now();
    std::thread::sleep(baseline);

    let start = Instant::now();
    let period = Duration::from_secs(secs).div_f64(n_changes.max(1) as f64);
    let mut applied: Vec<Applied> = Vec::new();
    let mut rss_mid = BTreeMap::new();
    let mut rss_max: BTreeMap<String, u64> = BTreeMap::new();
    let mut not_established: Vec<String> = Vec::new();
    let mut last_sample = Instant::now();
    for i in 0..n_changes {
        let due = start + period * i as u32;
        if let Some(d) = due.checked_duration_since(Instant::now()) {
            std::thread::sleep(d);
        }
        let (kind, what, r) = world.step(&mut rng);
        applied.push(Applied {
            at: t0.elapsed(),
            kind,
            what,
            error: r.err(),
        });
        if i == n_changes / 2 {
            rss_mid = observe::agent_rss(&lab);
        }
        if last_sample.elapsed() >= Duration::from_secs(5) {
            last_sample = Instant::now();
            for (node, k) in observe::agent_rss(&lab) {
                let m = rss_max.entry(node).or_default();
                *m = (*m).max(k.unwrap_or(0));
            }
            let (_, _, down) = observe::mesh_sessions(&lab);
            not_established.extend(
                down.into_iter()
                    .map(|d| format!("{:.1}s {d}", t0.elapsed().as_secs_f64())),
            );
        }
    }
    let change_secs = start.elapsed().as_secs_f64();
    std::thread::sleep(tail);
    let ping_secs = t0.elapsed().as_secs_f64();
    let results: Vec<_> = pingers.into_iter().map(Pinger::stop).collect();
    // A ping that sent far fewer than the run's length allows stalled: its zero is no proof.
    let expected = (ping_secs / pings::INTERVAL.as_secs_f64()) as u64;
    let stalled: Vec<&pings::PingResult> = results.iter().filter(|r| r.sent * 10 < expected * 9).collect();
    let rss_end = observe::agent_rss(&lab);
    let (since1, counters1, down1) = observe::mesh_sessions(&lab);
    let flaps = observe::flapped(&since0, &since1);
    let live_pods = world.live_pods();
    let (ipam_live_ok, ipam_live) = ipam_check(&lab);
    let pod_cleanup = world.delete_pods();
    let (ipam_ok, ipam_text) = ipam_check(&lab);
    let matrix = lab.ping_all().expect("lab ping");

    // The report.
    println!("\n== soak: seed lab {}, SOAK_SEED={seed} ==", tl.name);
    println!(
        "{} changes applied over {change_secs:.0} s (asked: {n_changes} over {secs} s); pings {:.0} s before, {} s after",
        applied.len(),
        baseline.as_secs_f64(),
        tail.as_secs()
    );
    let mut by_kind: BTreeMap<Kind, (usize, usize)> = BTreeMap::new();
    for a in &applied {
        let e = by_kind.entry(a.kind).or_default();
        e.0 += 1;
        e.1 += usize::from(a.error.is_some());
    }
    println!("\n{:<32} {:>8} {:>8}", "change", "applied", "failed");
    for (k, (ok, failed)) in &by_kind {
        println!("{:<32} {ok:>8} {failed:>8}", k.name());
    }
    let failed: Vec<&Applied> = applied.iter().filter(|a| a.error.is_some()).collect();
    for a in failed.iter().take(10) {
        println!(
            "  failed at {:.1}s: {} {}: {}",
            a.at.as_secs_f64(),
            a.kind.name(),
            a.what,
            a.error.as_deref().unwrap_or("")
        );
    }

    println!(
        "\n{:<44} {:>8} {:>6} {:>6}",
        "ping (seed pods, routes unchanged)", "sent", "lost", "in bl"
    );
    let mut lost_total = 0;
    let mut lost_in_changes = 0;
    for r in &results {
        let in_baseline = r.lost.iter().filter(|s| r.sent_at(**s) < start).count();
        lost_total += r.lost.len();
        lost_in_changes += r.lost.len() - in_baseline;
        let pair = format!("{} -> {} ({})", r.from, r.to, r.to_ip);
        println!("{pair:<44} {:>8} {:>6} {in_baseline:>6}", r.sent, r.lost.len());
    }
    println!("(in bl: lost during the baseline, before the first change)");
    for r in &results {
        for s in r.lost.iter().take(5) {
            let at = r.sent_at(*s).duration_since(t0);
            let near: Vec<String> = applied
                .iter()
                .filter(|a| a.at.abs_diff(at) < Duration::from_secs(2))
                .map(|a| format!("{:.1}s {} {}", a.at.as_secs_f64(), a.kind.name(), a.what))
                .collect();
            println!(
                "  lost {} -> {} seq {s} at {:.1}s; changes within 2 s: {near:?}",
                r.from,
                r.to,
                at.as_secs_f64()
            );
        }
    }

    println!(
        "\nBGP mesh sessions: {} (every node to every other)",
        since0.len()
    );
    println!(
        "  flapped (state-change time moved start -> end): {}",
        flaps.len()
    );
    for f in &flaps {
        println!("    {f}");
    }
    println!("  samples not Established (every 5 s): {}", not_established.len());
    for d in not_established.iter().take(10) {
        println!("    {d}");
    }
    for d in &down1 {
        println!("  at the end: {d}");
    }
    println!(
        "\n{:<14} {:>14} {:>14} {:>14} {:>10} {:>26}",
        "agent", "RSS start MiB", "mid MiB", "end MiB", "max MiB", "restarts/reconfigs/fails"
    );
    for (node, r0) in &rss0 {
        let c0 = counters0.get(node).copied().unwrap_or_default();
        let c1 = counters1.get(node).copied().unwrap_or_default();
        println!(
            "{node:<14} {:>14} {:>14} {:>14} {:>10} {:>26}",
            mib(*r0),
            mib(rss_mid.get(node).copied().flatten()),
            mib(rss_end.get(node).copied().flatten()),
            mib(rss_max.get(node).copied()),
            format!(
                "{}/{}/{}",
                c1.0.saturating_sub(c0.0),
                c1.1.saturating_sub(c0.1),
                c1.2.saturating_sub(c0.2)
            )
        );
    }
    println!(
        "\nipam check with {live_pods} soak pods live: {}",
        if ipam_live_ok { "clean" } else { "PROBLEMS" }
    );
    if !ipam_live_ok {
        println!("{ipam_live}");
    }
    println!(
        "ipam check after deleting them: {}",
        if ipam_ok { "clean" } else { "PROBLEMS" }
    );
    if !ipam_ok {
        println!("{ipam_text}");
    }
    for e in &pod_cleanup {
        println!("soak pod delete failed: {e}");
    }
    println!(
        "lab ping (every seed pod to every seed pod): {} pairs, {} failed",
        matrix.pairs(),
        matrix.failures().len()
    );
    if !matrix.failures().is_empty() {
        println!("{}", matrix.render());
    }

    if !stalled.is_empty() {
        println!(
            "{} pings sent fewer than 90% of the {expected} the run allows: stalled",
            stalled.len()
        );
    }
    let pass = lost_total == 0
        && stalled.is_empty()
        && flaps.is_empty()
        && not_established.is_empty()
        && down1.is_empty()
        && failed.is_empty()
        && ipam_live_ok
        && ipam_ok
        && pod_cleanup.is_empty()
        && matrix.failures().is_empty();
    println!(
        "\nsoak {}: {lost_total} pings lost ({lost_in_changes} after the first change), {} flaps, {} failed changes, ipam check {}",
        if pass { "PASSED" } else { "FAILED" },
        flaps.len(),
        failed.len(),
        if ipam_live_ok && ipam_ok {
            "clean"
        } else {
            "not clean"
        }
    );
    pass
}

fn main() {
    // SAFETY: geteuid has no preconditions.
    assert!(
        unsafe { libc::geteuid() } == 0,
        "the soak needs root (network namespaces)"
    );
    if !soak() {
        std::process::exit(1);
    }
}
