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

/// `172.20.42.80/22`, or a bare address as a host prefix (what older writers stored).
fn v4_net_or_addr(s: &str) -> Option<ipnet::Ipv4Net> {
    s.parse()
        .ok()
        .or_else(|| s.parse::<std::net::Ipv4Addr>().ok().map(ipnet::Ipv4Net::from))
}

fn v6_net_or_addr(s: &str) -> Option<ipnet::Ipv6Net> {
    s.parse()
        .ok()
        .or_else(|| s.parse::<std::net::Ipv6Addr>().ok().map(ipnet::Ipv6Net::from))
}

impl Node {
    /// `spec.bgp.ipv4Address` with the host bits kept (`172.20.42.80/22`); a bare address
    /// reads as a /32.
    pub fn bgp_ipv4(&self) -> Option<ipnet::Ipv4Net> {
        v4_net_or_addr(&self.spec.bgp.as_ref()?.ipv4_address)
    }

    /// `spec.bgp.ipv6Address` with the host bits kept; a bare address reads as a /128.
    pub fn bgp_ipv6(&self) -> Option<ipnet::Ipv6Net> {
        v6_net_or_addr(&self.spec.bgp.as_ref()?.ipv6_address)
    }

    /// `spec.bgp.asNumber` (`None`: the global AS applies).
    pub fn as_number(&self) -> Option<u32> {
        self.spec.bgp.as_ref()?.as_number.map(|a| a.0)
    }

    /// `spec.bgp.ipv4IPIPTunnelAddr`, tunl0's address.
    pub fn ipip_tunnel_addr(&self) -> Option<std::net::Ipv4Addr> {
        v4_net_or_addr(&self.spec.bgp.as_ref()?.ipv4_ipip_tunnel_addr).map(|n| n.addr())
    }

    /// `spec.ipv4VXLANTunnelAddr`, vxlan.calico's address.
    pub fn vxlan_tunnel_addr(&self) -> Option<std::net::Ipv4Addr> {
        v4_net_or_addr(&self.spec.ipv4_vxlan_tunnel_addr).map(|n| n.addr())
    }

    /// `spec.ipv6VXLANTunnelAddr`, vxlan-v6.calico's address.
    pub fn vxlan_tunnel_addr_v6(&self) -> Option<std::net::Ipv6Addr> {
        v6_net_or_addr(&self.spec.ipv6_vxlan_tunnel_addr).map(|n| n.addr())
    }

    /// `spec.bgp.routeReflectorClusterID` when set: this node is a route reflector.
    pub fn route_reflector_cluster_id(&self) -> Option<&str> {
        Some(self.spec.bgp.as_ref()?.route_reflector_cluster_id.as_str()).filter(|c| !c.is_empty())
    }
}

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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accessors() {
        let n: Node = serde_json::from_str(
            r#"{"metadata":{"name":"n"},"spec":{"bgp":{"ipv4Address":"172.20.42.80/22","asNumber":"64513",
                "ipv4IPIPTunnelAddr":"10.233.94.0","ipv6Address":"fd00::1"},"ipv4VXLANTunnelAddr":"10.233.94.1"}}"#,
        )
        .unwrap();
        assert_eq!(n.bgp_ipv4().unwrap().to_string(), "172.20.42.80/22");
        assert_eq!(n.bgp_ipv6().unwrap().to_string(), "fd00::1/128");
        assert_eq!(n.as_number(), Some(64513));
        assert_eq!(n.ipip_tunnel_addr().unwrap().to_string(), "10.233.94.0");
        assert_eq!(n.vxlan_tunnel_addr().unwrap().to_string(), "10.233.94.1");
        assert_eq!(n.route_reflector_cluster_id(), None);
        assert_eq!(Node::default().bgp_ipv4(), None);
    }
}
