//! The calculation (pure): the syncer's [`Cache`], this node's name and the routes BGP has
//! learned → what BGP should do (peers, prefixes to originate) and what the kernel should hold
//! (brindle-dataplane's [`DesiredState`]). Calico splits this over confd (BIRD config) and
//! Felix; the rules are theirs (calico.md §5).

use std::collections::BTreeSet;
use std::net::Ipv4Addr;

use brindle_dataplane::state::EncapMode as DpMode;
use brindle_dataplane::{
    DesiredState, IpipConfig, NatOutgoing, NodeInfo, RemoteBlock, RemoteVtep, VxlanConfig, Workload,
};
use ipnet::{IpNet, Ipv4Net};

use crate::config::{Backend, EncapMode};
pub use crate::peering::{DesiredPeer, PeerKind};
use crate::views::{Cache, NodeView, PoolView};

/// Calico's default AS when neither the node nor BGPConfiguration sets one.
pub const DEFAULT_AS: u32 = 64512;

/// What the BGP speaker should do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DesiredBgp {
    pub router_id: Ipv4Addr,
    pub local_as: u32,
    pub local_addr: Ipv4Addr,
    pub listen_port: Option<u16>,
    /// `routeReflectorClusterID`: this node is a route reflector (RFC 4456).
    pub cluster_id: Option<Ipv4Addr>,
    /// Pools whose learned routes go to eBGP peers (BGP export not disabled).
    pub export_pools: Vec<IpNet>,
    pub peers: Vec<DesiredPeer>,
    /// This node's confirmed blocks and borrowed /32s (calico_aggr + pool accept), and the
    /// service CIDRs (the static routes confd adds for BGPConfiguration's service IPs).
    pub originate: Vec<Ipv4Net>,
}

/// Settings of the calculation that do not come from the datastore.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CalcSettings {
    pub backend: Backend,
    /// MTU of the node's underlay interface.
    pub host_mtu: u32,
    pub ipip_mtu: Option<u32>,
    pub vxlan_mtu: Option<u32>,
    pub vxlan_vni: Option<u32>,
    pub vxlan_port: Option<u16>,
    /// Program routes to other nodes' blocks from IPAM affinities (Felix's
    /// `programClusterRoutes`) rather than from BGP. Always the case for VXLAN pools.
    pub routes_from_datastore: bool,
}

/// The calculation's outputs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Desired {
    /// `None` without BGP (backend vxlan/none) or before the node has an address.
    pub bgp: Option<DesiredBgp>,
    /// `None` before this node's Node resource (with its address) is known.
    pub dataplane: Option<DesiredState>,
}

fn dp_mode(m: EncapMode) -> DpMode {
    match m {
        EncapMode::Never => DpMode::Never,
        EncapMode::Always => DpMode::Always,
        EncapMode::CrossSubnet => DpMode::CrossSubnet,
    }
}

fn pool_of<'a>(pools: &'a [&PoolView], net: Ipv4Net) -> Option<&'a PoolView> {
    pools.iter().copied().find(|p| match p.cidr {
        IpNet::V4(c) => c.contains(&net),
        IpNet::V6(_) => false,
    })
}

/// The IPv4 service CIDRs of the global BGPConfiguration (cluster, external, load balancer).
fn service_cidrs(cache: &Cache) -> Vec<Ipv4Net> {
    let Some(g) = cache.bgp_default() else {
        return Vec::new();
    };
    g.service_cluster_ips
        .iter()
        .chain(&g.service_external_ips)
        .chain(&g.service_lb_ips)
        .filter_map(|n| match n {
            IpNet::V4(n) => Some(n.trunc()),
            IpNet::V6(_) => None,
        })
        .collect()
}

/// The service CIDRs this node advertises (confd's `updateGlobalRoutes`): every cluster IP
/// range; external and load-balancer ranges except single addresses (those belong to
/// `externalTrafficPolicy: Local` services, advertised only where their endpoints are); none
/// on a node labelled `node.kubernetes.io/exclude-from-external-load-balancers=true`.
fn service_prefixes(cache: &Cache, node: &NodeView) -> Vec<Ipv4Net> {
    let Some(g) = cache.bgp_default() else {
        return Vec::new();
    };
    if node
        .labels
        .get("node.kubernetes.io/exclude-from-external-load-balancers")
        .is_some_and(|v| v == "true")
    {
        return Vec::new();
    }
    let v4 = |n: &IpNet| match n {
        IpNet::V4(n) => Some(n.trunc()),
        IpNet::V6(_) => None,
    };
    g.service_cluster_ips
        .iter()
        .filter_map(v4)
        .chain(
            g.service_external_ips
                .iter()
                .chain(&g.service_lb_ips)
                .filter_map(v4)
                .filter(|n| n.prefix_len() < 32),
        )
        .collect()
}

/// Computes the desired state of node `me`. `learned` are BGP best routes (prefix, next hop).
pub fn compute(cache: &Cache, me: &str, learned: &[(Ipv4Net, Ipv4Addr)], s: &CalcSettings) -> Desired {
    let Some(node) = cache.node(me) else {
        return Desired {
            bgp: None,
            dataplane: None,
        };
    };
    let Some(my_net) = node.ipv4 else {
        return Desired {
            bgp: None,
            dataplane: None,
        };
    };
    let my_ip = my_net.addr();
    let pools: Vec<&PoolView> = cache
        .pools
        .values()
        .filter(|p| matches!(p.cidr, IpNet::V4(_)))
        .collect();
    let local_blocks: Vec<Ipv4Net> = cache
        .affinities
        .values()
        .filter(|a| a.node == me && a.confirmed && a.block.prefix_len() < 32)
        .map(|a| a.block)
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    let mut workloads: Vec<Workload> = cache
        .workloads
        .values()
        .filter(|w| w.node == me)
        .flat_map(|w| {
            w.ips.iter().map(|ip| Workload {
                ip: ip.addr().into(),
                iface: w.iface.clone(),
                mac: w.mac,
            })
        })
        .collect();
    workloads.sort_by_key(|w| w.ip);
    workloads.dedup_by_key(|w| w.ip);
    let others: Vec<&NodeView> = cache
        .nodes
        .values()
        .filter(|n| n.name != me && n.ipv4.is_some())
        .collect();

    let bgp = (s.backend == Backend::Bird).then(|| {
        let global = cache.bgp_default();
        let global_as = global.and_then(|g| g.asn).unwrap_or(DEFAULT_AS);
        let my_as = node.asn.unwrap_or(global_as);
        let cluster_id = node.rr_cluster_id.as_deref().and_then(|c| match c.parse() {
            Ok(id) => Some(id),
            Err(_) => {
                tracing::warn!(
                    node = me,
                    cluster_id = c,
                    "routeReflectorClusterID is not an IPv4 address: not a reflector"
                );
                None
            }
        });
        let peers = crate::peering::peers(cache, node, my_ip, my_as, global_as);
        let mut originate: Vec<Ipv4Net> = local_blocks
            .iter()
            .copied()
            .filter(|b| pool_of(&pools, *b).is_some_and(|p| !p.disable_bgp_export))
            .collect();
        for w in &workloads {
            let std::net::IpAddr::V4(ip) = w.ip else { continue };
            let net = Ipv4Net::new(ip, 32).expect("32");
            let borrowed = !local_blocks.iter().any(|b| b.contains(&ip));
            if borrowed && pool_of(&pools, net).is_some_and(|p| !p.disable_bgp_export) {
                originate.push(net);
            }
        }
        originate.extend(service_prefixes(cache, node));
        originate.sort();
        originate.dedup();
        DesiredBgp {
            router_id: my_ip,
            local_as: my_as,
            local_addr: my_ip,
            listen_port: cache.listen_port(me),
            cluster_id,
            export_pools: cache
                .pools
                .values()
                .filter(|p| !p.disable_bgp_export)
                .map(|p| p.cidr)
                .collect(),
            peers,
            originate,
        }
    });

    let mut dp = DesiredState::new(NodeInfo::v4(me, my_net));
    dp.local_blocks = local_blocks.iter().copied().map(IpNet::V4).collect();
    dp.workloads = workloads;
    dp.peer_nodes = others.iter().map(|o| o.ipv4.expect("filtered").addr()).collect();
    let owner_ip = |node: &str| cache.node(node).and_then(|n| n.ipv4).map(|n| n.addr());
    let mut remote: Vec<RemoteBlock> = Vec::new();
    let mut push = |dst: Ipv4Net, node_ip: Ipv4Addr, p: &PoolView| {
        if node_ip != my_ip && !remote.iter().any(|r| r.dst == IpNet::V4(dst)) {
            remote.push(RemoteBlock {
                dst: IpNet::V4(dst),
                node_ip: node_ip.into(),
                ipip: dp_mode(p.ipip),
                vxlan: dp_mode(p.vxlan),
            });
        }
    };
    // VXLAN pools: Felix's way, from IPAM affinities and the owners' Node resources.
    let from_store = |p: &PoolView| p.vxlan != EncapMode::Never || s.routes_from_datastore;
    for a in cache.affinities.values().filter(|a| a.node != me && a.confirmed) {
        let Some(p) = pool_of(&pools, a.block) else {
            continue;
        };
        if from_store(p)
            && let Some(ip) = owner_ip(&a.node)
        {
            push(a.block, ip, p);
        }
    }
    // Addresses other nodes borrowed (outside their own blocks): a /32 to the borrower, more
    // specific than the block owner's route.
    for w in cache.workloads.values().filter(|w| w.node != me) {
        for ip in &w.ips {
            let owns = cache
                .affinities
                .values()
                .any(|a| a.node == w.node && a.confirmed && a.block.contains(&ip.addr()));
            let net = Ipv4Net::new(ip.addr(), 32).expect("32");
            if let (false, Some(p), Some(nip)) = (owns, pool_of(&pools, net), owner_ip(&w.node))
                && from_store(p)
            {
                push(net, nip, p);
            }
        }
    }
    // Other pools: BIRD's way, from BGP best routes inside a pool. Routes outside every pool
    // (from external peers) are installed as BIRD's kernel protocol does (`accept` at the end of
    // calico_kernel_programming), except the service CIDRs (confd's `/rejectcidrs`) and routes
    // whose next hop is not on the node's subnet (BIRD resolves those recursively; we do not).
    if s.backend == Backend::Bird {
        let rejected = service_cidrs(cache);
        // How routes outside every pool are installed: plain, no tunnel.
        let plain = PoolView {
            name: String::new(),
            cidr: IpNet::V4(Ipv4Net::default()),
            ipip: EncapMode::Never,
            vxlan: EncapMode::Never,
            nat_outgoing: false,
            disabled: false,
            disable_bgp_export: false,
        };
        for (dst, nh) in learned {
            match pool_of(&pools, *dst) {
                Some(p) if p.vxlan == EncapMode::Never => push(*dst, *nh, p),
                Some(_) => {}
                None if rejected.iter().any(|r| r.contains(dst))
                    || local_blocks.iter().any(|b| b.contains(dst))
                    || !my_net.contains(nh) => {}
                None => push(*dst, *nh, &plain),
            }
        }
    }
    remote.sort_by_key(|r| r.dst);
    dp.remote_blocks = remote;
    if pools.iter().any(|p| p.ipip != EncapMode::Never) {
        dp.ipip = Some(IpipConfig {
            tunnel_addr: node.ipip_tunnel,
            mtu: s.ipip_mtu.filter(|m| *m > 0).unwrap_or(s.host_mtu - 20),
        });
    }
    if pools.iter().any(|p| p.vxlan != EncapMode::Never)
        && let Some(vtep) = node.vxlan_tunnel
    {
        let mac = node
            .vxlan_mac
            .unwrap_or_else(|| brindle_dataplane::vxlan::vtep_mac(me));
        let remotes = others
            .iter()
            .filter_map(|o| {
                Some(RemoteVtep {
                    node_ip: o.ipv4?.addr().into(),
                    vtep_ip: o.vxlan_tunnel?.into(),
                    mac: o
                        .vxlan_mac
                        .unwrap_or_else(|| brindle_dataplane::vxlan::vtep_mac(&o.name)),
                })
            })
            .collect();
        let mut v = VxlanConfig::new(
            vtep,
            mac,
            s.vxlan_mtu.filter(|m| *m > 0).unwrap_or(s.host_mtu - 50),
            remotes,
        );
        if let Some(vni) = s.vxlan_vni {
            v.vni = vni;
        }
        if let Some(port) = s.vxlan_port {
            v.port = port;
        }
        dp.vxlan = Some(v);
    }
    dp.nat = NatOutgoing {
        masq: pools
            .iter()
            .filter(|p| p.nat_outgoing && !p.disabled)
            .map(|p| p.cidr)
            .collect(),
        all: pools.iter().map(|p| p.cidr).collect(),
    };
    Desired {
        bgp,
        dataplane: Some(dp),
    }
}

/// The pod MTU Felix writes for CNI (`determinePodMTU`): the smallest of the enabled
/// encapsulations' MTUs, or the host MTU without encapsulation.
pub fn pod_mtu(dp: &DesiredState, host_mtu: u32) -> u32 {
    let mut m = host_mtu;
    if let Some(i) = &dp.ipip {
        m = m.min(i.mtu);
    }
    for v in [&dp.vxlan, &dp.vxlan_v6].into_iter().flatten() {
        m = m.min(v.mtu);
    }
    m
}
