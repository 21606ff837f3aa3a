//! Calico's block-affinity IPAM over the Brindle datastore (Calico's `libcalico-go/lib/ipam/`;
//! the objects in `libcalico-go/lib/backend/model/`: block, block affinity, handle, config).
//!
//! A pool is cut into blocks; a node claims blocks (an *affinity*, two-phase: pending →
//! confirmed) and hands out addresses from them in order; a *handle* (one per workload)
//! counts its addresses per block. Every write is a compare-and-swap on the datastore
//! revision, retried on conflict; there is no lock, so any number of processes on any number
//! of nodes may allocate at once.
//!
//! Module map:
//! - [`cidr`]: pool → block → ordinal arithmetic, IPv4 and IPv6 (pure).
//! - [`search`]: the order a node walks a pool's blocks in (seeded by the hostname's FNV-32).
//! - [`gorand`]: Go's `math/rand` source and `big.Int.Rand`, so the walk starts where Calico's does.
//! - [`block`]: the pure operations on an allocation block.
//! - [`handle`], [`config`]: operations on the other IPAM objects.
//! - [`keys`]: Calico's key layout (the model's) and affinity-key parsing.
//! - [`resources`]: the IPPools, Nodes, WorkloadEndpoints and ClusterInformation IPAM reads.
//! - [`pools`]: which pools a request may use (pure).
//! - [`ipam`]: [`Ipam`], its arguments and results, the retry loop.
//! - `claim`: two-phase block claims, the block search, reclaiming, giving blocks up.
//! - `assign`: auto-assign (affine, new block, borrow) and assign-ip.
//! - `release`: release by address and by handle; node and pool affinities.
//! - `handle_counts`: compare-and-swap handle counting.
//! - [`tunnel`]: a node's tunl0/vxlan.calico address (calico-node's allocate-tunnel-addrs).
//! - [`usage`]: read-only views for `ipam show` (one address, utilization, borrowed).
//! - [`check`]: `ipam check` (calicoctl's text and JSON report).
//! - [`report_release`]: `ipam release --from-report`.
//! - [`diagnose`]: why a pool had no address (the exhaustion error's text).
//! - [`gofmt`]: Go's `%.5g` / `%.f` for `ipam show`.
//! - [`node_cleanup`]: what a deleted Node leaves behind, cleaned up (Calico's `nodes.Delete`).
//! - [`gc`]: automatic garbage collection (kube-controllers' IPAM controller), run by one agent
//!   at a time under a lease: leaked addresses, unneeded empty blocks, deleted nodes.
//! - [`error`]: what can go wrong, naming the object.

#![forbid(unsafe_code)]

#[cfg(test)]
mod alloc_tests;
mod assign;
pub mod block;
pub mod check;
#[cfg(test)]
mod check_tests;
pub mod cidr;
mod claim;
pub mod config;
pub mod diagnose;
pub mod error;
pub mod gc;
pub mod gofmt;
pub mod gorand;
pub mod handle;
mod handle_counts;
pub mod ipam;
pub mod keys;
mod kv;
#[cfg(test)]
mod memstore;
pub mod node_cleanup;
pub mod pools;
mod release;
pub mod report_release;
pub mod resources;
pub mod search;
mod time;
pub mod tunnel;
pub mod usage;

pub use block::{AllocationAttribute, AllocationBlock, AttributeOps, BlockOps, ReleaseRequest, Released};
pub use brindle_model::ipam::{AffinityState, BlockAffinity};

/// The affinity types (the model's), where other crates found them first.
pub mod affinity {
    pub use brindle_model::ipam::{AffinityState, BlockAffinity};
}
pub use claim::EMPTY_BLOCK_MIN_RECLAIM_AGE;
pub use config::IpamConfig;
pub use error::{IpamError, Result};
pub use handle::{HandleOps, IpamHandle};
pub use ipam::{
    Allocation, AssignIpArgs, Assigned, AutoAssignArgs, Clock, DATASTORE_RETRIES, Ipam, SystemClock,
};
pub use kv::Versioned;
pub use release::ReleaseOutcome;
pub use resources::{IntendedUse, Pool};
pub use tunnel::{NodeRelease, TunnelKind};
