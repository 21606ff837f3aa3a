//! The distributed backend: etcd v3, keys and values exactly as given (Calico's layout).
//!
//! Each operation is one etcd request, so each is atomic: create is a transaction on
//! `version(key) == 0`; update on `mod_revision(key) == expected` (and `version > 0`, since a
//! missing key's mod_revision is 0); delete likewise with an optional revision. The `else`
//! branch of each transaction reads the key, so a failed compare-and-swap tells, from the same
//! atomic snapshot, whether the key is gone or which revision won. Listings are paginated at a
//! fixed revision so large prefixes (IPAM blocks) do not hit gRPC's message size limit.
//! [`worker`] explains how the async client serves the synchronous trait; [`watch`] how
//! watches survive an unreachable cluster.

mod watch;
mod worker;

use std::sync::Arc;

use etcd_client::{
    Client, CompactionOptions, Compare, CompareOp, GetOptions, KeyValue as EtcdKv, Txn, TxnOp, TxnOpResponse,
    TxnResponse,
};

use crate::config::EtcdConfig;
use crate::store::prefix_end;
use crate::txn::{Compare as TxnCompare, Op, Read, ReadResult, Snapshot, TxnOutcome};
use crate::{Datastore, Error, KeyValue, Listing, Result, Revision, Watch};
use worker::{Worker, is_compacted, map_error};

/// Keys per page when listing.
const PAGE: i64 = 500;

/// The etcd v3 store. Cheap to share (`Arc`); all threads use one gRPC connection.
pub struct EtcdStore {
    worker: Arc<Worker>,
}

impl EtcdStore {
    /// Connects to `config.endpoints` and checks a member answers, or fails with
    /// [`Error::Unavailable`] (naming the endpoints) within the connect timeout.
    pub fn open(config: &EtcdConfig) -> Result<EtcdStore> {
        let store = format!("etcdv3:{}", config.endpoints.join(","));
        if config.endpoints.is_empty() {
            return Err(Error::Config {
                store,
                detail: "no endpoint given".into(),
            });
        }
        Ok(EtcdStore {
            worker: Arc::new(Worker::start(store, config)?),
        })
    }

    /// Compacts etcd's history before `revision` (physically), as an operator or a test would.
    pub fn compact(&self, revision: Revision) -> Result<()> {
        let store = self.worker.store.clone();
        self.worker.call("compact", None, move |mut c| async move {
            c.compact(revision, Some(CompactionOptions::new().with_physical()))
                .await
                .map(drop)
                .map_err(|e| map_error(&store, "compact", None, e))
        })
    }

    /// Runs a one-key transaction on the client thread.
    fn txn_one(&self, op: &'static str, key: &str, txn: Txn) -> Result<TxnResponse> {
        let (store, k) = (self.worker.store.clone(), key.to_string());
        self.worker.call(op, Some(key), move |mut c| async move {
            c.txn(txn).await.map_err(|e| map_error(&store, op, Some(&k), e))
        })
    }

    /// The key's current revision as read by a transaction's `else` branch (`None`: missing).
    fn else_revision(resp: &TxnResponse) -> Option<Revision> {
        resp.op_responses().into_iter().find_map(|r| match r {
            TxnOpResponse::Get(g) => g.kvs().first().map(EtcdKv::mod_revision),
            _ => None,
        })
    }

    fn store(&self) -> String {
        self.worker.store.clone()
    }

    fn not_found(&self, key: &str) -> Error {
        Error::NotFound {
            store: self.store(),
            key: key.into(),
        }
    }
}

fn revision_of(resp: &TxnResponse) -> Revision {
    resp.header().map(|h| h.revision()).unwrap_or_default()
}

pub(crate) fn key_string(store: &str, key: &[u8]) -> Result<String> {
    String::from_utf8(key.to_vec()).map_err(|_| Error::Corrupt {
        store: store.into(),
        key: Some(String::from_utf8_lossy(key).into_owned()),
        detail: "key is not UTF-8".into(),
    })
}

/// Why a paginated listing failed: a compaction under its fixed revision (worth starting
/// over), or anything else.
enum ListFail {
    Compacted,
    Other(Error),
}

/// The range `[start, end)` etcd lists for `prefix`.
fn prefix_range(prefix: &str) -> (Vec<u8>, Vec<u8>) {
    let end = prefix_end(prefix.as_bytes()).unwrap_or_else(|| vec![0]);
    // etcd refuses an empty key; "\0" is the smallest key there is.
    let start = if prefix.is_empty() {
        vec![0]
    } else {
        prefix.as_bytes().to_vec()
    };
    (start, end)
}

fn to_kv(store: &str, kv: &EtcdKv) -> Result<KeyValue> {
    Ok(KeyValue {
        key: key_string(store, kv.key())?,
        value: kv.value().to_vec(),
        revision: kv.mod_revision(),
    })
}

/// The key after `kv`'s in byte order: where the next page starts.
fn after(kv: &EtcdKv) -> Vec<u8> {
    let mut next = kv.key().to_vec();
    next.push(0);
    next
}

async fn list_at(store: &str, c: &mut Client, prefix: &str) -> std::result::Result<Listing, ListFail> {
    let (mut start, end) = prefix_range(prefix);
    let mut listing = Listing::default();
    loop {
        let mut options = GetOptions::new().with_range(end.clone()).with_limit(PAGE);
        if listing.revision > 0 {
            options = options.with_revision(listing.revision);
        }
        let resp = c.get(start.clone(), Some(options)).await.map_err(|e| {
            if is_compacted(&e) {
                ListFail::Compacted
            } else {
                ListFail::Other(map_error(store, "list", Some(prefix), e))
            }
        })?;
        if listing.revision == 0 {
            listing.revision = resp.header().map(|h| h.revision()).unwrap_or_default();
        }
        for kv in resp.kvs() {
            listing.items.push(to_kv(store, kv).map_err(ListFail::Other)?);
        }
        match (resp.more(), resp.kvs().last()) {
            (true, Some(last)) => start = after(last),
            _ => return Ok(listing),
        }
    }
}

/// The etcd condition for one of ours: revision 0 is "does not exist" (`version == 0`).
fn condition(c: &TxnCompare) -> Compare {
    if c.revision == 0 {
        Compare::version(c.key.as_str(), CompareOp::Equal, 0)
    } else {
        Compare::mod_revision(c.key.as_str(), CompareOp::Equal, c.revision)
    }
}

fn operation(op: &Op) -> TxnOp {
    match op {
        Op::Put { key, value } => TxnOp::put(key.as_str(), value.as_slice(), None),
        Op::Delete { key } => TxnOp::delete(key.as_str(), None),
    }
}

/// Every read as one transaction of range requests (one round trip). A listing longer than a
/// page goes on with plain paged reads at the transaction's revision.
async fn read_all(store: &str, c: &mut Client, reads: &[Read]) -> Result<Snapshot> {
    let ops: Vec<TxnOp> = reads
        .iter()
        .map(|r| match r {
            Read::Get(key) => TxnOp::get(key.as_str(), None),
            Read::List(prefix) => {
                let (start, end) = prefix_range(prefix);
                TxnOp::get(start, Some(GetOptions::new().with_range(end).with_limit(PAGE)))
            }
        })
        .collect();
    let resp = c
        .txn(Txn::new().and_then(ops))
        .await
        .map_err(|e| map_error(store, "read", None, e))?;
    let revision = revision_of(&resp);
    let mut results = Vec::with_capacity(reads.len());
    for (read, answer) in reads.iter().zip(resp.op_responses()) {
        let TxnOpResponse::Get(g) = answer else {
            return Err(Error::Backend {
                store: store.into(),
                op: "read",
                key: None,
                detail: "etcd answered a range request with another kind of response".into(),
            });
        };
        let mut items = g
            .kvs()
            .iter()
            .map(|kv| to_kv(store, kv))
            .collect::<Result<Vec<_>>>()?;
        match read {
            Read::Get(_) => results.push(ReadResult::Get(items.pop())),
            Read::List(prefix) => {
                let (_, end) = prefix_range(prefix);
                let mut more = g.more();
                let mut start = g.kvs().last().map(after);
                while let (true, Some(from)) = (more, start.take()) {
                    let options = GetOptions::new()
                        .with_range(end.clone())
                        .with_limit(PAGE)
                        .with_revision(revision);
                    let page = c
                        .get(from, Some(options))
                        .await
                        .map_err(|e| map_error(store, "read", Some(prefix), e))?;
                    for kv in page.kvs() {
                        items.push(to_kv(store, kv)?);
                    }
                    more = page.more();
                    start = page.kvs().last().map(after);
                }
                results.push(ReadResult::List(items));
            }
        }
    }
    Ok(Snapshot { results, revision })
}

impl Datastore for EtcdStore {
    fn describe(&self) -> String {
        self.store()
    }

    fn get(&self, key: &str) -> Result<Option<KeyValue>> {
        let (store, k) = (self.store(), key.to_string());
        self.worker.call("get", Some(key), move |mut c| async move {
            let resp = c
                .get(k.clone(), None)
                .await
                .map_err(|e| map_error(&store, "get", Some(&k), e))?;
            Ok(resp.kvs().first().map(|kv| KeyValue {
                key: k,
                value: kv.value().to_vec(),
                revision: kv.mod_revision(),
            }))
        })
    }

    fn list(&self, prefix: &str) -> Result<Listing> {
        let (store, p) = (self.store(), prefix.to_string());
        self.worker.call("list", Some(prefix), move |mut c| async move {
            // A compaction between two pages invalidates the fixed revision: start over.
            let mut attempts = 0;
            loop {
                match list_at(&store, &mut c, &p).await {
                    Ok(listing) => return Ok(listing),
                    Err(ListFail::Compacted) if attempts < 3 => attempts += 1,
                    Err(ListFail::Compacted) => {
                        return Err(Error::Backend {
                            store,
                            op: "list",
                            key: Some(p),
                            detail: "history compacted under the listing three times in a row".into(),
                        });
                    }
                    Err(ListFail::Other(e)) => return Err(e),
                }
            }
        })
    }

    fn create(&self, key: &str, value: &[u8]) -> Result<Revision> {
        let txn = Txn::new()
            .when([Compare::version(key, CompareOp::Equal, 0)])
            .and_then([TxnOp::put(key, value, None)]);
        let resp = self.txn_one("create", key, txn)?;
        if resp.succeeded() {
            Ok(revision_of(&resp))
        } else {
            Err(Error::AlreadyExists {
                store: self.store(),
                key: key.into(),
            })
        }
    }

    fn update(&self, key: &str, value: &[u8], expected: Revision) -> Result<Revision> {
        let txn = Txn::new()
            .when([
                Compare::mod_revision(key, CompareOp::Equal, expected),
                Compare::version(key, CompareOp::Greater, 0),
            ])
            .and_then([TxnOp::put(key, value, None)])
            .or_else([TxnOp::get(key, None)]);
        let resp = self.txn_one("update", key, txn)?;
        if resp.succeeded() {
            return Ok(revision_of(&resp));
        }
        match Self::else_revision(&resp) {
            None => Err(self.not_found(key)),
            Some(actual) => Err(Error::Conflict {
                store: self.store(),
                key: key.into(),
                expected,
                actual,
            }),
        }
    }

    fn delete(&self, key: &str, expected: Option<Revision>) -> Result<Revision> {
        let mut compares = vec![Compare::version(key, CompareOp::Greater, 0)];
        if let Some(rev) = expected {
            compares.push(Compare::mod_revision(key, CompareOp::Equal, rev));
        }
        let txn = Txn::new()
            .when(compares)
            .and_then([TxnOp::delete(key, None)])
            .or_else([TxnOp::get(key, None)]);
        let resp = self.txn_one("delete", key, txn)?;
        if resp.succeeded() {
            return Ok(revision_of(&resp));
        }
        match (Self::else_revision(&resp), expected) {
            (Some(actual), Some(expected)) => Err(Error::Conflict {
                store: self.store(),
                key: key.into(),
                expected,
                actual,
            }),
            _ => Err(self.not_found(key)),
        }
    }

    fn watch(&self, prefix: &str, from: Revision) -> Result<Watch> {
        watch::start(&self.worker, prefix, from.max(0))
    }

    fn read(&self, reads: &[Read]) -> Result<Snapshot> {
        let (store, reads) = (self.store(), reads.to_vec());
        self.worker.call("read", None, move |mut c| async move {
            read_all(&store, &mut c, &reads).await
        })
    }

    fn txn(&self, compares: &[TxnCompare], ops: &[Op]) -> Result<TxnOutcome> {
        let key = compares
            .first()
            .map(|c| c.key.as_str())
            .or(ops.first().map(Op::key));
        let txn = Txn::new()
            .when(compares.iter().map(condition).collect::<Vec<_>>())
            .and_then(ops.iter().map(operation).collect::<Vec<_>>())
            .or_else(
                compares
                    .iter()
                    .map(|c| TxnOp::get(c.key.as_str(), None))
                    .collect::<Vec<_>>(),
            );
        let (store, k) = (self.store(), key.unwrap_or_default().to_string());
        let resp = self.worker.call("txn", key, move |mut c| async move {
            c.txn(txn)
                .await
                .map_err(|e| map_error(&store, "txn", Some(&k), e))
        })?;
        if resp.succeeded() {
            return Ok(TxnOutcome::Committed(revision_of(&resp)));
        }
        // The `else` branch read each compared key, in order, from the same snapshot.
        let found = compares
            .iter()
            .zip(resp.op_responses())
            .map(|(c, r)| {
                let rev = match r {
                    TxnOpResponse::Get(g) => g.kvs().first().map(EtcdKv::mod_revision).unwrap_or(0),
                    _ => 0,
                };
                TxnCompare::new(c.key.clone(), rev)
            })
            .collect();
        Ok(TxnOutcome::Failed(found))
    }
}
