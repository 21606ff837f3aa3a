//! Separate processes on one SQLite file and on one etcd:
//! - 8 × 500 compare-and-swap increments of one counter: the final count is exact (no lost
//!   update, no double apply);
//! - 20 creates of IPPools with one CIDR under 20 names, all at once: exactly one pool exists
//!   after, the 19 others were refused for the overlap (the check and the write are atomic).
//!
//! `harness = false`: the binary is also the worker (it runs itself again, see
//! `support/workers.rs`), which a libtest harness would get in the way of.

#[path = "support/workers.rs"]
mod workers;

use std::time::Duration;

use brindle_datastore::{Datastore, SqliteConfig, SqliteStore};
use brindle_testkit::{Etcd, TempDir};
use workers::Workers;

const PROCESSES: usize = 8;
const INCREMENTS: u64 = 500;
const COUNTER: &str = "/calico/ipam/v2/counter";

fn increments_are_exact(store: &dyn Datastore, env: &[(&str, String)]) {
    store.create(COUNTER, b"0").unwrap();
    let workers = Workers::spawn(PROCESSES, &format!("cas {INCREMENTS} {COUNTER}"), env);
    workers.go();
    let outputs = workers.finish(Duration::from_secs(300));
    let conflicts: u64 = outputs
        .iter()
        .map(|o| {
            let n = o.lines().find_map(|l| l.strip_prefix("done conflicts="));
            n.unwrap_or_else(|| panic!("no result in {o:?}"))
                .trim()
                .parse::<u64>()
                .unwrap()
        })
        .sum();
    let kv = store.get(COUNTER).unwrap().unwrap();
    assert_eq!(
        std::str::from_utf8(&kv.value).unwrap(),
        (PROCESSES as u64 * INCREMENTS).to_string(),
        "{} lost or repeated updates",
        store.describe()
    );
    println!(
        "  {}: {} increments, {conflicts} conflicts retried",
        store.describe(),
        PROCESSES as u64 * INCREMENTS
    );
    assert!(
        conflicts > 0,
        "the processes never raced: the test did not test anything"
    );
}

const POOL_WRITERS: usize = 20;

fn one_pool_of_racing_overlaps(store: &dyn Datastore, env: &[(&str, String)]) {
    let workers = Workers::spawn(POOL_WRITERS, "create-pool racer-{i} 10.77.0.0/16", env);
    workers.go();
    let outputs = workers.finish(Duration::from_secs(120));
    let created = outputs.iter().filter(|o| o.contains("\ncreated")).count();
    let refused: Vec<&String> = outputs.iter().filter(|o| o.contains("refused: ")).collect();
    let pools = store
        .list(&brindle_model::keys::resource_prefix(
            brindle_model::Kind::IPPool,
            None,
        ))
        .unwrap();
    assert_eq!(
        (pools.items.len(), created),
        (1, 1),
        "{}: {} pools stored, {created} creates reported success",
        store.describe(),
        pools.items.len()
    );
    for o in &refused {
        assert!(
            o.contains("overlaps with IPPool(racer-"),
            "refused for another reason: {o}"
        );
    }
    assert_eq!(refused.len(), POOL_WRITERS - 1);
    println!(
        "  {}: 1 of {POOL_WRITERS} racing creates stored",
        store.describe()
    );
}

fn sqlite() {
    let dir = TempDir::new("mp");
    let path = dir.join("brindle.db");
    let store = SqliteStore::open(&SqliteConfig::new(&path)).unwrap();
    increments_are_exact(
        &store,
        &[
            ("BRINDLE_DATASTORE_TYPE", "sqlite".into()),
            ("BRINDLE_DATASTORE_PATH", path.display().to_string()),
        ],
    );
}

fn etcd() {
    let etcd = Etcd::start();
    let store =
        brindle_datastore::EtcdStore::open(&brindle_datastore::EtcdConfig::new([etcd.endpoint()])).unwrap();
    increments_are_exact(
        &store,
        &[
            ("DATASTORE_TYPE", "etcdv3".into()),
            ("ETCD_ENDPOINTS", etcd.endpoint().to_string()),
        ],
    );
}

fn pool_overlap_sqlite() {
    let dir = TempDir::new("mpp");
    let path = dir.join("brindle.db");
    let store = SqliteStore::open(&SqliteConfig::new(&path)).unwrap();
    one_pool_of_racing_overlaps(
        &store,
        &[
            ("BRINDLE_DATASTORE_TYPE", "sqlite".into()),
            ("BRINDLE_DATASTORE_PATH", path.display().to_string()),
        ],
    );
}

fn pool_overlap_etcd() {
    let etcd = Etcd::start();
    let store =
        brindle_datastore::EtcdStore::open(&brindle_datastore::EtcdConfig::new([etcd.endpoint()])).unwrap();
    one_pool_of_racing_overlaps(
        &store,
        &[
            ("DATASTORE_TYPE", "etcdv3".into()),
            ("ETCD_ENDPOINTS", etcd.endpoint().to_string()),
        ],
    );
}

/// libtest's command line, as far as this binary honours it: name filters, `--skip NAME`,
/// `--exact`, `--list`; other flags (and their values) are accepted and ignored.
struct Args {
    filters: Vec<String>,
    skip: Vec<String>,
    exact: bool,
    list: bool,
}

fn args() -> Args {
    let mut a = Args {
        filters: Vec::new(),
        skip: Vec::new(),
        exact: false,
        list: false,
    };
    let mut it = std::env::args().skip(1);
    while let Some(arg) = it.next() {
        match arg.as_str() {
            "--list" => a.list = true,
            "--exact" => a.exact = true,
            "--skip" => a.skip.extend(it.next()),
            "--test-threads" | "--color" | "--format" | "--logfile" | "-Z" => {
                it.next();
            }
            flag if flag.starts_with('-') => {}
            filter => a.filters.push(filter.to_string()),
        }
    }
    a
}

fn main() {
    workers::run_if_worker();
    let args = args();
    let matches = |name: &str, pattern: &str| {
        if args.exact {
            name == pattern
        } else {
            name.contains(pattern)
        }
    };
    let tests = [
        ("multiprocess::sqlite", sqlite as fn()),
        ("multiprocess::etcd", etcd),
        ("multiprocess::pool_overlap_sqlite", pool_overlap_sqlite),
        ("multiprocess::pool_overlap_etcd", pool_overlap_etcd),
    ];
    let selected: Vec<_> = tests
        .iter()
        .filter(|(name, _)| args.filters.is_empty() || args.filters.iter().any(|f| matches(name, f)))
        .filter(|(name, _)| !args.skip.iter().any(|s| name.contains(s.as_str())))
        .collect();
    if args.list {
        for (name, _) in &selected {
            println!("{name}: test");
        }
        return;
    }
    let mut failed = Vec::new();
    for (name, test) in selected {
        println!("test {name} ...");
        match std::panic::catch_unwind(*test) {
            Ok(()) => println!("test {name} ... ok"),
            Err(_) => {
                println!("test {name} ... FAILED");
                failed.push(*name);
            }
        }
    }
    if !failed.is_empty() {
        println!("failed: {failed:?}");
        std::process::exit(1);
    }
}
