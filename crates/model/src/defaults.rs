//! Calico's defaults: the ones written into objects on create/apply (IPPool, as
//! `libcalico-go/lib/clientv3/ippool.go` does; policies and tiers, as `api/pkg/defaults` and
//! the CRD schema defaults Calico v3.32's client applies in etcd mode) and the effective values
//! used when a setting is absent (BGP AS 64512, mesh on, …; the `effective_*` helpers on the
//! specs use these).

use std::collections::BTreeMap;

use crate::numorstring::AsNumber;
use crate::resources::{
    Action, AllowedUse, DEFAULT_TIER, DEFAULT_TIER_ORDER, EncapMode, IPPool, LABEL_TIER, PolicyType,
    Resource, Rule, Tier, inferred_types,
};

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
    match r {
        Resource::IPPool(p) => apply_ippool_defaults(p),
        Resource::NetworkPolicy(p) => {
            let s = &mut p.spec;
            default_policy(
                &mut p.metadata.labels,
                &mut s.tier,
                &s.ingress,
                &s.egress,
                &mut s.types,
            );
        }
        Resource::GlobalNetworkPolicy(p) => {
            let s = &mut p.spec;
            default_policy(
                &mut p.metadata.labels,
                &mut s.tier,
                &s.ingress,
                &s.egress,
                &mut s.types,
            );
        }
        Resource::Tier(t) => apply_tier_defaults(t),
        _ => {}
    }
}

/// Policy defaults: `tier: default` (the CRD default), the `projectcalico.org/tier` label, and
/// `types` inferred from the rules when empty.
fn default_policy(
    labels: &mut BTreeMap<String, String>,
    tier: &mut String,
    ingress: &[Rule],
    egress: &[Rule],
    types: &mut Vec<PolicyType>,
) {
    if tier.is_empty() {
        *tier = DEFAULT_TIER.to_string();
    }
    labels.insert(LABEL_TIER.to_string(), tier.clone());
    if types.is_empty() {
        *types = inferred_types(ingress, egress);
    }
}

/// Tier defaults (`libcalico-go/lib/resources/tier.go`): order 1,000,000 (a tier without an
/// order sorts with the default tier) and `defaultAction: Deny`.
pub fn apply_tier_defaults(t: &mut Tier) {
    t.spec.order.get_or_insert(DEFAULT_TIER_ORDER);
    t.spec.default_action.get_or_insert(Action::Deny);
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
    use crate::resources::{GlobalNetworkPolicy, IPPoolSpec, NetworkPolicy, NetworkPolicySpec, TierSpec};

    fn allow() -> Rule {
        Rule::action(Action::Allow)
    }

    #[test]
    fn policy_types_are_inferred_and_the_tier_filled_in() {
        let cases = [
            (vec![], vec![], vec![PolicyType::Ingress]),
            (vec![allow()], vec![], vec![PolicyType::Ingress]),
            (vec![], vec![allow()], vec![PolicyType::Egress]),
            (
                vec![allow()],
                vec![allow()],
                vec![PolicyType::Ingress, PolicyType::Egress],
            ),
        ];
        for (ingress, egress, want) in cases {
            let mut r = Resource::NetworkPolicy(NetworkPolicy::new(
                ObjectMeta::namespaced("ns", "p"),
                NetworkPolicySpec {
                    ingress,
                    egress,
                    ..Default::default()
                },
            ));
            apply_defaults(&mut r);
            let Resource::NetworkPolicy(p) = r else {
                unreachable!()
            };
            assert_eq!(p.spec.types, want);
            assert_eq!(p.spec.tier, "default");
            assert_eq!(p.metadata.labels[LABEL_TIER], "default");
        }
        // Given types stay, even when they disagree with the rules; the label follows the tier.
        let mut g = GlobalNetworkPolicy::new(ObjectMeta::named("g"), Default::default());
        g.spec.types = vec![PolicyType::Egress];
        g.spec.tier = "security".into();
        g.metadata.labels.insert(LABEL_TIER.into(), "stale".into());
        let mut r = Resource::GlobalNetworkPolicy(g);
        apply_defaults(&mut r);
        let Resource::GlobalNetworkPolicy(g) = r else {
            unreachable!()
        };
        assert_eq!(g.spec.types, vec![PolicyType::Egress]);
        assert_eq!(g.metadata.labels[LABEL_TIER], "security");
    }

    #[test]
    fn tier_defaults() {
        let mut t = Tier::new(ObjectMeta::named("t"), TierSpec::default());
        apply_tier_defaults(&mut t);
        assert_eq!(t.spec.order, Some(1_000_000.0));
        assert_eq!(t.spec.default_action, Some(Action::Deny));
        let mut t = Tier::new(
            ObjectMeta::named("t"),
            TierSpec {
                order: Some(5.0),
                default_action: Some(Action::Pass),
            },
        );
        apply_tier_defaults(&mut t);
        assert_eq!(t.spec.order, Some(5.0));
        assert_eq!(t.spec.default_action, Some(Action::Pass));
    }

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
