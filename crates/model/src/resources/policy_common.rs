//! The rule types shared by NetworkPolicy, GlobalNetworkPolicy and Profile
//! (`api/pkg/apis/projectcalico/v3/policy_common.go`): [`Rule`], [`EntityRule`], [`Action`],
//! [`IcmpFields`], [`ServiceAccountMatch`], [`ServiceMatch`], [`HttpMatch`], [`RuleMetadata`],
//! and the policy-level [`PolicyType`] and [`PerformanceHint`].
//!
//! Field names, order and omission follow the Go types: an empty `source`/`destination` is
//! omitted (`omitzero` since Calico v3.32), `action` is always written.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::numorstring::{Port, Protocol};

/// What a rule does with matching traffic. `Pass` skips the rest of the tier (the backend
/// calls it `next-tier`); `Log` logs and goes on to the next rule.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Action {
    #[default]
    Allow,
    Deny,
    Log,
    Pass,
}

impl Action {
    pub const fn as_str(self) -> &'static str {
        match self {
            Action::Allow => "Allow",
            Action::Deny => "Deny",
            Action::Log => "Log",
            Action::Pass => "Pass",
        }
    }
}

/// The direction a policy governs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum PolicyType {
    Ingress,
    Egress,
}

impl PolicyType {
    pub const fn as_str(self) -> &'static str {
        match self {
            PolicyType::Ingress => "Ingress",
            PolicyType::Egress => "Egress",
        }
    }
}

/// `performanceHints` of a policy. It only preloads the policy on every node; it never changes
/// a verdict.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum PerformanceHint {
    AssumeNeededOnEveryNode,
}

/// A policy or profile rule: match criteria (all ANDed) and an action.
/// A rule list decoded at its exact length: serde grows a list by doubling, so 10 rules
/// would keep room for 16 (~40 % more memory per policy in an agent caching thousands).
pub(crate) fn exact_rules<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Vec<Rule>, D::Error> {
    let mut v = <Vec<Rule> as serde::Deserialize>::deserialize(d)?;
    v.shrink_to_fit();
    Ok(v)
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Rule {
    pub action: Action,
    /// 4 or 6: the rule is left out of the other family's rules.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ip_version: Option<u8>,
    /// `TCP`, `UDP`, `ICMP`, `ICMPv6`, `SCTP`, `UDPLite` or 1-255.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub protocol: Option<Protocol>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub icmp: Option<IcmpFields>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub not_protocol: Option<Protocol>,
    #[serde(default, rename = "notICMP", skip_serializing_if = "Option::is_none")]
    pub not_icmp: Option<IcmpFields>,
    #[serde(default, skip_serializing_if = "EntityRule::is_empty")]
    pub source: EntityRule,
    #[serde(default, skip_serializing_if = "EntityRule::is_empty")]
    pub destination: EntityRule,
    /// Application-layer match: accepted and validated, not enforced by the dataplane.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub http: Option<Box<HttpMatch>>,
    /// Informational only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metadata: Option<RuleMetadata>,
}

impl Rule {
    /// A rule with only an action (`{action: Allow}`).
    pub fn action(action: Action) -> Rule {
        Rule {
            action,
            ..Rule::default()
        }
    }
}

/// ICMP type and code (`code` needs `type`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IcmpFields {
    /// 0-254.
    #[serde(default, rename = "type", skip_serializing_if = "Option::is_none")]
    pub icmp_type: Option<u8>,
    /// 0-255.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub code: Option<u8>,
}

/// The source or destination side of a rule. Every field set must match.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct EntityRule {
    /// CIDRs (or plain addresses), ORed.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub nets: Vec<String>,
    /// Endpoints and network sets whose labels match (in a namespaced policy: of the policy's
    /// namespace unless `namespaceSelector` says otherwise).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub selector: String,
    /// Namespaces by their labels; `global()` means non-namespaced objects only.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub namespace_selector: String,
    /// Boxed, as `serviceAccounts` and a rule's `http`: rarely set, and an agent caches every
    /// rule of every policy.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub services: Option<Box<ServiceMatch>>,
    /// Port numbers, `"min:max"` ranges or named ports (resolved through endpoints' ports).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ports: Vec<Port>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub not_nets: Vec<String>,
    /// Passed to the dataplane as written: not limited to the policy's namespace.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub not_selector: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub not_ports: Vec<Port>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service_accounts: Option<Box<ServiceAccountMatch>>,
}

impl EntityRule {
    pub fn is_empty(&self) -> bool {
        *self == EntityRule::default()
    }
}

/// A Kubernetes Service, by name and namespace.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServiceMatch {
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub name: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub namespace: String,
}

/// Service accounts by name (any of) and by their labels; the two are ANDed.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServiceAccountMatch {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub names: Vec<String>,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub selector: String,
}

/// HTTP methods and paths (application-layer policy).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HttpMatch {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub methods: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub paths: Vec<HttpPath>,
}

/// One HTTP path match: `exact` or `prefix`, not both.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HttpPath {
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub exact: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub prefix: String,
}

/// Free-form annotations on a rule.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RuleMetadata {
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
}

#[cfg(test)]
mod tests {
    use super::{EntityRule, Rule};

    /// An agent caches every rule of every policy (10 000 for 1000 policies of 10 rules), so
    /// the rarely used matches (`services`, `serviceAccounts`, `http`) are boxed.
    #[test]
    fn rules_stay_small() {
        let (rule, side) = (size_of::<Rule>(), size_of::<EntityRule>());
        eprintln!("Rule {rule} B, EntityRule {side} B");
        assert!(side <= 192 && rule <= 480, "Rule {rule} B, EntityRule {side} B");
    }
}
