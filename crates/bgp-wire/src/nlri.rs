//! Prefix encoding (RFC 4271 §4.3, RFC 4760 §5, ADD-PATH RFC 7911 §3).
//!
//! Decoding never allocates per prefix: a field is validated once by [`validate`] and then
//! walked lazily by [`NlriIter`], which yields plain values.

use std::net::{Ipv4Addr, Ipv6Addr};

use ipnet::{IpNet, Ipv4Net, Ipv6Net};

/// One NLRI entry: a prefix and its ADD-PATH path identifier (0 without ADD-PATH).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Nlri {
    pub path_id: u32,
    pub prefix: IpNet,
}

impl Nlri {
    pub fn new(prefix: IpNet) -> Nlri {
        Nlri { path_id: 0, prefix }
    }
}

impl From<IpNet> for Nlri {
    fn from(prefix: IpNet) -> Nlri {
        Nlri::new(prefix)
    }
}

/// Checks that `buf` is a whole sequence of prefixes of at most `max_bits` bits; returns how
/// many there are (`None`: malformed). Host bits beyond the length are allowed (RFC 4271 says they are irrelevant).
pub fn validate(buf: &[u8], max_bits: u8, add_path: bool) -> Option<usize> {
    let mut pos = 0;
    let mut n = 0;
    while pos < buf.len() {
        if add_path {
            pos += 4;
            if pos >= buf.len() {
                return None;
            }
        }
        let bits = buf[pos];
        if bits > max_bits {
            return None;
        }
        pos += 1 + (bits as usize).div_ceil(8);
        if pos > buf.len() {
            return None;
        }
        n += 1;
    }
    Some(n)
}

/// A lazy walk over a validated NLRI field.
#[derive(Clone, Debug)]
pub struct NlriIter<'a> {
    buf: &'a [u8],
    ipv6: bool,
    add_path: bool,
}

impl<'a> NlriIter<'a> {
    /// `buf` must have passed [`validate`] with the same `ipv6`/`add_path`; otherwise the walk
    /// stops at the first entry that does not fit.
    pub fn new(buf: &'a [u8], ipv6: bool, add_path: bool) -> NlriIter<'a> {
        NlriIter { buf, ipv6, add_path }
    }

    pub fn is_empty(&self) -> bool {
        self.buf.is_empty()
    }
}

impl Iterator for NlriIter<'_> {
    type Item = Nlri;

    #[inline]
    fn next(&mut self) -> Option<Nlri> {
        let mut b = self.buf;
        let mut path_id = 0;
        if self.add_path {
            if b.len() < 5 {
                self.buf = &[];
                return None;
            }
            path_id = u32::from_be_bytes([b[0], b[1], b[2], b[3]]);
            b = &b[4..];
        }
        let (&bits, rest) = b.split_first()?;
        let n = (bits as usize).div_ceil(8);
        if rest.len() < n || bits > if self.ipv6 { 128 } else { 32 } {
            self.buf = &[];
            return None;
        }
        let prefix = if self.ipv6 {
            let mut a = [0u8; 16];
            a[..n].copy_from_slice(&rest[..n]);
            let v = u128::from_be_bytes(a) & mask128(bits);
            IpNet::V6(Ipv6Net::new_assert(Ipv6Addr::from(v), bits))
        } else {
            let mut a = [0u8; 4];
            a[..n].copy_from_slice(&rest[..n]);
            let v = u32::from_be_bytes(a) & mask32(bits);
            IpNet::V4(Ipv4Net::new_assert(Ipv4Addr::from(v), bits))
        };
        self.buf = &rest[n..];
        Some(Nlri { path_id, prefix })
    }
}

fn mask32(bits: u8) -> u32 {
    if bits == 0 { 0 } else { u32::MAX << (32 - bits) }
}

fn mask128(bits: u8) -> u128 {
    if bits == 0 { 0 } else { u128::MAX << (128 - bits) }
}

/// The encoded size of one entry.
pub fn encoded_len(prefix: &IpNet, add_path: bool) -> usize {
    (if add_path { 4 } else { 0 }) + 1 + (prefix.prefix_len() as usize).div_ceil(8)
}

/// Appends one entry.
pub fn encode(nlri: &Nlri, add_path: bool, out: &mut Vec<u8>) {
    if add_path {
        out.extend_from_slice(&nlri.path_id.to_be_bytes());
    }
    let bits = nlri.prefix.prefix_len();
    let n = (bits as usize).div_ceil(8);
    out.push(bits);
    match nlri.prefix.trunc() {
        IpNet::V4(p) => out.extend_from_slice(&p.addr().octets()[..n]),
        IpNet::V6(p) => out.extend_from_slice(&p.addr().octets()[..n]),
    }
}
