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
    fn txn(&self, op: &'static str, key: &str, txn: Txn) -> Result<TxnResponse> {
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

async fn list_at(store: &str, c: &mut Client, prefix: &str) -> std::result::Result<Listing, ListFail> {
    let end = prefix_end(prefix.as_bytes()).unwrap_or_else(|| vec![0]);
    // etcd refuses an empty key; "\0" is the smallest key there is.
    let mut start = if prefix.is_empty() {
        vec![0]
    } else {
        prefix.as_bytes().to_vec()
    };
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
            listing.items.push(KeyValue {
                key: key_string(store, kv.key()).map_err(ListFail::Other)?,
                value: kv.value().to_vec(),
                revision: kv.mod_revision(),
            });
        }
        match (resp.more(), resp.kvs().last()) {
            (true, Some(last)) => {
                start = last.key().to_vec();
                start.push(0);
            }
            _ => return Ok(listing),
        }
    }
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
        let resp = self.txn("create", key, txn)?;
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
        let resp = self.txn("update", key, txn)?;
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
        let resp = self.txn("delete", key, txn)?;
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
}
