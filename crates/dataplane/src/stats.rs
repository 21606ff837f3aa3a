//! What one apply did, counted for the agent's `/metrics` (which keeps Felix's names for them:
//! `felix_route_table_list_seconds`, `felix_nft_*`).

/// One `nft -f` transaction.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct NftRun {
    /// `nft` accepted the transaction.
    pub ok: bool,
    /// Lines of the transaction (Felix's `felix_nftables_lines_executed`).
    pub lines: usize,
    /// Sets, chains and rules of Brindle's table after it (when `ok`).
    pub sets: usize,
    pub chains: usize,
    pub rules: usize,
}

impl NftRun {
    /// Counts a transaction's text: every non-empty line is executed; the last table's chains
    /// and the statements inside them (not their `type … hook …` declarations) are what the
    /// kernel holds afterwards.
    pub fn of(text: &str, ok: bool) -> NftRun {
        let mut run = NftRun {
            ok,
            lines: text.lines().filter(|l| !l.trim().is_empty()).count(),
            ..Default::default()
        };
        let mut in_chain = false;
        for l in text.lines().map(str::trim) {
            if l.starts_with("table ") {
                // A later declaration replaces what came before (declare, delete, declare).
                run.sets = 0;
                run.chains = 0;
                run.rules = 0;
            } else if l.starts_with("set ") {
                run.sets += 1;
            } else if l.starts_with("chain ") {
                run.chains += 1;
                in_chain = true;
            } else if l == "}" {
                in_chain = false;
            } else if in_chain && !l.is_empty() && !l.starts_with("type ") {
                run.rules += 1;
            }
        }
        run
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_the_final_table() {
        let nat = crate::state::NatOutgoing {
            masq_pools: vec!["10.233.64.0/18".parse().unwrap()],
            all_pools: vec!["10.233.64.0/18".parse().unwrap()],
        };
        let text = crate::nat::transaction(&nat, true, &["172.20.42.81".parse().unwrap()]);
        let r = NftRun::of(&text, true);
        // filter-INPUT (1 rule), nat-cali-nat-outgoing (1), nat-POSTROUTING (jump + tunl0 masq).
        assert_eq!((r.sets, r.chains, r.rules), (3, 3, 4), "{text}");
        assert_eq!(r.lines, text.lines().filter(|l| !l.trim().is_empty()).count());
        assert!(r.ok);
    }
}
