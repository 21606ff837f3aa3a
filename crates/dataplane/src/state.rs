//! The desired state the agent computes (from the BGP RIB, IPAM and workloads) and hands to the
//! dataplane, and the pure decisions made from it (which encapsulation a remote block gets).

use std::net::{IpAddr, Ipv4Addr};

use brindle_netlink::Mac;
use ipnet::{IpNet, Ipv4Net, Ipv6Net};

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
    /// `via <remote VTEP> dev vxlan.calico onlink proto 80` (IPv6: `vxlan-v6.calico`).
    Vxlan,
}

impl RouteEncap {
    /// The encapsulation of a route to `next_hop` for a block of a pool with these modes, seen
    /// from a node in `my_subnet` (BIRD's `bgp_next_hop ~ network_v4` check, docs/CALICO.md §3;
    /// `None`, or a subnet of the other family: the next hop is not on this node's subnet).
    /// VXLAN wins when a pool (wrongly) enables both, as Felix then programs the route. IPv6
    /// blocks are never IPIP (Calico refuses IPIP on IPv6 pools and BIRD6 installs them plainly).
    pub fn decide(
        ipip: EncapMode,
        vxlan: EncapMode,
        my_subnet: Option<IpNet>,
        next_hop: IpAddr,
    ) -> RouteEncap {
        let same_subnet = my_subnet.is_some_and(|s| s.contains(&next_hop));
        let ipip = if next_hop.is_ipv6() {
            EncapMode::Never
        } else {
            ipip
        };
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
    /// The BGP address with its subnet (`spec.bgp.ipv4Address`, e.g. 172.20.42.80/22): the
    /// outer source of IPIP and VXLAN, the subnet for CrossSubnet. `None` on an IPv6-only node.
    pub ipv4: Option<Ipv4Net>,
    /// `spec.bgp.ipv6Address` (e.g. fd00:20::80/64): the same roles for IPv6 blocks and
    /// `vxlan-v6.calico`. `None` on an IPv4-only node.
    pub ipv6: Option<Ipv6Net>,
}

impl NodeInfo {
    /// An IPv4-only node.
    pub fn v4(name: &str, ipv4: Ipv4Net) -> NodeInfo {
        NodeInfo {
            name: name.to_string(),
            ipv4: Some(ipv4),
            ipv6: None,
        }
    }

    /// The node's address and subnet of the family of `of`.
    pub fn net_for(&self, of: IpAddr) -> Option<IpNet> {
        match of {
            IpAddr::V4(_) => self.ipv4.map(IpNet::V4),
            IpAddr::V6(_) => self.ipv6.map(IpNet::V6),
        }
    }
}

/// A block affine to another node (or a borrowed address), learned over BGP or from IPAM.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RemoteBlock {
    /// The block (IPv4 or IPv6).
    pub dst: IpNet,
    /// The owning node's address of the block's family (the BGP next hop).
    pub node_ip: IpAddr,
    /// The modes of the pool containing `dst`.
    pub ipip: EncapMode,
    pub vxlan: EncapMode,
}

/// A local workload address: its `/32` (`/128`) route and, for IPv4 when its MAC is known, a
/// permanent ARP entry (Felix makes none for IPv6).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Workload {
    pub ip: IpAddr,
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

/// Another node's VTEP (of the family of the device it belongs to).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RemoteVtep {
    /// The node's address: the outer destination.
    pub node_ip: IpAddr,
    /// Its VTEP address (`ipv4VXLANTunnelAddr` / `ipv6VXLANTunnelAddr`): the routes' gateway.
    pub vtep_ip: IpAddr,
    pub mac: Mac,
}

/// `vxlan.calico` or `vxlan-v6.calico` settings (Felix's `vxlan_mgr`, one per family).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VxlanConfig {
    /// `spec.ipv4VXLANTunnelAddr` or `spec.ipv6VXLANTunnelAddr`; its family is the device's.
    pub vtep_addr: IpAddr,
    /// `spec.vxlanTunnelMACAddr` (`…V6`), or [`crate::vxlan::vtep_mac`] (`vtep_mac_v6`).
    pub mac: Mac,
    /// Host MTU − 50 by default (IPv6: − 70).
    pub mtu: u32,
    pub vni: u32,
    pub port: u16,
    pub remotes: Vec<RemoteVtep>,
}

impl VxlanConfig {
    /// Calico's defaults: VNI 4096, port 4789 (both families).
    pub fn new(vtep_addr: impl Into<IpAddr>, mac: Mac, mtu: u32, remotes: Vec<RemoteVtep>) -> VxlanConfig {
        VxlanConfig {
            vtep_addr: vtep_addr.into(),
            mac,
            mtu,
            vni: 4096,
            port: 4789,
            remotes,
        }
    }

    /// True for `vxlan-v6.calico`.
    pub fn is_v6(&self) -> bool {
        self.vtep_addr.is_ipv6()
    }
}

/// NAT outgoing (docs/CALICO.md §5): masquerade from `masq` pools to anything outside `all` pools,
/// per family (IPv4 in `ip brindle`, NAT66 in `ip6 brindle`).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct NatOutgoing {
    /// Pools with `natOutgoing: true` (not disabled), both families.
    pub masq: Vec<IpNet>,
    /// Every pool (disabled ones included), both families.
    pub all: Vec<IpNet>,
}

impl NatOutgoing {
    /// The IPv4 pools: (masquerading, all).
    pub fn v4(&self) -> (Vec<Ipv4Net>, Vec<Ipv4Net>) {
        let pick = |v: &[IpNet]| {
            v.iter()
                .filter_map(|n| if let IpNet::V4(n) = n { Some(*n) } else { None })
                .collect()
        };
        (pick(&self.masq), pick(&self.all))
    }

    /// The IPv6 pools: (masquerading, all).
    pub fn v6(&self) -> (Vec<Ipv6Net>, Vec<Ipv6Net>) {
        let pick = |v: &[IpNet]| {
            v.iter()
                .filter_map(|n| if let IpNet::V6(n) = n { Some(*n) } else { None })
                .collect()
        };
        (pick(&self.masq), pick(&self.all))
    }
}

/// Everything the dataplane makes the kernel hold.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DesiredState {
    pub node: NodeInfo,
    /// Blocks affine to this node (both families): `blackhole <block> proto bird`.
    pub local_blocks: Vec<IpNet>,
    pub remote_blocks: Vec<RemoteBlock>,
    pub workloads: Vec<Workload>,
    /// `Some` when any pool uses IPIP.
    pub ipip: Option<IpipConfig>,
    /// `vxlan.calico`: `Some` when an IPv4 pool uses VXLAN.
    pub vxlan: Option<VxlanConfig>,
    /// `vxlan-v6.calico`: `Some` when an IPv6 pool uses VXLAN.
    pub vxlan_v6: Option<VxlanConfig>,
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
            vxlan_v6: None,
            nat: NatOutgoing::default(),
            peer_nodes: Vec::new(),
        }
    }

    /// Whether this node routes IPv6 (Felix's `IPv6Enabled`): it has an IPv6 address, or IPv6
    /// blocks or workloads. Only then are IPv6 forwarding and the IPv6 workload sysctls set,
    /// so an IPv4-only node's kernel state stays what it was.
    pub fn ipv6_enabled(&self) -> bool {
        self.node.ipv6.is_some()
            || self.local_blocks.iter().any(|b| matches!(b, IpNet::V6(_)))
            || self.remote_blocks.iter().any(|b| matches!(b.dst, IpNet::V6(_)))
            || self.workloads.iter().any(|w| w.ip.is_ipv6())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use EncapMode::*;

    /// Each case: (ipip, vxlan, this node's subnet, next hop, expected).
    fn check(cases: &[(EncapMode, EncapMode, Option<&str>, &str, RouteEncap)]) {
        for &(ipip, vxlan, mine, nh, want) in cases {
            let mine: Option<IpNet> = mine.map(|m| m.parse().unwrap());
            let got = RouteEncap::decide(ipip, vxlan, mine, nh.parse().unwrap());
            assert_eq!(got, want, "ipip {ipip:?} vxlan {vxlan:?} from {mine:?} to {nh}");
        }
    }

    #[test]
    fn cross_subnet_encapsulates_only_across_subnets() {
        let mine = Some("172.20.40.0/22");
        let (near, far) = ("172.20.42.81", "172.21.0.5");
        check(&[
            (Always, Never, mine, near, RouteEncap::Ipip),
            (CrossSubnet, Never, mine, near, RouteEncap::Direct),
            (CrossSubnet, Never, mine, far, RouteEncap::Ipip),
            (Never, Never, mine, far, RouteEncap::Direct),
            (Never, Always, mine, near, RouteEncap::Vxlan),
            (Never, CrossSubnet, mine, near, RouteEncap::Direct),
            (Never, CrossSubnet, mine, far, RouteEncap::Vxlan),
            // No subnet known: every next hop is across subnets.
            (Never, CrossSubnet, None, near, RouteEncap::Vxlan),
        ]);
    }

    #[test]
    fn ipv6_blocks_are_never_ipip() {
        let mine = Some("fd00:20::/64");
        let (near, far) = ("fd00:20::81", "fd00:21::5");
        check(&[
            (Always, Never, mine, near, RouteEncap::Direct),
            (CrossSubnet, Never, mine, far, RouteEncap::Direct),
            (Never, Always, mine, near, RouteEncap::Vxlan),
            (Never, CrossSubnet, mine, near, RouteEncap::Direct),
            (Never, CrossSubnet, mine, far, RouteEncap::Vxlan),
            // An IPv4 subnet says nothing about an IPv6 next hop.
            (
                Never,
                CrossSubnet,
                Some("172.20.40.0/22"),
                near,
                RouteEncap::Vxlan,
            ),
        ]);
    }
}
