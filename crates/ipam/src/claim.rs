//! Getting a block for a node: the two-phase claim (affinity *pending* → block created →
//! affinity *confirmed*), the search for a free block, reclaiming other nodes' empty blocks,
//! and giving an affinity up (Calico's `ipam_block_reader_writer.go`).
//!
//! Why two phases: the affinity is what a node lists to find its blocks, the block is what
//! holds the addresses. Writing the affinity first as *pending* means a crash between the two
//! writes leaves a claim the node will find and finish (or another node will clear), never a
//! block nobody lists. A block's `affinity` field, written with the block in one atomic create,
//! is the arbiter when two nodes race for the same block.

use std::collections::BTreeMap;
use std::time::Duration;

use ipnet::IpNet;

use crate::block::{AllocationBlock, BlockOps};
use crate::cidr::Family;
use crate::error::IpamError;
use crate::ipam::Ipam;
use crate::kv::{Kv, Versioned};
use crate::resources::Pool;
use crate::search::{self, BlockSearch};
use crate::time;
use brindle_model::ipam::{AffinityState, BlockAffinity};

/// Calico's `EmptyBlockMinReclaimAge`: an empty block claimed less than this long ago is left
/// to its node (otherwise two nodes short of blocks could steal one back and forth before
/// either used it).
pub const EMPTY_BLOCK_MIN_RECLAIM_AGE: Duration = Duration::from_secs(60);

/// Why a claim step did not produce a block.
#[derive(Debug)]
pub(crate) enum ClaimError {
    /// A compare-and-swap lost (or a key vanished): re-read and try again.
    Conflict,
    /// The block belongs to another node.
    Taken,
    /// The affinity did not match its block and was removed.
    Stale,
    /// Release refused: the block still has addresses.
    NotEmpty,
    /// Release refused: the block changed since it was looked at.
    Changed,
    Ipam(IpamError),
}

impl From<IpamError> for ClaimError {
    fn from(e: IpamError) -> Self {
        if e.is_conflict() || e.is_not_found() {
            ClaimError::Conflict
        } else {
            ClaimError::Ipam(e)
        }
    }
}

impl From<brindle_datastore::Error> for ClaimError {
    fn from(e: brindle_datastore::Error) -> Self {
        IpamError::from(e).into()
    }
}

pub(crate) type ClaimResult<T> = std::result::Result<T, ClaimError>;

/// An affinity value in `state`.
pub(crate) fn affinity(state: AffinityState) -> BlockAffinity {
    BlockAffinity {
        state,
        deleted: false,
    }
}

fn host_affinity(host: &str) -> String {
    format!("host:{host}")
}

impl Ipam {
    /// Creates a pending affinity for `host` on `cidr`, or takes the existing one (setting it
    /// back to pending unless it is already confirmed).
    pub(crate) fn pending_affinity(
        &self,
        kv: Kv,
        host: &str,
        cidr: &IpNet,
    ) -> ClaimResult<Versioned<BlockAffinity>> {
        let pending = affinity(AffinityState::Pending);
        match kv.create_affinity(host, cidr, &pending) {
            Ok(rev) => Ok(Versioned { value: pending, rev }),
            Err(e) if e.is_conflict() => {
                let Some(cur) = kv.get_affinity(host, cidr)? else {
                    return Err(ClaimError::Conflict);
                };
                if cur.value.state == AffinityState::Confirmed {
                    return Ok(cur);
                }
                let rev = kv.update_affinity(host, cidr, &pending, cur.rev)?;
                Ok(Versioned { value: pending, rev })
            }
            Err(e) => Err(e.into()),
        }
    }

    /// Marks an affinity confirmed; if that loses a race, accepts an affinity someone else
    /// (another process of the same node) confirmed meanwhile.
    fn confirm_affinity(
        &self,
        kv: Kv,
        host: &str,
        cidr: &IpNet,
        aff: &Versioned<BlockAffinity>,
    ) -> ClaimResult<()> {
        let confirmed = affinity(AffinityState::Confirmed);
        match kv.update_affinity(host, cidr, &confirmed, aff.rev) {
            Ok(_) => Ok(()),
            Err(e) => match kv.get_affinity(host, cidr)? {
                Some(cur) if cur.value.state == AffinityState::Confirmed => Ok(()),
                _ => Err(e.into()),
            },
        }
    }

    /// Phase two of a claim: creates the block (affine to `host`) for a pending affinity, then
    /// confirms the affinity. If the block exists already, it is ours only if its affinity says
    /// so; otherwise our pending affinity is removed and the block is [`ClaimError::Taken`].
    pub(crate) fn claim_affine_block(
        &self,
        kv: Kv,
        host: &str,
        cidr: &IpNet,
        aff: &Versioned<BlockAffinity>,
    ) -> ClaimResult<Versioned<AllocationBlock>> {
        let now = self.now();
        let block = AllocationBlock::new(
            *cidr,
            Some(host_affinity(host)),
            Some(time::format(now)),
            time::unix_nanos(now),
        );
        match kv.create_block(&block) {
            Ok(rev) => {
                self.confirm_affinity(kv, host, cidr, aff)?;
                Ok(Versioned { value: block, rev })
            }
            Err(e) if e.is_conflict() => {
                let Some(existing) = kv.get_block(cidr)? else {
                    return Err(ClaimError::Conflict);
                };
                if existing.value.affinity_str().as_deref() == Some(&host_affinity(host)) {
                    self.confirm_affinity(kv, host, cidr, aff)?;
                    return Ok(existing);
                }
                // Someone else's block: withdraw our claim (best effort; a leftover pending
                // affinity is cleared by the next look at it).
                let _ = kv.delete_affinity(host, cidr, aff.rev);
                Err(ClaimError::Taken)
            }
            Err(e) => Err(e.into()),
        }
    }

    /// The block an affinity of `host` refers to, finishing whatever state the claim is in:
    /// no block yet → claim it; block not ours → the affinity is stale and is removed;
    /// affinity not confirmed → pending, then a no-op write of the block (so that anyone
    /// working from an older read of it fails its compare-and-swap), then confirmed.
    pub(crate) fn block_from_affinity(
        &self,
        kv: Kv,
        host: &str,
        cidr: &IpNet,
        mut aff: Versioned<BlockAffinity>,
    ) -> ClaimResult<Versioned<AllocationBlock>> {
        let Some(mut block) = kv.get_block(cidr)? else {
            if aff.value.state != AffinityState::Pending {
                let pending = affinity(AffinityState::Pending);
                aff.rev = kv.update_affinity(host, cidr, &pending, aff.rev)?;
                aff.value = pending;
            }
            return self.claim_affine_block(kv, host, cidr, &aff);
        };
        if block.value.affinity_str().as_deref() != Some(&host_affinity(host)) {
            kv.delete_affinity(host, cidr, aff.rev)?;
            return Err(ClaimError::Stale);
        }
        if aff.value.state != AffinityState::Confirmed {
            let pending = affinity(AffinityState::Pending);
            aff.rev = kv.update_affinity(host, cidr, &pending, aff.rev)?;
            aff.value = pending;
            block.rev = kv.update_block(&mut block.value, block.rev)?;
            self.confirm_affinity(kv, host, cidr, &aff)?;
        }
        Ok(block)
    }

    /// Finds a block `host` can claim in `pools`: walking each pool from the node's seeded
    /// start, the first block that does not exist yet, or one already affine to `host` with
    /// room. Failing that, reclaims another node's empty block claimed at least
    /// [`EMPTY_BLOCK_MIN_RECLAIM_AGE`] ago. `None` when there is nothing.
    pub(crate) fn find_usable_block(
        &self,
        kv: Kv,
        host: &str,
        family: Family,
        pools: &[Pool],
    ) -> Result<Option<IpNet>, IpamError> {
        let existing: BTreeMap<IpNet, Versioned<AllocationBlock>> = kv
            .list_blocks(family)?
            .into_iter()
            .map(|b| (b.value.cidr, b))
            .collect();
        let mine = host_affinity(host);
        let now = self.now();
        let mut empty_others = Vec::new();
        for pool in pools {
            let seed = search::seed_for(host, pool.block_size, family.bits(), time::unix_nanos(now));
            for subnet in BlockSearch::new(pool.cidr, pool.block_size, seed) {
                match existing.get(&subnet) {
                    None => return Ok(Some(subnet)),
                    Some(b) if b.value.affinity_str().as_deref() == Some(&mine) && b.value.num_free() > 0 => {
                        return Ok(Some(subnet));
                    }
                    Some(b) if b.value.is_empty() && b.value.num_free() > 0 && b.value.host().is_some() => {
                        empty_others.push(b);
                    }
                    Some(_) => {}
                }
            }
        }
        for b in empty_others {
            let claimed = b
                .value
                .affinity_claim_time
                .as_deref()
                .and_then(time::parse)
                .unwrap_or(std::time::UNIX_EPOCH);
            if now.duration_since(claimed).unwrap_or_default() < EMPTY_BLOCK_MIN_RECLAIM_AGE {
                continue;
            }
            let owner = b.value.host().expect("filtered above").to_string();
            match self.release_block_affinity(kv, &owner, &b.value.cidr, true, Some(b.value.sequence_number))
            {
                Ok(()) => return Ok(Some(b.value.cidr)),
                Err(ClaimError::Ipam(e)) => return Err(e),
                Err(_) => continue,
            }
        }
        Ok(None)
    }

    /// Gives up `host`'s affinity to `cidr` (Calico's `releaseBlockAffinity`): the affinity
    /// is marked *pendingDeletion*, the block is deleted if empty or else orphaned
    /// (`affinity: null`, its addresses now borrowed from everyone's point of view), then the
    /// affinity is deleted. `require_empty` refuses a block with addresses; `required_seq`
    /// refuses a block written since it was read.
    pub(crate) fn release_block_affinity(
        &self,
        kv: Kv,
        host: &str,
        cidr: &IpNet,
        require_empty: bool,
        required_seq: Option<u64>,
    ) -> ClaimResult<()> {
        let Some(mut aff) = kv.get_affinity(host, cidr)? else {
            return Err(ClaimError::Ipam(IpamError::Invalid(format!(
                "node {host} has no affinity for block {cidr}"
            ))));
        };
        let Some(mut block) = kv.get_block(cidr)? else {
            // An affinity without a block (a claim that never finished): nothing to orphan.
            kv.delete_affinity(host, cidr, aff.rev)?;
            return Ok(());
        };
        if required_seq.is_some_and(|s| s != block.value.sequence_number) {
            return Err(ClaimError::Changed);
        }
        if block
            .value
            .affinity_str()
            .is_some_and(|a| a != host_affinity(host))
        {
            let _ = kv.delete_affinity(host, cidr, aff.rev);
            return Err(ClaimError::Taken);
        }
        if require_empty && !block.value.is_empty() {
            return Err(ClaimError::NotEmpty);
        }
        let pd = affinity(AffinityState::PendingDeletion);
        aff.rev = kv.update_affinity(host, cidr, &pd, aff.rev)?;
        if block.value.is_empty() {
            match kv.delete_block(cidr, block.rev) {
                Ok(()) => {}
                Err(e) if e.is_not_found() => {}
                Err(e) => return Err(e.into()),
            }
        } else {
            block.value.affinity = None;
            block.value.host_affinity = None;
            block.value.affinity_claim_time = None;
            kv.update_block(&mut block.value, block.rev)?;
        }
        match kv.delete_affinity(host, cidr, aff.rev) {
            Ok(()) => Ok(()),
            Err(e) if e.is_not_found() => Ok(()),
            Err(e) => Err(e.into()),
        }
    }

    /// [`Self::release_block_affinity`] in a retry loop, treating "not ours", "not empty" and
    /// "gone" as done. Returns whether the affinity was released.
    pub(crate) fn release_block_affinity_retrying(
        &self,
        kv: Kv,
        host: &str,
        cidr: &IpNet,
        require_empty: bool,
    ) -> Result<bool, IpamError> {
        for _ in 0..self.retries {
            match self.release_block_affinity(kv, host, cidr, require_empty, None) {
                Ok(()) => return Ok(true),
                Err(ClaimError::Conflict) => continue,
                Err(ClaimError::Ipam(IpamError::Invalid(_))) => return Ok(false),
                Err(ClaimError::Ipam(e)) => return Err(e),
                Err(_) => return Ok(false),
            }
        }
        Err(IpamError::MaxRetries {
            what: format!("releasing the affinity of node {host} for block {cidr}"),
        })
    }
}
