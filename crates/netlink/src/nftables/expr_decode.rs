//! Decoding expressions from the attributes the kernel dumps (outside input: a malformed
//! attribute is a [`DecodeError`], an expression Brindle never writes comes back as
//! [`Expr::Other`], never a panic).

use super::attr::{Attr, DResult, DecodeError, data_value};
use super::expr::{CmpOp, Counts, Expr, ImmData, Verdict};
use super::sys::*;

impl Expr {
    /// Decodes one `NFTA_LIST_ELEM` of a dumped rule. Unknown expressions (and known ones with
    /// attributes Brindle never writes) come back as [`Expr::Other`].
    pub fn decode(elem: &Attr<'_>) -> DResult<Expr> {
        let mut name = None;
        let mut data: &[u8] = &[];
        for a in elem.nested() {
            let a = a?;
            match a.ty {
                NFTA_EXPR_NAME => name = Some(a.string()),
                NFTA_EXPR_DATA => data = a.value,
                _ => {}
            }
        }
        let name = name.ok_or_else(|| DecodeError("expression without a name".into()))?;
        let other = |name: String| Expr::Other {
            name,
            data: data.to_vec(),
        };
        let mut f = Fields::default();
        for a in super::attr::Attrs::new(data) {
            let a = a?;
            f.set(a);
        }
        let e = match name.as_str() {
            "meta" => match (
                f.u32(NFTA_META_KEY)?,
                f.u32(NFTA_META_DREG)?,
                f.u32(NFTA_META_SREG)?,
            ) {
                (Some(key), Some(dreg), None) => Expr::Meta { key, dreg },
                (Some(key), None, Some(sreg)) => Expr::MetaSet { key, sreg },
                _ => other(name),
            },
            "payload" => match (
                f.u32(NFTA_PAYLOAD_DREG)?,
                f.u32(NFTA_PAYLOAD_BASE)?,
                f.u32(NFTA_PAYLOAD_OFFSET)?,
                f.u32(NFTA_PAYLOAD_LEN)?,
            ) {
                (Some(dreg), Some(base), Some(offset), Some(len)) if f.count() == 4 => Expr::Payload {
                    base,
                    offset,
                    len,
                    dreg,
                },
                _ => other(name),
            },
            "cmp" => match (f.u32(NFTA_CMP_SREG)?, f.u32(NFTA_CMP_OP)?, f.data(NFTA_CMP_DATA)?) {
                (Some(sreg), Some(op), Some(data)) => Expr::Cmp {
                    sreg,
                    op: CmpOp::from_code(op)?,
                    data,
                },
                _ => other(name),
            },
            "bitwise" => match (
                f.u32(NFTA_BITWISE_SREG)?,
                f.u32(NFTA_BITWISE_DREG)?,
                f.u32(NFTA_BITWISE_OP)?.unwrap_or(0),
                f.data(NFTA_BITWISE_MASK)?,
                f.data(NFTA_BITWISE_XOR)?,
            ) {
                (Some(sreg), Some(dreg), 0, Some(mask), Some(xor)) => Expr::Bitwise {
                    sreg,
                    dreg,
                    mask,
                    xor,
                },
                _ => other(name),
            },
            "range" => match (
                f.u32(NFTA_RANGE_SREG)?,
                f.u32(NFTA_RANGE_OP)?,
                f.data(NFTA_RANGE_FROM_DATA)?,
                f.data(NFTA_RANGE_TO_DATA)?,
            ) {
                (Some(sreg), Some(op @ (0 | 1)), Some(from), Some(to)) => Expr::Range {
                    sreg,
                    neq: op == 1,
                    from,
                    to,
                },
                _ => other(name),
            },
            "ct" => match (
                f.u32(NFTA_CT_KEY)?,
                f.u32(NFTA_CT_DREG)?,
                f.has(NFTA_CT_DIRECTION),
            ) {
                (Some(key), Some(dreg), false) => Expr::Ct { key, dreg },
                _ => other(name),
            },
            "lookup" => match (f.string(NFTA_LOOKUP_SET), f.u32(NFTA_LOOKUP_SREG)?) {
                (Some(set), Some(sreg)) => Expr::Lookup {
                    set,
                    sreg,
                    dreg: f.u32(NFTA_LOOKUP_DREG)?,
                    invert: f.u32(NFTA_LOOKUP_FLAGS)?.unwrap_or(0) & NFT_LOOKUP_F_INV != 0,
                },
                _ => other(name),
            },
            "immediate" => match (f.u32(NFTA_IMMEDIATE_DREG)?, f.get(NFTA_IMMEDIATE_DATA)) {
                (Some(dreg), Some(d)) => {
                    let mut data = None;
                    for x in d.nested() {
                        let x = x?;
                        match x.ty {
                            NFTA_DATA_VERDICT => data = Some(ImmData::Verdict(Verdict::decode(&x)?)),
                            NFTA_DATA_VALUE => data = Some(ImmData::Value(x.value.to_vec())),
                            _ => {}
                        }
                    }
                    match data {
                        Some(data) => Expr::Immediate { dreg, data },
                        None => other(name),
                    }
                }
                _ => other(name),
            },
            "counter" => Expr::Counter(Counts {
                packets: f.u64(NFTA_COUNTER_PACKETS)?.unwrap_or(0),
                bytes: f.u64(NFTA_COUNTER_BYTES)?.unwrap_or(0),
            }),
            "log" if !f.has(NFTA_LOG_GROUP) => match f.u32(NFTA_LOG_LEVEL)? {
                Some(level) => Expr::Log {
                    prefix: f.string(NFTA_LOG_PREFIX),
                    level,
                    flags: f.u32(NFTA_LOG_FLAGS)?.unwrap_or(0),
                },
                None => other(name),
            },
            "limit" => match (
                f.u64(NFTA_LIMIT_RATE)?,
                f.u64(NFTA_LIMIT_UNIT)?,
                f.u32(NFTA_LIMIT_BURST)?,
                f.u32(NFTA_LIMIT_TYPE)?,
            ) {
                (Some(rate), Some(unit), Some(burst), Some(ty @ (0 | 1))) => Expr::Limit {
                    rate,
                    unit,
                    burst,
                    bytes: ty == 1,
                    invert: f.u32(NFTA_LIMIT_FLAGS)?.unwrap_or(0) & 1 != 0,
                },
                _ => other(name),
            },
            "fib" => match (
                f.u32(NFTA_FIB_DREG)?,
                f.u32(NFTA_FIB_RESULT)?,
                f.u32(NFTA_FIB_FLAGS)?,
            ) {
                (Some(dreg), Some(result), Some(flags)) => Expr::Fib { flags, result, dreg },
                _ => other(name),
            },
            "masq" if !f.has(NFTA_MASQ_REG_PROTO_MIN) && !f.has(NFTA_MASQ_REG_PROTO_MAX) => Expr::Masq {
                flags: f.u32(NFTA_MASQ_FLAGS)?.unwrap_or(0),
            },
            _ => other(name),
        };
        Ok(e)
    }
}

/// The attributes of one expression, by type (the last one wins).
#[derive(Default)]
struct Fields<'a> {
    by_type: Vec<(u16, Attr<'a>)>,
}

impl<'a> Fields<'a> {
    fn set(&mut self, a: Attr<'a>) {
        self.by_type.retain(|(t, _)| *t != a.ty);
        self.by_type.push((a.ty, a));
    }

    fn get(&self, ty: u16) -> Option<&Attr<'a>> {
        self.by_type.iter().find(|(t, _)| *t == ty).map(|(_, a)| a)
    }

    fn has(&self, ty: u16) -> bool {
        self.get(ty).is_some()
    }

    /// Attributes other than padding (type 0 is never used; counters and limits pad with
    /// their own PAD type, which is skipped by the callers that care).
    fn count(&self) -> usize {
        self.by_type.len()
    }

    fn u32(&self, ty: u16) -> DResult<Option<u32>> {
        self.get(ty).map(|a| a.u32()).transpose()
    }

    fn u64(&self, ty: u16) -> DResult<Option<u64>> {
        self.get(ty).map(|a| a.u64()).transpose()
    }

    fn string(&self, ty: u16) -> Option<String> {
        self.get(ty).map(|a| a.string())
    }

    fn data(&self, ty: u16) -> DResult<Option<Vec<u8>>> {
        self.get(ty).map(data_value).transpose()
    }
}
