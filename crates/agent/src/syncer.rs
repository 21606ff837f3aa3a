//! The syncer: a thread that lists the datastore once, then watches it, and feeds every change
//! the agent caches (`cache::is_relevant`) to the main loop through a [`SyncQueue`] (coalesced
//! per key; Calico's syncer). The datastore is synchronous, so it never runs on a tokio worker.
//! A broken or compacted watch is resumed with a fresh listing (a resync).

use std::sync::Arc;
use std::time::Duration;

use brindle_datastore::{Datastore, EventKind};

use crate::channels::SyncQueue;

/// The root of everything the agent reads.
pub const PREFIX: &str = "/calico/";

/// Starts the syncer thread. It stops when the queue is closed.
pub fn spawn(ds: Arc<dyn Datastore>, tx: Arc<SyncQueue>) -> std::thread::JoinHandle<()> {
    std::thread::Builder::new()
        .name("syncer".into())
        .spawn(move || run(ds.as_ref(), &tx))
        .expect("spawn syncer thread")
}

fn run(ds: &dyn Datastore, tx: &SyncQueue) {
    let mut backoff = Duration::from_millis(100);
    loop {
        if tx.is_closed() {
            return;
        }
        let listing = match ds.list(PREFIX) {
            Ok(l) => l,
            Err(e) => {
                tracing::warn!(error = %e, "datastore list failed; retrying");
                tx.unavailable(e.to_string());
                std::thread::sleep(backoff);
                backoff = (backoff * 2).min(Duration::from_secs(5));
                continue;
            }
        };
        let from = listing.revision + 1;
        let items = listing
            .items
            .into_iter()
            .filter(|kv| crate::cache::is_relevant(&kv.key))
            .map(|kv| (kv.key, kv.value))
            .collect();
        tx.snapshot(items);
        let watch = match ds.watch(PREFIX, from) {
            Ok(w) => w,
            Err(e) => {
                tracing::warn!(error = %e, "datastore watch failed; resyncing");
                std::thread::sleep(backoff);
                backoff = (backoff * 2).min(Duration::from_secs(5));
                continue;
            }
        };
        backoff = Duration::from_millis(100);
        loop {
            match watch.recv_timeout(Duration::from_secs(1)) {
                Ok(None) => {
                    if tx.is_closed() {
                        return;
                    }
                }
                Ok(Some(Ok(ev))) => {
                    if tx.is_closed() {
                        return;
                    }
                    if !crate::cache::is_relevant(&ev.key) {
                        continue;
                    }
                    let value = match ev.kind {
                        EventKind::Put => ev.value,
                        EventKind::Delete => None,
                    };
                    tx.update(ev.key, value);
                }
                Ok(Some(Err(e))) => {
                    tracing::warn!(error = %e, "datastore watch broke; resyncing");
                    break;
                }
                Err(()) => {
                    tracing::warn!("datastore watch ended; resyncing");
                    break;
                }
            }
        }
    }
}
