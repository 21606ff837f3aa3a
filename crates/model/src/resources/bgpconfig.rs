//! BGPConfiguration (`api/pkg/apis/projectcalico/v3/bgpconfig.go`): `default` is global,
//! `node.<name>` applies to one node.

use serde::{Deserialize, Serialize};

use super::{is_zero_u16, resource};
use crate::duration::GoDuration;
use crate::meta::{ApiVersion, KindTag, ObjectMeta};
use crate::numorstring::AsNumber;

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct BGPConfiguration {
    #[serde(default)]
    pub kind: KindTag<BGPConfiguration>,
    #[serde(default)]
    pub api_version: ApiVersion,
    #[serde(default)]
    pub metadata: ObjectMeta,
    #[serde(default)]
    pub spec: BGPConfigurationSpec,
}
resource!(BGPConfiguration, BGPConfigurationSpec);

/// A CIDR block (service cluster / external / load-balancer IPs).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CidrBlock {
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub cidr: String,
}

/// A named BGP community (`aa:nn` or large `aa:nn:mm`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Community {
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub name: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub value: String,
}

/// Communities to attach to a prefix when it is advertised.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PrefixAdvertisement {
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub cidr: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub communities: Vec<String>,
}

/// Kubernetes `SecretKeySelector`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SecretKeySelector {
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub name: String,
    #[serde(default)]
    pub key: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub optional: Option<bool>,
}

/// A BGP password taken from a Kubernetes secret.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct BgpPassword {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret_key_ref: Option<SecretKeySelector>,
}

/// Which addresses BIRD (here: the speaker) listens on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum BindMode {
    None,
    NodeIP,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum ServiceLoadBalancerAggregation {
    Enabled,
    Disabled,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct BGPConfigurationSpec {
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub log_severity_screen: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub node_to_node_mesh_enabled: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub as_number: Option<AsNumber>,
    #[serde(
        default,
        rename = "serviceLoadBalancerIPs",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub service_load_balancer_ips: Vec<CidrBlock>,
    #[serde(default, rename = "serviceExternalIPs", skip_serializing_if = "Vec::is_empty")]
    pub service_external_ips: Vec<CidrBlock>,
    #[serde(default, rename = "serviceClusterIPs", skip_serializing_if = "Vec::is_empty")]
    pub service_cluster_ips: Vec<CidrBlock>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service_load_balancer_aggregation: Option<ServiceLoadBalancerAggregation>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub communities: Vec<Community>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub prefix_advertisements: Vec<PrefixAdvertisement>,
    #[serde(default, skip_serializing_if = "is_zero_u16")]
    pub listen_port: u16,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub node_mesh_password: Option<BgpPassword>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub node_mesh_max_restart_time: Option<GoDuration>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bind_mode: Option<BindMode>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ignored_interfaces: Vec<String>,
    #[serde(
        default,
        rename = "localWorkloadPeeringIPV4",
        skip_serializing_if = "String::is_empty"
    )]
    pub local_workload_peering_ipv4: String,
    #[serde(
        default,
        rename = "localWorkloadPeeringIPV6",
        skip_serializing_if = "String::is_empty"
    )]
    pub local_workload_peering_ipv6: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub program_cluster_routes: Option<String>,
    #[serde(
        default,
        rename = "ipv4NormalRoutePriority",
        skip_serializing_if = "Option::is_none"
    )]
    pub ipv4_normal_route_priority: Option<i64>,
    #[serde(
        default,
        rename = "ipv6NormalRoutePriority",
        skip_serializing_if = "Option::is_none"
    )]
    pub ipv6_normal_route_priority: Option<i64>,
}

impl BGPConfigurationSpec {
    /// The AS number, Calico's 64512 when unset.
    pub fn effective_as_number(&self) -> AsNumber {
        self.as_number.unwrap_or(AsNumber::DEFAULT)
    }

    /// Whether the node-to-node mesh is on (default true).
    pub fn effective_mesh_enabled(&self) -> bool {
        self.node_to_node_mesh_enabled.unwrap_or(true)
    }

    /// The BGP listen port (default 179).
    pub fn effective_listen_port(&self) -> u16 {
        if self.listen_port == 0 {
            179
        } else {
            self.listen_port
        }
    }

    /// The log severity (default `Info`).
    pub fn effective_log_severity(&self) -> &str {
        if self.log_severity_screen.is_empty() {
            "Info"
        } else {
            &self.log_severity_screen
        }
    }
}
