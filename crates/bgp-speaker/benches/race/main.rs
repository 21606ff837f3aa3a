//! The BGP race, side by side in one run: Brindle (`brindle-bgp-testd`, one thread) against
//! BIRD 2, FRR and GoBGP from Debian, each started fresh as the receiver in a namespace of its
//! own and fed by the same Rust generator from another (the receive and full-mesh shapes of
//! docs/BENCHMARKS.md):
//!
//! - `recv`: 1M /24 in packed UPDATEs (≈1013 per message, one attribute set), Established →
//!   all in the RIB;
//! - `single`: 100k UPDATEs of one /24 each, every one with its own MED;
//! - `mesh500`, `mesh1000`: P peers connecting at once, one /26 each, generator start → all P
//!   routes in the RIB.
//!
//! Times for `recv`/`single` use the anchors' CPU-quiet method (the daemon used ≤ 20 ms CPU in the
//! next second; its counter verified afterwards), so no CLI polling disturbs the run
//! (`BRINDLE_RACE_METHOD=count` polls the route counter every 2 ms instead); mesh runs poll the
//! daemon's route counter every 100 ms, as the mesh anchors were taken. Memory is RSS 1 s after
//! completion (growth per route for the receive runs). Every time is also printed as a ratio to
//! Brindle's in the same run.
//!
//! `cargo bench -p brindle-bgp-speaker --bench race` (root). Environment:
//! `BRINDLE_RACE` (default `recv,single,mesh500,mesh1000`), `BRINDLE_RACE_DAEMONS` (default
//! `brindle,bird,frr,gobgp`; `brindle-base` races the `brindle-bgp-testd` at
//! `BRINDLE_RACE_BASELINE`, another build, for a before/after in one run), `BRINDLE_RACE_REPS`
//! (default 1), `BRINDLE_RACE_PREFIXES` (default 1000000), `BRINDLE_RACE_SINGLE` (default
//! 100000).

mod daemons;
mod generator;
mod procstat;

use std::net::{Ipv4Addr, SocketAddr};
use std::time::{Duration, Instant};

use brindle_testkit::{Netns, TempDir};
use daemons::{Kind, Running};
use procstat::{QuietWatch, cpu, loadavg, rss_kib};

const DAEMON: SocketAddr = SocketAddr::new(std::net::IpAddr::V4(Ipv4Addr::new(10, 99, 0, 2)), 179);
const GEN: Ipv4Addr = Ipv4Addr::new(10, 99, 0, 1);

struct Lab {
    a: Netns,
    b: Netns,
    mesh_addrs: usize,
}

impl Lab {
    fn new() -> Lab {
        let a = Netns::new("racea");
        let b = Netns::new("raceb");
        a.veth("rva", &b, "rvb");
        a.ip(&["addr", "add", "10.99.0.1/30", "dev", "rva"]);
        b.ip(&["addr", "add", "10.99.0.2/30", "dev", "rvb"]);
        a.ip(&["link", "set", "rva", "up"]);
        b.ip(&["link", "set", "rvb", "up"]);
        b.ip(&["route", "add", "10.98.0.0/16", "via", "10.99.0.1"]);
        Lab { a, b, mesh_addrs: 0 }
    }

    /// Source addresses for `p` mesh peers on the generator's side.
    fn mesh_addrs(&mut self, p: usize) {
        if self.mesh_addrs >= p {
            return;
        }
        let dir = TempDir::new("race");
        let batch: String = (self.mesh_addrs..p)
            .map(|i| format!("addr add {}/16 dev rva\n", generator::mesh_addr(i)))
            .collect();
        std::fs::write(dir.join("addrs"), batch).unwrap();
        self.a.ip(&["-batch", &dir.join("addrs").display().to_string()]);
        self.mesh_addrs = p;
    }
}

/// One daemon's result in one scenario.
struct Row {
    kind: Kind,
    secs: Option<f64>,
    cpu: f64,
    rss_before: u64,
    rss_after: u64,
    zebra_after: Option<u64>,
    note: String,
}

fn raise_fd_limit() {
    // SAFETY: getrlimit/setrlimit on our own process with valid pointers.
    unsafe {
        let mut r: libc::rlimit = std::mem::zeroed();
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut r) == 0 {
            r.rlim_cur = r.rlim_max;
            libc::setrlimit(libc::RLIMIT_NOFILE, &r);
        }
    }
}

fn recv_run(lab: &Lab, kind: Kind, bytes: &[u8], n: usize) -> Row {
    let d = Running::start(kind, &lab.b, &[GEN]);
    std::thread::sleep(Duration::from_secs(1));
    let (rss0, cpu0) = (rss_kib(d.pid()), cpu(d.pid()));
    let bytes = bytes.to_vec();
    let feed = lab
        .a
        .spawn_in(move || generator::recv(DAEMON, GEN, bytes))
        .join()
        .expect("generator");
    let mut quiet = QuietWatch::new(d.pid());
    let deadline = Instant::now() + Duration::from_secs(900);
    let mut done = None;
    // Counter method: poll the daemon's route counter instead (disturbs GoBGP).
    let counter = std::env::var("BRINDLE_RACE_METHOD").is_ok_and(|m| m == "count");
    while Instant::now() < deadline {
        if counter {
            if d.count() >= n {
                done = Some(Instant::now());
                break;
            }
            std::thread::sleep(Duration::from_millis(2));
            continue;
        }
        if let Some(t) = quiet.sample(Duration::from_secs(1), Duration::from_millis(20))
            && d.count() >= n
        {
            done = Some(t);
            break;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    let cpu1 = cpu(d.pid());
    std::thread::sleep(Duration::from_secs(1));
    let row = Row {
        kind,
        secs: done.map(|t| t.saturating_duration_since(feed.established).as_secs_f64()),
        cpu: (cpu1 - cpu0).as_secs_f64(),
        rss_before: rss0,
        rss_after: rss_kib(d.pid()),
        zebra_after: d.zebra_pid().map(rss_kib),
        note: format!(
            "count {}; generator wrote it all {:.3} s after Established",
            d.count(),
            (feed.sent - feed.established).as_secs_f64()
        ),
    };
    if done.is_none() {
        eprintln!("{} never finished:\n{}", kind.name(), d.log());
    }
    drop(feed);
    row
}

fn mesh_run(lab: &mut Lab, kind: Kind, p: usize) -> Row {
    lab.mesh_addrs(p);
    let peers: Vec<Ipv4Addr> = (0..p).map(generator::mesh_addr).collect();
    let d = Running::start(kind, &lab.b, &peers);
    std::thread::sleep(Duration::from_secs(1));
    let (rss0, cpu0) = (rss_kib(d.pid()), cpu(d.pid()));
    let feed = lab
        .a
        .spawn_in(move || generator::Mesh::start(DAEMON, p))
        .join()
        .expect("generator");
    let deadline = feed.start + Duration::from_secs(600);
    let mut done = None;
    let mut est = None;
    while Instant::now() < deadline {
        if est.is_none() {
            est = feed.established();
        }
        if d.count() >= p {
            done = Some(Instant::now());
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let cpu1 = cpu(d.pid());
    std::thread::sleep(Duration::from_secs(1));
    let est = est.or_else(|| feed.established());
    let row = Row {
        kind,
        secs: done.map(|t| (t - feed.start).as_secs_f64()),
        cpu: (cpu1 - cpu0).as_secs_f64(),
        rss_before: rss0,
        rss_after: rss_kib(d.pid()),
        zebra_after: d.zebra_pid().map(rss_kib),
        note: match est {
            Some(e) => format!(
                "all Established {:.2} s, {} retries",
                (e.all_established - feed.start).as_secs_f64(),
                e.retries
            ),
            None => "not all Established".into(),
        },
    };
    drop(feed);
    row
}

fn mib(kib: u64) -> f64 {
    kib as f64 / 1024.0
}

fn print(title: &str, rows: &[Row], per_route: Option<usize>) {
    println!("\n{title} (load average {:.1})", loadavg());
    println!(
        "  {:<12} {:>9} {:>8} {:>10} {:>10} {:>9} {:>10}  note",
        "daemon", "time", "CPU", "RSS idle", "RSS after", "B/route", "×Brindle"
    );
    let base = rows.iter().find(|r| r.kind == Kind::Brindle).and_then(|r| r.secs);
    for r in rows {
        let per = per_route.map_or("-".to_string(), |n| {
            format!(
                "{:.0}",
                (r.rss_after.saturating_sub(r.rss_before)) as f64 * 1024.0 / n as f64
            )
        });
        let ratio = match (r.secs, base) {
            (Some(s), Some(b)) if b > 0.0 => format!("{:.2}", s / b),
            _ => "-".into(),
        };
        let zebra = r
            .zebra_after
            .map(|z| format!(" (+ zebra {:.1} MiB)", mib(z)))
            .unwrap_or_default();
        println!(
            "  {:<12} {:>9} {:>7.2}s {:>6.1} MiB {:>6.1} MiB {:>9} {:>10}  {}{}",
            r.kind.name(),
            r.secs.map_or("DNF".into(), |s| format!("{s:.3} s")),
            r.cpu,
            mib(r.rss_before),
            mib(r.rss_after),
            per,
            ratio,
            r.note,
            zebra
        );
    }
}

fn env_or(key: &str, default: &str) -> String {
    std::env::var(key).unwrap_or_else(|_| default.to_string())
}

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    raise_fd_limit();
    let scenarios = env_or("BRINDLE_RACE", "recv,single,mesh500,mesh1000");
    let kinds: Vec<Kind> = env_or("BRINDLE_RACE_DAEMONS", "brindle,bird,frr,gobgp")
        .split(',')
        .filter_map(Kind::parse)
        .collect();
    let reps: usize = env_or("BRINDLE_RACE_REPS", "1").parse().unwrap_or(1);
    let n: usize = env_or("BRINDLE_RACE_PREFIXES", "1000000")
        .parse()
        .unwrap_or(1_000_000);
    let single_n: usize = env_or("BRINDLE_RACE_SINGLE", "100000").parse().unwrap_or(100_000);
    let mut lab = Lab::new();
    for s in scenarios.split(',') {
        for rep in 1..=reps {
            let mut rows = Vec::new();
            let title;
            let mut per_route = None;
            match s {
                "recv" | "single" => {
                    let single = s == "single";
                    let count = if single { single_n } else { n };
                    let bytes = generator::recv_stream(count as u32, single, GEN);
                    title = format!(
                        "race {s} rep {rep}: {count} /24 {}, Established → all in the RIB ({:.1} MB)",
                        if single {
                            "one per UPDATE, distinct MEDs"
                        } else {
                            "packed"
                        },
                        bytes.len() as f64 / 1e6
                    );
                    per_route = Some(count);
                    for k in &kinds {
                        rows.push(recv_run(&lab, *k, &bytes, count));
                    }
                }
                m if m.starts_with("mesh") => {
                    let p: usize = m[4..].parse().unwrap_or(1000);
                    title = format!(
                        "race {m} rep {rep}: {p} peers connecting at once, one /26 each, start → all routes in"
                    );
                    for k in &kinds {
                        rows.push(mesh_run(&mut lab, *k, p));
                    }
                }
                other => {
                    eprintln!("unknown scenario {other}");
                    continue;
                }
            }
            print(&title, &rows, per_route);
        }
    }
}
