//! Read-only views for `ipam show`: one address's allocation, pool and block utilization,
//! borrowed addresses.

use std::net::IpAddr;

use ipnet::IpNet;

use crate::block::{AllocationBlock, AttributeOps, BlockOps, attr};
use crate::cidr::{self, Family};
use crate::error::Result;
use crate::ipam::{Allocation, Ipam};
use crate::pools;
use crate::resources;

/// One block's numbers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BlockUsage {
    pub cidr: IpNet,
    pub capacity: u128,
    pub in_use: u128,
}

/// One pool's numbers and its blocks (Calico's `GetUtilization`). Blocks in no pool are
/// grouped under a pool with a zero-length prefix (`0.0.0.0/0`, `::/0`), whose own row
/// `ipam show` does not print.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PoolUsage {
    pub name: String,
    pub cidr: IpNet,
    pub capacity: u128,
    pub in_use: u128,
    pub blocks: Vec<BlockUsage>,
}

impl PoolUsage {
    /// True for the group of blocks that belong to no pool.
    pub fn is_orphan_group(&self) -> bool {
        self.cidr.prefix_len() == 0
    }
}

/// An address allocated by a node other than its block's (`ipam show --show-borrowed`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Borrowed {
    pub addr: IpAddr,
    pub borrowing_node: String,
    pub block: IpNet,
    pub block_owner: String,
    /// `pod`, `vmi`, or the `type` attribute (`ipipTunnelAddress`).
    pub kind: String,
    /// `namespace/pod` for pods.
    pub allocated_to: String,
}

impl Ipam {
    /// The allocation of `addr`, `None` if it is not allocated.
    pub fn allocation(&self, addr: IpAddr) -> Result<Option<Allocation>> {
        let kv = self.kv();
        let all = resources::list_pools(&*self.ds)?;
        let block = match pools::containing(&all, addr) {
            Some(p) => kv.get_block(&p.block_for(addr))?.map(|b| b.value),
            None => kv
                .list_blocks(Family::of(addr))?
                .into_iter()
                .map(|b| b.value)
                .find(|b| b.contains(addr)),
        };
        Ok(block.and_then(|b| allocation_in(&b, addr)))
    }

    /// Utilization of every pool (sorted by name), then the orphan group.
    pub fn utilization(&self) -> Result<Vec<PoolUsage>> {
        let mut out: Vec<PoolUsage> = resources::list_pools(&*self.ds)?
            .into_iter()
            .map(|p| PoolUsage {
                capacity: p.size(),
                name: p.name,
                cidr: p.cidr,
                in_use: 0,
                blocks: Vec::new(),
            })
            .collect();
        for (name, cidr) in [
            ("orphaned allocation blocks", "0.0.0.0/0"),
            ("orphaned allocation blocks", "::/0"),
        ] {
            out.push(PoolUsage {
                name: name.into(),
                cidr: cidr.parse().expect("literal"),
                capacity: 0,
                in_use: 0,
                blocks: Vec::new(),
            });
        }
        for b in self.kv().list_all_blocks()? {
            let b = b.value;
            let in_use = (b.size() - b.num_free()) as u128;
            let Some(p) = out.iter_mut().find(|p| overlaps(&p.cidr, &b.cidr)) else {
                continue;
            };
            if !p.is_orphan_group() {
                p.in_use += in_use;
            }
            p.blocks.push(BlockUsage {
                cidr: b.cidr,
                capacity: b.size() as u128,
                in_use,
            });
        }
        Ok(out)
    }

    /// Borrowed addresses, and how many allocations have no `node` attribute (so cannot be
    /// classified).
    pub fn borrowed(&self) -> Result<(Vec<Borrowed>, usize)> {
        let mut out = Vec::new();
        let mut unclassified = 0;
        for b in self.kv().list_all_blocks()? {
            let b = b.value;
            let owner = b
                .affinity_str()
                .map(|a| a.split_once(':').map(|(_, h)| h.to_string()).unwrap_or(a))
                .unwrap_or_default();
            for (_, addr, a) in b.allocated() {
                let Some(node) = a.and_then(|a| a.get(attr::NODE)) else {
                    unclassified += 1;
                    continue;
                };
                if node == owner {
                    continue;
                }
                let a = a.expect("has a node attribute");
                let ns = a.get(attr::NAMESPACE).unwrap_or_default();
                let (kind, to) = if let Some(vmi) = a.get("vmi") {
                    ("vmi".to_string(), format!("{ns}/{vmi}"))
                } else if let Some(pod) = a.get(attr::POD) {
                    ("pod".to_string(), format!("{ns}/{pod}"))
                } else {
                    (a.get(attr::TYPE).unwrap_or_default().to_string(), String::new())
                };
                out.push(Borrowed {
                    addr,
                    borrowing_node: node.to_string(),
                    block: b.cidr,
                    block_owner: owner.clone(),
                    kind,
                    allocated_to: to,
                });
            }
        }
        Ok((out, unclassified))
    }
}

fn overlaps(a: &IpNet, b: &IpNet) -> bool {
    Family::of_net(a) == Family::of_net(b) && (a.contains(&b.network()) || b.contains(&a.network()))
}

/// The allocation of `addr` in block `b`.
pub(crate) fn allocation_in(b: &AllocationBlock, addr: IpAddr) -> Option<Allocation> {
    let o = cidr::ordinal(&b.cidr, addr)?;
    let a = b.attributes_of(addr)?;
    Some(Allocation {
        addr,
        block: b.cidr,
        handle: a.handle().map(str::to_string),
        attrs: a.active_owner_attrs.clone(),
        sequence: b.sequence_of(o),
        block_owner: b.host().map(str::to_string),
    })
}
