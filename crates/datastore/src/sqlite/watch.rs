//! Watching the SQLite store: a thread per watch with its own connection, reading the `events`
//! log from the watch's next revision whenever [`Changes`] says the database changed.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, mpsc};
use std::thread::JoinHandle;
use std::time::Duration;

use rusqlite::{Connection, params};

use super::changes::Changes;
use super::{busy, meta, text};
use crate::store::prefix_end;
use crate::{Error, EventKind, Revision, Watch, WatchEvent};

/// A watcher re-reads the log at least this often even without a wake-up (belt and braces:
/// wake-ups are what it normally runs on).
const FALLBACK: Duration = Duration::from_secs(1);
/// Events read per query; a watcher far behind catches up in batches of this size.
const BATCH: i64 = 512;
/// Events buffered between the thread and a slow consumer before the thread waits.
const CHANNEL: usize = 1024;

/// Stops and joins the watch thread when the [`Watch`] is dropped. The receiver is dropped
/// first (field order in `Watch`), so a thread blocked on a full channel wakes up too.
struct StopGuard {
    stop: Arc<AtomicBool>,
    changes: Arc<Changes>,
    thread: Option<JoinHandle<()>>,
}

impl Drop for StopGuard {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        self.changes.notify();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
        self.changes.unregister();
    }
}

struct Watcher {
    store: String,
    conn: Connection,
    prefix: String,
    end: Option<Vec<u8>>,
    next: Revision,
    tx: mpsc::SyncSender<crate::Result<WatchEvent>>,
}

/// `(revision, key, kind, value)` as stored in `events`.
type EventRow = (Revision, Vec<u8>, i64, Option<Vec<u8>>);

enum Poll {
    /// Events read; `more` when the batch was full.
    Read {
        events: Vec<WatchEvent>,
        more: bool,
    },
    Compacted {
        oldest: Revision,
    },
}

/// Starts the watch thread. The caller has registered the watch with `changes`; the returned
/// watch unregisters it when dropped.
pub(crate) fn start(
    store: String,
    conn: Connection,
    prefix: &str,
    from: Revision,
    changes: Arc<Changes>,
) -> Watch {
    let (tx, rx) = mpsc::sync_channel(CHANNEL);
    let stop = Arc::new(AtomicBool::new(false));
    let watcher = Watcher {
        store,
        conn,
        prefix: prefix.to_string(),
        end: prefix_end(prefix.as_bytes()),
        next: from,
        tx,
    };
    let (s, c) = (stop.clone(), changes.clone());
    // A thread that cannot be spawned (resource exhaustion) is a panic in std's own spawn too;
    // the watch cannot exist without it.
    let thread = std::thread::Builder::new()
        .name("sqlite-watch".into())
        .spawn(move || watcher.run(&s, &c))
        .expect("spawn watch thread");
    Watch::new(
        rx,
        Box::new(StopGuard {
            stop,
            changes,
            thread: Some(thread),
        }),
    )
}

impl Watcher {
    fn run(mut self, stop: &AtomicBool, changes: &Changes) {
        let mut failing = false;
        while !stop.load(Ordering::Relaxed) {
            // Taken before reading: a change during the read makes the wait below return at once.
            let seen = changes.generation();
            match self.poll() {
                Ok(Poll::Read { events, more }) => {
                    failing = false;
                    for ev in events {
                        if self.tx.send(Ok(ev)).is_err() {
                            return;
                        }
                    }
                    if more {
                        continue;
                    }
                }
                Ok(Poll::Compacted { oldest }) => {
                    let _ = self.tx.send(Err(Error::Compacted {
                        store: self.store.clone(),
                        prefix: self.prefix.clone(),
                        requested: self.next,
                        oldest,
                    }));
                    return;
                }
                // Report a failure once, then keep trying: a locked or briefly unreadable file
                // must not end the watch.
                Err(e) => {
                    if !failing && self.tx.send(Err(e)).is_err() {
                        return;
                    }
                    failing = true;
                }
            }
            changes.wait(seen, FALLBACK);
        }
    }

    fn poll(&mut self) -> crate::Result<Poll> {
        let store = self.store.clone();
        let classify = |e, busy_for| busy::classify(&store, "watch", Some(&self.prefix), e, busy_for);
        let tx = self.conn.transaction().map_err(|e| classify(e, None))?;
        let (current, compacted) = meta(&tx).map_err(|e| classify(e, None))?;
        if self.next < compacted {
            return Ok(Poll::Compacted { oldest: compacted });
        }
        let rows: Vec<EventRow> = tx
            .prepare_cached(
                "SELECT revision, key, kind, value FROM events
                 WHERE revision >= ?1 AND key >= ?2 AND (?3 IS NULL OR key < ?3)
                 ORDER BY revision LIMIT ?4",
            )
            .and_then(|mut s| {
                s.query_map(params![self.next, self.prefix.as_bytes(), self.end, BATCH], |r| {
                    Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?))
                })?
                .collect()
            })
            .map_err(|e| classify(e, None))?;
        drop(tx);
        let more = rows.len() as i64 == BATCH;
        let mut events = Vec::with_capacity(rows.len());
        for (revision, key, kind, value) in rows {
            let key = text(&store, key).map_err(|f| match f {
                busy::Failure::Store(e) => e,
                busy::Failure::Sql(e) => classify(e, None),
            })?;
            events.push(WatchEvent {
                kind: EventKind::from_sql(kind),
                key,
                value,
                revision,
            });
        }
        // Past a full batch, continue after its last event; otherwise everything up to the
        // snapshot's revision has been seen, matching or not.
        self.next = match (more, events.last()) {
            (true, Some(last)) => last.revision + 1,
            _ => self.next.max(current + 1),
        };
        Ok(Poll::Read { events, more })
    }
}
