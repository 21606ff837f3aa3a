//! Operating figures (issue 15), run as root. `cargo bench` builds the agent in the bench
//! profile (release), so these are release-build figures.
//!
//! - `rss`: the seed lab (3 nodes × 2 pods, IPIP), converged and settled; each agent's RSS,
//!   median and max. Goal < 30 MiB (calico-node: 250–560 MiB, projectcalico/calico issues
//!   #2703, #3820, #4129).
//! - `scrape [NODES] [N]`: on bgp-master1 of a NODES-node lab (default 100, 2 pods per node, so
//!   its `/metrics` carries NODES-1 BGP peers), the agent's CPU (user+sys from
//!   `/proc/PID/stat`) across N scrapes of `/metrics` (default 1000), per scrape, with the
//!   agent's idle CPU over the same wall time subtracted; anchors from the same run: the same
//!   count of `GET /readiness` (the HTTP stack and a trivial answer) and the agent idle.
//!
//! `cargo bench -p brindle --bench operate [-- rss | scrape 100 1000]` (both by default).

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

struct Run {
    wall: Duration,
    ticks: u64,
}

fn measure(pid: u32, n: usize, mut f: impl FnMut()) -> Run {
    let (t0, c0) = (Instant::now(), cpu_ticks(pid));
    for _ in 0..n {
        f();
    }
    Run {
        wall: t0.elapsed(),
        ticks: cpu_ticks(pid) - c0,
    }
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
    let (idle, scrapes, ready, size, series) = netns
        .run(|| {
            let body = String::from_utf8(get(metrics, "/metrics")).expect("utf-8");
            let series = body
                .lines()
                .filter(|l| !l.starts_with('#') && !l.is_empty())
                .count();
            let size = body.len();
            // Interleaved rounds so background work (route refresh, keepalives) falls on each side.
            let rounds = 5;
            let (mut idle, mut scrapes, mut ready) = (Vec::new(), Vec::new(), Vec::new());
            for _ in 0..rounds {
                let s = measure(pid, n / rounds, || {
                    get(metrics, "/metrics");
                });
                let r = measure(pid, n / rounds, || {
                    get(health, "/readiness");
                });
                let wall = s.wall;
                let i = measure(pid, 1, || std::thread::sleep(wall));
                scrapes.push(s);
                ready.push(r);
                idle.push(i);
            }
            (idle, scrapes, ready, size, series)
        })
        .expect("enter the node's namespace");
    let sum = |v: &[Run]| -> (f64, f64) {
        (
            v.iter().map(|r| r.wall.as_secs_f64()).sum(),
            v.iter().map(|r| r.ticks as f64 * tick_ms()).sum(),
        )
    };
    let (iw, ic) = sum(&idle);
    let idle_rate = ic / iw; // ms of CPU per second, no requests
    let per = |v: &[Run]| {
        let (w, c) = sum(v);
        let count = (n / 5 * 5) as f64;
        ((c - idle_rate * w) / count, c / count, w * 1000.0 / count)
    };
    let (s_net, s_raw, s_wall) = per(&scrapes);
    let (r_net, r_raw, r_wall) = per(&ready);
    println!(
        "\n== /metrics scrape on bgp-master1 of a {nodes}-node lab ({} peers), release build ==",
        nodes - 1
    );
    println!(
        "body {size} bytes, {series} series; {} requests each, 5 interleaved rounds",
        n / 5 * 5
    );
    println!(
        "{:<34} {:>12} {:>12} {:>10}",
        "", "CPU ms/req", "(raw)", "wall ms"
    );
    println!(
        "{:<34} {s_net:>12.3} {s_raw:>12.3} {s_wall:>10.3}",
        "GET /metrics"
    );
    println!(
        "{:<34} {r_net:>12.3} {r_raw:>12.3} {r_wall:>10.3}",
        "anchor: GET /readiness"
    );
    println!(
        "{:<34} {:>12.3} ms of CPU per second of wall time",
        "anchor: agent idle", idle_rate
    );
    println!(
        "one scrape costs {:.3} ms of CPU beyond the HTTP stack; at Prometheus' 15 s interval: {:.4} % of a core",
        s_net - r_net,
        s_net / 15_000.0 * 100.0
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
        Some("scrape") => scrape(num(1, 100), num(2, 1000)),
        None => {
            rss();
            scrape(100, 1000);
        }
        Some(other) => panic!("unknown benchmark {other:?} (rss | scrape [NODES] [N])"),
    }
}
