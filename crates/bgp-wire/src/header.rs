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

/// The messages of `buf`, which [`frame_len`] already split into whole messages back to back
/// (a connection reader's output): each is cut at the length its header gives, without
/// checking the marker or the bounds again. A buffer that was not framed ends the walk at the
/// first length that does not fit (never a panic).
pub fn framed(buf: &[u8]) -> Framed<'_> {
    Framed { rest: buf }
}

/// Iterator of [`framed`].
pub struct Framed<'a> {
    rest: &'a [u8],
}

impl<'a> Iterator for Framed<'a> {
    type Item = &'a [u8];

    fn next(&mut self) -> Option<&'a [u8]> {
        if self.rest.len() < HEADER_LEN {
            return None;
        }
        let len = usize::from(u16::from_be_bytes([self.rest[16], self.rest[17]]));
        if len < HEADER_LEN || len > self.rest.len() {
            self.rest = &[];
            return None;
        }
        let (msg, rest) = self.rest.split_at(len);
        self.rest = rest;
        Some(msg)
    }
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::message::{Ctx, OutMessage};

    #[test]
    fn framed_cuts_what_frame_len_delimited_and_stops_on_garbage() {
        let ctx = Ctx::default();
        let mut buf = OutMessage::Keepalive.to_bytes(&ctx);
        let open_len = buf.len();
        buf.extend(
            OutMessage::RouteRefresh(crate::RouteRefresh {
                family: crate::Family::IPV4_UNICAST,
                subtype: 0,
            })
            .to_bytes(&ctx),
        );
        let lens: Vec<usize> = framed(&buf).map(<[u8]>::len).collect();
        assert_eq!(lens, [open_len, 23]);
        // A length past the end, or below a header, ends the walk instead of panicking.
        let mut bad = buf.clone();
        bad[17] = 200;
        assert_eq!(framed(&bad).count(), 0);
        bad[16..18].copy_from_slice(&3u16.to_be_bytes());
        assert_eq!(framed(&bad).count(), 0);
        assert_eq!(framed(&buf[..30]).count(), 1);
    }
}
