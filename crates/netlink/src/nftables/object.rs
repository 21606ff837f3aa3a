//! Tables, chains, sets and set elements: what they are made of, how they are written to the
//! kernel, and how an element list is built from networks, ports and interface names.

use std::net::IpAddr;

use ipnet::IpNet;

use super::attr::{AttrWriter, put_data_value};
use super::expr::Verdict;
use super::rule::addr_bytes;
use super::sys::*;

/// A table family (`NFPROTO_*`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum TableFamily {
    Inet,
    Ip,
    Ip6,
    Arp,
    Bridge,
    Netdev,
}

impl TableFamily {
    pub fn code(self) -> u8 {
        match self {
            TableFamily::Inet => NFPROTO_INET,
            TableFamily::Ip => NFPROTO_IPV4,
            TableFamily::Ip6 => NFPROTO_IPV6,
            TableFamily::Arp => NFPROTO_ARP,
            TableFamily::Bridge => NFPROTO_BRIDGE,
            TableFamily::Netdev => NFPROTO_NETDEV,
        }
    }

    pub fn from_code(c: u8) -> Option<TableFamily> {
        Some(match c {
            NFPROTO_INET => TableFamily::Inet,
            NFPROTO_IPV4 => TableFamily::Ip,
            NFPROTO_IPV6 => TableFamily::Ip6,
            NFPROTO_ARP => TableFamily::Arp,
            NFPROTO_BRIDGE => TableFamily::Bridge,
            NFPROTO_NETDEV => TableFamily::Netdev,
            _ => return None,
        })
    }

    /// The nft keyword.
    pub fn name(self) -> &'static str {
        match self {
            TableFamily::Inet => "inet",
            TableFamily::Ip => "ip",
            TableFamily::Ip6 => "ip6",
            TableFamily::Arp => "arp",
            TableFamily::Bridge => "bridge",
            TableFamily::Netdev => "netdev",
        }
    }
}

impl std::fmt::Display for TableFamily {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// Netfilter hooks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum HookPoint {
    Prerouting,
    Input,
    Forward,
    Output,
    Postrouting,
}

impl HookPoint {
    pub fn code(self) -> u32 {
        self as u32
    }

    pub fn from_code(c: u32) -> Option<HookPoint> {
        Some(match c {
            0 => HookPoint::Prerouting,
            1 => HookPoint::Input,
            2 => HookPoint::Forward,
            3 => HookPoint::Output,
            4 => HookPoint::Postrouting,
            _ => return None,
        })
    }

    pub fn name(self) -> &'static str {
        match self {
            HookPoint::Prerouting => "prerouting",
            HookPoint::Input => "input",
            HookPoint::Forward => "forward",
            HookPoint::Output => "output",
            HookPoint::Postrouting => "postrouting",
        }
    }
}

/// Standard priorities (`nft(8)`: raw -300, mangle -150, dstnat -100, filter 0, srcnat 100).
pub mod priority {
    pub const RAW: i32 = -300;
    pub const MANGLE: i32 = -150;
    pub const DSTNAT: i32 = -100;
    pub const FILTER: i32 = 0;
    pub const SRCNAT: i32 = 100;
}

/// What makes a chain a base chain.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Hook {
    /// `filter`, `nat` or `route`.
    pub kind: &'static str,
    pub point: HookPoint,
    pub priority: i32,
    /// The chain's policy: accept (true) or drop.
    pub accept: bool,
}

/// A chain: regular, or a base chain with a hook.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ChainSpec {
    pub name: String,
    pub hook: Option<Hook>,
}

impl ChainSpec {
    pub fn regular(name: impl Into<String>) -> ChainSpec {
        ChainSpec {
            name: name.into(),
            hook: None,
        }
    }

    pub fn base(name: impl Into<String>, kind: &'static str, point: HookPoint, priority: i32) -> ChainSpec {
        ChainSpec {
            name: name.into(),
            hook: Some(Hook {
                kind,
                point,
                priority,
                accept: true,
            }),
        }
    }

    pub(crate) fn encode(&self, w: &mut AttrWriter<'_>) {
        w.put_str(NFTA_CHAIN_NAME, &self.name);
        if let Some(h) = &self.hook {
            w.nest(NFTA_CHAIN_HOOK, |w| {
                w.put_u32(NFTA_HOOK_HOOKNUM, h.point.code());
                w.put_u32(NFTA_HOOK_PRIORITY, h.priority as u32);
            });
            w.put_u32(NFTA_CHAIN_POLICY, if h.accept { NF_ACCEPT as u32 } else { 0 });
            w.put_str(NFTA_CHAIN_TYPE, h.kind);
        }
    }

    /// nft text of the declaration (`chain NAME { type … }`), without rules.
    pub fn to_nft(&self) -> String {
        match &self.hook {
            None => format!("chain {} {{\n", self.name),
            Some(h) => format!(
                "chain {} {{\n\t\ttype {} hook {} priority {}; policy {};\n",
                self.name,
                h.kind,
                h.point.name(),
                h.priority,
                if h.accept { "accept" } else { "drop" }
            ),
        }
    }
}

/// nft data types of set keys and data (`datatype.h` ids, lengths, byte orders).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum DataType {
    Ipv4Addr,
    Ipv6Addr,
    InetProto,
    InetService,
    Ifname,
    Mark,
}

impl DataType {
    pub fn id(self) -> u32 {
        match self {
            DataType::Ipv4Addr => 7,
            DataType::Ipv6Addr => 8,
            DataType::InetProto => 12,
            DataType::InetService => 13,
            DataType::Mark => 19,
            DataType::Ifname => 41,
        }
    }

    pub fn byte_len(self) -> u32 {
        match self {
            DataType::Ipv4Addr => 4,
            DataType::Ipv6Addr => 16,
            DataType::InetProto => 1,
            DataType::InetService => 2,
            DataType::Mark => 4,
            DataType::Ifname => 16,
        }
    }

    fn big_endian(self) -> bool {
        matches!(
            self,
            DataType::Ipv4Addr | DataType::Ipv6Addr | DataType::InetService
        )
    }

    pub fn name(self) -> &'static str {
        match self {
            DataType::Ipv4Addr => "ipv4_addr",
            DataType::Ipv6Addr => "ipv6_addr",
            DataType::InetProto => "inet_proto",
            DataType::InetService => "inet_service",
            DataType::Mark => "mark",
            DataType::Ifname => "ifname",
        }
    }
}

/// A named set or verdict map.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct SetSpec {
    pub name: String,
    /// One type, or several for a concatenation.
    pub key: Vec<DataType>,
    /// Ranges and prefixes (`flags interval`).
    pub interval: bool,
    /// A verdict map (`type KEY : verdict`).
    pub verdict_map: bool,
    pub comment: Option<String>,
}

impl SetSpec {
    pub fn new(name: impl Into<String>, key: &[DataType]) -> SetSpec {
        SetSpec {
            name: name.into(),
            key: key.to_vec(),
            interval: false,
            verdict_map: false,
            comment: None,
        }
    }

    pub fn interval(mut self) -> SetSpec {
        self.interval = true;
        self
    }

    pub fn verdict_map(mut self) -> SetSpec {
        self.verdict_map = true;
        self
    }

    pub fn with_comment(mut self, c: &str) -> SetSpec {
        let mut c = c.replace('"', "'");
        while c.len() > 127 {
            c.pop();
        }
        self.comment = Some(c);
        self
    }

    pub fn is_concat(&self) -> bool {
        self.key.len() > 1
    }

    /// `NFTA_SET_KEY_TYPE`: concatenated types are packed 6 bits each.
    pub fn key_type(&self) -> u32 {
        self.key.iter().fold(0, |acc, t| (acc << 6) | t.id())
    }

    /// `NFTA_SET_KEY_LEN`: a concatenation's fields each take whole 32-bit registers.
    pub fn key_len(&self) -> u32 {
        if self.is_concat() {
            self.key.iter().map(|t| t.byte_len().div_ceil(4) * 4).sum()
        } else {
            self.key.first().map(|t| t.byte_len()).unwrap_or(0)
        }
    }

    pub fn flags(&self) -> u32 {
        let mut f = 0;
        if self.interval {
            f |= NFT_SET_INTERVAL;
        }
        if self.verdict_map {
            f |= NFT_SET_MAP;
        }
        if self.interval && self.is_concat() {
            f |= NFT_SET_CONCAT;
        }
        f
    }

    pub(crate) fn encode(&self, w: &mut AttrWriter<'_>, id: u32) {
        w.put_str(NFTA_SET_NAME, &self.name);
        w.put_u32(NFTA_SET_FLAGS, self.flags());
        w.put_u32(NFTA_SET_KEY_TYPE, self.key_type());
        w.put_u32(NFTA_SET_KEY_LEN, self.key_len());
        if self.verdict_map {
            w.put_u32(NFTA_SET_DATA_TYPE, NFT_DATA_VERDICT);
            w.put_u32(NFTA_SET_DATA_LEN, 0);
        }
        if self.is_concat() {
            w.nest(NFTA_SET_DESC, |w| {
                w.nest(NFTA_SET_DESC_CONCAT, |w| {
                    for t in &self.key {
                        w.nest(NFTA_LIST_ELEM, |w| w.put_u32(NFTA_SET_FIELD_LEN, t.byte_len()));
                    }
                });
            });
        }
        w.put_u32(NFTA_SET_ID, id);
        w.put(NFTA_SET_USERDATA, &self.userdata());
    }

    /// nft's set user data: key byte order (how `nft list` prints keys) and the comment.
    fn userdata(&self) -> Vec<u8> {
        let mut u = Vec::new();
        let order = if self.is_concat() {
            0
        } else if self.key.first().is_some_and(|t| t.big_endian()) {
            BYTEORDER_BIG
        } else {
            BYTEORDER_HOST
        };
        u.extend_from_slice(&[UDATA_SET_KEYBYTEORDER, 4]);
        u.extend_from_slice(&order.to_ne_bytes());
        if self.verdict_map {
            u.extend_from_slice(&[UDATA_SET_DATABYTEORDER, 4]);
            u.extend_from_slice(&0u32.to_ne_bytes());
        }
        if let Some(c) = &self.comment {
            u.push(UDATA_SET_COMMENT);
            u.push((c.len() + 1) as u8);
            u.extend_from_slice(c.as_bytes());
            u.push(0);
        }
        u
    }

    /// nft text of the declaration, with `elements` (already in nft syntax) if any.
    pub fn to_nft(&self, elements: &[String]) -> String {
        let key: Vec<&str> = self.key.iter().map(|t| t.name()).collect();
        let mut s = format!(
            "{} {} {{\n\t\ttype {}{}\n",
            if self.verdict_map { "map" } else { "set" },
            self.name,
            key.join(" . "),
            if self.verdict_map { " : verdict" } else { "" }
        );
        if self.interval {
            s.push_str("\t\tflags interval\n");
        }
        if let Some(c) = &self.comment {
            s.push_str(&format!("\t\tcomment \"{c}\"\n"));
        }
        if !elements.is_empty() {
            s.push_str(&format!("\t\telements = {{ {} }}\n", elements.join(", ")));
        }
        s.push_str("\t}\n");
        s
    }
}

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
    fn set_keys_and_flags() {
        let s = SetSpec::new(
            "cali40n-x",
            &[DataType::Ipv4Addr, DataType::InetProto, DataType::InetService],
        )
        .interval();
        assert_eq!(s.key_type(), 0x730d);
        assert_eq!(s.key_len(), 12);
        assert_eq!(s.flags(), NFT_SET_INTERVAL | NFT_SET_CONCAT);
        let m = SetSpec::new("d", &[DataType::Ifname]).verdict_map();
        assert_eq!((m.key_type(), m.key_len(), m.flags()), (41, 16, NFT_SET_MAP));
        assert_eq!(
            merge_ports(&[(81, 90), (80, 80), (100, 100)]),
            [(80, 90), (100, 100)]
        );
        let e = addr_proto_port_elem(&"10.0.0.1".parse().unwrap(), 6, 80);
        assert_eq!(e.key, vec![10, 0, 0, 1, 6, 0, 0, 0, 0, 80, 0, 0]);
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
