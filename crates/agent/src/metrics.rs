//! `/metrics` in Prometheus text format 0.0.4: BGP sessions by state, routes by kind, IPAM
//! usage of this node, reconcile and calculation durations, process memory.

use std::fmt::Write;

use crate::status::AgentStatus;

/// Counters the main loop keeps.
#[derive(Debug, Clone, Default)]
pub struct Counters {
    pub calc_runs: u64,
    pub calc_seconds_total: f64,
    pub datastore_updates: u64,
    pub resyncs: u64,
    pub dp_applies: u64,
    pub dp_apply_seconds_total: f64,
    pub dp_last_apply_seconds: f64,
    pub local_blocks: usize,
    pub remote_blocks: usize,
    pub workloads: usize,
    pub nodes: usize,
    pub workloads_cluster: usize,
}

fn rss_bytes() -> u64 {
    // /proc/self/statm: size resident … in pages.
    std::fs::read_to_string("/proc/self/statm")
        .ok()
        .and_then(|s| s.split_whitespace().nth(1)?.parse::<u64>().ok())
        .map(|pages| pages * 4096)
        .unwrap_or(0)
}

fn family(out: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(out, "# HELP {name} {help}");
    let _ = writeln!(out, "# TYPE {name} {kind}");
}

/// Renders the exposition text.
pub fn render(st: &AgentStatus, c: &Counters) -> String {
    let mut o = String::new();
    let node = &st.node;
    family(
        &mut o,
        "brindle_bgp_sessions",
        "gauge",
        "BGP sessions by BIRD protocol state.",
    );
    let peers = st.bgp.as_ref().map(|b| b.peers_v4.as_slice()).unwrap_or(&[]);
    for state in ["up", "start", "down"] {
        let n = peers.iter().filter(|p| p.state == state).count();
        let _ = writeln!(o, "brindle_bgp_sessions{{node=\"{node}\",state=\"{state}\"}} {n}");
    }
    family(
        &mut o,
        "brindle_bgp_routes_received",
        "gauge",
        "Best routes learned over BGP.",
    );
    let _ = writeln!(
        o,
        "brindle_bgp_routes_received{{node=\"{node}\"}} {}",
        st.bgp.as_ref().map(|b| b.routes_received).unwrap_or(0)
    );
    family(
        &mut o,
        "brindle_routes",
        "gauge",
        "Routes the dataplane holds, by kind.",
    );
    for (kind, n) in [
        ("local_block", c.local_blocks),
        ("remote_block", c.remote_blocks),
        ("workload", c.workloads),
    ] {
        let _ = writeln!(o, "brindle_routes{{node=\"{node}\",kind=\"{kind}\"}} {n}");
    }
    family(
        &mut o,
        "ipam_blocks_per_node",
        "gauge",
        "IPAM blocks affine to this node (kube-controllers' name).",
    );
    let _ = writeln!(o, "ipam_blocks_per_node{{node=\"{node}\"}} {}", c.local_blocks);
    family(
        &mut o,
        "ipam_allocations_per_node",
        "gauge",
        "Workload addresses in use on this node.",
    );
    let _ = writeln!(o, "ipam_allocations_per_node{{node=\"{node}\"}} {}", c.workloads);
    family(
        &mut o,
        "felix_cluster_num_hosts",
        "gauge",
        "Nodes in the cluster.",
    );
    let _ = writeln!(o, "felix_cluster_num_hosts {}", c.nodes);
    family(
        &mut o,
        "felix_cluster_num_workload_endpoints",
        "gauge",
        "Workload endpoints in the cluster.",
    );
    let _ = writeln!(o, "felix_cluster_num_workload_endpoints {}", c.workloads_cluster);
    family(
        &mut o,
        "brindle_datastore_updates_total",
        "counter",
        "Datastore changes seen by the syncer.",
    );
    let _ = writeln!(o, "brindle_datastore_updates_total {}", c.datastore_updates);
    family(
        &mut o,
        "brindle_datastore_resyncs_total",
        "counter",
        "Full datastore listings (first sync and resyncs).",
    );
    let _ = writeln!(o, "brindle_datastore_resyncs_total {}", c.resyncs);
    family(
        &mut o,
        "brindle_calc_seconds",
        "summary",
        "Time spent computing the desired state.",
    );
    let _ = writeln!(o, "brindle_calc_seconds_sum {}", c.calc_seconds_total);
    let _ = writeln!(o, "brindle_calc_seconds_count {}", c.calc_runs);
    family(
        &mut o,
        "felix_int_dataplane_apply_time_seconds",
        "summary",
        "Time spent reconciling the kernel.",
    );
    let _ = writeln!(
        o,
        "felix_int_dataplane_apply_time_seconds_sum {}",
        c.dp_apply_seconds_total
    );
    let _ = writeln!(o, "felix_int_dataplane_apply_time_seconds_count {}", c.dp_applies);
    family(
        &mut o,
        "brindle_dataplane_last_apply_seconds",
        "gauge",
        "Duration of the last reconcile.",
    );
    let _ = writeln!(
        o,
        "brindle_dataplane_last_apply_seconds {}",
        c.dp_last_apply_seconds
    );
    family(
        &mut o,
        "brindle_dataplane_errors",
        "gauge",
        "Problems the last reconcile reported.",
    );
    let _ = writeln!(o, "brindle_dataplane_errors {}", st.dataplane.last_errors.len());
    family(
        &mut o,
        "process_resident_memory_bytes",
        "gauge",
        "Resident memory size in bytes.",
    );
    let _ = writeln!(o, "process_resident_memory_bytes {}", rss_bytes());
    family(&mut o, "brindle_ready", "gauge", "1 when /readiness answers 200.");
    let _ = writeln!(o, "brindle_ready {}", u8::from(st.ready));
    o
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exposition_lines_are_well_formed() {
        let st = AgentStatus {
            node: "n1".into(),
            ..Default::default()
        };
        let text = render(&st, &Counters::default());
        for line in text.lines().filter(|l| !l.starts_with('#')) {
            let (name, value) = line.rsplit_once(' ').unwrap();
            assert!(!name.is_empty());
            value.parse::<f64>().unwrap_or_else(|_| panic!("{line}"));
        }
        assert!(text.contains("brindle_bgp_sessions{node=\"n1\",state=\"up\"} 0"));
    }
}
