//! Node (`libcalico-go/lib/apis/internalapi/node.go`): a host running the agent, with its BGP
//! address and tunnel addresses.

use serde::{Deserialize, Serialize};

use super::resource;
use crate::meta::{ApiVersion, KindTag, ObjectMeta};
use crate::numorstring::AsNumber;

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Node {
    #[serde(default)]
    pub kind: KindTag<Node>,
    #[serde(default)]
    pub api_version: ApiVersion,
    #[serde(default)]
    pub metadata: ObjectMeta,
    #[serde(default)]
    pub spec: NodeSpec,
    /// Always written (`status: {}` when empty), as Go writes a non-pointer struct.
    #[serde(default)]
    pub status: NodeStatus,
}
resource!(Node, NodeSpec);

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NodeSpec {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bgp: Option<NodeBgpSpec>,
    #[serde(
        default,
        rename = "ipv4VXLANTunnelAddr",
        skip_serializing_if = "String::is_empty"
    )]
    pub ipv4_vxlan_tunnel_addr: String,
    #[serde(
        default,
        rename = "vxlanTunnelMACAddr",
        skip_serializing_if = "String::is_empty"
    )]
    pub vxlan_tunnel_mac_addr: String,
    #[serde(
        default,
        rename = "ipv6VXLANTunnelAddr",
        skip_serializing_if = "String::is_empty"
    )]
    pub ipv6_vxlan_tunnel_addr: String,
    #[serde(
        default,
        rename = "vxlanTunnelMACAddrV6",
        skip_serializing_if = "String::is_empty"
    )]
    pub vxlan_tunnel_mac_addr_v6: String,
    #[serde(default, rename = "orchRefs", skip_serializing_if = "Vec::is_empty")]
    pub orch_refs: Vec<OrchRef>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub wireguard: Option<NodeWireguardSpec>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub addresses: Vec<NodeAddress>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub interfaces: Vec<NodeInterface>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NodeBgpSpec {
    #[serde(default, rename = "asNumber", skip_serializing_if = "Option::is_none")]
    pub as_number: Option<AsNumber>,
    /// The node's address with its prefix length, host bits kept (`172.20.42.80/22`).
    #[serde(default, rename = "ipv4Address", skip_serializing_if = "String::is_empty")]
    pub ipv4_address: String,
    #[serde(default, rename = "ipv6Address", skip_serializing_if = "String::is_empty")]
    pub ipv6_address: String,
    /// The tunl0 address, a plain IP (`10.233.94.0`).
    #[serde(
        default,
        rename = "ipv4IPIPTunnelAddr",
        skip_serializing_if = "String::is_empty"
    )]
    pub ipv4_ipip_tunnel_addr: String,
    #[serde(
        default,
        rename = "routeReflectorClusterID",
        skip_serializing_if = "String::is_empty"
    )]
    pub route_reflector_cluster_id: String,
}

impl NodeBgpSpec {
    /// The IPv4 address and its network (`172.20.42.80/22` → 172.20.42.80, 172.20.40.0/22).
    pub fn ipv4(&self) -> Option<ipnet::Ipv4Net> {
        self.ipv4_address.parse().ok()
    }

    /// The IPv6 address with its prefix.
    pub fn ipv6(&self) -> Option<ipnet::Ipv6Net> {
        self.ipv6_address.parse().ok()
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct OrchRef {
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub node_name: String,
    #[serde(default)]
    pub orchestrator: String,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NodeWireguardSpec {
    #[serde(
        default,
        rename = "interfaceIPv4Address",
        skip_serializing_if = "String::is_empty"
    )]
    pub interface_ipv4_address: String,
    #[serde(
        default,
        rename = "interfaceIPv6Address",
        skip_serializing_if = "String::is_empty"
    )]
    pub interface_ipv6_address: String,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NodeAddress {
    #[serde(default)]
    pub address: String,
    #[serde(default, rename = "type", skip_serializing_if = "String::is_empty")]
    pub address_type: String,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NodeInterface {
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub name: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub addresses: Vec<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NodeStatus {
    #[serde(
        default,
        rename = "wireguardPublicKey",
        skip_serializing_if = "String::is_empty"
    )]
    pub wireguard_public_key: String,
    #[serde(
        default,
        rename = "wireguardPublicKeyV6",
        skip_serializing_if = "String::is_empty"
    )]
    pub wireguard_public_key_v6: String,
    #[serde(default, rename = "podCIDRs", skip_serializing_if = "Vec::is_empty")]
    pub pod_cidrs: Vec<String>,
}
