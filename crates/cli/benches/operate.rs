//! Operating figures (issue 15), run as root. `cargo bench` builds the agent in the bench
//! profile (release), so these are release-build figures.
//!
//! - `rss`: the seed lab (3 nodes × 2 pods, IPIP), converged and settled; each agent's RSS,
//!   median and max. Goal < 30 MiB (calico-node: 250–560 MiB, projectcalico/calico issues
//!   #2703, #3820, #4129).
//! - `scrape [NODES] [N]`: on bgp-master1 of a NODES-node lab (default 100, 2 pods per node, so
//!   its `/metrics` carries NODES-1 BGP peers), the agent's CPU for one scrape of `/metrics`:
//!   N scrapes (default 100) 1.1 s apart, so each is a fresh render (the agent reuses a render
//!   for 1 s), each measured over all the agent's threads (`/proc/PID/task/*/schedstat`), and
//!   user+sys from `/proc/PID/stat` across all N minus the agent's idle CPU over the same wall
//!   time just before. Anchors from the same run: N back-to-back scrapes (served from the
//!   cache: the HTTP stack and 190 KB of body) and N `GET /readiness`.
//!
//! `cargo bench -p brindle --bench operate [-- rss | scrape 100 100]` (both by default).

use std::io::{Read as _, Write as _};
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::time::{Duration, Instant};

use brindle_lab::progress::{Quiet, Stderr};
use brindle_lab::{Lab, LabSpec};
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

fn up(prefix: &str, nodes: usize, root: &TempDir) -> Guard {
    let spec = LabSpec {
        name: names::unique(prefix),
        nodes,
        pods: 2,
        ..Default::default()
    };
    let t0 = Instant::now();
    let lab = Lab::up_in(root.path(), spec, Path::new(BIN), &Stderr::default()).expect("lab up");
    eprintln!("{nodes}-node lab up in {:.1} s", t0.elapsed().as_secs_f64());
    Guard(Some(lab))
}

/// `(node, pid)` of every live agent.
fn agents(lab: &Lab) -> Vec<(String, u32)> {
    lab.state()
        .processes
        .iter()
        .filter(|p| p.role.starts_with("agent ") && p.is_alive())
        .map(|p| (p.role.trim_start_matches("agent ").to_string(), p.pid as u32))
        .collect()
}

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}

fn rss() {
    let root = TempDir::new("benchop");
    let g = up("or", 3, &root);
    let lab = g.0.as_ref().expect("lab");
    // Converged (lab up returns once every route and session is there); let start-up garbage
    // (listings, first resync) be returned before measuring.
    std::thread::sleep(Duration::from_secs(5));
    let mut rss: Vec<(String, f64)> = agents(lab)
        .into_iter()
        .map(|(n, pid)| (n, brindle_testkit::process::rss_kib(pid) as f64 / 1024.0))
        .collect();
    rss.sort_by(|a, b| a.0.cmp(&b.0));
    let mut v: Vec<f64> = rss.iter().map(|r| r.1).collect();
    let max = v.iter().cloned().fold(0.0, f64::max);
    println!("\n== agent RSS, seed lab (3 nodes x 2 pods, IPIP), release build ==");
    for (n, r) in &rss {
        println!("{n:<14} {r:>6.1} MiB");
    }
    println!(
        "median {:.1} MiB, max {max:.1} MiB (goal < 30 MiB; calico-node 250-560 MiB)",
        median(&mut v)
    );
}

/// user+sys clock ticks of `pid` (every thread, also those that ended).
fn cpu_ticks(pid: u32) -> u64 {
    let s = std::fs::read_to_string(format!("/proc/{pid}/stat")).expect("read /proc/PID/stat");
    // Fields after the command name (which may hold spaces) start at `state`, field 3.
    let rest = &s[s.rfind(')').expect("stat") + 2..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    f[11].parse::<u64>().unwrap() + f[12].parse::<u64>().unwrap()
}

fn tick_ms() -> f64 {
    // SAFETY: sysconf has no preconditions.
    1000.0 / unsafe { libc::sysconf(libc::_SC_CLK_TCK) } as f64
}

/// One `GET path` on a fresh connection, as Prometheus scrapes; the body.
fn get(addr: SocketAddr, path: &str) -> Vec<u8> {
    let mut s = TcpStream::connect(addr).expect("connect");
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut raw = Vec::new();
    s.read_to_end(&mut raw).unwrap();
    assert!(
        raw.starts_with(b"HTTP/1.1 200"),
        "{path}: {}",
        String::from_utf8_lossy(&raw[..raw.len().min(200)])
    );
    let head = raw.windows(4).position(|w| w == b"\r\n\r\n").expect("headers");
    raw.split_off(head + 4)
}

/// Nanoseconds on CPU of every live thread of `pid` (`/proc/PID/task/*/schedstat`): precise
/// over a short window (a thread that ends inside the window loses its share).
fn cpu_ns(pid: u32) -> u64 {
    std::fs::read_dir(format!("/proc/{pid}/task"))
        .expect("read /proc/PID/task")
        .filter_map(|t| std::fs::read_to_string(t.ok()?.path().join("schedstat")).ok())
        .filter_map(|s| s.split_whitespace().next()?.parse::<u64>().ok())
        .sum()
}

/// Per-request CPU (ms, from schedstat) of `n` calls of `f`, `gap` apart.
fn per_request(pid: u32, n: usize, gap: Duration, mut f: impl FnMut()) -> Vec<f64> {
    (0..n)
        .map(|_| {
            std::thread::sleep(gap);
            let c0 = cpu_ns(pid);
            f();
            cpu_ns(pid).saturating_sub(c0) as f64 / 1e6
        })
        .collect()
}

fn pct(v: &mut [f64], p: f64) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[((v.len() as f64 - 1.0) * p).round() as usize]
}

fn scrape(nodes: usize, n: usize) {
    let root = TempDir::new("benchop");
    let g = up("os", nodes, &root);
    let lab = g.0.as_ref().expect("lab");
    std::thread::sleep(Duration::from_secs(5));
    let (node, pid) = agents(lab)
        .into_iter()
        .find(|(n, _)| n == "bgp-master1")
        .expect("bgp-master1's agent");
    let ns = lab.plan().node(&node).expect("node").netns.clone();
    let metrics: SocketAddr = "127.0.0.1:9091".parse().unwrap();
    let health: SocketAddr = "127.0.0.1:9099".parse().unwrap();
    let netns = brindle_netlink::NetnsFd::named(&ns).expect("node namespace");
    // The agent reuses a rendered scrape for 1 s: scrapes 1.1 s apart are each a fresh render
    // (what Prometheus, every 15 s, always gets); back-to-back ones are served from the cache.
    let gap = Duration::from_millis(1100);
    let r = netns
        .run(|| {
            let body = String::from_utf8(get(metrics, "/metrics")).expect("utf-8");
            let series = body
                .lines()
                .filter(|l| !l.starts_with('#') && !l.is_empty())
                .count();
            // Whole-process ticks (/proc/PID/stat) over the fresh scrapes, against the same
            // wall time without requests just before.
            let (t0, c0) = (Instant::now(), cpu_ticks(pid));
            std::thread::sleep(gap * n as u32);
            let idle = (t0.elapsed(), cpu_ticks(pid) - c0);
            let (t1, c1) = (Instant::now(), cpu_ticks(pid));
            let fresh = per_request(pid, n, gap, || {
                get(metrics, "/metrics");
            });
            let busy = (t1.elapsed(), cpu_ticks(pid) - c1);
            let cached = per_request(pid, n, Duration::ZERO, || {
                get(metrics, "/metrics");
            });
            let ready = per_request(pid, n, Duration::ZERO, || {
                get(health, "/readiness");
            });
            (body.len(), series, idle, busy, fresh, cached, ready)
        })
        .expect("enter the node's namespace");
    let (size, series, idle, busy, mut fresh, mut cached, mut ready) = r;
    let ms = tick_ms();
    let idle_rate = idle.1 as f64 * ms / idle.0.as_secs_f64();
    let stat_per = (busy.1 as f64 * ms - idle_rate * busy.0.as_secs_f64()) / n as f64;
    println!(
        "\n== /metrics scrape on bgp-master1 of a {nodes}-node lab ({} BGP peers, {} pods), release build ==",
        nodes - 1,
        lab.state().pods.len()
    );
    println!("body {size} bytes, {series} series; {n} requests of each kind");
    println!(
        "{:<52} {:>9} {:>9}",
        "agent CPU per request (schedstat, all threads)", "p50 ms", "p90 ms"
    );
    for (what, v) in [
        ("GET /metrics, fresh render (1.1 s apart)", &mut fresh),
        ("anchor: GET /metrics from the 1 s cache", &mut cached),
        ("anchor: GET /readiness", &mut ready),
    ] {
        println!("{what:<52} {:>9.3} {:>9.3}", pct(v, 0.5), pct(v, 0.9));
    }
    println!(
        "/proc/PID/stat user+sys: {:.2} ms per fresh scrape ({} ticks over {:.1} s, minus idle {:.2} ms/s: {} ticks over {:.1} s)",
        stat_per,
        busy.1,
        busy.0.as_secs_f64(),
        idle_rate,
        idle.1,
        idle.0.as_secs_f64()
    );
    println!(
        "at Prometheus' 15 s interval a fresh scrape costs {:.3} % of one core",
        pct(&mut fresh, 0.5) / 15_000.0 * 100.0
    );
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).filter(|a| a != "--bench").collect();
    // SAFETY: geteuid has no preconditions.
    assert!(
        unsafe { libc::geteuid() } == 0,
        "the operate benchmarks need root (network namespaces)"
    );
    let num = |i: usize, d: usize| args.get(i).and_then(|s| s.parse().ok()).unwrap_or(d);
    match args.first().map(String::as_str) {
        Some("rss") => rss(),
        Some("scrape") => scrape(num(1, 100), num(2, 100)),
        None => {
            rss();
            scrape(100, 100);
        }
        Some(other) => panic!("unknown benchmark {other:?} (rss | scrape [NODES] [N])"),
    }
}
