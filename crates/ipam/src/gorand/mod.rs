//! Go's `math/rand` seeded source and `big.Int.Rand`, reproduced so that Brindle picks the same
//! first block for a node as Calico does.
//!
//! Calico starts a node's block search at `initialIndex.Rand(rand.New(rand.NewSource(seed)),
//! numBlocks)` with `seed` = FNV-32 of the hostname (`randomBlockGenerator` and `determineSeed`
//! in Calico's `libcalico-go/lib/ipam/ipam_block_reader_writer.go`). Reproducing that exactly
//! means a node named like one in a Calico cluster claims the same block: the seed article's
//! `bgp-master1` claims 10.233.94.0/24 of 10.233.64.0/18, as shown there.
//!
//! The generator is Go's additive lagged Fibonacci source (lags 607 and 273) whose state is seeded
//! by a Lehmer generator and XOR-ed with a fixed table ([`cooked`]).

mod cooked;

const LEN: usize = 607;
const TAP: usize = 273;
const INT32_MAX: i64 = (1 << 31) - 1;

/// Go's `rand.NewSource(seed)`: a deterministic source; equal seeds give equal sequences.
pub struct GoRand {
    vec: Box<[i64; LEN]>,
    tap: usize,
    feed: usize,
}

/// One step of the Lehmer generator (x · 48271 mod 2³¹−1, Schrage's method) Go seeds with.
fn seedrand(x: i32) -> i32 {
    const A: i32 = 48271;
    const Q: i32 = 44488;
    const R: i32 = 3399;
    let hi = x / Q;
    let lo = x % Q;
    let mut x = A.wrapping_mul(lo).wrapping_sub(R.wrapping_mul(hi));
    if x < 0 {
        x = x.wrapping_add(INT32_MAX as i32);
    }
    x
}

impl GoRand {
    /// `rand.NewSource(seed)`.
    pub fn new(seed: i64) -> GoRand {
        let mut seed = seed % INT32_MAX;
        if seed < 0 {
            seed += INT32_MAX;
        }
        if seed == 0 {
            seed = 89_482_311;
        }
        let mut x = seed as i32;
        let mut vec = Box::new([0i64; LEN]);
        for i in -20i32..LEN as i32 {
            x = seedrand(x);
            if i >= 0 {
                let mut u = i64::from(x) << 40;
                x = seedrand(x);
                u ^= i64::from(x) << 20;
                x = seedrand(x);
                u ^= i64::from(x);
                u ^= cooked::COOKED[i as usize];
                vec[i as usize] = u;
            }
        }
        GoRand {
            vec,
            tap: 0,
            feed: LEN - TAP,
        }
    }

    /// `Source64.Uint64()`.
    pub fn uint64(&mut self) -> u64 {
        self.tap = if self.tap == 0 { LEN - 1 } else { self.tap - 1 };
        self.feed = if self.feed == 0 { LEN - 1 } else { self.feed - 1 };
        let x = self.vec[self.feed].wrapping_add(self.vec[self.tap]);
        self.vec[self.feed] = x;
        x as u64
    }

    /// `Rand.Int63()`.
    pub fn int63(&mut self) -> i64 {
        (self.uint64() & (u64::MAX >> 1)) as i64
    }

    /// `Rand.Uint32()`: the top 32 of the 63 bits.
    pub fn uint32(&mut self) -> u32 {
        (self.int63() >> 31) as u32
    }

    /// `new(big.Int).Rand(rnd, limit)` on a 64-bit machine: a uniform value in `[0, limit)`,
    /// drawn word by word (low 32 bits first) with the top word masked to the limit's bit length
    /// and rejection until below the limit. `limit` must be > 0.
    pub fn big_rand(&mut self, limit: u128) -> u128 {
        assert!(limit > 0, "big_rand of an empty range");
        let bits = 128 - limit.leading_zeros();
        let words = bits.div_ceil(64);
        let msw_bits = if bits.is_multiple_of(64) { 64 } else { bits % 64 };
        let mask: u64 = if msw_bits == 64 {
            u64::MAX
        } else {
            (1u64 << msw_bits) - 1
        };
        loop {
            let mut z = [0u64; 2];
            for w in z.iter_mut().take(words as usize) {
                let lo = u64::from(self.uint32());
                let hi = u64::from(self.uint32());
                *w = lo | (hi << 32);
            }
            z[words as usize - 1] &= mask;
            let v = u128::from(z[0]) | (u128::from(z[1]) << 64);
            if v < limit {
                return v;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::search::fnv32;

    #[test]
    fn seed_one_gives_gos_well_known_first_outputs() {
        let mut r = GoRand::new(1);
        assert_eq!(r.uint64(), 5_577_006_791_947_779_410);
        assert_eq!(r.uint64(), 8_674_665_223_082_153_551);
        let mut r = GoRand::new(1);
        assert_eq!(r.int63(), 5_577_006_791_947_779_410);
    }

    fn first_block(host: &str, blocks: u128) -> u128 {
        GoRand::new(i64::from(fnv32(host.as_bytes()))).big_rand(blocks)
    }

    #[test]
    fn the_seed_articles_nodes_start_at_their_blocks() {
        // 10.233.64.0/18 cut into /24s: block i is 10.233.(64+i).0/24. The article's node
        // bgp-master1 holds 10.233.94.0/24; its peers hold 10.233.87.0/24 and 10.233.124.0/24,
        // which are the first blocks of the names bgp-node1 and bgp-node2.
        assert_eq!(first_block("bgp-master1", 64), 30);
        assert_eq!(first_block("bgp-node1", 64), 23);
        assert_eq!(first_block("bgp-node2", 64), 60);
        assert_eq!(first_block("node1", 64), 26);
    }

    #[test]
    fn big_rand_stays_below_the_limit_for_multiword_limits() {
        let mut r = GoRand::new(42);
        for limit in [1u128, 2, 3, 64, 1 << 20, (1 << 64) + 3, u128::MAX] {
            for _ in 0..50 {
                assert!(r.big_rand(limit) < limit);
            }
        }
    }
}
