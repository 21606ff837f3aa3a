//! Decoding what the kernel sends on an nf_tables socket: dump replies (tables, chains, rules,
//! sets, elements, the generation) and change notifications. All of it is outside input:
//! every length is checked, nothing panics, a malformed message is a [`DecodeError`]
//! (`fuzz/fuzz_targets/nft_decode.rs` feeds it arbitrary bytes).

use super::attr::{Attrs, DResult, DecodeError, align4, data_value};
use super::elements::Elem;
use super::expr::{Expr, Verdict};
use super::object::{HookPoint, TableFamily};
use super::rule::Rule;
use super::sys::*;

/// One netlink message of the nf_tables subsystem, header decoded.
#[derive(Debug, Clone)]
pub struct Message<'a> {
    /// `NFT_MSG_*` (the subsystem byte removed), or `NLMSG_ERROR`/`NLMSG_DONE` with `control`.
    pub kind: u16,
    /// True for netlink control messages (`NLMSG_ERROR`, `NLMSG_DONE`).
    pub control: bool,
    pub flags: u16,
    pub seq: u32,
    /// The port id of the socket that caused it (notifications) or ours (replies).
    pub portid: u32,
    /// `nfgenmsg.nfgen_family`.
    pub family: u8,
    /// The attributes after `nfgenmsg` (for control messages: the payload after the header).
    pub body: &'a [u8],
    /// The whole message.
    pub raw: &'a [u8],
}

/// Splits a receive buffer into messages; a truncated or malformed one is an error.
pub fn messages(buf: &[u8]) -> impl Iterator<Item = DResult<Message<'_>>> {
    let mut rest = buf;
    let mut failed = false;
    std::iter::from_fn(move || {
        if failed || rest.len() < 16 {
            return None;
        }
        let len = u32::from_ne_bytes([rest[0], rest[1], rest[2], rest[3]]) as usize;
        if len < 16 || len > rest.len() {
            failed = true;
            return Some(Err(DecodeError(format!(
                "netlink message claims {len} bytes, {} left",
                rest.len()
            ))));
        }
        let raw = &rest[..len];
        rest = &rest[align4(len).min(rest.len())..];
        let ty = u16::from_ne_bytes([raw[4], raw[5]]);
        let flags = u16::from_ne_bytes([raw[6], raw[7]]);
        let seq = u32::from_ne_bytes([raw[8], raw[9], raw[10], raw[11]]);
        let portid = u32::from_ne_bytes([raw[12], raw[13], raw[14], raw[15]]);
        if ty < 0x10 {
            return Some(Ok(Message {
                kind: ty,
                control: true,
                flags,
                seq,
                portid,
                family: 0,
                body: &raw[16..],
                raw,
            }));
        }
        if ty >> 8 != NFNL_SUBSYS_NFTABLES {
            failed = true;
            return Some(Err(DecodeError(format!("message type {ty:#x} is not nf_tables"))));
        }
        if raw.len() < 20 {
            failed = true;
            return Some(Err(DecodeError("nf_tables message without nfgenmsg".into())));
        }
        Some(Ok(Message {
            kind: ty & 0xff,
            control: false,
            flags,
            seq,
            portid,
            family: raw[16],
            body: &raw[20..],
            raw,
        }))
    })
}

impl Message<'_> {
    /// For `NLMSG_ERROR`: `None` for an ACK, else the errno, the extended-ack text and the
    /// offset of the attribute the kernel blamed (relative to the request's start).
    pub fn error(&self) -> Option<(i32, Option<String>, Option<u32>)> {
        let b = self.body;
        if b.len() < 4 {
            return Some((libc::EIO, Some("truncated netlink error".into()), None));
        }
        let code = i32::from_ne_bytes([b[0], b[1], b[2], b[3]]);
        if code == 0 {
            return None;
        }
        let mut detail = None;
        let mut offset = None;
        if self.flags & NLM_F_ACK_TLVS != 0 && b.len() >= 20 {
            let inner_len = u32::from_ne_bytes([b[4], b[5], b[6], b[7]]) as usize;
            let echoed = if self.flags & NLM_F_CAPPED != 0 {
                16
            } else {
                inner_len
            };
            let start = 4 + align4(echoed);
            if start <= b.len() {
                for a in Attrs::new(&b[start..]).flatten() {
                    match a.ty {
                        NLMSGERR_ATTR_MSG => detail = Some(a.string()),
                        NLMSGERR_ATTR_OFFS => {
                            offset = a
                                .value
                                .get(..4)
                                .map(|v| u32::from_ne_bytes(v.try_into().expect("4")))
                        }
                        _ => {}
                    }
                }
            }
        }
        Some((code.saturating_neg(), detail, offset))
    }
}

/// A table, as dumped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TableInfo {
    pub family: Option<TableFamily>,
    pub name: String,
    pub flags: u32,
    pub handle: u64,
}

/// A chain, as dumped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChainInfo {
    pub table: String,
    pub name: String,
    pub handle: u64,
    /// Hook, priority, type, policy (accept = true) of a base chain.
    pub hook: Option<(HookPoint, i32, String, bool)>,
}

/// A rule, as dumped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RuleInfo {
    pub table: String,
    pub chain: String,
    pub handle: u64,
    pub rule: Rule,
}

/// A set, as dumped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SetInfo {
    pub table: String,
    pub name: String,
    pub flags: u32,
    pub key_type: u32,
    pub key_len: u32,
    pub data_type: Option<u32>,
}

/// The ruleset generation and who made it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Generation {
    pub id: u32,
    pub pid: Option<u32>,
    pub process: Option<String>,
}

fn need<T>(v: Option<T>, what: &str) -> DResult<T> {
    v.ok_or_else(|| DecodeError(format!("missing {what}")))
}

pub fn decode_table(m: &Message<'_>) -> DResult<TableInfo> {
    let (mut name, mut flags, mut handle) = (None, 0, 0);
    for a in Attrs::new(m.body) {
        let a = a?;
        match a.ty {
            NFTA_TABLE_NAME => name = Some(a.string()),
            NFTA_TABLE_FLAGS => flags = a.u32()?,
            NFTA_TABLE_HANDLE => handle = a.u64()?,
            _ => {}
        }
    }
    Ok(TableInfo {
        family: TableFamily::from_code(m.family),
        name: need(name, "table name")?,
        flags,
        handle,
    })
}

pub fn decode_chain(m: &Message<'_>) -> DResult<ChainInfo> {
    let (mut table, mut name, mut handle) = (None, None, 0);
    let (mut hooknum, mut prio, mut kind, mut policy) = (None, 0i32, String::new(), true);
    for a in Attrs::new(m.body) {
        let a = a?;
        match a.ty {
            NFTA_CHAIN_TABLE => table = Some(a.string()),
            NFTA_CHAIN_NAME => name = Some(a.string()),
            NFTA_CHAIN_HANDLE => handle = a.u64()?,
            NFTA_CHAIN_HOOK => {
                for h in a.nested() {
                    let h = h?;
                    match h.ty {
                        NFTA_HOOK_HOOKNUM => hooknum = Some(h.u32()?),
                        NFTA_HOOK_PRIORITY => prio = h.i32()?,
                        _ => {}
                    }
                }
            }
            NFTA_CHAIN_POLICY => policy = a.u32()? == NF_ACCEPT as u32,
            NFTA_CHAIN_TYPE => kind = a.string(),
            _ => {}
        }
    }
    let hook = match hooknum {
        Some(n) => Some((
            HookPoint::from_code(n).ok_or_else(|| DecodeError(format!("unknown hook {n}")))?,
            prio,
            kind,
            policy,
        )),
        None => None,
    };
    Ok(ChainInfo {
        table: need(table, "chain table")?,
        name: need(name, "chain name")?,
        handle,
        hook,
    })
}

pub fn decode_rule(m: &Message<'_>) -> DResult<RuleInfo> {
    let (mut table, mut chain, mut handle) = (None, None, 0);
    let mut rule = Rule::default();
    for a in Attrs::new(m.body) {
        let a = a?;
        match a.ty {
            NFTA_RULE_TABLE => table = Some(a.string()),
            NFTA_RULE_CHAIN => chain = Some(a.string()),
            NFTA_RULE_HANDLE => handle = a.u64()?,
            NFTA_RULE_EXPRESSIONS => {
                for e in a.nested() {
                    rule.exprs.push(Expr::decode(&e?)?);
                }
            }
            NFTA_RULE_USERDATA => rule.comment = Rule::comment_from_userdata(a.value),
            _ => {}
        }
    }
    Ok(RuleInfo {
        table: need(table, "rule table")?,
        chain: need(chain, "rule chain")?,
        handle,
        rule,
    })
}

pub fn decode_set(m: &Message<'_>) -> DResult<SetInfo> {
    let (mut table, mut name) = (None, None);
    let (mut flags, mut key_type, mut key_len, mut data_type) = (0, 0, 0, None);
    for a in Attrs::new(m.body) {
        let a = a?;
        match a.ty {
            NFTA_SET_TABLE => table = Some(a.string()),
            NFTA_SET_NAME => name = Some(a.string()),
            NFTA_SET_FLAGS => flags = a.u32()?,
            NFTA_SET_KEY_TYPE => key_type = a.u32()?,
            NFTA_SET_KEY_LEN => key_len = a.u32()?,
            NFTA_SET_DATA_TYPE => data_type = Some(a.u32()?),
            _ => {}
        }
    }
    Ok(SetInfo {
        table: need(table, "set table")?,
        name: need(name, "set name")?,
        flags,
        key_type,
        key_len,
        data_type,
    })
}

/// The set name and elements of one `NEWSETELEM` message.
pub fn decode_elems(m: &Message<'_>) -> DResult<(String, Vec<Elem>)> {
    let mut set = None;
    let mut elems = Vec::new();
    for a in Attrs::new(m.body) {
        let a = a?;
        match a.ty {
            NFTA_SET_ELEM_LIST_SET => set = Some(a.string()),
            NFTA_SET_ELEM_LIST_ELEMENTS => {
                for e in a.nested() {
                    let e = e?;
                    let mut el = Elem::key(Vec::new());
                    let mut has_key = false;
                    for f in e.nested() {
                        let f = f?;
                        match f.ty {
                            NFTA_SET_ELEM_KEY => {
                                el.key = data_value(&f)?;
                                has_key = true;
                            }
                            NFTA_SET_ELEM_KEY_END => el.key_end = Some(data_value(&f)?),
                            NFTA_SET_ELEM_FLAGS => {
                                el.interval_end = f.u32()? & NFT_SET_ELEM_INTERVAL_END != 0
                            }
                            NFTA_SET_ELEM_DATA => {
                                for d in f.nested() {
                                    let d = d?;
                                    if d.ty == NFTA_DATA_VERDICT {
                                        el.verdict = Some(Verdict::decode(&d)?);
                                    }
                                }
                            }
                            _ => {}
                        }
                    }
                    // A catch-all element has no key; Brindle never writes one, so it shows as
                    // an element with an empty key (a difference, to be repaired).
                    let _ = has_key;
                    elems.push(el);
                }
            }
            _ => {}
        }
    }
    Ok((need(set, "element set")?, elems))
}

pub fn decode_gen(m: &Message<'_>) -> DResult<Generation> {
    let mut g = Generation {
        id: 0,
        pid: None,
        process: None,
    };
    let mut have = false;
    for a in Attrs::new(m.body) {
        let a = a?;
        match a.ty {
            NFTA_GEN_ID => {
                g.id = a.u32()?;
                have = true;
            }
            NFTA_GEN_PROC_PID => g.pid = Some(a.u32()?),
            NFTA_GEN_PROC_NAME => g.process = Some(a.string()),
            _ => {}
        }
    }
    if !have {
        return Err(DecodeError("generation without an id".into()));
    }
    Ok(g)
}

/// What a change notification was about.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    /// `NFT_MSG_*`.
    pub kind: u16,
    pub family: u8,
    /// The table it concerns (`None` for a generation message).
    pub table: Option<String>,
    /// The port id of the socket that made the change.
    pub portid: u32,
}

/// Reads the table a notification concerns, whatever its kind.
pub fn decode_event(m: &Message<'_>) -> DResult<Event> {
    let table_attr = match m.kind {
        NFT_MSG_NEWTABLE | NFT_MSG_DELTABLE => Some(NFTA_TABLE_NAME),
        NFT_MSG_NEWCHAIN | NFT_MSG_DELCHAIN => Some(NFTA_CHAIN_TABLE),
        NFT_MSG_NEWRULE | NFT_MSG_DELRULE => Some(NFTA_RULE_TABLE),
        NFT_MSG_NEWSET | NFT_MSG_DELSET => Some(NFTA_SET_TABLE),
        NFT_MSG_NEWSETELEM | NFT_MSG_DELSETELEM => Some(NFTA_SET_ELEM_LIST_TABLE),
        // Objects and flowtables: their table attribute is also type 1.
        _ => Some(1),
    };
    let mut table = None;
    if m.kind != NFT_MSG_NEWGEN {
        for a in Attrs::new(m.body) {
            let a = a?;
            if Some(a.ty) == table_attr {
                table = Some(a.string());
            }
        }
    }
    Ok(Event {
        kind: m.kind,
        family: m.family,
        table,
        portid: m.portid,
    })
}

/// Decodes every message of a buffer with the decoder its type calls for; the fuzz target's
/// entry point (any input must come back as `Ok` or `Err`, never a panic).
pub fn decode_all(buf: &[u8]) -> DResult<usize> {
    let mut n = 0;
    for m in messages(buf) {
        let m = m?;
        n += 1;
        if m.control {
            let _ = m.error();
            continue;
        }
        match m.kind {
            NFT_MSG_NEWTABLE | NFT_MSG_DELTABLE => drop(decode_table(&m)?),
            NFT_MSG_NEWCHAIN | NFT_MSG_DELCHAIN => drop(decode_chain(&m)?),
            NFT_MSG_NEWRULE | NFT_MSG_DELRULE => drop(decode_rule(&m)?),
            NFT_MSG_NEWSET | NFT_MSG_DELSET => drop(decode_set(&m)?),
            NFT_MSG_NEWSETELEM | NFT_MSG_DELSETELEM => drop(decode_elems(&m)?),
            NFT_MSG_NEWGEN => drop(decode_gen(&m)?),
            _ => {}
        }
        decode_event(&m)?;
    }
    Ok(n)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_error_code_that_cannot_be_negated_is_no_panic() {
        // NLMSG_ERROR carrying i32::MIN (found by the fuzzer).
        let mut m = vec![0u8; 36];
        m[0..4].copy_from_slice(&36u32.to_ne_bytes());
        m[4..6].copy_from_slice(&NLMSG_ERROR.to_ne_bytes());
        m[16..20].copy_from_slice(&i32::MIN.to_ne_bytes());
        let msg = messages(&m).next().unwrap().unwrap();
        assert_eq!(msg.error().map(|e| e.0), Some(i32::MAX));
        assert_eq!(decode_all(&m), Ok(1));
    }

    #[test]
    fn truncated_messages_are_errors() {
        let mut m = vec![0u8; 16];
        m[0..4].copy_from_slice(&64u32.to_ne_bytes());
        assert!(messages(&m).next().unwrap().is_err());
        assert!(decode_all(&[1, 2, 3]).is_ok(), "shorter than a header: nothing");
    }
}
