//! Programming N block routes (default 100 000): Brindle's route reconciler vs the anchors, run
//! interleaved in one namespace of our own on this machine, IPv4 then IPv6.
//!
//! IPv4 (N × /24 via a gateway):
//! - raw netlink from Python (512 RTM_NEWROUTE per sendmsg, one ACK at the end): the anchors'
//!   script, which is not part of the repository; its path is `BRINDLE_BENCH_NL_ROUTES`;
//! - `ip -batch` (one request + ACK per route);
//! - BIRD 2 static routes exported by its kernel protocol.
//!
//! (The anchors were first measured in a fixed namespace; the shared machine rules want unique
//! names, so the same methods run here in a unique namespace.)
//!
//! - raw netlink in-process ([`raw`]: the same method, no Python), for the comparison with IPv6.
//!
//! IPv6 (N × /122 via a gateway, Calico's IPv6 block size; the routes `proto bird metric 1024`
//! as BIRD6 installs them): Brindle's reconcile and batched apply vs the in-process raw netlink.
//!
//! Brindle is measured twice: the whole reconcile (dump the table, plan, batched apply) and the
//! batched apply alone. Goal: reconcile ≤ 1.2 × raw netlink, in both families.
//!
//! `cargo bench -p brindle-dataplane --bench routes [-- N ROUNDS [4|6]]`, with
//! `BRINDLE_BENCH_NL_ROUTES` set unless only IPv6 runs.

mod raw;

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::process::Command;
use std::time::{Duration, Instant};

use brindle_dataplane::routes::{self, Ownership};
use brindle_netlink::{Handle, Route, RouteOp, proto};
use brindle_testkit::{Netns, TempDir};
use ipnet::{IpNet, Ipv4Net, Ipv6Net};

/// The raw-netlink anchor script (`--n N --gw GW --dev DEV`, prints JSON with `total_s`).
fn nl_routes_script() -> String {
    std::env::var("BRINDLE_BENCH_NL_ROUTES").unwrap_or_else(|_| {
        panic!("BRINDLE_BENCH_NL_ROUTES is not set: give the path of the raw-netlink anchor script")
    })
}

fn prefix(i: usize) -> Ipv4Net {
    let p = (11u32 << 24) + ((i as u32) << 8);
    Ipv4Net::new(Ipv4Addr::from(p), 24).unwrap()
}

/// The i-th IPv6 block: fd00:11::/32 cut into /122s.
fn prefix6(i: usize) -> Ipv6Net {
    let base = u128::from("fd00:11::".parse::<Ipv6Addr>().unwrap());
    Ipv6Net::new(Ipv6Addr::from(base + ((i as u128) << 6)), 122).unwrap()
}

fn count(ns: &Netns) -> usize {
    ns.ip(&["-4", "route", "show", "table", "main"])
        .lines()
        .filter(|l| !l.starts_with("10.99."))
        .count()
}

fn count6(ns: &Netns) -> usize {
    ns.ip(&["-6", "route", "show", "table", "main"])
        .lines()
        .filter(|l| l.starts_with("fd00:11:"))
        .count()
}

fn flush(ns: &Netns) {
    for p in ["boot", "static", "bird"] {
        let _ = ns.cmd("ip").args(["route", "flush", "proto", p]).output();
    }
    assert_eq!(count(ns), 0, "flush left routes");
}

fn flush6(ns: &Netns) {
    for p in ["boot", "static", "bird"] {
        let _ = ns.cmd("ip").args(["-6", "route", "flush", "proto", p]).output();
    }
    assert_eq!(count6(ns), 0, "flush left IPv6 routes");
}

/// User CPU seconds of this thread (our own work; the kernel's route inserts are system time).
fn user_cpu() -> f64 {
    // SAFETY: getrusage fills the struct we pass.
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    unsafe { libc::getrusage(libc::RUSAGE_THREAD, &mut ru) };
    ru.ru_utime.tv_sec as f64 + ru.ru_utime.tv_usec as f64 / 1e6
}

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    v[v.len() / 2]
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).filter(|a| !a.starts_with('-')).collect();
    let n: usize = args.first().and_then(|s| s.parse().ok()).unwrap_or(100_000);
    let rounds: usize = args.get(1).and_then(|s| s.parse().ok()).unwrap_or(5);
    let family = args.get(2).map(String::as_str).unwrap_or("both");
    // Checked before any namespace is made; the IPv4 run needs the anchor script.
    let script = (family != "6").then(nl_routes_script);
    let a = Netns::new("dpba");
    let b = Netns::new("dpbb");
    a.veth("bva", &b, "bvb");
    a.ip(&["addr", "add", "10.99.0.1/30", "dev", "bva"]);
    b.ip(&["addr", "add", "10.99.0.2/30", "dev", "bvb"]);
    a.ip(&["-6", "addr", "add", "fd99::1/64", "dev", "bva", "nodad"]);
    b.ip(&["-6", "addr", "add", "fd99::2/64", "dev", "bvb", "nodad"]);
    a.ip(&["link", "set", "bva", "up"]);
    b.ip(&["link", "set", "bvb", "up"]);
    let mut h = Handle::open_named(b.name()).unwrap();
    let dev = h.require_link("bvb").unwrap().index;
    let v4 = script.map(|s| bench_v4(&b, &mut h, dev, n, rounds, &s));
    if family != "4" {
        bench_v6(&b, &mut h, dev, n, rounds, v4);
    }
}

/// One round of Brindle's measurements, in seconds.
struct Round {
    /// A full reconcile from an empty table (dump, plan, batched apply).
    reconcile: f64,
    /// User-space CPU of that reconcile.
    user: f64,
    /// The pure planning step alone, against a full table (a resync).
    plan: f64,
    /// The batched apply alone.
    apply: f64,
}

/// Measures a [`Round`] for `desired` (`count` reads the table, `flush` empties it).
fn brindle_round(
    h: &mut Handle,
    desired: &[Route],
    own: &Ownership,
    count: &dyn Fn() -> usize,
    flush: &dyn Fn(),
) -> Round {
    let n = desired.len();
    let t = Instant::now();
    let u = user_cpu();
    let rep = routes::reconcile(h, desired, own, true).unwrap();
    let reconcile = t.elapsed().as_secs_f64();
    let user = user_cpu() - u;
    assert!(
        rep.errors.is_empty() && rep.replaced == n,
        "{:?}",
        &rep.errors[..rep.errors.len().min(3)]
    );
    assert_eq!(count(), n);
    let actual = h.routes(Some(brindle_netlink::TABLE_MAIN)).unwrap();
    let t = Instant::now();
    let names = h.link_names().unwrap();
    let p = routes::plan(
        desired,
        &actual,
        &|r| own.owns(r, &|i| names.get(&i).cloned()),
        true,
    );
    let plan = t.elapsed().as_secs_f64();
    assert!(
        p.ops.is_empty(),
        "a full table still plans {} changes",
        p.ops.len()
    );
    flush();
    let ops: Vec<RouteOp> = desired.iter().cloned().map(RouteOp::Add).collect();
    let t = Instant::now();
    h.apply_routes(&ops).unwrap();
    let apply = t.elapsed().as_secs_f64();
    assert_eq!(count(), n);
    flush();
    Round {
        reconcile,
        user,
        plan,
        apply,
    }
}

/// The IPv4 rounds; returns the median reconcile time.
fn bench_v4(b: &Netns, h: &mut Handle, dev: u32, n: usize, rounds: usize, script: &str) -> f64 {
    let gw = IpAddr::V4("10.99.0.1".parse().unwrap());
    let desired: Vec<Route> = (0..n)
        .map(|i| Route::via(IpNet::V4(prefix(i)), gw, dev).with_protocol(proto::BIRD))
        .collect();
    let dir = TempDir::new("dp-bench");
    let batch = dir.join("routes.batch");
    std::fs::write(
        &batch,
        (0..n)
            .map(|i| format!("route add {} via 10.99.0.1 dev bvb\n", prefix(i)))
            .collect::<String>(),
    )
    .unwrap();
    let bird_conf = dir.join("bird.conf");
    let mut conf = String::from(
        "router id 10.99.0.2;\nprotocol device { scan time 10; }\nprotocol kernel k4 { ipv4 { import none; export all; }; scan time 60; }\nprotocol static s4 { ipv4;\n",
    );
    for i in 0..n {
        conf.push_str(&format!("  route {} via 10.99.0.1;\n", prefix(i)));
    }
    conf.push_str("}\n");
    std::fs::write(&bird_conf, conf).unwrap();
    let have_bird = Command::new("sh")
        .args(["-c", "command -v bird"])
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false);

    let own = Ownership::default();
    let (mut t_rec, mut t_plan, mut t_apply, mut t_py, mut t_ip, mut t_bird) =
        (vec![], vec![], vec![], vec![], vec![], vec![]);
    let mut t_raw = vec![];
    let nets: Vec<IpNet> = (0..n).map(|i| IpNet::V4(prefix(i))).collect();
    let mut t_user = vec![];
    flush(b);
    for r in 0..rounds {
        let m = brindle_round(h, &desired, &own, &|| count(b), &|| flush(b));
        t_rec.push(m.reconcile);
        t_user.push(m.user);
        t_plan.push(m.plan);
        t_apply.push(m.apply);
        // Raw netlink anchor (Python, time spent in the kernel calls as it reports it).
        let out = b
            .cmd("python3")
            .args([script, "--n", &n.to_string(), "--gw", "10.99.0.1", "--dev", "bvb"])
            .output()
            .unwrap();
        let j = String::from_utf8_lossy(&out.stdout).to_string();
        let total: f64 = j
            .split("\"total_s\": ")
            .nth(1)
            .and_then(|s| s.split(',').next())
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| {
                panic!(
                    "raw-netlink anchor script: {j} {}",
                    String::from_utf8_lossy(&out.stderr)
                )
            });
        t_py.push(total);
        assert_eq!(count(b), n);
        flush(b);
        // Raw netlink, in-process.
        let (secs, refused) = raw::install(&b.path(), &nets, gw, dev);
        assert_eq!(refused, 0);
        t_raw.push(secs);
        assert_eq!(count(b), n);
        flush(b);
        // ip -batch anchor.
        let t = Instant::now();
        b.run("ip", &["-batch", batch.to_str().unwrap()]);
        t_ip.push(t.elapsed().as_secs_f64());
        flush(b);
        // BIRD static → kernel anchor (from BIRD answering on its socket to N routes in the kernel).
        if have_bird {
            let ctl = dir.join("bird.ctl");
            let mut child = b
                .cmd("bird")
                .args([
                    "-f",
                    "-c",
                    bird_conf.to_str().unwrap(),
                    "-s",
                    ctl.to_str().unwrap(),
                ])
                .stdout(std::process::Stdio::null())
                .stderr(std::process::Stdio::null())
                .spawn()
                .unwrap();
            while !Command::new("birdc")
                .args(["-s", ctl.to_str().unwrap(), "show", "status"])
                .output()
                .map(|o| o.status.success())
                .unwrap_or(false)
            {
                std::thread::sleep(Duration::from_millis(10));
            }
            let t = Instant::now();
            let last = prefix(n - 1).to_string();
            while b.ip(&["route", "show", "exact", &last]).trim().is_empty() || count(b) < n {
                std::thread::sleep(Duration::from_millis(20));
            }
            t_bird.push(t.elapsed().as_secs_f64());
            // SAFETY: kill(2) on our own child's PID.
            unsafe { libc::kill(child.id() as i32, libc::SIGKILL) };
            let _ = child.wait();
            flush(b);
        }
        eprintln!(
            "v4 round {r}: reconcile {:.3}s (plan of a full table {:.3}s) apply {:.3}s raw-netlink {:.3}s (in-process {:.3}s) ip-batch {:.3}s bird {}",
            t_rec[r],
            t_plan[r],
            t_apply[r],
            t_py[r],
            t_raw[r],
            t_ip[r],
            t_bird.get(r).map(|t| format!("{t:.3}s")).unwrap_or("-".into())
        );
    }
    let (rec, app, py, ip) = (
        median(&mut t_rec),
        median(&mut t_apply),
        median(&mut t_py),
        median(&mut t_ip),
    );
    println!("routes: {n} × /24 via gw dev, {rounds} interleaved rounds, medians (s):");
    println!(
        "  brindle reconcile (dump+plan+batch) {rec:.3}   ratio to raw netlink {:.2}",
        rec / py
    );
    println!(
        "    of which user-space CPU (encode, plan, parse) {:.3}",
        median(&mut t_user)
    );
    println!(
        "  brindle apply_routes (batch only)   {app:.3}   ratio to raw netlink {:.2}",
        app / py
    );
    println!("  raw netlink (Python script)         {py:.3}");
    let raw = median(&mut t_raw);
    println!(
        "  raw netlink (in-process)            {raw:.3}   reconcile / it {:.2}",
        rec / raw
    );
    println!(
        "  ip -batch                           {ip:.3}   ratio {:.2}",
        ip / py
    );
    if !t_bird.is_empty() {
        let bird = median(&mut t_bird);
        println!(
            "  BIRD 2 static → kernel              {bird:.3}   ratio {:.2}",
            bird / py
        );
    }
    println!(
        "  goal: reconcile ≤ 1.2 × raw netlink: {}",
        if rec <= 1.2 * py { "met" } else { "NOT met" }
    );
    rec
}

/// The IPv6 rounds (`v4`: the IPv4 reconcile median of this run, for the comparison).
fn bench_v6(b: &Netns, h: &mut Handle, dev: u32, n: usize, rounds: usize, v4: Option<f64>) {
    let gw: IpAddr = "fd99::1".parse().unwrap();
    let nets: Vec<IpNet> = (0..n).map(|i| IpNet::V6(prefix6(i))).collect();
    let desired: Vec<Route> = nets
        .iter()
        .map(|d| Route::via(*d, gw, dev).with_protocol(proto::BIRD).normalized())
        .collect();
    let own = Ownership::default();
    let (mut t_rec, mut t_plan, mut t_apply, mut t_raw, mut t_user) =
        (vec![], vec![], vec![], vec![], vec![]);
    flush6(b);
    for r in 0..rounds {
        let m = brindle_round(h, &desired, &own, &|| count6(b), &|| flush6(b));
        t_rec.push(m.reconcile);
        t_user.push(m.user);
        t_plan.push(m.plan);
        t_apply.push(m.apply);
        let (secs, refused) = raw::install(&b.path(), &nets, gw, dev);
        assert_eq!(refused, 0);
        t_raw.push(secs);
        assert_eq!(count6(b), n);
        flush6(b);
        eprintln!(
            "v6 round {r}: reconcile {:.3}s (plan of a full table {:.3}s) apply {:.3}s raw-netlink {:.3}s",
            t_rec[r], t_plan[r], t_apply[r], t_raw[r]
        );
    }
    let (rec, app, raw) = (median(&mut t_rec), median(&mut t_apply), median(&mut t_raw));
    println!("routes: {n} × IPv6 /122 via gw dev, {rounds} interleaved rounds, medians (s):");
    println!(
        "  brindle reconcile (dump+plan+batch) {rec:.3}   ratio to raw netlink {:.2}",
        rec / raw
    );
    println!(
        "    of which user-space CPU (encode, plan, parse) {:.3}; plan of a full table {:.3}",
        median(&mut t_user),
        median(&mut t_plan)
    );
    println!(
        "  brindle apply_routes (batch only)   {app:.3}   ratio to raw netlink {:.2}",
        app / raw
    );
    println!("  raw netlink (in-process)            {raw:.3}");
    if let Some(v4) = v4 {
        println!("  IPv6 reconcile / IPv4 reconcile     {:.2}", rec / v4);
    }
    println!(
        "  goal: reconcile ≤ 1.2 × raw netlink: {}",
        if rec <= 1.2 * raw { "met" } else { "NOT met" }
    );
}
