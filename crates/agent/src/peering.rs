//! confd's peering rules (pure): which BGP sessions node `me` has and every session's options,
//! from the Nodes, BGPPeers and BGPConfigurations in the cache (calico.md §2.2–2.4 and the
//! bird.cfg section). confd does this in two steps, and so do we:
//!
//! 1. BGPPeers become "v1 peerings" (`updatePeersV1`): global ones first (no `node`, no
//!    `nodeSelector`), then node-specific ones (skipped where a global peering to the same
//!    address and port exists), then the automatic reverse peerings (a BGPPeer whose
//!    `peerSelector`/`peerIP` selects Calico nodes makes those nodes peer back with the nodes
//!    it applies to, unless `reversePeering: Manual`). The first peering of a key wins. A
//!    `peerSelector` peering takes the selected node's address, AS, listen port and cluster id,
//!    but not `localASNumber` nor `numAllowedLocalASNumbers` (confd's `nodeAsBGPPeers`).
//! 2. Each peering of this node becomes a session (`buildPeerFromData`): `rr client` when this
//!    node is a route reflector, the peer is iBGP and not in our cluster; `next hop keep` for
//!    `keepOriginalNextHop` on eBGP only; `passive` when a *global* peering's address is a
//!    Calico node's (a `peerIP` one: confd's `nodeAsBGPPeers` does not mark selector
//!    peerings) and is lexically greater than ours. Node-specific peerings, such as the
//!    reflector sessions of `nodeSelector`/`peerSelector` BGPPeers, stay active on both ends,
//!    as in Calico; the speaker resolves the crossing connections (bgp-core DESIGN.md, "Both
//!    ends active").
//!
//! The node-to-node mesh (mesh on and this node not a reflector): every other node with an
//! address that is not a reflector, passive when its address is lexically greater, with
//! `nodeMeshPassword` and `nodeMeshMaxRestartTime`.
//!
//! BGPPeers are taken in name order where confd iterates a Go map, so the winner of two
//! BGPPeers with the same key is stable. One session per address: the speaker keys peers by
//! address, so a mesh session wins over a BGPPeer one, global over node-specific.

use std::collections::{BTreeMap, BTreeSet};
use std::net::{IpAddr, Ipv4Addr};

use brindle_bgp_speaker::NextHopMode;

use crate::views::{Cache, NodeView, PeerView, SecretRef};

/// Which kind of peering a session is (BIRD protocol name prefixes `Mesh_`, `Global_`, `Node_`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum PeerKind {
    Mesh,
    Global,
    Node,
}

impl PeerKind {
    /// What `calicoctl node status` prints in PEER TYPE.
    pub fn label(self) -> &'static str {
        match self {
            PeerKind::Mesh => "node-to-node mesh",
            PeerKind::Global => "global",
            PeerKind::Node => "node specific",
        }
    }
}

/// One BGP session this node should have, with the options confd would render for it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DesiredPeer {
    pub addr: IpAddr,
    /// The peer's port (its `listenPort`, or the `peerIP` port); `None` = ours.
    pub port: Option<u16>,
    pub asn: u32,
    pub kind: PeerKind,
    /// Only listen (`passive on`).
    pub passive: bool,
    /// The BGPPeer this session comes from (`None` for the mesh), for logs.
    pub source: Option<String>,
    /// `localASNumber`: our AS on this session (`local as N`).
    pub local_as: Option<u32>,
    /// `rr client` (this node reflects the peer's routes, RFC 4456).
    pub rr_client: bool,
    pub next_hop: NextHopMode,
    /// The TCP MD5 key's secret (`password "…"`).
    pub password: Option<SecretRef>,
    /// `source address <node IP>` (`sourceAddress: UseNodeIP`, the default).
    pub use_node_ip: bool,
    /// `graceful restart time N` (`None`: BIRD's 120 s).
    pub restart_time: Option<u16>,
    /// `keepalive time N`.
    pub keepalive: Option<u16>,
    /// `allow local as N`.
    pub allow_local_as: u8,
    /// `ttl security on; multihop N` (GTSM, RFC 5082).
    pub ttl_security: Option<u8>,
}

/// A peering before it is bound to this node (confd's v1 `BGPPeer`).
#[derive(Debug, Clone)]
struct V1Peer<'a> {
    ip: IpAddr,
    port: Option<u16>,
    asn: u32,
    local_as: Option<u32>,
    /// The peer node's cluster id (peerings from a selector).
    rr_cluster_id: Option<&'a str>,
    /// The address is a Calico node's (`peerIP` peerings only, as confd).
    calico_node: bool,
    keep_next_hop: bool,
    next_hop: Option<NextHopMode>,
    allow_local_as: u8,
    from: &'a PeerView,
}

/// The node facts the rules read.
struct Ctx<'a> {
    cache: &'a Cache,
    global_as: u32,
    /// Every node with an IPv4 address, by name.
    nodes: BTreeMap<&'a str, &'a NodeView>,
}

fn node_ip(n: &NodeView) -> Option<IpAddr> {
    n.ipv4.map(|a| IpAddr::V4(a.addr()))
}

fn cluster_id(n: &NodeView) -> Option<&str> {
    n.rr_cluster_id.as_deref().filter(|c| !c.is_empty())
}

impl<'a> Ctx<'a> {
    fn node_as(&self, n: &NodeView) -> u32 {
        n.asn.unwrap_or(self.global_as)
    }

    /// Nodes a selector selects (Calico's selector syntax, as IPAM evaluates pool
    /// `nodeSelector`s). A selector that does not parse selects nothing.
    fn matching(&self, peer: &str, sel: &str) -> Vec<&'a NodeView> {
        let mut out = Vec::new();
        for n in self.cache.nodes.values() {
            match brindle_ipam::resources::selects(sel, &n.labels) {
                Ok(true) => out.push(n),
                Ok(false) => {}
                Err(e) => {
                    tracing::warn!(bgppeer = peer, selector = sel, error = %e, "BGPPeer selector skipped");
                    return Vec::new();
                }
            }
        }
        out.sort_by(|a, b| a.name.cmp(&b.name));
        out
    }

    /// The nodes a BGPPeer applies to (`node`, `nodeSelector`, or every node).
    fn local_nodes(&self, p: &'a PeerView) -> Vec<&'a NodeView> {
        match (&p.node, &p.node_selector) {
            (Some(n), _) => self.cache.node(n).into_iter().collect(),
            (None, Some(sel)) => self.matching(&p.name, sel),
            (None, None) => self.matching(&p.name, "all()"),
        }
    }

    /// confd's `nodesWithIPPortAndAS`: the Calico nodes a `peerIP` BGPPeer points at.
    fn nodes_at(&self, ip: IpAddr, asn: Option<u32>, port: Option<u16>) -> Vec<&'a NodeView> {
        let want_as = asn.unwrap_or(self.global_as);
        self.nodes
            .values()
            .copied()
            .filter(|n| node_ip(n) == Some(ip) && self.node_as(n) == want_as)
            .filter(|n| port.is_none_or(|p| self.cache.listen_port(&n.name).unwrap_or(179) == p))
            .collect()
    }

    /// confd's `nodeAsBGPPeers`: a peering to a Calico node.
    fn node_peer(&self, n: &'a NodeView, p: &'a PeerView) -> Option<V1Peer<'a>> {
        Some(V1Peer {
            ip: node_ip(n)?,
            port: self.cache.listen_port(&n.name),
            asn: self.node_as(n),
            local_as: None,
            rr_cluster_id: cluster_id(n),
            calico_node: false,
            keep_next_hop: p.next_hop_mode.is_none() && p.keep_original_next_hop,
            next_hop: p.next_hop_mode,
            allow_local_as: 0,
            from: p,
        })
    }

    /// The peerings a BGPPeer names (its `peerSelector` nodes or its `peerIP`).
    fn targets(&self, p: &'a PeerView) -> Vec<V1Peer<'a>> {
        if let Some(sel) = &p.peer_selector {
            return self
                .matching(&p.name, sel)
                .into_iter()
                .filter_map(|n| self.node_peer(n, p))
                .collect();
        }
        let Some(ip) = p.peer_ip else {
            tracing::warn!(bgppeer = %p.name, "BGPPeer has neither peerIP nor peerSelector: skipped");
            return Vec::new();
        };
        let at = self.nodes_at(ip, p.asn, p.port);
        // No port given: a Calico node's listen port.
        let port = p
            .port
            .or_else(|| at.first().and_then(|n| self.cache.listen_port(&n.name)));
        let calico = self.nodes.values().any(|n| node_ip(n) == Some(ip));
        // Without an AS (confd would render `as 0`): the node's at that address, else global.
        let node_as = self
            .nodes
            .values()
            .find(|n| node_ip(n) == Some(ip))
            .map(|n| self.node_as(n));
        vec![V1Peer {
            ip,
            port,
            asn: p.asn.or(node_as).unwrap_or(self.global_as),
            local_as: p.local_asn,
            rr_cluster_id: None,
            calico_node: calico,
            keep_next_hop: p.next_hop_mode.is_none() && p.keep_original_next_hop,
            next_hop: p.next_hop_mode,
            allow_local_as: p.allow_local_as,
            from: p,
        }]
    }
}

type Key = (IpAddr, Option<u16>);

/// The sessions of node `me` (with address `my_ip`, AS `my_as`), sorted by address.
pub fn peers(cache: &Cache, me: &NodeView, my_ip: Ipv4Addr, my_as: u32, global_as: u32) -> Vec<DesiredPeer> {
    let ctx = Ctx {
        cache,
        global_as,
        nodes: cache
            .nodes
            .values()
            .filter(|n| n.ipv4.is_some())
            .map(|n| (n.name.as_str(), n))
            .collect(),
    };
    // A cluster id that is not an IPv4 address (the model refuses those) cannot make a
    // reflector; the node is still out of the mesh, as in confd.
    let my_cluster = cluster_id(me).filter(|c| c.parse::<Ipv4Addr>().is_ok());
    let global = cache.bgp_default();
    let mut out: BTreeMap<IpAddr, DesiredPeer> = BTreeMap::new();
    let me_ip = IpAddr::V4(my_ip);
    let lexically_greater = |ip: IpAddr| ip.to_string() > my_ip.to_string();

    if cluster_id(me).is_none() && global.and_then(|g| g.mesh).unwrap_or(true) {
        for o in ctx.nodes.values() {
            let Some(ip) = node_ip(o).filter(|ip| *ip != me_ip) else {
                continue;
            };
            if cluster_id(o).is_some() {
                continue;
            }
            out.insert(
                ip,
                DesiredPeer {
                    addr: ip,
                    port: cache.listen_port(&o.name),
                    asn: ctx.node_as(o),
                    kind: PeerKind::Mesh,
                    passive: lexically_greater(ip),
                    source: None,
                    local_as: None,
                    rr_client: false,
                    next_hop: NextHopMode::Auto,
                    password: global.and_then(|g| g.node_mesh_password.clone()),
                    use_node_ip: true,
                    restart_time: global.and_then(|g| g.node_mesh_restart_time),
                    keepalive: None,
                    allow_local_as: 0,
                    ttl_security: None,
                },
            );
        }
    }

    // Step 1: the v1 peerings of this node.
    let bgp_peers: Vec<&PeerView> = {
        let mut v: Vec<&PeerView> = cache.peers.values().filter(|p| !p.local_workload).collect();
        v.sort_by(|a, b| a.name.cmp(&b.name));
        v
    };
    for p in cache.peers.values().filter(|p| p.local_workload) {
        tracing::warn!(bgppeer = %p.name, "BGPPeer localWorkloadSelector is not supported: skipped");
    }
    let mut globals: BTreeMap<Key, V1Peer<'_>> = BTreeMap::new();
    for p in bgp_peers
        .iter()
        .filter(|p| p.node.is_none() && p.node_selector.is_none())
    {
        for v in ctx.targets(p) {
            globals.entry((v.ip, v.port)).or_insert(v);
        }
    }
    let mut nodes: BTreeMap<Key, V1Peer<'_>> = BTreeMap::new();
    // A node-specific peering yields to a global one with the same key; the first one wins.
    fn emit<'a>(globals: &BTreeMap<Key, V1Peer<'a>>, nodes: &mut BTreeMap<Key, V1Peer<'a>>, v: V1Peer<'a>) {
        let k = (v.ip, v.port);
        if !globals.contains_key(&k) {
            nodes.entry(k).or_insert(v);
        }
    }
    let applies_to_me = |p: &PeerView| ctx.local_nodes(p).iter().any(|n| n.name == me.name);
    for p in bgp_peers
        .iter()
        .filter(|p| p.node.is_some() || p.node_selector.is_some())
    {
        if applies_to_me(p) {
            for v in ctx.targets(p) {
                emit(&globals, &mut nodes, v);
            }
        }
    }
    for p in bgp_peers.iter().filter(|p| !p.reverse_manual) {
        let selected_me = match (&p.peer_selector, p.peer_ip) {
            (Some(sel), _) => ctx.matching(&p.name, sel).iter().any(|n| n.name == me.name),
            (None, Some(ip)) => ctx.nodes_at(ip, p.asn, p.port).iter().any(|n| n.name == me.name),
            (None, None) => false,
        };
        if selected_me {
            for n in ctx.local_nodes(p) {
                if let Some(v) = ctx.node_peer(n, p) {
                    emit(&globals, &mut nodes, v);
                }
            }
        }
    }

    // Step 2: sessions.
    let sessions = globals
        .into_values()
        .map(|v| (PeerKind::Global, v))
        .chain(nodes.into_values().map(|v| (PeerKind::Node, v)));
    let mut dropped = BTreeSet::new();
    for (kind, v) in sessions {
        if v.ip == me_ip {
            continue;
        }
        if out.contains_key(&v.ip) {
            dropped.insert((v.ip, v.from.name.clone()));
            continue;
        }
        let effective_as = v.local_as.unwrap_or(my_as);
        let p = v.from;
        let next_hop = match v.next_hop {
            Some(m) => m,
            None if v.keep_next_hop && v.asn != effective_as => NextHopMode::Keep,
            None => NextHopMode::Auto,
        };
        out.insert(
            v.ip,
            DesiredPeer {
                addr: v.ip,
                port: v.port,
                asn: v.asn,
                kind,
                passive: kind == PeerKind::Global && v.calico_node && lexically_greater(v.ip),
                source: Some(p.name.clone()),
                local_as: v.local_as,
                rr_client: v.asn == effective_as && my_cluster.is_some() && v.rr_cluster_id != my_cluster,
                next_hop,
                password: p.password.clone(),
                use_node_ip: p.use_node_ip,
                restart_time: p.max_restart_time,
                keepalive: p.keepalive_time,
                allow_local_as: v.allow_local_as,
                ttl_security: Some(p.ttl_security).filter(|h| *h > 0),
            },
        );
    }
    for (ip, name) in dropped {
        tracing::debug!(peer = %ip, bgppeer = %name, "BGPPeer session skipped: another session has that address");
    }
    out.into_values().collect()
}
