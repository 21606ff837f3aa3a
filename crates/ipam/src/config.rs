//! Calico's global IPAM configuration (`/calico/ipam/v2/config`; the v3 API shows it as
//! `IPAMConfiguration default`). Created with the defaults on first read.

pub use brindle_model::ipam::IpamConfig;

/// The block limit used when none is configured (Calico's safeguard).
pub const DEFAULT_MAX_BLOCKS_PER_HOST: usize = 20;

/// Calico's `SetIPAMConfig` rules: borrowing needs blocks to borrow from, and a block limit
/// without strict affinity would be silently bypassed by borrowing.
pub fn validate(c: &IpamConfig) -> Result<(), String> {
    if !c.strict_affinity && !c.auto_allocate_blocks {
        return Err("cannot disable 'StrictAffinity' and 'AutoAllocateBlocks' at the same time".into());
    }
    if c.max_blocks_per_host > 0 && !c.strict_affinity {
        return Err("MaxBlocksPerHost requires StrictAffinity to be enabled".into());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_rules_match_calico() {
        let mut c = IpamConfig::default();
        assert!(validate(&c).is_ok());
        c.max_blocks_per_host = 3;
        assert_eq!(
            validate(&c).unwrap_err(),
            "MaxBlocksPerHost requires StrictAffinity to be enabled"
        );
        c.strict_affinity = true;
        assert!(validate(&c).is_ok());
        c.strict_affinity = false;
        c.auto_allocate_blocks = false;
        c.max_blocks_per_host = 0;
        assert!(validate(&c).is_err());
    }
}
