//! Workload policy at scale: 1000 NetworkPolicies × 10 rules over 200 local endpoints (20
//! namespaces × 10 pods; each pod selected by 5 policies; 400 selector sets), computed by the
//! policy calculation (`brindle-policy`) and programmed by PolicyDataplane, against anchors run
//! in the same run, each in a fresh namespace of its own:
//! - `iptables-restore` (Debian's default, the nf_tables backend) of a flat rule set of the same
//!   size: 1000 chains × 10 rules `-p tcp -s ADDR --dport PORT -j ACCEPT`;
//! - `nft -f` of the same flat rule set.
//!
//! Then one policy change (a rule's port) after another, calculation → kernel, p50/p99; then,
//! on two nodes, iperf3 TCP pod → pod and TCP connects per second with those policies (the
//! server pod selected by 5 of them, 50 rules on its new-connection path, allowed by a sixth)
//! against the same cluster without policy, rounds interleaved.
//!
//! Goals: programming ≤ 1 × iptables-restore; one change p99 < 50 ms; iperf3 ≥ 0.95 × and
//! connects/s ≥ 0.9 × no policy.
//!
//! `cargo bench -p brindle-dataplane --bench policy [-- ROUNDS CHANGES SECONDS]` (SECONDS 0:
//! no traffic part).

#[path = "../tests/common/mod.rs"]
mod common;

use std::io::Write;
use std::net::{IpAddr, Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::process::Stdio;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use brindle_dataplane::{EncapMode, HostFirewall, PolicyConfig, PolicyDataplane};
use brindle_model::resources::WorkloadEndpoint;
use brindle_netlink::NetnsFd;
use brindle_policy::PolicyCalculator;
use brindle_policy::ir::{Settings, State};
use brindle_testkit::{Daemon, Netns, TempDir};
use common::policy::{labels, namespace_profile, network_policy, workload_endpoint};
use common::{Cluster, Modes, iperf_gbps, median};

const NAMESPACES: usize = 20;
const PODS: usize = 10;
const POLICIES: usize = 50;
const RULES: usize = 10;

/// A pod that exists (its interface and address are real).
struct RealPod {
    node: usize,
    name: &'static str,
    labels: &'static [(&'static str, &'static str)],
    ip: Ipv4Addr,
    iface: String,
}

fn wep(node: &str, ns: &str, name: &str, l: &[(&str, &str)], ip: Ipv4Addr, iface: &str) -> WorkloadEndpoint {
    workload_endpoint(node, ns, name, &labels(l), ip, iface)
}

fn policy_rules(m: usize, port_shift: usize) -> String {
    let mut y = String::new();
    for r in 0..RULES {
        y.push_str(&format!(
            "- action: Allow\n  protocol: TCP\n  source:\n    selector: role == 'r{}'\n  destination:\n    ports: [{}]\n",
            (m + r) % 20,
            1000 + (m * RULES + r + port_shift) % 20000
        ));
    }
    y
}

/// Feeds `calc` the synthetic cluster: on every node 200 pods (with their WorkloadEndpoints,
/// as the CNI plugin writes them), 1000 policies, and the real pods.
fn synthetic(calc: &mut PolicyCalculator, nodes: &[&str], real: &[RealPod]) {
    for ns in 0..NAMESPACES {
        calc.upsert_profile(&namespace_profile(&format!("ns{ns}")))
            .unwrap();
    }
    for (k, node) in nodes.iter().enumerate() {
        for ns in 0..NAMESPACES {
            for i in 0..PODS {
                let role = format!("r{}", (i + ns) % 20);
                let app = format!("app{i}");
                let ip = Ipv4Addr::new(10, 100 + k as u8, ns as u8, i as u8 + 1);
                let iface = format!("calib{k}n{ns:02}p{i:02}");
                let w = wep(
                    node,
                    &format!("ns{ns}"),
                    &format!("p{i}"),
                    &[("app", &app), ("role", &role)],
                    ip,
                    &iface,
                );
                calc.upsert_workload_endpoint(&w).unwrap();
            }
        }
    }
    for p in real {
        let w = wep(nodes[p.node], "ns0", p.name, p.labels, p.ip, &p.iface);
        calc.upsert_workload_endpoint(&w).unwrap();
    }
    for ns in 0..NAMESPACES {
        for m in 0..POLICIES {
            let mut p = network_policy(
                &format!("ns{ns}"),
                &format!("p{m}"),
                &format!("app == 'app{}'", m % PODS),
                Some(&policy_rules(m, 0)),
                None,
            );
            p.order = Some(100.0 + m as f64);
            calc.upsert_policy(p).unwrap();
        }
    }
    let mut allow = network_policy(
        "ns0",
        "allow-client",
        "app == 'app0'",
        Some("- action: Allow\n  source:\n    selector: role == 'client'\n"),
        None,
    );
    allow.order = Some(10_000.0);
    calc.upsert_policy(allow).unwrap();
}

/// CPU seconds (user, system) of this process, or of its waited-for children.
fn cpu_split(children: bool) -> (f64, f64) {
    // SAFETY: getrusage fills the struct it is given.
    let mut u: libc::rusage = unsafe { std::mem::zeroed() };
    unsafe {
        libc::getrusage(
            if children {
                libc::RUSAGE_CHILDREN
            } else {
                libc::RUSAGE_SELF
            },
            &mut u,
        )
    };
    let tv = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    (tv(u.ru_utime), tv(u.ru_stime))
}

/// Wall time and CPU time of `program < input` in a fresh namespace.
fn timed_stdin(program: &str, args: &[&str], input: &str) -> (f64, f64) {
    let ns = Netns::new("pba");
    let mut c = ns.cmd(program);
    c.args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    let (u0, s0) = cpu_split(true);
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
    let (u1, s1) = cpu_split(true);
    eprintln!("  {program} CPU: user {:.3} s, system {:.3} s", u1 - u0, s1 - s0);
    (took, u1 - u0 + s1 - s0)
}

fn policy_on() -> PolicyConfig {
    PolicyConfig {
        enabled: true,
        ..PolicyConfig::default()
    }
}

fn pct(v: &[f64], p: f64) -> f64 {
    let mut s = v.to_vec();
    s.sort_by(|a, b| a.partial_cmp(b).unwrap());
    if s.is_empty() {
        return f64::NAN;
    }
    s[((s.len() as f64 - 1.0) * p).round() as usize]
}

/// Connects per second from `from` to `to` for `secs` (each connection closed with a reset).
fn connect_rate(from: &Netns, to: SocketAddr, secs: f64) -> f64 {
    from.spawn_in(move || {
        let t = Instant::now();
        let mut n = 0u64;
        while t.elapsed().as_secs_f64() < secs {
            let s = TcpStream::connect_timeout(&to, Duration::from_secs(2)).expect("connect");
            let _ = socket2::SockRef::from(&s).set_linger(Some(Duration::ZERO));
            n += 1;
        }
        n as f64 / t.elapsed().as_secs_f64()
    })
    .join()
    .unwrap()
}

/// A server in `ns` that accepts and drops connections until `stop`.
fn accept_loop(ns: &Netns, port: u16, stop: Arc<AtomicBool>) {
    let (tx, rx) = std::sync::mpsc::channel();
    ns.spawn_in(move || {
        let l = TcpListener::bind(("0.0.0.0", port)).unwrap();
        l.set_nonblocking(true).unwrap();
        tx.send(()).unwrap();
        while !stop.load(Ordering::Relaxed) {
            match l.accept() {
                Ok((s, _)) => drop(s),
                Err(_) => std::thread::sleep(Duration::from_micros(200)),
            }
        }
    });
    rx.recv().unwrap();
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).filter(|a| !a.starts_with('-')).collect();
    let rounds: usize = args.first().and_then(|s| s.parse().ok()).unwrap_or(5);
    let changes: usize = args.get(1).and_then(|s| s.parse().ok()).unwrap_or(200);
    let secs: u32 = args.get(2).and_then(|s| s.parse().ok()).unwrap_or(5);
    brindle_testkit::require::command("iptables-restore", "iptables");
    brindle_testkit::require::command("nft", "nftables");

    // --- Programming ------------------------------------------------------------------------
    let t = Instant::now();
    let mut calc = PolicyCalculator::new("bench-node", Settings::default());
    synthetic(&mut calc, &["bench-node", "other-node"], &[]);
    let _ = calc.flush();
    let state: State = calc.state();
    let calc_s = t.elapsed().as_secs_f64();
    let rules: usize = state
        .policies
        .values()
        .map(|p| p.ingress.v4.len() + p.egress.v4.len())
        .sum();
    println!(
        "policy state: {} policies ({} v4 rules), {} profiles, {} local endpoints, {} sets; calculation {:.0} ms",
        state.policies.len(),
        rules,
        state.profiles.len(),
        state.endpoints.len(),
        state.sets.len(),
        calc_s * 1e3
    );
    let (ipt, nft) = brindle_testkit::anchors::flat_ruleset(NAMESPACES * POLICIES, RULES);
    let (mut ours, mut ipts, mut nfts) = (Vec::new(), Vec::new(), Vec::new());
    let (mut ours_cpu, mut ipts_cpu, mut nfts_cpu) = (Vec::new(), Vec::new(), Vec::new());
    let mut kept = None;
    for r in 0..rounds {
        let rss0 = brindle_testkit::process::rss_kib(std::process::id());
        let ns = Netns::new("pbp");
        let mut pd = PolicyDataplane::open(&NetnsFd::named(ns.name()).unwrap(), policy_on()).unwrap();
        pd.set_host(&HostFirewall::default()).unwrap();
        let st = state.clone();
        let (u0, s0) = cpu_split(false);
        let t = Instant::now();
        let w = pd.resync(st).unwrap();
        let took = t.elapsed().as_secs_f64();
        let (u1, s1) = cpu_split(false);
        eprintln!("  brindle CPU: user {:.3} s, system {:.3} s", u1 - u0, s1 - s0);
        ours_cpu.push(u1 - u0 + s1 - s0);
        if r == 0 {
            let c = &w.changes;
            println!(
                "programmed: {} chains, {} rules, {} sets, {} elements in one transaction; the PolicyDataplane holding it (with the state) grew RSS by {} KiB",
                c.chains_created,
                c.rules_written,
                c.sets_created,
                c.elements_added,
                brindle_testkit::process::rss_kib(std::process::id()).saturating_sub(rss0)
            );
        }
        let tm = &w.timings;
        eprintln!(
            "  resync: render {:.0} ms, read back {:.0} ms, plan {:.0} ms, commit {:.0} ms",
            tm.render.as_secs_f64() * 1e3,
            tm.read.as_secs_f64() * 1e3,
            tm.plan.as_secs_f64() * 1e3,
            tm.commit.as_secs_f64() * 1e3
        );
        ours.push(took);
        let (w, c) = timed_stdin("iptables-restore", &[], &ipt);
        ipts.push(w);
        ipts_cpu.push(c);
        let (w, c) = timed_stdin("nft", &["-f", "-"], &nft);
        nfts.push(w);
        nfts_cpu.push(c);
        eprintln!(
            "round {r}: brindle {:.3} s ({:.3} s CPU), iptables-restore {:.3} s ({:.3}), nft -f {:.3} s ({:.3})",
            ours[r], ours_cpu[r], ipts[r], ipts_cpu[r], nfts[r], nfts_cpu[r]
        );
        kept = Some((ns, pd));
    }
    // Where the time goes: rendering and planning (pure, best of 3), then the kernel's commit.
    let (mut render_s, mut plan_s) = (f64::MAX, f64::MAX);
    let mut batch = None;
    let mut exprs = 0;
    for _ in 0..3 {
        let t = Instant::now();
        let d = brindle_dataplane::policy::render::all(&policy_on(), &HostFirewall::default(), Some(&state));
        render_s = render_s.min(t.elapsed().as_secs_f64());
        let t = Instant::now();
        let (b, _) = brindle_dataplane::firewall::plan(
            "brindle",
            &Default::default(),
            &d.content,
            brindle_dataplane::firewall::Scope::All,
        );
        plan_s = plan_s.min(t.elapsed().as_secs_f64());
        batch = Some(b);
        exprs = d
            .content
            .values()
            .flat_map(|t| t.chains.values())
            .flat_map(|c| c.rules.iter())
            .map(|r| r.exprs.len())
            .sum::<usize>();
    }
    let batch = batch.expect("planned");
    let ns = Netns::new("pbc");
    let mut nl = brindle_netlink::nftables::Nft::open(&NetnsFd::named(ns.name()).unwrap()).unwrap();
    let t = Instant::now();
    nl.commit(&batch, None).unwrap();
    let commit_s = t.elapsed().as_secs_f64();
    println!(
        "  of which: render {:.0} ms, plan and encode {:.0} ms ({} messages, {} expressions, {} KiB), kernel commit {:.0} ms",
        render_s * 1e3,
        plan_s * 1e3,
        batch.len(),
        exprs,
        batch.bytes() / 1024,
        commit_s * 1e3
    );
    drop(ns);
    let (o, i, n) = (median(&mut ours), median(&mut ipts), median(&mut nfts));
    let (oc, ic, nc) = (
        median(&mut ours_cpu),
        median(&mut ipts_cpu),
        median(&mut nfts_cpu),
    );
    println!("programming 1000 policies × 10 rules, 200 endpoints (median of {rounds}; wall, CPU):");
    println!("  brindle (netlink, one transaction) {o:.3} s  {oc:.3} s");
    println!("  iptables-restore, flat 10k rules   {i:.3} s  {ic:.3} s");
    println!("  nft -f, flat 10k rules             {n:.3} s  {nc:.3} s");
    println!(
        "  brindle / iptables-restore = {:.2} wall, {:.2} CPU (goal ≤ 1.00)",
        o / i,
        oc / ic
    );
    println!(
        "  brindle / nft -f           = {:.2} wall, {:.2} CPU",
        o / n,
        oc / nc
    );
    println!("  with the calculation: {:.3} s", o + calc_s);

    // --- One change at a time -----------------------------------------------------------------
    let (_ns, mut pd) = kept.expect("a round ran");
    let mut to_kernel = Vec::new();
    let mut calc_only = Vec::new();
    let (mut plans, mut commits, mut cpus) = (Vec::new(), Vec::new(), Vec::new());
    for k in 0..changes {
        let (ns, m) = (k % NAMESPACES, (k * 7) % POLICIES);
        let mut p = network_policy(
            &format!("ns{ns}"),
            &format!("p{m}"),
            &format!("app == 'app{}'", m % PODS),
            Some(&policy_rules(m, k + 1)),
            None,
        );
        p.order = Some(100.0 + m as f64);
        let (u0, s0) = cpu_split(false);
        let t = Instant::now();
        calc.upsert_policy(p).unwrap();
        let delta = calc.flush();
        let c = t.elapsed().as_secs_f64();
        let w = pd.apply(&delta).unwrap();
        let (u1, s1) = cpu_split(false);
        cpus.push(u1 - u0 + s1 - s0);
        assert!(
            w.refused.is_none() && w.changes.chains_rewritten == 1,
            "{:?}",
            w.changes
        );
        to_kernel.push(t.elapsed().as_secs_f64());
        calc_only.push(c);
        plans.push(w.timings.plan.as_secs_f64());
        commits.push(w.timings.commit.as_secs_f64());
    }
    println!(
        "one policy change, calculation → kernel ({changes} changes): p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms (goal p99 < 50 ms); calculation alone p99 {:.1} ms",
        pct(&to_kernel, 0.5) * 1e3,
        pct(&to_kernel, 0.99) * 1e3,
        pct(&to_kernel, 1.0) * 1e3,
        pct(&calc_only, 0.99) * 1e3
    );
    println!(
        "  of which plan p50 {:.2} ms, kernel commit p50 {:.2} ms, p99 {:.1} ms; CPU per change p50 {:.1} ms, p99 {:.1} ms (the rest is waiting for a CPU)",
        pct(&plans, 0.5) * 1e3,
        pct(&commits, 0.5) * 1e3,
        pct(&commits, 0.99) * 1e3,
        pct(&cpus, 0.5) * 1e3,
        pct(&cpus, 0.99) * 1e3
    );

    // --- Traffic --------------------------------------------------------------------------------
    if secs == 0 {
        return;
    }
    brindle_testkit::require::command("iperf3", "iperf3");
    let none = Modes {
        ipip: EncapMode::Never,
        vxlan: EncapMode::Never,
    };
    let dir = TempDir::new("dp-policy-bench");
    let mut setups = Vec::new();
    for (label, with_policy) in [("no policy", false), ("1000 policies", true)] {
        let mut c = Cluster::new(2, false, none);
        c.add_pod(0);
        c.add_pod(1);
        let mut dps = Vec::new();
        let names: Vec<String> = c.nodes.iter().map(|n| n.name.clone()).collect();
        let real = [
            RealPod {
                node: 0,
                name: "client",
                labels: &[("app", "client"), ("role", "client")],
                ip: c.nodes[0].pods[0].ip,
                iface: c.nodes[0].pods[0].iface.clone(),
            },
            RealPod {
                node: 1,
                name: "server",
                labels: &[("app", "app0"), ("role", "server")],
                ip: c.nodes[1].pods[0].ip,
                iface: c.nodes[1].pods[0].iface.clone(),
            },
        ];
        for i in 0..2 {
            let h = brindle_netlink::Handle::open_named(c.nodes[i].ns.name()).unwrap();
            let mut cfg = c.config(i);
            if with_policy {
                cfg.policy = policy_on();
            }
            let (mut dp, rep) = brindle_dataplane::Dataplane::start(h, cfg, &c.desired(i)).unwrap();
            assert!(rep.errors.is_empty(), "{:?}", rep.errors);
            if with_policy {
                let mut calc = PolicyCalculator::new(names[i].clone(), Settings::default());
                let refs: Vec<&str> = names.iter().map(|s| s.as_str()).collect();
                synthetic(&mut calc, &refs, &real);
                let _ = calc.flush();
                dp.policy().resync(calc.state()).unwrap();
            }
            dps.push(dp);
        }
        let server_ip = c.nodes[1].pods[0].ip;
        assert!(
            common::ping(&c.nodes[0].pods[0].ns, &server_ip.to_string()),
            "{label}: no connectivity"
        );
        let iperf = {
            let mut cmd = c.nodes[1].pods[0].ns.cmd("iperf3");
            cmd.args(["-s"]);
            Daemon::spawn(
                &format!("iperf3-{}", setups.len()),
                cmd,
                &dir.join(&format!("{}.log", setups.len())),
            )
        };
        let stop = Arc::new(AtomicBool::new(false));
        accept_loop(&c.nodes[1].pods[0].ns, 8080, stop.clone());
        setups.push((label, c, dps, iperf, stop, Vec::new(), Vec::new()));
    }
    std::thread::sleep(Duration::from_millis(500));
    for r in 0..rounds {
        for (label, c, _, _, _, gbps, _) in setups.iter_mut() {
            let server = c.nodes[1].pods[0].ip;
            let out = c.nodes[0].pods[0]
                .ns
                .cmd("iperf3")
                .args([
                    "-c",
                    &server.to_string(),
                    "-t",
                    &secs.to_string(),
                    "-O",
                    "1",
                    "-J",
                ])
                .output()
                .unwrap();
            let g = iperf_gbps(&String::from_utf8_lossy(&out.stdout));
            eprintln!("round {r} {label}: {g:.2} Gbit/s");
            gbps.push(g);
        }
        // Connects in short alternating slices, so both setups see the same machine load.
        let mut counts = [0.0f64; 2];
        for _ in 0..10 {
            for (i, (_, c, _, _, _, _, _)) in setups.iter().enumerate() {
                let server = SocketAddr::new(IpAddr::V4(c.nodes[1].pods[0].ip), 8080);
                counts[i] += connect_rate(&c.nodes[0].pods[0].ns, server, 0.3);
            }
        }
        for (i, (label, _, _, _, _, _, cps)) in setups.iter_mut().enumerate() {
            let rate = counts[i] / 10.0;
            eprintln!("round {r} {label}: {rate:.0} connects/s");
            cps.push(rate);
        }
    }
    println!("pod → pod across nodes (no encapsulation), {rounds} interleaved rounds, median:");
    let mut med = Vec::new();
    for (label, _, _, _, _, gbps, cps) in setups.iter_mut() {
        let (g, c) = (median(gbps), median(cps));
        println!("  {label:<14} iperf3 {g:6.2} Gbit/s   TCP connects {c:7.0}/s");
        med.push((g, c));
    }
    println!(
        "  1000 policies / no policy: iperf3 {:.2} (goal ≥ 0.95), connects/s {:.2} (goal ≥ 0.90)",
        med[1].0 / med[0].0,
        med[1].1 / med[0].1
    );
    for (_, _, _, iperf, stop, _, _) in setups.iter_mut() {
        stop.store(true, Ordering::Relaxed);
        iperf.kill();
    }
}
