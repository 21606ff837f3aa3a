//! An [`Update`] detached from the buffer it borrows, so it can travel to another task with
//! that buffer and be walked there without being decoded again.
//!
//! The speaker decodes each UPDATE once, in the peer task (whose session must see decode
//! errors), and applies it in the core (which owns the RIB). Between the two, the decoded
//! attributes move as they are and the NLRI fields become offsets into the batch of messages
//! both sides share: [`Update::detach`] there, [`DetachedUpdate::attach`] here.

use std::ops::Range;

use crate::attrs::{MpNextHop, MpReach, MpUnreach, PathAttrs};
use crate::error::DecodeError;
use crate::family::{AddPathFamilies, Family};
use crate::update::Update;

/// A decoded UPDATE whose byte fields are offsets into a buffer it does not hold. Kept small
/// (its attributes and 32 bytes): the speaker has one in flight per UPDATE received, and a one-prefix UPDATE is
/// about 55 bytes on the wire.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DetachedUpdate {
    attrs: PathAttrs,
    withdrawn: Span,
    nlri: Span,
    attr_count: u32,
    add_path: AddPathFamilies,
    /// What most IPv4 UPDATEs lack, boxed so they do not carry its size.
    rest: Option<Box<Rest>>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
struct Rest {
    mp_reach: Option<(Family, MpNextHop, Span)>,
    mp_unreach: Option<(Family, Span)>,
    errors: Vec<DecodeError>,
}

/// Offset and length inside the buffer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Span(u32, u32);

impl Span {
    /// Where `part` lies inside `buf`. Panics if it does not: a caller bug, not input.
    fn of(buf: &[u8], part: &[u8]) -> Span {
        if part.is_empty() {
            return Span(0, 0);
        }
        let start = (part.as_ptr() as usize).wrapping_sub(buf.as_ptr() as usize);
        assert!(
            start <= buf.len() && part.len() <= buf.len() - start && buf.len() <= u32::MAX as usize,
            "UPDATE field outside the buffer it is detached from"
        );
        Span(start as u32, part.len() as u32)
    }

    fn range(self) -> Range<usize> {
        self.0 as usize..(self.0 + self.1) as usize
    }
}

impl<'a> Update<'a> {
    /// Detaches the UPDATE from `buf`, the buffer it was decoded from (the message itself or a
    /// batch holding it). Panics if the UPDATE does not borrow from `buf`.
    pub fn detach(self, buf: &[u8]) -> DetachedUpdate {
        let rest =
            (self.mp_reach.is_some() || self.mp_unreach.is_some() || !self.errors.is_empty()).then(|| {
                Box::new(Rest {
                    mp_reach: self
                        .mp_reach
                        .map(|m| (m.family, m.next_hop, Span::of(buf, m.nlri))),
                    mp_unreach: self.mp_unreach.map(|m| (m.family, Span::of(buf, m.withdrawn))),
                    errors: self.errors,
                })
            });
        DetachedUpdate {
            withdrawn: Span::of(buf, self.withdrawn),
            nlri: Span::of(buf, self.nlri),
            attrs: self.attrs,
            // Attributes are counted in a message of at most 64 KiB.
            attr_count: self.attr_count as u32,
            add_path: self.add_path,
            rest,
        }
    }
}

impl DetachedUpdate {
    /// The UPDATE again, borrowing `buf`, which must hold the same bytes as the buffer given to
    /// [`Update::detach`] (panics if it is shorter). Nothing is decoded or checked again.
    pub fn attach(self, buf: &[u8]) -> Update<'_> {
        let (mp_reach, mp_unreach, errors) = match self.rest {
            Some(r) => (r.mp_reach, r.mp_unreach, r.errors),
            None => (None, None, Vec::new()),
        };
        Update {
            withdrawn: &buf[self.withdrawn.range()],
            attrs: self.attrs,
            nlri: &buf[self.nlri.range()],
            mp_reach: mp_reach.map(|(family, next_hop, r)| MpReach {
                family,
                next_hop,
                nlri: &buf[r.range()],
            }),
            mp_unreach: mp_unreach.map(|(family, r)| MpUnreach {
                family,
                withdrawn: &buf[r.range()],
            }),
            add_path: self.add_path,
            attr_count: self.attr_count as usize,
            errors,
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::attrs::{Origin, PathAttrs};
    use crate::family::Family;
    use crate::message::{Ctx, Message, OutMessage};
    use crate::nlri::Nlri;
    use crate::update::{OwnedMpReach, UpdateMsg};
    use crate::{AsPath, MpNextHop};

    fn nlri(s: &str) -> Nlri {
        Nlri {
            prefix: s.parse().unwrap(),
            path_id: 0,
        }
    }

    #[test]
    fn detach_then_attach_gives_the_same_update_over_a_batch() {
        let ctx = Ctx::default();
        let attrs = PathAttrs {
            origin: Some(Origin::Igp),
            as_path: Some(AsPath::default()),
            next_hop: Some("172.20.42.81".parse().unwrap()),
            ..PathAttrs::default()
        };
        let v4 = UpdateMsg {
            withdrawn: vec![nlri("10.233.1.0/26")],
            attrs: attrs.clone(),
            nlri: vec![nlri("10.233.2.0/26"), nlri("10.233.3.0/26")],
            ..UpdateMsg::default()
        };
        let v6 = UpdateMsg {
            attrs,
            mp_reach: Some(OwnedMpReach {
                family: Family::IPV6_UNICAST,
                next_hop: MpNextHop::V6 {
                    global: "fd80::81".parse().unwrap(),
                    link_local: None,
                },
                nlri: vec![nlri("fd00:1::/64")],
            }),
            mp_unreach: Some((Family::IPV6_UNICAST, vec![nlri("fd00:2::/64")])),
            ..UpdateMsg::default()
        };
        // A KEEPALIVE first, so the UPDATEs sit at offsets other than 0.
        let mut batch = OutMessage::Keepalive.to_bytes(&ctx);
        let mut spans = Vec::new();
        for u in [&v4, &v6] {
            let start = batch.len();
            u.encode(&ctx, &mut batch);
            spans.push(start..batch.len());
        }
        for (span, want) in spans.into_iter().zip([&v4, &v6]) {
            let Ok(Message::Update(u)) = Message::decode_framed(&batch[span], &ctx) else {
                panic!("decodes")
            };
            let copy = u.clone();
            let d = u.detach(&batch);
            // The buffer moved (as it does between tasks): same bytes, other address.
            let moved = batch.clone();
            let back = d.attach(&moved);
            assert_eq!(back, copy);
            assert_eq!(back.to_owned_msg(), *want);
        }
    }

    #[test]
    fn small_enough_to_have_one_in_flight_per_update() {
        // The attributes, two spans, a count, the ADD-PATH flags and one pointer.
        let attrs = std::mem::size_of::<PathAttrs>();
        assert!(std::mem::size_of::<super::DetachedUpdate>() <= attrs + 32);
    }

    #[test]
    #[should_panic(expected = "outside the buffer")]
    fn detaching_from_another_buffer_is_a_bug() {
        let ctx = Ctx::default();
        let withdraw = UpdateMsg {
            withdrawn: vec![nlri("10.233.1.0/26")],
            ..UpdateMsg::default()
        };
        let bytes = OutMessage::Update(withdraw).to_bytes(&ctx);
        let other = bytes.clone();
        let Ok(Message::Update(u)) = Message::decode(&bytes, &ctx) else {
            panic!("decodes")
        };
        let _ = u.detach(&other);
    }
}
