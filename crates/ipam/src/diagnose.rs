//! Why a pool had no address for a node: the text of [`IpamError::PoolsExhausted`]
//! (`all 64 blocks are claimed by other nodes and strict affinity is on`), so an operator
//! knows whether to add a pool, turn borrowing on, raise the block limit or clean up leaks.
//!
//! [`IpamError::PoolsExhausted`]: crate::IpamError::PoolsExhausted

use std::time::SystemTime;

use crate::block::{AllocationBlock, BlockOps};
use crate::claim::EMPTY_BLOCK_MIN_RECLAIM_AGE;
use crate::config::IpamConfig;
use crate::kv::Versioned;
use crate::resources::Pool;

/// Go's `%.5g` for counts, as `ipam show` prints them (16384, 2.6214e+05).
pub fn format_count(n: u128) -> String {
    crate::gofmt::g5(n as f64)
}

/// Explains why `pool` had nothing for `host`.
pub fn why_exhausted(
    pool: &Pool,
    blocks: &[Versioned<AllocationBlock>],
    host: &str,
    config: &IpamConfig,
    held: usize,
    limit: usize,
    now: SystemTime,
) -> String {
    let total = pool.block_count();
    let in_pool: Vec<&AllocationBlock> = blocks
        .iter()
        .map(|b| &b.value)
        .filter(|b| pool.cidr.contains(&b.cidr.addr()))
        .collect();
    let mine = in_pool.iter().filter(|b| b.host() == Some(host)).count();
    let others = in_pool
        .iter()
        .filter(|b| b.host().is_some_and(|h| h != host))
        .count();
    let orphans = in_pool.iter().filter(|b| b.host().is_none()).count();
    let unclaimed = total.saturating_sub(in_pool.len() as u128);
    let free_borrowable: usize = in_pool
        .iter()
        .filter(|b| b.host() != Some(host))
        .map(|b| b.num_free())
        .sum();
    let young_empty = in_pool
        .iter()
        .filter(|b| b.host().is_some_and(|h| h != host) && b.is_empty())
        .filter(|b| {
            let claimed = b.affinity_claim_time.as_deref().and_then(crate::time::parse);
            claimed.is_some_and(|c| now.duration_since(c).unwrap_or_default() < EMPTY_BLOCK_MIN_RECLAIM_AGE)
        })
        .count();
    let blocks_word = |n: u128| if n == 1 { "block" } else { "blocks" };
    let mut why = if unclaimed > 0 && !config.auto_allocate_blocks {
        format!(
            "this node's {mine} {} are full and autoAllocateBlocks is off",
            blocks_word(mine as u128)
        )
    } else if unclaimed > 0 && held >= limit {
        format!("this node holds {held} blocks, the per-node limit")
    } else if config.strict_affinity && mine == 0 && orphans == 0 && total == 1 {
        "the pool's only block is claimed by another node and strict affinity is on".to_string()
    } else if config.strict_affinity && mine == 0 && orphans == 0 {
        format!(
            "all {total} {} are claimed by other nodes and strict affinity is on",
            blocks_word(total)
        )
    } else if config.strict_affinity {
        format!(
            "this node's {mine} {} are full and the other {} are claimed by other nodes or orphaned; strict affinity is on",
            blocks_word(mine as u128),
            others + orphans
        )
    } else if free_borrowable == 0 {
        format!("all {} addresses are in use", format_count(pool.size()))
    } else {
        format!(
            "{total} {}: {mine} affine to this node, {others} to other nodes, {orphans} orphaned, {unclaimed} unclaimed; {free_borrowable} addresses free in other blocks",
            blocks_word(total)
        )
    };
    if young_empty > 0 && unclaimed == 0 {
        why.push_str(&format!(
            " ({young_empty} empty {} of other nodes claimed less than 1m ago can be reclaimed later)",
            blocks_word(young_empty as u128)
        ));
    }
    why
}
