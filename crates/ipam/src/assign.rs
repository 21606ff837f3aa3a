//! Taking addresses: [`Ipam::auto_assign`] (affine blocks first, then a new block, then —
//! unless strict affinity — borrowing from other nodes' blocks) and [`Ipam::assign_ip`].
//!
//! Order of writes for one allocation, as Calico: the handle's count goes up first, then the
//! block is written with a compare-and-swap; if that write fails the count goes back down. A
//! crash in between leaves a handle counting an address it does not have, which `ipam check`
//! reports and release by handle repairs — never an address without its handle.

use std::collections::VecDeque;
use std::net::IpAddr;

use ipnet::IpNet;

use crate::block::{AllocationBlock, BlockOps, ReleaseRequest};
use crate::cidr::{self, Family};
use crate::claim::ClaimError;
use crate::config::{DEFAULT_MAX_BLOCKS_PER_HOST, IpamConfig};
use crate::error::{IpamError, Result};
use crate::ipam::{AssignIpArgs, Assigned, Attempt, AutoAssignArgs, Ipam};
use crate::keys;
use crate::kv::{Kv, Versioned, affinities_from};
use crate::pools::{self, PoolChoice};
use crate::resources::{self, IntendedUse, NodeInfo, Pool};
use crate::search::{self, BlockSearch};
use crate::time;
use brindle_datastore::{Read, ReadResult};
use brindle_model::Kind;
use brindle_model::ipam::BlockAffinity;
use brindle_model::keys::{resource_key, resource_prefix};

/// One address taken, with what proves it (for rolling back a partial request).
#[derive(Debug, Clone)]
pub(crate) struct Taken {
    pub addr: IpAddr,
    pub block: IpNet,
    pub sequence: u64,
}

/// What one auto-assign reads before taking anything.
struct Snapshot {
    node: NodeInfo,
    pools: Vec<Pool>,
    config: IpamConfig,
    affine4: Vec<(IpNet, Versioned<BlockAffinity>)>,
    affine6: Vec<(IpNet, Versioned<BlockAffinity>)>,
}

/// Everything one family's request needs, read once.
struct Request<'a> {
    family: Family,
    args: &'a AutoAssignArgs,
    pools: PoolChoice,
    config: IpamConfig,
}

impl Ipam {
    /// Assigns `num4` IPv4 and `num6` IPv6 addresses to `hostname` (Calico's `AutoAssign`).
    /// All or nothing: if the request cannot be met in full, whatever was taken is released
    /// again and the error says which pools were tried and why they had nothing.
    pub fn auto_assign(&self, args: &AutoAssignArgs) -> Result<Assigned> {
        if args.num4 == 0 && args.num6 == 0 {
            return Err(IpamError::Invalid("auto-assign asked for no addresses".into()));
        }
        if args.hostname.is_empty() {
            return Err(IpamError::Invalid(
                "auto-assign needs the node name (hostname)".into(),
            ));
        }
        if args.intended_use == IntendedUse::LoadBalancer {
            return Err(IpamError::Invalid(
                "LoadBalancer addresses are not handed out by Brindle IPAM (no load-balancer controller)"
                    .into(),
            ));
        }
        let snap = self.read_for_assign(args)?;
        // Every family's pools are chosen before anything is taken, so a configuration error
        // for IPv6 does not cost an IPv4 allocation and its rollback.
        let mut plan = Vec::new();
        for (family, num, requested, affine) in [
            (Family::V4, args.num4, &args.ipv4_pools, snap.affine4),
            (Family::V6, args.num6, &args.ipv6_pools, snap.affine6),
        ] {
            if num > 0 {
                let choice = pools::choose(&snap.pools, family, requested, &snap.node, args.intended_use)?;
                plan.push((family, num, choice, affine));
            }
        }
        let mut out = Assigned::default();
        let mut taken: Vec<Taken> = Vec::new();
        for (family, num, choice, affine) in plan {
            let req = Request {
                family,
                args,
                pools: choice,
                config: snap.config.clone(),
            };
            if let Err(e) = self.auto_assign_family(&req, num, affine, &mut taken) {
                self.roll_back(args, &taken);
                return Err(e);
            }
        }
        for t in &taken {
            let n = IpNet::new(t.addr, t.block.prefix_len()).expect("block prefix fits the family");
            match Family::of(t.addr) {
                Family::V4 => out.ipv4.push(n),
                Family::V6 => out.ipv6.push(n),
            }
        }
        Ok(out)
    }

    /// Releases what a failed request took, proving each address by handle and sequence number
    /// so nothing another request took meanwhile is touched. Best effort: the request has
    /// already failed; a leftover would show in `ipam check`.
    fn roll_back(&self, args: &AutoAssignArgs, taken: &[Taken]) {
        if taken.is_empty() {
            return;
        }
        let reqs: Vec<ReleaseRequest> = taken
            .iter()
            .map(|t| ReleaseRequest {
                addr: t.addr,
                handle: args.handle_id.clone(),
                sequence: Some(t.sequence),
            })
            .collect();
        let _ = self.release_ips(&reqs);
    }

    /// Reads what an auto-assign needs — the Node, the pools, the IPAM configuration and the
    /// node's affinities — in one read at one revision (one round trip on etcd, one read
    /// transaction on SQLite).
    fn read_for_assign(&self, args: &AutoAssignArgs) -> Result<Snapshot> {
        let host = args.hostname.as_str();
        let mut reads = vec![
            Read::Get(resource_key(Kind::Node, "", host)),
            Read::List(resource_prefix(Kind::IPPool, None)),
            Read::Get(keys::IPAM_CONFIG_KEY.into()),
        ];
        for (num, family) in [(args.num4, Family::V4), (args.num6, Family::V6)] {
            if num > 0 {
                reads.push(Read::List(keys::affinity_prefix(host, family.version())));
            }
        }
        let mut snap = self.ds.read(&reads)?;
        let node = resources::node_from(snap.get(0))?
            .ok_or_else(|| IpamError::NodeNotFound { node: host.into() })?;
        let pools = resources::pools_from(snap.list(1));
        let config = match snap.get(2) {
            Some(kv) => crate::kv::decode_config(kv)?,
            // First use: created with the defaults.
            None => self.kv().get_or_create_config()?.value,
        };
        let mut lists = snap.results.drain(3..).map(|r| match r {
            ReadResult::List(items) => items,
            ReadResult::Get(_) => Vec::new(),
        });
        let affine4 = if args.num4 > 0 {
            affinities_from(lists.next().unwrap_or_default())?
        } else {
            Vec::new()
        };
        let affine6 = if args.num6 > 0 {
            affinities_from(lists.next().unwrap_or_default())?
        } else {
            Vec::new()
        };
        Ok(Snapshot {
            node,
            pools,
            config,
            affine4,
            affine6,
        })
    }

    fn auto_assign_family(
        &self,
        req: &Request,
        num: usize,
        listed: Vec<(IpNet, Versioned<BlockAffinity>)>,
        taken: &mut Vec<Taken>,
    ) -> Result<()> {
        let kv = self.kv();
        let args = req.args;
        let host = args.hostname.as_str();
        let family = req.family;
        let affine = self.affine_blocks(kv, host, &req.pools, listed)?;
        let limit = block_limit(args.max_blocks_per_host, req.config.max_blocks_per_host as usize);
        let start = taken.len();
        let mut held = affine.len();
        let mut remaining_affine: VecDeque<(IpNet, Versioned<BlockAffinity>)> = affine.into_iter().collect();
        while taken.len() - start < num {
            let want = num - (taken.len() - start);
            let block = match self.next_affine_block(kv, host, &mut remaining_affine)? {
                Some(b) => b,
                None if held >= limit => {
                    return Err(IpamError::BlockLimit {
                        node: host.into(),
                        held,
                        limit,
                        family: family.number(),
                    });
                }
                None if !req.config.auto_allocate_blocks => break,
                None => match self.claim_new_block(kv, host, req)? {
                    Some(b) => {
                        held += 1;
                        b
                    }
                    None => break,
                },
            };
            let got =
                self.assign_from_block(kv, block, want, args, req.config.strict_affinity.then_some(host))?;
            taken.extend(got);
        }
        if taken.len() - start < num && !req.config.strict_affinity {
            self.borrow(kv, req, num - (taken.len() - start), taken)?;
        }
        if taken.len() - start < num {
            return Err(self.exhausted(kv, req, held, limit));
        }
        Ok(())
    }

    /// The node's affine blocks in the allowed pools. Empty affine blocks in pools that no
    /// longer select the node are given up on the way (Calico's `prepareAffinityBlocksForHost`).
    fn affine_blocks(
        &self,
        kv: Kv,
        host: &str,
        pools: &PoolChoice,
        listed: Vec<(IpNet, Versioned<BlockAffinity>)>,
    ) -> Result<Vec<(IpNet, Versioned<BlockAffinity>)>> {
        let mut out = Vec::new();
        for (cidr, aff) in listed {
            if pools::containing(&pools.allowed, cidr.addr()).is_some() {
                out.push((cidr, aff));
            } else if pools::containing(&pools.selecting, cidr.addr()).is_none() {
                // In no pool that selects this node: release it if empty.
                self.release_block_affinity_retrying(kv, host, &cidr, true)?;
            }
        }
        Ok(out)
    }

    /// The next affine block with room, finishing unfinished claims on the way.
    fn next_affine_block(
        &self,
        kv: Kv,
        host: &str,
        remaining: &mut VecDeque<(IpNet, Versioned<BlockAffinity>)>,
    ) -> Result<Option<Versioned<AllocationBlock>>> {
        while let Some((cidr, listed)) = remaining.pop_front() {
            let mut aff = Some(listed);
            for _ in 0..self.retries {
                // The listed affinity is used as read; after a conflict, re-read it.
                let a = match aff.take() {
                    Some(a) => a,
                    None => match kv.get_affinity(host, &cidr)? {
                        Some(a) => a,
                        None => break,
                    },
                };
                match self.block_from_affinity(kv, host, &cidr, a) {
                    Ok(b) if b.value.num_free() > 0 => return Ok(Some(b)),
                    Ok(_) => break,
                    Err(ClaimError::Conflict) => continue,
                    Err(ClaimError::Ipam(e)) => return Err(e),
                    Err(_) => break,
                }
            }
        }
        Ok(None)
    }

    /// Finds and claims a new block (`None`: no block left to claim).
    fn claim_new_block(
        &self,
        kv: Kv,
        host: &str,
        req: &Request,
    ) -> Result<Option<Versioned<AllocationBlock>>> {
        for _ in 0..self.retries {
            let Some(cidr) = self.find_usable_block(kv, host, req.family, &req.pools.allowed)? else {
                return Ok(None);
            };
            for _ in 0..self.retries {
                let aff = match self.pending_affinity(kv, host, &cidr) {
                    Ok(a) => a,
                    Err(ClaimError::Conflict) => continue,
                    Err(ClaimError::Ipam(e)) => return Err(e),
                    Err(_) => break,
                };
                match self.block_from_affinity(kv, host, &cidr, aff) {
                    Ok(b) if b.value.num_free() > 0 => return Ok(Some(b)),
                    Ok(_) => break, // filled by another process of this node meanwhile
                    Err(ClaimError::Conflict) => continue,
                    Err(ClaimError::Ipam(e)) => return Err(e),
                    Err(_) => break, // taken by another node: look for another block
                }
            }
        }
        Err(IpamError::MaxRetries {
            what: format!("claiming a block for node {host}"),
        })
    }

    /// Takes up to `num` addresses from `block`, retrying on conflicts with fresh reads.
    /// `affine_to`: refuse unless the block is affine to this node (strict affinity).
    pub(crate) fn assign_from_block(
        &self,
        kv: Kv,
        block: Versioned<AllocationBlock>,
        num: usize,
        args: &AutoAssignArgs,
        affine_to: Option<&str>,
    ) -> Result<Vec<Taken>> {
        let cidr = block.value.cidr;
        // What the handle already counts for this attempt in this block: kept across
        // compare-and-swap retries (Calico undoes and redoes it on every conflict, two extra
        // writes each time), adjusted when a retry takes a different number, and undone when
        // the block write finally does not happen.
        let mut counted = 0u64;
        let result = self.assign_counted(kv, block, num, args, affine_to, &mut counted);
        let keep = match &result {
            Ok(got) => got.len() as u64,
            Err(_) => 0,
        };
        if let Some(h) = &args.handle_id
            && counted > keep
        {
            let _ = self.decrement_handle(kv, h, &cidr, counted - keep);
        }
        result
    }

    fn assign_counted(
        &self,
        kv: Kv,
        mut block: Versioned<AllocationBlock>,
        num: usize,
        args: &AutoAssignArgs,
        affine_to: Option<&str>,
        counted: &mut u64,
    ) -> Result<Vec<Taken>> {
        let cidr = block.value.cidr;
        for _ in 0..self.retries {
            if let Some(host) = affine_to
                && block.value.host() != Some(host)
            {
                return Ok(Vec::new());
            }
            let mut b = block.value.clone();
            let ords = b.auto_assign(num, args.handle_id.as_deref(), &args.attrs);
            if ords.is_empty() {
                return Ok(Vec::new());
            }
            let got: Vec<Taken> = ords
                .iter()
                .map(|o| Taken {
                    addr: b.addr_at(*o),
                    block: cidr,
                    sequence: b.sequence_of(*o),
                })
                .collect();
            let n = ords.len() as u64;
            if let Some(h) = &args.handle_id
                && n > *counted
            {
                self.increment_handle(kv, h, &cidr, n - *counted)?;
                *counted = n;
            }
            match kv.update_block(&mut b, block.rev) {
                Ok(_) => return Ok(got),
                Err(e) if e.is_conflict() || e.is_not_found() => match kv.get_block(&cidr)? {
                    Some(fresh) => block = fresh,
                    None => return Ok(Vec::new()),
                },
                Err(e) => return Err(e),
            }
        }
        Err(IpamError::MaxRetries {
            what: format!("assigning from block {cidr}"),
        })
    }

    /// Borrowing (strict affinity off): addresses from any existing block of the allowed
    /// pools, affine to another node or to none, visited in the node's search order.
    fn borrow(&self, kv: Kv, req: &Request, mut want: usize, taken: &mut Vec<Taken>) -> Result<()> {
        let blocks = kv.list_blocks(req.family)?;
        let now = time::unix_nanos(self.now());
        for pool in &req.pools.allowed {
            let seed = search::seed_for(&req.args.hostname, pool.block_size, req.family.bits(), now);
            let order = BlockSearch::new(pool.cidr, pool.block_size, seed);
            let mut in_pool: Vec<&Versioned<AllocationBlock>> = blocks
                .iter()
                .filter(|b| pool.cidr.contains(&b.value.cidr.addr()) && b.value.num_free() > 0)
                .collect();
            in_pool.sort_by_key(|b| {
                order.distance(
                    cidr::block_index(&pool.cidr, pool.block_size, b.value.cidr.addr()).unwrap_or(0),
                )
            });
            for b in in_pool {
                if want == 0 {
                    return Ok(());
                }
                let got = self.assign_from_block(kv, b.clone(), want, req.args, None)?;
                want -= got.len();
                taken.extend(got);
            }
        }
        Ok(())
    }

    /// Assigns one specific address (Calico's `AssignIP`), claiming its block for the node if
    /// the block does not exist yet.
    pub fn assign_ip(&self, args: &AssignIpArgs) -> Result<()> {
        let kv = self.kv();
        let host = args.hostname.as_str();
        let all_pools = resources::list_pools(&*self.ds)?;
        let pool = all_pools
            .iter()
            .find(|p| !p.disabled && p.cidr.contains(&args.ip))
            .ok_or(IpamError::NotInPool { addr: args.ip })?;
        let cidr = pool.block_for(args.ip);
        let config = kv.get_or_create_config()?.value;
        let auto = AutoAssignArgs {
            handle_id: args.handle_id.clone(),
            attrs: args.attrs.clone(),
            ..AutoAssignArgs::workload_v4(host, "")
        };
        self.retry(
            || format!("assigning {} to node {host}", args.ip),
            || {
                let block = match kv.get_block(&cidr)? {
                    Some(b) => b,
                    None => {
                        let aff = match self.pending_affinity(kv, host, &cidr) {
                            Ok(a) => a,
                            Err(ClaimError::Ipam(e)) => return Err(e),
                            Err(_) => return Ok(Attempt::Retry),
                        };
                        match self.claim_affine_block(kv, host, &cidr, &aff) {
                            Ok(b) => b,
                            Err(ClaimError::Ipam(e)) => return Err(e),
                            Err(_) => return Ok(Attempt::Retry),
                        }
                    }
                };
                if config.strict_affinity && block.value.host() != Some(host) {
                    return Err(IpamError::StrictAffinity {
                        addr: args.ip,
                        block: cidr,
                        owner: block.value.affinity_str().unwrap_or_else(|| "no node".into()),
                        node: host.into(),
                    });
                }
                let mut b = block.value.clone();
                b.assign(args.ip, auto.handle_id.as_deref(), &auto.attrs)?;
                if let Some(h) = &auto.handle_id {
                    self.increment_handle(kv, h, &cidr, 1)?;
                }
                match kv.update_block(&mut b, block.rev) {
                    Ok(_) => Ok(Attempt::Done(())),
                    Err(e) => {
                        if let Some(h) = &auto.handle_id {
                            let _ = self.decrement_handle(kv, h, &cidr, 1);
                        }
                        Err(e)
                    }
                }
            },
        )
    }

    /// The error for a request that found too few addresses, saying why for each pool.
    fn exhausted(&self, kv: Kv, req: &Request, held: usize, limit: usize) -> IpamError {
        let blocks = kv.list_blocks(req.family).unwrap_or_default();
        let reasons: Vec<String> = req
            .pools
            .allowed
            .iter()
            .map(|p| {
                crate::diagnose::why_exhausted(
                    p,
                    &blocks,
                    &req.args.hostname,
                    &req.config,
                    held,
                    limit,
                    self.now(),
                )
            })
            .collect();
        let reason = if reasons.len() == 1 {
            reasons.into_iter().next().unwrap_or_default()
        } else {
            req.pools
                .allowed
                .iter()
                .zip(reasons)
                .map(|(p, r)| format!("{}: {r}", p.cidr))
                .collect::<Vec<_>>()
                .join("; ")
        };
        IpamError::PoolsExhausted {
            pools: req.pools.allowed.iter().map(|p| p.cidr.to_string()).collect(),
            reason,
        }
    }
}

/// The per-node block limit: the stricter of the request's and the configuration's, 20 when
/// neither is set.
pub(crate) fn block_limit(requested: usize, configured: usize) -> usize {
    match (requested, configured) {
        (0, 0) => DEFAULT_MAX_BLOCKS_PER_HOST,
        (0, c) => c,
        (r, 0) => r,
        (r, c) => r.min(c),
    }
}
