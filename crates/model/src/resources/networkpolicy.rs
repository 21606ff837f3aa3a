//! NetworkPolicy (namespaced) and GlobalNetworkPolicy (cluster-wide)
//! (`api/pkg/apis/projectcalico/v3/networkpolicy.go`, `globalnetworkpolicy.go`).
//!
//! On write the client fills in what Calico's does (see [`crate::defaults`]): `tier: default`,
//! the label `projectcalico.org/tier`, and `types` inferred from the rules (Felix reads an empty
//! `types` as both directions, so the inferred value must be stored).

use serde::{Deserialize, Serialize};

use super::policy_common::{PerformanceHint, PolicyType, Rule};
use super::resource;
use crate::meta::{ApiVersion, KindTag, ObjectMeta};

/// The tier a policy is in when `tier` is empty.
pub const DEFAULT_TIER: &str = "default";
/// The label Calico puts on every policy with its tier's name.
pub const LABEL_TIER: &str = "projectcalico.org/tier";
/// The name prefix of Kubernetes NetworkPolicies converted to Calico ones in etcd mode.
pub const K8S_POLICY_PREFIX: &str = "knp.default.";

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct NetworkPolicy {
    #[serde(default)]
    pub kind: KindTag<NetworkPolicy>,
    #[serde(default)]
    pub api_version: ApiVersion,
    #[serde(default)]
    pub metadata: ObjectMeta,
    #[serde(default)]
    pub spec: NetworkPolicySpec,
}
resource!(NetworkPolicy, NetworkPolicySpec);

impl NetworkPolicy {
    /// Whether this is a converted Kubernetes NetworkPolicy (`knp.default.<name>`).
    pub fn is_kubernetes(&self) -> bool {
        self.metadata.name.starts_with(K8S_POLICY_PREFIX)
    }
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct NetworkPolicySpec {
    /// The tier; empty means `default` (the client stores `default`).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub tier: String,
    /// Lower runs first; `None` runs after every number.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        serialize_with = "crate::gofloat::serialize_opt_f64"
    )]
    pub order: Option<f64>,
    #[serde(
        default,
        skip_serializing_if = "Vec::is_empty",
        deserialize_with = "crate::resources::policy_common::exact_rules"
    )]
    pub ingress: Vec<Rule>,
    #[serde(
        default,
        skip_serializing_if = "Vec::is_empty",
        deserialize_with = "crate::resources::policy_common::exact_rules"
    )]
    pub egress: Vec<Rule>,
    /// The endpoints (of the policy's namespace) it applies to; empty selects all.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub selector: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub types: Vec<PolicyType>,
    /// Labels of the endpoints' service accounts, ANDed with `selector`.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub service_account_selector: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub performance_hints: Vec<PerformanceHint>,
}

impl NetworkPolicySpec {
    /// The tier, `default` when empty.
    pub fn tier_or_default(&self) -> &str {
        tier_or_default(&self.tier)
    }
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct GlobalNetworkPolicy {
    #[serde(default)]
    pub kind: KindTag<GlobalNetworkPolicy>,
    #[serde(default)]
    pub api_version: ApiVersion,
    #[serde(default)]
    pub metadata: ObjectMeta,
    #[serde(default)]
    pub spec: GlobalNetworkPolicySpec,
}
resource!(GlobalNetworkPolicy, GlobalNetworkPolicySpec);

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct GlobalNetworkPolicySpec {
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub tier: String,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        serialize_with = "crate::gofloat::serialize_opt_f64"
    )]
    pub order: Option<f64>,
    #[serde(
        default,
        skip_serializing_if = "Vec::is_empty",
        deserialize_with = "crate::resources::policy_common::exact_rules"
    )]
    pub ingress: Vec<Rule>,
    #[serde(
        default,
        skip_serializing_if = "Vec::is_empty",
        deserialize_with = "crate::resources::policy_common::exact_rules"
    )]
    pub egress: Vec<Rule>,
    /// The endpoints (of any namespace) it applies to; empty selects all.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub selector: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub types: Vec<PolicyType>,
    /// Untracked (raw table) policy; host endpoints only.
    #[serde(default, skip_serializing_if = "super::is_false")]
    pub do_not_track: bool,
    /// Applied before DNAT; host endpoints only, ingress only.
    #[serde(default, rename = "preDNAT", skip_serializing_if = "super::is_false")]
    pub pre_dnat: bool,
    /// Also applies to forwarded traffic at host endpoints.
    #[serde(default, skip_serializing_if = "super::is_false")]
    pub apply_on_forward: bool,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub service_account_selector: String,
    /// Labels of the endpoints' namespaces, ANDed with `selector`.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub namespace_selector: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub performance_hints: Vec<PerformanceHint>,
}

impl GlobalNetworkPolicySpec {
    /// The tier, `default` when empty.
    pub fn tier_or_default(&self) -> &str {
        tier_or_default(&self.tier)
    }
}

/// `tier`, or `default` when empty (`names.TierOrDefault`).
pub fn tier_or_default(tier: &str) -> &str {
    if tier.is_empty() { DEFAULT_TIER } else { tier }
}

/// The policy types a policy governs when it does not say: `[Ingress]` without egress rules
/// (also with no rules at all), `[Egress]` with only egress rules, both with both
/// (`api/pkg/defaults/networkpolicy.go`).
pub fn inferred_types(ingress: &[Rule], egress: &[Rule]) -> Vec<PolicyType> {
    if egress.is_empty() {
        vec![PolicyType::Ingress]
    } else if ingress.is_empty() {
        vec![PolicyType::Egress]
    } else {
        vec![PolicyType::Ingress, PolicyType::Egress]
    }
}
