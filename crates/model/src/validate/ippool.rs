//! IPPool validation (Calico's `validateAndSetDefaults` and `validateIPPoolSpec`).

use ipnet::IpNet;

use super::Checker;
use crate::error::{FieldError, ValidationError};
use crate::kind::Kind;
use crate::resources::{AllowedUse, IPPool, IPPoolSpec};

const V4_LINK_LOCAL: &str = "169.254.0.0/16";
const V6_LINK_LOCAL: &str = "fe80::/10";

fn overlaps(a: &IpNet, b: &IpNet) -> bool {
    a.contains(&b.network()) || b.contains(&a.network())
}

pub(super) fn check(c: &mut Checker, s: &IPPoolSpec) {
    if s.cidr.is_empty() {
        c.missing("Spec.CIDR", "IPPool CIDR must be specified");
        return;
    }
    let Ok(given) = s.cidr.parse::<IpNet>() else {
        c.bad("Spec.CIDR", &s.cidr, "IPPool CIDR must be a valid subnet");
        return;
    };
    let net = given.trunc();
    let v6 = matches!(net, IpNet::V6(_));
    let block = s.effective_block_size();
    if !v6 && !(20..=32).contains(&block) {
        c.bad(
            "Spec.BlockSize",
            block,
            "IPv4 block size must be between 20 and 32",
        );
    } else if v6 && !(116..=128).contains(&block) {
        c.bad(
            "Spec.BlockSize",
            block,
            "IPv6 block size must be between 116 and 128",
        );
    } else if !s.disabled && u32::from(net.prefix_len()) > block {
        c.bad(
            "Spec.CIDR",
            &s.cidr,
            "IP pool size is too small for use with Calico IPAM. It must be equal to or greater than the block size.",
        );
    }
    if s.vxlan().enabled() && s.ipip().enabled() {
        c.bad(
            "Spec.VXLANMode",
            s.vxlan().as_str(),
            "Cannot enable both VXLAN and IPIP on the same IPPool",
        );
    }
    if v6 && s.ipip().enabled() {
        c.bad(
            "Spec.IPIPMode",
            s.ipip().as_str(),
            "IPIP is not supported on an IPv6 IP pool",
        );
    }
    if given.addr() != net.network() {
        c.bad("Spec.CIDR", &s.cidr, "IPPool CIDR is not strictly masked");
    }
    let (ll, family) = if v6 {
        (V6_LINK_LOCAL, "IPv6")
    } else {
        (V4_LINK_LOCAL, "IPv4")
    };
    let ll: IpNet = ll.parse().expect("constant link-local range");
    if overlaps(&net, &ll) {
        c.bad(
            "Spec.CIDR",
            &s.cidr,
            format!("IPPool CIDR overlaps with {family} Link Local range {ll}"),
        );
    }

    let load_balancer = s.allowed_uses.contains(&AllowedUse::LoadBalancer);
    if load_balancer {
        for u in &s.allowed_uses {
            if *u != AllowedUse::LoadBalancer {
                c.bad(
                    "Spec.AllowedUses",
                    format!("{u:?}"),
                    format!("LoadBalancer cannot be used at the same time as: {u:?}"),
                );
            }
        }
        if s.ipip().enabled() || s.vxlan().enabled() {
            c.bad(
                "Spec.IPIPMode",
                s.ipip().as_str(),
                "Neither IPIPMode nor VXLANMode can be enabled on AllowedUses LoadBalancer IP pool",
            );
        }
        if s.disable_bgp_export {
            c.bad(
                "Spec.DisableBGPExport",
                true,
                "IP Pool with AllowedUse LoadBalancer cannot have DisableBGPExport set",
            );
        }
        if s.effective_node_selector() != "all()" {
            c.bad(
                "Spec.NodeSelector",
                &s.node_selector,
                "IP Pool with AllowedUse LoadBalancer must have node selector set to all()",
            );
        }
    }
    if s.allowed_uses.contains(&AllowedUse::Tunnel) && !s.namespace_selector.is_empty() {
        c.bad(
            "Spec.NamespaceSelector",
            &s.namespace_selector,
            "IP Pool with AllowedUse Tunnel cannot have namespaceSelector specified - tunnel IPs are not namespaced resources",
        );
    }
    if let Some(sel) = c.selector("Spec.NodeSelector", &s.node_selector)
        && sel.uses_global()
    {
        c.bad(
            "Spec.NodeSelector",
            &s.node_selector,
            "global() selector is not valid for IPPool nodeSelector - use all() instead",
        );
    }
    if let Some(sel) = c.selector("Spec.NamespaceSelector", &s.namespace_selector)
        && sel.uses_global()
    {
        c.bad(
            "Spec.NamespaceSelector",
            &s.namespace_selector,
            "global() selector is not valid for IPPool namespaceSelector - use all() instead",
        );
    }
    if let Some(v) = &s.ipip {
        c.bad(
            "Spec.IPIP",
            v,
            "the v1 'ipip' field is not supported; use ipipMode",
        );
    }
    if s.nat_outgoing_v1 {
        c.bad(
            "Spec.NATOutgoingV1",
            true,
            "the v1 'nat-outgoing' field is not supported; use natOutgoing",
        );
    }
}

fn error(pool: &IPPool, fields: Vec<FieldError>) -> Result<(), ValidationError> {
    if fields.is_empty() {
        return Ok(());
    }
    Err(ValidationError {
        kind: Kind::IPPool,
        namespace: String::new(),
        name: pool.metadata.name.clone(),
        fields,
    })
}

/// The create-time check against the pools already stored: the new pool must not overlap any
/// other (`IPPool(<new>) CIDR overlaps with IPPool(<other>) CIDR <cidr>`). A pool of the same
/// name is skipped (creating it again is an "already exists" error, not an overlap).
pub fn validate_ippool_create(new: &IPPool, existing: &[IPPool]) -> Result<(), ValidationError> {
    let Ok(net) = new.spec.cidr.parse::<IpNet>() else {
        return Ok(()); // reported by `validate`
    };
    let net = net.trunc();
    let fields = existing
        .iter()
        .filter(|o| o.metadata.name != new.metadata.name)
        .filter_map(|o| {
            let other = o.spec.cidr.parse::<IpNet>().ok()?.trunc();
            overlaps(&net, &other).then(|| FieldError {
                field: "IPPool.Spec.CIDR".into(),
                value: Some(new.spec.cidr.clone()),
                reason: format!(
                    "IPPool({}) CIDR overlaps with IPPool({}) CIDR {}",
                    new.metadata.name, o.metadata.name, o.spec.cidr
                ),
            })
        })
        .collect();
    error(new, fields)
}

/// The update-time checks: CIDR and block size cannot change, and a LoadBalancer pool stays one.
pub fn validate_ippool_update(old: &IPPool, new: &IPPool) -> Result<(), ValidationError> {
    let mut fields = Vec::new();
    let same_cidr = match (old.spec.cidr.parse::<IpNet>(), new.spec.cidr.parse::<IpNet>()) {
        (Ok(a), Ok(b)) => a.trunc() == b.trunc(),
        _ => old.spec.cidr == new.spec.cidr,
    };
    if !same_cidr {
        fields.push(FieldError {
            field: "IPPool.Spec.CIDR".into(),
            value: Some(new.spec.cidr.clone()),
            reason: "IPPool CIDR cannot be modified".into(),
        });
    }
    if old.spec.effective_block_size() != new.spec.effective_block_size() {
        fields.push(FieldError {
            field: "IPPool.Spec.BlockSize".into(),
            value: Some(new.spec.effective_block_size().to_string()),
            reason: "IPPool BlockSize cannot be modified".into(),
        });
    }
    let old_lb = old.spec.allowed_uses.contains(&AllowedUse::LoadBalancer);
    if old_lb
        && new
            .spec
            .effective_allowed_uses()
            .iter()
            .any(|u| *u != AllowedUse::LoadBalancer)
    {
        fields.push(FieldError {
            field: "IPPool.Spec.AllowedUses".into(),
            value: Some(format!("{:?}", new.spec.allowed_uses)),
            reason: "IPPool allowed use cannot be changed from LoadBalancer to Workload or Tunnel".into(),
        });
    }
    error(new, fields)
}
