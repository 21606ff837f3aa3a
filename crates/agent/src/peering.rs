//! confd's peering rules (pure): which BGP sessions node `me` has and every session's options,
//! from the Nodes, BGPPeers and BGPConfigurations in the cache (Calico's resource reference for
//! BGPConfiguration, BGPPeer and Node; confd's `pkg/backends/calico/client.go` and
//! `bird.cfg.template`). confd does this in two steps, and so do we:
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
//! Each family is rendered on its own, as Calico's `bird` (IPv4) and `bird6` (IPv6) each have
//! a confd template: the mesh between the nodes' addresses of the family, `peerIP`s of the
//! family, selector peerings to the selected nodes' addresses of the family. A dual-stack
//! pair of nodes thus has two sessions, one per family.
//!
//! BGPPeers are taken in name order where confd iterates a Go map, so the winner of two
//! BGPPeers with the same key is stable. One session per address: the speaker keys peers by
//! address, so a mesh session wins over a BGPPeer one, global over node-specific.

use std::collections::{BTreeMap, BTreeSet};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use brindle_bgp_speaker::{BgpFilter, NextHopMode};
use brindle_model::duration::GoDuration;
use brindle_model::resources::{BGPFilter, BGPPeer, BgpPassword, Node, ReversePeering, SourceAddress};

use crate::cache::Cache;

/// A `secretKeyRef {name, key}` (a Kubernetes Secret's key; Brindle reads it from a file, see
/// `bgp::Secrets`).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct SecretRef {
    pub name: String,
    pub key: String,
}

impl SecretRef {
    /// A password's `secretKeyRef`, when it names both a secret and a key.
    pub fn of(p: Option<&BgpPassword>) -> Option<SecretRef> {
        let r = p?.secret_key_ref.as_ref()?;
        (!r.name.is_empty() && !r.key.is_empty()).then(|| SecretRef {
            name: r.name.clone(),
            key: r.key.clone(),
        })
    }
}

/// A Go duration in whole seconds, rounded as confd's `math.Round(d.Seconds())`.
pub fn whole_secs(d: Option<GoDuration>) -> Option<u16> {
    let s = (d?.0.max(0) as f64 / 1e9).round();
    Some(s.min(f64::from(u16::MAX)) as u16)
}

/// A string field that is set.
fn set(s: &str) -> Option<&str> {
    Some(s).filter(|s| !s.is_empty())
}

/// The options of a BGPPeer as confd reads them.
mod opts {
    use super::*;

    pub fn node(p: &BGPPeer) -> Option<&str> {
        set(&p.spec.node)
    }
    pub fn node_selector(p: &BGPPeer) -> Option<&str> {
        set(&p.spec.node_selector)
    }
    pub fn peer_selector(p: &BGPPeer) -> Option<&str> {
        set(&p.spec.peer_selector)
    }
    /// `peerIP` (`IP`, `IP:port`, `[IPv6]:port`).
    pub fn peer_ip(p: &BGPPeer) -> Option<(IpAddr, Option<u16>)> {
        p.spec.peer_addr()
    }
    pub fn asn(p: &BGPPeer) -> Option<u32> {
        Some(p.spec.as_number.0).filter(|a| *a != 0)
    }
    pub fn local_asn(p: &BGPPeer) -> Option<u32> {
        p.spec.local_as_number.map(|a| a.0).filter(|a| *a != 0)
    }
    /// `nextHopMode` in the speaker's terms.
    pub fn next_hop_mode(p: &BGPPeer) -> Option<NextHopMode> {
        use brindle_model::resources::NextHopMode as M;
        p.spec.next_hop_mode.map(|m| match m {
            M::Auto => NextHopMode::Auto,
            M::NextHopSelf => NextHopMode::SetSelf,
            M::Keep => NextHopMode::Keep,
        })
    }
    /// `keepOriginalNextHop` (deprecated; ignored when `nextHopMode` is set, as in confd).
    pub fn keep_next_hop(p: &BGPPeer) -> bool {
        p.spec.next_hop_mode.is_none() && p.spec.keep_original_next_hop
    }
    /// `numAllowedLocalASNumbers` (0 = none).
    pub fn allow_local_as(p: &BGPPeer) -> u8 {
        p.spec
            .num_allowed_local_as_numbers
            .map(|n| n.clamp(0, i32::from(u8::MAX)) as u8)
            .unwrap_or(0)
    }
    /// `reversePeering: Manual`: no automatic reverse peering from the selected Calico nodes.
    pub fn reverse_manual(p: &BGPPeer) -> bool {
        p.spec.reverse_peering == Some(ReversePeering::Manual)
    }
    /// `localWorkloadSelector` is set (peering with workloads: not supported, skipped).
    pub fn local_workload(p: &BGPPeer) -> bool {
        !p.spec.local_workload_selector.is_empty()
    }
}

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
    /// The BGPPeer's `filters` that exist and read, in order (confd's `if exists`).
    pub filters: Vec<BgpFilter>,
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
    from: &'a BGPPeer,
}

/// The node facts the rules read.
struct Ctx<'a> {
    cache: &'a Cache,
    global_as: u32,
    /// The family of the sessions being rendered is IPv4.
    family_v4: bool,
    /// Every node with an address of the family, by name, with that address.
    nodes: BTreeMap<&'a str, (&'a Node, IpAddr)>,
}

fn name(p: &BGPPeer) -> &str {
    &p.metadata.name
}

impl<'a> Ctx<'a> {
    fn node_as(&self, n: &Node) -> u32 {
        n.as_number().unwrap_or(self.global_as)
    }

    fn node_ip(&self, n: &Node) -> Option<IpAddr> {
        self.nodes.get(n.metadata.name.as_str()).map(|(_, ip)| *ip)
    }

    /// Nodes a selector selects (Calico's selector syntax, as IPAM evaluates pool
    /// `nodeSelector`s). A selector that does not parse selects nothing.
    fn matching(&self, peer: &str, sel: &str) -> Vec<&'a Node> {
        let mut out = Vec::new();
        for n in self.cache.all::<Node>() {
            match brindle_model::selector::matches(sel, &n.metadata.labels) {
                Ok(true) => out.push(n),
                Ok(false) => {}
                Err(e) => {
                    tracing::warn!(bgppeer = peer, selector = sel, error = %e, "BGPPeer selector skipped");
                    return Vec::new();
                }
            }
        }
        out
    }

    /// The nodes a BGPPeer applies to (`node`, `nodeSelector`, or every node).
    fn local_nodes(&self, p: &'a BGPPeer) -> Vec<&'a Node> {
        match (opts::node(p), opts::node_selector(p)) {
            (Some(n), _) => self.cache.node(n).into_iter().collect(),
            (None, Some(sel)) => self.matching(name(p), sel),
            (None, None) => self.matching(name(p), "all()"),
        }
    }

    /// confd's `nodesWithIPPortAndAS`: the Calico nodes a `peerIP` BGPPeer points at.
    fn nodes_at(&self, ip: IpAddr, asn: Option<u32>, port: Option<u16>) -> Vec<&'a Node> {
        let want_as = asn.unwrap_or(self.global_as);
        self.nodes
            .values()
            .filter(|(n, at)| *at == ip && self.node_as(n) == want_as)
            .filter(|(n, _)| {
                port.is_none_or(|p| self.cache.listen_port(&n.metadata.name).unwrap_or(179) == p)
            })
            .map(|(n, _)| *n)
            .collect()
    }

    /// confd's `nodeAsBGPPeers`: a peering to a Calico node.
    fn node_peer(&self, n: &'a Node, p: &'a BGPPeer) -> Option<V1Peer<'a>> {
        Some(V1Peer {
            ip: self.node_ip(n)?,
            port: self.cache.listen_port(&n.metadata.name),
            asn: self.node_as(n),
            local_as: None,
            rr_cluster_id: n.route_reflector_cluster_id(),
            calico_node: false,
            keep_next_hop: opts::keep_next_hop(p),
            next_hop: opts::next_hop_mode(p),
            allow_local_as: 0,
            from: p,
        })
    }

    /// The peerings a BGPPeer names (its `peerSelector` nodes or its `peerIP`).
    fn targets(&self, p: &'a BGPPeer) -> Vec<V1Peer<'a>> {
        if let Some(sel) = opts::peer_selector(p) {
            return self
                .matching(name(p), sel)
                .into_iter()
                .filter_map(|n| self.node_peer(n, p))
                .collect();
        }
        let Some((ip, given_port)) = opts::peer_ip(p) else {
            tracing::warn!(bgppeer = %name(p), "BGPPeer has neither peerIP nor peerSelector: skipped");
            return Vec::new();
        };
        if ip.is_ipv4() != self.family_v4 {
            // The other family's BIRD has this session.
            return Vec::new();
        }
        let asn = opts::asn(p);
        let at = self.nodes_at(ip, asn, given_port);
        // No port given: a Calico node's listen port.
        let port = given_port.or_else(|| at.first().and_then(|n| self.cache.listen_port(&n.metadata.name)));
        let node_there = self.nodes.values().find(|(_, at)| *at == ip);
        // Without an AS (confd would render `as 0`): the node's at that address, else global.
        let node_as = node_there.map(|(n, _)| self.node_as(n));
        vec![V1Peer {
            ip,
            port,
            asn: asn.or(node_as).unwrap_or(self.global_as),
            local_as: opts::local_asn(p),
            rr_cluster_id: None,
            calico_node: node_there.is_some(),
            keep_next_hop: opts::keep_next_hop(p),
            next_hop: opts::next_hop_mode(p),
            allow_local_as: opts::allow_local_as(p),
            from: p,
        }]
    }
}

type Key = (IpAddr, Option<u16>);

/// A BGPPeer's `filters` as confd renders them: each existing BGPFilter in turn; a missing
/// or unreadable one is left out and logged.
fn filters_of(cache: &Cache, p: &BGPPeer) -> Vec<BgpFilter> {
    let mut out = Vec::new();
    for n in &p.spec.filters {
        match cache.get::<BGPFilter>(n).map(BgpFilter::from_resource) {
            Some(Ok(f)) => out.push(f),
            Some(Err(e)) => tracing::warn!(bgppeer = %name(p), error = %e, "BGPFilter left out"),
            None => tracing::warn!(bgppeer = %name(p), filter = %n, "BGPFilter does not exist: left out"),
        }
    }
    out
}

/// The sessions of node `me` (with addresses `my_v4`, `my_v6`, AS `my_as`): those of each
/// family the node has an address of, as Calico's `bird` and `bird6` each render theirs
/// between the nodes' addresses of their family. Sorted by address, IPv4 first.
pub fn peers(
    cache: &Cache,
    me: &Node,
    my_v4: Option<Ipv4Addr>,
    my_v6: Option<Ipv6Addr>,
    my_as: u32,
    global_as: u32,
) -> Vec<DesiredPeer> {
    let mut out = Vec::new();
    if let Some(ip) = my_v4 {
        out.extend(peers_of_family(cache, me, IpAddr::V4(ip), my_as, global_as));
    }
    if let Some(ip) = my_v6 {
        out.extend(peers_of_family(cache, me, IpAddr::V6(ip), my_as, global_as));
    }
    out
}

/// A node's BGP address of the family of `of`.
fn node_addr(n: &Node, of: IpAddr) -> Option<IpAddr> {
    match of {
        IpAddr::V4(_) => n.bgp_ipv4().map(|a| IpAddr::V4(a.addr())),
        IpAddr::V6(_) => n.bgp_ipv6().map(|a| IpAddr::V6(a.addr())),
    }
}

/// The sessions of one family: `my_ip`'s. Nodes take part with their address of that family
/// and `peerIP`s of the other family are another BIRD's.
fn peers_of_family(cache: &Cache, me: &Node, my_ip: IpAddr, my_as: u32, global_as: u32) -> Vec<DesiredPeer> {
    let ctx = Ctx {
        cache,
        global_as,
        family_v4: my_ip.is_ipv4(),
        nodes: cache
            .all::<Node>()
            .filter_map(|n| Some((n.metadata.name.as_str(), (n, node_addr(n, my_ip)?))))
            .collect(),
    };
    let me_name = me.metadata.name.as_str();
    // A cluster id that is not an IPv4 address (the model refuses those) cannot make a
    // reflector; the node is still out of the mesh, as in confd.
    let my_cluster = me
        .route_reflector_cluster_id()
        .filter(|c| c.parse::<Ipv4Addr>().is_ok());
    let global = cache.bgp_default().map(|g| &g.spec);
    let mut out: BTreeMap<IpAddr, DesiredPeer> = BTreeMap::new();
    let me_ip = my_ip;
    let lexically_greater = |ip: IpAddr| ip.to_string() > my_ip.to_string();

    if me.route_reflector_cluster_id().is_none()
        && global.and_then(|g| g.node_to_node_mesh_enabled).unwrap_or(true)
    {
        for (o, ip) in ctx.nodes.values() {
            if *ip == me_ip || o.route_reflector_cluster_id().is_some() {
                continue;
            }
            out.insert(
                *ip,
                DesiredPeer {
                    addr: *ip,
                    port: cache.listen_port(&o.metadata.name),
                    asn: ctx.node_as(o),
                    kind: PeerKind::Mesh,
                    passive: lexically_greater(*ip),
                    source: None,
                    local_as: None,
                    rr_client: false,
                    next_hop: NextHopMode::Auto,
                    password: global.and_then(|g| SecretRef::of(g.node_mesh_password.as_ref())),
                    use_node_ip: true,
                    restart_time: global.and_then(|g| whole_secs(g.node_mesh_max_restart_time)),
                    keepalive: None,
                    allow_local_as: 0,
                    ttl_security: None,
                    filters: Vec::new(),
                },
            );
        }
    }

    // Step 1: the v1 peerings of this node (BGPPeers in name order: the cache's order).
    let bgp_peers: Vec<&BGPPeer> = cache
        .all::<BGPPeer>()
        .filter(|p| !opts::local_workload(p))
        .collect();
    for p in cache.all::<BGPPeer>().filter(|p| opts::local_workload(p)) {
        tracing::warn!(bgppeer = %name(p), "BGPPeer localWorkloadSelector is not supported: skipped");
    }
    let is_global = |p: &BGPPeer| opts::node(p).is_none() && opts::node_selector(p).is_none();
    let mut globals: BTreeMap<Key, V1Peer<'_>> = BTreeMap::new();
    for p in bgp_peers.iter().filter(|p| is_global(p)) {
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
    let applies_to_me = |p: &BGPPeer| ctx.local_nodes(p).iter().any(|n| n.metadata.name == me_name);
    for p in bgp_peers.iter().filter(|p| !is_global(p)) {
        if applies_to_me(p) {
            for v in ctx.targets(p) {
                emit(&globals, &mut nodes, v);
            }
        }
    }
    for p in bgp_peers.iter().filter(|p| !opts::reverse_manual(p)) {
        let selected_me = match (opts::peer_selector(p), opts::peer_ip(p)) {
            (Some(sel), _) => ctx
                .matching(name(p), sel)
                .iter()
                .any(|n| n.metadata.name == me_name),
            (None, Some((ip, port))) => ctx
                .nodes_at(ip, opts::asn(p), port)
                .iter()
                .any(|n| n.metadata.name == me_name),
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
            dropped.insert((v.ip, name(v.from).to_string()));
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
                source: Some(name(p).to_string()),
                local_as: v.local_as,
                rr_client: v.asn == effective_as && my_cluster.is_some() && v.rr_cluster_id != my_cluster,
                next_hop,
                password: SecretRef::of(p.spec.password.as_ref()),
                use_node_ip: p.spec.source_address != Some(SourceAddress::NoSourceAddress),
                restart_time: whole_secs(p.spec.max_restart_time),
                keepalive: whole_secs(p.spec.keepalive_time),
                allow_local_as: v.allow_local_as,
                ttl_security: p.spec.ttl_security.filter(|h| *h > 0),
                filters: filters_of(cache, p),
            },
        );
    }
    for (ip, name) in dropped {
        tracing::debug!(peer = %ip, bgppeer = %name, "BGPPeer session skipped: another session has that address");
    }
    out.into_values().collect()
}
