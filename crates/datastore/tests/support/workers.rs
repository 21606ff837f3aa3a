//! Separate worker processes on one store, for the multi-process test and the benchmark. The
//! test (or bench) binary runs itself again with `BRINDLE_DS_WORKER` set; the datastore is
//! chosen by the environment (`BRINDLE_DATASTORE_*`, `DATASTORE_TYPE`, `ETCD_ENDPOINTS`), as
//! Brindle's own processes choose it.
//!
//! Roles (the value of `BRINDLE_DS_WORKER`):
//! - `cas <count> <key>`: `count` compare-and-swap increments of the decimal counter at `key`
//!   (re-read and retry on conflict); prints `done conflicts=<n>` and `latency_us=<a,b,…>` (each
//!   increment, retries included).
//! - `raw-sqlite-cas <count>`: the same on a bare SQLite table (no Brindle code), the shape
//!   the bare-SQLite anchor measured; path from `BRINDLE_DATASTORE_PATH`.
//! - `writer <count> <interval-us> <prefix>`: creates `count` keys under `prefix`, each holding
//!   the wall-clock time of the write in nanoseconds, one every `interval-us`; prints `done`.
//! - `create-pool <name> <cidr>`: creates IPPool `name` through the typed client (its overlap
//!   check); prints `created` or `refused: <error>`.
//!
//! Each worker opens the store, prints `ready`, and starts when the driver creates the go file
//! (`BRINDLE_DS_GO`), so all start together and opening is not timed.
#![allow(dead_code)] // each including binary uses a part

use std::io::Write;
use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use brindle_datastore::{DatastoreConfig, Synchronous, open, retry_on_conflict};
use brindle_testkit::{Daemon, TempDir};

const ROLE: &str = "BRINDLE_DS_WORKER";
const GO: &str = "BRINDLE_DS_GO";
/// Makes SQLite workers commit with synchronous=FULL (benchmark only).
const SYNC_FULL: &str = "BRINDLE_DS_SYNC_FULL";

/// Environment that selects a store; cleared in workers before the driver's choice is set.
const STORE_VARS: [&str; 9] = [
    "BRINDLE_DATASTORE_TYPE",
    "BRINDLE_DATASTORE_PATH",
    "DATASTORE_TYPE",
    "ETCD_ENDPOINTS",
    "ETCD_CA_CERT_FILE",
    "ETCD_CERT_FILE",
    "ETCD_KEY_FILE",
    "ETCD_USERNAME",
    "ETCD_PASSWORD",
];

/// Call first in `main`: in a worker process, does the work and exits.
pub fn run_if_worker() {
    let Ok(role) = std::env::var(ROLE) else { return };
    let code = match work(&role) {
        Ok(()) => 0,
        Err(e) => {
            eprintln!("worker {role}: {e}");
            1
        }
    };
    std::process::exit(code);
}

pub fn now_nanos() -> u128 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock after 1970")
        .as_nanos()
}

fn work(role: &str) -> Result<(), String> {
    let args: Vec<&str> = role.split(' ').collect();
    if let ["raw-sqlite-cas", count] = args.as_slice() {
        let count = count.parse().map_err(|e| format!("count: {e}"))?;
        let path = std::env::var("BRINDLE_DATASTORE_PATH").map_err(|e| e.to_string())?;
        let conn = raw_sqlite(&path, std::env::var(SYNC_FULL).is_ok()).map_err(|e| e.to_string())?;
        wait_for_go()?;
        return raw_sqlite_increments(&conn, count).map_err(|e| e.to_string());
    }
    let mut config = DatastoreConfig::from_env().map_err(|e| e.to_string())?;
    if let (DatastoreConfig::Sqlite(c), Ok(_)) = (&mut config, std::env::var(SYNC_FULL)) {
        c.synchronous = Synchronous::Full;
    }
    let store = open(&config).map_err(|e| e.to_string())?;
    wait_for_go()?;
    match args.as_slice() {
        ["cas", count, key] => {
            let count: u64 = count.parse().map_err(|e| format!("count: {e}"))?;
            let mut conflicts = 0u64;
            let mut latencies = Vec::with_capacity(count as usize);
            for _ in 0..count {
                let start = Instant::now();
                let mut first = true;
                retry_on_conflict(1_000_000, || {
                    if !std::mem::take(&mut first) {
                        conflicts += 1;
                    }
                    let kv = store.get(key)?.expect("counter exists");
                    let n: u64 = std::str::from_utf8(&kv.value).unwrap().parse().unwrap();
                    store.update(key, (n + 1).to_string().as_bytes(), kv.revision)
                })
                .map_err(|e| e.to_string())?;
                latencies.push(start.elapsed().as_micros().to_string());
            }
            println!("done conflicts={conflicts}");
            println!("latency_us={}", latencies.join(","));
        }
        ["writer", count, interval, prefix] => {
            let count: u64 = count.parse().map_err(|e| format!("count: {e}"))?;
            let interval = Duration::from_micros(interval.parse().map_err(|e| format!("interval: {e}"))?);
            for i in 0..count {
                let key = format!("{prefix}{i:06}");
                store
                    .create(&key, now_nanos().to_string().as_bytes())
                    .map_err(|e| e.to_string())?;
                std::thread::sleep(interval);
            }
            println!("done");
        }
        ["create-pool", name, cidr] => {
            let text = format!(
                "apiVersion: projectcalico.org/v3\nkind: IPPool\nmetadata: {{name: {name}}}\nspec: {{cidr: {cidr}}}\n"
            );
            let pool = brindle_model::load_str("pool", &text).map_err(|e| e.to_string())?;
            match brindle_datastore::Client::new(store).create(&pool[0]) {
                Ok(_) => println!("created"),
                Err(e) => println!("refused: {e}"),
            }
        }
        _ => return Err(format!("unknown role {role:?}")),
    }
    Ok(())
}

fn wait_for_go() -> Result<(), String> {
    let go = PathBuf::from(std::env::var(GO).map_err(|_| format!("{GO} unset"))?);
    println!("ready");
    std::io::stdout().flush().ok();
    while !go.exists() {
        std::thread::sleep(Duration::from_micros(200));
    }
    Ok(())
}

/// The bare SQLite loop the anchor measured (no Brindle code): WAL, a counter row with
/// its own revision, read then `BEGIN IMMEDIATE; UPDATE … WHERE rev = ?`.
pub fn raw_sqlite(path: &str, full: bool) -> rusqlite::Result<rusqlite::Connection> {
    let conn = rusqlite::Connection::open(path)?;
    conn.busy_timeout(Duration::from_secs(10))?;
    conn.query_row("PRAGMA journal_mode=WAL", [], |_| Ok(()))?;
    conn.pragma_update(None, "synchronous", if full { "FULL" } else { "NORMAL" })?;
    conn.execute_batch(
        "CREATE TABLE IF NOT EXISTS counter (id INTEGER PRIMARY KEY, n INTEGER NOT NULL, rev INTEGER NOT NULL);
         INSERT OR IGNORE INTO counter VALUES (1, 0, 0);",
    )?;
    Ok(conn)
}

fn raw_sqlite_increments(conn: &rusqlite::Connection, count: u64) -> rusqlite::Result<()> {
    let mut conflicts = 0u64;
    for _ in 0..count {
        loop {
            let (n, rev): (i64, i64) =
                conn.query_row("SELECT n, rev FROM counter WHERE id = 1", [], |r| {
                    Ok((r.get(0)?, r.get(1)?))
                })?;
            conn.execute_batch("BEGIN IMMEDIATE")?;
            let changed = conn.execute(
                "UPDATE counter SET n = ?1, rev = rev + 1 WHERE id = 1 AND rev = ?2",
                [n + 1, rev],
            )?;
            conn.execute_batch("COMMIT")?;
            if changed == 1 {
                break;
            }
            conflicts += 1;
        }
    }
    println!("done conflicts={conflicts}");
    Ok(())
}

/// Running worker processes, killed (by PID) if dropped before they finish.
pub struct Workers {
    daemons: Vec<Daemon>,
    go: PathBuf,
    _dir: TempDir,
}

impl Workers {
    /// Starts `n` workers of `role` (`{i}` in it replaced by each worker's index) on the store
    /// selected by `env`, and waits until each has opened it.
    pub fn spawn(n: usize, role: &str, env: &[(&str, String)]) -> Workers {
        let dir = TempDir::new("dsw");
        let go = dir.join("go");
        let exe = std::env::current_exe().expect("current_exe");
        let mut daemons = Vec::new();
        for i in 0..n {
            let mut cmd = Command::new(&exe);
            for var in STORE_VARS {
                cmd.env_remove(var);
            }
            cmd.env(ROLE, role.replace("{i}", &i.to_string()))
                .env(GO, &go)
                .envs(env.iter().map(|(k, v)| (k, v)));
            daemons.push(Daemon::spawn(
                &format!("worker {i}"),
                cmd,
                &dir.join(&format!("worker{i}.log")),
            ));
        }
        for (i, d) in daemons.iter_mut().enumerate() {
            let log = dir.join(&format!("worker{i}.log"));
            d.wait_until("worker ready", Duration::from_secs(30), || {
                std::fs::read_to_string(&log).is_ok_and(|out| out.contains("ready"))
            });
        }
        Workers {
            daemons,
            go,
            _dir: dir,
        }
    }

    /// Lets them all start; returns the start time.
    pub fn go(&self) -> Instant {
        std::fs::write(&self.go, b"").expect("create go file");
        Instant::now()
    }

    /// Waits for each worker to finish successfully; returns each one's output.
    pub fn finish(mut self, timeout: Duration) -> Vec<String> {
        let deadline = Instant::now() + timeout;
        let mut outputs = Vec::new();
        for d in &mut self.daemons {
            let status = d.wait(deadline.saturating_duration_since(Instant::now()));
            let log = d.log();
            match status {
                Some(s) if s.success() => outputs.push(log),
                Some(s) => panic!("a worker failed ({s}):\n{log}"),
                None => panic!("a worker did not finish within {timeout:?}:\n{log}"),
            }
        }
        outputs
    }
}
