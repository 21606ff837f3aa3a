//! Knowing when the database changed, for watchers, without each of them polling.
//!
//! Commits through this store object wake watchers at once ([`Changes::notify`]). Commits by
//! other processes are found by one poller thread per store object, running only while a watch
//! exists: it reads `PRAGMA data_version` every `watch_poll_interval` (5 ms by default) on its
//! own connection. That pragma answers from the WAL index in shared memory (no disk read) and
//! changes exactly when another connection has committed; the poller then wakes every watcher.
//! So a process with many watches pays for one cheap check per interval, and a change made in
//! another process reaches the watchers within about one interval.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::Duration;

use rusqlite::Connection;

/// A generation counter bumped on every change, with a condition variable to wait on, plus the
/// poller that bumps it for other processes' commits.
#[derive(Default)]
pub(crate) struct Changes {
    generation: Mutex<u64>,
    cond: Condvar,
    poller: Mutex<Poller>,
}

#[derive(Default)]
struct Poller {
    watchers: usize,
    stop: Option<Arc<AtomicBool>>,
    thread: Option<JoinHandle<()>>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // Nothing here can be left half-updated by a panic: a counter and handles.
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl Changes {
    /// Something changed: wake every watcher.
    pub(crate) fn notify(&self) {
        *lock(&self.generation) += 1;
        self.cond.notify_all();
    }

    pub(crate) fn generation(&self) -> u64 {
        *lock(&self.generation)
    }

    /// Waits until the generation differs from `seen` or `timeout` passes; returns the
    /// generation then.
    pub(crate) fn wait(&self, seen: u64, timeout: Duration) -> u64 {
        let guard = lock(&self.generation);
        let (guard, _) = self
            .cond
            .wait_timeout_while(guard, timeout, |g| *g == seen)
            .unwrap_or_else(|p| p.into_inner());
        *guard
    }

    /// A watch starts: makes sure the poller runs. `connect` opens its connection (only called
    /// when the poller is not running yet).
    pub(crate) fn register(
        self: &Arc<Self>,
        store: &str,
        interval: Duration,
        connect: impl FnOnce() -> crate::Result<Connection>,
    ) -> crate::Result<()> {
        let mut p = lock(&self.poller);
        if p.thread.is_none() {
            let conn = connect()?;
            // Read the starting version before the watch's first read of the log: any commit
            // after this point changes it, so none falls between the two unseen.
            let initial =
                data_version(&conn).map_err(|e| super::busy::classify(store, "watch", None, e, None))?;
            let stop = Arc::new(AtomicBool::new(false));
            let (me, flag) = (self.clone(), stop.clone());
            p.thread = Some(
                std::thread::Builder::new()
                    .name("sqlite-changes".into())
                    .spawn(move || me.poll(conn, initial, interval, &flag))
                    .map_err(|e| crate::Error::Backend {
                        store: store.into(),
                        op: "watch",
                        key: None,
                        detail: format!("cannot start the change poller: {e}"),
                    })?,
            );
            p.stop = Some(stop);
        }
        p.watchers += 1;
        Ok(())
    }

    /// A watch ended: the last one stops the poller.
    pub(crate) fn unregister(&self) {
        let mut p = lock(&self.poller);
        p.watchers = p.watchers.saturating_sub(1);
        if p.watchers == 0 {
            if let Some(stop) = p.stop.take() {
                stop.store(true, Ordering::Relaxed);
            }
            if let Some(t) = p.thread.take() {
                drop(p);
                let _ = t.join();
            }
        }
    }

    fn poll(&self, conn: Connection, initial: i64, interval: Duration, stop: &AtomicBool) {
        let mut last = Some(initial);
        while !stop.load(Ordering::Relaxed) {
            std::thread::sleep(interval);
            let version = data_version(&conn).ok();
            // An error (None) also wakes the watchers: their own reads report it.
            if version.is_none() || version != last {
                self.notify();
            }
            last = version;
        }
    }
}

fn data_version(conn: &Connection) -> rusqlite::Result<i64> {
    conn.prepare_cached("PRAGMA data_version")?
        .query_row([], |r| r.get(0))
}
