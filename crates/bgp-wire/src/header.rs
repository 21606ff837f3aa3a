//! The 19-byte message header (RFC 4271 §4.1) and stream framing.

use crate::error::DecodeError;
use crate::notification::{code, header_sub};

pub const MARKER: [u8; 16] = [0xff; 16];
pub const HEADER_LEN: usize = 19;
/// The largest message without the Extended Message capability (RFC 4271 §4.1).
pub const MAX_LEN: usize = 4096;
/// The largest message with the Extended Message capability (RFC 8654).
pub const MAX_EXTENDED_LEN: usize = 65535;

pub const TYPE_OPEN: u8 = 1;
pub const TYPE_UPDATE: u8 = 2;
pub const TYPE_NOTIFICATION: u8 = 3;
pub const TYPE_KEEPALIVE: u8 = 4;
pub const TYPE_ROUTE_REFRESH: u8 = 5;

/// Finds the first whole message in `buf`. Returns `Ok(None)` when more bytes are needed,
/// `Ok(Some(len))` for a message of `len` bytes at the start of `buf`. Checks the marker and the
/// length bounds (19 ..= `max_len`) before the body arrives, so a bad stream is rejected early.
pub fn frame_len(buf: &[u8], max_len: usize) -> Result<Option<usize>, DecodeError> {
    let marker_seen = buf.len().min(16);
    if buf[..marker_seen] != MARKER[..marker_seen] {
        return Err(DecodeError::new(
            code::MESSAGE_HEADER,
            header_sub::CONNECTION_NOT_SYNCHRONIZED,
            Vec::new(),
            "header marker is not all ones",
        ));
    }
    if buf.len() < HEADER_LEN {
        return Ok(None);
    }
    let len = u16::from_be_bytes([buf[16], buf[17]]);
    if (len as usize) < HEADER_LEN || len as usize > max_len {
        return Err(DecodeError::bad_length(len, "message length out of range"));
    }
    Ok((buf.len() >= len as usize).then_some(len as usize))
}

/// Appends a header with a placeholder length; returns the offset to patch with [`finish`].
pub(crate) fn begin(out: &mut Vec<u8>, msg_type: u8) -> usize {
    let start = out.len();
    out.extend_from_slice(&MARKER);
    out.extend_from_slice(&[0, 0, msg_type]);
    start
}

/// Writes the final length into a header started at `start`.
pub(crate) fn finish(out: &mut [u8], start: usize) {
    let len = (out.len() - start) as u16;
    out[start + 16..start + 18].copy_from_slice(&len.to_be_bytes());
}
