use std::sync::mpsc;
use std::time::Duration;

use crate::Result;
use crate::txn::{Compare, Decision, Op, Read, Snapshot, TxnOutcome};

/// A store-wide revision (etcd's `mod_revision` model). Always > 0 for a stored key.
pub type Revision = i64;

/// One stored key with its value (JSON bytes) and the revision of its last write.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyValue {
    pub key: String,
    pub value: Vec<u8>,
    pub revision: Revision,
}

/// The result of a prefix listing: the items, sorted by key, and the store revision the listing
/// was taken at (a watch from `revision + 1` sees every later change exactly once).
#[derive(Debug, Clone, Default)]
pub struct Listing {
    pub items: Vec<KeyValue>,
    pub revision: Revision,
}

/// What happened to a key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventKind {
    Put,
    Delete,
}

/// One change seen by a watch. `value` is `None` for deletes; `revision` is the revision of the
/// change itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WatchEvent {
    pub kind: EventKind,
    pub key: String,
    pub value: Option<Vec<u8>>,
    pub revision: Revision,
}

/// A live watch: a stream of events, in revision order, fed by a background thread of the
/// backend. Dropping it stops the watch.
pub struct Watch {
    rx: mpsc::Receiver<Result<WatchEvent>>,
    _stop: Box<dyn Send>,
}

impl Watch {
    /// Builds a watch from the receiving end of the backend's channel and a guard whose drop
    /// stops the backend's producer.
    pub fn new(rx: mpsc::Receiver<Result<WatchEvent>>, stop: Box<dyn Send>) -> Self {
        Watch { rx, _stop: stop }
    }

    /// Waits for the next event. `None` when the producer has ended.
    pub fn recv(&self) -> Option<Result<WatchEvent>> {
        self.rx.recv().ok()
    }

    /// Waits up to `timeout` for the next event. `Ok(None)` on timeout; `Err(())` when the
    /// producer has ended.
    #[allow(clippy::result_unit_err)]
    pub fn recv_timeout(&self, timeout: Duration) -> std::result::Result<Option<Result<WatchEvent>>, ()> {
        match self.rx.recv_timeout(timeout) {
            Ok(ev) => Ok(Some(ev)),
            Err(mpsc::RecvTimeoutError::Timeout) => Ok(None),
            Err(mpsc::RecvTimeoutError::Disconnected) => Err(()),
        }
    }
}

/// The one datastore interface. Synchronous: the CLI, the CNI plugin and IPAM are short-lived
/// synchronous programs; the agent calls it from its own threads (never from a tokio worker).
///
/// Every mutating call is atomic: it either fully happens or leaves the store untouched.
pub trait Datastore: Send + Sync {
    /// A short name of the store for messages, e.g. `sqlite:/var/lib/brindle/brindle.db` or
    /// `etcdv3:http://127.0.0.1:2379`.
    fn describe(&self) -> String;

    /// Reads one key. `Ok(None)` when it does not exist.
    fn get(&self, key: &str) -> Result<Option<KeyValue>>;

    /// Lists every key starting with `prefix`, sorted by key.
    fn list(&self, prefix: &str) -> Result<Listing>;

    /// Creates a key that must not exist yet ([`Error::AlreadyExists`](crate::Error) otherwise).
    /// Returns the new revision.
    fn create(&self, key: &str, value: &[u8]) -> Result<Revision>;

    /// Replaces the value of a key whose current revision is `expected`
    /// ([`Error::Conflict`](crate::Error) if it changed, `NotFound` if it is gone).
    /// Returns the new revision.
    fn update(&self, key: &str, value: &[u8], expected: Revision) -> Result<Revision>;

    /// Deletes a key; with `Some(rev)` only if its revision is still `rev`.
    /// Returns the revision of the deletion.
    fn delete(&self, key: &str, expected: Option<Revision>) -> Result<Revision>;

    /// Streams every change under `prefix` with a revision ≥ `from`, in order, each exactly once.
    /// `from == 0` means "changes after now" (etcd's convention); the usual pattern is
    /// `list(prefix)` then `watch(prefix, listing.revision + 1)`.
    ///
    /// `watch` itself fails only when the store cannot be reached. A `from` older than the
    /// store's kept history is reported in the stream as [`Error::Compacted`](crate::Error),
    /// after which the stream ends (the caller lists again); so is a watcher that falls that far
    /// behind. Other `Err` items are informational (the store became unreachable): the watch keeps
    /// retrying and resumes after the last event it delivered.
    fn watch(&self, prefix: &str, from: Revision) -> Result<Watch>;

    /// Several reads at one store revision: one round trip on etcd, one read transaction on
    /// SQLite. For a few keys and small prefixes (a node's affinities, the pools); a big prefix
    /// is better listed with [`Datastore::list`].
    fn read(&self, reads: &[Read]) -> Result<Snapshot>;

    /// Writes `ops` together if every [`Compare`] holds, else writes nothing and reports the
    /// compared keys' revisions. Atomic on both backends; other writers see all of the writes or
    /// none.
    fn txn(&self, compares: &[Compare], ops: &[Op]) -> Result<TxnOutcome>;

    /// Reads `reads`, lets `decide` choose the writes from what it saw, and commits them only as
    /// of that snapshot: if any key read with [`Read::Get`] changed meanwhile, `decide` runs again
    /// on a fresh snapshot (up to `attempts` times, then [`Error::Conflict`](crate::Error)).
    /// Listings are not compared (see [`crate::txn`] on guard keys). `decide` returning `None`
    /// leaves the store alone (`Ok(None)`); otherwise the commit's revision is returned.
    ///
    /// SQLite runs the reads, the decision and the writes in one write transaction, so `decide`
    /// runs once (or again only after lock contention); the default (etcd) is
    /// [`optimistic_read_modify_write`](crate::txn::optimistic_read_modify_write).
    fn read_modify_write(
        &self,
        reads: &[Read],
        attempts: usize,
        decide: &mut dyn FnMut(&Snapshot) -> Decision,
    ) -> Result<Option<Revision>> {
        crate::txn::optimistic_read_modify_write(self, reads, attempts, decide)
    }
}

/// The smallest byte string greater than every string starting with `prefix` (etcd's
/// `range_end` for a prefix); `None` when there is none (empty prefix, or all 0xff).
pub(crate) fn prefix_end(prefix: &[u8]) -> Option<Vec<u8>> {
    let mut end = prefix.to_vec();
    while let Some(last) = end.pop() {
        if last < 0xff {
            end.push(last + 1);
            return Some(end);
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::prefix_end;

    #[test]
    fn prefix_end_is_etcds_range_end() {
        assert_eq!(prefix_end(b"/calico/"), Some(b"/calico0".to_vec()));
        assert_eq!(prefix_end(b"a\xff"), Some(b"b".to_vec()));
        assert_eq!(prefix_end(b"\xff\xff"), None);
        assert_eq!(prefix_end(b""), None);
    }
}
