//! A node's tunnel address (calico-node's `allocate-tunnel-addrs`,
//! `node/pkg/allocateip/allocateip.go`): tunl0 and vxlan.calico get an address from the node's own
//! block, owned by the handle `ipip-tunnel-addr-<node>` / `vxlan-tunnel-addr-<node>`, and recorded
//! on the Node. Because the agent does this at startup, before any pod, it is the first allocation
//! of the node's first block: `<block>.0`.

use std::collections::BTreeMap;
use std::net::IpAddr;

use crate::block::{ReleaseRequest, attr};
use crate::cidr::Family;
use crate::error::{IpamError, Result};
use crate::ipam::{AssignIpArgs, Attempt, AutoAssignArgs, Ipam};
use crate::resources::{self, IntendedUse, NodeInfo, Pool, TunnelField};

/// Which tunnel device the address is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TunnelKind {
    /// tunl0; pools with `ipipMode` Always or CrossSubnet; `spec.bgp.ipv4IPIPTunnelAddr`.
    Ipip,
    /// vxlan.calico; pools with `vxlanMode` Always or CrossSubnet; `spec.ipv4VXLANTunnelAddr`.
    Vxlan,
    /// vxlan-v6.calico; IPv6 pools with `vxlanMode` Always or CrossSubnet;
    /// `spec.ipv6VXLANTunnelAddr`.
    VxlanV6,
}

impl TunnelKind {
    /// The handle owning a node's tunnel address.
    pub fn handle(self, node: &str) -> String {
        match self {
            TunnelKind::Ipip => format!("ipip-tunnel-addr-{node}"),
            TunnelKind::Vxlan => format!("vxlan-tunnel-addr-{node}"),
            TunnelKind::VxlanV6 => format!("vxlan-v6-tunnel-addr-{node}"),
        }
    }

    /// The allocation's `type` attribute.
    pub fn attr_type(self) -> &'static str {
        match self {
            TunnelKind::Ipip => attr::TYPE_IPIP,
            TunnelKind::Vxlan => attr::TYPE_VXLAN,
            TunnelKind::VxlanV6 => attr::TYPE_VXLAN_V6,
        }
    }

    fn field(self) -> TunnelField {
        match self {
            TunnelKind::Ipip => TunnelField::Ipip,
            TunnelKind::Vxlan => TunnelField::Vxlan,
            TunnelKind::VxlanV6 => TunnelField::VxlanV6,
        }
    }

    fn current(self, n: &NodeInfo) -> Option<IpAddr> {
        let s = match self {
            TunnelKind::Ipip => n.ipip_tunnel_addr.as_deref(),
            TunnelKind::Vxlan => n.vxlan_tunnel_addr.as_deref(),
            TunnelKind::VxlanV6 => n.vxlan_v6_tunnel_addr.as_deref(),
        }?;
        crate::cidr::parse_addr_or_cidr(s)
    }

    fn wants(self, p: &Pool) -> bool {
        match self {
            TunnelKind::Ipip => p.ipip,
            TunnelKind::Vxlan | TunnelKind::VxlanV6 => p.vxlan,
        }
    }

    /// The family of the pools the address comes from.
    fn family(self) -> Family {
        match self {
            TunnelKind::VxlanV6 => Family::V6,
            _ => Family::V4,
        }
    }
}

/// What [`Ipam::release_node`] gave back.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct NodeRelease {
    /// Addresses released: the node's pods' and its tunnel addresses.
    pub addrs: Vec<IpAddr>,
    /// Block affinities given up (empty blocks deleted, others orphaned).
    pub affinities: usize,
}

impl Ipam {
    /// The IPAM part of deleting a Node (Calico's `nodes.Delete`): releases the addresses of
    /// the node's WorkloadEndpoints and its tunnel addresses, then gives up its block
    /// affinities (Calico's `RemoveIPAMHost`). The endpoints and the Node itself are the
    /// caller's to delete. Safe to repeat.
    pub fn release_node(&self, node: &str) -> Result<NodeRelease> {
        let mut addrs: Vec<IpAddr> = resources::list_endpoints(&*self.ds)?
            .into_iter()
            .filter(|e| e.node == node)
            .flat_map(|e| e.addrs)
            .collect();
        if let Some(n) = resources::get_node(&*self.ds, node)? {
            addrs.extend(n.tunnel_addrs());
        }
        let reqs: Vec<ReleaseRequest> = addrs
            .iter()
            .map(|&addr| ReleaseRequest {
                addr,
                handle: None,
                sequence: None,
            })
            .collect();
        let out = self.release_ips(&reqs)?;
        if let Some((_, e)) = out.failed.into_iter().next() {
            return Err(e);
        }
        let mut released = out.released;
        for kind in [TunnelKind::Ipip, TunnelKind::Vxlan, TunnelKind::VxlanV6] {
            match self.release_by_handle(&kind.handle(node)) {
                Ok(a) => released.extend(a),
                Err(IpamError::UnknownHandle { .. }) => {}
                Err(e) => return Err(e),
            }
        }
        let affinities = self.release_host_affinities(node)?;
        Ok(NodeRelease {
            addrs: released,
            affinities,
        })
    }

    /// Makes sure `node` has a tunnel address of `kind` if, and only if, a pool calls for one:
    /// an enabled pool of the kind's family allowing `Tunnel`, selecting the node, with the encapsulation on.
    /// A current address that is still valid (in such a pool, held by the node's handle) is
    /// kept; otherwise a new one is assigned from the node's block and written to the Node.
    /// With no such pool, the address is released and the Node field cleared. Returns the
    /// address the node has now.
    pub fn ensure_tunnel_address(&self, node: &str, kind: TunnelKind) -> Result<Option<IpAddr>> {
        let info = resources::get_node(&*self.ds, node)?
            .ok_or_else(|| IpamError::NodeNotFound { node: node.into() })?;
        let mut eligible = Vec::new();
        for p in resources::list_pools(&*self.ds)? {
            if !p.disabled
                && p.family() == kind.family()
                && p.allows(IntendedUse::Tunnel)
                && kind.wants(&p)
                && resources::selects(&p.node_selector, &info.labels)?
            {
                eligible.push(p);
            }
        }
        let handle = kind.handle(node);
        let current = kind.current(&info);
        if eligible.is_empty() {
            self.release_handle_if_any(&handle)?;
            if current.is_some() {
                self.write_tunnel(node, kind, None)?;
            }
            return Ok(None);
        }
        let attrs: BTreeMap<String, String> = [
            (attr::NODE.to_string(), node.to_string()),
            (attr::TYPE.to_string(), kind.attr_type().to_string()),
        ]
        .into();
        if let Some(addr) = current.filter(|a| eligible.iter().any(|p| p.cidr.contains(a))) {
            match self.allocation(addr)? {
                Some(a) if a.handle.as_deref() == Some(handle.as_str()) => return Ok(Some(addr)),
                // Calico's old handle-less tunnel allocations: re-assign with the handle.
                Some(a) if a.handle.is_none() => {
                    self.release_ip(&ReleaseRequest {
                        addr,
                        handle: None,
                        sequence: Some(a.sequence),
                    })?;
                    if self.reassign(node, addr, &handle, &attrs).is_ok() {
                        return Ok(Some(addr));
                    }
                }
                // Not allocated (lost): take the same address back if it is still free.
                None if self.reassign(node, addr, &handle, &attrs).is_ok() => return Ok(Some(addr)),
                _ => {}
            }
        }
        self.release_handle_if_any(&handle)?;
        let v6 = kind.family() == Family::V6;
        let pools: Vec<_> = eligible.iter().map(|p| p.cidr).collect();
        let args = AutoAssignArgs {
            num4: usize::from(!v6),
            num6: usize::from(v6),
            handle_id: Some(handle.clone()),
            attrs,
            hostname: node.to_string(),
            ipv4_pools: if v6 { Vec::new() } else { pools.clone() },
            ipv6_pools: if v6 { pools } else { Vec::new() },
            max_blocks_per_host: 0,
            intended_use: IntendedUse::Tunnel,
        };
        let assigned = self.auto_assign(&args)?;
        let addr = if v6 {
            assigned.ipv6[0].addr()
        } else {
            assigned.ipv4[0].addr()
        };
        if let Err(e) = self.write_tunnel(node, kind, Some(addr)) {
            let _ = self.release_by_handle(&handle);
            return Err(e);
        }
        Ok(Some(addr))
    }

    fn reassign(
        &self,
        node: &str,
        addr: IpAddr,
        handle: &str,
        attrs: &BTreeMap<String, String>,
    ) -> Result<()> {
        self.assign_ip(&AssignIpArgs {
            ip: addr,
            handle_id: Some(handle.to_string()),
            attrs: attrs.clone(),
            hostname: node.to_string(),
            intended_use: IntendedUse::Tunnel,
        })
    }

    fn release_handle_if_any(&self, handle: &str) -> Result<()> {
        match self.release_by_handle(handle) {
            Ok(_) | Err(IpamError::UnknownHandle { .. }) => Ok(()),
            Err(e) => Err(e),
        }
    }

    fn write_tunnel(&self, node: &str, kind: TunnelKind, addr: Option<IpAddr>) -> Result<()> {
        self.retry(
            || format!("writing the tunnel address of node {node}"),
            || {
                Ok(
                    if resources::write_node_tunnel(&*self.ds, node, kind.field(), addr)? {
                        Attempt::Done(())
                    } else {
                        Attempt::Retry
                    },
                )
            },
        )
    }
}
