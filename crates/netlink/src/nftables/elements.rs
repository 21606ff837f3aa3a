//! Set elements: as the kernel stores them ([`Elem`]) and as a caller thinks of them
//! ([`Elements`]: networks, port ranges, protocols, address · protocol · port triples, interface
//! → verdict), with the merging that keeps interval sets free of overlaps.

use std::net::IpAddr;

use ipnet::IpNet;

use super::attr::{AttrWriter, put_data_value};
use super::expr::Verdict;
use super::rule::addr_bytes;
use super::sys::*;

/// One set element as the kernel stores it.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Elem {
    pub key: Vec<u8>,
    /// The inclusive end of a concatenated range (`NFTA_SET_ELEM_KEY_END`).
    pub key_end: Option<Vec<u8>>,
    /// The exclusive end of a range in a non-concatenated interval set.
    pub interval_end: bool,
    pub verdict: Option<Verdict>,
}

impl Elem {
    pub fn key(key: Vec<u8>) -> Elem {
        Elem {
            key,
            key_end: None,
            interval_end: false,
            verdict: None,
        }
    }

    pub(crate) fn encode(&self, w: &mut AttrWriter<'_>) {
        w.nest(NFTA_LIST_ELEM, |w| {
            put_data_value(w, NFTA_SET_ELEM_KEY, &self.key);
            if let Some(end) = &self.key_end {
                put_data_value(w, NFTA_SET_ELEM_KEY_END, end);
            }
            if self.interval_end {
                w.put_u32(NFTA_SET_ELEM_FLAGS, NFT_SET_ELEM_INTERVAL_END);
            }
            if let Some(v) = &self.verdict {
                w.nest(NFTA_SET_ELEM_DATA, |w| v.encode(w));
            }
        });
    }

    /// Bytes this element takes in a message (for splitting long lists).
    pub(crate) fn encoded_len(&self) -> usize {
        let mut n = 4 + 8 + self.key.len().div_ceil(4) * 4;
        if let Some(e) = &self.key_end {
            n += 8 + e.len().div_ceil(4) * 4;
        }
        if self.interval_end {
            n += 8;
        }
        if let Some(v) = &self.verdict {
            n += 24
                + match v {
                    Verdict::Jump(c) | Verdict::Goto(c) => c.len() + 8,
                    _ => 0,
                };
        }
        n
    }
}

/// `ifname` key: the name, NUL-padded to 16 bytes.
pub fn ifname_key(name: &str) -> Vec<u8> {
    let mut b = name.as_bytes().to_vec();
    b.resize(16, 0);
    b
}

/// One inclusive address range per merged group of `nets` (overlapping and adjacent networks
/// merged), sorted. All of one family.
pub fn merge_nets(nets: &[IpNet]) -> Vec<(IpAddr, IpAddr)> {
    let mut v4: Vec<(u128, u128)> = Vec::new();
    let mut v6: Vec<(u128, u128)> = Vec::new();
    for n in nets {
        let n = n.trunc();
        let (lo, hi) = match (n.network(), n.broadcast()) {
            (IpAddr::V4(a), IpAddr::V4(b)) => (u32::from(a) as u128, u32::from(b) as u128),
            (IpAddr::V6(a), IpAddr::V6(b)) => (u128::from(a), u128::from(b)),
            _ => continue,
        };
        if n.addr().is_ipv4() { &mut v4 } else { &mut v6 }.push((lo, hi));
    }
    let merge = |mut v: Vec<(u128, u128)>| -> Vec<(u128, u128)> {
        v.sort();
        let mut out: Vec<(u128, u128)> = Vec::new();
        for (lo, hi) in v {
            match out.last_mut() {
                Some((_, phi)) if lo <= phi.saturating_add(1) => *phi = (*phi).max(hi),
                _ => out.push((lo, hi)),
            }
        }
        out
    };
    let mut out: Vec<(IpAddr, IpAddr)> = merge(v4)
        .into_iter()
        .map(|(a, b)| {
            (
                IpAddr::from((a as u32).to_be_bytes()),
                IpAddr::from((b as u32).to_be_bytes()),
            )
        })
        .collect();
    out.extend(
        merge(v6)
            .into_iter()
            .map(|(a, b)| (IpAddr::from(a.to_be_bytes()), IpAddr::from(b.to_be_bytes()))),
    );
    out
}

/// The elements of a non-concatenated interval set holding `[first, last]` (inclusive): a
/// start, and an end element at `last + 1` unless the range reaches the top of the space.
pub fn interval_elems(first: &[u8], last: &[u8]) -> Vec<Elem> {
    let mut out = vec![Elem::key(first.to_vec())];
    let mut end = last.to_vec();
    // end = last + 1, big-endian; no end element when it overflows.
    let mut carry = true;
    for b in end.iter_mut().rev() {
        if !carry {
            break;
        }
        let (v, c) = b.overflowing_add(1);
        *b = v;
        carry = c;
    }
    if !carry {
        out.push(Elem {
            key: end,
            key_end: None,
            interval_end: true,
            verdict: None,
        });
    }
    out
}

/// Elements of an `ipv4_addr`/`ipv6_addr` interval set holding `nets` (merged first, so they
/// never overlap, which the kernel refuses).
pub fn net_elems(nets: &[IpNet]) -> Vec<Elem> {
    merge_nets(nets)
        .iter()
        .flat_map(|(a, b)| interval_elems(&addr_bytes(a), &addr_bytes(b)))
        .collect()
}

/// nft text of merged ranges (`10.0.0.0/8`, `10.1.2.3`, `10.0.0.1-10.0.0.5`).
pub fn nets_nft(nets: &[IpNet]) -> Vec<String> {
    merge_nets(nets).iter().map(|(a, b)| range_text(*a, *b)).collect()
}

fn range_text(a: IpAddr, b: IpAddr) -> String {
    if a == b {
        return a.to_string();
    }
    let (lo, hi, bits) = match (a, b) {
        (IpAddr::V4(x), IpAddr::V4(y)) => (u32::from(x) as u128, u32::from(y) as u128, 32),
        (IpAddr::V6(x), IpAddr::V6(y)) => (u128::from(x), u128::from(y), 128),
        _ => unreachable!("same family"),
    };
    let size = hi - lo + 1;
    if size.is_power_of_two() && lo % size == 0 {
        let prefix = bits - size.trailing_zeros();
        return format!("{a}/{prefix}");
    }
    format!("{a}-{b}")
}

/// Elements of an `inet_service` interval set holding these inclusive ranges (merged).
pub fn port_elems(ranges: &[(u16, u16)]) -> Vec<Elem> {
    merge_ports(ranges)
        .iter()
        .flat_map(|(a, b)| interval_elems(&a.to_be_bytes(), &b.to_be_bytes()))
        .collect()
}

/// Sorted, merged inclusive port ranges.
pub fn merge_ports(ranges: &[(u16, u16)]) -> Vec<(u16, u16)> {
    let mut v: Vec<(u16, u16)> = ranges.iter().map(|(a, b)| (*a.min(b), *a.max(b))).collect();
    v.sort();
    let mut out: Vec<(u16, u16)> = Vec::new();
    for (lo, hi) in v {
        match out.last_mut() {
            Some((_, phi)) if u32::from(lo) <= u32::from(*phi) + 1 => *phi = (*phi).max(hi),
            _ => out.push((lo, hi)),
        }
    }
    out
}

/// The element of an `ADDR . inet_proto . inet_service` interval set for one exact triple
/// (key and inclusive end equal, as nft writes a single element).
pub fn addr_proto_port_elem(addr: &IpAddr, proto: u8, port: u16) -> Elem {
    let mut key = addr_bytes(addr);
    key.extend_from_slice(&[proto, 0, 0, 0]);
    key.extend_from_slice(&port.to_be_bytes());
    key.extend_from_slice(&[0, 0]);
    Elem {
        key: key.clone(),
        key_end: Some(key),
        interval_end: false,
        verdict: None,
    }
}

/// What a set holds, in terms a caller thinks in; rendered as kernel elements and as nft text.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Elements {
    /// Networks of one family (`ipv4_addr`/`ipv6_addr`, interval): merged, never overlapping.
    Nets(Vec<IpNet>),
    /// Inclusive port ranges (`inet_service`, interval).
    Ports(Vec<(u16, u16)>),
    /// Protocol numbers (`inet_proto`).
    Protos(Vec<u8>),
    /// Address · protocol · port triples (concatenated interval set).
    AddrProtoPorts(Vec<(IpAddr, u8, u16)>),
    /// Interface name → verdict (`ifname : verdict` map).
    IfVerdicts(Vec<(String, Verdict)>),
}

impl Elements {
    pub fn elems(&self) -> Vec<Elem> {
        match self {
            Elements::Nets(n) => net_elems(n),
            Elements::Ports(p) => port_elems(p),
            Elements::Protos(p) => {
                let mut v = p.clone();
                v.sort();
                v.dedup();
                v.into_iter().map(|p| Elem::key(vec![p])).collect()
            }
            Elements::AddrProtoPorts(t) => {
                let mut v = t.clone();
                v.sort();
                v.dedup();
                v.iter()
                    .map(|(a, p, port)| addr_proto_port_elem(a, *p, *port))
                    .collect()
            }
            Elements::IfVerdicts(m) => {
                let mut v = m.clone();
                v.sort();
                v.dedup_by(|a, b| a.0 == b.0);
                v.into_iter()
                    .map(|(name, verdict)| Elem {
                        key: ifname_key(&name),
                        key_end: None,
                        interval_end: false,
                        verdict: Some(verdict),
                    })
                    .collect()
            }
        }
    }

    /// The elements in nft syntax.
    pub fn nft(&self) -> Vec<String> {
        match self {
            Elements::Nets(n) => nets_nft(n),
            Elements::Ports(p) => merge_ports(p)
                .iter()
                .map(|(a, b)| if a == b { a.to_string() } else { format!("{a}-{b}") })
                .collect(),
            Elements::Protos(p) => {
                let mut v = p.clone();
                v.sort();
                v.dedup();
                v.iter().map(|p| p.to_string()).collect()
            }
            Elements::AddrProtoPorts(t) => {
                let mut v = t.clone();
                v.sort();
                v.dedup();
                v.iter()
                    .map(|(a, p, port)| format!("{a} . {p} . {port}"))
                    .collect()
            }
            Elements::IfVerdicts(m) => {
                let mut v = m.clone();
                v.sort();
                v.dedup_by(|a, b| a.0 == b.0);
                v.iter()
                    .map(|(n, verdict)| format!("\"{n}\" : {}", verdict.to_nft()))
                    .collect()
            }
        }
    }

    pub fn is_empty(&self) -> bool {
        match self {
            Elements::Nets(v) => v.is_empty(),
            Elements::Ports(v) => v.is_empty(),
            Elements::Protos(v) => v.is_empty(),
            Elements::AddrProtoPorts(v) => v.is_empty(),
            Elements::IfVerdicts(v) => v.is_empty(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn nets(v: &[&str]) -> Vec<IpNet> {
        v.iter().map(|s| s.parse().unwrap()).collect()
    }

    #[test]
    fn overlapping_and_adjacent_nets_merge() {
        let m = nets_nft(&nets(&[
            "10.0.0.0/8",
            "10.1.2.3/32",
            "192.168.0.0/25",
            "192.168.0.128/25",
            "172.16.0.1/32",
            "172.16.0.2/31",
        ]));
        assert_eq!(m, ["10.0.0.0/8", "172.16.0.1-172.16.0.3", "192.168.0.0/24"]);
        let e = net_elems(&nets(&["255.255.255.255/32", "0.0.0.0/8"]));
        // 0.0.0.0/8: start + end; 255.255.255.255: start only (its end would overflow).
        assert_eq!(e.len(), 3);
        assert!(e[1].interval_end && e[1].key == vec![1, 0, 0, 0]);
        assert!(!e[2].interval_end);
        assert_eq!(nets_nft(&nets(&["fd00::/64", "fd00::1/128"])), ["fd00::/64"]);
    }

    #[test]
    fn ports_and_triples() {
        assert_eq!(
            merge_ports(&[(81, 90), (80, 80), (100, 100)]),
            [(80, 90), (100, 100)]
        );
        let e = addr_proto_port_elem(&"10.0.0.1".parse().unwrap(), 6, 80);
        assert_eq!(e.key, vec![10, 0, 0, 1, 6, 0, 0, 0, 0, 80, 0, 0]);
    }
}
