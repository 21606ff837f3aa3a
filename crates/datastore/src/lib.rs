//! Brindle's datastore: a revisioned key-value store with compare-and-swap and watch.
//!
//! Every Brindle object (Calico v3 resources and the IPAM objects) is stored as a JSON value under
//! Calico's etcd key layout (`/calico/resources/v3/projectcalico.org/<plural>/<name>`,
//! `/calico/ipam/v2/...`), whichever backend holds it, so the data is recognisable to Calico
//! users and the backends are interchangeable.
//!
//! Module map:
//! - [`Datastore`] (`store`): the one trait every backend implements (get, list, create, update,
//!   delete with compare-and-swap on a revision, watch from a revision), with [`KeyValue`],
//!   [`Listing`], [`Watch`], [`WatchEvent`].
//! - [`Error`] (`error`): what can go wrong, always naming the store and the key.
//! - `config`: [`DatastoreConfig`] from flags ([`Overrides`]) and environment (Calico's and
//!   Brindle's names), and [`open`], which returns the chosen backend.
//! - [`origin`]: where each setting came from ([`origin::Source`]), for messages.
//! - [`SqliteStore`] (`sqlite`): the embedded default, one file shared by every process on the
//!   host (WAL, immediate transactions, busy retry, an event log for watches).
//! - [`EtcdStore`] (`etcd`): etcd v3 through a client thread (the trait is synchronous, the
//!   client async), transactions for compare-and-swap, resuming watches.
//! - [`txn`]: multi-key operations every backend implements: [`Datastore::read`] (several reads
//!   at one revision: [`Read`], [`Snapshot`]), [`Datastore::txn`] (writes to several keys,
//!   committed together when conditions on their revisions hold: [`Compare`], [`Op`],
//!   [`TxnOutcome`]) and [`Datastore::read_modify_write`] (read, decide, write as of what was
//!   read: one write transaction on SQLite, compare-and-swap retries on etcd), and guard keys
//!   for checks over a whole prefix (the IPPool overlap check).
//! - `retry`: [`retry_on_conflict`] for read-modify-write loops.
//! - [`client`]: typed access: [`Client`] for v3 resources with Calico's client semantics
//!   (`resourceVersion` = revision, uid and creation time on create, CAS on update/delete),
//!   [`client::json`] for raw JSON objects (IPAM) with their revisions, typed watches.
//!
//! Revisions follow etcd's model: one store-wide counter, bumped by every write; each key
//! remembers the revision of its last write (`mod_revision`), which is what compare-and-swap
//! compares against and what `resourceVersion` shows to users.
//!
//! Protocols: etcd's v3 gRPC API (etcd-io/etcd `api/etcdserverpb/rpc.proto`); SQLite's file
//! format with its WAL mode. No RFC applies.

pub mod client;
mod config;
mod error;
mod etcd;
pub mod origin;
mod retry;
mod sqlite;
mod store;
pub mod txn;

pub use client::{Client, ResourceError, ResourceEvent, ResourceWatch, Versioned};
pub use config::{
    DEFAULT_ETCD_ENDPOINT, DEFAULT_SQLITE_PATH, DatastoreConfig, EtcdConfig, Overrides, Secret, SqliteConfig,
    Synchronous, open,
};
pub use error::{Error, Result};
pub use etcd::EtcdStore;
pub use origin::{Origin, Setting, Source};
pub use retry::{IsConflict, retry_on_conflict};
pub use sqlite::SqliteStore;
pub use store::{Datastore, EventKind, KeyValue, Listing, Revision, Watch, WatchEvent};
pub use txn::{Compare, Op, Read, ReadResult, Snapshot, TxnOutcome};
