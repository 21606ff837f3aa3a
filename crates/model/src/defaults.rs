//! Calico's defaults: the ones written into objects on create/apply (IPPool, as
//! `libcalico-go/lib/clientv3/ippool.go` does) and the effective values used when a setting is
//! absent (BGP AS 64512, mesh on, …; the `effective_*` helpers on the specs use these).

use crate::numorstring::AsNumber;
use crate::resources::{AllowedUse, EncapMode, IPPool, Resource};

/// IPv4 block size when a pool sets none.
pub const DEFAULT_BLOCK_SIZE_V4: u32 = 26;
/// IPv6 block size when a pool sets none.
pub const DEFAULT_BLOCK_SIZE_V6: u32 = 122;
/// The selector meaning "every node".
pub const DEFAULT_NODE_SELECTOR: &str = "all()";
/// AS number when neither the node nor BGPConfiguration `default` sets one.
pub const DEFAULT_AS_NUMBER: AsNumber = AsNumber::DEFAULT;
/// Node-to-node mesh when BGPConfiguration does not say.
pub const DEFAULT_MESH_ENABLED: bool = true;
/// BGP port.
pub const DEFAULT_BGP_PORT: u16 = 179;
/// Name of the global singletons (BGPConfiguration, FelixConfiguration, ClusterInformation,
/// IPAMConfiguration).
pub const GLOBAL_NAME: &str = "default";

/// Writes Calico's defaults into a resource about to be stored. Run it after validation: it
/// normalises the pool CIDR, which would hide a CIDR that is not strictly masked.
pub fn apply_defaults(r: &mut Resource) {
    if let Resource::IPPool(p) = r {
        apply_ippool_defaults(p);
    }
}

/// IPPool defaults: canonical CIDR, `nodeSelector: all()`, block size 26/122,
/// `allowedUses: [Workload, Tunnel]`, `ipipMode`/`vxlanMode: Never`.
pub fn apply_ippool_defaults(p: &mut IPPool) {
    let s = &mut p.spec;
    if let Ok(net) = s.cidr.parse::<ipnet::IpNet>() {
        s.cidr = net.trunc().to_string();
    }
    if s.node_selector.is_empty() {
        s.node_selector = DEFAULT_NODE_SELECTOR.to_string();
    }
    s.block_size = s.effective_block_size();
    if s.allowed_uses.is_empty() {
        s.allowed_uses = vec![AllowedUse::Workload, AllowedUse::Tunnel];
    }
    s.ipip_mode.get_or_insert(EncapMode::Never);
    s.vxlan_mode.get_or_insert(EncapMode::Never);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::meta::ObjectMeta;
    use crate::resources::IPPoolSpec;

    #[test]
    fn ippool_defaults() {
        let mut r = Resource::IPPool(IPPool::new(
            ObjectMeta::named("p"),
            IPPoolSpec {
                cidr: "fd00:0:0::/48".into(),
                ..IPPoolSpec::default()
            },
        ));
        apply_defaults(&mut r);
        let Resource::IPPool(p) = r else { unreachable!() };
        assert_eq!(p.spec.cidr, "fd00::/48");
        assert_eq!(p.spec.block_size, 122);
        assert_eq!(p.spec.node_selector, "all()");
        assert_eq!(
            p.spec.allowed_uses,
            vec![AllowedUse::Workload, AllowedUse::Tunnel]
        );
        assert_eq!(p.spec.ipip_mode, Some(EncapMode::Never));
        assert_eq!(p.spec.vxlan_mode, Some(EncapMode::Never));
        let mut v4 = IPPool::new(
            ObjectMeta::named("q"),
            IPPoolSpec {
                cidr: "10.0.0.0/16".into(),
                ..Default::default()
            },
        );
        apply_ippool_defaults(&mut v4);
        assert_eq!(v4.spec.block_size, 26);
    }
}
