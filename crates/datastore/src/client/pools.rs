//! IPPool writes that cannot race into overlapping pools.
//!
//! Creating a pool checks its CIDR against every stored pool (Calico's overlap rule). The check
//! and the write are one [`Datastore::read_modify_write`](crate::Datastore::read_modify_write):
//! on SQLite one write transaction; on etcd the pools are read together with a guard key,
//! [`POOL_GUARD_KEY`], and the pool is written with the guard rewritten, on condition that the
//! guard is unchanged. Every pool write (create, update, delete) rewrites the guard, so two
//! creates that listed the same pools cannot both commit: the second re-reads, sees the first
//! pool and is refused. Updates cannot change a pool's CIDR, so they compare only the pool's own
//! revision.

use brindle_model::keys::resource_prefix;
use brindle_model::resources::IPPool;
use brindle_model::{Kind, Resource, validate_ippool_create};

use super::{ResourceError, Result, decode};
use crate::txn::DEFAULT_ATTEMPTS;
use crate::{Compare, Datastore, Op, Read, Revision, TxnOutcome};

/// The key every IPPool write rewrites (Brindle's, not Calico's: etcd cannot compare a range,
/// see [`crate::txn`]). Its value names the last write, for people reading the store.
pub const POOL_GUARD_KEY: &str = "/calico/brindle/guards/ippools";

fn guard_value(op: &str, name: &str) -> Vec<u8> {
    serde_json::to_vec(&serde_json::json!({"lastWrite": {"op": op, "kind": "IPPool", "name": name}}))
        .expect("JSON values serialise")
}

/// The stored pools as the overlap check sees them. A row that does not decode cannot be
/// checked against and is left out (it is reported by `get` and can be deleted by name).
fn decodable_pools(items: &[crate::KeyValue]) -> Vec<IPPool> {
    items
        .iter()
        .filter_map(|kv| match decode(Kind::IPPool, &kv.key, &kv.value, kv.revision) {
            Ok(Resource::IPPool(p)) => Some(p),
            _ => None,
        })
        .collect()
}

/// Creates the pool stored as `value` under `key` unless its name exists or its CIDR overlaps a
/// stored pool, atomically. Returns the revision of the write.
pub(crate) fn create(store: &dyn Datastore, pool: &IPPool, key: &str, value: &[u8]) -> Result<Revision> {
    let reads = [
        Read::Get(POOL_GUARD_KEY.into()),
        Read::List(resource_prefix(Kind::IPPool, None)),
        Read::Get(key.into()),
    ];
    let mut refused: Option<ResourceError> = None;
    let written = store.read_modify_write(&reads, DEFAULT_ATTEMPTS, &mut |snap| {
        refused = None;
        if snap.get(2).is_some() {
            refused = Some(ResourceError::AlreadyExists(
                Resource::IPPool(pool.clone()).identifier(),
            ));
            return None;
        }
        if let Err(e) = validate_ippool_create(pool, &decodable_pools(snap.list(1))) {
            refused = Some(e.into());
            return None;
        }
        // The pool last: on SQLite each write of a transaction takes its own revision and the
        // transaction reports the last one, which must be the pool's (its resourceVersion).
        Some(vec![
            Op::put(POOL_GUARD_KEY, guard_value("create", &pool.metadata.name)),
            Op::put(key, value),
        ])
    })?;
    match (written, refused) {
        (Some(rev), _) => Ok(rev),
        (None, Some(e)) => Err(e),
        (None, None) => unreachable!("a pool create decided not to write without saying why"),
    }
}

/// Writes (`Some(value)`) or deletes (`None`) the pool at `key` if it is still at `expected`,
/// rewriting the guard. `Err(Ok(()))`: the key is gone; `Err(Err(rev))`: it is at `rev`.
pub(crate) fn write_at(
    store: &dyn Datastore,
    name: &str,
    key: &str,
    value: Option<&[u8]>,
    expected: Revision,
) -> crate::Result<std::result::Result<Revision, Option<Revision>>> {
    let (op, verb) = match value {
        Some(v) => (Op::put(key, v), "update"),
        None => (Op::delete(key), "delete"),
    };
    let ops = [Op::put(POOL_GUARD_KEY, guard_value(verb, name)), op];
    match store.txn(&[Compare::new(key, expected)], &ops)? {
        TxnOutcome::Committed(rev) => Ok(Ok(rev)),
        TxnOutcome::Failed(found) => Ok(Err(found.first().map(|c| c.revision).filter(|r| *r != 0))),
    }
}
