//! Path attributes (RFC 4271 §4.3, §5; RFC 1997 communities; RFC 4456 ORIGINATOR_ID and
//! CLUSTER_LIST; RFC 4760 MP_REACH/MP_UNREACH; RFC 6793 AS4_PATH/AS4_AGGREGATOR; RFC 8092 large
//! communities). Errors follow RFC 4271 §6.3 for the NOTIFICATION and RFC 7606 for the action.

use std::net::{Ipv4Addr, Ipv6Addr};

use crate::aspath::AsPath;
use crate::error::{AttrRef, DecodeError, ErrorAction};
use crate::family::Family;
use crate::message::Ctx;
use crate::nlri;
use crate::notification::update_sub;
use crate::open::AS_TRANS;

pub const FLAG_OPTIONAL: u8 = 0x80;
pub const FLAG_TRANSITIVE: u8 = 0x40;
pub const FLAG_PARTIAL: u8 = 0x20;
pub const FLAG_EXTENDED: u8 = 0x10;

pub const ORIGIN: u8 = 1;
pub const AS_PATH: u8 = 2;
pub const NEXT_HOP: u8 = 3;
pub const MED: u8 = 4;
pub const LOCAL_PREF: u8 = 5;
pub const ATOMIC_AGGREGATE: u8 = 6;
pub const AGGREGATOR: u8 = 7;
pub const COMMUNITIES: u8 = 8;
pub const ORIGINATOR_ID: u8 = 9;
pub const CLUSTER_LIST: u8 = 10;
pub const MP_REACH_NLRI: u8 = 14;
pub const MP_UNREACH_NLRI: u8 = 15;
pub const AS4_PATH: u8 = 17;
pub const AS4_AGGREGATOR: u8 = 18;
pub const LARGE_COMMUNITIES: u8 = 32;

/// ORIGIN values (RFC 4271 §4.3), ordered as the decision process prefers them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Origin {
    Igp = 0,
    Egp = 1,
    Incomplete = 2,
}

/// An attribute this codec does not interpret: optional transitive ones are passed on with the
/// Partial bit set (RFC 4271 §5); optional non-transitive ones are dropped on receipt.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct RawAttr {
    pub flags: u8,
    pub type_code: u8,
    pub value: Vec<u8>,
}

/// The attributes of a route, excluding MP_REACH/MP_UNREACH (which carry NLRI and are part of
/// the UPDATE). The AS path is held in 4-octet form whatever the session used. Hashable so a RIB
/// can intern identical sets.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct PathAttrs {
    pub origin: Option<Origin>,
    pub as_path: Option<AsPath>,
    pub next_hop: Option<Ipv4Addr>,
    pub med: Option<u32>,
    pub local_pref: Option<u32>,
    pub atomic_aggregate: bool,
    /// (AS, address), 4-octet form.
    pub aggregator: Option<(u32, Ipv4Addr)>,
    pub communities: Vec<u32>,
    pub originator_id: Option<Ipv4Addr>,
    pub cluster_list: Vec<Ipv4Addr>,
    pub large_communities: Vec<[u32; 3]>,
    pub unknown: Vec<RawAttr>,
}

/// The next hop of MP_REACH_NLRI (RFC 4760 §3; RFC 2545 §3 for IPv6 global + link-local).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum MpNextHop {
    V4(Ipv4Addr),
    V6 {
        global: Ipv6Addr,
        link_local: Option<Ipv6Addr>,
    },
}

/// MP_REACH_NLRI as found in a message: the NLRI field is walked lazily.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MpReach<'a> {
    pub family: Family,
    pub next_hop: MpNextHop,
    pub nlri: &'a [u8],
}

/// MP_UNREACH_NLRI as found in a message.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MpUnreach<'a> {
    pub family: Family,
    pub withdrawn: &'a [u8],
}

pub(crate) struct Decoded<'a> {
    pub attrs: PathAttrs,
    pub mp_reach: Option<MpReach<'a>>,
    pub mp_unreach: Option<MpUnreach<'a>>,
    /// Attributes found (duplicates and discarded ones included), for End-of-RIB detection.
    pub count: usize,
    /// Errors handled without a session reset (RFC 7606), in order.
    pub errors: Vec<DecodeError>,
}

/// Well-known attributes must have Optional=0 and Transitive=1; optional ones as listed.
fn expected_flags(code: u8) -> Option<u8> {
    Some(match code {
        ORIGIN | AS_PATH | NEXT_HOP | LOCAL_PREF | ATOMIC_AGGREGATE => FLAG_TRANSITIVE,
        MED | ORIGINATOR_ID | CLUSTER_LIST | MP_REACH_NLRI | MP_UNREACH_NLRI => FLAG_OPTIONAL,
        AGGREGATOR | COMMUNITIES | AS4_PATH | AS4_AGGREGATOR | LARGE_COMMUNITIES => {
            FLAG_OPTIONAL | FLAG_TRANSITIVE
        }
        _ => return None,
    })
}

/// RFC 7606 §7 (and RFC 6793 §6 for the AS4 attributes): the approach for a malformed
/// instance of each attribute. A flags conflict counts as malformed (§3 c).
fn malformed_action(code: u8) -> ErrorAction {
    match code {
        ATOMIC_AGGREGATE | AGGREGATOR | AS4_AGGREGATOR | AS4_PATH => ErrorAction::AttributeDiscard,
        MP_REACH_NLRI | MP_UNREACH_NLRI => ErrorAction::SessionReset,
        _ => ErrorAction::TreatAsWithdraw,
    }
}

fn ipv4(v: &[u8]) -> Ipv4Addr {
    Ipv4Addr::new(v[0], v[1], v[2], v[3])
}

fn be32(v: &[u8]) -> u32 {
    u32::from_be_bytes([v[0], v[1], v[2], v[3]])
}

/// RFC 4271 §6.3: a NEXT_HOP that is not a unicast host address is syntactically incorrect
/// (BIRD and FRR refuse the same martians).
fn martian_next_hop(a: Ipv4Addr) -> bool {
    a.is_unspecified() || a.is_multicast() || a.is_broadcast() || a.is_loopback() || a.octets()[0] >= 240
}

/// Decodes the path attribute field of an UPDATE with RFC 7606's error handling: errors whose
/// approach is attribute discard or treat-as-withdraw are collected in `errors` and decoding
/// goes on; the first error that needs a session reset is returned as `Err`.
pub(crate) fn decode<'a>(mut buf: &'a [u8], ctx: &Ctx) -> Result<Decoded<'a>, DecodeError> {
    let mut out = Decoded {
        attrs: PathAttrs::default(),
        mp_reach: None,
        mp_unreach: None,
        count: 0,
        errors: Vec::new(),
    };
    let mut seen = [0u64; 4];
    let mut as4_path = None;
    let mut as4_aggregator = None;
    while !buf.is_empty() {
        let (flags, code) = (buf[0], buf.get(1).copied().unwrap_or(0));
        let hdr = if flags & FLAG_EXTENDED != 0 { 4 } else { 3 };
        if buf.len() < hdr {
            // RFC 7606 §4: too few octets for an attribute header: treat-as-withdraw, and the
            // Total Attribute Length still locates the NLRI.
            out.errors.push(DecodeError::update(
                update_sub::MALFORMED_ATTRIBUTE_LIST,
                ErrorAction::TreatAsWithdraw,
                "attribute header overruns the attribute field",
            ));
            break;
        }
        let len = if hdr == 4 {
            u16::from_be_bytes([buf[2], buf[3]]) as usize
        } else {
            buf[2] as usize
        };
        let at = AttrRef {
            type_code: code,
            flags,
            length: len,
        };
        if buf.len() < hdr + len {
            // RFC 7606 §4: the last attribute overruns: treat-as-withdraw (RFC 4271 §6.3 names
            // it an Attribute Length Error). MP attributes are the exception (§5.3: their NLRI
            // cannot be located).
            let action = malformed_action(code).max(ErrorAction::TreatAsWithdraw);
            let e = DecodeError::attribute(
                update_sub::ATTRIBUTE_LENGTH,
                action,
                at,
                buf,
                "attribute length overruns the attribute field",
            );
            if action == ErrorAction::SessionReset {
                return Err(e);
            }
            out.errors.push(e);
            break;
        }
        let raw = &buf[..hdr + len];
        let v = &buf[hdr..hdr + len];
        buf = &buf[hdr + len..];
        out.count += 1;

        let bit = 1u64 << (code % 64);
        if seen[code as usize / 64] & bit != 0 {
            let e = DecodeError {
                attribute: Some(at),
                ..DecodeError::update(
                    update_sub::MALFORMED_ATTRIBUTE_LIST,
                    ErrorAction::AttributeDiscard,
                    "attribute appears twice",
                )
            };
            // RFC 7606 §3 (g): a second MP_REACH/MP_UNREACH resets the session; any other
            // repeated attribute is discarded and the first occurrence kept.
            if code == MP_REACH_NLRI || code == MP_UNREACH_NLRI {
                return Err(e.with_action(ErrorAction::SessionReset));
            }
            out.errors.push(e);
            continue;
        }
        seen[code as usize / 64] |= bit;

        let Some(expect) = expected_flags(code) else {
            if flags & FLAG_OPTIONAL == 0 {
                // RFC 4271 §6.3, unchanged by RFC 7606: nothing says where this attribute's
                // meaning ends, so the session resets.
                return Err(DecodeError::attribute(
                    update_sub::UNRECOGNIZED_WELL_KNOWN,
                    ErrorAction::SessionReset,
                    at,
                    raw,
                    "unrecognized well-known attribute",
                ));
            }
            if flags & FLAG_TRANSITIVE != 0 {
                out.attrs.unknown.push(RawAttr {
                    flags: flags & !FLAG_EXTENDED,
                    type_code: code,
                    value: v.to_vec(),
                });
            }
            continue;
        };
        // RFC 7606 §7.5, §7.9, §7.10: LOCAL_PREF, ORIGINATOR_ID and CLUSTER_LIST have no
        // meaning across an AS boundary; from an external peer they are discarded.
        if ctx.ebgp && matches!(code, LOCAL_PREF | ORIGINATOR_ID | CLUSTER_LIST) {
            out.errors.push(DecodeError::attribute(
                update_sub::ATTRIBUTE_FLAGS,
                ErrorAction::AttributeDiscard,
                at,
                raw,
                "attribute not accepted from an external peer",
            ));
            continue;
        }
        let malformed = |sub: u8, reason: &'static str| {
            DecodeError::attribute(sub, malformed_action(code), at, raw, reason)
        };
        let error = if flags & (FLAG_OPTIONAL | FLAG_TRANSITIVE) != expect {
            Some(malformed(
                update_sub::ATTRIBUTE_FLAGS,
                "attribute flags conflict with its type",
            ))
        } else {
            decode_one(
                code,
                v,
                raw,
                at,
                ctx,
                &mut out,
                &mut as4_path,
                &mut as4_aggregator,
            )?
        };
        if let Some(e) = error {
            if e.action == ErrorAction::SessionReset {
                return Err(e);
            }
            out.errors.push(e);
        }
    }
    // RFC 6793 §4.2.3: AS4_AGGREGATOR counts only when AGGREGATOR carries AS_TRANS, and then
    // AS4_PATH is merged; otherwise both AS4 attributes are ignored.
    let a = &mut out.attrs;
    let aggregator_trans = a.aggregator.map(|(asn, _)| asn == u32::from(AS_TRANS));
    if aggregator_trans == Some(false) {
        as4_path = None;
    } else if let Some(agg) = as4_aggregator {
        a.aggregator = Some(agg);
    }
    if let (Some(p), Some(as4)) = (a.as_path.as_mut(), as4_path) {
        *p = p.merge_as4(&as4);
    }
    Ok(out)
}

/// Interprets one attribute with correct flags. `Ok(Some(e))`: malformed, handled by `e`'s
/// approach; `Err`: malformed MP_REACH/MP_UNREACH (session reset).
#[allow(clippy::too_many_arguments)]
fn decode_one<'a>(
    code: u8,
    v: &'a [u8],
    raw: &[u8],
    at: AttrRef,
    ctx: &Ctx,
    out: &mut Decoded<'a>,
    as4_path: &mut Option<AsPath>,
    as4_aggregator: &mut Option<(u32, Ipv4Addr)>,
) -> Result<Option<DecodeError>, DecodeError> {
    let len = v.len();
    let bad = |sub: u8, reason: &'static str| {
        Ok(Some(DecodeError::attribute(
            sub,
            malformed_action(code),
            at,
            raw,
            reason,
        )))
    };
    let bad_len = |reason| bad(update_sub::ATTRIBUTE_LENGTH, reason);
    let a = &mut out.attrs;
    match code {
        ORIGIN => {
            if len != 1 {
                return bad_len("ORIGIN length is not 1");
            }
            a.origin = Some(match v[0] {
                0 => Origin::Igp,
                1 => Origin::Egp,
                2 => Origin::Incomplete,
                _ => return bad(update_sub::INVALID_ORIGIN, "undefined ORIGIN value"),
            });
        }
        AS_PATH => match AsPath::decode(v, ctx.four_octet_as) {
            // RFC 7606 §7.2 (malformed), RFC 7607 §2 (AS 0): treat-as-withdraw. The data of
            // a Malformed AS_PATH NOTIFICATION is empty (RFC 4271 §6.3).
            Some(p) if !p.contains(0) => a.as_path = Some(p),
            Some(_) => {
                return Ok(Some(DecodeError {
                    attribute: Some(at),
                    ..DecodeError::update(
                        update_sub::MALFORMED_AS_PATH,
                        ErrorAction::TreatAsWithdraw,
                        "AS_PATH contains AS 0",
                    )
                }));
            }
            None => {
                return Ok(Some(DecodeError {
                    attribute: Some(at),
                    ..DecodeError::update(
                        update_sub::MALFORMED_AS_PATH,
                        ErrorAction::TreatAsWithdraw,
                        "malformed AS_PATH",
                    )
                }));
            }
        },
        NEXT_HOP => {
            if len != 4 {
                return bad_len("NEXT_HOP length is not 4");
            }
            if martian_next_hop(ipv4(v)) {
                return bad(update_sub::INVALID_NEXT_HOP, "NEXT_HOP is not a unicast address");
            }
            a.next_hop = Some(ipv4(v));
        }
        MED => {
            if len != 4 {
                return bad_len("MULTI_EXIT_DISC length is not 4");
            }
            a.med = Some(be32(v));
        }
        LOCAL_PREF => {
            if len != 4 {
                return bad_len("LOCAL_PREF length is not 4");
            }
            a.local_pref = Some(be32(v));
        }
        ATOMIC_AGGREGATE => {
            if len != 0 {
                return bad_len("ATOMIC_AGGREGATE length is not 0");
            }
            a.atomic_aggregate = true;
        }
        AGGREGATOR => {
            let want = if ctx.four_octet_as { 8 } else { 6 };
            if len != want {
                return bad_len("AGGREGATOR length does not match the AS size");
            }
            let agg = if ctx.four_octet_as {
                (be32(v), ipv4(&v[4..]))
            } else {
                (u32::from(u16::from_be_bytes([v[0], v[1]])), ipv4(&v[2..]))
            };
            if agg.0 == 0 {
                // RFC 7607 §2: AGGREGATOR with AS 0 is discarded.
                return bad(update_sub::OPTIONAL_ATTRIBUTE, "AGGREGATOR with AS 0");
            }
            a.aggregator = Some(agg);
        }
        COMMUNITIES => {
            if len == 0 || !len.is_multiple_of(4) {
                return bad_len("COMMUNITIES length is not a positive multiple of 4");
            }
            a.communities = v.chunks_exact(4).map(be32).collect();
        }
        ORIGINATOR_ID => {
            if len != 4 {
                return bad_len("ORIGINATOR_ID length is not 4");
            }
            a.originator_id = Some(ipv4(v));
        }
        CLUSTER_LIST => {
            if len == 0 || !len.is_multiple_of(4) {
                return bad_len("CLUSTER_LIST length is not a positive multiple of 4");
            }
            a.cluster_list = v.chunks_exact(4).map(ipv4).collect();
        }
        LARGE_COMMUNITIES => {
            if len == 0 || !len.is_multiple_of(12) {
                return bad_len("LARGE_COMMUNITY length is not a positive multiple of 12");
            }
            a.large_communities = v
                .chunks_exact(12)
                .map(|c| [be32(c), be32(&c[4..]), be32(&c[8..])])
                .collect();
        }
        AS4_PATH => {
            // RFC 6793 §6: a malformed AS4_PATH is discarded; only meaningful from an old
            // (2-octet) speaker, and ignored from a new one.
            match AsPath::decode(v, true) {
                Some(p) if !p.contains(0) => {
                    if !ctx.four_octet_as {
                        *as4_path = Some(p);
                    }
                }
                _ => return bad(update_sub::OPTIONAL_ATTRIBUTE, "malformed AS4_PATH"),
            }
        }
        AS4_AGGREGATOR => {
            if len != 8 || be32(v) == 0 {
                return bad(update_sub::OPTIONAL_ATTRIBUTE, "malformed AS4_AGGREGATOR");
            }
            if !ctx.four_octet_as {
                *as4_aggregator = Some((be32(v), ipv4(&v[4..])));
            }
        }
        MP_REACH_NLRI => out.mp_reach = Some(decode_mp_reach(v, raw, at, ctx)?),
        MP_UNREACH_NLRI => out.mp_unreach = Some(decode_mp_unreach(v, raw, at, ctx)?),
        _ => unreachable!("expected_flags lists every interpreted code"),
    }
    Ok(None)
}

fn optional_error(at: AttrRef, raw: &[u8], reason: &'static str) -> DecodeError {
    DecodeError::attribute(
        update_sub::OPTIONAL_ATTRIBUTE,
        ErrorAction::SessionReset,
        at,
        raw,
        reason,
    )
}

fn decode_mp_reach<'a>(v: &'a [u8], raw: &[u8], at: AttrRef, ctx: &Ctx) -> Result<MpReach<'a>, DecodeError> {
    if v.len() < 5 {
        return Err(optional_error(at, raw, "MP_REACH_NLRI too short"));
    }
    let family = Family::new(u16::from_be_bytes([v[0], v[1]]), v[2]);
    let nh_len = v[3] as usize;
    if v.len() < 4 + nh_len + 1 {
        return Err(optional_error(at, raw, "MP_REACH_NLRI next hop overruns"));
    }
    let nh = &v[4..4 + nh_len];
    let next_hop = match nh_len {
        4 => MpNextHop::V4(ipv4(nh)),
        16 => MpNextHop::V6 {
            global: v6(nh),
            link_local: None,
        },
        32 => MpNextHop::V6 {
            global: v6(nh),
            link_local: Some(v6(&nh[16..])),
        },
        _ if !family.is_supported() => MpNextHop::V4(Ipv4Addr::UNSPECIFIED),
        _ => {
            return Err(optional_error(
                at,
                raw,
                "MP_REACH_NLRI next hop length is not 4, 16 or 32",
            ));
        }
    };
    if family == Family::IPV6_UNICAST && matches!(next_hop, MpNextHop::V4(_)) {
        return Err(optional_error(
            at,
            raw,
            "IPv6 MP_REACH_NLRI with a 4-byte next hop",
        ));
    }
    // Byte after the next hop: reserved (formerly SNPA count), ignored (RFC 4760 §3).
    let nlri = &v[4 + nh_len + 1..];
    check_nlri(family, nlri, ctx.add_path_rx.get(family)).map_err(|e| DecodeError {
        attribute: Some(at),
        ..e
    })?;
    Ok(MpReach {
        family,
        next_hop,
        nlri,
    })
}

fn decode_mp_unreach<'a>(
    v: &'a [u8],
    raw: &[u8],
    at: AttrRef,
    ctx: &Ctx,
) -> Result<MpUnreach<'a>, DecodeError> {
    if v.len() < 3 {
        return Err(optional_error(at, raw, "MP_UNREACH_NLRI too short"));
    }
    let family = Family::new(u16::from_be_bytes([v[0], v[1]]), v[2]);
    let withdrawn = &v[3..];
    check_nlri(family, withdrawn, ctx.add_path_rx.get(family)).map_err(|e| DecodeError {
        attribute: Some(at),
        ..e
    })?;
    Ok(MpUnreach { family, withdrawn })
}

/// NLRI that cannot be parsed leaves no way to withdraw: RFC 7606 §5.3 requires a session reset.
pub(crate) fn check_nlri(family: Family, buf: &[u8], add_path: bool) -> Result<(), DecodeError> {
    if !family.is_supported() {
        return Ok(());
    }
    let bits = if family.is_ipv6() { 128 } else { 32 };
    nlri::validate(buf, bits, add_path).map(|_| ()).ok_or_else(|| {
        DecodeError::update(
            update_sub::INVALID_NETWORK_FIELD,
            ErrorAction::SessionReset,
            "NLRI field cannot be parsed",
        )
    })
}

fn v6(b: &[u8]) -> Ipv6Addr {
    let mut a = [0u8; 16];
    a.copy_from_slice(&b[..16]);
    Ipv6Addr::from(a)
}

fn put(out: &mut Vec<u8>, flags: u8, code: u8, value: &[u8]) {
    if value.len() > 255 {
        out.extend_from_slice(&[flags | FLAG_EXTENDED, code]);
        out.extend_from_slice(&(value.len() as u16).to_be_bytes());
    } else {
        out.extend_from_slice(&[flags & !FLAG_EXTENDED, code, value.len() as u8]);
    }
    out.extend_from_slice(value);
}

impl PathAttrs {
    /// Encodes every attribute except MP_REACH/MP_UNREACH, in type-code order, converting the
    /// AS path and AGGREGATOR to 2-octet form (plus AS4_PATH/AS4_AGGREGATOR) when the session
    /// has no 4-octet AS support.
    pub fn encode(&self, ctx: &Ctx, out: &mut Vec<u8>) {
        let mut v = Vec::with_capacity(64);
        if let Some(o) = self.origin {
            put(out, FLAG_TRANSITIVE, ORIGIN, &[o as u8]);
        }
        if let Some(p) = &self.as_path {
            v.clear();
            p.encode(ctx.four_octet_as, &mut v);
            put(out, FLAG_TRANSITIVE, AS_PATH, &v);
        }
        if let Some(nh) = self.next_hop {
            put(out, FLAG_TRANSITIVE, NEXT_HOP, &nh.octets());
        }
        if let Some(m) = self.med {
            put(out, FLAG_OPTIONAL, MED, &m.to_be_bytes());
        }
        if let Some(lp) = self.local_pref {
            put(out, FLAG_TRANSITIVE, LOCAL_PREF, &lp.to_be_bytes());
        }
        if self.atomic_aggregate {
            put(out, FLAG_TRANSITIVE, ATOMIC_AGGREGATE, &[]);
        }
        if let Some((asn, addr)) = self.aggregator {
            v.clear();
            if ctx.four_octet_as {
                v.extend_from_slice(&asn.to_be_bytes());
            } else {
                v.extend_from_slice(&u16::try_from(asn).unwrap_or(AS_TRANS).to_be_bytes());
            }
            v.extend_from_slice(&addr.octets());
            put(out, FLAG_OPTIONAL | FLAG_TRANSITIVE, AGGREGATOR, &v);
        }
        if !self.communities.is_empty() {
            v.clear();
            self.communities
                .iter()
                .for_each(|c| v.extend_from_slice(&c.to_be_bytes()));
            put(out, FLAG_OPTIONAL | FLAG_TRANSITIVE, COMMUNITIES, &v);
        }
        if let Some(id) = self.originator_id {
            put(out, FLAG_OPTIONAL, ORIGINATOR_ID, &id.octets());
        }
        if !self.cluster_list.is_empty() {
            v.clear();
            self.cluster_list
                .iter()
                .for_each(|c| v.extend_from_slice(&c.octets()));
            put(out, FLAG_OPTIONAL, CLUSTER_LIST, &v);
        }
        if !ctx.four_octet_as {
            if let Some(p) = self.as_path.as_ref().filter(|p| p.needs_as4()) {
                v.clear();
                p.encode(true, &mut v);
                put(out, FLAG_OPTIONAL | FLAG_TRANSITIVE, AS4_PATH, &v);
            }
            if let Some((asn, addr)) = self.aggregator.filter(|(a, _)| *a > 0xffff) {
                v.clear();
                v.extend_from_slice(&asn.to_be_bytes());
                v.extend_from_slice(&addr.octets());
                put(out, FLAG_OPTIONAL | FLAG_TRANSITIVE, AS4_AGGREGATOR, &v);
            }
        }
        if !self.large_communities.is_empty() {
            v.clear();
            for c in &self.large_communities {
                c.iter().for_each(|x| v.extend_from_slice(&x.to_be_bytes()));
            }
            put(out, FLAG_OPTIONAL | FLAG_TRANSITIVE, LARGE_COMMUNITIES, &v);
        }
        for u in &self.unknown {
            put(out, u.flags | FLAG_PARTIAL, u.type_code, &u.value);
        }
    }
}

/// Encodes MP_REACH_NLRI for `nlri` (already encoded entries) with `next_hop`.
pub(crate) fn encode_mp_reach(family: Family, next_hop: &MpNextHop, nlri: &[u8], out: &mut Vec<u8>) {
    let mut v = Vec::with_capacity(8 + 32 + nlri.len());
    v.extend_from_slice(&family.afi.to_be_bytes());
    v.push(family.safi);
    match next_hop {
        MpNextHop::V4(a) => {
            v.push(4);
            v.extend_from_slice(&a.octets());
        }
        MpNextHop::V6 { global, link_local } => {
            v.push(if link_local.is_some() { 32 } else { 16 });
            v.extend_from_slice(&global.octets());
            if let Some(ll) = link_local {
                v.extend_from_slice(&ll.octets());
            }
        }
    }
    v.push(0);
    v.extend_from_slice(nlri);
    put(out, FLAG_OPTIONAL, MP_REACH_NLRI, &v);
}

/// Encodes MP_UNREACH_NLRI for `withdrawn` (already encoded entries).
pub(crate) fn encode_mp_unreach(family: Family, withdrawn: &[u8], out: &mut Vec<u8>) {
    let mut v = Vec::with_capacity(3 + withdrawn.len());
    v.extend_from_slice(&family.afi.to_be_bytes());
    v.push(family.safi);
    v.extend_from_slice(withdrawn);
    put(out, FLAG_OPTIONAL, MP_UNREACH_NLRI, &v);
}
