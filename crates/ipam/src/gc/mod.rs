//! Automatic IPAM garbage collection: Calico's kube-controllers IPAM controller
//! (`kube-controllers/pkg/controllers/node/ipam.go`) for Brindle's datastores, run by exactly one
//! node agent at a time.
//!
//! Module map: [`lease`] (who runs it: a lease in the datastore, compare-and-swap), [`plan`]
//! (what to release: pure), this file (the thread: read a snapshot, plan, check again, release,
//! log and count), [`metrics`] (the `ipam_*` series for the agent's `/metrics`).
//!
//! Settings are Calico's: KubeControllersConfiguration `default`,
//! `spec.controllers.node.leakGracePeriod` (15 minutes when unset, `0s` turns leak collection
//! off; a configuration without `controllers.node` turns the controller off, as in Calico). It
//! is read on every pass, so a change applies without restarts.

pub mod lease;
pub mod metrics;
pub mod plan;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use brindle_datastore::{Datastore, KeyValue, Read};
use brindle_model::keys::{self as model_keys, resource_prefix};
use brindle_model::resources::{IPPool, KubeControllersConfiguration, WorkloadEndpoint};
use brindle_model::{Kind, Resource};
use ipnet::IpNet;

use crate::block::{AllocationBlock, ReleaseRequest};
use crate::error::Result;
use crate::ipam::Ipam;
use crate::keys;
use crate::resources::{Endpoint, Pool};
pub use lease::{Elector, LEASE_KEY};
pub use metrics::GcMetrics;
pub use plan::{Observed, Plan, Tracker};

/// Calico's default `leakGracePeriod`.
pub const DEFAULT_LEAK_GRACE_PERIOD: Duration = Duration::from_secs(15 * 60);
/// client-go's default lease duration.
pub const DEFAULT_LEASE_DURATION: Duration = Duration::from_secs(15);

/// How this process takes part.
#[derive(Debug, Clone)]
pub struct GcSettings {
    /// Unique per process (`<node>_<random>`), written as the lease's holder.
    pub identity: String,
    pub lease_duration: Duration,
}

impl GcSettings {
    /// Settings for the agent of `node`: a fresh identity, the lease duration from
    /// `BRINDLE_IPAM_GC_LEASE_DURATION` (a Go duration; client-go's 15 s by default).
    pub fn for_node(node: &str) -> std::result::Result<GcSettings, String> {
        let lease_duration = match std::env::var("BRINDLE_IPAM_GC_LEASE_DURATION") {
            Ok(v) => v
                .parse::<brindle_model::duration::GoDuration>()
                .map_err(|e| format!("BRINDLE_IPAM_GC_LEASE_DURATION: {e}"))?
                .to_std()
                .max(Duration::from_secs(1)),
            Err(_) => DEFAULT_LEASE_DURATION,
        };
        let suffix: u32 =
            std::hash::BuildHasher::hash_one(&std::hash::RandomState::new(), Instant::now()) as u32;
        Ok(GcSettings {
            identity: format!("{node}_{suffix:08x}"),
            lease_duration,
        })
    }
}

/// The running collector: its counters, and a way to stop it.
pub struct GcHandle {
    pub metrics: Arc<GcMetrics>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl GcHandle {
    /// Stops the thread (giving the lease up if held) and waits for it.
    pub fn stop(mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Drop for GcHandle {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

/// Starts the collector on its own thread (the datastore is synchronous).
pub fn spawn(ds: Arc<dyn Datastore>, settings: GcSettings) -> std::io::Result<GcHandle> {
    let metrics = Arc::new(GcMetrics::default());
    let stop = Arc::new(AtomicBool::new(false));
    let (m, s) = (metrics.clone(), stop.clone());
    let thread = std::thread::Builder::new()
        .name("ipam-gc".into())
        .spawn(move || Controller::new(ds, settings, m).run(&s))?;
    Ok(GcHandle {
        metrics,
        stop,
        thread: Some(thread),
    })
}

/// What KubeControllersConfiguration `default` says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GcConfig {
    pub enabled: bool,
    pub leak_grace_period: Duration,
}

impl GcConfig {
    /// From the stored configuration, if any (Calico's defaults otherwise).
    pub fn from_kcc(kcc: Option<&KubeControllersConfiguration>) -> GcConfig {
        let Some(k) = kcc else {
            return GcConfig {
                enabled: true,
                leak_grace_period: DEFAULT_LEAK_GRACE_PERIOD,
            };
        };
        match &k.spec.controllers.node {
            None => GcConfig {
                enabled: false,
                leak_grace_period: DEFAULT_LEAK_GRACE_PERIOD,
            },
            Some(n) => GcConfig {
                enabled: true,
                leak_grace_period: n
                    .leak_grace_period
                    .map(|d| d.to_std())
                    .unwrap_or(DEFAULT_LEAK_GRACE_PERIOD),
            },
        }
    }

    /// How often a leader looks (kube-controllers: half the grace period, at most 5 minutes).
    pub fn pass_interval(&self) -> Duration {
        (self.leak_grace_period / 2).clamp(Duration::from_millis(500), Duration::from_secs(300))
    }
}

struct Controller {
    ipam: Ipam,
    elector: Elector,
    metrics: Arc<GcMetrics>,
    tracker: Tracker,
    /// The controller's clock for grace periods (monotonic).
    epoch: Instant,
    next_pass: Instant,
}

fn decode<T: serde::de::DeserializeOwned>(kv: &KeyValue) -> Option<T> {
    match serde_json::from_slice(&kv.value) {
        Ok(v) => Some(v),
        Err(e) => {
            tracing::warn!(key = %kv.key, error = %e, "IPAM GC: skipping a row that does not decode");
            None
        }
    }
}

/// The snapshot a pass plans from: every block, endpoint, Node, affinity and pool.
fn observe(ds: &dyn Datastore) -> Result<Observed> {
    let reads = [
        Read::List(model_keys::BLOCK_PREFIX.into()),
        Read::List(resource_prefix(Kind::WorkloadEndpoint, None)),
        Read::List(resource_prefix(Kind::Node, None)),
        Read::List(keys::all_affinities_prefix().into()),
        Read::List(resource_prefix(Kind::IPPool, None)),
    ];
    let snap = ds.read(&reads)?;
    let blocks = snap
        .list(0)
        .iter()
        .filter_map(decode::<AllocationBlock>)
        .collect();
    let endpoints = snap
        .list(1)
        .iter()
        .filter_map(decode::<WorkloadEndpoint>)
        .map(|w| Endpoint {
            addrs: w
                .spec
                .ip_networks
                .iter()
                .filter_map(|s| crate::cidr::parse_addr_or_cidr(s))
                .collect(),
            namespace: w.metadata.namespace,
            name: w.metadata.name,
            node: w.spec.node,
        })
        .collect();
    // A Node exists when its key does, whether or not its value decodes: never clean up after
    // a node because its row is damaged.
    let node_prefix = resource_prefix(Kind::Node, None);
    let nodes = snap
        .list(2)
        .iter()
        .filter_map(|kv| kv.key.strip_prefix(&node_prefix).map(str::to_string))
        .collect();
    let affinities = snap
        .list(3)
        .iter()
        .filter_map(|kv| keys::parse_affinity(&kv.key))
        .collect();
    let pools = snap
        .list(4)
        .iter()
        .filter_map(|kv| Pool::from_resource(&kv.key, &decode::<IPPool>(kv)?).ok())
        .collect();
    Ok(Observed {
        blocks,
        endpoints,
        nodes,
        affinities,
        pools,
    })
}

fn read_config(ds: &dyn Datastore) -> Result<GcConfig> {
    let key = model_keys::resource_key(Kind::KubeControllersConfiguration, "", "default");
    let Some(kv) = ds.get(&key)? else {
        return Ok(GcConfig::from_kcc(None));
    };
    match Resource::from_json(Kind::KubeControllersConfiguration, &kv.value) {
        Ok(Resource::KubeControllersConfiguration(k)) => Ok(GcConfig::from_kcc(Some(&k))),
        _ => {
            tracing::warn!(%key, "IPAM GC: KubeControllersConfiguration does not decode; using the defaults");
            Ok(GcConfig::from_kcc(None))
        }
    }
}

impl Controller {
    fn new(ds: Arc<dyn Datastore>, settings: GcSettings, metrics: Arc<GcMetrics>) -> Controller {
        let now = Instant::now();
        Controller {
            ipam: Ipam::new(ds),
            elector: Elector::new(settings.identity, settings.lease_duration),
            metrics,
            tracker: Tracker::default(),
            epoch: now,
            next_pass: now,
        }
    }

    fn run(mut self, stop: &AtomicBool) {
        tracing::info!(identity = %self.elector.identity(), "IPAM garbage collector started (waiting for the lease)");
        let mut was_leading = false;
        while !stop.load(Ordering::Relaxed) {
            let now = Instant::now();
            let acquired = match self.elector.step(self.ipam.datastore(), now) {
                Ok(lease::Step::Leading { acquired }) => acquired,
                Ok(lease::Step::Following) => false,
                Err(e) => {
                    tracing::warn!(error = %e, "IPAM GC: cannot read or renew the lease");
                    false
                }
            };
            let leading = self.elector.leading(Instant::now());
            if leading != was_leading {
                if leading {
                    tracing::info!(identity = %self.elector.identity(), "IPAM GC: took the lease; this agent collects now");
                } else {
                    tracing::info!("IPAM GC: not holding the lease; idle");
                    // A later term starts its grace periods afresh.
                    self.tracker = Tracker::default();
                }
                was_leading = leading;
            }
            self.metrics.set_leader(leading, acquired);
            if leading && Instant::now() >= self.next_pass {
                let interval = match self.pass() {
                    Ok(i) => i,
                    Err(e) => {
                        self.metrics.pass_failed();
                        tracing::warn!(error = %e, "IPAM GC: pass failed; retrying");
                        self.elector.period()
                    }
                };
                self.next_pass = Instant::now() + interval;
            }
            let wake = Instant::now() + self.elector.period();
            while !stop.load(Ordering::Relaxed) && Instant::now() < wake {
                std::thread::sleep(Duration::from_millis(50).min(self.elector.period()));
            }
        }
        if let Err(e) = self.elector.release(self.ipam.datastore()) {
            tracing::warn!(error = %e, "IPAM GC: cannot give the lease up; it will expire");
        }
        self.metrics.set_leader(false, false);
    }

    /// One pass; returns when the next one is due.
    fn pass(&mut self) -> Result<Duration> {
        let started = Instant::now();
        let config = read_config(self.ipam.datastore())?;
        if !config.enabled {
            return Ok(Duration::from_secs(60));
        }
        let seen = observe(self.ipam.datastore())?;
        let plan = plan::plan(
            &seen,
            &mut self.tracker,
            started - self.epoch,
            config.leak_grace_period,
        );
        for a in &plan.candidates {
            tracing::debug!(ip = %a.addr, handle = %a.handle, node = %a.node, "Candidate IP leak");
        }
        self.release_leaks(&plan)?;
        for (node, cidr, seq) in &plan.release_affinities {
            self.release_empty_block(node, cidr, *seq);
        }
        for node in &plan.clean_nodes {
            match self.ipam.clean_up_after_node(node) {
                Ok(done) => {
                    self.metrics.node_cleaned();
                    tracing::info!(%node, addresses = done.released.addrs.len(),
                        affinities = done.released.affinities, deleted = ?done.deleted,
                        "IPAM GC: cleaned up after deleted node");
                }
                Err(e) => {
                    tracing::warn!(%node, error = %e, "IPAM GC: cleaning up after deleted node failed; retrying")
                }
            }
        }
        let sizes = seen.pools.iter().map(|p| (p.name.clone(), p.size())).collect();
        self.metrics.pass(&plan, sizes, started.elapsed().as_secs_f64());
        Ok(config.pass_interval())
    }

    /// Releases confirmed leaks, after checking once more that nothing uses them now
    /// (kube-controllers asks the API server again; here, a fresh read of the endpoints and
    /// Nodes). Each address is released only with its handle and sequence number, so an
    /// address released and allocated again since the snapshot is left alone.
    fn release_leaks(&self, plan: &Plan) -> Result<()> {
        if plan.release.is_empty() {
            return Ok(());
        }
        let now = observe(self.ipam.datastore())?;
        let in_use: BTreeSet<_> = now
            .endpoints
            .iter()
            .flat_map(|e| e.addrs.iter().copied())
            .collect();
        let mut reqs = Vec::new();
        let mut leaks: BTreeMap<_, &plan::Allocation> = BTreeMap::new();
        for a in &plan.release {
            let tunnel_node_back = a.handle.contains("tunnel-addr-") && now.nodes.contains(&a.node);
            if in_use.contains(&a.addr) || tunnel_node_back {
                tracing::info!(ip = %a.addr, handle = %a.handle, "Leaked IP has been resurrected after querying latest state");
                continue;
            }
            leaks.insert(a.addr, a);
            reqs.push(ReleaseRequest {
                addr: a.addr,
                handle: Some(a.handle.clone()),
                sequence: Some(a.sequence),
            });
        }
        let out = self.ipam.release_ips(&reqs)?;
        for addr in &out.released {
            if let Some(a) = leaks.get(addr) {
                self.metrics.reclaimed(&a.pool, &a.node);
                tracing::info!(ip = %a.addr, handle = %a.handle, node = %a.node, pool = %a.pool, block = %a.block,
                    "Confirmed IP leak: released");
            }
        }
        for (addr, e) in &out.failed {
            tracing::info!(ip = %addr, error = %e, "Leaked IP address was not garbage collected (changed meanwhile)");
        }
        Ok(())
    }

    fn release_empty_block(&self, node: &str, cidr: &IpNet, seq: u64) {
        let kv = self.ipam.kv();
        match self.ipam.release_block_affinity(kv, node, cidr, true, Some(seq)) {
            Ok(()) => {
                self.metrics.affinity_released();
                tracing::info!(%node, block = %cidr, "IPAM GC: released the affinity of an empty block (the node holds others)");
            }
            Err(e) => {
                tracing::info!(%node, block = %cidr, reason = ?e, "IPAM GC: empty block kept (changed meanwhile)")
            }
        }
    }
}
