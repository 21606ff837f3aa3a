//! The calculation (pure): the syncer's [`Cache`], this node's name and the routes BGP has
//! learned → what BGP should do (peers, prefixes to originate) and what the kernel should hold
//! (brindle-dataplane's [`DesiredState`]). Calico splits this over confd (BIRD config) and
//! Felix; the rules are theirs (docs/CALICO.md §1 and §3).

use std::collections::BTreeSet;
use std::net::Ipv4Addr;

use brindle_dataplane::{
    DesiredState, IpipConfig, NatOutgoing, NodeInfo, RemoteBlock, RemoteVtep, VxlanConfig, Workload,
};
use brindle_model::resources::{EncapMode, IPPool, Node, WorkloadEndpoint};
use ipnet::{IpNet, Ipv4Net};

use crate::cache::Cache;
use crate::config::Backend;
pub use crate::peering::{DesiredPeer, PeerKind};

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

/// An IPv4 pool as the calculation reads it.
#[derive(Debug, Clone, Copy)]
struct Pool {
    cidr: Ipv4Net,
    ipip: EncapMode,
    vxlan: EncapMode,
    nat_outgoing: bool,
    disabled: bool,
    disable_bgp_export: bool,
}

impl Pool {
    fn of(p: &IPPool) -> Option<Pool> {
        let IpNet::V4(cidr) = p.spec.network()? else {
            return None;
        };
        Some(Pool {
            cidr,
            ipip: p.spec.ipip(),
            vxlan: p.spec.vxlan(),
            nat_outgoing: p.spec.nat_outgoing,
            disabled: p.spec.disabled,
            disable_bgp_export: p.spec.disable_bgp_export,
        })
    }

    /// How routes outside every pool are installed: plain, no tunnel.
    const PLAIN: Pool = Pool {
        cidr: Ipv4Net::new_assert(std::net::Ipv4Addr::UNSPECIFIED, 0),
        ipip: EncapMode::Never,
        vxlan: EncapMode::Never,
        nat_outgoing: false,
        disabled: false,
        disable_bgp_export: false,
    };
}

fn pool_of(pools: &[Pool], net: Ipv4Net) -> Option<&Pool> {
    pools.iter().find(|p| p.cidr.contains(&net))
}

/// The IPv4 addresses of a workload endpoint.
fn v4_addrs(w: &WorkloadEndpoint) -> impl Iterator<Item = Ipv4Addr> + '_ {
    w.spec.ip_nets().filter_map(|n| match n {
        IpNet::V4(n) => Some(n.addr()),
        IpNet::V6(_) => None,
    })
}

/// A node's BGP IPv4 address (`spec.bgp.ipv4Address`).
fn node_ip(n: &Node) -> Option<Ipv4Addr> {
    n.bgp_ipv4().map(|a| a.addr())
}

fn v4_cidrs(blocks: &[brindle_model::resources::CidrBlock]) -> impl Iterator<Item = Ipv4Net> + '_ {
    blocks.iter().filter_map(|c| match c.cidr.parse::<IpNet>().ok()? {
        IpNet::V4(n) => Some(n.trunc()),
        IpNet::V6(_) => None,
    })
}

/// The IPv4 service CIDRs of the global BGPConfiguration (cluster, external, load balancer).
fn service_cidrs(cache: &Cache) -> Vec<Ipv4Net> {
    let Some(g) = cache.bgp_default().map(|g| &g.spec) else {
        return Vec::new();
    };
    v4_cidrs(&g.service_cluster_ips)
        .chain(v4_cidrs(&g.service_external_ips))
        .chain(v4_cidrs(&g.service_load_balancer_ips))
        .collect()
}

/// The service CIDRs this node advertises (confd's `updateGlobalRoutes`): every cluster IP
/// range; external and load-balancer ranges except single addresses (those belong to
/// `externalTrafficPolicy: Local` services, advertised only where their endpoints are); none
/// on a node labelled `node.kubernetes.io/exclude-from-external-load-balancers=true`.
fn service_prefixes(cache: &Cache, node: &Node) -> Vec<Ipv4Net> {
    let Some(g) = cache.bgp_default().map(|g| &g.spec) else {
        return Vec::new();
    };
    if node
        .metadata
        .labels
        .get("node.kubernetes.io/exclude-from-external-load-balancers")
        .is_some_and(|v| v == "true")
    {
        return Vec::new();
    }
    v4_cidrs(&g.service_cluster_ips)
        .chain(
            v4_cidrs(&g.service_external_ips)
                .chain(v4_cidrs(&g.service_load_balancer_ips))
                .filter(|n| n.prefix_len() < 32),
        )
        .collect()
}

/// Computes the desired state of node `me`. `learned` are BGP best routes (prefix, next hop).
pub fn compute(cache: &Cache, me: &str, learned: &[(Ipv4Net, Ipv4Addr)], s: &CalcSettings) -> Desired {
    let none = Desired {
        bgp: None,
        dataplane: None,
    };
    let Some(node) = cache.node(me) else {
        return none;
    };
    let Some(my_net) = node.bgp_ipv4() else {
        return none;
    };
    let my_ip = my_net.addr();
    let pools: Vec<Pool> = cache.all::<IPPool>().filter_map(Pool::of).collect();
    let v4_block = |b: IpNet| match b {
        IpNet::V4(b) => Some(b),
        IpNet::V6(_) => None,
    };
    let local_blocks: Vec<Ipv4Net> = cache
        .affinities()
        .filter(|a| a.host == me && a.confirmed())
        .filter_map(|a| v4_block(a.block))
        .filter(|b| b.prefix_len() < 32)
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    let mut workloads: Vec<Workload> = cache
        .all::<WorkloadEndpoint>()
        .filter(|w| w.spec.node == me && !w.spec.interface_name.is_empty())
        .flat_map(|w| {
            let mac = brindle_netlink::parse_mac(&w.spec.mac);
            v4_addrs(w).map(move |ip| Workload {
                ip: ip.into(),
                iface: w.spec.interface_name.clone(),
                mac,
            })
        })
        .collect();
    workloads.sort_by_key(|w| w.ip);
    workloads.dedup_by_key(|w| w.ip);
    let spoofing_ifaces = cache
        .all::<WorkloadEndpoint>()
        .filter(|w| w.spec.node == me && !w.spec.allow_spoofed_source_prefixes.is_empty())
        .map(|w| w.spec.interface_name.clone())
        .collect();
    // Every other node with an address, and that address.
    let others: Vec<(&Node, Ipv4Addr)> = cache
        .all::<Node>()
        .filter(|n| n.metadata.name != me)
        .filter_map(|n| Some((n, node_ip(n)?)))
        .collect();

    let bgp = (s.backend == Backend::Bird).then(|| {
        let global = cache.bgp_default().map(|g| &g.spec);
        let global_as = global.and_then(|g| g.as_number).map_or(DEFAULT_AS, |a| a.0);
        let my_as = node.as_number().unwrap_or(global_as);
        let cluster_id = node.route_reflector_cluster_id().and_then(|c| match c.parse() {
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
        let exported = |net: Ipv4Net| pool_of(&pools, net).is_some_and(|p| !p.disable_bgp_export);
        let mut originate: Vec<Ipv4Net> = local_blocks.iter().copied().filter(|b| exported(*b)).collect();
        for w in &workloads {
            let std::net::IpAddr::V4(ip) = w.ip else { continue };
            let net = Ipv4Net::from(ip);
            let borrowed = !local_blocks.iter().any(|b| b.contains(&ip));
            if borrowed && exported(net) {
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
                .all::<IPPool>()
                .filter(|p| !p.spec.disable_bgp_export)
                .filter_map(|p| p.spec.network())
                .collect(),
            peers,
            originate,
        }
    });

    let mut dp = DesiredState::new(NodeInfo::v4(me, my_net));
    dp.local_blocks = local_blocks.iter().copied().map(IpNet::V4).collect();
    dp.workloads = workloads;
    dp.spoofing_ifaces = spoofing_ifaces;
    dp.peer_nodes = others.iter().map(|(_, ip)| *ip).collect();
    let owner_ip = |node: &str| cache.node(node).and_then(node_ip);
    let mut remote: Vec<RemoteBlock> = Vec::new();
    let mut push = |dst: Ipv4Net, node_ip: Ipv4Addr, p: &Pool| {
        if node_ip != my_ip && !remote.iter().any(|r| r.dst == IpNet::V4(dst)) {
            remote.push(RemoteBlock {
                dst: IpNet::V4(dst),
                node_ip: node_ip.into(),
                ipip: p.ipip,
                vxlan: p.vxlan,
            });
        }
    };
    // VXLAN pools: Felix's way, from IPAM affinities and the owners' Node resources.
    let from_store = |p: &Pool| p.vxlan != EncapMode::Never || s.routes_from_datastore;
    for a in cache.affinities().filter(|a| a.host != me && a.confirmed()) {
        let Some(block) = v4_block(a.block) else {
            continue;
        };
        let Some(p) = pool_of(&pools, block) else {
            continue;
        };
        if from_store(p)
            && let Some(ip) = owner_ip(a.host)
        {
            push(block, ip, p);
        }
    }
    // Addresses other nodes borrowed (outside their own blocks): a /32 to the borrower, more
    // specific than the block owner's route.
    for w in cache
        .all::<WorkloadEndpoint>()
        .filter(|w| w.spec.node != me && !w.spec.interface_name.is_empty())
    {
        for ip in v4_addrs(w) {
            let owns = cache.affinities().any(|a| {
                a.host == w.spec.node && a.confirmed() && a.block.contains(&std::net::IpAddr::V4(ip))
            });
            let net = Ipv4Net::from(ip);
            if let (false, Some(p), Some(nip)) = (owns, pool_of(&pools, net), owner_ip(&w.spec.node))
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
        for (dst, nh) in learned {
            match pool_of(&pools, *dst) {
                Some(p) if p.vxlan == EncapMode::Never => push(*dst, *nh, p),
                Some(_) => {}
                None if rejected.iter().any(|r| r.contains(dst))
                    || local_blocks.iter().any(|b| b.contains(dst))
                    || !my_net.contains(nh) => {}
                None => push(*dst, *nh, &Pool::PLAIN),
            }
        }
    }
    remote.sort_by_key(|r| r.dst);
    dp.remote_blocks = remote;
    if pools.iter().any(|p| p.ipip != EncapMode::Never) {
        dp.ipip = Some(IpipConfig {
            tunnel_addr: node.ipip_tunnel_addr(),
            mtu: s.ipip_mtu.filter(|m| *m > 0).unwrap_or(s.host_mtu - 20),
        });
    }
    if pools.iter().any(|p| p.vxlan != EncapMode::Never)
        && let Some(vtep) = node.vxlan_tunnel_addr()
    {
        let mac_of = |n: &Node| {
            brindle_netlink::parse_mac(&n.spec.vxlan_tunnel_mac_addr)
                .unwrap_or_else(|| brindle_dataplane::vxlan::vtep_mac(&n.metadata.name))
        };
        let remotes = others
            .iter()
            .filter_map(|(o, ip)| {
                Some(RemoteVtep {
                    node_ip: (*ip).into(),
                    vtep_ip: o.vxlan_tunnel_addr()?.into(),
                    mac: mac_of(o),
                })
            })
            .collect();
        let mut v = VxlanConfig::new(
            vtep,
            mac_of(node),
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
            .map(|p| IpNet::V4(p.cidr))
            .collect(),
        all: pools.iter().map(|p| IpNet::V4(p.cidr)).collect(),
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
