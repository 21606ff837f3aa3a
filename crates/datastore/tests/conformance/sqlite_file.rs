//! What only the SQLite file has: its permissions, damaged or foreign files, automatic trimming
//! of the change log.

use std::os::unix::fs::PermissionsExt;

use brindle_datastore::{Datastore, DatastoreConfig, Error, SqliteConfig, SqliteStore, open};
use brindle_testkit::TempDir;

use crate::fixture::next;

fn mode(path: &std::path::Path) -> u32 {
    std::fs::metadata(path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .permissions()
        .mode()
        & 0o777
}

pub fn file_is_private_and_its_directory_too() {
    let dir = TempDir::new("ds");
    let path = dir.join("var/lib/brindle/brindle.db");
    let s = open(&DatastoreConfig::sqlite(&path)).unwrap();
    s.create("/k", b"v").unwrap();
    assert_eq!(mode(&path), 0o600);
    assert_eq!(mode(&dir.join("var/lib/brindle")), 0o700);
    assert_eq!(mode(&dir.join("var")), 0o700);
    for side in ["brindle.db-wal", "brindle.db-shm"] {
        assert_eq!(
            mode(&dir.join(&format!("var/lib/brindle/{side}"))),
            0o600,
            "{side}"
        );
    }
}

fn corrupt_naming(result: brindle_datastore::Result<impl Sized>, path: &std::path::Path, what: &str) {
    match result {
        Err(e @ Error::Corrupt { .. }) => {
            let text = e.to_string();
            assert!(
                text.contains(&path.display().to_string()),
                "{text:?} does not name the file"
            );
            assert!(text.contains(what), "{text:?} does not say {what:?}");
        }
        Err(other) => panic!("expected Corrupt, got {other:?}"),
        Ok(_) => panic!("{} accepted", path.display()),
    }
}

pub fn garbage_file_is_reported_as_corrupt() {
    let dir = TempDir::new("ds");
    let path = dir.join("brindle.db");
    std::fs::write(
        &path,
        "this is not a database, just text that is long enough to look like one\n".repeat(100),
    )
    .unwrap();
    corrupt_naming(open(&DatastoreConfig::sqlite(&path)), &path, "not a database");
}

pub fn another_programs_database_is_refused() {
    let dir = TempDir::new("ds");
    let path = dir.join("other.db");
    foreign_db(&path);
    corrupt_naming(
        open(&DatastoreConfig::sqlite(&path)),
        &path,
        "not a Brindle datastore",
    );
}

/// Makes the database of "another program": a Brindle store whose header's application_id
/// (offset 68, big-endian) is changed, which leaves a valid SQLite file that is not ours.
fn foreign_db(path: &std::path::Path) {
    drop(SqliteStore::open(&SqliteConfig::new(path)).unwrap());
    let mut bytes = std::fs::read(path).unwrap();
    bytes[68..72].copy_from_slice(&0x1234_5678u32.to_be_bytes());
    std::fs::write(path, bytes).unwrap();
}

/// A Brindle store whose pages were overwritten: reads fail with Corrupt naming the file and
/// the key, they do not panic or return wrong data.
pub fn damaged_pages_are_reported_as_corrupt() {
    let dir = TempDir::new("ds");
    let path = dir.join("brindle.db");
    {
        let s = SqliteStore::open(&SqliteConfig::new(&path)).unwrap();
        for i in 0..200 {
            s.create(&format!("/calico/ipam/v2/handle/h{i:04}"), &[b'x'; 500])
                .unwrap();
        }
    }
    // Closing the last connection checkpoints the WAL into the main file; now damage every page
    // after the first (the header stays valid, the tables do not).
    let mut bytes = std::fs::read(&path).unwrap();
    assert!(bytes.len() > 8192, "the data is in the main file");
    for b in &mut bytes[4096..] {
        *b = 0xa5;
    }
    std::fs::write(&path, bytes).unwrap();
    let result = open(&DatastoreConfig::sqlite(&path)).and_then(|s| s.list("/calico/"));
    match result {
        Err(e @ Error::Corrupt { .. }) => {
            let text = e.to_string();
            assert!(text.contains(&path.display().to_string()), "{text}");
        }
        other => panic!("expected Corrupt, got {other:?}"),
    }
}

/// The change log keeps about `retain_events` revisions: older watches are told to re-list.
pub fn change_log_is_trimmed_automatically() {
    let dir = TempDir::new("ds");
    let mut config = SqliteConfig::new(dir.join("brindle.db"));
    config.retain_events = 16;
    let s = SqliteStore::open(&config).unwrap();
    let first = s.create("/w/0", b"v").unwrap();
    let mut last = first;
    for i in 1..100 {
        last = s.create(&format!("/w/{i}"), b"v").unwrap();
    }
    match next(&s.watch("/w/", first).unwrap()) {
        Err(Error::Compacted { oldest, .. }) => {
            assert!(
                oldest > first && oldest >= last - 16 - 2 && oldest <= last - 15,
                "oldest {oldest}, last {last}"
            );
        }
        other => panic!("expected Compacted, got {other:?}"),
    }
    // The last `retain_events` revisions are always there.
    let w = s.watch("/w/", last - 15).unwrap();
    assert_eq!(next(&w).unwrap().revision, last - 15);
}

/// Concurrent first opens of a fresh file (many CNI invocations at boot) all succeed and agree.
pub fn concurrent_first_opens_agree() {
    let dir = TempDir::new("ds");
    let path = dir.join("brindle.db");
    let stores: Vec<Box<dyn Datastore>> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..8)
            .map(|_| {
                let path = path.clone();
                scope.spawn(move || {
                    Box::new(SqliteStore::open(&SqliteConfig::new(path)).unwrap()) as Box<dyn Datastore>
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let r = stores[0].create("/k", b"v").unwrap();
    for s in &stores {
        assert_eq!(s.get("/k").unwrap().unwrap().revision, r);
    }
}

/// Another process holding the write lock longer than `busy_timeout`: the write gives up with
/// Unavailable naming the store and the key, writes nothing, and works once the lock is gone.
pub fn a_held_write_lock_times_out_cleanly() {
    let dir = TempDir::new("ds");
    let mut config = SqliteConfig::new(dir.join("brindle.db"));
    config.busy_timeout = std::time::Duration::from_millis(300);
    let s = SqliteStore::open(&config).unwrap();
    let blocker = rusqlite::Connection::open(&config.path).unwrap();
    blocker.execute_batch("BEGIN IMMEDIATE").unwrap();
    let e = s.create("/calico/ipam/v2/handle/h", b"{}").unwrap_err();
    let text = e.to_string();
    assert!(e.is_unavailable(), "{e:?}");
    assert!(
        text.contains(&s.describe()) && text.contains("/calico/ipam/v2/handle/h") && text.contains("locked"),
        "{text}"
    );
    blocker.execute_batch("ROLLBACK").unwrap();
    assert_eq!(s.get("/calico/ipam/v2/handle/h").unwrap(), None);
    s.create("/calico/ipam/v2/handle/h", b"{}").unwrap();
}
