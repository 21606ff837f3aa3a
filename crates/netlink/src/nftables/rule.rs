//! Rules built from matches and statements, each rendered twice: as the expressions the kernel
//! runs and as the nft text a user reads (`nft list table` prints the same line). The text
//! names the rule in errors and lets tests and benchmarks feed the same rule set to `nft -f`.
//!
//! The expressions are those `nft` 1.0 itself generates for the text, so `nft list` shows
//! what Brindle wrote in the usual syntax.

use std::fmt::Write as _;
use std::net::IpAddr;

use super::expr::{CmpOp, Counts, Expr, ImmData, Verdict, meta};
use super::sys::{NFPROTO_IPV4, NFPROTO_IPV6, NFT_REG_1, NFT_REG_VERDICT, UDATA_RULE_COMMENT};

/// An IP family, for matches on addresses and ICMP.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Family {
    V4,
    V6,
}

impl Family {
    pub fn of(addr: &IpAddr) -> Family {
        match addr {
            IpAddr::V4(_) => Family::V4,
            IpAddr::V6(_) => Family::V6,
        }
    }

    /// `ip` or `ip6` (the nft payload protocol).
    pub fn nft(self) -> &'static str {
        match self {
            Family::V4 => "ip",
            Family::V6 => "ip6",
        }
    }

    pub(super) fn nfproto(self) -> u8 {
        match self {
            Family::V4 => NFPROTO_IPV4,
            Family::V6 => NFPROTO_IPV6,
        }
    }

    pub(super) fn addr_len(self) -> u32 {
        match self {
            Family::V4 => 4,
            Family::V6 => 16,
        }
    }

    pub(super) fn addr_offset(self, side: Side) -> u32 {
        match (self, side) {
            (Family::V4, Side::Src) => 12,
            (Family::V4, Side::Dst) => 16,
            (Family::V6, Side::Src) => 8,
            (Family::V6, Side::Dst) => 24,
        }
    }

    pub(super) fn icmp(self) -> (u8, &'static str) {
        match self {
            Family::V4 => (1, "icmp"),
            Family::V6 => (58, "icmpv6"),
        }
    }
}

/// The source or the destination of a packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Side {
    Src,
    Dst,
}

impl Side {
    pub(super) fn addr(self) -> &'static str {
        match self {
            Side::Src => "saddr",
            Side::Dst => "daddr",
        }
    }

    pub(super) fn port(self) -> &'static str {
        match self {
            Side::Src => "sport",
            Side::Dst => "dport",
        }
    }

    pub(super) fn port_offset(self) -> u32 {
        match self {
            Side::Src => 0,
            Side::Dst => 2,
        }
    }
}

/// Conntrack states (`ct state`), as the kernel's bits.
pub mod ct_state {
    pub const INVALID: u32 = 1;
    pub const ESTABLISHED: u32 = 2;
    pub const RELATED: u32 = 4;
    pub const NEW: u32 = 8;
    pub const UNTRACKED: u32 = 64;
}

/// Quotes nothing: nft 1.0 reads chain and set names as bare identifiers (letters, digits,
/// `-`, `_`, `.`, `/`); Brindle's names are made of those.
pub fn quote_name(name: &str) -> String {
    name.to_string()
}

/// One rule: its expressions, optional comment, and nft text.
#[derive(Debug, Clone, Default, Eq)]
pub struct Rule {
    pub exprs: Vec<Expr>,
    pub comment: Option<String>,
    /// The nft text (empty for a rule read back from the kernel).
    pub text: String,
    /// For an `inet` table: address and ICMP matches first check the family (`meta nfproto`),
    /// as nft does; in an `ip`/`ip6` table the table's family is the check.
    inet: bool,
}

/// Rules compare by what the kernel holds, never by their text.
impl PartialEq for Rule {
    fn eq(&self, other: &Rule) -> bool {
        self.exprs == other.exprs && self.comment == other.comment
    }
}

impl std::hash::Hash for Rule {
    fn hash<H: std::hash::Hasher>(&self, h: &mut H) {
        self.exprs.hash(h);
        self.comment.hash(h);
    }
}

fn ifname_bytes(name: &str) -> Vec<u8> {
    match name.strip_suffix('*') {
        // A wildcard compares the prefix only.
        Some(prefix) => prefix.as_bytes().to_vec(),
        None => {
            let mut b = name.as_bytes().to_vec();
            b.resize(16, 0);
            b
        }
    }
}

pub(crate) fn addr_bytes(addr: &IpAddr) -> Vec<u8> {
    match addr {
        IpAddr::V4(a) => a.octets().to_vec(),
        IpAddr::V6(a) => a.octets().to_vec(),
    }
}

impl Rule {
    /// A rule for an `ip` or `ip6` table.
    pub fn new() -> Rule {
        Rule::default()
    }

    /// A rule for an `inet` table (family checks before address and ICMP matches).
    pub fn inet() -> Rule {
        Rule {
            inet: true,
            ..Rule::default()
        }
    }

    pub(super) fn push_text(&mut self, s: &str) {
        if !self.text.is_empty() {
            self.text.push(' ');
        }
        self.text.push_str(s);
    }

    pub(super) fn load_meta(&mut self, key: u32) {
        self.exprs.push(Expr::Meta { key, dreg: NFT_REG_1 });
    }

    pub(super) fn cmp(&mut self, op: CmpOp, data: Vec<u8>) {
        self.exprs.push(Expr::Cmp {
            sreg: NFT_REG_1,
            op,
            data,
        });
    }

    pub(super) fn load_payload(&mut self, base: u32, offset: u32, len: u32) {
        self.exprs.push(Expr::Payload {
            base,
            offset,
            len,
            dreg: NFT_REG_1,
        });
    }

    pub(super) fn family_dep(&mut self, family: Family) {
        if self.inet {
            self.nfproto_check(family);
        }
    }

    fn nfproto_check(&mut self, family: Family) {
        self.load_meta(meta::NFPROTO);
        self.cmp(CmpOp::Eq, vec![family.nfproto()]);
    }

    /// `iifname "NAME"` (a trailing `*` matches a prefix).
    pub fn iifname(mut self, name: &str) -> Rule {
        self.load_meta(meta::IIFNAME);
        self.cmp(CmpOp::Eq, ifname_bytes(name));
        self.push_text(&format!("iifname \"{name}\""));
        self
    }

    /// `oifname "NAME"` (a trailing `*` matches a prefix).
    pub fn oifname(mut self, name: &str) -> Rule {
        self.load_meta(meta::OIFNAME);
        self.cmp(CmpOp::Eq, ifname_bytes(name));
        self.push_text(&format!("oifname \"{name}\""));
        self
    }

    /// `meta nfproto ipv4|ipv6`.
    pub fn nfproto(mut self, family: Family) -> Rule {
        self.nfproto_check(family);
        self.push_text(match family {
            Family::V4 => "meta nfproto ipv4",
            Family::V6 => "meta nfproto ipv6",
        });
        self
    }

    /// `meta l4proto [!=] N`.
    pub fn l4proto(mut self, proto: u8, negate: bool) -> Rule {
        self.load_meta(meta::L4PROTO);
        self.cmp(if negate { CmpOp::Neq } else { CmpOp::Eq }, vec![proto]);
        self.push_text(&format!(
            "meta l4proto {}{proto}",
            if negate { "!= " } else { "" }
        ));
        self
    }

    /// `meta l4proto @SET`.
    pub fn l4proto_in(mut self, set: &str) -> Rule {
        self.load_meta(meta::L4PROTO);
        self.lookup(set, false);
        self.push_text(&format!("meta l4proto @{set}"));
        self
    }

    /// `ct state S1,S2 …` (any of `states`, see [`ct_state`]).
    pub fn ct_state(mut self, states: u32) -> Rule {
        self.exprs.push(Expr::Ct {
            key: 0,
            dreg: NFT_REG_1,
        });
        self.exprs.push(Expr::Bitwise {
            sreg: NFT_REG_1,
            dreg: NFT_REG_1,
            mask: states.to_ne_bytes().to_vec(),
            xor: vec![0; 4],
        });
        self.cmp(CmpOp::Neq, vec![0; 4]);
        let names: Vec<&str> = [
            (ct_state::INVALID, "invalid"),
            (ct_state::ESTABLISHED, "established"),
            (ct_state::RELATED, "related"),
            (ct_state::NEW, "new"),
            (ct_state::UNTRACKED, "untracked"),
        ]
        .iter()
        .filter(|(b, _)| states & b != 0)
        .map(|(_, n)| *n)
        .collect();
        self.push_text(&format!("ct state {}", names.join(",")));
        self
    }

    /// `meta mark & MASK == VALUE`.
    pub fn mark(mut self, mask: u32, value: u32) -> Rule {
        self.load_meta(meta::MARK);
        self.exprs.push(Expr::Bitwise {
            sreg: NFT_REG_1,
            dreg: NFT_REG_1,
            mask: mask.to_ne_bytes().to_vec(),
            xor: vec![0; 4],
        });
        self.cmp(CmpOp::Eq, value.to_ne_bytes().to_vec());
        self.push_text(&format!("meta mark & 0x{mask:08x} == 0x{value:08x}"));
        self
    }

    /// `counter`.
    pub fn counter(mut self) -> Rule {
        self.exprs.push(Expr::Counter(Counts::default()));
        self.push_text("counter");
        self
    }

    /// `meta mark set meta mark | BITS`.
    pub fn set_mark_bits(mut self, bits: u32) -> Rule {
        self.mark_op(!bits, bits);
        self.push_text(&format!("meta mark set meta mark | 0x{bits:08x}"));
        self
    }

    /// `meta mark set meta mark & MASK`.
    pub fn and_mark(mut self, mask: u32) -> Rule {
        self.mark_op(mask, 0);
        self.push_text(&format!("meta mark set meta mark & 0x{mask:08x}"));
        self
    }

    fn mark_op(&mut self, mask: u32, xor: u32) {
        self.load_meta(meta::MARK);
        self.exprs.push(Expr::Bitwise {
            sreg: NFT_REG_1,
            dreg: NFT_REG_1,
            mask: mask.to_ne_bytes().to_vec(),
            xor: xor.to_ne_bytes().to_vec(),
        });
        self.exprs.push(Expr::MetaSet {
            key: meta::MARK,
            sreg: NFT_REG_1,
        });
    }

    /// `limit rate RATE/second burst BURST packets`.
    pub fn limit_per_second(mut self, rate: u64, burst: u32) -> Rule {
        self.exprs.push(Expr::Limit {
            rate,
            unit: 1,
            burst,
            bytes: false,
            invert: false,
        });
        self.push_text(&format!("limit rate {rate}/second burst {burst} packets"));
        self
    }

    /// `log prefix "PREFIX" level LEVEL` (syslog levels 0–7, 5 = notice).
    pub fn log(mut self, prefix: &str, level: u32) -> Rule {
        // The kernel keeps at most 127 bytes of prefix.
        let mut p = prefix.to_string();
        while p.len() > 127 {
            p.pop();
        }
        let p = p.replace('"', "'");
        self.exprs.push(Expr::Log {
            prefix: Some(p.clone()),
            level,
            flags: 0,
        });
        const LEVELS: [&str; 8] = ["emerg", "alert", "crit", "err", "warn", "notice", "info", "debug"];
        let lvl = LEVELS.get(level as usize).copied().unwrap_or("warn");
        self.push_text(&format!("log prefix \"{p}\" level {lvl}"));
        self
    }

    /// `masquerade`.
    pub fn masquerade(mut self) -> Rule {
        self.exprs.push(Expr::Masq { flags: 0 });
        self.push_text("masquerade");
        self
    }

    /// `iifname vmap @MAP` / `oifname vmap @MAP`.
    pub fn ifname_vmap(mut self, input: bool, map: &str) -> Rule {
        self.load_meta(if input { meta::IIFNAME } else { meta::OIFNAME });
        self.exprs.push(Expr::Lookup {
            set: map.to_string(),
            sreg: NFT_REG_1,
            dreg: Some(NFT_REG_VERDICT),
            invert: false,
        });
        self.push_text(&format!(
            "{} vmap @{map}",
            if input { "iifname" } else { "oifname" }
        ));
        self
    }

    /// Ends the rule with a verdict.
    pub fn verdict(mut self, v: Verdict) -> Rule {
        self.push_text(&v.to_nft());
        self.exprs.push(Expr::Immediate {
            dreg: NFT_REG_VERDICT,
            data: ImmData::Verdict(v),
        });
        self
    }

    pub fn accept(self) -> Rule {
        self.verdict(Verdict::Accept)
    }

    pub fn drop(self) -> Rule {
        self.verdict(Verdict::Drop)
    }

    pub fn ret(self) -> Rule {
        self.verdict(Verdict::Return)
    }

    pub fn jump(self, chain: &str) -> Rule {
        self.verdict(Verdict::Jump(chain.to_string()))
    }

    pub fn goto(self, chain: &str) -> Rule {
        self.verdict(Verdict::Goto(chain.to_string()))
    }

    /// A comment (nft's rule user data), at most 127 bytes.
    pub fn comment(mut self, c: &str) -> Rule {
        let mut c = c.replace('"', "'");
        while c.len() > 127 {
            c.pop();
        }
        let _ = write!(self.text, " comment \"{c}\"");
        self.comment = Some(c);
        self
    }

    /// The comment as nft's rule user data (`NFTNL_UDATA_RULE_COMMENT`).
    pub(crate) fn userdata(&self) -> Option<Vec<u8>> {
        self.comment.as_ref().map(|c| {
            let mut u = vec![UDATA_RULE_COMMENT, (c.len() + 1) as u8];
            u.extend_from_slice(c.as_bytes());
            u.push(0);
            u
        })
    }

    /// Reads a comment back from user data.
    pub(crate) fn comment_from_userdata(u: &[u8]) -> Option<String> {
        let mut rest = u;
        while rest.len() >= 2 {
            let (ty, len) = (rest[0], rest[1] as usize);
            let value = rest.get(2..2 + len)?;
            if ty == UDATA_RULE_COMMENT {
                let s = value.split(|c| *c == 0).next().unwrap_or_default();
                return Some(String::from_utf8_lossy(s).into_owned());
            }
            rest = &rest[2 + len..];
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_reads_like_nft() {
        let r = Rule::new()
            .iifname("cali*")
            .addr(Side::Src, &"10.233.64.0/18".parse().unwrap(), false)
            .l4proto(6, false)
            .port(Side::Dst, 80, 81, false)
            .counter()
            .set_mark_bits(0x10000)
            .ret()
            .comment("allow web");
        assert_eq!(
            r.text,
            "iifname \"cali*\" ip saddr 10.233.64.0/18 meta l4proto 6 th dport 80-81 counter meta mark set meta mark | 0x00010000 return comment \"allow web\""
        );
        let u = r.userdata().unwrap();
        assert_eq!(Rule::comment_from_userdata(&u).as_deref(), Some("allow web"));
    }
}
