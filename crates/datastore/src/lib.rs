//! Brindle's datastore: a revisioned key-value store with compare-and-swap and watch.
//!
//! Every Brindle object (Calico v3 resources and the IPAM objects) is stored as a JSON value under
//! Calico's etcd key layout (`/calico/resources/v3/projectcalico.org/<plural>/<name>`,
//! `/calico/ipam/v2/...`), whichever backend holds it, so the data is recognisable to Calico
//! users and the backends are interchangeable.
//!
//! Module map:
//! - [`Datastore`]: the one trait every backend implements (get, list, create, update, delete
//!   with compare-and-swap on a revision, watch from a revision).
//! - [`Error`]: what can go wrong, always naming the store and the key.
//!
//! Revisions follow etcd's model: one store-wide counter, bumped by every write; each key
//! remembers the revision of its last write (`mod_revision`), which is what compare-and-swap
//! compares against and what `resourceVersion` shows to users.

mod error;
mod store;

pub use error::{Error, Result};
pub use store::{Datastore, EventKind, KeyValue, Listing, Revision, Watch, WatchEvent};
