//! nf_tables expressions: the kernel's virtual-machine instructions a rule is made of (load a
//! field into a register, compare it, look it up in a set, set a verdict …). Each is encoded to
//! the attributes the kernel expects and decoded from the attributes it dumps, so a rule read
//! back from the kernel compares equal to the rule Brindle wrote (counter values aside).
//!
//! Registers are written the way the kernel dumps them (`nft_dump_register`): the first 32-bit
//! slot as `NFT_REG_1`, later slots as `NFT_REG32_xx` unless they start a 16-byte register.

use std::hash::{Hash, Hasher};

use super::attr::{Attr, AttrWriter, DResult, DecodeError, put_data_value};
use super::sys::*;

/// Where a verdict sends the packet.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Verdict {
    Accept,
    Drop,
    Continue,
    Return,
    Jump(String),
    Goto(String),
}

impl Verdict {
    pub(crate) fn encode(&self, w: &mut AttrWriter<'_>) {
        let (code, chain) = match self {
            Verdict::Accept => (NF_ACCEPT, None),
            Verdict::Drop => (NF_DROP, None),
            Verdict::Continue => (NFT_CONTINUE, None),
            Verdict::Return => (NFT_RETURN, None),
            Verdict::Jump(c) => (NFT_JUMP, Some(c)),
            Verdict::Goto(c) => (NFT_GOTO, Some(c)),
        };
        w.nest(NFTA_DATA_VERDICT, |w| {
            w.put_u32(NFTA_VERDICT_CODE, code as u32);
            if let Some(c) = chain {
                w.put_str(NFTA_VERDICT_CHAIN, c);
            }
        });
    }

    /// From an `NFTA_DATA_VERDICT` nest.
    pub(crate) fn decode(a: &Attr<'_>) -> DResult<Verdict> {
        let mut code = None;
        let mut chain = None;
        for x in a.nested() {
            let x = x?;
            match x.ty {
                NFTA_VERDICT_CODE => code = Some(x.i32()?),
                NFTA_VERDICT_CHAIN => chain = Some(x.string()),
                _ => {}
            }
        }
        let need_chain = |c: Option<String>| c.ok_or_else(|| DecodeError("jump without a chain".into()));
        Ok(
            match code.ok_or_else(|| DecodeError("verdict without a code".into()))? {
                NF_ACCEPT => Verdict::Accept,
                NF_DROP => Verdict::Drop,
                NFT_CONTINUE => Verdict::Continue,
                NFT_RETURN => Verdict::Return,
                NFT_JUMP => Verdict::Jump(need_chain(chain)?),
                NFT_GOTO => Verdict::Goto(need_chain(chain)?),
                other => return Err(DecodeError(format!("unknown verdict code {other}"))),
            },
        )
    }

    /// The nft keyword (`accept`, `jump filter-cali-pi-…`).
    pub fn to_nft(&self) -> String {
        match self {
            Verdict::Accept => "accept".into(),
            Verdict::Drop => "drop".into(),
            Verdict::Continue => "continue".into(),
            Verdict::Return => "return".into(),
            Verdict::Jump(c) => format!("jump {}", super::rule::quote_name(c)),
            Verdict::Goto(c) => format!("goto {}", super::rule::quote_name(c)),
        }
    }
}

/// `enum nft_cmp_ops`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CmpOp {
    Eq,
    Neq,
    Lt,
    Lte,
    Gt,
    Gte,
}

impl CmpOp {
    fn code(self) -> u32 {
        self as u32
    }

    pub(super) fn from_code(c: u32) -> DResult<CmpOp> {
        Ok(match c {
            0 => CmpOp::Eq,
            1 => CmpOp::Neq,
            2 => CmpOp::Lt,
            3 => CmpOp::Lte,
            4 => CmpOp::Gt,
            5 => CmpOp::Gte,
            _ => return Err(DecodeError(format!("unknown cmp op {c}"))),
        })
    }
}

/// Counter values: carried for reading, ignored by equality (a rule is the same rule whatever
/// it has counted).
#[derive(Debug, Clone, Copy, Default)]
pub struct Counts {
    pub packets: u64,
    pub bytes: u64,
}

impl PartialEq for Counts {
    fn eq(&self, _: &Counts) -> bool {
        true
    }
}

impl Eq for Counts {}

impl Hash for Counts {
    fn hash<H: Hasher>(&self, _: &mut H) {}
}

/// The data an immediate puts in a register.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum ImmData {
    Verdict(Verdict),
    Value(Vec<u8>),
}

/// Meta keys used here (`enum nft_meta_keys`).
pub mod meta {
    pub const PROTOCOL: u32 = 1;
    pub const MARK: u32 = 3;
    pub const IIF: u32 = 4;
    pub const OIF: u32 = 5;
    pub const IIFNAME: u32 = 6;
    pub const OIFNAME: u32 = 7;
    pub const NFPROTO: u32 = 15;
    pub const L4PROTO: u32 = 16;
}

/// Payload bases (`enum nft_payload_bases`).
pub mod base {
    pub const LL: u32 = 0;
    pub const NETWORK: u32 = 1;
    pub const TRANSPORT: u32 = 2;
}

/// `fib` flags and results.
pub mod fib {
    pub const SADDR: u32 = 1;
    pub const DADDR: u32 = 2;
    pub const MARK: u32 = 4;
    pub const IIF: u32 = 8;
    pub const OIF: u32 = 16;
    pub const RESULT_OIF: u32 = 1;
    pub const RESULT_OIFNAME: u32 = 2;
    pub const RESULT_ADDRTYPE: u32 = 3;
}

/// One expression.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Expr {
    /// Load a meta key (`meta mark`, `iifname`, `meta l4proto` …).
    Meta {
        key: u32,
        dreg: u32,
    },
    /// Set a meta key from a register (`meta mark set …`).
    MetaSet {
        key: u32,
        sreg: u32,
    },
    /// Load `len` bytes at `offset` of a header.
    Payload {
        base: u32,
        offset: u32,
        len: u32,
        dreg: u32,
    },
    Cmp {
        sreg: u32,
        op: CmpOp,
        data: Vec<u8>,
    },
    /// `dreg = (sreg & mask) ^ xor`, over `mask.len()` bytes.
    Bitwise {
        sreg: u32,
        dreg: u32,
        mask: Vec<u8>,
        xor: Vec<u8>,
    },
    /// `from <= reg <= to` (or not, with `neq`), big-endian comparison.
    Range {
        sreg: u32,
        neq: bool,
        from: Vec<u8>,
        to: Vec<u8>,
    },
    /// Load a conntrack key (`ct state`).
    Ct {
        key: u32,
        dreg: u32,
    },
    /// Look the register up in a named set (or map, with `dreg`).
    Lookup {
        set: String,
        sreg: u32,
        dreg: Option<u32>,
        invert: bool,
    },
    Immediate {
        dreg: u32,
        data: ImmData,
    },
    Counter(Counts),
    /// Log to the kernel log (`log prefix "…" level …`).
    Log {
        prefix: Option<String>,
        level: u32,
        flags: u32,
    },
    /// `limit rate RATE/UNIT burst BURST packets|bytes`; `unit` in seconds.
    Limit {
        rate: u64,
        unit: u64,
        burst: u32,
        bytes: bool,
        invert: bool,
    },
    Fib {
        flags: u32,
        result: u32,
        dreg: u32,
    },
    Masq {
        flags: u32,
    },
    /// Anything else the kernel holds (a rule somebody else wrote); never equal to ours.
    Other {
        name: String,
        data: Vec<u8>,
    },
}

/// The register the kernel dumps for 32-bit slot `slot` of the register file (slot 0 is the
/// start of `NFT_REG_1`).
pub fn reg_for_slot(slot: u32) -> u32 {
    let internal = 4 + slot;
    if internal.is_multiple_of(4) {
        internal / 4
    } else {
        internal - 4 + NFT_REG32_00
    }
}

impl Expr {
    /// The kernel's expression name.
    pub fn name(&self) -> &str {
        match self {
            Expr::Meta { .. } | Expr::MetaSet { .. } => "meta",
            Expr::Payload { .. } => "payload",
            Expr::Cmp { .. } => "cmp",
            Expr::Bitwise { .. } => "bitwise",
            Expr::Range { .. } => "range",
            Expr::Ct { .. } => "ct",
            Expr::Lookup { .. } => "lookup",
            Expr::Immediate { .. } => "immediate",
            Expr::Counter(_) => "counter",
            Expr::Log { .. } => "log",
            Expr::Limit { .. } => "limit",
            Expr::Fib { .. } => "fib",
            Expr::Masq { .. } => "masq",
            Expr::Other { name, .. } => name,
        }
    }

    /// Appends this expression as one `NFTA_LIST_ELEM` of a rule's expression list.
    pub fn encode(&self, w: &mut AttrWriter<'_>) {
        w.nest(NFTA_LIST_ELEM, |w| {
            w.put_str(NFTA_EXPR_NAME, self.name());
            if let Expr::Other { data, .. } = self {
                w.put(NFTA_EXPR_DATA | NLA_F_NESTED, data);
                return;
            }
            w.nest(NFTA_EXPR_DATA, |w| self.encode_data(w));
        });
    }

    fn encode_data(&self, w: &mut AttrWriter<'_>) {
        match self {
            Expr::Meta { key, dreg } => {
                w.put_u32(NFTA_META_KEY, *key);
                w.put_u32(NFTA_META_DREG, *dreg);
            }
            Expr::MetaSet { key, sreg } => {
                w.put_u32(NFTA_META_KEY, *key);
                w.put_u32(NFTA_META_SREG, *sreg);
            }
            Expr::Payload {
                base,
                offset,
                len,
                dreg,
            } => {
                w.put_u32(NFTA_PAYLOAD_DREG, *dreg);
                w.put_u32(NFTA_PAYLOAD_BASE, *base);
                w.put_u32(NFTA_PAYLOAD_OFFSET, *offset);
                w.put_u32(NFTA_PAYLOAD_LEN, *len);
            }
            Expr::Cmp { sreg, op, data } => {
                w.put_u32(NFTA_CMP_SREG, *sreg);
                w.put_u32(NFTA_CMP_OP, op.code());
                put_data_value(w, NFTA_CMP_DATA, data);
            }
            Expr::Bitwise {
                sreg,
                dreg,
                mask,
                xor,
            } => {
                w.put_u32(NFTA_BITWISE_SREG, *sreg);
                w.put_u32(NFTA_BITWISE_DREG, *dreg);
                w.put_u32(NFTA_BITWISE_LEN, mask.len() as u32);
                w.put_u32(NFTA_BITWISE_OP, 0);
                put_data_value(w, NFTA_BITWISE_MASK, mask);
                put_data_value(w, NFTA_BITWISE_XOR, xor);
            }
            Expr::Range { sreg, neq, from, to } => {
                w.put_u32(NFTA_RANGE_SREG, *sreg);
                w.put_u32(NFTA_RANGE_OP, u32::from(*neq));
                put_data_value(w, NFTA_RANGE_FROM_DATA, from);
                put_data_value(w, NFTA_RANGE_TO_DATA, to);
            }
            Expr::Ct { key, dreg } => {
                w.put_u32(NFTA_CT_DREG, *dreg);
                w.put_u32(NFTA_CT_KEY, *key);
            }
            Expr::Lookup {
                set,
                sreg,
                dreg,
                invert,
            } => {
                w.put_str(NFTA_LOOKUP_SET, set);
                w.put_u32(NFTA_LOOKUP_SREG, *sreg);
                if let Some(d) = dreg {
                    w.put_u32(NFTA_LOOKUP_DREG, *d);
                }
                w.put_u32(NFTA_LOOKUP_FLAGS, if *invert { NFT_LOOKUP_F_INV } else { 0 });
            }
            Expr::Immediate { dreg, data } => {
                w.put_u32(NFTA_IMMEDIATE_DREG, *dreg);
                match data {
                    ImmData::Verdict(v) => w.nest(NFTA_IMMEDIATE_DATA, |w| v.encode(w)),
                    ImmData::Value(v) => put_data_value(w, NFTA_IMMEDIATE_DATA, v),
                }
            }
            Expr::Counter(c) => {
                w.put_u64(NFTA_COUNTER_BYTES, c.bytes);
                w.put_u64(NFTA_COUNTER_PACKETS, c.packets);
            }
            Expr::Log { prefix, level, flags } => {
                if let Some(p) = prefix {
                    w.put_str(NFTA_LOG_PREFIX, p);
                }
                w.put_u32(NFTA_LOG_LEVEL, *level);
                if *flags != 0 {
                    w.put_u32(NFTA_LOG_FLAGS, *flags);
                }
            }
            Expr::Limit {
                rate,
                unit,
                burst,
                bytes,
                invert,
            } => {
                w.put_u64(NFTA_LIMIT_RATE, *rate);
                w.put_u64(NFTA_LIMIT_UNIT, *unit);
                w.put_u32(NFTA_LIMIT_BURST, *burst);
                w.put_u32(NFTA_LIMIT_TYPE, u32::from(*bytes));
                w.put_u32(NFTA_LIMIT_FLAGS, u32::from(*invert));
            }
            Expr::Fib { flags, result, dreg } => {
                w.put_u32(NFTA_FIB_DREG, *dreg);
                w.put_u32(NFTA_FIB_RESULT, *result);
                w.put_u32(NFTA_FIB_FLAGS, *flags);
            }
            Expr::Masq { flags } => {
                if *flags != 0 {
                    w.put_u32(NFTA_MASQ_FLAGS, *flags);
                }
            }
            Expr::Other { .. } => unreachable!("written raw by encode"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::nftables::attr::Attrs;

    fn roundtrip(e: Expr) {
        let mut buf = Vec::new();
        e.encode(&mut AttrWriter::new(&mut buf));
        let attrs: Vec<_> = Attrs::new(&buf).collect::<Result<_, _>>().unwrap();
        assert_eq!(attrs.len(), 1);
        let back = Expr::decode(&attrs[0]).unwrap();
        assert_eq!(back, e);
        assert!(!matches!(back, Expr::Other { .. }), "{back:?}");
    }

    #[test]
    fn every_expression_round_trips() {
        for e in [
            Expr::Meta {
                key: meta::MARK,
                dreg: 1,
            },
            Expr::MetaSet {
                key: meta::MARK,
                sreg: 1,
            },
            Expr::Payload {
                base: base::NETWORK,
                offset: 12,
                len: 4,
                dreg: 1,
            },
            Expr::Cmp {
                sreg: 1,
                op: CmpOp::Gte,
                data: vec![0, 80],
            },
            Expr::Bitwise {
                sreg: 1,
                dreg: 1,
                mask: vec![0xff, 0xfe, 0xff, 0xff],
                xor: vec![0, 1, 0, 0],
            },
            Expr::Range {
                sreg: 1,
                neq: true,
                from: vec![0, 80],
                to: vec![0, 90],
            },
            Expr::Ct { key: 0, dreg: 1 },
            Expr::Lookup {
                set: "cali40s-abc".into(),
                sreg: 1,
                dreg: None,
                invert: true,
            },
            Expr::Lookup {
                set: "filter-cali-to-wl-dispatch".into(),
                sreg: 1,
                dreg: Some(0),
                invert: false,
            },
            Expr::Immediate {
                dreg: 0,
                data: ImmData::Verdict(Verdict::Goto("filter-cali-tw-x".into())),
            },
            Expr::Immediate {
                dreg: 1,
                data: ImmData::Value(vec![1, 2, 3, 4]),
            },
            Expr::Counter(Counts::default()),
            Expr::Log {
                prefix: Some("calico-packet: ".into()),
                level: 5,
                flags: 0,
            },
            Expr::Limit {
                rate: 10,
                unit: 1,
                burst: 5,
                bytes: false,
                invert: false,
            },
            Expr::Fib {
                flags: fib::SADDR | fib::MARK | fib::IIF,
                result: fib::RESULT_OIF,
                dreg: 1,
            },
            Expr::Masq { flags: 0 },
        ] {
            roundtrip(e);
        }
    }

    #[test]
    fn registers_as_the_kernel_dumps_them() {
        assert_eq!(reg_for_slot(0), NFT_REG_1);
        assert_eq!(reg_for_slot(1), 9);
        assert_eq!(reg_for_slot(2), 10);
        assert_eq!(reg_for_slot(4), 2, "slot 4 starts NFT_REG_2");
        assert_eq!(reg_for_slot(5), 13);
    }
}
