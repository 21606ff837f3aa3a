//! `/metrics`: Prometheus text format 0.0.4 written with prometheus-client (which escapes label
//! values). Felix's names where Felix has the metric, kube-controllers' IPAM names, the BIRD
//! exporter's per-peer BGP names, the client libraries' `process_*`, and Brindle's own
//! (`brindle_*`) for the rest. `docs/METRICS.md` lists every family.
//!
//! A scrape is a [`Snapshot`] (the main loop's [`Counters`], the speaker's peers, this node's
//! IPAM figures, `/proc/self`) rendered by [`render`], a pure function.
//!
//! - [`encode`]: families through prometheus-client's encoder.
//! - [`histogram`]: fixed-bucket histograms the loops fill.
//! - [`dataplane`]: the dataplane thread's counters and the BPF tunl0's packet counters.
//! - [`bgp`]: per-peer series.
//! - [`ipam`]: this node's IPAM series.
//! - [`process`]: `process_*` and `brindle_build_info`.
//! - [`scrape`]: answering one scrape (gathering, off the main loop, then [`render`]).

pub mod bgp;
pub mod dataplane;
pub mod encode;
pub mod histogram;
pub mod ipam;
pub mod process;
pub mod scrape;

use std::collections::BTreeMap;
use std::time::SystemTime;

use prometheus_client::collector::Collector;
use prometheus_client::encoding::DescriptorEncoder;
use prometheus_client::registry::Registry;

pub use bgp::SpeakerFigures;
pub use dataplane::DataplaneMetrics;
use encode::{Families, Labels};
use histogram::{CNI_SECONDS, Histogram};
pub use ipam::{IpamGc, IpamStats};
pub use process::ProcessStats;

/// The `Content-Type` of `/metrics`.
pub const CONTENT_TYPE: &str = prometheus_client::encoding::prometheus_text::CONTENT_TYPE;

/// Felix's `felix_resync_state` values.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum SyncState {
    #[default]
    WaitForDatastore = 1,
    ResyncInProgress = 2,
    InSync = 3,
}

/// Counters the main loop keeps.
#[derive(Debug, Clone, Default)]
pub struct Counters {
    /// Desired-state calculations so far.
    pub calc_runs: u64,
    /// Their durations (Felix: `felix_calc_graph_update_time_seconds`).
    pub calc: Histogram,
    pub datastore_updates: u64,
    /// Full listings (first sync and resyncs; Felix: `felix_resyncs_started`).
    pub resyncs: u64,
    pub sync_state: SyncState,
    pub local_blocks: usize,
    pub remote_blocks: usize,
    /// This node's workloads (Felix: `felix_active_local_endpoints`).
    pub workloads: usize,
    pub nodes: usize,
    pub workloads_cluster: usize,
    /// The datastore can be read (startup done, the syncer listing).
    pub datastore_available: bool,
    /// Kernel notifications that were the dataplane's own writes (ignored), and the others
    /// (repaired).
    pub kernel_echoes: u64,
    pub kernel_repairs: u64,
    pub cni: CniLatencies,
    /// The dataplane thread's figures, copied on each tick.
    pub dataplane: DataplaneMetrics,
    /// Network policy: active policies in the calculation, objects it refused, and the
    /// dataplane's nftables transactions (resyncs included), their time, and repairs of the
    /// tables after someone else changed them.
    pub policy_active_policies: usize,
    pub policy_rejected: usize,
    pub policy_applies: u64,
    pub policy_resyncs: u64,
    pub policy_seconds_total: f64,
    pub policy_last_seconds: f64,
    pub policy_repairs: u64,
    /// The IPAM garbage collector, when it runs in this agent (its figures are read per scrape).
    pub ipam_gc: Option<std::sync::Arc<brindle_ipam::gc::GcMetrics>>,
}

impl Counters {
    /// One calculation took `seconds`.
    pub fn calc_done(&mut self, seconds: f64) {
        self.calc_runs += 1;
        self.calc.observe(seconds);
    }
}

/// One histogram per (plugin, command, result) of the CNI calls on this node.
#[derive(Debug, Clone, Default)]
pub struct CniLatencies {
    series: BTreeMap<(String, String, &'static str), Histogram>,
}

impl CniLatencies {
    pub fn observe(&mut self, r: &brindle_ctl::report::Report) {
        let result = if r.ok { "ok" } else { "failed" };
        self.series
            .entry((r.plugin.clone(), r.command.clone(), result))
            .or_insert_with(|| Histogram::new(CNI_SECONDS))
            .observe(r.seconds);
    }
}

/// Everything one scrape shows.
#[derive(Debug, Clone)]
pub struct Snapshot {
    pub node: String,
    /// The Calico version the agent reports itself as.
    pub calico_version: String,
    pub counters: Counters,
    /// The speaker's peers; `None` when the node runs no BGP.
    pub peers: Option<Vec<brindle_bgp_speaker::PeerStatus>>,
    /// The BGP thread's figures; `None` when the node runs no BGP.
    pub speaker: Option<SpeakerFigures>,
    /// `None` when the datastore could not be read for this scrape.
    pub ipam: Option<IpamStats>,
    pub process: ProcessStats,
    pub live: bool,
    pub ready: bool,
    pub now: SystemTime,
}

#[derive(Debug)]
struct Scrape(Snapshot);

impl Collector for Scrape {
    fn encode(&self, enc: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        self.0.write(&mut Families { enc })
    }
}

impl Snapshot {
    fn write(&self, f: &mut Families<'_>) -> std::fmt::Result {
        let c = &self.counters;
        f.one(
            "felix_active_local_endpoints",
            "Number of active endpoints on this host.",
            c.workloads as f64,
        )?;
        f.one(
            "felix_cluster_num_hosts",
            "Total number of Calico hosts in the cluster.",
            c.nodes as f64,
        )?;
        f.one(
            "felix_cluster_num_workload_endpoints",
            "Total number of workload endpoints cluster-wide.",
            c.workloads_cluster as f64,
        )?;
        f.one(
            "felix_resync_state",
            "Current datastore state (1 waiting for the datastore, 2 resync in progress, 3 in sync).",
            c.sync_state as u8 as f64,
        )?;
        f.one_untyped(
            "felix_resyncs_started",
            "Number of full datastore listings started.",
            c.resyncs as f64,
        )?;
        f.histogram(
            "felix_calc_graph_update_time_seconds",
            "Seconds to compute the desired state after datastore or BGP updates.",
            &[(Vec::new(), &c.calc)],
        )?;
        c.dataplane.write(f)?;
        f.one(
            "felix_active_local_policies",
            "Number of policies that apply to an endpoint on this host.",
            c.policy_active_policies as f64,
        )?;
        f.one(
            "brindle_policy_rejected_objects",
            "Policy objects the calculation refused (the agent's log names them).",
            c.policy_rejected as f64,
        )?;
        f.counter(
            "felix_nft_transactions",
            "nftables transactions for policy (one per change, and full resyncs).",
            &[(Vec::new(), c.policy_applies as f64)],
        )?;
        f.counter(
            "felix_nft_transaction_seconds",
            "Seconds spent in policy nftables transactions.",
            &[(Vec::new(), c.policy_seconds_total)],
        )?;
        f.counter(
            "brindle_policy_resyncs",
            "Full policy resyncs (the tables read back and made to match).",
            &[(Vec::new(), c.policy_resyncs as f64)],
        )?;
        f.one(
            "brindle_policy_last_transaction_seconds",
            "Duration of the last policy nftables transaction.",
            c.policy_last_seconds,
        )?;
        f.counter(
            "brindle_policy_repairs",
            "Repairs of Brindle's nftables tables after someone else changed them.",
            &[(Vec::new(), c.policy_repairs as f64)],
        )?;
        f.counter(
            "brindle_datastore_updates",
            "Datastore changes seen by the syncer.",
            &[(Vec::new(), c.datastore_updates as f64)],
        )?;
        f.one(
            "brindle_datastore_available",
            "1 while the datastore can be read, 0 while the agent retries it.",
            f64::from(u8::from(c.datastore_available)),
        )?;
        f.counter(
            "brindle_kernel_notifications",
            "Kernel notifications seen by the dataplane: echoes of its own writes, and changes it repaired.",
            &[
                (vec![("kind", "echo".to_string())], c.kernel_echoes as f64),
                (vec![("kind", "repair".to_string())], c.kernel_repairs as f64),
            ],
        )?;
        let kinds: Vec<(Labels, f64)> = [
            ("local_block", c.local_blocks),
            ("remote_block", c.remote_blocks),
            ("workload", c.workloads),
        ]
        .into_iter()
        .map(|(k, n)| (vec![("kind", k.to_string())], n as f64))
        .collect();
        f.gauge("brindle_routes", "Routes the dataplane holds, by kind.", &kinds)?;
        bgp::write(f, self.peers.as_deref(), self.now)?;
        if let Some(sp) = &self.speaker {
            sp.write(f, &self.node)?;
        }
        if let Some(i) = &self.ipam {
            i.write(f)?;
        }
        let cni: Vec<(Labels, &Histogram)> = c
            .cni
            .series
            .iter()
            .map(|((plugin, command, result), h)| {
                (
                    vec![
                        ("plugin", plugin.clone()),
                        ("command", command.clone()),
                        ("result", result.to_string()),
                    ],
                    h,
                )
            })
            .collect();
        f.histogram(
            "brindle_cni_call_seconds",
            "CNI plugin calls on this node by plugin, command and result (reported by the plugin).",
            &cni,
        )?;
        f.one(
            "brindle_live",
            "1 when /liveness answers 200.",
            f64::from(u8::from(self.live)),
        )?;
        f.one(
            "brindle_ready",
            "1 when /readiness answers 200.",
            f64::from(u8::from(self.ready)),
        )?;
        self.process.write(f)?;
        process::write_build_info(f, &self.calico_version)
    }
}

/// The exposition text of one scrape.
pub fn render(s: Snapshot) -> String {
    let mut registry = Registry::default();
    registry.register_collector(Box::new(Scrape(s)));
    let mut out = String::with_capacity(16 * 1024);
    prometheus_client::encoding::prometheus_text::encode(&mut out, &registry)
        .expect("writing to a String cannot fail");
    out
}

#[cfg(test)]
mod tests;
