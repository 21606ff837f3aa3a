//! WorkloadEndpoint (`libcalico-go/lib/apis/internalapi/workloadendpoint.go`): one pod
//! interface, namespaced. Written by the CNI plugin.

use serde::{Deserialize, Serialize};

use super::{is_zero_i64, resource};
use crate::meta::{ApiVersion, KindTag, ObjectMeta};
use crate::numorstring::{Dscp, Protocol};

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct WorkloadEndpoint {
    #[serde(default)]
    pub kind: KindTag<WorkloadEndpoint>,
    #[serde(default)]
    pub api_version: ApiVersion,
    #[serde(default)]
    pub metadata: ObjectMeta,
    #[serde(default)]
    pub spec: WorkloadEndpointSpec,
}
resource!(WorkloadEndpoint, WorkloadEndpointSpec);

impl WorkloadEndpoint {
    /// Calico's endpoint name `<node>-<orchestrator>-<workload>-<endpoint>`, every `-` inside a
    /// segment doubled (`libcalico-go/lib/names/workloadendpoint.go`): node `node1`, `k8s`,
    /// pod `my-pod`, `eth0` → `node1-k8s-my--pod-eth0`.
    pub fn name_for(node: &str, orchestrator: &str, workload: &str, endpoint: &str) -> String {
        [node, orchestrator, workload, endpoint]
            .iter()
            .map(|s| s.replace('-', "--"))
            .collect::<Vec<_>>()
            .join("-")
    }
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WorkloadEndpointSpec {
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub orchestrator: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub workload: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub node: String,
    #[serde(default, rename = "containerID", skip_serializing_if = "String::is_empty")]
    pub container_id: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub pod: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub endpoint: String,
    #[serde(
        default,
        rename = "serviceAccountName",
        skip_serializing_if = "String::is_empty"
    )]
    pub service_account_name: String,
    #[serde(default, rename = "ipNetworks", skip_serializing_if = "Vec::is_empty")]
    pub ip_networks: Vec<String>,
    #[serde(default, rename = "ipNATs", skip_serializing_if = "Vec::is_empty")]
    pub ip_nats: Vec<IpNat>,
    #[serde(default, rename = "ipv4Gateway", skip_serializing_if = "String::is_empty")]
    pub ipv4_gateway: String,
    #[serde(default, rename = "ipv6Gateway", skip_serializing_if = "String::is_empty")]
    pub ipv6_gateway: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub profiles: Vec<String>,
    #[serde(default, rename = "interfaceName", skip_serializing_if = "String::is_empty")]
    pub interface_name: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub mac: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ports: Vec<WorkloadEndpointPort>,
    #[serde(
        default,
        rename = "allowSpoofedSourcePrefixes",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub allow_spoofed_source_prefixes: Vec<String>,
    #[serde(default, rename = "qosControls", skip_serializing_if = "Option::is_none")]
    pub qos_controls: Option<QosControls>,
}

impl WorkloadEndpointSpec {
    /// `ipNetworks` that parse (`10.233.94.1/32`; a bare address as a host prefix), both
    /// families, in order.
    pub fn ip_nets(&self) -> impl Iterator<Item = ipnet::IpNet> + '_ {
        self.ip_networks.iter().filter_map(|s| {
            s.parse()
                .ok()
                .or_else(|| s.parse::<std::net::IpAddr>().ok().map(ipnet::IpNet::from))
        })
    }
}

/// A 1:1 NAT mapping on the endpoint.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IpNat {
    #[serde(default, rename = "internalIP")]
    pub internal_ip: String,
    #[serde(default, rename = "externalIP")]
    pub external_ip: String,
}

/// A named port of the workload.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct WorkloadEndpointPort {
    #[serde(default)]
    pub name: String,
    pub protocol: Protocol,
    #[serde(default)]
    pub port: u16,
    #[serde(default)]
    pub host_port: u16,
    #[serde(default, rename = "hostIP")]
    pub host_ip: String,
}

/// Bandwidth, packet-rate and connection limits.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct QosControls {
    #[serde(default, skip_serializing_if = "is_zero_i64")]
    pub ingress_bandwidth: i64,
    #[serde(default, skip_serializing_if = "is_zero_i64")]
    pub ingress_burst: i64,
    #[serde(default, skip_serializing_if = "is_zero_i64")]
    pub ingress_peakrate: i64,
    #[serde(default, skip_serializing_if = "is_zero_i64")]
    pub ingress_minburst: i64,
    #[serde(default, skip_serializing_if = "is_zero_i64")]
    pub egress_bandwidth: i64,
    #[serde(default, skip_serializing_if = "is_zero_i64")]
    pub egress_burst: i64,
    #[serde(default, skip_serializing_if = "is_zero_i64")]
    pub egress_peakrate: i64,
    #[serde(default, skip_serializing_if = "is_zero_i64")]
    pub egress_minburst: i64,
    #[serde(default, skip_serializing_if = "is_zero_i64")]
    pub ingress_packet_rate: i64,
    #[serde(default, skip_serializing_if = "is_zero_i64")]
    pub ingress_packet_burst: i64,
    #[serde(default, skip_serializing_if = "is_zero_i64")]
    pub egress_packet_rate: i64,
    #[serde(default, skip_serializing_if = "is_zero_i64")]
    pub egress_packet_burst: i64,
    #[serde(default, skip_serializing_if = "is_zero_i64")]
    pub ingress_max_connections: i64,
    #[serde(default, skip_serializing_if = "is_zero_i64")]
    pub egress_max_connections: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dscp: Option<Dscp>,
}
