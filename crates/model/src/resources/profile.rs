//! Profile (`api/pkg/apis/projectcalico/v3/profile.go`): rules and labels an endpoint takes from
//! the profiles it names. The CNI plugin creates one per network; Kubernetes namespaces and
//! service accounts give `kns.<namespace>` and `ksa.<namespace>.<sa>` ([`crate::k8s`]).
//! Profiles have no selector, order or tier: an endpoint uses the profiles in its
//! `spec.profiles`, in order, after every tier.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::policy_common::{Action, Rule};
use super::resource;
use crate::meta::{ApiVersion, KindTag, ObjectMeta};

/// The profile Calico's etcd backend serves without storing it: allow both ways.
pub const DEFAULT_ALLOW_PROFILE: &str = "projectcalico-default-allow";

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Profile {
    #[serde(default)]
    pub kind: KindTag<Profile>,
    #[serde(default)]
    pub api_version: ApiVersion,
    #[serde(default)]
    pub metadata: ObjectMeta,
    #[serde(default)]
    pub spec: ProfileSpec,
}
resource!(Profile, ProfileSpec);

impl Profile {
    /// `projectcalico-default-allow` as Calico's etcd backend returns it
    /// (`libcalico-go/lib/resources/static.go`).
    pub fn default_allow() -> Profile {
        Profile::new(
            ObjectMeta::named(DEFAULT_ALLOW_PROFILE),
            ProfileSpec {
                ingress: vec![Rule::action(Action::Allow)],
                egress: vec![Rule::action(Action::Allow)],
                labels_to_apply: BTreeMap::new(),
            },
        )
    }
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ProfileSpec {
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
    /// Labels every endpoint naming this profile inherits (the endpoint's own label wins;
    /// between profiles, the first in its list wins).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub labels_to_apply: BTreeMap<String, String>,
}
