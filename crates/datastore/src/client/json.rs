//! JSON objects under raw keys, with the revision each was read at: the IPAM objects
//! (blocks, affinities, handles, config) and anything else stored as Calico stores it.
//! A value that does not decode is [`Error::Corrupt`] naming the store and the key.

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::{Datastore, Error, Result, Revision};

/// A value and the store revision of its key when read: pass `revision` back to update or
/// delete it only if nobody changed it since.
#[derive(Debug, Clone, PartialEq)]
pub struct Versioned<T> {
    pub value: T,
    pub revision: Revision,
}

fn decode<T: DeserializeOwned>(store: &dyn Datastore, key: &str, bytes: &[u8]) -> Result<T> {
    serde_json::from_slice(bytes).map_err(|e| Error::Corrupt {
        store: store.describe(),
        key: Some(key.to_string()),
        detail: format!("not the expected JSON: {e}"),
    })
}

fn encode<T: Serialize>(value: &T) -> Vec<u8> {
    // Our own types always serialise (no maps with non-string keys, no failing Serialize).
    serde_json::to_vec(value).expect("JSON-serialisable value")
}

/// Reads and decodes one key.
pub fn get<T: DeserializeOwned>(store: &dyn Datastore, key: &str) -> Result<Option<Versioned<T>>> {
    store
        .get(key)?
        .map(|kv| {
            Ok(Versioned {
                value: decode(store, key, &kv.value)?,
                revision: kv.revision,
            })
        })
        .transpose()
}

/// Decoded values under a prefix, sorted by key, and the store revision of the listing.
#[derive(Debug, Clone, PartialEq)]
pub struct JsonListing<T> {
    pub items: Vec<(String, Versioned<T>)>,
    pub revision: Revision,
}

/// Every key under `prefix`, decoded.
pub fn list<T: DeserializeOwned>(store: &dyn Datastore, prefix: &str) -> Result<JsonListing<T>> {
    let listing = store.list(prefix)?;
    let items = listing
        .items
        .into_iter()
        .map(|kv| {
            let value = decode(store, &kv.key, &kv.value)?;
            Ok((
                kv.key,
                Versioned {
                    value,
                    revision: kv.revision,
                },
            ))
        })
        .collect::<Result<Vec<_>>>()?;
    Ok(JsonListing {
        items,
        revision: listing.revision,
    })
}

/// Creates `key` (it must not exist); returns its revision.
pub fn create<T: Serialize>(store: &dyn Datastore, key: &str, value: &T) -> Result<Revision> {
    store.create(key, &encode(value))
}

/// Replaces `key` if it is still at `revision`; returns the new revision.
pub fn update<T: Serialize>(
    store: &dyn Datastore,
    key: &str,
    value: &T,
    revision: Revision,
) -> Result<Revision> {
    store.update(key, &encode(value), revision)
}

/// Reads `key`, lets `change` modify the value, and writes it back at the revision read,
/// retrying from the read (up to `attempts` times) when another writer got there first.
/// `change` returns `false` to leave the value as it is (nothing is written). Returns the value
/// as stored, or `None` when the key does not exist.
pub fn modify<T: Serialize + DeserializeOwned>(
    store: &dyn Datastore,
    key: &str,
    attempts: usize,
    mut change: impl FnMut(&mut T) -> bool,
) -> Result<Option<Versioned<T>>> {
    crate::retry_on_conflict(attempts, || {
        let Some(mut current) = get::<T>(store, key)? else {
            return Ok(None);
        };
        if change(&mut current.value) {
            current.revision = update(store, key, &current.value, current.revision)?;
        }
        Ok(Some(current))
    })
}
