//! What deleting a Node or an IPPool also does, as Calico's client does it:
//!
//! - Node (`clientv3 nodes.Delete`): the addresses of its WorkloadEndpoints and its tunnel
//!   addresses are released, its block affinities given up (empty blocks deleted, used ones
//!   orphaned), then its WorkloadEndpoints, its BGPPeers and its `node.<name>`
//!   FelixConfiguration and BGPConfiguration are deleted. Otherwise its blocks would stay
//!   affine to a node that no longer exists, their addresses unusable.
//! - IPPool (`clientv3 ippools.Delete`): the pool is disabled first (no new allocations), and
//!   after a moment for allocations in flight, every node's affinity to its blocks is released.

use std::time::Duration;

use brindle_ipam::Ipam;
use brindle_model::{Kind, Resource};

use crate::client::{Client, ResourceError};

/// How long a pool stays disabled before its affinities are released (Calico's 500 ms), so an
/// allocation that read the pool as enabled finishes first.
const POOL_DISABLE_GRACE: Duration = Duration::from_millis(500);

/// Runs the clean-up that comes before deleting `kind`/`name`. Nothing for other kinds, for a
/// resource that does not exist, or when `resource_version` no longer matches (the delete
/// itself then reports it).
pub fn before_delete(
    client: &Client,
    kind: Kind,
    namespace: &str,
    name: &str,
    resource_version: &str,
) -> Result<(), String> {
    let current = match client.get(kind, namespace, name) {
        Ok(Some(r)) => r,
        Ok(None) => return Ok(()),
        // A stored row that does not decode is deleted by name: a Node's dependents are found
        // by its name all the same; a pool's CIDR is unknown, so its affinities stay (the
        // IPAM garbage collector releases them once their blocks are empty).
        Err(ResourceError::Corrupt(..)) if kind == Kind::Node => {
            let ipam = Ipam::new(client.store().clone());
            return delete_node_dependents(&ipam, name);
        }
        Err(ResourceError::Corrupt(..)) => return Ok(()),
        Err(e) => return Err(e.to_string()),
    };
    if !resource_version.is_empty() && resource_version != current.metadata().resource_version {
        return Ok(());
    }
    let ipam = Ipam::new(client.store().clone());
    match current {
        Resource::Node(_) => delete_node_dependents(&ipam, name),
        Resource::IPPool(mut pool) => {
            if !pool.spec.disabled {
                pool.spec.disabled = true;
                client
                    .update(&Resource::IPPool(pool.clone()))
                    .map_err(|e| e.to_string())?;
                std::thread::sleep(POOL_DISABLE_GRACE);
            }
            let cidr = pool
                .spec
                .network()
                .ok_or_else(|| format!("IPPool({name}) has no valid CIDR {:?}", pool.spec.cidr))?;
            ipam.release_pool_affinities(&cidr)
                .map(|_| ())
                .map_err(|e| e.to_string())
        }
        _ => Ok(()),
    }
}

fn delete_node_dependents(ipam: &Ipam, node: &str) -> Result<(), String> {
    ipam.clean_up_after_node(node)
        .map(drop)
        .map_err(|e| format!("cleaning up after node {node}: {e}"))
}
