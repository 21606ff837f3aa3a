//! Calico's IPAM handle (`/calico/ipam/v2/handle/<id>`): for one owner (a pod's
//! `<network>.<containerID>`, a node's `ipip-tunnel-addr-<node>`), how many addresses it holds
//! in each block. Release by handle reads it to know which blocks to visit.

use std::collections::BTreeMap;

use ipnet::IpNet;
use serde::{Deserialize, Serialize};

/// A handle's stored value: `{"block":{"10.233.94.0/24":1},"deleted":false}`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct IpamHandle {
    #[serde(default)]
    pub block: BTreeMap<String, u64>,
    #[serde(default)]
    pub deleted: bool,
}

impl IpamHandle {
    /// Adds `num` addresses in `block`.
    pub fn increment(&mut self, block: &IpNet, num: u64) {
        *self.block.entry(block.to_string()).or_default() += num;
    }

    /// Removes `num` addresses in `block` (saturating; the entry goes when it reaches 0).
    pub fn decrement(&mut self, block: &IpNet, num: u64) {
        let key = block.to_string();
        if let Some(n) = self.block.get_mut(&key) {
            *n = n.saturating_sub(num);
            if *n == 0 {
                self.block.remove(&key);
            }
        }
    }

    /// Forgets `block` entirely (after every address of the handle in it was released).
    pub fn forget(&mut self, block: &IpNet) {
        self.block.remove(&block.to_string());
    }

    /// The blocks this handle holds addresses in (entries that do not parse are skipped:
    /// they cannot name a block).
    pub fn blocks(&self) -> Vec<IpNet> {
        self.block.keys().filter_map(|k| k.parse().ok()).collect()
    }

    /// Total addresses held.
    pub fn count(&self) -> u64 {
        self.block.values().sum()
    }

    /// An empty handle is deleted rather than stored.
    pub fn is_empty(&self) -> bool {
        self.block.is_empty()
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
        assert!(h.is_empty());
        assert_eq!(
            serde_json::to_string(&h).unwrap(),
            r#"{"block":{},"deleted":false}"#
        );
    }

    #[test]
    fn calico_handle_json_loads() {
        let h: IpamHandle =
            serde_json::from_str(r#"{"block":{"10.233.94.0/24":1},"deleted":false}"#).unwrap();
        assert_eq!(h.blocks(), vec!["10.233.94.0/24".parse::<IpNet>().unwrap()]);
    }
}
