//! What one apply did, counted for the agent's `/metrics` (which keeps Felix's names for them:
//! `felix_route_table_list_seconds`, `felix_nft_*`).

use brindle_netlink::nftables::object::TableFamily;

use crate::firewall::{Changes, Content, Written};

/// One nf_tables transaction on Brindle's tables.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct NftRun {
    /// The kernel accepted the transaction.
    pub ok: bool,
    /// Objects the transaction wrote (chains, rules, sets, elements, tables): the netlink
    /// counterpart of Felix's `felix_nftables_lines_executed`.
    pub lines: usize,
    /// Sets, chains and rules of Brindle's IPv4 table after it (when `ok`).
    pub sets: usize,
    pub chains: usize,
    pub rules: usize,
}

/// How many objects a plan wrote.
fn written(c: &Changes) -> usize {
    c.tables_created
        + c.tables_deleted
        + c.chains_created
        + c.chains_rewritten
        + c.chains_deleted
        + c.rules_written
        + c.sets_created
        + c.sets_deleted
        + c.elements_added
        + c.elements_removed
}

impl NftRun {
    /// A write that changed something, with the IPv4 table as it is wanted now; `None` when the
    /// write had nothing to do.
    pub fn of_write(w: &Written, wanted: &Content, ok: bool) -> Option<NftRun> {
        let lines = written(&w.changes);
        if lines == 0 && !w.read_back {
            return None;
        }
        let mut run = NftRun {
            ok,
            lines,
            ..Default::default()
        };
        if let Some(t) = wanted.get(&TableFamily::Ip) {
            run.sets = t.sets.len();
            run.chains = t.chains.len();
            run.rules = t.chains.values().map(|c| c.rules.len()).sum();
        }
        Some(run)
    }

    /// A transaction the kernel refused.
    pub fn failed() -> NftRun {
        NftRun::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nothing_written_is_no_run_and_the_table_is_counted() {
        let w = Written::default();
        assert_eq!(NftRun::of_write(&w, &Content::new(), true), None);
        let mut w = Written::default();
        w.changes.chains_created = 2;
        w.changes.rules_written = 5;
        let run = NftRun::of_write(&w, &Content::new(), true).unwrap();
        assert_eq!((run.ok, run.lines, run.chains), (true, 7, 0));
    }
}
