//! Which pools an allocation may use (Calico's `determinePools` and `filterPoolsByUse`), pure.

use ipnet::IpNet;

use crate::cidr::Family;
use crate::error::{IpamError, Result};
use crate::resources::{IntendedUse, NodeInfo, Pool, selects};

/// The pools for one request: `allowed` may be used; `selecting` select the node whatever the
/// use (blocks affine to the node in other pools are candidates for release).
#[derive(Debug, Clone)]
pub struct PoolChoice {
    pub allowed: Vec<Pool>,
    pub selecting: Vec<Pool>,
}

/// Chooses the pools of `family` for `node` and `use_`. Pools asked for by CIDR are used as
/// given (they must exist and be enabled); otherwise the enabled, automatic pools whose
/// `nodeSelector` selects the node; then those whose `allowedUses` include `use_`.
pub fn choose(
    all: &[Pool],
    family: Family,
    requested: &[IpNet],
    node: &NodeInfo,
    use_: IntendedUse,
) -> Result<PoolChoice> {
    for r in requested {
        if Family::of_net(r) != family {
            return Err(IpamError::PoolWrongFamily {
                cidr: *r,
                expected: family.number(),
                found: Family::of_net(r).number(),
            });
        }
    }
    let enabled: Vec<&Pool> = all
        .iter()
        .filter(|p| !p.disabled && p.family() == family && p.block_size >= p.cidr.prefix_len())
        .collect();
    let selecting: Vec<Pool> = if !requested.is_empty() {
        requested
            .iter()
            .map(|r| {
                enabled
                    .iter()
                    .find(|p| p.cidr == r.trunc())
                    .map(|p| (*p).clone())
                    .ok_or(IpamError::PoolNotEnabled { cidr: r.trunc() })
            })
            .collect::<Result<_>>()?
    } else {
        let mut v = Vec::new();
        for p in enabled.iter().filter(|p| !p.manual) {
            if selects(&p.node_selector, &node.labels)? {
                v.push((*p).clone());
            }
        }
        v
    };
    if selecting.is_empty() {
        return Err(IpamError::NoPoolsForNode {
            node: node.name.clone(),
            family: family.number(),
        });
    }
    let allowed: Vec<Pool> = selecting.iter().filter(|p| p.allows(use_)).cloned().collect();
    if allowed.is_empty() {
        return Err(IpamError::NoPoolForUse {
            intended_use: crate::resources::use_name(use_).into(),
        });
    }
    Ok(PoolChoice { allowed, selecting })
}

/// The pool (of any state) containing `addr`, if any.
pub fn containing(pools: &[Pool], addr: std::net::IpAddr) -> Option<&Pool> {
    pools.iter().find(|p| p.cidr.contains(&addr))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pool(name: &str, cidr: &str) -> Pool {
        Pool {
            name: name.into(),
            cidr: cidr.parse().unwrap(),
            block_size: 26,
            disabled: false,
            node_selector: "all()".into(),
            allowed_uses: vec![IntendedUse::Workload, IntendedUse::Tunnel],
            ipip: false,
            vxlan: false,
            manual: false,
        }
    }

    fn node(labels: &[(&str, &str)]) -> NodeInfo {
        NodeInfo {
            name: "node1".into(),
            labels: labels
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            ..NodeInfo::default()
        }
    }

    #[test]
    fn pools_are_chosen_by_state_selector_and_use() {
        let mut disabled = pool("d", "10.1.0.0/16");
        disabled.disabled = true;
        let mut zone = pool("z", "10.2.0.0/16");
        zone.node_selector = "zone == 'a'".into();
        let mut tunnel_only = pool("t", "10.3.0.0/16");
        tunnel_only.allowed_uses = vec![IntendedUse::Tunnel];
        let mut manual = pool("m", "10.4.0.0/16");
        manual.manual = true;
        let v6 = Pool {
            block_size: 122,
            ..pool("v6", "fd00::/48")
        };
        let all = vec![pool("p", "10.0.0.0/16"), disabled, zone, tunnel_only, manual, v6];

        let c = choose(&all, Family::V4, &[], &node(&[]), IntendedUse::Workload).unwrap();
        assert_eq!(
            c.allowed.iter().map(|p| p.name.as_str()).collect::<Vec<_>>(),
            ["p"]
        );
        assert_eq!(c.selecting.len(), 2);
        let c = choose(
            &all,
            Family::V4,
            &[],
            &node(&[("zone", "a")]),
            IntendedUse::Tunnel,
        )
        .unwrap();
        assert_eq!(
            c.allowed.iter().map(|p| p.name.as_str()).collect::<Vec<_>>(),
            ["p", "z", "t"]
        );
        // Explicit pools are used even when the selector or mode would skip them.
        let c = choose(
            &all,
            Family::V4,
            &["10.4.0.0/16".parse().unwrap()],
            &node(&[]),
            IntendedUse::Workload,
        )
        .unwrap();
        assert_eq!(c.allowed[0].name, "m");
        let c = choose(&all, Family::V6, &[], &node(&[]), IntendedUse::Workload).unwrap();
        assert_eq!(c.allowed[0].name, "v6");
    }

    #[test]
    fn pool_errors_name_the_problem() {
        let all = vec![pool("p", "10.0.0.0/16")];
        let e = choose(
            &all,
            Family::V4,
            &["10.1.0.0/16".parse().unwrap()],
            &node(&[]),
            IntendedUse::Workload,
        )
        .unwrap_err();
        assert_eq!(
            e.to_string(),
            "the given pool (10.1.0.0/16) does not exist, or is not enabled"
        );
        let e = choose(&all, Family::V6, &[], &node(&[]), IntendedUse::Workload).unwrap_err();
        assert_eq!(e.to_string(), "no configured Calico pools for node node1 (IPv6)");
        let e = choose(&all, Family::V4, &[], &node(&[]), IntendedUse::LoadBalancer).unwrap_err();
        assert_eq!(
            e.to_string(),
            "cannot find a qualified ippool, no pools match the required use (LoadBalancer)"
        );
        let e = choose(
            &all,
            Family::V4,
            &["fd00::/48".parse().unwrap()],
            &node(&[]),
            IntendedUse::Workload,
        )
        .unwrap_err();
        assert!(e.to_string().contains("IPv6 pool"), "{e}");
    }
}
