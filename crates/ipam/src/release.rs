//! Giving addresses and blocks back: by address (with optional handle and sequence-number
//! proofs), by handle (CNI DEL), and a node's or a pool's block affinities.

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;

use ipnet::IpNet;

use crate::block::{AllocationBlock, BlockOps, ReleaseRequest};
use crate::cidr::Family;
use crate::error::{IpamError, Result};
use crate::handle::HandleOps;
use crate::ipam::{Attempt, Ipam};
use crate::kv::{Kv, Versioned};
use crate::pools;
use crate::resources::{self, Pool};

/// What [`Ipam::release_ips`] did, address by address.
#[derive(Debug, Default)]
pub struct ReleaseOutcome {
    /// Released now.
    pub released: Vec<IpAddr>,
    /// Not allocated (already free, or in no block).
    pub unallocated: Vec<IpAddr>,
    /// Refused or failed, with why (a stale sequence number, another handle, a datastore
    /// error). Other blocks' addresses are released regardless.
    pub failed: Vec<(IpAddr, IpamError)>,
}

impl Ipam {
    /// Releases addresses (Calico's `ReleaseIPs`). Each block is read and written once for all
    /// its addresses, with compare-and-swap; a block whose proofs do not hold is left as it
    /// was. A block left empty and without affinity is deleted; an empty block whose pool no
    /// longer selects its node is given up.
    pub fn release_ips(&self, reqs: &[ReleaseRequest]) -> Result<ReleaseOutcome> {
        let kv = self.kv();
        let all_pools = resources::list_pools(&*self.ds)?;
        let mut out = ReleaseOutcome::default();
        let mut by_block: BTreeMap<IpNet, Vec<ReleaseRequest>> = BTreeMap::new();
        let mut scanned: Option<Vec<IpNet>> = None;
        for r in reqs {
            let block = match pools::containing(&all_pools, r.addr) {
                Some(p) => Some(p.block_for(r.addr)),
                None => {
                    // In no pool (deleted since): find its block by scanning all blocks once.
                    if scanned.is_none() {
                        scanned = Some(kv.list_all_blocks()?.into_iter().map(|b| b.value.cidr).collect());
                    }
                    scanned
                        .as_ref()
                        .and_then(|s| s.iter().find(|c| c.contains(&r.addr)).copied())
                }
            };
            match block {
                Some(b) => by_block.entry(b).or_default().push(r.clone()),
                None => out.unallocated.push(r.addr),
            }
        }
        for (cidr, reqs) in by_block {
            match self.release_from_block(kv, &cidr, &reqs, &all_pools) {
                Ok((released, unallocated)) => {
                    out.released.extend(released);
                    out.unallocated.extend(unallocated);
                }
                Err(e) => {
                    let addr = match &e {
                        IpamError::StaleSequence { addr, .. } | IpamError::HandleMismatch { addr, .. } => {
                            *addr
                        }
                        _ => reqs[0].addr,
                    };
                    out.failed.push((addr, e));
                }
            }
        }
        Ok(out)
    }

    /// Releases one address; an error if it was not allocated or could not be released.
    pub fn release_ip(&self, req: &ReleaseRequest) -> Result<()> {
        let mut out = self.release_ips(std::slice::from_ref(req))?;
        if let Some((_, e)) = out.failed.pop() {
            return Err(e);
        }
        if !out.unallocated.is_empty() {
            return Err(IpamError::NotAssigned { addr: req.addr });
        }
        Ok(())
    }

    /// Returns (released, unallocated).
    fn release_from_block(
        &self,
        kv: Kv,
        cidr: &IpNet,
        reqs: &[ReleaseRequest],
        all_pools: &[Pool],
    ) -> Result<(Vec<IpAddr>, Vec<IpAddr>)> {
        let (block, released, unallocated, by_handle) = self.retry(
            || format!("releasing addresses in block {cidr}"),
            || {
                let Some(cur) = kv.get_block(cidr)? else {
                    return Ok(Attempt::Done((
                        None,
                        Vec::new(),
                        reqs.iter().map(|r| r.addr).collect(),
                        BTreeMap::new(),
                    )));
                };
                let mut b = cur.value.clone();
                let r = b.release(reqs)?;
                if r.count == 0 {
                    return Ok(Attempt::Done((None, Vec::new(), r.unallocated, BTreeMap::new())));
                }
                let released: Vec<IpAddr> = reqs
                    .iter()
                    .map(|q| q.addr)
                    .filter(|a| !r.unallocated.contains(a))
                    .collect::<BTreeSet<_>>()
                    .into_iter()
                    .collect();
                self.write_released_block(kv, &mut b, cur.rev)?;
                Ok(Attempt::Done((Some(b), released, r.unallocated, r.by_handle)))
            },
        )?;
        for (h, n) in &by_handle {
            let _ = self.decrement_handle(kv, h, cidr, *n as u64);
        }
        if let Some(b) = block {
            self.release_if_unselected(kv, &b, &mut Some(all_pools.to_vec()));
        }
        Ok((released, unallocated))
    }

    /// Writes a block after releases: deleted if it is now empty and affine to nobody.
    fn write_released_block(
        &self,
        kv: Kv,
        b: &mut AllocationBlock,
        rev: brindle_datastore::Revision,
    ) -> Result<()> {
        if b.is_empty() && b.affinity_str().is_none() {
            kv.delete_block(&b.cidr, rev)
        } else {
            kv.update_block(b, rev).map(|_| ())
        }
    }

    /// Calico's `ensureConsistentAffinity`, for a block just emptied: if its pool no longer
    /// selects its node, the node gives the block up. Best effort (the addresses are already
    /// released; a leftover is retried on the node's next allocation).
    /// `pools` are read only when needed (`None`: not read yet).
    fn release_if_unselected(&self, kv: Kv, b: &AllocationBlock, pools: &mut Option<Vec<Pool>>) {
        if !b.is_empty() {
            return;
        }
        let Some(host) = b.host() else { return };
        if pools.is_none() {
            match resources::list_pools(&*self.ds) {
                Ok(p) => *pools = Some(p),
                Err(_) => return,
            }
        }
        let Some(pool) = pools
            .iter()
            .flatten()
            .find(|p| !p.disabled && p.cidr.contains(&b.cidr.addr()))
        else {
            return;
        };
        let Ok(Some(node)) = resources::get_node(&*self.ds, host) else {
            return;
        };
        if resources::selects(&pool.node_selector, &node.labels).unwrap_or(true) {
            return;
        }
        let _ = self.release_block_affinity_retrying(kv, host, &b.cidr, true);
    }

    /// Releases every address of `handle` (Calico's `ReleaseByHandle`, used by CNI DEL) and
    /// deletes the handle. Returns the addresses released. [`IpamError::UnknownHandle`] if the
    /// handle does not exist (CNI DEL treats that as success).
    pub fn release_by_handle(&self, handle: &str) -> Result<Vec<IpAddr>> {
        let kv = self.kv();
        let handle = crate::block::sanitize_handle(handle);
        let Some(h) = kv.get_handle(handle)? else {
            return Err(IpamError::UnknownHandle {
                handle: handle.into(),
            });
        };
        let mut pools = None;
        let mut released = Vec::new();
        let blocks = h.value.blocks();
        for cidr in &blocks {
            let done = self.retry(
                || format!("releasing handle {handle} in block {cidr}"),
                || {
                    let Some(cur) = kv.get_block(cidr)? else {
                        return Ok(Attempt::Done(None));
                    };
                    let mut b = cur.value.clone();
                    let addrs: Vec<IpAddr> = b
                        .ordinals_of_handle(handle)
                        .into_iter()
                        .map(|o| b.addr_at(o))
                        .collect();
                    if b.release_by_handle(handle, None) == 0 {
                        return Ok(Attempt::Done(None));
                    }
                    self.write_released_block(kv, &mut b, cur.rev)?;
                    Ok(Attempt::Done(Some((b, addrs))))
                },
            )?;
            if let Some((b, addrs)) = done {
                released.extend(addrs);
                self.release_if_unselected(kv, &b, &mut pools);
            }
        }
        // Every address of the handle in these blocks is gone, whatever the counts said (a
        // crash between a handle increment and its block write leaves a count too high), so
        // the handle goes: at the revision read above if it has not changed since (the usual
        // case, one round trip), else by re-reading it.
        match kv.delete_handle(handle, h.rev) {
            Ok(()) => {}
            Err(e) if e.is_conflict() || e.is_not_found() => self.edit_handle(kv, handle, |h| {
                for c in &blocks {
                    h.forget(c);
                }
            })?,
            Err(e) => return Err(e),
        }
        Ok(released)
    }

    /// The addresses held by `handle` (Calico's `IPsByHandle`).
    pub fn addrs_by_handle(&self, handle: &str) -> Result<Vec<IpAddr>> {
        let kv = self.kv();
        let Some(h) = kv.get_handle(handle)? else {
            return Err(IpamError::UnknownHandle {
                handle: handle.into(),
            });
        };
        let mut out = Vec::new();
        for cidr in h.value.blocks() {
            if let Some(b) = kv.get_block(&cidr)? {
                out.extend(
                    b.value
                        .ordinals_of_handle(handle)
                        .into_iter()
                        .map(|o| b.value.addr_at(o)),
                );
            }
        }
        Ok(out)
    }

    /// Gives up every block affinity of `host` (a deleted node; Calico's
    /// `ReleaseHostAffinities`): empty blocks are deleted, the others are orphaned and keep
    /// their addresses. Returns how many affinities were released.
    pub fn release_host_affinities(&self, host: &str) -> Result<usize> {
        let kv = self.kv();
        let mut n = 0;
        for family in [Family::V4, Family::V6] {
            for (cidr, _) in kv.list_affinities(host, family)? {
                if self.release_block_affinity_retrying(kv, host, &cidr, false)? {
                    n += 1;
                }
            }
        }
        Ok(n)
    }

    /// Gives up every node's affinity to the blocks of `pool` (before the pool is deleted;
    /// Calico's `ReleasePoolAffinities`). Returns how many affinities were released.
    pub fn release_pool_affinities(&self, pool: &IpNet) -> Result<usize> {
        let kv = self.kv();
        let mut n = 0;
        for (host, cidr, _) in kv.list_all_affinities()? {
            if pool.contains(&cidr.addr()) && self.release_block_affinity_retrying(kv, &host, &cidr, false)? {
                n += 1;
            }
        }
        Ok(n)
    }

    /// Every block, for reports (`ipam show`, `ipam check`).
    pub fn blocks(&self) -> Result<Vec<Versioned<AllocationBlock>>> {
        self.kv().list_all_blocks()
    }
}
