//! `/metrics` in Prometheus text format 0.0.4: BGP sessions by state, routes by kind, IPAM
//! usage of this node, reconcile and calculation durations, CNI call latencies (reported by
//! the plugin, `brindle_cni::report`), process memory.

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
    /// The datastore can be read (startup done, the syncer listing).
    pub datastore_available: bool,
    /// Kernel notifications that were the dataplane's own writes (ignored), and the others.
    pub kernel_echoes: u64,
    pub kernel_repairs: u64,
    pub cni: CniLatencies,
    /// The IPAM garbage collector's series (`ipam_*`, `brindle_ipam_gc_*`), when it runs here.
    pub ipam_gc: Option<std::sync::Arc<brindle_ipam::gc::GcMetrics>>,
}

/// Upper bounds (seconds) of the CNI latency histogram's buckets: a CNI ADD takes a few
/// milliseconds here, Calico's tens to hundreds.
pub const CNI_BUCKETS: [f64; 11] = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5];

/// One histogram per (plugin, command, result) of the CNI calls on this node.
#[derive(Debug, Clone, Default)]
pub struct CniLatencies {
    series: std::collections::BTreeMap<(String, String, &'static str), Histogram>,
}

#[derive(Debug, Clone, Default)]
struct Histogram {
    /// Cumulative counts per bucket of [`CNI_BUCKETS`].
    buckets: [u64; CNI_BUCKETS.len()],
    count: u64,
    sum: f64,
}

impl CniLatencies {
    pub fn observe(&mut self, r: &brindle_cni::report::Report) {
        let result = if r.ok { "ok" } else { "failed" };
        let h = self
            .series
            .entry((r.plugin.clone(), r.command.clone(), result))
            .or_default();
        for (b, le) in h.buckets.iter_mut().zip(CNI_BUCKETS) {
            if r.seconds <= le {
                *b += 1;
            }
        }
        h.count += 1;
        h.sum += r.seconds;
    }

    fn render(&self, o: &mut String, node: &str) {
        for ((plugin, command, result), h) in &self.series {
            let labels =
                format!("node=\"{node}\",plugin=\"{plugin}\",command=\"{command}\",result=\"{result}\"");
            for (n, le) in h.buckets.iter().zip(CNI_BUCKETS) {
                let _ = writeln!(o, "brindle_cni_call_seconds_bucket{{{labels},le=\"{le}\"}} {n}");
            }
            let _ = writeln!(
                o,
                "brindle_cni_call_seconds_bucket{{{labels},le=\"+Inf\"}} {}",
                h.count
            );
            let _ = writeln!(o, "brindle_cni_call_seconds_sum{{{labels}}} {}", h.sum);
            let _ = writeln!(o, "brindle_cni_call_seconds_count{{{labels}}} {}", h.count);
        }
    }
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
    if let Some(b) = &st.bgp {
        family(
            &mut o,
            "brindle_bgp_speaker_running",
            "gauge",
            "1 while the BGP speaker runs, 0 while it should and does not (start failed, restarting).",
        );
        let running = u8::from(b.speaker_down.is_none());
        let _ = writeln!(o, "brindle_bgp_speaker_running{{node=\"{node}\"}} {running}");
        for (name, help, n) in [
            (
                "brindle_bgp_speaker_start_failures_total",
                "Failed starts of the BGP speaker (each retried with backoff).",
                b.speaker_start_failures,
            ),
            (
                "brindle_bgp_speaker_restarts_total",
                "Restarts of the BGP speaker (router id, AS or listen address changed).",
                b.speaker_restarts,
            ),
            (
                "brindle_bgp_reconfigurations_total",
                "Changes of BGP settings or peers applied to the running speaker in place.",
                b.reconfigurations,
            ),
        ] {
            family(&mut o, name, "counter", help);
            let _ = writeln!(o, "{name}{{node=\"{node}\"}} {n}");
        }
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
        "brindle_datastore_available",
        "gauge",
        "1 while the datastore can be read, 0 while the agent retries it.",
    );
    let _ = writeln!(
        o,
        "brindle_datastore_available {}",
        u8::from(c.datastore_available)
    );
    family(
        &mut o,
        "brindle_kernel_notifications_total",
        "counter",
        "Kernel notifications seen by the dataplane: echoes of its own writes, and changes it repaired.",
    );
    let _ = writeln!(
        o,
        "brindle_kernel_notifications_total{{kind=\"echo\"}} {}",
        c.kernel_echoes
    );
    let _ = writeln!(
        o,
        "brindle_kernel_notifications_total{{kind=\"repair\"}} {}",
        c.kernel_repairs
    );
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
    family(
        &mut o,
        "brindle_cni_call_seconds",
        "histogram",
        "CNI plugin calls on this node by plugin, command and result (reported by the plugin).",
    );
    c.cni.render(&mut o, node);
    family(&mut o, "brindle_ready", "gauge", "1 when /readiness answers 200.");
    let _ = writeln!(o, "brindle_ready {}", u8::from(st.ready));
    if let Some(gc) = &c.ipam_gc {
        gc.render(&mut o);
    }
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
        let mut c = Counters::default();
        for (secs, ok) in [(0.004, true), (0.02, true), (3.0, false)] {
            c.cni.observe(&brindle_cni::report::Report {
                plugin: "brindle".into(),
                command: "ADD".into(),
                seconds: secs,
                ok,
            });
        }
        let text = render(&st, &c);
        let ok = "node=\"n1\",plugin=\"brindle\",command=\"ADD\",result=\"ok\"";
        for (le, n) in [("0.0025", 0), ("0.005", 1), ("0.025", 2), ("+Inf", 2)] {
            let line = format!("brindle_cni_call_seconds_bucket{{{ok},le=\"{le}\"}} {n}");
            assert!(text.lines().any(|l| l == line), "{line}\n{text}");
        }
        assert!(text.contains(&format!("brindle_cni_call_seconds_count{{{ok}}} 2")));
        assert!(text.contains("result=\"failed\",le=\"+Inf\"} 1"));
        for line in text.lines().filter(|l| !l.starts_with('#')) {
            let (name, value) = line.rsplit_once(' ').unwrap();
            assert!(!name.is_empty());
            value.parse::<f64>().unwrap_or_else(|_| panic!("{line}"));
        }
        assert!(text.contains("brindle_bgp_sessions{node=\"n1\",state=\"up\"} 0"));
        // BGP's own lines only with BGP.
        assert!(!text.contains("brindle_bgp_speaker_running"));
        let down = AgentStatus {
            node: "n1".into(),
            bgp: Some(crate::status::BgpStatus {
                speaker_down: Some("bgp listen on 0.0.0.0:179: Address already in use".into()),
                speaker_start_failures: 4,
                ..Default::default()
            }),
            ..Default::default()
        };
        let text = render(&down, &c);
        assert!(
            text.contains("brindle_bgp_speaker_running{node=\"n1\"} 0\n"),
            "{text}"
        );
        assert!(text.contains("brindle_bgp_speaker_start_failures_total{node=\"n1\"} 4\n"));
        assert!(text.contains("brindle_bgp_speaker_restarts_total{node=\"n1\"} 0\n"));
    }
}
