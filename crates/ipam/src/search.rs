//! The order in which a node looks at a pool's blocks.
//!
//! Calico starts each search at a pseudo-random block derived from the node's name (a PRNG
//! seeded with the FNV-32 hash of the hostname), then walks forward block by block, wrapping at
//! the end of the pool, until every block has been visited once. Two properties matter and are
//! kept here: nodes start at different places, so they rarely race for the same free block
//! (libcalico-go#72: a linear scan from the pool start made every node fight over block 0), and
//! one node always starts at the same place, so its blocks stay together across restarts.
//!
//! The start index is exactly Calico's: Go's `math/rand` seeded with the hash, then
//! `big.Int.Rand` over the block count ([`crate::gorand`]), so a node claims the same first block
//! under Brindle as under Calico. For /32 (/128) blocks Calico seeds with the clock instead,
//! since one-address blocks gain nothing from a stable start; callers pass that seed in (see
//! [`seed_for`]), keeping this module free of clocks.

use ipnet::IpNet;

use crate::cidr;
use crate::gorand::GoRand;

/// FNV-1 32-bit hash (Go's `hash/fnv.New32`), of a hostname.
pub fn fnv32(data: &[u8]) -> u32 {
    let mut h: u32 = 0x811c_9dc5;
    for b in data {
        h = h.wrapping_mul(0x0100_0193);
        h ^= u32::from(*b);
    }
    h
}

/// The seed of a node's block search: the FNV-32 hash of its name, except for single-address
/// blocks, where `now_nanos` is used (as Calico does) so that a node does not keep hitting the
/// same few taken blocks.
pub fn seed_for(hostname: &str, block_prefix: u8, family_bits: u8, now_nanos: u64) -> i64 {
    if block_prefix == family_bits {
        now_nanos as i64
    } else {
        i64::from(fnv32(hostname.as_bytes()))
    }
}

/// The first block index a search seeded with `seed` looks at, among `count` blocks: Calico's
/// `initialIndex.Rand(rand.New(rand.NewSource(seed)), numBlocks)`.
pub fn start_index(seed: i64, count: u128) -> u128 {
    if count == 0 {
        return 0;
    }
    GoRand::new(seed).big_rand(count)
}

/// Walks every block of a pool once, from a seeded start, wrapping at the end.
#[derive(Debug, Clone)]
pub struct BlockSearch {
    pool: IpNet,
    block_prefix: u8,
    count: u128,
    start: u128,
    visited: u128,
}

impl BlockSearch {
    pub fn new(pool: IpNet, block_prefix: u8, seed: i64) -> BlockSearch {
        let count = cidr::block_count(&pool, block_prefix);
        BlockSearch {
            pool,
            block_prefix,
            count,
            start: start_index(seed, count),
            visited: 0,
        }
    }

    /// The index the search starts at.
    pub fn start(&self) -> u128 {
        self.start
    }

    /// How far (in blocks) `index` lies after the start, in search order; used to visit a
    /// known set of blocks (e.g. the existing ones) in the same order without walking them all.
    pub fn distance(&self, index: u128) -> u128 {
        if index >= self.start {
            index - self.start
        } else {
            self.count - self.start + index
        }
    }
}

impl Iterator for BlockSearch {
    type Item = IpNet;

    fn next(&mut self) -> Option<IpNet> {
        if self.visited >= self.count {
            return None;
        }
        // start + visited < 2 * count; subtract rather than add-then-mod to stay in u128 range.
        let off = self.count - self.start;
        let index = if self.visited < off {
            self.start + self.visited
        } else {
            self.visited - off
        };
        self.visited += 1;
        Some(cidr::nth_block(&self.pool, self.block_prefix, index))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeSet;

    fn n(s: &str) -> IpNet {
        s.parse().unwrap()
    }

    #[test]
    fn fnv32_matches_go_hash_fnv_new32() {
        // Reference values of FNV-1 32 (offset basis for "", and the published test vector
        // for "a": 0x050c5d7e).
        assert_eq!(fnv32(b""), 0x811c_9dc5);
        assert_eq!(fnv32(b"a"), 0x050c_5d7e);
        assert_eq!(fnv32(b"foobar"), 0x31f0_b262);
    }

    #[test]
    fn search_visits_every_block_once_with_wrap() {
        let pool = n("10.233.64.0/18");
        let s = BlockSearch::new(pool, 24, i64::from(fnv32(b"node1")));
        let start = s.clone().next().unwrap();
        let all: Vec<IpNet> = s.collect();
        assert_eq!(all.len(), 64);
        assert_eq!(all.iter().collect::<BTreeSet<_>>().len(), 64);
        assert_eq!(all[0], start);
        // Sequential with wrap: each block follows the previous one, modulo the pool.
        for w in all.windows(2) {
            let i0 = cidr::block_index(&pool, 24, w[0].addr()).unwrap();
            let i1 = cidr::block_index(&pool, 24, w[1].addr()).unwrap();
            assert_eq!(i1, (i0 + 1) % 64);
        }
    }

    #[test]
    fn one_node_always_starts_at_the_same_block() {
        let pool = n("10.233.64.0/18");
        let a = BlockSearch::new(pool, 24, seed_for("node1", 24, 32, 1)).next();
        let b = BlockSearch::new(pool, 24, seed_for("node1", 24, 32, 999)).next();
        assert_eq!(a, b);
    }

    #[test]
    fn nodes_spread_over_the_pool() {
        let pool = n("10.233.64.0/18");
        let starts: BTreeSet<IpNet> = (0..10)
            .map(|i| {
                let seed = seed_for(&format!("node{i}"), 24, 32, 0);
                BlockSearch::new(pool, 24, seed).next().unwrap()
            })
            .collect();
        // 10 nodes over 64 blocks: a PRNG start gives (almost always) distinct starts; a
        // linear scan would give exactly one.
        assert!(starts.len() >= 8, "starts not spread: {starts:?}");
    }

    #[test]
    fn single_address_blocks_are_seeded_by_time() {
        assert_eq!(seed_for("node1", 32, 32, 42), 42);
        assert_eq!(seed_for("node1", 128, 128, 43), 43);
        assert_eq!(seed_for("node1", 26, 32, 42), i64::from(fnv32(b"node1")));
    }

    #[test]
    fn distance_orders_blocks_as_the_walk_does() {
        let pool = n("10.0.0.0/16");
        let s = BlockSearch::new(pool, 26, 7);
        let order: Vec<u128> = s
            .clone()
            .map(|b| cidr::block_index(&pool, 26, b.addr()).unwrap())
            .collect();
        for (pos, idx) in order.iter().enumerate() {
            assert_eq!(s.distance(*idx), pos as u128);
        }
        assert_eq!(s.start(), order[0]);
    }

    #[test]
    fn huge_v6_pool_search_is_lazy() {
        let pool = n("fd00::/48");
        let mut s = BlockSearch::new(pool, 122, 1);
        let first = s.next().unwrap();
        let second = s.next().unwrap();
        assert!(pool.contains(&first) && pool.contains(&second));
        assert_eq!(first.prefix_len(), 122);
    }
}
