//! The v3 resources IPAM reads (IPPools, Nodes, WorkloadEndpoints, ClusterInformation) and the
//! one it writes (a Node's tunnel address), reduced to what IPAM needs.
//!
//! Node writes go through the raw JSON value so that fields IPAM does not know survive.

use std::collections::BTreeMap;
use std::net::IpAddr;

use brindle_datastore::{Datastore, Revision};
use ipnet::IpNet;
use serde_json::Value;

use crate::cidr::{self, Family};
use crate::error::{IpamError, Result};
use crate::keys;

/// What an address is for (`IPPool.spec.allowedUses`, Calico's `IntendedUse`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum IntendedUse {
    Workload,
    Tunnel,
    LoadBalancer,
}

impl IntendedUse {
    pub fn as_str(self) -> &'static str {
        match self {
            IntendedUse::Workload => "Workload",
            IntendedUse::Tunnel => "Tunnel",
            IntendedUse::LoadBalancer => "LoadBalancer",
        }
    }

    fn parse(s: &str) -> Option<IntendedUse> {
        match s {
            "Workload" => Some(IntendedUse::Workload),
            "Tunnel" => Some(IntendedUse::Tunnel),
            "LoadBalancer" => Some(IntendedUse::LoadBalancer),
            _ => None,
        }
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
    /// `spec.wireguard.interfaceIPv4Address`
    pub wireguard_addr: Option<String>,
}

impl NodeInfo {
    /// The node's tunnel addresses (what `ipam check` counts as node IPs).
    pub fn tunnel_addrs(&self) -> Vec<IpAddr> {
        [
            &self.vxlan_tunnel_addr,
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

fn str_at<'v>(v: &'v Value, path: &[&str]) -> Option<&'v str> {
    let mut cur = v;
    for p in path {
        cur = cur.get(p)?;
    }
    cur.as_str().filter(|s| !s.is_empty())
}

fn parse_pool(key: &str, bytes: &[u8]) -> Result<Pool> {
    let v: Value = serde_json::from_slice(bytes).map_err(|e| corrupt(key, e.to_string()))?;
    let name = str_at(&v, &["metadata", "name"]).unwrap_or_default().to_string();
    let spec = v.get("spec").cloned().unwrap_or(Value::Null);
    let cidr: IpNet = str_at(&spec, &["cidr"])
        .and_then(|c| c.parse().ok())
        .ok_or_else(|| corrupt(key, "IPPool has no valid spec.cidr"))?;
    let fam = Family::of_net(&cidr);
    let block_size = match spec.get("blockSize").and_then(Value::as_u64) {
        Some(n) if n > 0 => n as u8,
        _ if fam == Family::V6 => 122,
        _ => 26,
    };
    if block_size > fam.bits() {
        return Err(corrupt(
            key,
            format!("IPPool blockSize {block_size} is too large"),
        ));
    }
    let mode_on = |f: &str| matches!(str_at(&spec, &[f]), Some("Always" | "CrossSubnet"));
    let allowed_uses = match spec.get("allowedUses").and_then(Value::as_array) {
        Some(a) if !a.is_empty() => a
            .iter()
            .map(|u| {
                u.as_str()
                    .and_then(IntendedUse::parse)
                    .ok_or_else(|| corrupt(key, format!("IPPool has an unknown allowedUse {u}")))
            })
            .collect::<Result<Vec<_>>>()?,
        _ => vec![IntendedUse::Workload, IntendedUse::Tunnel],
    };
    Ok(Pool {
        name,
        cidr: cidr.trunc(),
        block_size,
        disabled: spec.get("disabled").and_then(Value::as_bool).unwrap_or(false),
        node_selector: str_at(&spec, &["nodeSelector"]).unwrap_or("all()").to_string(),
        allowed_uses,
        ipip: mode_on("ipipMode"),
        vxlan: mode_on("vxlanMode"),
        manual: str_at(&spec, &["assignmentMode"]) == Some("Manual"),
    })
}

/// Every IPPool, enabled or not, sorted by name.
pub fn list_pools(ds: &dyn Datastore) -> Result<Vec<Pool>> {
    let listing = ds.list(&keys::resource_prefix("ippools"))?;
    listing
        .items
        .iter()
        .map(|kv| parse_pool(&kv.key, &kv.value))
        .collect()
}

fn parse_node(key: &str, v: &Value) -> NodeInfo {
    let labels = v
        .get("metadata")
        .and_then(|m| m.get("labels"))
        .and_then(Value::as_object)
        .map(|m| {
            m.iter()
                .map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_string()))
                .collect()
        })
        .unwrap_or_default();
    let name = str_at(v, &["metadata", "name"])
        .map(str::to_string)
        .unwrap_or_else(|| key.rsplit('/').next().unwrap_or_default().to_string());
    NodeInfo {
        name,
        labels,
        ipip_tunnel_addr: str_at(v, &["spec", "bgp", "ipv4IPIPTunnelAddr"]).map(str::to_string),
        vxlan_tunnel_addr: str_at(v, &["spec", "ipv4VXLANTunnelAddr"]).map(str::to_string),
        wireguard_addr: str_at(v, &["spec", "wireguard", "interfaceIPv4Address"]).map(str::to_string),
    }
}

/// One Node, `None` if it does not exist.
pub fn get_node(ds: &dyn Datastore, name: &str) -> Result<Option<NodeInfo>> {
    let key = keys::resource("nodes", name);
    match ds.get(&key)? {
        None => Ok(None),
        Some(kv) => {
            let v: Value = serde_json::from_slice(&kv.value).map_err(|e| corrupt(&key, e.to_string()))?;
            Ok(Some(parse_node(&key, &v)))
        }
    }
}

/// Every Node.
pub fn list_nodes(ds: &dyn Datastore) -> Result<Vec<NodeInfo>> {
    let listing = ds.list(&keys::resource_prefix("nodes"))?;
    listing
        .items
        .iter()
        .map(|kv| {
            let v: Value = serde_json::from_slice(&kv.value).map_err(|e| corrupt(&kv.key, e.to_string()))?;
            Ok(parse_node(&kv.key, &v))
        })
        .collect()
}

/// Every WorkloadEndpoint's addresses.
pub fn list_endpoints(ds: &dyn Datastore) -> Result<Vec<Endpoint>> {
    let prefix = keys::resource_prefix("workloadendpoints");
    let listing = ds.list(&prefix)?;
    let mut out = Vec::with_capacity(listing.items.len());
    for kv in &listing.items {
        let v: Value = serde_json::from_slice(&kv.value).map_err(|e| corrupt(&kv.key, e.to_string()))?;
        let mut addrs = Vec::new();
        for n in v
            .get("spec")
            .and_then(|s| s.get("ipNetworks"))
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            let s = n.as_str().unwrap_or_default();
            addrs.push(
                cidr::parse_addr_or_cidr(s)
                    .ok_or_else(|| corrupt(&kv.key, format!("bad ipNetworks entry {s:?}")))?,
            );
        }
        out.push(Endpoint {
            namespace: str_at(&v, &["metadata", "namespace"])
                .unwrap_or_default()
                .to_string(),
            name: str_at(&v, &["metadata", "name"]).unwrap_or_default().to_string(),
            addrs,
        });
    }
    Ok(out)
}

/// ClusterInformation `default` (all fields empty if it does not exist).
pub fn cluster_info(ds: &dyn Datastore) -> Result<ClusterInfo> {
    let key = keys::resource("clusterinformations", "default");
    let Some(kv) = ds.get(&key)? else {
        return Ok(ClusterInfo::default());
    };
    let v: Value = serde_json::from_slice(&kv.value).map_err(|e| corrupt(&key, e.to_string()))?;
    Ok(ClusterInfo {
        guid: str_at(&v, &["spec", "clusterGUID"])
            .unwrap_or_default()
            .to_string(),
        cluster_type: str_at(&v, &["spec", "clusterType"])
            .unwrap_or_default()
            .to_string(),
        datastore_ready: v
            .get("spec")
            .and_then(|s| s.get("datastoreReady"))
            .and_then(Value::as_bool),
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
}

/// Sets (or, with `None`, clears) a Node's tunnel address, compare-and-swap on the Node's
/// revision. Returns `Ok(false)` if the Node changed since `rev` (re-read and retry).
pub fn write_node_tunnel(
    ds: &dyn Datastore,
    node: &str,
    field: TunnelField,
    addr: Option<IpAddr>,
) -> Result<bool> {
    let key = keys::resource("nodes", node);
    let Some(kv) = ds.get(&key)? else {
        return Err(IpamError::NodeNotFound { node: node.into() });
    };
    let mut v: Value = serde_json::from_slice(&kv.value).map_err(|e| corrupt(&key, e.to_string()))?;
    let rev: Revision = kv.revision;
    let spec = v
        .as_object_mut()
        .ok_or_else(|| corrupt(&key, "Node is not an object"))?
        .entry("spec")
        .or_insert_with(|| Value::Object(Default::default()));
    let (obj, name) = match field {
        TunnelField::Ipip => (
            spec.as_object_mut()
                .ok_or_else(|| corrupt(&key, "Node spec is not an object"))?
                .entry("bgp")
                .or_insert_with(|| Value::Object(Default::default())),
            "ipv4IPIPTunnelAddr",
        ),
        TunnelField::Vxlan => (spec, "ipv4VXLANTunnelAddr"),
    };
    let obj = obj
        .as_object_mut()
        .ok_or_else(|| corrupt(&key, "Node spec field is not an object"))?;
    match addr {
        Some(a) => {
            obj.insert(name.into(), Value::String(a.to_string()));
        }
        None => {
            obj.remove(name);
        }
    }
    match ds.update(&key, &serde_json::to_vec(&v).expect("json"), rev) {
        Ok(_) => Ok(true),
        Err(e) if e.is_conflict() => Ok(false),
        Err(e) => Err(e.into()),
    }
}

/// Whether a pool's `nodeSelector` selects a node with these labels.
pub fn selects(selector: &str, labels: &BTreeMap<String, String>) -> Result<bool> {
    crate::selector::matches(selector, labels)
        .map_err(|e| IpamError::Invalid(format!("bad nodeSelector {selector:?}: {e}")))
}
