//! What the garbage collector counts, shared with the agent's `/metrics`: kube-controllers'
//! `ipam_*` series where they exist (`node/ipam.go`: per pool and node), Brindle's for the rest.
//! Gauges are those of the last pass of this process while it led (kube-controllers runs once
//! per cluster, so only the leader has them); counters add up over the process's life.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::Mutex;

use super::plan::Plan;

#[derive(Debug, Default, Clone)]
struct State {
    leader: bool,
    lease_acquired: u64,
    passes: u64,
    pass_errors: u64,
    last_pass_seconds: f64,
    reclaimed: BTreeMap<(String, String), u64>,
    candidates: BTreeMap<(String, String), u64>,
    in_use: BTreeMap<(String, String), u64>,
    borrowed: BTreeMap<(String, String), u64>,
    blocks: BTreeMap<(String, String), u64>,
    pool_sizes: BTreeMap<String, u128>,
    affinities_released: u64,
    nodes_cleaned: u64,
}

/// The collector's counters. Cheap to share (`Arc`); updated by the collector's thread.
#[derive(Debug, Default)]
pub struct GcMetrics {
    state: Mutex<State>,
}

fn label(s: &str) -> String {
    s.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', "\\n")
}

impl GcMetrics {
    fn with<T>(&self, f: impl FnOnce(&mut State) -> T) -> T {
        f(&mut self.state.lock().unwrap_or_else(|p| p.into_inner()))
    }

    pub(crate) fn set_leader(&self, leader: bool, acquired: bool) {
        self.with(|s| {
            if !leader && s.leader {
                // Only the leader reports the cluster's IPAM gauges.
                s.candidates.clear();
                s.in_use.clear();
                s.borrowed.clear();
                s.blocks.clear();
                s.pool_sizes.clear();
            }
            s.leader = leader;
            s.lease_acquired += u64::from(acquired);
        });
    }

    pub fn is_leader(&self) -> bool {
        self.with(|s| s.leader)
    }

    pub(crate) fn pass(&self, plan: &Plan, pool_sizes: BTreeMap<String, u128>, seconds: f64) {
        self.with(|s| {
            s.passes += 1;
            s.last_pass_seconds = seconds;
            s.candidates.clear();
            for a in &plan.candidates {
                *s.candidates.entry((a.pool.clone(), a.node.clone())).or_default() += 1;
            }
            s.in_use = plan.in_use.clone();
            s.borrowed = plan.borrowed.clone();
            s.blocks = plan.blocks.clone();
            s.pool_sizes = pool_sizes;
        });
    }

    pub(crate) fn pass_failed(&self) {
        self.with(|s| s.pass_errors += 1);
    }

    pub(crate) fn reclaimed(&self, pool: &str, node: &str) {
        self.with(|s| {
            *s.reclaimed
                .entry((pool.to_string(), node.to_string()))
                .or_default() += 1
        });
    }

    pub(crate) fn affinity_released(&self) {
        self.with(|s| s.affinities_released += 1);
    }

    pub(crate) fn node_cleaned(&self) {
        self.with(|s| s.nodes_cleaned += 1);
    }

    /// Total addresses reclaimed so far (all pools and nodes).
    pub fn reclaimed_total(&self) -> u64 {
        self.with(|s| s.reclaimed.values().sum())
    }

    /// Passes made while leading.
    pub fn passes(&self) -> u64 {
        self.with(|s| s.passes)
    }

    /// Appends the Prometheus text exposition (format 0.0.4) of every series.
    pub fn render(&self, o: &mut String) {
        let s = self.with(|s| s.clone());
        let family = |o: &mut String, name: &str, kind: &str, help: &str| {
            let _ = writeln!(o, "# HELP {name} {help}");
            let _ = writeln!(o, "# TYPE {name} {kind}");
        };
        let by_pool_node = |o: &mut String, name: &str, m: &BTreeMap<(String, String), u64>| {
            for ((pool, node), n) in m {
                let _ = writeln!(
                    o,
                    "{name}{{ippool=\"{}\",node=\"{}\"}} {n}",
                    label(pool),
                    label(node)
                );
            }
        };
        family(
            o,
            "ipam_ippool_size",
            "gauge",
            "Total number of addresses in the IP Pool",
        );
        for (pool, n) in &s.pool_sizes {
            let _ = writeln!(o, "ipam_ippool_size{{ippool=\"{}\"}} {n}", label(pool));
        }
        family(
            o,
            "ipam_allocations_in_use",
            "gauge",
            "IPs currently allocated in IPAM to a workload or tunnel endpoint.",
        );
        by_pool_node(o, "ipam_allocations_in_use", &s.in_use);
        family(
            o,
            "ipam_allocations_borrowed",
            "gauge",
            "IPs currently allocated in IPAM to a workload or tunnel endpoint, where the allocation was borrowed from a block affine to another node.",
        );
        by_pool_node(o, "ipam_allocations_borrowed", &s.borrowed);
        family(
            o,
            "ipam_blocks",
            "gauge",
            "IPAM blocks currently allocated for the IP pool.",
        );
        by_pool_node(o, "ipam_blocks", &s.blocks);
        family(
            o,
            "ipam_allocations_gc_candidates",
            "gauge",
            "Allocations that are currently marked by the garbage collector as potential candidates to reclaim.",
        );
        by_pool_node(o, "ipam_allocations_gc_candidates", &s.candidates);
        family(
            o,
            "ipam_allocations_gc_reclamations",
            "counter",
            "The total allocations that have been reclaimed by the garbage collector over time.",
        );
        by_pool_node(o, "ipam_allocations_gc_reclamations", &s.reclaimed);
        let brindle: [(&str, &str, &str, f64); 7] = [
            (
                "brindle_ipam_gc_leader",
                "gauge",
                "1 while this agent holds the IPAM garbage collector's lease.",
                f64::from(u8::from(s.leader)),
            ),
            (
                "brindle_ipam_gc_lease_acquired_total",
                "counter",
                "Times this agent took the IPAM garbage collector's lease.",
                s.lease_acquired as f64,
            ),
            (
                "brindle_ipam_gc_passes_total",
                "counter",
                "Garbage collection passes made while leading.",
                s.passes as f64,
            ),
            (
                "brindle_ipam_gc_pass_errors_total",
                "counter",
                "Passes that failed (datastore errors); retried on the next one.",
                s.pass_errors as f64,
            ),
            (
                "brindle_ipam_gc_last_pass_seconds",
                "gauge",
                "Duration of the last pass.",
                s.last_pass_seconds,
            ),
            (
                "brindle_ipam_gc_block_affinities_released_total",
                "counter",
                "Affinities of empty blocks released (their nodes hold other blocks).",
                s.affinities_released as f64,
            ),
            (
                "brindle_ipam_gc_nodes_cleaned_total",
                "counter",
                "Deleted nodes cleaned up after (addresses, affinities, endpoints).",
                s.nodes_cleaned as f64,
            ),
        ];
        for (name, kind, help, v) in brindle {
            family(o, name, kind, help);
            let _ = writeln!(o, "{name} {v}");
        }
    }
}
