//! BGPFilter (`api/pkg/apis/projectcalico/v3/bgpfilter.go`): ordered import and export rules,
//! per address family, attached to BGP peers through `BGPPeer.spec.filters`.
//!
//! The fields are those of the released Calico API (v3.26 to v3.32): `cidr`, `prefixLength`,
//! `source`, `interface`, `matchOperator`, `action`. How a rule matches is BIRD's (confd renders
//! each filter into BIRD functions, `confd/pkg/resource/template/template_funcs.go`); the
//! evaluation lives in `brindle-bgp-core`.

use serde::{Deserialize, Serialize};

use super::resource;
use crate::meta::{ApiVersion, KindTag, ObjectMeta};

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct BGPFilter {
    #[serde(default)]
    pub kind: KindTag<BGPFilter>,
    #[serde(default)]
    pub api_version: ApiVersion,
    #[serde(default)]
    pub metadata: ObjectMeta,
    #[serde(default)]
    pub spec: BGPFilterSpec,
}
resource!(BGPFilter, BGPFilterSpec);

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct BGPFilterSpec {
    /// Rules for IPv4 routes exported to a peer, in order.
    #[serde(default, rename = "exportV4", skip_serializing_if = "Vec::is_empty")]
    pub export_v4: Vec<BGPFilterRule>,
    /// Rules for IPv4 routes imported from a peer, in order.
    #[serde(default, rename = "importV4", skip_serializing_if = "Vec::is_empty")]
    pub import_v4: Vec<BGPFilterRule>,
    #[serde(default, rename = "exportV6", skip_serializing_if = "Vec::is_empty")]
    pub export_v6: Vec<BGPFilterRule>,
    #[serde(default, rename = "importV6", skip_serializing_if = "Vec::is_empty")]
    pub import_v6: Vec<BGPFilterRule>,
}

impl BGPFilterSpec {
    /// Export rules of both families (calicoctl's NUMEXPORT column).
    pub fn export_rules(&self) -> usize {
        self.export_v4.len() + self.export_v6.len()
    }

    /// Import rules of both families (calicoctl's NUMIMPORT column).
    pub fn import_rules(&self) -> usize {
        self.import_v4.len() + self.import_v6.len()
    }
}

/// Bounds on the prefix length of a matching route (`BGPFilterPrefixLengthV4/V6`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BGPFilterPrefixLength {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min: Option<i32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max: Option<i32>,
}

/// How a route's prefix is compared with `cidr`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum BGPFilterMatchOperator {
    Equal,
    NotEqual,
    In,
    NotIn,
}

/// Where a route comes from (only `RemotePeers`: learned from a BGP peer).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum BGPFilterMatchSource {
    RemotePeers,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum BGPFilterAction {
    Accept,
    Reject,
}

/// One rule (`BGPFilterRuleV4` / `BGPFilterRuleV6`: the same fields; the family is the list's).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct BGPFilterRule {
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub cidr: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prefix_length: Option<BGPFilterPrefixLength>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<BGPFilterMatchSource>,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub interface: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub match_operator: Option<BGPFilterMatchOperator>,
    /// Required; `None` only while loading, so a missing action is a validation error naming
    /// the field rather than a parse error.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub action: Option<BGPFilterAction>,
}
