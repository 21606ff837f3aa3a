//! The desired state the agent computes (from the BGP RIB, IPAM and workloads) and hands to the
//! dataplane, and the pure decisions made from it (which encapsulation a remote block gets).

use std::net::Ipv4Addr;

use brindle_netlink::Mac;
use ipnet::Ipv4Net;

/// An IP pool's `ipipMode` / `vxlanMode`: the model's type (`CrossSubnet` encapsulates only
/// when the next hop is outside this node's subnet).
pub use brindle_model::resources::EncapMode;

/// How a remote block is reached.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RouteEncap {
    /// `via <node> dev <underlay> proto bird`.
    Direct,
    /// `via <node> dev tunl0 proto bird onlink`.
    Ipip,
    /// `via <remote VTEP> dev vxlan.calico onlink proto 80`.
    Vxlan,
}

impl RouteEncap {
    /// The encapsulation of a route to `next_hop` for a block of a pool with these modes, seen
    /// from a node in `my_subnet` (BIRD's `bgp_next_hop ~ network_v4` check, calico.md §5.3).
    /// VXLAN wins when a pool (wrongly) enables both, as Felix then programs the route.
    pub fn decide(ipip: EncapMode, vxlan: EncapMode, my_subnet: Ipv4Net, next_hop: Ipv4Addr) -> RouteEncap {
        let same_subnet = my_subnet.contains(&next_hop);
        match (vxlan, ipip) {
            (EncapMode::Always, _) => RouteEncap::Vxlan,
            (EncapMode::CrossSubnet, _) if !same_subnet => RouteEncap::Vxlan,
            (EncapMode::CrossSubnet, _) => RouteEncap::Direct,
            (EncapMode::Never, EncapMode::Always) => RouteEncap::Ipip,
            (EncapMode::Never, EncapMode::CrossSubnet) if !same_subnet => RouteEncap::Ipip,
            (EncapMode::Never, _) => RouteEncap::Direct,
        }
    }
}

/// This node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeInfo {
    pub name: String,
    /// The BGP address (`spec.bgp.ipv4Address`); the outer source of IPIP, the VXLAN local.
    pub ip: Ipv4Addr,
    /// The network of that address (e.g. 172.20.40.0/22), for CrossSubnet.
    pub subnet: Ipv4Net,
}

/// A block affine to another node, learned over BGP.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RemoteBlock {
    pub dst: Ipv4Net,
    /// The BGP next hop: the owning node's address.
    pub node_ip: Ipv4Addr,
    /// The modes of the pool containing `dst`.
    pub ipip: EncapMode,
    pub vxlan: EncapMode,
}

/// A local workload: its `/32` route and, when its MAC is known, a permanent ARP entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Workload {
    pub ip: Ipv4Addr,
    /// Host-side interface, e.g. `cali36dac03ac5d`.
    pub iface: String,
    pub mac: Option<Mac>,
}

/// `tunl0` settings (Felix's `ipip_mgr`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IpipConfig {
    /// `spec.bgp.ipv4IPIPTunnelAddr`, put on tunl0 as a /32.
    pub tunnel_addr: Option<Ipv4Addr>,
    /// Host MTU − 20 by default.
    pub mtu: u32,
}

/// Another node's VTEP.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RemoteVtep {
    pub node_ip: Ipv4Addr,
    pub vtep_ip: Ipv4Addr,
    pub mac: Mac,
}

/// `vxlan.calico` settings (Felix's `vxlan_mgr`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VxlanConfig {
    /// `spec.ipv4VXLANTunnelAddr`.
    pub vtep_addr: Ipv4Addr,
    /// `spec.vxlanTunnelMACAddr`, or [`crate::vxlan::vtep_mac`] of the node name.
    pub mac: Mac,
    /// Host MTU − 50 by default.
    pub mtu: u32,
    pub vni: u32,
    pub port: u16,
    pub remotes: Vec<RemoteVtep>,
}

impl VxlanConfig {
    /// Calico's defaults: VNI 4096, port 4789.
    pub fn new(vtep_addr: Ipv4Addr, mac: Mac, mtu: u32, remotes: Vec<RemoteVtep>) -> VxlanConfig {
        VxlanConfig {
            vtep_addr,
            mac,
            mtu,
            vni: 4096,
            port: 4789,
            remotes,
        }
    }
}

/// NAT outgoing (calico.md §6): masquerade from `masq_pools` to anything outside `all_pools`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct NatOutgoing {
    /// Pools with `natOutgoing: true`.
    pub masq_pools: Vec<Ipv4Net>,
    /// Every pool (disabled ones included).
    pub all_pools: Vec<Ipv4Net>,
}

/// Everything the dataplane makes the kernel hold.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DesiredState {
    pub node: NodeInfo,
    /// Blocks affine to this node: `blackhole <block> proto bird`.
    pub local_blocks: Vec<Ipv4Net>,
    pub remote_blocks: Vec<RemoteBlock>,
    pub workloads: Vec<Workload>,
    /// `Some` when any pool uses IPIP.
    pub ipip: Option<IpipConfig>,
    /// `Some` when any pool uses VXLAN.
    pub vxlan: Option<VxlanConfig>,
    pub nat: NatOutgoing,
    /// Every other node's address: IPIP is accepted only from these (Felix's all-hosts set).
    pub peer_nodes: Vec<Ipv4Addr>,
    /// Workload interfaces whose endpoint has `allowSpoofedSourcePrefixes` (kernel
    /// `rp_filter` off there; see `brindle_netlink::workload::configure_workload_iface_for`).
    pub spoofing_ifaces: std::collections::BTreeSet<String>,
}

impl DesiredState {
    /// A state with nothing but the node.
    pub fn new(node: NodeInfo) -> DesiredState {
        DesiredState {
            spoofing_ifaces: Default::default(),
            node,
            local_blocks: Vec::new(),
            remote_blocks: Vec::new(),
            workloads: Vec::new(),
            ipip: None,
            vxlan: None,
            nat: NatOutgoing::default(),
            peer_nodes: Vec::new(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use EncapMode::*;

    #[test]
    fn cross_subnet_encapsulates_only_across_subnets() {
        let mine: Ipv4Net = "172.20.40.0/22".parse().unwrap();
        let near: Ipv4Addr = "172.20.42.81".parse().unwrap();
        let far: Ipv4Addr = "172.21.0.5".parse().unwrap();
        assert_eq!(RouteEncap::decide(Always, Never, mine, near), RouteEncap::Ipip);
        assert_eq!(
            RouteEncap::decide(CrossSubnet, Never, mine, near),
            RouteEncap::Direct
        );
        assert_eq!(
            RouteEncap::decide(CrossSubnet, Never, mine, far),
            RouteEncap::Ipip
        );
        assert_eq!(RouteEncap::decide(Never, Never, mine, far), RouteEncap::Direct);
        assert_eq!(RouteEncap::decide(Never, Always, mine, near), RouteEncap::Vxlan);
        assert_eq!(
            RouteEncap::decide(Never, CrossSubnet, mine, near),
            RouteEncap::Direct
        );
        assert_eq!(
            RouteEncap::decide(Never, CrossSubnet, mine, far),
            RouteEncap::Vxlan
        );
    }
}
