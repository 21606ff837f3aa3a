//! The agent's channels between its threads, each bounded, each with a stated overflow policy:
//! nothing is ever dropped, queued work is *coalesced* instead.
//!
//! - [`SyncQueue`], syncer thread → main loop: datastore changes **coalesced per key** (the
//!   latest value of a key replaces a queued one; a full listing replaces everything queued
//!   before it). It holds at most one entry per datastore key, so it is bounded by the
//!   datastore's size, whatever the rate of changes; the main loop takes the whole batch at once.
//! - [`Mailbox`], main loop → dataplane thread: the **latest desired state wins** (one slot),
//!   plus two flags (kernel changed behind our back, stop). One state is all the dataplane
//!   needs: an older one is obsolete the moment a newer one exists. Policy work rides along
//!   ([`PolicyWork`]): the calculation's deltas queue in order (what is queued when
//!   the thread looks is one nftables transaction), at most [`MAX_QUEUED_DELTAS`] of them; past that, or once a full state is
//!   queued, they are folded into one full state (a resync), so the queue stays bounded
//!   however fast policy changes.
//!
//! (The BGP driver's route channel is the BGP driver's, see [`crate::bgp`].)

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use brindle_policy::ir::{Delta, State};
use tokio::sync::Notify;

/// Deltas queued for the dataplane thread before they are folded into a full state.
pub const MAX_QUEUED_DELTAS: usize = 64;

/// Policy work for the dataplane thread (see the module docs).
#[derive(Debug, Clone, PartialEq)]
pub enum PolicyWork {
    /// The calculation's full state: the tables are read back and made to match.
    Resync(Box<State>),
    /// Deltas since what the thread last took, in order.
    Deltas(Vec<Delta>),
}

impl PolicyWork {
    /// `self` followed by `later`, as one piece of work.
    pub fn then(self, later: PolicyWork) -> PolicyWork {
        match (self, later) {
            (_, PolicyWork::Resync(s)) => PolicyWork::Resync(s),
            (PolicyWork::Resync(mut s), PolicyWork::Deltas(ds)) => {
                for d in &ds {
                    s.apply(d);
                }
                PolicyWork::Resync(s)
            }
            (PolicyWork::Deltas(mut a), PolicyWork::Deltas(b)) => {
                a.extend(b);
                PolicyWork::Deltas(a)
            }
        }
    }
}

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
    /// Brindle's nftables tables were changed by someone else.
    pub nft_changed: bool,
    /// Policy work queued since the receiver last looked.
    pub policy: Option<PolicyWork>,
    pub stop: bool,
}

impl<T> Default for Mail<T> {
    fn default() -> Self {
        Mail {
            latest: None,
            kernel_changed: false,
            nft_changed: false,
            policy: None,
            stop: false,
        }
    }
}

impl<T> Mail<T> {
    fn is_empty(&self) -> bool {
        self.latest.is_none()
            && !self.kernel_changed
            && !self.nft_changed
            && self.policy.is_none()
            && !self.stop
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

    /// Brindle's nftables tables changed behind the agent's back.
    pub fn nft_changed(&self) {
        self.post(|m| m.nft_changed = true);
    }

    /// The calculation's full state (supersedes queued deltas).
    pub fn policy_resync(&self, state: State) {
        self.post(|m| m.policy = Some(PolicyWork::Resync(Box::new(state))));
    }

    /// One delta of the calculation, queued after those not yet taken (applied to a queued
    /// full state); `state` (the calculation's full state, which includes the delta) is asked
    /// for only when the queue is full.
    pub fn policy_delta(&self, delta: Delta, state: impl FnOnce() -> State) {
        self.post(|m| {
            m.policy = Some(match m.policy.take() {
                None => PolicyWork::Deltas(vec![delta]),
                Some(PolicyWork::Deltas(mut ds)) if ds.len() < MAX_QUEUED_DELTAS => {
                    ds.push(delta);
                    PolicyWork::Deltas(ds)
                }
                Some(PolicyWork::Resync(mut s)) => {
                    s.apply(&delta);
                    PolicyWork::Resync(s)
                }
                Some(PolicyWork::Deltas(_)) => PolicyWork::Resync(Box::new(state())),
            })
        });
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

    fn delta(n: usize) -> Delta {
        Delta {
            profiles_removed: vec![format!("p{n}")],
            ..Default::default()
        }
    }

    #[test]
    fn policy_deltas_queue_in_order_then_fold_into_a_resync() {
        let m: Mailbox<()> = Mailbox::default();
        let never = || -> State { panic!("the state is not needed yet") };
        m.policy_delta(delta(1), never);
        m.policy_delta(delta(2), never);
        let got = m.wait_until(None);
        assert_eq!(got.policy, Some(PolicyWork::Deltas(vec![delta(1), delta(2)])));
        for i in 0..MAX_QUEUED_DELTAS {
            m.policy_delta(delta(i), never);
        }
        let mut asked = 0;
        m.policy_delta(delta(99), || {
            asked += 1;
            State::default()
        });
        assert_eq!(asked, 1, "a full queue folds into the full state");
        m.policy_delta(delta(100), never);
        assert_eq!(asked, 1, "a queued full state takes later deltas in place");
        let got = m.wait_until(None);
        assert!(matches!(got.policy, Some(PolicyWork::Resync(_))));
        m.policy_resync(State::default());
        m.policy_delta(delta(1), State::default);
        assert!(matches!(m.wait_until(None).policy, Some(PolicyWork::Resync(_))));
        let w = PolicyWork::Deltas(vec![delta(1)]).then(PolicyWork::Deltas(vec![delta(2)]));
        assert_eq!(w, PolicyWork::Deltas(vec![delta(1), delta(2)]));
    }
}
