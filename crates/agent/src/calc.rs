//! The calculation (pure): the syncer's [`Cache`], this node's name and the routes BGP has
//! learned → what BGP should do (peers, prefixes to originate) and what the kernel should hold
//! (brindle-dataplane's [`DesiredState`]). Calico splits this over confd (BIRD config) and
//! Felix; the rules are theirs (docs/CALICO.md §1 and §3).

use std::collections::BTreeSet;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use brindle_bgp_speaker::PrefixAdvertisements;
use brindle_dataplane::{
    DesiredState, IpipConfig, NatOutgoing, NodeInfo, RemoteBlock, RemoteVtep, VxlanConfig, Workload,
};
use brindle_model::resources::{BGPConfiguration, EncapMode, IPPool, Node, WorkloadEndpoint};
use ipnet::{IpNet, Ipv4Net};

use crate::cache::Cache;
use crate::config::{Backend, RouterId};
pub use crate::peering::{DesiredPeer, PeerKind};

/// Calico's default AS when neither the node nor BGPConfiguration sets one.
pub const DEFAULT_AS: u32 = 64512;

/// What the BGP speaker should do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DesiredBgp {
    pub router_id: Ipv4Addr,
    pub local_as: u32,
    /// The node's addresses (`spec.bgp.ipv4Address`, `ipv6Address`): sources of the sessions
    /// of their family and next hops of what we announce.
    pub node_v4: Option<Ipv4Addr>,
    pub node_v6: Option<Ipv6Addr>,
    /// `bindMode: NodeIP`: listen on the node's addresses only, not the wildcards.
    pub bind_node_ip: bool,
    pub listen_port: Option<u16>,
    /// `routeReflectorClusterID`: this node is a route reflector (RFC 4456).
    pub cluster_id: Option<Ipv4Addr>,
    /// Pools whose learned routes go to eBGP peers (BGP export not disabled).
    pub export_pools: Vec<IpNet>,
    /// Both families' sessions: one per peer address, as Calico's two BIRDs have.
    pub peers: Vec<DesiredPeer>,
    /// This node's confirmed blocks and borrowed /32s and /128s (calico_aggr + pool accept),
    /// and the service CIDRs (the static routes confd adds for BGPConfiguration's service
    /// IPs), both families.
    pub originate: Vec<IpNet>,
    /// `prefixAdvertisements` in effect on this node (`node.<name>` BGPConfiguration's, else
    /// the global one's): the communities its prefixes are announced with.
    pub advertisements: PrefixAdvertisements,
}

/// Settings of the calculation that do not come from the datastore.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CalcSettings {
    pub backend: Backend,
    /// MTU of the node's underlay interface.
    pub host_mtu: u32,
    pub ipip_mtu: Option<u32>,
    pub vxlan_mtu: Option<u32>,
    /// `FELIX_VXLANMTUV6` (default host MTU − 70).
    pub vxlan_mtu_v6: Option<u32>,
    pub vxlan_vni: Option<u32>,
    pub vxlan_port: Option<u16>,
    /// Program routes to other nodes' blocks from IPAM affinities (Felix's
    /// `programClusterRoutes`) rather than from BGP. Always the case for VXLAN pools.
    pub routes_from_datastore: bool,
    /// `CALICO_ROUTER_ID`; without it the node's IPv4 address, or (IPv6-only node) the hash
    /// of the node name.
    pub router_id: Option<RouterId>,
}

/// The calculation's outputs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Desired {
    /// `None` without BGP (backend vxlan/none) or before the node has an address.
    pub bgp: Option<DesiredBgp>,
    /// `None` before this node's Node resource (with its address) is known.
    pub dataplane: Option<DesiredState>,
}

/// A pool (either family) as the calculation reads it.
#[derive(Debug, Clone, Copy)]
struct Pool {
    cidr: IpNet,
    ipip: EncapMode,
    vxlan: EncapMode,
    nat_outgoing: bool,
    disabled: bool,
    disable_bgp_export: bool,
}

impl Pool {
    fn of(p: &IPPool) -> Option<Pool> {
        let cidr = p.spec.network()?;
        Some(Pool {
            cidr,
            // Calico never uses IPIP for IPv6 (the model refuses ipipMode on v6 pools).
            ipip: if cidr.addr().is_ipv4() {
                p.spec.ipip()
            } else {
                EncapMode::Never
            },
            vxlan: p.spec.vxlan(),
            nat_outgoing: p.spec.nat_outgoing,
            disabled: p.spec.disabled,
            disable_bgp_export: p.spec.disable_bgp_export,
        })
    }

    /// How routes outside every pool are installed: plain, no tunnel.
    const PLAIN: Pool = Pool {
        cidr: IpNet::V4(Ipv4Net::new_assert(Ipv4Addr::UNSPECIFIED, 0)),
        ipip: EncapMode::Never,
        vxlan: EncapMode::Never,
        nat_outgoing: false,
        disabled: false,
        disable_bgp_export: false,
    };
}

fn pool_of(pools: &[Pool], net: IpNet) -> Option<&Pool> {
    pools.iter().find(|p| p.cidr.contains(&net))
}

/// A host prefix (/32, /128) of an address.
fn host_net(ip: IpAddr) -> IpNet {
    IpNet::from(ip)
}

/// A node's BGP address of the family of `of` (`spec.bgp.ipv4Address` / `ipv6Address`).
fn node_ip_for(n: &Node, of: IpAddr) -> Option<IpAddr> {
    match of {
        IpAddr::V4(_) => n.bgp_ipv4().map(|a| IpAddr::V4(a.addr())),
        IpAddr::V6(_) => n.bgp_ipv6().map(|a| IpAddr::V6(a.addr())),
    }
}

fn cidrs(blocks: &[brindle_model::resources::CidrBlock]) -> impl Iterator<Item = IpNet> + '_ {
    blocks
        .iter()
        .filter_map(|c| Some(c.cidr.parse::<IpNet>().ok()?.trunc()))
}

/// The service CIDRs (both families) of the global BGPConfiguration (cluster, external, load
/// balancer).
fn service_cidrs(cache: &Cache) -> Vec<IpNet> {
    let Some(g) = cache.bgp_default().map(|g| &g.spec) else {
        return Vec::new();
    };
    cidrs(&g.service_cluster_ips)
        .chain(cidrs(&g.service_external_ips))
        .chain(cidrs(&g.service_load_balancer_ips))
        .collect()
}

/// The service CIDRs this node advertises (confd's `updateGlobalRoutes`, per family): every
/// cluster IP range; external and load-balancer ranges except single addresses (/32, /128:
/// those belong to `externalTrafficPolicy: Local` services, advertised only where their
/// endpoints are); none on a node labelled
/// `node.kubernetes.io/exclude-from-external-load-balancers=true`.
fn service_prefixes(cache: &Cache, node: &Node) -> Vec<IpNet> {
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
    cidrs(&g.service_cluster_ips)
        .chain(
            cidrs(&g.service_external_ips)
                .chain(cidrs(&g.service_load_balancer_ips))
                .filter(|n| n.prefix_len() < n.max_prefix_len()),
        )
        .collect()
}

/// confd's `hashToIPv4`: the first four bytes of the SHA-256 of the node name, for nodes
/// without an IPv4 address (`CALICO_ROUTER_ID=hash`).
pub fn hash_router_id(node: &str) -> Ipv4Addr {
    use sha2::Digest;
    let h = sha2::Sha256::digest(node.as_bytes());
    Ipv4Addr::new(h[0], h[1], h[2], h[3])
}

/// The BGP router id: `CALICO_ROUTER_ID` (an address or `hash`), else the node's IPv4
/// address, else (an IPv6-only node, where BIRD needs one) the hash of its name.
fn router_id(me: &str, v4: Option<Ipv4Addr>, setting: Option<&RouterId>) -> Ipv4Addr {
    match (setting, v4) {
        (Some(RouterId::Addr(a)), _) => *a,
        (Some(RouterId::Hash), _) | (None, None) => hash_router_id(me),
        (None, Some(a)) => a,
    }
}

/// Computes the desired state of node `me`. `learned` are BGP best routes (prefix, next hop)
/// of both families.
pub fn compute(cache: &Cache, me: &str, learned: &[(IpNet, IpAddr)], s: &CalcSettings) -> Desired {
    let none = Desired {
        bgp: None,
        dataplane: None,
    };
    let Some(node) = cache.node(me) else {
        return none;
    };
    let my_v4net = node.bgp_ipv4();
    let my_v6net = node.bgp_ipv6();
    if my_v4net.is_none() && my_v6net.is_none() {
        return none;
    }
    let my_v4 = my_v4net.map(|n| n.addr());
    let my_v6 = my_v6net.map(|n| n.addr());
    let my_net_for = |of: IpAddr| -> Option<IpNet> {
        match of {
            IpAddr::V4(_) => my_v4net.map(IpNet::V4),
            IpAddr::V6(_) => my_v6net.map(IpNet::V6),
        }
    };
    let is_me = |ip: IpAddr| Some(ip) == my_v4.map(IpAddr::V4) || Some(ip) == my_v6.map(IpAddr::V6);
    let pools: Vec<Pool> = cache.all::<IPPool>().filter_map(Pool::of).collect();
    let local_blocks: Vec<IpNet> = cache
        .affinities()
        .filter(|a| a.host == me && a.confirmed())
        .map(|a| a.block.trunc())
        .filter(|b| b.prefix_len() < b.max_prefix_len())
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    let mut workloads: Vec<Workload> = cache
        .all::<WorkloadEndpoint>()
        .filter(|w| w.spec.node == me && !w.spec.interface_name.is_empty())
        .flat_map(|w| {
            let mac = brindle_netlink::parse_mac(&w.spec.mac);
            w.spec.ip_nets().map(move |n| Workload {
                ip: n.addr(),
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
    let others: Vec<&Node> = cache
        .all::<Node>()
        .filter(|n| n.metadata.name != me)
        .filter(|n| n.bgp_ipv4().is_some() || n.bgp_ipv6().is_some())
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
        let peers = crate::peering::peers(cache, node, my_v4, my_v6, my_as, global_as);
        let exported = |net: IpNet| pool_of(&pools, net).is_some_and(|p| !p.disable_bgp_export);
        // A family without a node address has no session to announce it on (no `bird6`).
        let has_family = |net: &IpNet| my_net_for(net.addr()).is_some();
        let mut originate: Vec<IpNet> = local_blocks
            .iter()
            .copied()
            .filter(|b| exported(*b) && has_family(b))
            .collect();
        for w in &workloads {
            let net = host_net(w.ip);
            let borrowed = !local_blocks.iter().any(|b| b.contains(&w.ip));
            if borrowed && exported(net) && has_family(&net) {
                originate.push(net);
            }
        }
        originate.extend(service_prefixes(cache, node).into_iter().filter(has_family));
        originate.sort();
        originate.dedup();
        DesiredBgp {
            router_id: router_id(me, my_v4, s.router_id.as_ref()),
            local_as: my_as,
            node_v4: my_v4,
            node_v6: my_v6,
            bind_node_ip: global
                .and_then(|g| g.bind_mode)
                .is_some_and(|m| m == brindle_model::resources::BindMode::NodeIP),
            listen_port: cache.listen_port(me),
            cluster_id,
            export_pools: cache
                .all::<IPPool>()
                .filter(|p| !p.spec.disable_bgp_export)
                .filter_map(|p| p.spec.network())
                .collect(),
            peers,
            originate,
            advertisements: PrefixAdvertisements::effective(
                global,
                cache
                    .get::<BGPConfiguration>(&format!("node.{me}"))
                    .map(|c| &c.spec),
            ),
        }
    });

    let mut dp = DesiredState::new(NodeInfo {
        name: me.to_string(),
        ipv4: my_v4net,
        ipv6: my_v6net,
    });
    dp.local_blocks = local_blocks.clone();
    dp.workloads = workloads;
    dp.spoofing_ifaces = spoofing_ifaces;
    dp.peer_nodes = others.iter().filter_map(|n| Some(n.bgp_ipv4()?.addr())).collect();
    let owner_ip = |node: &str, of: IpAddr| cache.node(node).and_then(|n| node_ip_for(n, of));
    let mut remote: Vec<RemoteBlock> = Vec::new();
    let mut push = |dst: IpNet, node_ip: IpAddr, p: &Pool| {
        if !is_me(node_ip)
            && dst.addr().is_ipv4() == node_ip.is_ipv4()
            && !remote.iter().any(|r| r.dst == dst)
        {
            remote.push(RemoteBlock {
                dst,
                node_ip,
                ipip: p.ipip,
                vxlan: p.vxlan,
            });
        }
    };
    // VXLAN pools: Felix's way, from IPAM affinities and the owners' Node resources.
    let from_store = |p: &Pool| p.vxlan != EncapMode::Never || s.routes_from_datastore;
    for a in cache.affinities().filter(|a| a.host != me && a.confirmed()) {
        let block = a.block.trunc();
        let Some(p) = pool_of(&pools, block) else {
            continue;
        };
        if from_store(p)
            && let Some(ip) = owner_ip(a.host, block.addr())
        {
            push(block, ip, p);
        }
    }
    // Addresses other nodes borrowed (outside their own blocks): a host route to the
    // borrower, more specific than the block owner's route.
    for w in cache
        .all::<WorkloadEndpoint>()
        .filter(|w| w.spec.node != me && !w.spec.interface_name.is_empty())
    {
        for ip in w.spec.ip_nets().map(|n| n.addr()) {
            let owns = cache
                .affinities()
                .any(|a| a.host == w.spec.node && a.confirmed() && a.block.contains(&ip));
            let net = host_net(ip);
            if let (false, Some(p), Some(nip)) = (owns, pool_of(&pools, net), owner_ip(&w.spec.node, ip))
                && from_store(p)
            {
                push(net, nip, p);
            }
        }
    }
    // Other pools: BIRD's way, from BGP best routes inside a pool. Routes outside every pool
    // (from external peers) are installed as BIRD's kernel protocol does (`accept` at the end of
    // calico_kernel_programming), except the service CIDRs (confd's `/rejectcidrs`); their
    // next hop, when off the node's subnet, is resolved recursively through the other learned
    // routes (BIRD's `gateway recursive`), or the route is left out when nothing resolves it.
    if s.backend == Backend::Bird {
        let rejected = service_cidrs(cache);
        for (dst, nh) in learned {
            if dst.addr().is_ipv4() != nh.is_ipv4() {
                continue;
            }
            let Some(my_net) = my_net_for(*nh) else {
                continue;
            };
            match pool_of(&pools, *dst) {
                // Another node's block: via that node (the dataplane picks the tunnel).
                Some(p) if p.vxlan == EncapMode::Never => push(*dst, *nh, p),
                Some(_) => {}
                None if rejected.iter().any(|r| r.contains(dst))
                    || local_blocks.iter().any(|b| b.contains(dst)) => {}
                None => {
                    if let Some(gw) = crate::nexthop::resolve(learned, *nh, &my_net) {
                        push(*dst, gw, &Pool::PLAIN)
                    }
                }
            }
        }
    }
    remote.sort_by_key(|r| r.dst);
    dp.remote_blocks = remote;
    let v4_pools = || pools.iter().filter(|p| p.cidr.addr().is_ipv4());
    let v6_pools = || pools.iter().filter(|p| p.cidr.addr().is_ipv6());
    if my_v4net.is_some() && v4_pools().any(|p| p.ipip != EncapMode::Never) {
        dp.ipip = Some(IpipConfig {
            tunnel_addr: node.ipip_tunnel_addr(),
            mtu: s.ipip_mtu.filter(|m| *m > 0).unwrap_or(s.host_mtu - 20),
        });
    }
    if my_v4net.is_some()
        && v4_pools().any(|p| p.vxlan != EncapMode::Never)
        && let Some(vtep) = node.vxlan_tunnel_addr()
    {
        let mac_of = |n: &Node| {
            brindle_netlink::parse_mac(&n.spec.vxlan_tunnel_mac_addr)
                .unwrap_or_else(|| brindle_dataplane::vxlan::vtep_mac(&n.metadata.name))
        };
        let remotes = others
            .iter()
            .filter_map(|o| {
                Some(RemoteVtep {
                    node_ip: o.bgp_ipv4()?.addr().into(),
                    vtep_ip: o.vxlan_tunnel_addr()?.into(),
                    mac: mac_of(o),
                })
            })
            .collect();
        let mtu = s.vxlan_mtu.filter(|m| *m > 0).unwrap_or(s.host_mtu - 50);
        dp.vxlan = Some(vxlan_config(vtep.into(), mac_of(node), mtu, remotes, s));
    }
    if my_v6net.is_some()
        && v6_pools().any(|p| p.vxlan != EncapMode::Never)
        && let Some(vtep) = node.vxlan_tunnel_addr_v6()
    {
        let mac_of = |n: &Node| {
            brindle_netlink::parse_mac(&n.spec.vxlan_tunnel_mac_addr_v6)
                .unwrap_or_else(|| brindle_dataplane::vxlan::vtep_mac_v6(&n.metadata.name))
        };
        let remotes = others
            .iter()
            .filter_map(|o| {
                Some(RemoteVtep {
                    node_ip: o.bgp_ipv6()?.addr().into(),
                    vtep_ip: o.vxlan_tunnel_addr_v6()?.into(),
                    mac: mac_of(o),
                })
            })
            .collect();
        let mtu = s.vxlan_mtu_v6.filter(|m| *m > 0).unwrap_or(s.host_mtu - 70);
        dp.vxlan_v6 = Some(vxlan_config(vtep.into(), mac_of(node), mtu, remotes, s));
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

fn vxlan_config(
    vtep: IpAddr,
    mac: brindle_netlink::Mac,
    mtu: u32,
    remotes: Vec<RemoteVtep>,
    s: &CalcSettings,
) -> VxlanConfig {
    let mut v = VxlanConfig::new(vtep, mac, mtu, remotes);
    if let Some(vni) = s.vxlan_vni {
        v.vni = vni;
    }
    if let Some(port) = s.vxlan_port {
        v.port = port;
    }
    v
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
