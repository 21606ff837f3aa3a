//! Decode errors. Each carries the NOTIFICATION that RFC 4271 §6 prescribes for it (code,
//! subcode and the exact data field), and, for UPDATE attribute errors, the action RFC 7606
//! assigns, so a receiver can move from "reset on every error" to treat-as-withdraw or
//! attribute-discard without touching the decoder.

use crate::notification::{Notification, code, header_sub, update_sub};

/// What RFC 7606 §2 says a receiver should do about a malformed UPDATE.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ErrorAction {
    /// Send the NOTIFICATION and close the session (RFC 4271 behaviour; still required by RFC
    /// 7606 when the NLRI cannot be located, or for MP_REACH/MP_UNREACH errors).
    SessionReset,
    /// Withdraw the UPDATE's NLRI instead of resetting (RFC 7606 §2 "treat-as-withdraw").
    TreatAsWithdraw,
    /// Ignore the offending attribute and process the rest (RFC 7606 §2 "attribute discard").
    AttributeDiscard,
}

/// A message that could not be decoded, with the NOTIFICATION to answer it with.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{reason}: {notification}")]
pub struct DecodeError {
    pub notification: Notification,
    pub action: ErrorAction,
    /// For attribute errors, the attribute type code (for logs: "the offending attribute").
    pub attribute: Option<u8>,
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
        type_code: u8,
        raw_attribute: &[u8],
        reason: &'static str,
    ) -> DecodeError {
        DecodeError {
            notification: Notification::new(code::UPDATE_MESSAGE, subcode, raw_attribute.to_vec()),
            action,
            attribute: Some(type_code),
            reason,
        }
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
            attribute: Some(type_code),
            reason: "missing well-known attribute",
        }
    }
}
