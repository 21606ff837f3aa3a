//! Datastore benchmark: compare-and-swap commits per second on both backends, one process and
//! many, SQLite with synchronous=NORMAL and FULL, and watch latency (write → event delivered),
//! each next to the same operation done without Brindle (bare SQLite, bare etcd-client) in the
//! same run, so the ratio is what matters.
//!
//! Run: `cargo bench -p brindle-datastore` (needs `etcd` on PATH; starts its own on free
//! ports). Prints one table.
//!
//! Anchors (measured on this project's 2-core machine in an earlier run, outside Brindle; current
//! figures in docs/BENCHMARKS.md): bare SQLite, 4 processes × 500 CAS increments: ≈ 40k commits/s
//! with synchronous=NORMAL, ≈ 4.7k with FULL; etcd 3.4: 1000 sequential puts in ≈ 518 ms.

#[path = "../tests/support/workers.rs"]
mod workers;

use std::sync::Arc;
use std::time::{Duration, Instant};

use brindle_datastore::{Datastore, EtcdConfig, EtcdStore, SqliteConfig, SqliteStore, Synchronous};
use brindle_testkit::{Etcd, TempDir};
use workers::{Workers, now_nanos};

const COUNTER: &str = "/bench/counter";

struct Row {
    what: String,
    ops: u64,
    took: Duration,
    note: String,
}

impl Row {
    fn print(&self) {
        let rate = self.ops as f64 / self.took.as_secs_f64();
        println!(
            "{:<58} {:>6} {:>10.1} ms {:>10.0} /s   {}",
            self.what,
            self.ops,
            self.took.as_secs_f64() * 1e3,
            rate,
            self.note
        );
    }
}

/// `n` sequential CAS increments of one key from this process.
fn sequential_cas(store: &dyn Datastore, n: u64) -> Duration {
    let _ = store.create(COUNTER, b"0");
    let start = Instant::now();
    for _ in 0..n {
        let kv = store.get(COUNTER).unwrap().unwrap();
        let v: u64 = std::str::from_utf8(&kv.value).unwrap().parse().unwrap();
        store
            .update(COUNTER, (v + 1).to_string().as_bytes(), kv.revision)
            .unwrap();
    }
    start.elapsed()
}

/// `procs` workers of `role` started together; returns wall time, conflicts, and a summary
/// of per-increment latency (retries included) when the workers report it.
fn parallel_cas(role: &str, procs: usize, env: &[(&str, String)]) -> (Duration, u64, String) {
    let w = Workers::spawn(procs, role, env);
    let start = w.go();
    let outputs = w.finish(Duration::from_secs(600));
    let took = start.elapsed();
    let field = |name: &str| -> Vec<String> {
        outputs
            .iter()
            .filter_map(|o| o.lines().find_map(|l| l.strip_prefix(name)).map(str::to_string))
            .collect()
    };
    let conflicts = field("done conflicts=")
        .iter()
        .map(|n| n.trim().parse::<u64>().unwrap())
        .sum();
    let mut lat: Vec<u64> = field("latency_us=")
        .iter()
        .flat_map(|l| {
            l.trim()
                .split(',')
                .map(|n| n.parse::<u64>().unwrap())
                .collect::<Vec<_>>()
        })
        .collect();
    lat.sort_unstable();
    let summary = if lat.is_empty() {
        String::new()
    } else {
        let pct = |p: f64| lat[((lat.len() as f64 * p) as usize).min(lat.len() - 1)] as f64 / 1e3;
        format!(
            "; per increment p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms",
            pct(0.5),
            pct(0.99),
            lat[lat.len() - 1] as f64 / 1e3
        )
    };
    (took, conflicts, summary)
}

fn sqlite_env(path: &std::path::Path, full: bool) -> Vec<(&'static str, String)> {
    let mut env = vec![
        ("BRINDLE_DATASTORE_TYPE", "sqlite".to_string()),
        ("BRINDLE_DATASTORE_PATH", path.display().to_string()),
    ];
    if full {
        env.push(("BRINDLE_DS_SYNC_FULL", "1".into()));
    }
    env
}

fn sqlite_rows(rows: &mut Vec<Row>) {
    for (sync, full) in [("NORMAL", false), ("FULL", true)] {
        let dir = TempDir::new("bench");
        let path = dir.join("brindle.db");
        let mut config = SqliteConfig::new(&path);
        config.synchronous = if full {
            Synchronous::Full
        } else {
            Synchronous::Normal
        };
        let store = SqliteStore::open(&config).unwrap();
        let n = if full { 1000 } else { 5000 };
        rows.push(Row {
            what: format!("sqlite {sync}: 1 process, sequential CAS (get+update)"),
            ops: n,
            took: sequential_cas(&store, n),
            note: String::new(),
        });

        let raw = dir.join("raw.db");
        drop(workers::raw_sqlite(&raw.display().to_string(), full).unwrap());
        let (took, conflicts, _) = parallel_cas("raw-sqlite-cas 500", 4, &sqlite_env(&raw, full));
        rows.push(Row {
            what: format!("bare SQLite {sync}: 4 processes x 500 CAS increments"),
            ops: 2000,
            took,
            note: format!(
                "{conflicts} conflicts; anchor {}",
                if full { "4.7k/s (426 ms)" } else { "40k/s (50 ms)" }
            ),
        });
        for procs in [4, 8] {
            let (took, conflicts, lat) =
                parallel_cas(&format!("cas 500 {COUNTER}"), procs, &sqlite_env(&path, full));
            rows.push(Row {
                what: format!("sqlite {sync}: {procs} processes x 500 CAS increments"),
                ops: procs as u64 * 500,
                took,
                note: format!("{conflicts} conflicts{lat}"),
            });
        }
    }
}

fn etcd_rows(rows: &mut Vec<Row>, etcd: &Etcd) {
    // Bare etcd-client, as the anchor: 1000 sequential puts from an async loop.
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let (puts, txns) = rt.block_on(async {
        let mut c = etcd_client::Client::connect([etcd.endpoint()], None)
            .await
            .unwrap();
        let start = Instant::now();
        for i in 0..1000 {
            c.put(format!("/bench/raw/{i}"), "{}", None).await.unwrap();
        }
        let puts = start.elapsed();
        // The create-if-absent transaction the store sends, without the store around it.
        let start = Instant::now();
        for i in 0..1000 {
            let key = format!("/bench/rawtxn/{i}");
            let absent = etcd_client::Compare::version(key.clone(), etcd_client::CompareOp::Equal, 0);
            let txn = etcd_client::Txn::new()
                .when([absent])
                .and_then([etcd_client::TxnOp::put(key, "{}", None)]);
            assert!(c.txn(txn).await.unwrap().succeeded());
        }
        (puts, start.elapsed())
    });
    rows.push(Row {
        what: "bare etcd-client: 1000 sequential puts".into(),
        ops: 1000,
        took: puts,
        note: "anchor 518 ms".into(),
    });
    rows.push(Row {
        what: "bare etcd-client: 1000 sequential create txns".into(),
        ops: 1000,
        took: txns,
        note: String::new(),
    });

    let store = EtcdStore::open(&EtcdConfig::new([etcd.endpoint()])).unwrap();
    let start = Instant::now();
    for i in 0..1000 {
        store.create(&format!("/bench/create/{i}"), b"{}").unwrap();
    }
    rows.push(Row {
        what: "etcd store: 1000 sequential creates (txn)".into(),
        ops: 1000,
        took: start.elapsed(),
        note: String::new(),
    });
    rows.push(Row {
        what: "etcd store: 1 process, sequential CAS (get+update)".into(),
        ops: 1000,
        took: sequential_cas(&store, 1000),
        note: String::new(),
    });
    let env = [
        ("DATASTORE_TYPE", "etcdv3".to_string()),
        ("ETCD_ENDPOINTS", etcd.endpoint().to_string()),
    ];
    let (took, conflicts, lat) = parallel_cas(&format!("cas 500 {COUNTER}"), 8, &env);
    rows.push(Row {
        what: "etcd store: 8 processes x 500 CAS increments".into(),
        ops: 4000,
        took,
        note: format!("{conflicts} conflicts{lat}"),
    });
}

/// Write → event latency: 500 writes 2 ms apart, by this process (`writer` given) or by a
/// worker process (started with `env`), each value holding its write time.
fn watch_latency(
    what: &str,
    watcher: &dyn Datastore,
    writer: Option<Arc<dyn Datastore>>,
    env: &[(&str, String)],
) {
    const SAMPLES: u64 = 500;
    let prefix = format!("/bench/lat/{}/", workers::now_nanos());
    let w = watcher.watch(&prefix, 0).unwrap();
    let local = writer.map(|s| {
        let prefix = prefix.clone();
        std::thread::spawn(move || {
            for i in 0..SAMPLES {
                s.create(&format!("{prefix}{i:06}"), now_nanos().to_string().as_bytes())
                    .unwrap();
                std::thread::sleep(Duration::from_millis(2));
            }
        })
    });
    let remote = local.is_none().then(|| {
        let w = Workers::spawn(1, &format!("writer {SAMPLES} 2000 {prefix}"), env);
        w.go();
        w
    });
    let mut lat = Vec::new();
    while (lat.len() as u64) < SAMPLES {
        let ev = w.recv_timeout(Duration::from_secs(30)).unwrap().unwrap().unwrap();
        let sent: u128 = std::str::from_utf8(ev.value.as_deref().unwrap())
            .unwrap()
            .parse()
            .unwrap();
        lat.push((now_nanos().saturating_sub(sent)) as f64 / 1e6);
    }
    if let Some(t) = local {
        t.join().unwrap();
    }
    if let Some(r) = remote {
        r.finish(Duration::from_secs(60));
    }
    lat.sort_by(f64::total_cmp);
    let pct = |p: f64| lat[((lat.len() as f64 * p) as usize).min(lat.len() - 1)];
    println!(
        "{:<58} p50 {:>6.2} ms   p99 {:>6.2} ms   max {:>6.2} ms",
        what,
        pct(0.50),
        pct(0.99),
        lat[lat.len() - 1]
    );
}

/// CPU time (user + system) this process has used so far.
fn cpu_time() -> Duration {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap();
    // Fields after the command (which is in parentheses and may hold spaces).
    let fields: Vec<&str> = stat[stat.rfind(')').unwrap() + 2..].split(' ').collect();
    let ticks: u64 = fields[11].parse::<u64>().unwrap() + fields[12].parse::<u64>().unwrap();
    // SAFETY: sysconf has no preconditions.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) } as u64;
    Duration::from_millis(ticks * 1000 / hz)
}

/// What an idle process with watches costs: the change poller and the watch threads, 5 s.
fn idle_watch_cpu(store: &dyn Datastore, watches: usize) {
    let held: Vec<_> = (0..watches)
        .map(|i| store.watch(&format!("/idle/{i}/"), 0).unwrap())
        .collect();
    let (cpu, wall) = (cpu_time(), Instant::now());
    std::thread::sleep(Duration::from_secs(5));
    let used = cpu_time() - cpu;
    drop(held);
    println!(
        "{:<58} {:.2} % of one core",
        format!(
            "{}: {watches} idle watches, CPU",
            store.describe().split(':').next().unwrap()
        ),
        used.as_secs_f64() / wall.elapsed().as_secs_f64() * 100.0
    );
}

fn main() {
    workers::run_if_worker();
    // `cargo bench -p brindle-datastore -- watch` runs only the sections whose name contains
    // an argument: cas-sqlite, cas-etcd, watch.
    let filters: Vec<String> = std::env::args().skip(1).filter(|a| !a.starts_with('-')).collect();
    let want = |section: &str| filters.is_empty() || filters.iter().any(|f| section.contains(f.as_str()));
    let mut rows = Vec::new();
    if want("cas-sqlite") {
        sqlite_rows(&mut rows);
    }
    // Started only for the sections that use it.
    let etcd = (want("cas-etcd") || want("watch")).then(Etcd::start);
    if let (true, Some(etcd)) = (want("cas-etcd"), &etcd) {
        etcd_rows(&mut rows, etcd);
    }
    if !rows.is_empty() {
        println!(
            "\n{:<58} {:>6} {:>13} {:>13}   notes",
            "compare-and-swap", "ops", "time", "rate"
        );
        for r in &rows {
            r.print();
        }
    }
    let Some(etcd) = etcd.filter(|_| want("watch")) else {
        return;
    };
    println!("\nwatch latency (write call → event received), 500 writes 2 ms apart");
    let dir = TempDir::new("bench");
    let config = SqliteConfig::new(dir.join("brindle.db"));
    let store: Arc<dyn Datastore> = Arc::new(SqliteStore::open(&config).unwrap());
    watch_latency(
        "sqlite: writer in the same process",
        store.as_ref(),
        Some(store.clone()),
        &[],
    );
    let env = sqlite_env(&config.path, false);
    watch_latency("sqlite: writer in another process", store.as_ref(), None, &env);
    let etcd_store: Arc<dyn Datastore> =
        Arc::new(EtcdStore::open(&EtcdConfig::new([etcd.endpoint()])).unwrap());
    watch_latency(
        "etcd: writer in the same process",
        etcd_store.as_ref(),
        Some(etcd_store.clone()),
        &[],
    );
    let env = [
        ("DATASTORE_TYPE", "etcdv3".to_string()),
        ("ETCD_ENDPOINTS", etcd.endpoint().to_string()),
    ];
    watch_latency("etcd: writer in another process", etcd_store.as_ref(), None, &env);
    idle_watch_cpu(store.as_ref(), 8);
    idle_watch_cpu(etcd_store.as_ref(), 8);
}
