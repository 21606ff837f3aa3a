//! Calico's global IPAM configuration (`/calico/ipam/v2/config`; the v3 API shows it as
//! `IPAMConfiguration default`). Created with the defaults on first read.

use serde::{Deserialize, Serialize};

/// Stored value. Every field is `omitempty` in Calico, so the default document is
/// `{"auto_allocate_blocks":true,"kubeVirtVMAddressPersistence":"Enabled"}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IpamConfig {
    /// No borrowing from other nodes' blocks.
    #[serde(rename = "strict_affinity", default, skip_serializing_if = "is_false")]
    pub strict_affinity: bool,
    /// Nodes claim blocks as they need them.
    #[serde(rename = "auto_allocate_blocks", default, skip_serializing_if = "is_false")]
    pub auto_allocate_blocks: bool,
    /// Blocks one node may hold per family; 0 means unset (the allocator then uses 20).
    #[serde(rename = "maxBlocksPerHost", default, skip_serializing_if = "is_zero")]
    pub max_blocks_per_host: u32,
    #[serde(
        rename = "kubeVirtVMAddressPersistence",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub kube_virt_vm_address_persistence: Option<String>,
}

fn is_false(b: &bool) -> bool {
    !*b
}

fn is_zero(n: &u32) -> bool {
    *n == 0
}

/// The block limit used when none is configured (Calico's safeguard).
pub const DEFAULT_MAX_BLOCKS_PER_HOST: usize = 20;

impl Default for IpamConfig {
    fn default() -> Self {
        IpamConfig {
            strict_affinity: false,
            auto_allocate_blocks: true,
            max_blocks_per_host: 0,
            kube_virt_vm_address_persistence: Some("Enabled".into()),
        }
    }
}

impl IpamConfig {
    /// Calico's `SetIPAMConfig` rules: borrowing needs blocks to borrow from, and a block limit
    /// without strict affinity would be silently bypassed by borrowing.
    pub fn validate(&self) -> Result<(), String> {
        if !self.strict_affinity && !self.auto_allocate_blocks {
            return Err("cannot disable 'StrictAffinity' and 'AutoAllocateBlocks' at the same time".into());
        }
        if self.max_blocks_per_host > 0 && !self.strict_affinity {
            return Err("MaxBlocksPerHost requires StrictAffinity to be enabled".into());
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_config_document_is_calicos() {
        assert_eq!(
            serde_json::to_string(&IpamConfig::default()).unwrap(),
            r#"{"auto_allocate_blocks":true,"kubeVirtVMAddressPersistence":"Enabled"}"#
        );
        let c: IpamConfig = serde_json::from_str(
            r#"{"strict_affinity":true,"auto_allocate_blocks":true,"maxBlocksPerHost":4}"#,
        )
        .unwrap();
        assert!(c.strict_affinity);
        assert_eq!(c.max_blocks_per_host, 4);
    }

    #[test]
    fn config_rules_match_calico() {
        let mut c = IpamConfig::default();
        assert!(c.validate().is_ok());
        c.max_blocks_per_host = 3;
        assert_eq!(
            c.validate().unwrap_err(),
            "MaxBlocksPerHost requires StrictAffinity to be enabled"
        );
        c.strict_affinity = true;
        assert!(c.validate().is_ok());
        c.strict_affinity = false;
        c.auto_allocate_blocks = false;
        c.max_blocks_per_host = 0;
        assert!(c.validate().is_err());
    }
}
