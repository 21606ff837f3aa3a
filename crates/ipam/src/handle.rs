//! Calico's IPAM handle (`/calico/ipam/v2/handle/<id>`): for one owner (a pod's
//! `<network>.<containerID>`, a node's `ipip-tunnel-addr-<node>`), how many addresses it holds
//! in each block. Release by handle reads it to know which blocks to visit.

use ipnet::IpNet;

pub use brindle_model::ipam::IpamHandle;

/// Counting on a handle's per-block map (`{"block":{"10.233.94.0/24":1},"deleted":false}`).
pub trait HandleOps {
    /// Adds `num` addresses in `block`.
    fn increment(&mut self, block: &IpNet, num: u64);
    /// Removes `num` addresses in `block` (saturating; the entry goes when it reaches 0).
    fn decrement(&mut self, block: &IpNet, num: u64);
    /// Forgets `block` entirely (after every address of the handle in it was released).
    fn forget(&mut self, block: &IpNet);
    /// The blocks this handle holds addresses in (entries that do not parse are skipped:
    /// they cannot name a block).
    fn blocks(&self) -> Vec<IpNet>;
    /// Total addresses held.
    fn count(&self) -> u64;
}

impl HandleOps for IpamHandle {
    fn increment(&mut self, block: &IpNet, num: u64) {
        *self.block.entry(block.to_string()).or_default() += num;
    }

    fn decrement(&mut self, block: &IpNet, num: u64) {
        let key = block.to_string();
        if let Some(n) = self.block.get_mut(&key) {
            *n = n.saturating_sub(num);
            if *n == 0 {
                self.block.remove(&key);
            }
        }
    }

    fn forget(&mut self, block: &IpNet) {
        self.block.remove(&block.to_string());
    }

    fn blocks(&self) -> Vec<IpNet> {
        self.block.keys().filter_map(|k| k.parse().ok()).collect()
    }

    fn count(&self) -> u64 {
        self.block.values().sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn handle_counts_add_and_remove_per_block() {
        let b1: IpNet = "10.233.94.0/24".parse().unwrap();
        let b2: IpNet = "10.233.95.0/24".parse().unwrap();
        let mut h = IpamHandle::default();
        h.increment(&b1, 1);
        h.increment(&b1, 2);
        h.increment(&b2, 1);
        assert_eq!(h.count(), 4);
        assert_eq!(
            serde_json::to_string(&h).unwrap(),
            r#"{"block":{"10.233.94.0/24":3,"10.233.95.0/24":1},"deleted":false}"#
        );
        h.decrement(&b1, 3);
        h.decrement(&b2, 5);
        assert!(h.block.is_empty());
        assert_eq!(
            serde_json::to_string(&h).unwrap(),
            r#"{"block":{},"deleted":false}"#
        );
    }
}
