//! Whole messages: the type dispatch, KEEPALIVE (RFC 4271 §4.4), NOTIFICATION (§4.5),
//! ROUTE-REFRESH (RFC 2918, RFC 7313 subtypes), and the per-session decoding context.

use crate::error::DecodeError;
use crate::family::{AddPathFamilies, Family};
use crate::header::{self, HEADER_LEN};
use crate::notification::{Notification, code, header_sub};
use crate::open::Open;
use crate::update::{Update, UpdateMsg};

/// What the session negotiated that changes the encoding: 4-octet AS numbers (RFC 6793),
/// ADD-PATH per direction (RFC 7911), the message size limit (RFC 8654), and whether the peer
/// is external (RFC 7606 §7 discards some attributes from external peers).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Ctx {
    pub four_octet_as: bool,
    pub add_path_rx: AddPathFamilies,
    pub add_path_tx: AddPathFamilies,
    pub max_len: usize,
    pub ebgp: bool,
}

impl Default for Ctx {
    /// Before OPENs are exchanged: 2-octet AS, no ADD-PATH, 4096-byte messages.
    fn default() -> Ctx {
        Ctx {
            four_octet_as: false,
            add_path_rx: AddPathFamilies::default(),
            add_path_tx: AddPathFamilies::default(),
            max_len: header::MAX_LEN,
            ebgp: false,
        }
    }
}

impl Ctx {
    /// The context both OPENs imply: a capability counts when both sides advertised it.
    pub fn negotiated(local: &Open, remote: &Open) -> Ctx {
        use crate::capability::{CAP_EXTENDED_MESSAGE, CAP_FOUR_OCTET_AS};
        let both = |c| local.has(c) && remote.has(c);
        let mut add_path_rx = AddPathFamilies::default();
        let mut add_path_tx = AddPathFamilies::default();
        for (fam, rx, tx) in [
            (Family::IPV4_UNICAST, &mut add_path_rx.ipv4, &mut add_path_tx.ipv4),
            (Family::IPV6_UNICAST, &mut add_path_rx.ipv6, &mut add_path_tx.ipv6),
        ] {
            let (l, r) = (local.add_path(fam), remote.add_path(fam));
            if let (Some(l), Some(r)) = (l, r) {
                *rx = l.receive && r.send;
                *tx = l.send && r.receive;
            }
        }
        Ctx {
            four_octet_as: both(CAP_FOUR_OCTET_AS),
            add_path_rx,
            add_path_tx,
            max_len: if both(CAP_EXTENDED_MESSAGE) {
                header::MAX_EXTENDED_LEN
            } else {
                header::MAX_LEN
            },
            ebgp: local.asn() != remote.asn(),
        }
    }
}

/// ROUTE-REFRESH (RFC 2918 §3; subtype from RFC 7313 §3.2: 0 normal, 1 BoRR, 2 EoRR).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RouteRefresh {
    pub family: Family,
    pub subtype: u8,
}

// UPDATE dominates the size; boxing it would add an allocation per message on the hot path.
#[allow(clippy::large_enum_variant)]
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Message<'a> {
    Open(Open),
    Update(Update<'a>),
    Notification(Notification),
    Keepalive,
    RouteRefresh(RouteRefresh),
}

impl<'a> Message<'a> {
    /// Decodes one whole message (as delimited by [`header::frame_len`]), checking its header
    /// first.
    pub fn decode(msg: &'a [u8], ctx: &Ctx) -> Result<Message<'a>, DecodeError> {
        let Some(len) = header::frame_len(msg, ctx.max_len)? else {
            return Err(DecodeError::bad_length(
                msg.len() as u16,
                "message shorter than its header",
            ));
        };
        if len != msg.len() {
            return Err(DecodeError::bad_length(
                len as u16,
                "header length differs from the message",
            ));
        }
        Message::decode_framed(msg, ctx)
    }

    /// Decodes one message that [`header::frame_len`] already cut out of the stream (marker and
    /// length checked there, against at most `ctx.max_len`): the speaker frames each message
    /// once, in its connection reader, and decodes it once, here.
    ///
    /// `msg` must be exactly one framed message; anything shorter than a header is refused.
    pub fn decode_framed(msg: &'a [u8], ctx: &Ctx) -> Result<Message<'a>, DecodeError> {
        if msg.len() < HEADER_LEN || msg.len() > ctx.max_len {
            return Err(DecodeError::bad_length(
                msg.len() as u16,
                "message length out of range",
            ));
        }
        let body = &msg[HEADER_LEN..];
        let len16 = msg.len() as u16;
        match msg[18] {
            header::TYPE_OPEN => Open::decode(body).map(Message::Open),
            header::TYPE_UPDATE => Update::decode(body, ctx).map(Message::Update),
            header::TYPE_NOTIFICATION => {
                if body.len() < 2 {
                    return Err(DecodeError::bad_length(
                        len16,
                        "NOTIFICATION shorter than 21 bytes",
                    ));
                }
                Ok(Message::Notification(Notification::new(
                    body[0],
                    body[1],
                    body[2..].to_vec(),
                )))
            }
            header::TYPE_KEEPALIVE => {
                if !body.is_empty() {
                    return Err(DecodeError::bad_length(len16, "KEEPALIVE longer than 19 bytes"));
                }
                Ok(Message::Keepalive)
            }
            header::TYPE_ROUTE_REFRESH => {
                if body.len() != 4 {
                    // RFC 7313 §5: Invalid Message Length, data = the whole message.
                    return Err(DecodeError::new(
                        code::ROUTE_REFRESH,
                        1,
                        msg.to_vec(),
                        "ROUTE-REFRESH length is not 23",
                    ));
                }
                Ok(Message::RouteRefresh(RouteRefresh {
                    family: Family::new(u16::from_be_bytes([body[0], body[1]]), body[3]),
                    subtype: body[2],
                }))
            }
            t => Err(DecodeError::new(
                code::MESSAGE_HEADER,
                header_sub::BAD_MESSAGE_TYPE,
                vec![t],
                "unknown message type",
            )),
        }
    }

    /// The message type code.
    pub fn type_code(&self) -> u8 {
        match self {
            Message::Open(_) => header::TYPE_OPEN,
            Message::Update(_) => header::TYPE_UPDATE,
            Message::Notification(_) => header::TYPE_NOTIFICATION,
            Message::Keepalive => header::TYPE_KEEPALIVE,
            Message::RouteRefresh(_) => header::TYPE_ROUTE_REFRESH,
        }
    }
}

/// A message to send, in owned form.
// Built once per message sent; the size difference does not matter there.
#[allow(clippy::large_enum_variant)]
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum OutMessage {
    Open(Open),
    Update(UpdateMsg),
    Notification(Notification),
    Keepalive,
    RouteRefresh(RouteRefresh),
    /// Pre-encoded messages back to back (from [`crate::UpdatePacker`]).
    Raw(Vec<u8>),
}

impl OutMessage {
    pub fn encode(&self, ctx: &Ctx, out: &mut Vec<u8>) {
        match self {
            OutMessage::Open(o) => o.encode(out),
            OutMessage::Update(u) => u.encode(ctx, out),
            OutMessage::Notification(n) => {
                let s = header::begin(out, header::TYPE_NOTIFICATION);
                out.extend_from_slice(&[n.code, n.subcode]);
                // Keep within the size limit: data is diagnostic only.
                let room = ctx.max_len - HEADER_LEN - 2;
                out.extend_from_slice(&n.data[..n.data.len().min(room)]);
                header::finish(out, s);
            }
            OutMessage::Keepalive => {
                let s = header::begin(out, header::TYPE_KEEPALIVE);
                header::finish(out, s);
            }
            OutMessage::RouteRefresh(r) => {
                let s = header::begin(out, header::TYPE_ROUTE_REFRESH);
                out.extend_from_slice(&r.family.afi.to_be_bytes());
                out.extend_from_slice(&[r.subtype, r.family.safi]);
                header::finish(out, s);
            }
            OutMessage::Raw(b) => out.extend_from_slice(b),
        }
    }

    /// Encoded bytes (allocates; convenience for tests and one-off messages).
    pub fn to_bytes(&self, ctx: &Ctx) -> Vec<u8> {
        let mut v = Vec::new();
        self.encode(ctx, &mut v);
        v
    }
}
