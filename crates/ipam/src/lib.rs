//! Calico's block-affinity IPAM over the Brindle datastore (facts: calico.md §2.6, §3).
//!
//! Module map:
//! - [`cidr`]: pool → block → ordinal arithmetic, IPv4 and IPv6 (pure).
//! - [`search`]: the order a node walks a pool's blocks in (seeded by the hostname's FNV-32).
//! - [`block`]: the allocation block (Calico's JSON) and its pure operations.
//! - [`handle`], [`affinity`], [`config`]: the other IPAM objects, Calico's JSON.
//! - [`keys`]: Calico's etcd key layout.
//! - [`gofmt`]: Go's `%.5g` / `%.f` for `ipam show`.
//! - [`error`]: what can go wrong, naming the object.

pub mod affinity;
pub mod block;
pub mod cidr;
pub mod config;
#[allow(dead_code)] // conflict helpers are for the allocator, which comes next
pub mod error;
pub mod gofmt;
pub mod handle;
pub mod keys;
pub mod search;
#[allow(dead_code)]
mod time;

pub use affinity::{AffinityState, BlockAffinity};
pub use block::{AllocationAttribute, AllocationBlock, ReleaseRequest, Released};
pub use config::IpamConfig;
pub use error::{IpamError, Result};
pub use handle::IpamHandle;
