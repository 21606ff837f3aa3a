//! A picture of the cluster: [`ClusterView`] (nodes with their blocks and the pods on them, BGP
//! sessions as each end sees them), built from the datastore and the agents' statuses by
//! [`collect`], and [`page`], one self-contained HTML page (inline CSS, JavaScript and SVG; no
//! network fetches) that draws it.
//!
//! `brindle lab view -o FILE.html` and `brindle node view` write the page with the state
//! embedded. The agent serves the page at `/view` and the state at `/view.json`; served that way
//! the page fetches `view.json` (same origin) and redraws every few seconds. One agent knows its
//! own sessions only; the lab's and the node's pictures ask every agent they can reach.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::sync::Arc;

use brindle_datastore::Datastore;
use brindle_datastore::client::Client;
use brindle_ipam::block::attr;
use brindle_ipam::{AttributeOps, BlockOps, Ipam};
use brindle_model::{Kind, Resource};
use serde::{Deserialize, Serialize};

use brindle_ctl::status::{AgentStatus, PeerStatus};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ClusterView {
    /// `lab seed`, `node bgp-master1`.
    pub title: String,
    /// RFC 3339, when the state was read.
    pub generated: String,
    pub pools: Vec<PoolEntry>,
    pub nodes: Vec<NodeEntry>,
    /// Every session end an agent reported.
    pub sessions: Vec<SessionEntry>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PoolEntry {
    pub name: String,
    pub cidr: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct NodeEntry {
    pub name: String,
    /// `172.20.42.80/22`.
    pub address: String,
    pub asn: String,
    /// `None`: no agent was asked, or it did not answer.
    pub agent: Option<AgentEntry>,
    /// Its agent was not asked (`node view` asks its own node's agent only).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub not_asked: bool,
    pub blocks: Vec<BlockEntry>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AgentEntry {
    pub live: bool,
    pub ready: bool,
    pub detail: String,
    pub version: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BlockEntry {
    pub cidr: String,
    pub pool: String,
    pub capacity: u64,
    pub in_use: u64,
    pub pods: Vec<PodEntry>,
    /// Allocations that are not pods (tunnel addresses): `10.233.94.0 ipipTunnelAddress`.
    pub other: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PodEntry {
    pub namespace: String,
    pub name: String,
    pub ip: String,
    /// The pod's node (differs from the block's when the address is borrowed).
    pub node: String,
    pub interface: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SessionEntry {
    /// The node reporting this end.
    pub node: String,
    pub peer_address: String,
    /// The Calico node holding `peer_address`, if one does.
    pub peer_node: Option<String>,
    pub peer_type: String,
    /// BIRD's protocol state: `up`, `start`, `down`.
    pub state: String,
    pub info: String,
    pub established: bool,
}

/// Reads the state from `ds`; `statuses` are the agents' answers by node name (`None`: asked,
/// no answer). Errors name what could not be read.
pub fn collect(
    ds: &Arc<dyn Datastore>,
    title: &str,
    statuses: &BTreeMap<String, Option<AgentStatus>>,
    now: i64,
) -> Result<ClusterView, String> {
    let client = Client::new(ds.clone());
    let nodes = client
        .list(Kind::Node, None)
        .map_err(|e| format!("list nodes: {e}"))?
        .items;
    let weps = client
        .list(Kind::WorkloadEndpoint, None)
        .map_err(|e| format!("list workload endpoints: {e}"))?
        .items;
    let ipam = Ipam::new(client.store().clone());
    let pools = brindle_ipam::resources::list_pools(&**ds).map_err(|e| format!("list IP pools: {e}"))?;
    let blocks: Vec<_> = ipam
        .blocks()
        .map_err(|e| format!("list IPAM blocks: {e}"))?
        .into_iter()
        .map(|b| b.value)
        .collect();
    // Pod interface names by address, from the endpoints.
    let mut iface: BTreeMap<String, (String, String, String)> = BTreeMap::new();
    for r in &weps {
        if let Resource::WorkloadEndpoint(w) = r {
            for n in &w.spec.ip_networks {
                let ip = n.split('/').next().unwrap_or(n).to_string();
                iface.insert(
                    ip,
                    (
                        w.spec.pod.clone(),
                        w.metadata.namespace.clone(),
                        w.spec.interface_name.clone(),
                    ),
                );
            }
        }
    }
    let mut out = ClusterView {
        title: title.to_string(),
        generated: brindle_model::meta::rfc3339_utc(now),
        pools: pools
            .iter()
            .map(|p| PoolEntry {
                name: p.name.clone(),
                cidr: p.cidr.to_string(),
            })
            .collect(),
        nodes: Vec::new(),
        sessions: Vec::new(),
    };
    let mut by_addr: BTreeMap<IpAddr, String> = BTreeMap::new();
    for r in &nodes {
        let Resource::Node(n) = r else { continue };
        let bgp = n.spec.bgp.clone().unwrap_or_default();
        // Both families' addresses name the node (a dual-stack pair has a session of each).
        for a in [&bgp.ipv4_address, &bgp.ipv6_address] {
            if let Some(ip) = a.split('/').next().and_then(|a| a.parse().ok()) {
                by_addr.insert(ip, n.metadata.name.clone());
            }
        }
        let agent = statuses
            .get(&n.metadata.name)
            .cloned()
            .flatten()
            .map(|st| AgentEntry {
                live: st.live,
                ready: st.ready,
                detail: st.ready_detail.clone(),
                version: st.version.clone(),
            });
        out.nodes.push(NodeEntry {
            name: n.metadata.name.clone(),
            // The IPv4 address, or an IPv6-only node's IPv6 one.
            address: if bgp.ipv4_address.is_empty() {
                bgp.ipv6_address.clone()
            } else {
                bgp.ipv4_address.clone()
            },
            asn: bgp.as_number.map(|a| a.to_string()).unwrap_or_default(),
            agent,
            not_asked: !statuses.contains_key(&n.metadata.name),
            blocks: Vec::new(),
        });
    }
    for b in &blocks {
        let host = b
            .affinity_str()
            .and_then(|a| a.strip_prefix("host:").map(str::to_string));
        let mut entry = BlockEntry {
            cidr: b.cidr.to_string(),
            pool: pools
                .iter()
                .find(|p| p.cidr.contains(&b.cidr.network()))
                .map_or_else(String::new, |p| p.name.clone()),
            capacity: b.size() as u64,
            in_use: (b.size() - b.num_free()) as u64,
            pods: Vec::new(),
            other: Vec::new(),
        };
        for (_, addr, a) in b.allocated() {
            let ip = addr.to_string();
            let known = iface.get(&ip);
            let pod = a
                .and_then(|a| a.get(attr::POD))
                .map(str::to_string)
                .or_else(|| known.map(|k| k.0.clone()))
                .filter(|p| !p.is_empty());
            match pod {
                Some(name) => entry.pods.push(PodEntry {
                    namespace: a
                        .and_then(|a| a.get(attr::NAMESPACE))
                        .map(str::to_string)
                        .or_else(|| known.map(|k| k.1.clone()))
                        .unwrap_or_default(),
                    name,
                    ip,
                    node: a
                        .and_then(|a| a.get(attr::NODE))
                        .map(str::to_string)
                        .unwrap_or_default(),
                    interface: known.map(|k| k.2.clone()).unwrap_or_default(),
                }),
                None => entry.other.push(format!(
                    "{ip} {}",
                    a.and_then(|a| a.get(attr::TYPE)).unwrap_or("allocated")
                )),
            }
        }
        match out.nodes.iter_mut().find(|n| Some(&n.name) == host.as_ref()) {
            Some(n) => n.blocks.push(entry),
            None => {
                // A block without a live node (orphaned, or the node was deleted): keep it
                // visible under its affinity.
                out.nodes.push(NodeEntry {
                    name: host.unwrap_or_else(|| "(no affinity)".into()),
                    address: String::new(),
                    asn: String::new(),
                    agent: None,
                    not_asked: false,
                    blocks: vec![entry],
                });
            }
        }
    }
    for (node, st) in statuses {
        let Some(bgp) = st.as_ref().and_then(|s| s.bgp.as_ref()) else {
            continue;
        };
        for p in bgp.peers_v4.iter().chain(&bgp.peers_v6) {
            out.sessions.push(session(node, p, &by_addr));
        }
    }
    Ok(out)
}

fn session(node: &str, p: &PeerStatus, by_addr: &BTreeMap<IpAddr, String>) -> SessionEntry {
    SessionEntry {
        node: node.to_string(),
        peer_address: p.peer_address.clone(),
        peer_node: p.peer_address.parse().ok().and_then(|a| by_addr.get(&a).cloned()),
        peer_type: p.peer_type.clone(),
        state: p.state.clone(),
        info: p.info.clone(),
        established: p.established,
    }
}

/// Answers `/view.json` for the agent: the datastore's state and this agent's own status
/// (completed with its peers and readiness).
pub async fn answer(
    ds: Option<Arc<dyn Datastore>>,
    status: AgentStatus,
    speaker: crate::bgpthread::SpeakerState,
    started: i64,
    tx: tokio::sync::oneshot::Sender<Result<ClusterView, String>>,
) {
    let st = crate::run::complete_status(status, speaker, started).await;
    let Some(ds) = ds else {
        let why = st
            .datastore_error
            .as_deref()
            .unwrap_or("startup has not reached it yet");
        let _ = tx.send(Err(format!("datastore unavailable: {why}")));
        return;
    };
    let title = format!("node {}", st.node);
    let statuses = BTreeMap::from([(st.node.clone(), Some(st))]);
    let now = brindle_ctl::status::unix_now();
    let res = tokio::task::spawn_blocking(move || collect(&ds, &title, &statuses, now))
        .await
        .unwrap_or_else(|e| Err(format!("view: {e}")));
    let _ = tx.send(res);
}

/// The page's template (inline CSS and JavaScript).
const TEMPLATE: &str = include_str!("page.html");

/// The page. With `state`, it is embedded (a file that needs nothing else); without, the page
/// fetches `view.json` next to itself and refreshes (served by the agent).
pub fn page(state: Option<&ClusterView>) -> String {
    let json = match state {
        // `<` escaped so no string in the state can close the script element.
        Some(s) => serde_json::to_string(s)
            .expect("a view serialises")
            .replace('<', "\\u003c"),
        None => "null".to_string(),
    };
    TEMPLATE.replace("/*STATE*/null", &json)
}

#[cfg(test)]
mod tests;
