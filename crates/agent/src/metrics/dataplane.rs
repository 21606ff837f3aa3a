//! The dataplane thread's counters (Felix's names: `felix_int_dataplane_*`,
//! `felix_route_table_list_seconds`, `felix_nft_*`, `felix_ipsets_*` for the nftables sets) and
//! the BPF tunl0's packet counters, and the conntrack cleanup of gone workload addresses
//! (Brindle's own `brindle_conntrack_*`).

use std::fmt;
use std::time::Duration;

use brindle_dataplane::Report;
use brindle_dataplane::bpf::BpfStats;
use brindle_dataplane::stats::NftRun;

use super::encode::{Families, Labels};
use super::histogram::Histogram;

/// Brindle's nftables table (Felix's `table` label names its tables the same way).
const NFT_TABLE: &str = "brindle";

/// Kept by the dataplane thread, one apply at a time.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct DataplaneMetrics {
    /// Time per apply (Felix: `felix_int_dataplane_apply_time_seconds`).
    pub apply: Histogram,
    /// Applies that reported a problem and will be retried (`felix_int_dataplane_failures`).
    pub failures: u64,
    /// Reading the main table (`felix_route_table_list_seconds`).
    pub route_list: Histogram,
    pub nft_calls: u64,
    pub nft_errors: u64,
    pub nft_lines: u64,
    /// The table as the last successful transaction left it.
    pub nft_table: Option<NftRun>,
    /// The BPF tunl0's counters, when tunl0 is Brindle's BPF one.
    pub bpf: Option<BpfStats>,
    /// Conntrack flows deleted because their workload address went away.
    pub conntrack_flows_deleted: u64,
    /// Addresses whose conntrack cleanup failed.
    pub conntrack_failures: u64,
}

impl DataplaneMetrics {
    /// Counts one apply (the first, `Dataplane::start`'s, included).
    pub fn record(&mut self, r: &Report, took: Duration, bpf: Option<BpfStats>) {
        self.apply.observe(took.as_secs_f64());
        if !r.errors.is_empty() {
            self.failures += 1;
        }
        self.route_list.observe(r.routes.list_seconds);
        if let Some(n) = r.nft {
            self.nft_calls += 1;
            self.nft_lines += n.lines as u64;
            if n.ok {
                self.nft_table = Some(n);
            } else {
                self.nft_errors += 1;
            }
        }
        self.bpf = bpf;
        self.conntrack_flows_deleted += r.conntrack.flows_deleted as u64;
        self.conntrack_failures += r.conntrack.failed as u64;
    }

    pub(super) fn write(&self, f: &mut Families<'_>) -> fmt::Result {
        f.histogram(
            "felix_int_dataplane_apply_time_seconds",
            "Time in seconds that it took to apply a dataplane update.",
            &[(Vec::new(), &self.apply)],
        )?;
        f.one_untyped(
            "felix_int_dataplane_failures",
            "Number of times dataplane updates failed and will be retried.",
            self.failures as f64,
        )?;
        f.histogram(
            "felix_route_table_list_seconds",
            "Time taken to list all the routes during a resync.",
            &[(Vec::new(), &self.route_list)],
        )?;
        f.one_untyped("felix_nft_calls", "Number of nft calls.", self.nft_calls as f64)?;
        f.one_untyped(
            "felix_nft_errors",
            "Number of nft errors.",
            self.nft_errors as f64,
        )?;
        let table = || -> Labels { vec![("ip_version", "4".into()), ("table", NFT_TABLE.into())] };
        f.untyped(
            "felix_nftables_lines_executed",
            "Number of nftables rule updates executed.",
            &[(table(), self.nft_lines as f64)],
        )?;
        let t = self.nft_table.unwrap_or_default();
        f.gauge(
            "felix_nft_chains",
            "Number of active nft chains.",
            &[(table(), t.chains as f64)],
        )?;
        f.gauge(
            "felix_nft_rules",
            "Number of active nftables rules.",
            &[(table(), t.rules as f64)],
        )?;
        f.gauge(
            "felix_ipsets_calico",
            "Number of active Calico IP sets (nftables sets).",
            &[(vec![("ip_version", "4".into())], t.sets as f64)],
        )?;
        f.one(
            "felix_ipsets_total",
            "Total number of active IP sets.",
            t.sets as f64,
        )?;
        f.counter(
            "brindle_conntrack_flows_deleted",
            "Conntrack flows deleted because their workload address went away.",
            &[(Vec::new(), self.conntrack_flows_deleted as f64)],
        )?;
        f.counter(
            "brindle_conntrack_cleanup_failures",
            "Workload addresses whose conntrack cleanup failed.",
            &[(Vec::new(), self.conntrack_failures as f64)],
        )?;
        if let Some(b) = self.bpf {
            let s = |program: &str, result: &str, v: u64| -> (Labels, f64) {
                (
                    vec![("program", program.into()), ("result", result.into())],
                    v as f64,
                )
            };
            f.counter(
                "brindle_bpf_ipip_packets",
                "Packets seen by the BPF tunl0 programs, by program and outcome.",
                &[
                    s("encap", "forwarded", b.encap),
                    s("encap", "no_route", b.encap_no_route),
                    s("encap", "dropped", b.encap_drop),
                    s("decap", "forwarded", b.decap),
                    s("decap", "denied", b.decap_denied),
                    s("decap", "dropped", b.decap_drop),
                ],
            )?;
        }
        Ok(())
    }
}
