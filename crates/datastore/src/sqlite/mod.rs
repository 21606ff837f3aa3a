//! The embedded backend: one SQLite file shared by every Brindle process on the host.
//!
//! Concurrency: WAL journal (readers never block), every write in a `BEGIN IMMEDIATE`
//! transaction (it takes the write lock up front, so a read-then-write never fails half way on
//! an upgrade), SQLite's busy handler plus our own jittered retry ([`busy`]) when the lock is
//! held by another process. Compare-and-swap is a read of the key's `mod_revision` and the write
//! in that one transaction.
//!
//! Revisions follow etcd: one store-wide counter bumped by each write. The counter is the newest
//! row of the `events` log (each write appends its event, revision = previous + 1, in the same
//! transaction), so a write dirties only the log's last page and the key's page, and a watcher
//! ([`watch`]) sees every committed change exactly once and in order. The log is trimmed to the
//! last `retain_events` revisions, never below its newest row, which carries the counter.

mod busy;
mod changes;
mod schema;
mod watch;

use std::path::Path;
use std::sync::{Arc, Mutex};

use rusqlite::{Connection, OptionalExtension, Transaction, TransactionBehavior, params};

use crate::config::SqliteConfig;
use crate::store::prefix_end;
use crate::txn::{Compare, Decision, Op, Read, ReadResult, Snapshot, TxnOutcome};
use crate::{Datastore, Error, EventKind, KeyValue, Listing, Result, Revision, Watch};
use busy::Failure;
use changes::Changes;

const PUT: i64 = 0;
const DELETE: i64 = 1;

/// The SQLite store. One connection per store object, shared by its threads behind a mutex;
/// each watch has its own connection and thread.
pub struct SqliteStore {
    describe: String,
    config: SqliteConfig,
    conn: Mutex<Connection>,
    /// Wakes this store's watchers after its own commits and, through a poller, after other
    /// processes' commits.
    changes: Arc<Changes>,
}

impl SqliteStore {
    /// Opens (creating if needed) the store at `config.path`.
    pub fn open(config: &SqliteConfig) -> Result<SqliteStore> {
        let describe = format!("sqlite:{}", config.path.display());
        if !config.create && !config.path.is_file() {
            return Err(Error::Config {
                store: describe,
                detail: if config.path.exists() {
                    "not a database file".into()
                } else {
                    "no such database file (this command reads and never creates one)".into()
                },
            });
        }
        schema::ensure_file(&describe, &config.path)?;
        let mut conn = schema::connect(&describe, config)?;
        schema::init(&describe, &mut conn, config.busy_timeout)?;
        Ok(SqliteStore {
            describe,
            config: config.clone(),
            conn: Mutex::new(conn),
            changes: Arc::new(Changes::default()),
        })
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.config.path
    }

    /// Drops the change history before `revision`: a watch from an older revision then gets
    /// [`Error::Compacted`]. Like etcd's compaction; normally automatic (`retain_events`).
    pub fn compact(&self, revision: Revision) -> Result<()> {
        self.write_tx("compact", None, |tx| {
            let (current, _) = meta(tx)?;
            if revision > current {
                return Err(Failure::Store(Error::Backend {
                    store: self.describe.clone(),
                    op: "compact",
                    key: None,
                    detail: format!("revision {revision} is in the future (current {current})"),
                }));
            }
            compact_to(tx, revision)?;
            Ok(())
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Connection> {
        // A panic while holding the lock cannot leave a transaction open (the Transaction guard
        // rolls back on unwind), so the connection is still sound.
        self.conn.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Runs `f` in an immediate (write-locked) transaction, retrying on lock contention, and
    /// wakes local watchers after the commit. `f` returning an error rolls everything back.
    fn write_tx<T>(
        &self,
        op: &'static str,
        key: Option<&str>,
        f: impl FnMut(&Transaction<'_>) -> std::result::Result<T, Failure>,
    ) -> Result<T> {
        let out = self.transact(TransactionBehavior::Immediate, op, key, f)?;
        self.changes.notify();
        Ok(out)
    }

    /// Runs `f` in a read transaction (one consistent snapshot).
    fn read_tx<T>(
        &self,
        op: &'static str,
        key: Option<&str>,
        f: impl FnMut(&Transaction<'_>) -> std::result::Result<T, Failure>,
    ) -> Result<T> {
        self.transact(TransactionBehavior::Deferred, op, key, f)
    }

    fn transact<T>(
        &self,
        behavior: TransactionBehavior,
        op: &'static str,
        key: Option<&str>,
        mut f: impl FnMut(&Transaction<'_>) -> std::result::Result<T, Failure>,
    ) -> Result<T> {
        let mut conn = self.lock();
        busy::retry(
            self.config.busy_timeout,
            || {
                let tx = conn.transaction_with_behavior(behavior)?;
                let v = f(&tx)?;
                tx.commit()?;
                Ok(v)
            },
            |e, busy_for| busy::classify(&self.describe, op, key, e, busy_for),
        )
    }

    /// Appends the event with the next store revision and returns it. Every `retain_events / 8`
    /// revisions, trims the log to the last `retain_events`, so trimming is amortised.
    fn record(
        &self,
        tx: &Transaction<'_>,
        key: &str,
        kind: i64,
        value: Option<&[u8]>,
    ) -> rusqlite::Result<Revision> {
        let rev: Revision = tx
            .prepare_cached(
                "INSERT INTO events (revision, key, kind, value)
                 VALUES ((SELECT coalesce(max(revision), 0) + 1 FROM events), ?1, ?2, ?3)
                 RETURNING revision",
            )?
            .query_row(params![key.as_bytes(), kind, value], |r| r.get(0))?;
        let retain = self.config.retain_events.max(1) as i64;
        if rev % (retain / 8).max(1) == 0 && rev > retain {
            compact_to(tx, rev - retain + 1)?;
        }
        Ok(rev)
    }

    /// The key's current `mod_revision`, if it exists.
    fn current(&self, tx: &Transaction<'_>, key: &str) -> rusqlite::Result<Option<Revision>> {
        tx.prepare_cached("SELECT mod_revision FROM kv WHERE key = ?1")?
            .query_row([key.as_bytes()], |r| r.get(0))
            .optional()
    }

    /// One key as stored, in `tx`.
    fn get_in(&self, tx: &Transaction<'_>, key: &str) -> rusqlite::Result<Option<KeyValue>> {
        let row: Option<(Vec<u8>, Revision)> = tx
            .prepare_cached("SELECT value, mod_revision FROM kv WHERE key = ?1")?
            .query_row([key.as_bytes()], |r| Ok((r.get(0)?, r.get(1)?)))
            .optional()?;
        Ok(row.map(|(value, revision)| KeyValue {
            key: key.into(),
            value,
            revision,
        }))
    }

    /// Every key under `prefix`, in key order, in `tx`.
    fn list_in(&self, tx: &Transaction<'_>, prefix: &str) -> std::result::Result<Vec<KeyValue>, Failure> {
        let end = prefix_end(prefix.as_bytes());
        let mut stmt = tx.prepare_cached(
            "SELECT key, value, mod_revision FROM kv
             WHERE key >= ?1 AND (?2 IS NULL OR key < ?2) ORDER BY key",
        )?;
        let rows = stmt.query_map(params![prefix.as_bytes(), end], |r| {
            Ok((r.get::<_, Vec<u8>>(0)?, r.get(1)?, r.get(2)?))
        })?;
        let mut items = Vec::new();
        for row in rows {
            let (k, value, revision) = row?;
            items.push(KeyValue {
                key: text(&self.describe, k)?,
                value,
                revision,
            });
        }
        Ok(items)
    }

    /// Several reads in `tx` (one snapshot).
    fn read_in(&self, tx: &Transaction<'_>, reads: &[Read]) -> std::result::Result<Snapshot, Failure> {
        let (revision, _) = meta(tx)?;
        let mut results = Vec::with_capacity(reads.len());
        for r in reads {
            results.push(match r {
                Read::Get(key) => ReadResult::Get(self.get_in(tx, key)?),
                Read::List(prefix) => ReadResult::List(self.list_in(tx, prefix)?),
            });
        }
        Ok(Snapshot { results, revision })
    }

    /// Makes the writes of a transaction in `tx`; returns the store revision after them.
    fn apply_ops(&self, tx: &Transaction<'_>, ops: &[Op]) -> rusqlite::Result<Revision> {
        let mut last = None;
        for op in ops {
            match op {
                Op::Put { key, value } => {
                    let rev = self.record(tx, key, PUT, Some(value))?;
                    tx.prepare_cached(
                        "INSERT INTO kv (key, value, create_revision, mod_revision) VALUES (?1, ?2, ?3, ?3)
                         ON CONFLICT (key) DO UPDATE SET value = ?2, mod_revision = ?3",
                    )?
                    .execute(params![key.as_bytes(), value, rev])?;
                    last = Some(rev);
                }
                Op::Delete { key } => {
                    if self.current(tx, key)?.is_some() {
                        let rev = self.record(tx, key, DELETE, None)?;
                        tx.prepare_cached("DELETE FROM kv WHERE key = ?1")?
                            .execute([key.as_bytes()])?;
                        last = Some(rev);
                    }
                }
            }
        }
        match last {
            Some(rev) => Ok(rev),
            None => Ok(meta(tx)?.0),
        }
    }

    fn not_found(&self, key: &str) -> Failure {
        Failure::Store(Error::NotFound {
            store: self.describe.clone(),
            key: key.into(),
        })
    }

    fn conflict(&self, key: &str, expected: Revision, actual: Revision) -> Failure {
        Failure::Store(Error::Conflict {
            store: self.describe.clone(),
            key: key.into(),
            expected,
            actual,
        })
    }
}

/// `(revision, compacted)`: the store revision (the newest event's; 0 before the first write)
/// and the oldest revision a watch may start from.
fn meta(tx: &Transaction<'_>) -> rusqlite::Result<(Revision, Revision)> {
    tx.prepare_cached(
        "SELECT (SELECT coalesce(max(revision), 0) FROM events), compacted FROM meta WHERE id = 1",
    )?
    .query_row([], |r| Ok((r.get(0)?, r.get(1)?)))
}

/// Keeps the events from `keep_from` on. `keep_from` is at most the store revision, so the
/// newest event, which carries the revision counter, always stays. Never moves `compacted`
/// backwards.
fn compact_to(tx: &Transaction<'_>, keep_from: Revision) -> rusqlite::Result<()> {
    tx.prepare_cached("DELETE FROM events WHERE revision < ?1")?
        .execute([keep_from])?;
    tx.prepare_cached("UPDATE meta SET compacted = max(compacted, ?1) WHERE id = 1")?
        .execute([keep_from])?;
    Ok(())
}

fn text(store: &str, key_bytes: Vec<u8>) -> std::result::Result<String, Failure> {
    String::from_utf8(key_bytes).map_err(|e| {
        Failure::Store(Error::Corrupt {
            store: store.into(),
            key: Some(String::from_utf8_lossy(e.as_bytes()).into_owned()),
            detail: "key is not UTF-8".into(),
        })
    })
}

impl Datastore for SqliteStore {
    fn describe(&self) -> String {
        self.describe.clone()
    }

    fn get(&self, key: &str) -> Result<Option<KeyValue>> {
        self.read_tx("get", Some(key), |tx| Ok(self.get_in(tx, key)?))
    }

    fn list(&self, prefix: &str) -> Result<Listing> {
        self.read_tx("list", Some(prefix), |tx| {
            let (revision, _) = meta(tx)?;
            let items = self.list_in(tx, prefix)?;
            Ok(Listing { items, revision })
        })
    }

    fn create(&self, key: &str, value: &[u8]) -> Result<Revision> {
        self.write_tx("create", Some(key), |tx| {
            if self.current(tx, key)?.is_some() {
                return Err(Failure::Store(Error::AlreadyExists {
                    store: self.describe.clone(),
                    key: key.into(),
                }));
            }
            let rev = self.record(tx, key, PUT, Some(value))?;
            tx.prepare_cached(
                "INSERT INTO kv (key, value, create_revision, mod_revision) VALUES (?1, ?2, ?3, ?3)",
            )?
            .execute(params![key.as_bytes(), value, rev])?;
            Ok(rev)
        })
    }

    fn update(&self, key: &str, value: &[u8], expected: Revision) -> Result<Revision> {
        self.write_tx("update", Some(key), |tx| {
            match self.current(tx, key)? {
                None => return Err(self.not_found(key)),
                Some(actual) if actual != expected => return Err(self.conflict(key, expected, actual)),
                Some(_) => {}
            }
            let rev = self.record(tx, key, PUT, Some(value))?;
            tx.prepare_cached("UPDATE kv SET value = ?2, mod_revision = ?3 WHERE key = ?1")?
                .execute(params![key.as_bytes(), value, rev])?;
            Ok(rev)
        })
    }

    fn delete(&self, key: &str, expected: Option<Revision>) -> Result<Revision> {
        self.write_tx("delete", Some(key), |tx| {
            match (self.current(tx, key)?, expected) {
                (None, _) => return Err(self.not_found(key)),
                (Some(actual), Some(expected)) if actual != expected => {
                    return Err(self.conflict(key, expected, actual));
                }
                _ => {}
            }
            let rev = self.record(tx, key, DELETE, None)?;
            tx.prepare_cached("DELETE FROM kv WHERE key = ?1")?
                .execute([key.as_bytes()])?;
            Ok(rev)
        })
    }

    fn watch(&self, prefix: &str, from: Revision) -> Result<Watch> {
        let from = if from <= 0 {
            self.read_tx("watch", Some(prefix), |tx| Ok(meta(tx)?.0 + 1))?
        } else {
            from
        };
        let conn = schema::connect(&self.describe, &self.config)?;
        self.changes
            .register(&self.describe, self.config.watch_poll_interval, || {
                schema::connect(&self.describe, &self.config)
            })?;
        Ok(watch::start(
            self.describe.clone(),
            conn,
            prefix,
            from,
            self.changes.clone(),
        ))
    }

    fn read(&self, reads: &[Read]) -> Result<Snapshot> {
        self.read_tx("read", None, |tx| self.read_in(tx, reads))
    }

    fn txn(&self, compares: &[Compare], ops: &[Op]) -> Result<TxnOutcome> {
        let key = compares
            .first()
            .map(|c| c.key.as_str())
            .or(ops.first().map(Op::key));
        self.write_tx("txn", key, |tx| self.txn_in(tx, compares, ops))
    }

    /// One write transaction: reads, decision and writes see no other writer in between, so
    /// there is nothing to retry (`attempts` is for the optimistic backends).
    fn read_modify_write(
        &self,
        reads: &[Read],
        _attempts: usize,
        decide: &mut dyn FnMut(&Snapshot) -> Decision,
    ) -> Result<Option<Revision>> {
        self.write_tx("read-modify-write", None, |tx| {
            let snapshot = self.read_in(tx, reads)?;
            match decide(&snapshot) {
                None => Ok(None),
                Some(ops) => Ok(Some(self.apply_ops(tx, &ops)?)),
            }
        })
    }
}

impl SqliteStore {
    fn txn_in(
        &self,
        tx: &Transaction<'_>,
        compares: &[Compare],
        ops: &[Op],
    ) -> std::result::Result<TxnOutcome, Failure> {
        let mut found = Vec::with_capacity(compares.len());
        for c in compares {
            found.push(Compare::new(
                c.key.clone(),
                self.current(tx, &c.key)?.unwrap_or(0),
            ));
        }
        if found.iter().zip(compares).any(|(f, c)| f.revision != c.revision) {
            return Ok(TxnOutcome::Failed(found));
        }
        Ok(TxnOutcome::Committed(self.apply_ops(tx, ops)?))
    }
}

impl EventKind {
    fn from_sql(kind: i64) -> EventKind {
        if kind == DELETE {
            EventKind::Delete
        } else {
            EventKind::Put
        }
    }
}
