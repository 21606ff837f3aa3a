//! The v3 resources IPAM reads (IPPools, Nodes, WorkloadEndpoints, ClusterInformation) and the
//! one it writes (a Node's tunnel address), as the model crate types them, reduced to what
//! IPAM needs.

use std::collections::BTreeMap;
use std::net::IpAddr;

use brindle_datastore::Datastore;
use brindle_model::Kind;
use brindle_model::keys::{resource_key, resource_prefix};
use brindle_model::resources::{AssignmentMode, ClusterInformation, IPPool, Node, WorkloadEndpoint};
use ipnet::IpNet;
use serde::de::DeserializeOwned;

pub use brindle_model::resources::AllowedUse as IntendedUse;

use crate::cidr::{self, Family};
use crate::error::{IpamError, Result};

/// The name of a use, as Calico spells it (`Workload`, `Tunnel`, `LoadBalancer`).
pub fn use_name(u: IntendedUse) -> &'static str {
    match u {
        IntendedUse::Workload => "Workload",
        IntendedUse::Tunnel => "Tunnel",
        IntendedUse::LoadBalancer => "LoadBalancer",
    }
}

/// An IPPool as IPAM sees it, defaults applied.
#[derive(Debug, Clone, PartialEq)]
pub struct Pool {
    pub name: String,
    pub cidr: IpNet,
    pub block_size: u8,
    pub disabled: bool,
    pub node_selector: String,
    pub allowed_uses: Vec<IntendedUse>,
    /// `ipipMode` is Always or CrossSubnet.
    pub ipip: bool,
    /// `vxlanMode` is Always or CrossSubnet.
    pub vxlan: bool,
    /// `assignmentMode: Manual`: used only when asked for by CIDR.
    pub manual: bool,
}

impl Pool {
    pub(crate) fn from_resource(key: &str, p: &IPPool) -> Result<Pool> {
        let cidr = p
            .spec
            .network()
            .ok_or_else(|| corrupt(key, format!("IPPool has no valid spec.cidr ({:?})", p.spec.cidr)))?;
        let block_size = p.spec.effective_block_size();
        if block_size > u32::from(Family::of_net(&cidr).bits()) {
            return Err(corrupt(
                key,
                format!("IPPool blockSize {block_size} is too large"),
            ));
        }
        Ok(Pool {
            name: p.metadata.name.clone(),
            cidr: cidr.trunc(),
            block_size: block_size as u8,
            disabled: p.spec.disabled,
            node_selector: p.spec.effective_node_selector().to_string(),
            allowed_uses: p.spec.effective_allowed_uses(),
            ipip: p.spec.ipip().enabled(),
            vxlan: p.spec.vxlan().enabled(),
            manual: p.spec.effective_assignment_mode() == AssignmentMode::Manual,
        })
    }

    pub fn family(&self) -> Family {
        Family::of_net(&self.cidr)
    }

    /// The block of this pool holding `addr`.
    pub fn block_for(&self, addr: IpAddr) -> IpNet {
        cidr::block_for(addr, self.block_size)
    }

    /// Number of blocks in the pool.
    pub fn block_count(&self) -> u128 {
        cidr::block_count(&self.cidr, self.block_size)
    }

    /// Number of addresses in the pool.
    pub fn size(&self) -> u128 {
        cidr::size(self.family(), self.cidr.prefix_len())
    }

    pub fn allows(&self, use_: IntendedUse) -> bool {
        self.allowed_uses.contains(&use_)
    }
}

/// A Node as IPAM sees it.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct NodeInfo {
    pub name: String,
    pub labels: BTreeMap<String, String>,
    /// `spec.bgp.ipv4IPIPTunnelAddr`
    pub ipip_tunnel_addr: Option<String>,
    /// `spec.ipv4VXLANTunnelAddr`
    pub vxlan_tunnel_addr: Option<String>,
    /// `spec.ipv6VXLANTunnelAddr`
    pub vxlan_v6_tunnel_addr: Option<String>,
    /// `spec.wireguard.interfaceIPv4Address`
    pub wireguard_addr: Option<String>,
}

fn non_empty(s: &str) -> Option<String> {
    (!s.is_empty()).then(|| s.to_string())
}

impl NodeInfo {
    fn from_resource(n: &Node) -> NodeInfo {
        NodeInfo {
            name: n.metadata.name.clone(),
            labels: n.metadata.labels.clone(),
            ipip_tunnel_addr: n
                .spec
                .bgp
                .as_ref()
                .and_then(|b| non_empty(&b.ipv4_ipip_tunnel_addr)),
            vxlan_tunnel_addr: non_empty(&n.spec.ipv4_vxlan_tunnel_addr),
            vxlan_v6_tunnel_addr: non_empty(&n.spec.ipv6_vxlan_tunnel_addr),
            wireguard_addr: n
                .spec
                .wireguard
                .as_ref()
                .and_then(|w| non_empty(&w.interface_ipv4_address)),
        }
    }

    /// The node's tunnel addresses (what `ipam check` counts as node IPs).
    pub fn tunnel_addrs(&self) -> Vec<IpAddr> {
        [
            &self.vxlan_tunnel_addr,
            &self.vxlan_v6_tunnel_addr,
            &self.wireguard_addr,
            &self.ipip_tunnel_addr,
        ]
        .into_iter()
        .flatten()
        .filter_map(|s| cidr::parse_addr_or_cidr(s))
        .collect()
    }
}

/// A WorkloadEndpoint's addresses.
#[derive(Debug, Clone, PartialEq)]
pub struct Endpoint {
    pub namespace: String,
    pub name: String,
    /// `spec.node`
    pub node: String,
    pub addrs: Vec<IpAddr>,
}

/// ClusterInformation `default`, the parts `ipam check`/`release` use.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ClusterInfo {
    pub guid: String,
    pub cluster_type: String,
    pub datastore_ready: Option<bool>,
    /// Its `resourceVersion` (the store revision of its key), empty when it does not exist.
    pub revision: String,
}

fn corrupt(key: &str, detail: impl Into<String>) -> IpamError {
    IpamError::Corrupt {
        key: key.to_string(),
        detail: detail.into(),
    }
}

fn decode<T: DeserializeOwned>(key: &str, bytes: &[u8]) -> Result<T> {
    serde_json::from_slice(bytes).map_err(|e| corrupt(key, e.to_string()))
}

fn list<T: DeserializeOwned>(ds: &dyn Datastore, kind: Kind) -> Result<Vec<(String, T)>> {
    ds.list(&resource_prefix(kind, None))?
        .items
        .into_iter()
        .map(|kv| Ok((kv.key.clone(), decode(&kv.key, &kv.value)?)))
        .collect()
}

/// Every IPPool, enabled or not, sorted by name.
pub fn list_pools(ds: &dyn Datastore) -> Result<Vec<Pool>> {
    Ok(pools_from(&ds.list(&resource_prefix(Kind::IPPool, None))?.items))
}

/// The pools among listed IPPool rows. A row that does not decode (or holds no valid pool) is
/// left out, with a warning naming its key: one bad row must not stop every allocation.
pub fn pools_from(items: &[brindle_datastore::KeyValue]) -> Vec<Pool> {
    items
        .iter()
        .filter_map(|kv| {
            match decode::<IPPool>(&kv.key, &kv.value).and_then(|p| Pool::from_resource(&kv.key, &p)) {
                Ok(p) => Some(p),
                Err(e) => {
                    tracing::warn!(error = %e, "IPAM: skipping an IPPool that cannot be used");
                    None
                }
            }
        })
        .collect()
}

/// One Node, `None` if it does not exist.
pub fn get_node(ds: &dyn Datastore, name: &str) -> Result<Option<NodeInfo>> {
    node_from(ds.get(&resource_key(Kind::Node, "", name))?.as_ref())
}

/// A Node read as a key-value pair (`None` when the key does not exist).
pub fn node_from(kv: Option<&brindle_datastore::KeyValue>) -> Result<Option<NodeInfo>> {
    match kv {
        None => Ok(None),
        Some(kv) => Ok(Some(NodeInfo::from_resource(&decode::<Node>(
            &kv.key, &kv.value,
        )?))),
    }
}

/// Every Node.
pub fn list_nodes(ds: &dyn Datastore) -> Result<Vec<NodeInfo>> {
    Ok(list::<Node>(ds, Kind::Node)?
        .iter()
        .map(|(_, n)| NodeInfo::from_resource(n))
        .collect())
}

/// Every WorkloadEndpoint's addresses.
pub fn list_endpoints(ds: &dyn Datastore) -> Result<Vec<Endpoint>> {
    list::<WorkloadEndpoint>(ds, Kind::WorkloadEndpoint)?
        .into_iter()
        .map(|(key, w)| {
            let addrs = w
                .spec
                .ip_networks
                .iter()
                .map(|s| {
                    cidr::parse_addr_or_cidr(s)
                        .ok_or_else(|| corrupt(&key, format!("bad ipNetworks entry {s:?}")))
                })
                .collect::<Result<Vec<_>>>()?;
            Ok(Endpoint {
                namespace: w.metadata.namespace,
                name: w.metadata.name,
                node: w.spec.node,
                addrs,
            })
        })
        .collect()
}

/// ClusterInformation `default` (all fields empty if it does not exist).
pub fn cluster_info(ds: &dyn Datastore) -> Result<ClusterInfo> {
    let key = resource_key(Kind::ClusterInformation, "", "default");
    let Some(kv) = ds.get(&key)? else {
        return Ok(ClusterInfo::default());
    };
    let ci: ClusterInformation = decode(&key, &kv.value)?;
    Ok(ClusterInfo {
        guid: ci.spec.cluster_guid,
        cluster_type: ci.spec.cluster_type,
        datastore_ready: ci.spec.datastore_ready,
        revision: kv.revision.to_string(),
    })
}

/// Which Node field holds a tunnel address.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TunnelField {
    /// `spec.bgp.ipv4IPIPTunnelAddr`
    Ipip,
    /// `spec.ipv4VXLANTunnelAddr`
    Vxlan,
    /// `spec.ipv6VXLANTunnelAddr`
    VxlanV6,
}

/// Sets (or, with `None`, clears) a Node's tunnel address with a compare-and-swap on the
/// Node's revision. `Ok(false)`: the Node changed meanwhile (re-read and retry).
pub fn write_node_tunnel(
    ds: &dyn Datastore,
    node: &str,
    field: TunnelField,
    addr: Option<IpAddr>,
) -> Result<bool> {
    let key = resource_key(Kind::Node, "", node);
    let Some(kv) = ds.get(&key)? else {
        return Err(IpamError::NodeNotFound { node: node.into() });
    };
    let mut n: Node = decode(&key, &kv.value)?;
    let value = addr.map(|a| a.to_string()).unwrap_or_default();
    match field {
        TunnelField::Ipip => match (&mut n.spec.bgp, addr) {
            (Some(bgp), _) => bgp.ipv4_ipip_tunnel_addr = value,
            (None, None) => {}
            (bgp @ None, Some(_)) => {
                *bgp = Some(Default::default());
                if let Some(b) = bgp {
                    b.ipv4_ipip_tunnel_addr = value;
                }
            }
        },
        TunnelField::Vxlan => n.spec.ipv4_vxlan_tunnel_addr = value,
        TunnelField::VxlanV6 => n.spec.ipv6_vxlan_tunnel_addr = value,
    }
    match ds.update(
        &key,
        &serde_json::to_vec(&n).expect("nodes serialise"),
        kv.revision,
    ) {
        Ok(_) => Ok(true),
        Err(e) if e.is_conflict() || e.is_not_found() => Ok(false),
        Err(e) => Err(e.into()),
    }
}

/// Whether a pool's `nodeSelector` selects a node with these labels.
pub fn selects(selector: &str, labels: &BTreeMap<String, String>) -> Result<bool> {
    brindle_model::selector::matches(selector, labels)
        .map_err(|e| IpamError::Invalid(format!("bad nodeSelector {selector:?}: {e}")))
}
