//! The agent's channels between its threads, each bounded, each with a stated overflow policy:
//! nothing is ever dropped, queued work is *coalesced* instead.
//!
//! - [`SyncQueue`], syncer thread → main loop: datastore changes **coalesced per key** (the
//!   latest value of a key replaces a queued one; a full listing replaces everything queued
//!   before it). It holds at most one entry per datastore key, so it is bounded by the
//!   datastore's size, whatever the rate of changes; the main loop takes the whole batch at once.
//! - [`Mailbox`], main loop → dataplane thread: the **latest desired state wins** (one slot),
//!   plus two flags (kernel changed behind our back, stop). One state is all the dataplane
//!   needs: an older one is obsolete the moment a newer one exists.
//!
//! (The BGP driver's route channel is the BGP driver's, see [`crate::bgp`].)

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use tokio::sync::Notify;

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // The guarded data is plain values, consistent after any panic in a holder.
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// What the syncer queued since the main loop last looked.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct SyncBatch {
    /// A full listing (first sync or resync): replace the cache with it, then apply `updates`.
    pub snapshot: Option<Vec<(String, Vec<u8>)>>,
    /// The latest change of each key since (`None`: deleted), in key order.
    pub updates: BTreeMap<String, Option<Vec<u8>>>,
    /// The datastore's state as last reported: `Some(error)` while it cannot be read.
    pub unavailable: Option<Option<String>>,
    /// How many key changes were coalesced into `updates` (for metrics).
    pub events: u64,
}

impl SyncBatch {
    pub fn is_empty(&self) -> bool {
        self.snapshot.is_none() && self.updates.is_empty() && self.unavailable.is_none()
    }
}

/// Syncer → main loop, coalescing per key (see the module docs).
#[derive(Debug, Default)]
pub struct SyncQueue {
    pending: Mutex<SyncBatch>,
    notify: Notify,
    closed: AtomicBool,
}

impl SyncQueue {
    fn push(&self, f: impl FnOnce(&mut SyncBatch)) {
        f(&mut lock(&self.pending));
        self.notify.notify_one();
    }

    /// A full listing: everything queued before it is obsolete.
    pub fn snapshot(&self, items: Vec<(String, Vec<u8>)>) {
        self.push(|p| {
            p.snapshot = Some(items);
            p.updates.clear();
            p.unavailable = Some(None);
        });
    }

    /// One key changed (`None`: deleted); replaces a queued change of the same key.
    pub fn update(&self, key: String, value: Option<Vec<u8>>) {
        self.push(|p| {
            p.updates.insert(key, value);
            p.events += 1;
        });
    }

    /// The datastore cannot be read (the syncer retries).
    pub fn unavailable(&self, error: String) {
        self.push(|p| p.unavailable = Some(Some(error)));
    }

    /// Takes everything queued.
    pub fn take(&self) -> SyncBatch {
        std::mem::take(&mut *lock(&self.pending))
    }

    /// Waits until something is queued, then takes it.
    pub async fn next(&self) -> SyncBatch {
        loop {
            let batch = self.take();
            if !batch.is_empty() {
                return batch;
            }
            self.notify.notified().await;
        }
    }

    /// The receiver is gone: the syncer stops.
    pub fn close(&self) {
        self.closed.store(true, Ordering::Relaxed);
    }

    pub fn is_closed(&self) -> bool {
        self.closed.load(Ordering::Relaxed)
    }
}

/// What a [`Mailbox`] holds: the latest value and the flags set since the receiver last looked.
#[derive(Debug)]
pub struct Mail<T> {
    pub latest: Option<T>,
    /// The kernel changed in a way the last apply did not cause.
    pub kernel_changed: bool,
    pub stop: bool,
}

impl<T> Default for Mail<T> {
    fn default() -> Self {
        Mail {
            latest: None,
            kernel_changed: false,
            stop: false,
        }
    }
}

impl<T> Mail<T> {
    fn is_empty(&self) -> bool {
        self.latest.is_none() && !self.kernel_changed && !self.stop
    }
}

/// Main loop (and kernel monitor) → dataplane thread: latest wins (see the module docs).
#[derive(Debug)]
pub struct Mailbox<T> {
    slot: Mutex<Mail<T>>,
    ready: Condvar,
}

impl<T> Default for Mailbox<T> {
    fn default() -> Self {
        Mailbox {
            slot: Mutex::new(Mail::default()),
            ready: Condvar::new(),
        }
    }
}

impl<T> Mailbox<T> {
    fn post(&self, f: impl FnOnce(&mut Mail<T>)) {
        f(&mut lock(&self.slot));
        self.ready.notify_one();
    }

    /// A new value: replaces one not yet taken.
    pub fn send(&self, value: T) {
        self.post(|m| m.latest = Some(value));
    }

    /// Something changed in the kernel that needs a repair.
    pub fn kernel_changed(&self) {
        self.post(|m| m.kernel_changed = true);
    }

    pub fn stop(&self) {
        self.post(|m| m.stop = true);
    }

    /// Waits until something is posted or `deadline` passes; takes everything (empty on
    /// timeout).
    pub fn wait_until(&self, deadline: Option<Instant>) -> Mail<T> {
        let mut slot = lock(&self.slot);
        while slot.is_empty() {
            match deadline {
                None => slot = self.ready.wait(slot).unwrap_or_else(|p| p.into_inner()),
                Some(d) => {
                    let left = d.saturating_duration_since(Instant::now());
                    if left == Duration::ZERO {
                        break;
                    }
                    slot = self
                        .ready
                        .wait_timeout(slot, left)
                        .unwrap_or_else(|p| p.into_inner())
                        .0;
                }
            }
        }
        std::mem::take(&mut *slot)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sync_queue_coalesces_per_key_and_a_snapshot_supersedes() {
        let q = SyncQueue::default();
        q.update("/a".into(), Some(b"1".to_vec()));
        q.update("/b".into(), Some(b"1".to_vec()));
        q.update("/a".into(), Some(b"2".to_vec()));
        q.update("/a".into(), None);
        let b = q.take();
        assert_eq!(b.events, 4, "every change counted");
        assert_eq!(b.updates.len(), 2, "one entry per key");
        assert_eq!(b.updates["/a"], None, "the latest change wins");
        assert!(q.take().is_empty());

        q.update("/old".into(), None);
        q.unavailable("down".into());
        q.snapshot(vec![("/a".into(), b"3".to_vec())]);
        q.update("/c".into(), Some(b"1".to_vec()));
        let b = q.take();
        assert_eq!(b.snapshot.unwrap().len(), 1);
        assert_eq!(
            b.updates.keys().collect::<Vec<_>>(),
            ["/c"],
            "changes after the listing only"
        );
        assert_eq!(b.unavailable, Some(None), "a listing means the datastore is back");
    }

    #[test]
    fn sync_queue_wakes_the_main_loop() {
        let q = std::sync::Arc::new(SyncQueue::default());
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let q2 = q.clone();
        let t = std::thread::spawn(move || {
            for i in 0..1000 {
                q2.update(format!("/k{}", i % 10), Some(vec![]));
            }
        });
        let mut keys = std::collections::BTreeSet::new();
        let mut events = 0;
        rt.block_on(async {
            while events < 1000 {
                let b = q.next().await;
                events += b.events;
                assert!(b.updates.len() <= 10, "bounded by the number of keys");
                keys.extend(b.updates.into_keys());
            }
        });
        t.join().unwrap();
        assert_eq!(keys.len(), 10);
    }

    #[test]
    fn mailbox_keeps_the_latest_and_the_flags() {
        let m = Mailbox::default();
        m.send(1);
        m.send(2);
        m.kernel_changed();
        let got = m.wait_until(None);
        assert_eq!((got.latest, got.kernel_changed, got.stop), (Some(2), true, false));
        let t0 = Instant::now();
        let empty = m.wait_until(Some(t0 + Duration::from_millis(20)));
        assert!(empty.latest.is_none() && !empty.kernel_changed);
        assert!(t0.elapsed() >= Duration::from_millis(20));
        m.stop();
        assert!(m.wait_until(None).stop);
    }
}
