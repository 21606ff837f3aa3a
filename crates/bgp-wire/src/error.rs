//! Decode errors. Each carries the NOTIFICATION that RFC 4271 §6 prescribes for it (code,
//! subcode and the exact data field), and, for UPDATE attribute errors, the action RFC 7606
//! assigns, so a receiver can move from "reset on every error" to treat-as-withdraw or
//! attribute-discard without touching the decoder.

use crate::notification::{Notification, code, header_sub, update_sub};

/// What RFC 7606 §2 says a receiver should do about a malformed UPDATE, weakest first, so
/// `max` is RFC 7606 §3 (h)'s "the approach with the strongest action".
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum ErrorAction {
    /// Ignore the offending attribute and process the rest (RFC 7606 §2 "attribute discard").
    AttributeDiscard,
    /// Withdraw the UPDATE's NLRI instead of resetting (RFC 7606 §2 "treat-as-withdraw").
    TreatAsWithdraw,
    /// Send the NOTIFICATION and close the session (RFC 4271 behaviour; still required by RFC
    /// 7606 when the NLRI cannot be located, or for MP_REACH/MP_UNREACH errors).
    SessionReset,
}

impl ErrorAction {
    /// The RFC's name for the approach, for logs.
    pub fn name(self) -> &'static str {
        match self {
            ErrorAction::AttributeDiscard => "attribute-discard",
            ErrorAction::TreatAsWithdraw => "treat-as-withdraw",
            ErrorAction::SessionReset => "session-reset",
        }
    }
}

/// The offending attribute as it was on the wire (RFC 7606 §6 asks to log it).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct AttrRef {
    pub type_code: u8,
    pub flags: u8,
    /// The value length from the attribute header (it may overrun the field).
    pub length: usize,
}

/// A message that could not be decoded, with the NOTIFICATION to answer it with.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{reason}: {notification}")]
pub struct DecodeError {
    pub notification: Notification,
    pub action: ErrorAction,
    /// For attribute errors, the attribute (for logs: "the offending attribute").
    pub attribute: Option<AttrRef>,
    /// What was wrong, for logs.
    pub reason: &'static str,
}

impl DecodeError {
    pub fn new(code: u8, subcode: u8, data: Vec<u8>, reason: &'static str) -> DecodeError {
        DecodeError {
            notification: Notification::new(code, subcode, data),
            action: ErrorAction::SessionReset,
            attribute: None,
            reason,
        }
    }

    /// Message Header Error / Bad Message Length: the data is the erroneous length field.
    pub fn bad_length(len: u16, reason: &'static str) -> DecodeError {
        DecodeError::new(
            code::MESSAGE_HEADER,
            header_sub::BAD_MESSAGE_LENGTH,
            len.to_be_bytes().to_vec(),
            reason,
        )
    }

    /// An UPDATE error without data (e.g. Malformed Attribute List, Invalid Network Field).
    pub fn update(subcode: u8, action: ErrorAction, reason: &'static str) -> DecodeError {
        DecodeError {
            notification: Notification::new(code::UPDATE_MESSAGE, subcode, Vec::new()),
            action,
            attribute: None,
            reason,
        }
    }

    /// An UPDATE error about one attribute whose data is the whole attribute (type, length,
    /// value), as RFC 4271 §6.3 asks for flags, length, ORIGIN, NEXT_HOP and optional errors.
    pub fn attribute(
        subcode: u8,
        action: ErrorAction,
        attr: AttrRef,
        raw_attribute: &[u8],
        reason: &'static str,
    ) -> DecodeError {
        DecodeError {
            notification: Notification::new(code::UPDATE_MESSAGE, subcode, raw_attribute.to_vec()),
            action,
            attribute: Some(attr),
            reason,
        }
    }

    /// The same error handled with another approach (e.g. escalated to a session reset).
    pub fn with_action(mut self, action: ErrorAction) -> DecodeError {
        self.action = action;
        self
    }

    /// Missing Well-known Attribute: the data is the missing attribute's type code.
    pub fn missing(type_code: u8) -> DecodeError {
        DecodeError {
            notification: Notification::new(
                code::UPDATE_MESSAGE,
                update_sub::MISSING_WELL_KNOWN,
                vec![type_code],
            ),
            action: ErrorAction::TreatAsWithdraw,
            attribute: Some(AttrRef {
                type_code,
                flags: 0,
                length: 0,
            }),
            reason: "missing well-known attribute",
        }
    }
}
