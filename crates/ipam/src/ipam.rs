//! [`Ipam`]: the allocator's public face, its arguments and results, and the retry loop every
//! compare-and-swap goes through. The work is in `claim` (getting a block), `assign` (taking
//! addresses), `release` and `tunnel`.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::SystemTime;

use brindle_datastore::Datastore;
use ipnet::IpNet;

use crate::config::IpamConfig;
use crate::error::{IpamError, Result};
use crate::kv::Kv;
use crate::resources::IntendedUse;

/// Calico's `datastoreRetries`: how often a compare-and-swap loop re-reads and tries again.
pub const DATASTORE_RETRIES: usize = 100;

/// Where the allocator reads the time (block claim times, first sequence numbers, the age
/// check before reclaiming another node's empty block). Tests use a hand-set clock.
pub trait Clock: Send + Sync {
    fn now(&self) -> SystemTime;
}

/// The system clock.
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> SystemTime {
        SystemTime::now()
    }
}

/// Arguments of [`Ipam::auto_assign`] (Calico's `AutoAssignArgs`).
#[derive(Debug, Clone)]
pub struct AutoAssignArgs {
    pub num4: usize,
    pub num6: usize,
    /// The owner, e.g. `k8s-pod-network.<containerID>`; release by handle uses it.
    pub handle_id: Option<String>,
    /// Stored with the allocation: `namespace`, `pod`, `node`, `timestamp`, `type`.
    pub attrs: BTreeMap<String, String>,
    /// The node the address is for (its blocks are used first).
    pub hostname: String,
    /// Use only these pools (CNI `ipam.ipv4_pools`), ignoring node selectors.
    pub ipv4_pools: Vec<IpNet>,
    pub ipv6_pools: Vec<IpNet>,
    /// Per-request block limit (0: the configured one, or 20).
    pub max_blocks_per_host: usize,
    pub intended_use: IntendedUse,
}

impl AutoAssignArgs {
    /// One IPv4 address for a workload on `hostname`.
    pub fn workload_v4(hostname: &str, handle: &str) -> AutoAssignArgs {
        AutoAssignArgs {
            num4: 1,
            num6: 0,
            handle_id: Some(handle.to_string()),
            attrs: BTreeMap::new(),
            hostname: hostname.to_string(),
            ipv4_pools: Vec::new(),
            ipv6_pools: Vec::new(),
            max_blocks_per_host: 0,
            intended_use: IntendedUse::Workload,
        }
    }
}

/// The addresses [`Ipam::auto_assign`] handed out, each with its block's prefix length
/// (`10.233.94.1/24`), as Calico's IPAM plugin reports them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Assigned {
    pub ipv4: Vec<IpNet>,
    pub ipv6: Vec<IpNet>,
}

impl Assigned {
    pub fn addrs(&self) -> impl Iterator<Item = IpAddr> + '_ {
        self.ipv4.iter().chain(self.ipv6.iter()).map(|n| n.addr())
    }
}

/// Arguments of [`Ipam::assign_ip`] (Calico's `AssignIPArgs`).
#[derive(Debug, Clone)]
pub struct AssignIpArgs {
    pub ip: IpAddr,
    pub handle_id: Option<String>,
    pub attrs: BTreeMap<String, String>,
    pub hostname: String,
    pub intended_use: IntendedUse,
}

/// One allocation as stored: where it is and the sequence number that proves it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Allocation {
    pub addr: IpAddr,
    pub block: IpNet,
    pub handle: Option<String>,
    pub attrs: BTreeMap<String, String>,
    pub sequence: u64,
    /// The node the block is affine to (`None` for an orphaned block).
    pub block_owner: Option<String>,
}

/// Calico's block-affinity IPAM over a [`Datastore`]. Cheap to clone; holds no cache, so any
/// number of processes may use the same store at once (every write is a compare-and-swap).
#[derive(Clone)]
pub struct Ipam {
    pub(crate) ds: Arc<dyn Datastore>,
    pub(crate) clock: Arc<dyn Clock>,
    pub(crate) retries: usize,
}

/// How one attempt of a compare-and-swap loop ended.
pub(crate) enum Attempt<T> {
    Done(T),
    Retry,
}

impl Ipam {
    pub fn new(ds: Arc<dyn Datastore>) -> Ipam {
        Ipam {
            ds,
            clock: Arc::new(SystemClock),
            retries: DATASTORE_RETRIES,
        }
    }

    /// Uses `clock` instead of the system clock.
    pub fn with_clock(mut self, clock: Arc<dyn Clock>) -> Ipam {
        self.clock = clock;
        self
    }

    pub fn datastore(&self) -> &dyn Datastore {
        &*self.ds
    }

    /// The datastore, shareable (to hand to another thread).
    pub fn datastore_arc(&self) -> Arc<dyn Datastore> {
        self.ds.clone()
    }

    pub(crate) fn kv(&self) -> Kv<'_> {
        Kv::new(&*self.ds)
    }

    pub(crate) fn now(&self) -> SystemTime {
        self.clock.now()
    }

    /// Runs `f` until it is done, retrying on compare-and-swap conflicts (an `Err` that is a
    /// conflict or a key that vanished under a write, or [`Attempt::Retry`]) up to
    /// [`DATASTORE_RETRIES`] times.
    pub(crate) fn retry<T>(
        &self,
        what: impl Fn() -> String,
        mut f: impl FnMut() -> Result<Attempt<T>>,
    ) -> Result<T> {
        for _ in 0..self.retries {
            match f() {
                Ok(Attempt::Done(v)) => return Ok(v),
                Ok(Attempt::Retry) => continue,
                Err(e) if e.is_conflict() || e.is_not_found() => continue,
                Err(e) => return Err(e),
            }
        }
        Err(IpamError::MaxRetries { what: what() })
    }

    /// The IPAM configuration (created with the defaults on first use).
    pub fn config(&self) -> Result<IpamConfig> {
        Ok(self.kv().get_or_create_config()?.value)
    }

    /// Changes the IPAM configuration with `f`, validated by Calico's rules before writing.
    /// Returns the new configuration.
    pub fn update_config(&self, f: impl Fn(&mut IpamConfig)) -> Result<IpamConfig> {
        let kv = self.kv();
        self.retry(
            || "updating the IPAM configuration".into(),
            || {
                let cur = kv.get_or_create_config()?;
                let mut c = cur.value.clone();
                f(&mut c);
                crate::config::validate(&c).map_err(IpamError::Invalid)?;
                if c == cur.value {
                    return Ok(Attempt::Done(c));
                }
                kv.update_config(&c, cur.rev)?;
                Ok(Attempt::Done(c))
            },
        )
    }
}
