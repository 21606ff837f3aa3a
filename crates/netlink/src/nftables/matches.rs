//! Matches on addresses, ports, ICMP and routes (`fib`) of a [`Rule`]: each appends the
//! expressions nft generates for it and its nft text.

use ipnet::IpNet;

use super::expr::{CmpOp, Expr, base, fib, meta, reg_for_slot};
use super::rule::{Family, Rule, Side, addr_bytes};
use super::sys::NFT_REG_1;

/// The mask of a prefix over `len` bytes.
fn prefix_mask(prefix: u8, len: usize) -> Vec<u8> {
    (0..len)
        .map(|i| {
            let bits = (prefix as usize).saturating_sub(i * 8).min(8);
            if bits == 0 { 0 } else { 0xffu8 << (8 - bits) }
        })
        .collect()
}

impl Rule {
    /// `ip saddr [!=] NET` (or `ip6 …`, `daddr`). A /0 matches the family only.
    pub fn addr(mut self, side: Side, net: &IpNet, negate: bool) -> Rule {
        let family = Family::of(&net.addr());
        let net = net.trunc();
        self.family_dep(family);
        let text = format!(
            "{} {} {}{}",
            family.nft(),
            side.addr(),
            if negate { "!= " } else { "" },
            if net.prefix_len() == net.max_prefix_len() {
                net.addr().to_string()
            } else {
                net.to_string()
            }
        );
        let prefix = net.prefix_len();
        if prefix == 0 {
            if negate {
                // Nothing of this family: an impossible match (nfproto is also not itself).
                self.load_meta(meta::NFPROTO);
                self.cmp(CmpOp::Neq, vec![family.nfproto()]);
            }
            self.push_text(&text);
            return self;
        }
        let op = if negate { CmpOp::Neq } else { CmpOp::Eq };
        let bytes = addr_bytes(&net.addr());
        let offset = family.addr_offset(side);
        if prefix.is_multiple_of(8) {
            let n = (prefix / 8) as usize;
            self.load_payload(base::NETWORK, offset, n as u32);
            self.cmp(op, bytes[..n].to_vec());
        } else {
            self.load_payload(base::NETWORK, offset, family.addr_len());
            self.exprs.push(Expr::Bitwise {
                sreg: NFT_REG_1,
                dreg: NFT_REG_1,
                mask: prefix_mask(prefix, bytes.len()),
                xor: vec![0; bytes.len()],
            });
            self.cmp(op, bytes);
        }
        self.push_text(&text);
        self
    }

    pub(super) fn lookup(&mut self, set: &str, negate: bool) {
        self.exprs.push(Expr::Lookup {
            set: set.to_string(),
            sreg: NFT_REG_1,
            dreg: None,
            invert: negate,
        });
    }

    /// `ip saddr [!=] @SET`.
    pub fn addr_in(mut self, family: Family, side: Side, set: &str, negate: bool) -> Rule {
        self.family_dep(family);
        self.load_payload(base::NETWORK, family.addr_offset(side), family.addr_len());
        self.lookup(set, negate);
        self.push_text(&format!(
            "{} {} {}@{set}",
            family.nft(),
            side.addr(),
            if negate { "!= " } else { "" }
        ));
        self
    }

    /// `th dport [!=] FIRST[-LAST]` (the protocol must be matched before).
    pub fn port(mut self, side: Side, first: u16, last: u16, negate: bool) -> Rule {
        self.load_payload(base::TRANSPORT, side.port_offset(), 2);
        let neg = if negate { "!= " } else { "" };
        if first == last {
            self.cmp(
                if negate { CmpOp::Neq } else { CmpOp::Eq },
                first.to_be_bytes().to_vec(),
            );
            self.push_text(&format!("th {} {neg}{first}", side.port()));
        } else {
            if negate {
                self.exprs.push(Expr::Range {
                    sreg: NFT_REG_1,
                    neq: true,
                    from: first.to_be_bytes().to_vec(),
                    to: last.to_be_bytes().to_vec(),
                });
            } else {
                self.cmp(CmpOp::Gte, first.to_be_bytes().to_vec());
                self.cmp(CmpOp::Lte, last.to_be_bytes().to_vec());
            }
            self.push_text(&format!("th {} {neg}{first}-{last}", side.port()));
        }
        self
    }

    /// `th dport [!=] @SET`.
    pub fn port_in(mut self, side: Side, set: &str, negate: bool) -> Rule {
        self.load_payload(base::TRANSPORT, side.port_offset(), 2);
        self.lookup(set, negate);
        self.push_text(&format!(
            "th {} {}@{set}",
            side.port(),
            if negate { "!= " } else { "" }
        ));
        self
    }

    /// `ip daddr . meta l4proto . th dport [!=] @SET`: a named-port set.
    pub fn addr_proto_port_in(mut self, family: Family, side: Side, set: &str, negate: bool) -> Rule {
        self.family_dep(family);
        let alen = family.addr_len();
        self.load_payload(base::NETWORK, family.addr_offset(side), alen);
        let slot = alen / 4;
        self.exprs.push(Expr::Meta {
            key: meta::L4PROTO,
            dreg: reg_for_slot(slot),
        });
        self.exprs.push(Expr::Payload {
            base: base::TRANSPORT,
            offset: side.port_offset(),
            len: 2,
            dreg: reg_for_slot(slot + 1),
        });
        self.lookup(set, negate);
        self.push_text(&format!(
            "{} {} . meta l4proto . th {} {}@{set}",
            family.nft(),
            side.addr(),
            side.port(),
            if negate { "!= " } else { "" }
        ));
        self
    }

    /// `icmp type T [icmp code C]` (or `icmpv6`), negated as a whole with `negate`.
    pub fn icmp(mut self, family: Family, icmp_type: u8, code: Option<u8>, negate: bool) -> Rule {
        let (proto, kw) = family.icmp();
        self.family_dep(family);
        self.load_meta(meta::L4PROTO);
        self.cmp(CmpOp::Eq, vec![proto]);
        let op = if negate { CmpOp::Neq } else { CmpOp::Eq };
        let neg = if negate { "!= " } else { "" };
        match code {
            None => {
                self.load_payload(base::TRANSPORT, 0, 1);
                self.cmp(op, vec![icmp_type]);
                self.push_text(&format!("{kw} type {neg}{icmp_type}"));
            }
            Some(c) => {
                self.load_payload(base::TRANSPORT, 0, 2);
                self.cmp(op, vec![icmp_type, c]);
                if negate {
                    // nft has no syntax for "not this type-and-code"; this is its listing.
                    self.push_text(&format!("{kw} type . {kw} code != {icmp_type} . {c}"));
                } else {
                    self.push_text(&format!("{kw} type {icmp_type} {kw} code {c}"));
                }
            }
        }
        self
    }

    /// `fib saddr . mark . iif oif 0`: strict reverse-path check (no route back out of the
    /// interface the packet came in on).
    pub fn fib_rpf_fails(mut self) -> Rule {
        self.exprs.push(Expr::Fib {
            flags: fib::SADDR | fib::MARK | fib::IIF,
            result: fib::RESULT_OIF,
            dreg: NFT_REG_1,
        });
        self.cmp(CmpOp::Eq, vec![0; 4]);
        self.push_text("fib saddr . mark . iif oif 0");
        self
    }

    /// `fib daddr type [!=] local`.
    pub fn fib_daddr_local(mut self, negate: bool) -> Rule {
        self.fib_type(fib::DADDR, "daddr", negate);
        self
    }

    /// `fib saddr type [!=] local`.
    pub fn fib_saddr_local(mut self, negate: bool) -> Rule {
        self.fib_type(fib::SADDR, "saddr", negate);
        self
    }

    /// `fib saddr . oif type [!=] local`.
    pub fn fib_saddr_oif_local(mut self, negate: bool) -> Rule {
        self.fib_type(fib::SADDR | fib::OIF, "saddr . oif", negate);
        self
    }

    fn fib_type(&mut self, flags: u32, key: &str, negate: bool) {
        const RTN_LOCAL: u32 = 2;
        self.exprs.push(Expr::Fib {
            flags,
            result: fib::RESULT_ADDRTYPE,
            dreg: NFT_REG_1,
        });
        self.cmp(
            if negate { CmpOp::Neq } else { CmpOp::Eq },
            RTN_LOCAL.to_ne_bytes().to_vec(),
        );
        self.push_text(&format!(
            "fib {key} type {}local",
            if negate { "!= " } else { "" }
        ));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefixes_load_only_what_they_compare() {
        let r = Rule::new().addr(Side::Src, &"10.0.0.0/8".parse().unwrap(), false);
        assert!(r.exprs.contains(&Expr::Payload {
            base: base::NETWORK,
            offset: 12,
            len: 1,
            dreg: 1
        }));
        let r = Rule::new().addr(Side::Dst, &"10.233.64.0/18".parse().unwrap(), true);
        assert!(r.exprs.contains(&Expr::Bitwise {
            sreg: 1,
            dreg: 1,
            mask: vec![255, 255, 192, 0],
            xor: vec![0; 4]
        }));
        assert_eq!(prefix_mask(12, 4), vec![255, 240, 0, 0]);
        assert_eq!(prefix_mask(0, 2), vec![0, 0]);
    }
}
