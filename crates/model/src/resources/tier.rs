//! Tier (`api/pkg/apis/projectcalico/v3/tier.go`): an ordered group of policies with a default
//! action for traffic that a tier's policies select but no rule decides.
//!
//! Calico v3.32 has three built-in tiers, created by every client at start-up
//! (`clientv3/client.go` `EnsureInitialized`) and never deletable: `kube-admin` (order 1000,
//! Pass), `default` (1,000,000, Deny) and `kube-baseline` (10,000,000, Pass). See
//! [`BUILTIN_TIERS`].

use serde::{Deserialize, Serialize};

use super::policy_common::Action;
use super::resource;
use crate::meta::{ApiVersion, KindTag, ObjectMeta};

/// Order of the `kube-admin` tier.
pub const KUBE_ADMIN_TIER_ORDER: f64 = 1_000.0;
/// Order of the `default` tier, and of a tier created without an order.
pub const DEFAULT_TIER_ORDER: f64 = 1_000_000.0;
/// Order of the `kube-baseline` tier.
pub const KUBE_BASELINE_TIER_ORDER: f64 = 10_000_000.0;
/// Name of the tier policies go to without a `tier`.
pub const DEFAULT_TIER_NAME: &str = "default";
/// Name of the tier Kubernetes AdminNetworkPolicies go to.
pub const KUBE_ADMIN_TIER_NAME: &str = "kube-admin";
/// Name of the tier Kubernetes BaselineAdminNetworkPolicies go to.
pub const KUBE_BASELINE_TIER_NAME: &str = "kube-baseline";

/// The built-in tiers (name, order, default action), in order.
pub const BUILTIN_TIERS: [(&str, f64, Action); 3] = [
    (KUBE_ADMIN_TIER_NAME, KUBE_ADMIN_TIER_ORDER, Action::Pass),
    (DEFAULT_TIER_NAME, DEFAULT_TIER_ORDER, Action::Deny),
    (KUBE_BASELINE_TIER_NAME, KUBE_BASELINE_TIER_ORDER, Action::Pass),
];

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Tier {
    #[serde(default)]
    pub kind: KindTag<Tier>,
    #[serde(default)]
    pub api_version: ApiVersion,
    #[serde(default)]
    pub metadata: ObjectMeta,
    #[serde(default)]
    pub spec: TierSpec,
    /// Always written (`status: {}` when empty): a struct in Go, where `omitempty` does not apply.
    #[serde(default)]
    pub status: TierStatus,
}
resource!(Tier, TierSpec);

impl Tier {
    /// One of the built-in tiers as Calico's client creates it.
    pub fn builtin(name: &str, order: f64, default_action: Action) -> Tier {
        Tier::new(
            ObjectMeta::named(name),
            TierSpec {
                order: Some(order),
                default_action: Some(default_action),
            },
        )
    }

    /// Whether this name is one of the built-in tiers (which cannot be deleted).
    pub fn is_builtin(name: &str) -> bool {
        BUILTIN_TIERS.iter().any(|(n, _, _)| *n == name)
    }
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct TierSpec {
    /// Lower runs first; the client stores 1,000,000 when none is given.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        serialize_with = "crate::gofloat::serialize_opt_f64"
    )]
    pub order: Option<f64>,
    /// `Deny` (default) or `Pass`, for traffic the tier's policies select but do not decide.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default_action: Option<Action>,
}

impl TierSpec {
    /// The default action, `Deny` when unset (anything but `Pass` is `Deny` in the backend).
    pub fn effective_default_action(&self) -> Action {
        match self.default_action {
            Some(Action::Pass) => Action::Pass,
            _ => Action::Deny,
        }
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct TierStatus {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<Condition>,
}

/// `metav1.Condition`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Condition {
    #[serde(default, rename = "type")]
    pub condition_type: String,
    #[serde(default)]
    pub status: String,
    #[serde(default, skip_serializing_if = "super::is_zero_i64")]
    pub observed_generation: i64,
    #[serde(default)]
    pub last_transition_time: Option<String>,
    #[serde(default)]
    pub reason: String,
    #[serde(default)]
    pub message: String,
}
