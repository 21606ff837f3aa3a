//! The database file: creating it safely, opening connections with the right settings, and the
//! schema.
//!
//! Tables:
//! - `meta`: one row; `compacted` is the oldest revision whose events are still kept.
//! - `kv`: the current value of each key with its `create_revision` and `mod_revision`.
//! - `events`: the change log, one row per revision (put with value, delete without), which
//!   watchers read from any revision still kept. Its newest row's revision is the store-wide
//!   revision (etcd's model: every write bumps it by one).
//!
//! Keys are stored as BLOBs so that ordering and prefix ranges compare raw bytes, exactly as
//! etcd does (a TEXT column would compare differently against the BLOB upper bound of a range).

use std::fs::{DirBuilder, OpenOptions};
use std::io::ErrorKind;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::Path;
use std::time::Duration;

use rusqlite::{Connection, OpenFlags, TransactionBehavior};

use crate::config::{SqliteConfig, Synchronous};
use crate::sqlite::busy::{self, Failure};
use crate::{Error, Result};

/// `PRAGMA application_id`: "BRND". Tells a Brindle store from some other SQLite database.
const APPLICATION_ID: i64 = 0x4252_4e44;
/// `PRAGMA user_version`: the schema version this code reads and writes.
const SCHEMA_VERSION: i64 = 1;

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS meta (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    compacted INTEGER NOT NULL
);
INSERT OR IGNORE INTO meta (id, compacted) VALUES (1, 1);
CREATE TABLE IF NOT EXISTS kv (
    key BLOB PRIMARY KEY,
    value BLOB NOT NULL,
    create_revision INTEGER NOT NULL,
    mod_revision INTEGER NOT NULL
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS events (
    revision INTEGER PRIMARY KEY,
    key BLOB NOT NULL,
    kind INTEGER NOT NULL,
    value BLOB
);
";

/// Makes sure the file exists with mode 0600 (its directory 0700 when we create it), so the
/// store is never world-readable whatever the umask. An existing file keeps its mode. The
/// `-wal` and `-shm` files SQLite creates next to it copy the database file's mode.
pub(crate) fn ensure_file(store: &str, path: &Path) -> Result<()> {
    let unavailable = |what: String| Error::Unavailable {
        store: store.into(),
        detail: what,
    };
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty())
        && !dir.exists()
    {
        DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
            .map_err(|e| unavailable(format!("cannot create directory {}: {e}", dir.display())))?;
    }
    // Opening read-write here (rather than leaving it to SQLite) gives a precise reason
    // (permission denied, is a directory, read-only file system) instead of SQLite's generic
    // "unable to open database file".
    match OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .mode(0o600)
        .open(path)
    {
        Ok(_) => Ok(()),
        Err(e) if e.kind() == ErrorKind::IsADirectory => Err(unavailable(format!(
            "{} is a directory, not a database file",
            path.display()
        ))),
        Err(e) => Err(unavailable(format!("cannot open {}: {e}", path.display()))),
    }
}

/// Opens one connection with Brindle's settings. Used for the store's connection and for each
/// watcher's.
pub(crate) fn connect(store: &str, config: &SqliteConfig) -> Result<Connection> {
    let path = &config.path;
    let classify = |e, busy_for| busy::classify(store, "open", None, e, busy_for);
    let conn = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .map_err(|e| classify(e, None))?;
    // SQLite's own busy handler off: `busy::retry` waits instead, with shorter, jittered sleeps
    // (see there for the measurement that decided it).
    conn.busy_timeout(Duration::ZERO).map_err(|e| classify(e, None))?;
    // synchronous=NORMAL: in WAL mode a commit is durable against a crash of any process (the
    // WAL is in the OS page cache), and only an OS crash or power loss can lose the last
    // commits, never consistency. Every process using this file runs on this one host and dies
    // with it, pods included, so commits lost with the host describe pods that are gone too. FULL
    // fsyncs every commit and costs ~10× in commit rate (see the datastore benchmark).
    let sync = match config.synchronous {
        Synchronous::Normal => "NORMAL",
        Synchronous::Full => "FULL",
    };
    busy::retry(
        config.busy_timeout,
        || {
            // WAL: readers never block the writer or each other, which is what many agents and
            // CNI invocations on one file need. The mode is stored in the file; only the first
            // opener changes it (that needs a brief exclusive lock, hence the retry).
            let mode: String = conn.query_row("PRAGMA journal_mode", [], |r| r.get(0))?;
            if !mode.eq_ignore_ascii_case("wal") {
                let mode: String = conn.query_row("PRAGMA journal_mode=WAL", [], |r| r.get(0))?;
                if !mode.eq_ignore_ascii_case("wal") {
                    return Err(Failure::Store(Error::Unavailable {
                        store: store.into(),
                        detail: format!("cannot switch {} to WAL mode (got {mode})", path.display()),
                    }));
                }
            }
            conn.pragma_update(None, "synchronous", sync)?;
            Ok(())
        },
        classify,
    )?;
    Ok(conn)
}

/// Checks the file is a Brindle store of a version we understand, creating the schema in a
/// fresh file. Runs in an immediate transaction so concurrent first openers do not race.
pub(crate) fn init(store: &str, conn: &mut Connection, busy_timeout: Duration) -> Result<()> {
    let classify = |e, busy_for| busy::classify(store, "open", None, e, busy_for);
    // Fast path, without the write lock: a store already initialised at our version (the schema
    // and both pragmas are written in one transaction, so seeing them means the schema is
    // there). Every CNI call and CLI command opens the store; taking the write lock here made
    // each of them queue behind the writers of the others.
    let ready = busy::retry(
        busy_timeout,
        || {
            let app: i64 = conn.query_row("PRAGMA application_id", [], |r| r.get(0))?;
            let version: i64 = conn.query_row("PRAGMA user_version", [], |r| r.get(0))?;
            Ok(app == APPLICATION_ID && version == SCHEMA_VERSION)
        },
        classify,
    )?;
    if ready {
        return Ok(());
    }
    busy::retry(
        busy_timeout,
        || {
            let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
            let app: i64 = tx.query_row("PRAGMA application_id", [], |r| r.get(0))?;
            let version: i64 = tx.query_row("PRAGMA user_version", [], |r| r.get(0))?;
            let tables: i64 = tx.query_row("SELECT count(*) FROM sqlite_schema", [], |r| r.get(0))?;
            if app == 0 && version == 0 && tables == 0 {
                tx.execute_batch(SCHEMA)?;
                tx.pragma_update(None, "application_id", APPLICATION_ID)?;
                tx.pragma_update(None, "user_version", SCHEMA_VERSION)?;
            } else if app != APPLICATION_ID {
                return Err(Failure::Store(Error::Corrupt {
                    store: store.into(),
                    key: None,
                    detail: format!(
                        "not a Brindle datastore (an SQLite database with application_id {app:#x} and \
                         {tables} schema objects)"
                    ),
                }));
            } else if version > SCHEMA_VERSION {
                return Err(Failure::Store(Error::Corrupt {
                    store: store.into(),
                    key: None,
                    detail: format!(
                        "schema version {version} was written by a newer Brindle (this one reads \
                         version {SCHEMA_VERSION})"
                    ),
                }));
            }
            tx.commit()?;
            Ok(())
        },
        classify,
    )
}
