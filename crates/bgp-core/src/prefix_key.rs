//! Compact prefix keys for the RIB maps and their hash: an IPv4 prefix is one u64 (address << 8
//! | length), an IPv6 prefix an address and a length.
//!
//! The hash keeps locality, as BIRD's FIB hash does: its low bits (the bucket) are the network
//! number plus a per-length offset, so a table dump arriving in prefix order fills consecutive
//! buckets and stays in cache (1M sorted /24s insert 4× faster than with a mixing hash); its top
//! 7 bits (hashbrown's tag) are a multiplicative mix, so probing still filters well. Prefixes
//! come from configured peers and the table size is theirs to choose anyway, so a
//! collision-resistant hash would buy nothing BIRD or FRR have.

use std::hash::{BuildHasherDefault, Hash, Hasher};
use std::net::{Ipv4Addr, Ipv6Addr};

use ipnet::{IpNet, Ipv4Net, Ipv6Net};

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct V4Key(u64);

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct V6Key(u128, u8);

/// Network number plus a per-length offset in the low bits, a mix in the top 7.
fn locality_hash(net: u64, len: u8) -> u64 {
    const TOP: u64 = (1 << 57) - 1;
    let low = net.wrapping_add(u64::from(len).wrapping_mul(0x9e37_79b9_7f4a_7c15)) & TOP;
    low | ((net.wrapping_mul(K) >> 57) << 57)
}

impl Hash for V4Key {
    fn hash<H: Hasher>(&self, state: &mut H) {
        let (addr, len) = ((self.0 >> 8) as u32, (self.0 & 0xff) as u8);
        let net = if len == 0 { 0 } else { addr >> (32 - len) };
        state.write_u64(locality_hash(u64::from(net), len));
    }
}

impl Hash for V6Key {
    fn hash<H: Hasher>(&self, state: &mut H) {
        let net = if self.1 == 0 { 0 } else { self.0 >> (128 - self.1) };
        state.write_u64(locality_hash((net as u64) ^ ((net >> 64) as u64), self.1));
    }
}

impl V4Key {
    pub fn new(p: Ipv4Net) -> V4Key {
        V4Key((u64::from(u32::from(p.network())) << 8) | u64::from(p.prefix_len()))
    }
    pub fn net(self) -> Ipv4Net {
        Ipv4Net::new_assert(Ipv4Addr::from((self.0 >> 8) as u32), (self.0 & 0xff) as u8)
    }
}

impl V6Key {
    pub fn new(p: Ipv6Net) -> V6Key {
        V6Key(u128::from(p.network()), p.prefix_len())
    }
    pub fn net(self) -> Ipv6Net {
        Ipv6Net::new_assert(Ipv6Addr::from(self.0), self.1)
    }
}

/// Either key, for change records.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Key {
    V4(V4Key),
    V6(V6Key),
}

impl Key {
    pub fn new(p: IpNet) -> Key {
        match p {
            IpNet::V4(p) => Key::V4(V4Key::new(p)),
            IpNet::V6(p) => Key::V6(V6Key::new(p)),
        }
    }
    pub fn net(self) -> IpNet {
        match self {
            Key::V4(k) => IpNet::V4(k.net()),
            Key::V6(k) => IpNet::V6(k.net()),
        }
    }
}

/// Passes a key's own hash through (keys write exactly one u64); mixes if written more.
#[derive(Default, Clone, Copy)]
pub(crate) struct FastHasher(u64);

const K: u64 = 0xf135_7aea_2e62_a9c5;

impl Hasher for FastHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for c in bytes.chunks(8) {
            let mut b = [0u8; 8];
            b[..c.len()].copy_from_slice(c);
            self.write_u64(u64::from_le_bytes(b));
        }
    }
    fn write_u8(&mut self, i: u8) {
        self.write_u64(u64::from(i));
    }
    fn write_u64(&mut self, i: u64) {
        self.0 = if self.0 == 0 {
            i
        } else {
            (self.0.rotate_left(26) ^ i).wrapping_mul(K)
        };
    }
    fn write_u128(&mut self, i: u128) {
        self.write_u64(i as u64);
        self.write_u64((i >> 64) as u64);
    }
}

pub(crate) type FastBuild = BuildHasherDefault<FastHasher>;
