//! Tables, chains and sets: what they are made of and how they are written to the kernel.
//! Their elements are in [`super::elements`].

use super::attr::AttrWriter;
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

#[cfg(test)]
mod tests {
    use super::*;

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
    }
}
