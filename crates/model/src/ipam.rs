//! Calico's IPAM backend objects, with the exact JSON Calico stores under `/calico/ipam/v2/…`
//! (`libcalico-go/lib/backend/model/{block,block_affinity,ipam_handle,ipam_config}.go`).
//!
//! Unlike the v3 resources these are not user input: they are written by IPAM code of any
//! Calico (or Brindle) version, so unknown fields are tolerated on read, as Go's decoder does,
//! and `null` lists/maps read as empty.

use std::collections::BTreeMap;
use std::net::IpAddr;

use ipnet::IpNet;
use serde::{Deserialize, Deserializer, Serialize};

fn null_as_default<'de, D, T>(d: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: Default + Deserialize<'de>,
{
    Ok(Option::<T>::deserialize(d)?.unwrap_or_default())
}

fn is_false(b: &bool) -> bool {
    !*b
}

/// The allocation attribute keys Calico uses (`model/block.go`).
pub mod attr {
    pub const POD: &str = "pod";
    pub const NAMESPACE: &str = "namespace";
    pub const NODE: &str = "node";
    pub const TYPE: &str = "type";
    pub const SERVICE: &str = "service";
    pub const TIMESTAMP: &str = "timestamp";
    pub const TYPE_IPIP: &str = "ipipTunnelAddress";
    pub const TYPE_VXLAN: &str = "vxlanTunnelAddress";
    pub const TYPE_VXLAN_V6: &str = "vxlanV6TunnelAddress";
    pub const TYPE_WIREGUARD: &str = "wireguardTunnelAddress";
    pub const TYPE_WIREGUARD_V6: &str = "wireguardV6TunnelAddress";
}

/// One allocation's owner: the handle and its attributes.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AllocationAttribute {
    #[serde(default, rename = "handle_id", skip_serializing_if = "Option::is_none")]
    pub handle_id: Option<String>,
    #[serde(
        default,
        rename = "secondary",
        deserialize_with = "null_as_default",
        skip_serializing_if = "BTreeMap::is_empty"
    )]
    pub active_owner_attrs: BTreeMap<String, String>,
    #[serde(
        default,
        rename = "alternateOwnerAttrs",
        deserialize_with = "null_as_default",
        skip_serializing_if = "BTreeMap::is_empty"
    )]
    pub alternate_owner_attrs: BTreeMap<String, String>,
}

/// An IPAM block (`/calico/ipam/v2/assignment/ipv4/block/10.233.94.0-24`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AllocationBlock {
    pub cidr: IpNet,
    /// `host:<node>`, `virtual:<name>`, or `null` (orphaned block).
    #[serde(default)]
    pub affinity: Option<String>,
    /// RFC 3339 time the affinity was claimed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub affinity_claim_time: Option<String>,
    /// One entry per address: `null` when free, else an index into `attributes`.
    #[serde(default, deserialize_with = "null_as_default")]
    pub allocations: Vec<Option<usize>>,
    /// Free ordinals in the order they will be handed out.
    #[serde(default, deserialize_with = "null_as_default")]
    pub unallocated: Vec<usize>,
    #[serde(default, deserialize_with = "null_as_default")]
    pub attributes: Vec<AllocationAttribute>,
    /// Bumped on every write of the block.
    #[serde(default, rename = "sequenceNumber")]
    pub sequence_number: u64,
    /// Ordinal (as a string) → block sequence number at allocation time.
    #[serde(
        default,
        rename = "sequenceNumberForAllocation",
        deserialize_with = "null_as_default"
    )]
    pub sequence_number_for_allocation: BTreeMap<String, u64>,
    #[serde(default)]
    pub deleted: bool,
    /// Written by old Calico versions; kept when read.
    #[serde(default, rename = "strictAffinity", skip_serializing_if = "Option::is_none")]
    pub strict_affinity: Option<bool>,
    /// Deprecated form of `affinity` (`hostAffinity: <node>`); kept when read.
    #[serde(default, rename = "hostAffinity", skip_serializing_if = "Option::is_none")]
    pub host_affinity: Option<String>,
}

impl AllocationBlock {
    /// A fresh, empty block: every ordinal free, in order.
    pub fn new(
        cidr: IpNet,
        affinity: Option<String>,
        claim_time: Option<String>,
        sequence_number: u64,
    ) -> Self {
        let n = block_size(cidr);
        AllocationBlock {
            cidr: cidr.trunc(),
            affinity,
            affinity_claim_time: claim_time,
            allocations: vec![None; n],
            unallocated: (0..n).collect(),
            attributes: Vec::new(),
            sequence_number,
            sequence_number_for_allocation: BTreeMap::new(),
            deleted: false,
            strict_affinity: None,
            host_affinity: None,
        }
    }

    /// The node this block is affine to (`host:<node>`), if any. Falls back to the deprecated
    /// `hostAffinity` field.
    pub fn host(&self) -> Option<&str> {
        match &self.affinity {
            Some(a) => a.strip_prefix("host:"),
            None => self.host_affinity.as_deref(),
        }
    }

    /// Number of addresses in the block.
    pub fn size(&self) -> usize {
        block_size(self.cidr)
    }

    /// The ordinal of `ip` in this block, if it is inside.
    pub fn ordinal(&self, ip: IpAddr) -> Option<usize> {
        if !self.cidr.contains(&ip) {
            return None;
        }
        let off = ip_to_u128(ip) - ip_to_u128(self.cidr.network());
        usize::try_from(off).ok()
    }

    /// The address at `ordinal`.
    pub fn ip_at(&self, ordinal: usize) -> Option<IpAddr> {
        if ordinal >= self.size() {
            return None;
        }
        Some(u128_to_ip(
            ip_to_u128(self.cidr.network()) + ordinal as u128,
            self.cidr,
        ))
    }

    /// Number of free addresses.
    pub fn free_count(&self) -> usize {
        self.allocations.iter().filter(|a| a.is_none()).count()
    }

    /// Number of allocated addresses.
    pub fn in_use_count(&self) -> usize {
        self.allocations.len() - self.free_count()
    }

    /// True when no address is allocated.
    pub fn is_empty(&self) -> bool {
        self.allocations.iter().all(Option::is_none)
    }

    /// The attribute of the allocation at `ordinal`, if allocated.
    pub fn attribute_of(&self, ordinal: usize) -> Option<&AllocationAttribute> {
        let idx = (*self.allocations.get(ordinal)?)?;
        self.attributes.get(idx)
    }
}

/// Number of addresses in a block CIDR (blocks are at most 2^12 addresses in practice; larger
/// prefixes saturate).
pub fn block_size(cidr: IpNet) -> usize {
    let host_bits = u32::from(cidr.max_prefix_len() - cidr.prefix_len());
    1usize.checked_shl(host_bits).unwrap_or(usize::MAX)
}

fn ip_to_u128(ip: IpAddr) -> u128 {
    match ip {
        IpAddr::V4(a) => u128::from(u32::from(a)),
        IpAddr::V6(a) => u128::from(a),
    }
}

fn u128_to_ip(v: u128, family: IpNet) -> IpAddr {
    match family {
        IpNet::V4(_) => IpAddr::V4((v as u32).into()),
        IpNet::V6(_) => IpAddr::V6(v.into()),
    }
}

/// State of a block affinity.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize)]
pub enum AffinityState {
    #[default]
    #[serde(rename = "confirmed")]
    Confirmed,
    #[serde(rename = "pending")]
    Pending,
    #[serde(rename = "pendingDeletion")]
    PendingDeletion,
}

impl<'de> Deserialize<'de> for AffinityState {
    /// An empty state is what old Calico wrote; it means confirmed.
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        match Option::<String>::deserialize(d)?.as_deref() {
            None | Some("") | Some("confirmed") => Ok(AffinityState::Confirmed),
            Some("pending") => Ok(AffinityState::Pending),
            Some("pendingDeletion") => Ok(AffinityState::PendingDeletion),
            Some(other) => Err(serde::de::Error::custom(format!(
                "unknown block affinity state {other:?}"
            ))),
        }
    }
}

/// The value of a block affinity key (`/calico/ipam/v2/host/<node>/ipv4/block/<cidr>`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct BlockAffinity {
    #[serde(default)]
    pub state: AffinityState,
    #[serde(default)]
    pub deleted: bool,
}

impl BlockAffinity {
    /// Reads a stored affinity value; an empty value (old data) is a confirmed affinity.
    pub fn from_stored(bytes: &[u8]) -> Result<BlockAffinity, serde_json::Error> {
        if bytes.iter().all(u8::is_ascii_whitespace) {
            return Ok(BlockAffinity::default());
        }
        serde_json::from_slice(bytes)
    }
}

/// An IPAM handle (`/calico/ipam/v2/handle/<id>`): block CIDR → number of addresses the handle
/// holds in it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct IpamHandle {
    #[serde(default, deserialize_with = "null_as_default")]
    pub block: BTreeMap<String, u64>,
    #[serde(default)]
    pub deleted: bool,
}

/// The IPAM settings (`/calico/ipam/v2/config`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IpamConfig {
    #[serde(default, rename = "strict_affinity", skip_serializing_if = "is_false")]
    pub strict_affinity: bool,
    #[serde(default, rename = "auto_allocate_blocks", skip_serializing_if = "is_false")]
    pub auto_allocate_blocks: bool,
    #[serde(default, rename = "maxBlocksPerHost", skip_serializing_if = "is_zero")]
    pub max_blocks_per_host: u32,
    #[serde(
        default,
        rename = "kubeVirtVMAddressPersistence",
        skip_serializing_if = "Option::is_none"
    )]
    pub kube_virt_vm_address_persistence: Option<String>,
}

fn is_zero(n: &u32) -> bool {
    *n == 0
}

impl Default for IpamConfig {
    /// What Calico creates on first use:
    /// `{"auto_allocate_blocks":true,"kubeVirtVMAddressPersistence":"Enabled"}`.
    fn default() -> Self {
        IpamConfig {
            strict_affinity: false,
            auto_allocate_blocks: true,
            max_blocks_per_host: 0,
            kube_virt_vm_address_persistence: Some("Enabled".to_string()),
        }
    }
}

impl IpamConfig {
    /// The per-host block limit in force: Calico uses 20 when none is set.
    pub fn effective_max_blocks_per_host(&self) -> u32 {
        if self.max_blocks_per_host == 0 {
            20
        } else {
            self.max_blocks_per_host
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn block_json_is_calicos() {
        let mut b = AllocationBlock::new(
            "10.233.94.0/30".parse().unwrap(),
            Some("host:node1".into()),
            Some("2024-05-01T10:00:00Z".into()),
            7,
        );
        b.allocations[0] = Some(0);
        b.unallocated.remove(0);
        b.attributes.push(AllocationAttribute {
            handle_id: Some("ipip-tunnel-addr-node1".into()),
            active_owner_attrs: [
                ("node".to_string(), "node1".to_string()),
                ("type".into(), "ipipTunnelAddress".into()),
            ]
            .into_iter()
            .collect(),
            alternate_owner_attrs: BTreeMap::new(),
        });
        b.sequence_number_for_allocation.insert("0".into(), 7);
        assert_eq!(
            serde_json::to_string(&b).unwrap(),
            r#"{"cidr":"10.233.94.0/30","affinity":"host:node1","affinity_claim_time":"2024-05-01T10:00:00Z","allocations":[0,null,null,null],"unallocated":[1,2,3],"attributes":[{"handle_id":"ipip-tunnel-addr-node1","secondary":{"node":"node1","type":"ipipTunnelAddress"}}],"sequenceNumber":7,"sequenceNumberForAllocation":{"0":7},"deleted":false}"#
        );
        assert_eq!(b.host(), Some("node1"));
        assert_eq!(b.ip_at(1), Some("10.233.94.1".parse().unwrap()));
        assert_eq!(b.ordinal("10.233.94.3".parse().unwrap()), Some(3));
        assert_eq!(b.ordinal("10.233.95.3".parse().unwrap()), None);
        assert_eq!((b.free_count(), b.in_use_count()), (3, 1));
        assert_eq!(
            b.attribute_of(0).unwrap().handle_id.as_deref(),
            Some("ipip-tunnel-addr-node1")
        );
    }

    #[test]
    fn old_block_with_nulls_and_legacy_fields_reads() {
        let old = r#"{"cidr":"10.0.0.0/31","affinity":null,"hostAffinity":"n1","strictAffinity":false,
            "allocations":[null,null],"unallocated":null,"attributes":null,"deleted":false,"extra":1}"#;
        let b: AllocationBlock = serde_json::from_str(old).unwrap();
        assert_eq!(b.host(), Some("n1"));
        assert!(b.unallocated.is_empty() && b.attributes.is_empty());
        let again = serde_json::to_string(&b).unwrap();
        assert!(again.contains(r#""strictAffinity":false"#), "{again}");
        assert!(again.contains(r#""hostAffinity":"n1""#), "{again}");
    }

    #[test]
    fn affinity_values() {
        let a = BlockAffinity::from_stored(b"").unwrap();
        assert_eq!(a.state, AffinityState::Confirmed);
        let a = BlockAffinity::from_stored(br#"{"state":"","deleted":false}"#).unwrap();
        assert_eq!(a.state, AffinityState::Confirmed);
        let a: BlockAffinity =
            serde_json::from_str(r#"{"state":"pendingDeletion","deleted":false}"#).unwrap();
        assert_eq!(a.state, AffinityState::PendingDeletion);
        assert_eq!(
            serde_json::to_string(&BlockAffinity {
                state: AffinityState::Pending,
                deleted: false
            })
            .unwrap(),
            r#"{"state":"pending","deleted":false}"#
        );
        assert!(serde_json::from_str::<BlockAffinity>(r#"{"state":"maybe"}"#).is_err());
    }

    #[test]
    fn handle_and_config() {
        let mut h = IpamHandle::default();
        h.block.insert("10.233.94.0/24".into(), 1);
        assert_eq!(
            serde_json::to_string(&h).unwrap(),
            r#"{"block":{"10.233.94.0/24":1},"deleted":false}"#
        );
        assert_eq!(
            serde_json::to_string(&IpamConfig::default()).unwrap(),
            r#"{"auto_allocate_blocks":true,"kubeVirtVMAddressPersistence":"Enabled"}"#
        );
        assert_eq!(IpamConfig::default().effective_max_blocks_per_host(), 20);
    }
}
