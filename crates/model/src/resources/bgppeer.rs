//! BGPPeer (`api/pkg/apis/projectcalico/v3/bgppeer.go`): an explicit BGP peer, global or for
//! selected nodes.

use serde::{Deserialize, Serialize};

use super::{BgpPassword, is_false, resource};
use crate::duration::GoDuration;
use crate::meta::{ApiVersion, KindTag, ObjectMeta};
use crate::numorstring::AsNumber;

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct BGPPeer {
    #[serde(default)]
    pub kind: KindTag<BGPPeer>,
    #[serde(default)]
    pub api_version: ApiVersion,
    #[serde(default)]
    pub metadata: ObjectMeta,
    #[serde(default)]
    pub spec: BGPPeerSpec,
}
resource!(BGPPeer, BGPPeerSpec);

/// Next-hop handling towards the peer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum NextHopMode {
    Auto,
    #[serde(rename = "Self")]
    NextHopSelf,
    Keep,
}

/// Which source address the session uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum SourceAddress {
    UseNodeIP,
    #[serde(rename = "None")]
    NoSourceAddress,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum ReversePeering {
    Auto,
    Manual,
}

fn as_zero(n: &AsNumber) -> bool {
    n.0 == 0
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct BGPPeerSpec {
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub node: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub node_selector: String,
    #[serde(default, rename = "peerIP", skip_serializing_if = "String::is_empty")]
    pub peer_ip: String,
    #[serde(default, skip_serializing_if = "as_zero")]
    pub as_number: AsNumber,
    #[serde(default, rename = "localASNumber", skip_serializing_if = "Option::is_none")]
    pub local_as_number: Option<AsNumber>,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub peer_selector: String,
    #[serde(default, skip_serializing_if = "is_false")]
    pub keep_original_next_hop: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_hop_mode: Option<NextHopMode>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub password: Option<BgpPassword>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source_address: Option<SourceAddress>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_restart_time: Option<GoDuration>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub keepalive_time: Option<GoDuration>,
    #[serde(
        default,
        rename = "numAllowedLocalASNumbers",
        skip_serializing_if = "Option::is_none"
    )]
    pub num_allowed_local_as_numbers: Option<i32>,
    #[serde(default, rename = "ttlSecurity", skip_serializing_if = "Option::is_none")]
    pub ttl_security: Option<u8>,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub reachable_by: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub filters: Vec<String>,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub local_workload_selector: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reverse_peering: Option<ReversePeering>,
}

impl BGPPeerSpec {
    /// What `calicoctl get bgppeer` prints in the NODE column: the node, else the node
    /// selector, else `(global)`.
    pub fn node_column(&self) -> &str {
        if !self.node.is_empty() {
            &self.node
        } else if !self.node_selector.is_empty() {
            &self.node_selector
        } else {
            "(global)"
        }
    }

    /// The peer address and optional port from `peerIP` (`IP`, `IP:port`, `[IPv6]:port`).
    pub fn peer_addr(&self) -> Option<(std::net::IpAddr, Option<u16>)> {
        crate::validate::parse_ip_port(&self.peer_ip)
    }
}
