//! IPPool (`api/pkg/apis/projectcalico/v3/ippool.go`).

use serde::{Deserialize, Serialize};

use super::{is_false, is_zero_u32, resource};
use crate::meta::{ApiVersion, KindTag, ObjectMeta};

/// A pool of addresses pods (and tunnels) are given from.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct IPPool {
    #[serde(default)]
    pub kind: KindTag<IPPool>,
    #[serde(default)]
    pub api_version: ApiVersion,
    #[serde(default)]
    pub metadata: ObjectMeta,
    #[serde(default)]
    pub spec: IPPoolSpec,
    /// Conditions written by newer Calico controllers; kept as given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<serde_json::Value>,
}
resource!(IPPool, IPPoolSpec);

/// IPIP or VXLAN encapsulation mode of a pool.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum EncapMode {
    Never,
    Always,
    CrossSubnet,
}

impl EncapMode {
    pub fn as_str(self) -> &'static str {
        match self {
            EncapMode::Never => "Never",
            EncapMode::Always => "Always",
            EncapMode::CrossSubnet => "CrossSubnet",
        }
    }

    /// Always or CrossSubnet.
    pub fn enabled(self) -> bool {
        self != EncapMode::Never
    }
}

/// What a pool's addresses may be used for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum AllowedUse {
    Workload,
    Tunnel,
    LoadBalancer,
}

/// Whether IPAM picks the pool by itself or only when asked for it by name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum AssignmentMode {
    Automatic,
    Manual,
}

/// IPPool spec, Calico's fields in Calico's order.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct IPPoolSpec {
    #[serde(default)]
    pub cidr: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vxlan_mode: Option<EncapMode>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ipip_mode: Option<EncapMode>,
    #[serde(default, skip_serializing_if = "is_false")]
    pub nat_outgoing: bool,
    #[serde(default, skip_serializing_if = "is_false")]
    pub disabled: bool,
    #[serde(default, rename = "disableBGPExport", skip_serializing_if = "is_false")]
    pub disable_bgp_export: bool,
    #[serde(default, skip_serializing_if = "is_zero_u32")]
    pub block_size: u32,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub node_selector: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub namespace_selector: String,
    /// Calico v1 field, accepted only to be rejected by validation (must be unset).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ipip: Option<serde_json::Value>,
    /// Calico v1 field, accepted only to be rejected by validation (must be false).
    #[serde(default, rename = "nat-outgoing", skip_serializing_if = "is_false")]
    pub nat_outgoing_v1: bool,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub allowed_uses: Vec<AllowedUse>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub assignment_mode: Option<AssignmentMode>,
}

impl IPPoolSpec {
    /// The IPIP mode, `Never` when unset.
    pub fn ipip(&self) -> EncapMode {
        self.ipip_mode.unwrap_or(EncapMode::Never)
    }

    /// The VXLAN mode, `Never` when unset.
    pub fn vxlan(&self) -> EncapMode {
        self.vxlan_mode.unwrap_or(EncapMode::Never)
    }

    /// The node selector, `all()` when unset.
    pub fn effective_node_selector(&self) -> &str {
        if self.node_selector.is_empty() {
            "all()"
        } else {
            &self.node_selector
        }
    }

    /// The allowed uses, `[Workload, Tunnel]` when unset.
    pub fn effective_allowed_uses(&self) -> Vec<AllowedUse> {
        if self.allowed_uses.is_empty() {
            vec![AllowedUse::Workload, AllowedUse::Tunnel]
        } else {
            self.allowed_uses.clone()
        }
    }

    /// The assignment mode, `Automatic` when unset.
    pub fn effective_assignment_mode(&self) -> AssignmentMode {
        self.assignment_mode.unwrap_or(AssignmentMode::Automatic)
    }

    /// The pool CIDR, if it parses.
    pub fn network(&self) -> Option<ipnet::IpNet> {
        self.cidr.parse().ok()
    }

    /// The block size, or the default for the pool's family (26 for IPv4, 122 for IPv6).
    pub fn effective_block_size(&self) -> u32 {
        if self.block_size != 0 {
            return self.block_size;
        }
        match self.network() {
            Some(ipnet::IpNet::V6(_)) => crate::defaults::DEFAULT_BLOCK_SIZE_V6,
            _ => crate::defaults::DEFAULT_BLOCK_SIZE_V4,
        }
    }
}
