//! UPDATE (RFC 4271 §4.3) with MP_REACH/MP_UNREACH (RFC 4760) and End-of-RIB (RFC 4724 §2).
//!
//! [`Update`] borrows the message: attributes are decoded once per message, prefixes are walked
//! lazily with [`NlriIter`], so ingest costs no allocation per prefix. [`UpdateMsg`] is the owned
//! form for building messages; [`UpdatePacker`] packs many prefixes sharing one attribute set
//! into as few messages as the size limit allows.

use ipnet::IpNet;

use crate::attrs::{self, MpNextHop, MpReach, MpUnreach, PathAttrs};
use crate::error::{DecodeError, ErrorAction};
use crate::family::Family;
use crate::header;
use crate::message::Ctx;
use crate::nlri::{self, Nlri, NlriIter};
use crate::notification::update_sub;

/// A decoded UPDATE borrowing the message bytes.
///
/// Errors RFC 7606 handles without a session reset are in [`Update::errors`]: discarded
/// attributes are absent from `attrs`; when [`Update::treat_as_withdraw`] holds, every prefix
/// the message announces must be withdrawn instead.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Update<'a> {
    pub(crate) withdrawn: &'a [u8],
    pub attrs: PathAttrs,
    pub(crate) nlri: &'a [u8],
    pub mp_reach: Option<MpReach<'a>>,
    pub mp_unreach: Option<MpUnreach<'a>>,
    pub(crate) add_path: crate::family::AddPathFamilies,
    pub(crate) attr_count: usize,
    /// Attribute-discard and treat-as-withdraw errors, in the order found (for logs).
    pub errors: Vec<DecodeError>,
}

impl<'a> Update<'a> {
    /// Decodes the body (after the header).
    pub fn decode(body: &'a [u8], ctx: &Ctx) -> Result<Update<'a>, DecodeError> {
        let malformed = |reason| {
            DecodeError::update(
                update_sub::MALFORMED_ATTRIBUTE_LIST,
                ErrorAction::SessionReset,
                reason,
            )
        };
        if body.len() < 4 {
            return Err(DecodeError::bad_length(
                (body.len() + header::HEADER_LEN) as u16,
                "UPDATE shorter than 23 bytes",
            ));
        }
        let wlen = u16::from_be_bytes([body[0], body[1]]) as usize;
        if body.len() < 2 + wlen + 2 {
            return Err(malformed("withdrawn routes length overruns the UPDATE"));
        }
        let withdrawn = &body[2..2 + wlen];
        let alen = u16::from_be_bytes([body[2 + wlen], body[3 + wlen]]) as usize;
        let astart = 4 + wlen;
        if body.len() < astart + alen {
            return Err(malformed("total path attribute length overruns the UPDATE"));
        }
        let nlri = &body[astart + alen..];
        attrs::check_nlri(Family::IPV4_UNICAST, withdrawn, ctx.add_path_rx.ipv4)?;
        attrs::check_nlri(Family::IPV4_UNICAST, nlri, ctx.add_path_rx.ipv4)?;
        let d = attrs::decode(&body[astart..astart + alen], ctx)?;
        let mut u = Update {
            withdrawn,
            attrs: d.attrs,
            nlri,
            mp_reach: d.mp_reach,
            mp_unreach: d.mp_unreach,
            add_path: ctx.add_path_rx,
            attr_count: d.count,
            errors: d.errors,
        };
        if let Some(missing) = u.missing_mandatory() {
            u.errors.push(DecodeError::missing(missing));
        }
        // RFC 7606 §5.2: attributes with an error worse than attribute discard but no
        // reachable NLRI to withdraw means the NLRI may not have been found (an MP_REACH past
        // the error, say): the session resets.
        if u.treat_as_withdraw() && !u.announces() {
            let e = u
                .errors
                .iter()
                .find(|e| e.action == ErrorAction::TreatAsWithdraw)
                .cloned()
                .expect("treat_as_withdraw found one");
            return Err(e.with_action(ErrorAction::SessionReset));
        }
        Ok(u)
    }

    /// RFC 4271 §6.3 / RFC 4760 §4: ORIGIN and AS_PATH whenever routes are announced, NEXT_HOP
    /// when IPv4 NLRI is in the classic field. Missing ones are a treat-as-withdraw error (RFC
    /// 7606 §3 d); a malformed one already is.
    fn missing_mandatory(&self) -> Option<u8> {
        if !self.announces() || self.treat_as_withdraw() {
            return None;
        }
        if self.attrs.origin.is_none() {
            return Some(attrs::ORIGIN);
        }
        if self.attrs.as_path.is_none() {
            return Some(attrs::AS_PATH);
        }
        if !self.nlri.is_empty() && self.attrs.next_hop.is_none() {
            return Some(attrs::NEXT_HOP);
        }
        None
    }

    /// True if the message announces any prefix (classic NLRI or MP_REACH_NLRI).
    pub fn announces(&self) -> bool {
        !self.nlri.is_empty() || self.mp_reach.is_some_and(|m| !m.nlri.is_empty())
    }

    /// RFC 7606 §2 "treat-as-withdraw": every announced prefix must be withdrawn instead.
    pub fn treat_as_withdraw(&self) -> bool {
        self.errors
            .iter()
            .any(|e| e.action == ErrorAction::TreatAsWithdraw)
    }

    /// IPv4 unicast withdrawals from the classic field.
    pub fn withdrawn(&self) -> NlriIter<'a> {
        NlriIter::new(self.withdrawn, false, self.add_path.ipv4)
    }

    /// IPv4 unicast announcements from the classic field (next hop in `attrs.next_hop`).
    pub fn nlri(&self) -> NlriIter<'a> {
        NlriIter::new(self.nlri, false, self.add_path.ipv4)
    }

    /// Announcements from MP_REACH_NLRI, if its family is a supported one.
    pub fn mp_nlri(&self) -> Option<(Family, MpNextHop, NlriIter<'a>)> {
        let m = self.mp_reach.filter(|m| m.family.is_supported())?;
        Some((
            m.family,
            m.next_hop,
            NlriIter::new(m.nlri, m.family.is_ipv6(), self.add_path.get(m.family)),
        ))
    }

    /// Withdrawals from MP_UNREACH_NLRI, if its family is a supported one.
    pub fn mp_withdrawn(&self) -> Option<(Family, NlriIter<'a>)> {
        let m = self.mp_unreach.filter(|m| m.family.is_supported())?;
        Some((
            m.family,
            NlriIter::new(m.withdrawn, m.family.is_ipv6(), self.add_path.get(m.family)),
        ))
    }

    /// The family this UPDATE marks End-of-RIB for (RFC 4724 §2): an empty UPDATE for IPv4
    /// unicast, or one holding only an empty MP_UNREACH_NLRI for other families.
    pub fn end_of_rib(&self) -> Option<Family> {
        if !self.withdrawn.is_empty() || !self.nlri.is_empty() || self.mp_reach.is_some() {
            return None;
        }
        match self.mp_unreach {
            None if self.attr_count == 0 => Some(Family::IPV4_UNICAST),
            Some(m) if m.withdrawn.is_empty() && self.attr_count == 1 => Some(m.family),
            _ => None,
        }
    }

    /// The owned equivalent (allocates; for tests and slow paths).
    pub fn to_owned_msg(&self) -> UpdateMsg {
        UpdateMsg {
            withdrawn: self.withdrawn().collect(),
            attrs: self.attrs.clone(),
            nlri: self.nlri().collect(),
            mp_reach: self.mp_reach.map(|m| OwnedMpReach {
                family: m.family,
                next_hop: m.next_hop,
                nlri: NlriIter::new(m.nlri, m.family.is_ipv6(), self.add_path.get(m.family)).collect(),
            }),
            mp_unreach: self.mp_unreach.map(|m| {
                (
                    m.family,
                    NlriIter::new(m.withdrawn, m.family.is_ipv6(), self.add_path.get(m.family)).collect(),
                )
            }),
        }
    }
}

/// MP_REACH_NLRI in owned form.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OwnedMpReach {
    pub family: Family,
    pub next_hop: MpNextHop,
    pub nlri: Vec<Nlri>,
}

/// An UPDATE in owned form, for building messages.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct UpdateMsg {
    pub withdrawn: Vec<Nlri>,
    pub attrs: PathAttrs,
    pub nlri: Vec<Nlri>,
    pub mp_reach: Option<OwnedMpReach>,
    pub mp_unreach: Option<(Family, Vec<Nlri>)>,
}

impl UpdateMsg {
    /// The End-of-RIB marker for `family` (RFC 4724 §2).
    pub fn end_of_rib(family: Family) -> UpdateMsg {
        if family == Family::IPV4_UNICAST {
            UpdateMsg::default()
        } else {
            UpdateMsg {
                mp_unreach: Some((family, Vec::new())),
                ..UpdateMsg::default()
            }
        }
    }

    /// Appends the whole message; the caller keeps it within the size limit.
    pub fn encode(&self, ctx: &Ctx, out: &mut Vec<u8>) {
        let start = header::begin(out, header::TYPE_UPDATE);
        let w_at = out.len();
        out.extend_from_slice(&[0, 0]);
        for n in &self.withdrawn {
            nlri::encode(n, ctx.add_path_tx.ipv4, out);
        }
        let wlen = (out.len() - w_at - 2) as u16;
        out[w_at..w_at + 2].copy_from_slice(&wlen.to_be_bytes());
        let a_at = out.len();
        out.extend_from_slice(&[0, 0]);
        let mut buf = Vec::new();
        if let Some((family, list)) = &self.mp_unreach {
            buf.clear();
            for n in list {
                nlri::encode(n, ctx.add_path_tx.get(*family), &mut buf);
            }
            attrs::encode_mp_unreach(*family, &buf, out);
        }
        if let Some(m) = &self.mp_reach {
            buf.clear();
            for n in &m.nlri {
                nlri::encode(n, ctx.add_path_tx.get(m.family), &mut buf);
            }
            attrs::encode_mp_reach(m.family, &m.next_hop, &buf, out);
        }
        self.attrs.encode(ctx, out);
        let alen = (out.len() - a_at - 2) as u16;
        out[a_at..a_at + 2].copy_from_slice(&alen.to_be_bytes());
        for n in &self.nlri {
            nlri::encode(n, ctx.add_path_tx.ipv4, out);
        }
        header::finish(out, start);
    }
}

/// Packs announcements or withdrawals of one family into messages of at most `ctx.max_len`
/// bytes each. Attributes are encoded once per batch, prefixes appended until a message is full.
pub struct UpdatePacker<'c> {
    ctx: &'c Ctx,
    family: Family,
    /// Encoded attributes (without MP_REACH) and, for MP families, the next hop.
    attrs: Vec<u8>,
    next_hop: Option<MpNextHop>,
    withdraw: bool,
    pending: Vec<u8>,
    /// Finished messages, back to back.
    pub out: Vec<u8>,
    pub messages: usize,
}

impl<'c> UpdatePacker<'c> {
    /// For announcements: `attrs` must carry NEXT_HOP for IPv4 unicast; for other families the
    /// next hop goes in MP_REACH and `attrs.next_hop` is ignored.
    pub fn announce(
        ctx: &'c Ctx,
        family: Family,
        attrs: &PathAttrs,
        mp_next_hop: Option<MpNextHop>,
    ) -> UpdatePacker<'c> {
        let mut a = attrs.clone();
        if family != Family::IPV4_UNICAST {
            a.next_hop = None;
        }
        let mut enc = Vec::with_capacity(64);
        a.encode(ctx, &mut enc);
        UpdatePacker {
            ctx,
            family,
            attrs: enc,
            next_hop: mp_next_hop,
            withdraw: false,
            pending: Vec::new(),
            out: Vec::new(),
            messages: 0,
        }
    }

    pub fn withdraw(ctx: &'c Ctx, family: Family) -> UpdatePacker<'c> {
        UpdatePacker {
            ctx,
            family,
            attrs: Vec::new(),
            next_hop: None,
            withdraw: true,
            pending: Vec::new(),
            out: Vec::new(),
            messages: 0,
        }
    }

    /// Bytes a message needs besides its NLRI.
    fn overhead(&self) -> usize {
        let mp = if self.family == Family::IPV4_UNICAST {
            0
        } else if self.withdraw {
            4 + 3
        } else {
            4 + 5 + 32
        };
        header::HEADER_LEN + 4 + self.attrs.len() + mp
    }

    pub fn push(&mut self, prefix: Nlri) {
        let ap = self.ctx.add_path_tx.get(self.family);
        if self.overhead() + self.pending.len() + nlri::encoded_len(&prefix.prefix, ap) > self.ctx.max_len {
            self.flush();
        }
        nlri::encode(&prefix, ap, &mut self.pending);
    }

    pub fn push_prefix(&mut self, prefix: IpNet) {
        self.push(Nlri::new(prefix));
    }

    /// Ends the current message, if it has any prefix.
    pub fn flush(&mut self) {
        if self.pending.is_empty() {
            return;
        }
        let out = &mut self.out;
        let start = header::begin(out, header::TYPE_UPDATE);
        let v4 = self.family == Family::IPV4_UNICAST;
        if v4 && self.withdraw {
            out.extend_from_slice(&(self.pending.len() as u16).to_be_bytes());
            out.extend_from_slice(&self.pending);
            out.extend_from_slice(&[0, 0]);
        } else {
            out.extend_from_slice(&[0, 0]);
            let a_at = out.len();
            out.extend_from_slice(&[0, 0]);
            if !v4 && self.withdraw {
                attrs::encode_mp_unreach(self.family, &self.pending, out);
            } else if !v4 {
                let nh = self
                    .next_hop
                    .expect("an MP announcement needs a next hop (UpdatePacker::announce)");
                attrs::encode_mp_reach(self.family, &nh, &self.pending, out);
            }
            out.extend_from_slice(&self.attrs);
            let alen = (out.len() - a_at - 2) as u16;
            out[a_at..a_at + 2].copy_from_slice(&alen.to_be_bytes());
            if v4 {
                out.extend_from_slice(&self.pending);
            }
        }
        header::finish(out, start);
        self.pending.clear();
        self.messages += 1;
    }

    /// Flushes and returns the messages, back to back.
    pub fn finish(mut self) -> Vec<u8> {
        self.flush();
        self.out
    }
}
