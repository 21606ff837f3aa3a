//! Multi-key operations: several reads at one revision ([`Read`], [`Snapshot`]), writes to
//! several keys committed together when conditions on their revisions hold ([`Compare`], [`Op`],
//! [`TxnOutcome`]), and read-check-write in one step ([`Datastore::read_modify_write`]).
//!
//! These are etcd's transaction model (etcd-io/etcd `api/etcdserverpb/rpc.proto`, `TxnRequest`)
//! cut down to what Brindle needs: conditions only compare a key's `mod_revision` (0 for "does
//! not exist"), and a failed transaction reports the revisions it found instead of running an
//! `else` branch.
//!
//! A listing cannot be compared (etcd cannot compare a range). Writers that must see every key
//! under a prefix before they write (no two overlapping IPPools) agree on a *guard key*: each
//! reads it with the listing and rewrites it with its change, so two writers that read the same
//! listing cannot both commit.
//!
//! [`Datastore::read_modify_write`]: crate::Datastore::read_modify_write

use crate::{Datastore, Error, KeyValue, Result, Revision};

/// One read of a [`Datastore::read`](crate::Datastore::read): a key, or every key under a prefix.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Read {
    Get(String),
    List(String),
}

/// The answer to one [`Read`], in the same position.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReadResult {
    Get(Option<KeyValue>),
    List(Vec<KeyValue>),
}

/// What several reads saw, all at one store revision.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Snapshot {
    pub results: Vec<ReadResult>,
    pub revision: Revision,
}

impl Snapshot {
    /// The key read by the `i`-th read (which must be a [`Read::Get`]).
    pub fn get(&self, i: usize) -> Option<&KeyValue> {
        match self.results.get(i) {
            Some(ReadResult::Get(kv)) => kv.as_ref(),
            _ => None,
        }
    }

    /// The keys listed by the `i`-th read (which must be a [`Read::List`]).
    pub fn list(&self, i: usize) -> &[KeyValue] {
        match self.results.get(i) {
            Some(ReadResult::List(items)) => items,
            _ => &[],
        }
    }

    /// The revision of the `i`-th read's key, 0 when it does not exist (what a [`Compare`]
    /// takes).
    pub fn revision_of(&self, i: usize) -> Revision {
        self.get(i).map(|kv| kv.revision).unwrap_or(0)
    }
}

/// A condition of a transaction: the key's `mod_revision` is `revision`; 0 means the key does
/// not exist.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Compare {
    pub key: String,
    pub revision: Revision,
}

impl Compare {
    pub fn new(key: impl Into<String>, revision: Revision) -> Compare {
        Compare {
            key: key.into(),
            revision,
        }
    }

    /// The key must not exist.
    pub fn absent(key: impl Into<String>) -> Compare {
        Compare::new(key, 0)
    }
}

/// A write of a transaction. Deleting a key that does not exist does nothing (etcd's rule).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Op {
    Put { key: String, value: Vec<u8> },
    Delete { key: String },
}

impl Op {
    pub fn put(key: impl Into<String>, value: impl Into<Vec<u8>>) -> Op {
        Op::Put {
            key: key.into(),
            value: value.into(),
        }
    }

    pub fn delete(key: impl Into<String>) -> Op {
        Op::Delete { key: key.into() }
    }

    pub fn key(&self) -> &str {
        match self {
            Op::Put { key, .. } | Op::Delete { key } => key,
        }
    }
}

/// How a transaction ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TxnOutcome {
    /// Every condition held and every write was made. The revision is the store revision after
    /// the last write (etcd gives all writes of a transaction that one revision; SQLite gives
    /// them consecutive ones, the last being this).
    Committed(Revision),
    /// A condition failed and nothing was written: the compared keys' revisions as found, in the
    /// order of the conditions (0: missing), read at the same instant as the check.
    Failed(Vec<Compare>),
}

/// What the decision of a [`Datastore::read_modify_write`](crate::Datastore::read_modify_write)
/// is: write these, or leave the store alone.
pub type Decision = Option<Vec<Op>>;

/// How often [`optimistic_read_modify_write`] re-reads after another writer changed a key it
/// read (Calico's `datastoreRetries`).
pub const DEFAULT_ATTEMPTS: usize = 100;

/// The conditions that make a write based on `snapshot` safe: every key the snapshot read with
/// [`Read::Get`] still at the revision seen (or still missing).
pub fn compares_for(reads: &[Read], snapshot: &Snapshot) -> Vec<Compare> {
    reads
        .iter()
        .enumerate()
        .filter_map(|(i, r)| match r {
            Read::Get(key) => Some(Compare::new(key.clone(), snapshot.revision_of(i))),
            Read::List(_) => None,
        })
        .collect()
}

/// [`Datastore::read_modify_write`](crate::Datastore::read_modify_write) for stores without a
/// way to hold a write lock across a round trip (etcd): read, decide, and commit only if every
/// key read is unchanged, re-reading and deciding again (up to `attempts` times) when another
/// writer got there first.
pub fn optimistic_read_modify_write<S: Datastore + ?Sized>(
    store: &S,
    reads: &[Read],
    attempts: usize,
    decide: &mut dyn FnMut(&Snapshot) -> Decision,
) -> Result<Option<Revision>> {
    let mut last = (Vec::new(), Vec::new());
    for _ in 0..attempts.max(1) {
        let snapshot = store.read(reads)?;
        let Some(ops) = decide(&snapshot) else {
            return Ok(None);
        };
        let expected = compares_for(reads, &snapshot);
        match store.txn(&expected, &ops)? {
            TxnOutcome::Committed(rev) => return Ok(Some(rev)),
            TxnOutcome::Failed(found) => last = (expected, found),
        }
    }
    Err(gave_up(store, last.0, last.1))
}

/// The conflict after the last attempt, naming the first key another writer changed.
fn gave_up<S: Datastore + ?Sized>(store: &S, expected: Vec<Compare>, found: Vec<Compare>) -> Error {
    let changed = expected
        .iter()
        .zip(&found)
        .find(|(e, f)| e.revision != f.revision)
        .or_else(|| expected.iter().zip(&found).next());
    let (key, expected, actual) = match changed {
        Some((e, f)) => (e.key.clone(), e.revision, f.revision),
        None => (String::new(), 0, 0),
    };
    Error::Conflict {
        store: store.describe(),
        key,
        expected,
        actual,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn compares_cover_gets_only() {
        let reads = [
            Read::Get("/a".into()),
            Read::List("/p/".into()),
            Read::Get("/b".into()),
        ];
        let snap = Snapshot {
            results: vec![
                ReadResult::Get(Some(KeyValue {
                    key: "/a".into(),
                    value: b"1".to_vec(),
                    revision: 7,
                })),
                ReadResult::List(Vec::new()),
                ReadResult::Get(None),
            ],
            revision: 9,
        };
        assert_eq!(
            compares_for(&reads, &snap),
            [Compare::new("/a", 7), Compare::absent("/b")]
        );
        assert_eq!(snap.revision_of(2), 0);
        assert!(snap.list(1).is_empty());
        assert_eq!(Op::delete("/x").key(), "/x");
    }
}
