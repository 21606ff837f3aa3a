//! Address arithmetic for pools and blocks, IPv4 and IPv6 alike: a pool is cut into blocks of
//! `2^(bits - blockSize)` addresses, numbered from 0 at the pool's base; inside a block an
//! address is an *ordinal* counted from the block's base. Everything is done on `u128` so the
//! two families share one code path (a /48 IPv6 pool of /122 blocks has 2^74 blocks).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use ipnet::{IpNet, Ipv4Net, Ipv6Net};

/// The IP family of an address or network: 4 or 6, as Calico's keys spell it (`ipv4`, `ipv6`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Family {
    V4,
    V6,
}

impl Family {
    pub fn of(addr: IpAddr) -> Family {
        match addr {
            IpAddr::V4(_) => Family::V4,
            IpAddr::V6(_) => Family::V6,
        }
    }

    pub fn of_net(net: &IpNet) -> Family {
        Family::of(net.addr())
    }

    /// Address width in bits.
    pub fn bits(self) -> u8 {
        match self {
            Family::V4 => 32,
            Family::V6 => 128,
        }
    }

    /// The model's key family.
    pub fn version(self) -> brindle_model::keys::IpVersion {
        match self {
            Family::V4 => brindle_model::keys::IpVersion::V4,
            Family::V6 => brindle_model::keys::IpVersion::V6,
        }
    }

    /// 4 or 6, for keys (`/calico/ipam/v2/assignment/ipv4/...`) and messages (`IPv4`).
    pub fn number(self) -> u8 {
        match self {
            Family::V4 => 4,
            Family::V6 => 6,
        }
    }
}

/// The address as an integer (IPv4 in the low 32 bits).
pub fn to_u128(addr: IpAddr) -> u128 {
    match addr {
        IpAddr::V4(a) => u32::from(a) as u128,
        IpAddr::V6(a) => u128::from(a),
    }
}

/// The address of `family` whose integer value is `v` (truncated to 32 bits for IPv4).
pub fn from_u128(family: Family, v: u128) -> IpAddr {
    match family {
        Family::V4 => IpAddr::V4(Ipv4Addr::from(v as u32)),
        Family::V6 => IpAddr::V6(Ipv6Addr::from(v)),
    }
}

/// A network from a base address and prefix length; the base is masked.
pub fn net(addr: IpAddr, prefix: u8) -> IpNet {
    let n = match addr {
        IpAddr::V4(a) => IpNet::V4(Ipv4Net::new(a, prefix).expect("prefix <= 32")),
        IpAddr::V6(a) => IpNet::V6(Ipv6Net::new(a, prefix).expect("prefix <= 128")),
    };
    n.trunc()
}

/// Number of addresses in a network of `prefix` bits in `family`, saturating at `u128::MAX`
/// (only the whole IPv6 space overflows).
pub fn size(family: Family, prefix: u8) -> u128 {
    let host_bits = family.bits() - prefix;
    if host_bits >= 128 {
        u128::MAX
    } else {
        1u128 << host_bits
    }
}

/// Number of addresses in a block (at most 4096: block sizes are /20–/32 and /116–/128).
pub fn block_len(block: &IpNet) -> usize {
    size(Family::of_net(block), block.prefix_len()) as usize
}

/// The block of `block_prefix` bits that contains `addr`.
pub fn block_for(addr: IpAddr, block_prefix: u8) -> IpNet {
    net(addr, block_prefix)
}

/// How many blocks of `block_prefix` bits a pool holds (0 if the pool is smaller than a block).
pub fn block_count(pool: &IpNet, block_prefix: u8) -> u128 {
    if block_prefix < pool.prefix_len() {
        return 0;
    }
    let per_block_bits = block_prefix - pool.prefix_len();
    if per_block_bits >= 128 {
        u128::MAX
    } else {
        1u128 << per_block_bits
    }
}

/// The `index`-th block of `block_prefix` bits in `pool` (index < [`block_count`]).
pub fn nth_block(pool: &IpNet, block_prefix: u8, index: u128) -> IpNet {
    let fam = Family::of_net(pool);
    let step = size(fam, block_prefix);
    let base = to_u128(pool.network());
    net(from_u128(fam, base + index * step), block_prefix)
}

/// The index of the block holding `addr` in `pool`, or `None` if `addr` is not in the pool.
pub fn block_index(pool: &IpNet, block_prefix: u8, addr: IpAddr) -> Option<u128> {
    if !pool.contains(&addr) || block_prefix < pool.prefix_len() {
        return None;
    }
    let host_bits = Family::of(addr).bits() - block_prefix;
    let off = to_u128(addr) - to_u128(pool.network());
    Some(if host_bits >= 128 { 0 } else { off >> host_bits })
}

/// The ordinal of `addr` inside `block`, or `None` if it is outside.
pub fn ordinal(block: &IpNet, addr: IpAddr) -> Option<usize> {
    if !block.contains(&addr) {
        return None;
    }
    Some((to_u128(addr) - to_u128(block.network())) as usize)
}

/// The address at `ordinal` inside `block` (ordinal < [`block_len`]).
pub fn addr_at(block: &IpNet, ordinal: usize) -> IpAddr {
    let fam = Family::of_net(block);
    from_u128(fam, to_u128(block.network()) + ordinal as u128)
}

/// Parses an address written bare or in CIDR form (`10.233.94.1`, `10.233.94.1/32`), as
/// WorkloadEndpoint `ipNetworks` and Node tunnel fields hold them.
pub fn parse_addr_or_cidr(s: &str) -> Option<IpAddr> {
    let s = s.trim();
    match s.split_once('/') {
        Some((a, p)) => {
            let a: IpAddr = a.parse().ok()?;
            let p: u8 = p.parse().ok()?;
            (p <= Family::of(a).bits()).then_some(a)
        }
        None => s.parse().ok(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn n(s: &str) -> IpNet {
        s.parse().unwrap()
    }
    fn a(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn seed_pool_has_64_blocks_of_256() {
        let pool = n("10.233.64.0/18");
        assert_eq!(block_count(&pool, 24), 64);
        assert_eq!(block_len(&n("10.233.94.0/24")), 256);
        assert_eq!(nth_block(&pool, 24, 0), n("10.233.64.0/24"));
        assert_eq!(nth_block(&pool, 24, 30), n("10.233.94.0/24"));
        assert_eq!(nth_block(&pool, 24, 63), n("10.233.127.0/24"));
        assert_eq!(block_index(&pool, 24, a("10.233.94.17")), Some(30));
        assert_eq!(block_index(&pool, 24, a("10.233.128.0")), None);
    }

    #[test]
    fn ordinals_round_trip_v4_and_v6() {
        let b4 = n("10.233.94.0/24");
        assert_eq!(ordinal(&b4, a("10.233.94.0")), Some(0));
        assert_eq!(ordinal(&b4, a("10.233.94.255")), Some(255));
        assert_eq!(ordinal(&b4, a("10.233.95.0")), None);
        assert_eq!(addr_at(&b4, 1), a("10.233.94.1"));
        let b6 = n("fd00:10:233::40/122");
        assert_eq!(block_len(&b6), 64);
        assert_eq!(addr_at(&b6, 5), a("fd00:10:233::45"));
        assert_eq!(ordinal(&b6, a("fd00:10:233::7f")), Some(63));
        for o in 0..64 {
            assert_eq!(ordinal(&b6, addr_at(&b6, o)), Some(o));
        }
    }

    #[test]
    fn huge_v6_pools_count_blocks_without_overflow() {
        let pool = n("fd00::/48");
        assert_eq!(block_count(&pool, 122), 1u128 << 74);
        let last = nth_block(&pool, 122, (1u128 << 74) - 1);
        assert_eq!(last, n("fd00:0:0:ffff:ffff:ffff:ffff:ffc0/122"));
        assert_eq!(block_index(&pool, 122, last.addr()), Some((1u128 << 74) - 1));
        assert_eq!(block_count(&n("::/0"), 128), u128::MAX);
    }

    #[test]
    fn pool_smaller_than_block_has_no_blocks() {
        assert_eq!(block_count(&n("10.0.0.0/28"), 26), 0);
        assert_eq!(block_index(&n("10.0.0.0/28"), 26, a("10.0.0.1")), None);
    }

    #[test]
    fn addresses_parse_bare_or_as_cidr() {
        assert_eq!(parse_addr_or_cidr("10.233.94.1/32"), Some(a("10.233.94.1")));
        assert_eq!(parse_addr_or_cidr("10.233.94.0"), Some(a("10.233.94.0")));
        assert_eq!(parse_addr_or_cidr("fd00::1/128"), Some(a("fd00::1")));
        assert_eq!(parse_addr_or_cidr("10.0.0.1/40"), None);
        assert_eq!(parse_addr_or_cidr("x"), None);
    }
}
