//! The netlink socket of one namespace: requests with an ACK, dumps, and batches with a single
//! ACK at the end (errors still come back one by one, attributed by sequence number).

use netlink_packet_core::{
    NLM_F_ACK, NLM_F_DUMP, NLM_F_REQUEST, NetlinkBuffer, NetlinkHeader, NetlinkMessage, NetlinkPayload,
};
use netlink_packet_route::RouteNetlinkMessage;
use netlink_sys::{Socket, SocketAddr, protocols::NETLINK_ROUTE};

use crate::error::{Error, Result};
use crate::netns::NetnsFd;

const NLMSG_ERROR: u16 = 2;
const NLMSG_DONE: u16 = 3;
const NLM_F_MULTI: u16 = 2;
/// Extended-ack TLVs follow the error (`NLM_F_ACK_TLVS` in `nlmsg_flags` of the error message).
const NLM_F_ACK_TLVS: u16 = 0x200;
/// The error carries only the request's header, not its payload (`NLM_F_CAPPED`).
const NLM_F_CAPPED: u16 = 0x100;
const NLMSGERR_ATTR_MSG: u16 = 1;
/// Bytes of requests per `sendmsg` in a batch. The kernel processes a write synchronously inside
/// `sendmsg`, so bigger writes only save system calls (the raw-netlink anchor of docs/BENCHMARKS.md
/// writes 512 routes ≈ 32 KiB per call).
const BATCH_BYTES: usize = 60 * 1024;
const RECV_BUF: usize = 256 * 1024;

/// One rtnetlink socket bound to one network namespace. Not `Sync`: one owner thread at a time
/// (it is `Send`, so it can be moved to the thread that owns it).
pub struct Handle {
    socket: Socket,
    seq: u32,
    netns: NetnsFd,
    rx: Vec<u8>,
}

/// One message of a batch that the kernel refused.
#[derive(Debug)]
pub struct Refused {
    /// Index of the message in the batch.
    pub index: usize,
    pub errno: i32,
    pub detail: Option<String>,
}

impl Handle {
    /// A socket in the calling thread's namespace.
    pub fn new() -> Result<Handle> {
        let netns = NetnsFd::current()?;
        Handle::with_socket(open_socket()?, netns)
    }

    /// A socket in `netns`, opened from a short-lived thread that enters it (the calling thread's
    /// namespace is untouched). The socket stays bound to `netns`.
    pub fn open(netns: &NetnsFd) -> Result<Handle> {
        let socket = netns.run(open_socket)??;
        Handle::with_socket(socket, netns.try_clone()?)
    }

    /// `open(/run/netns/<name>)`.
    pub fn open_named(name: &str) -> Result<Handle> {
        Handle::open(&NetnsFd::named(name)?)
    }

    fn with_socket(socket: Socket, netns: NetnsFd) -> Result<Handle> {
        Ok(Handle {
            socket,
            seq: 0,
            netns,
            rx: vec![0; RECV_BUF],
        })
    }

    /// The namespace this socket lives in.
    pub fn netns(&self) -> &NetnsFd {
        &self.netns
    }

    pub(crate) fn next_seq(&mut self) -> u32 {
        self.seq = self.seq.wrapping_add(1).max(1);
        self.seq
    }

    /// Serialises `msg` at the end of `out`, returning its sequence number.
    pub(crate) fn encode(&mut self, msg: RouteNetlinkMessage, flags: u16, out: &mut Vec<u8>) -> u32 {
        let seq = self.next_seq();
        let mut header = NetlinkHeader::default();
        header.flags = NLM_F_REQUEST | flags;
        header.sequence_number = seq;
        let mut nl = NetlinkMessage::new(header, NetlinkPayload::InnerMessage(msg));
        nl.finalize();
        let start = out.len();
        out.resize(start + nl.buffer_len(), 0);
        nl.serialize(&mut out[start..]);
        seq
    }

    fn send(&self, buf: &[u8], op: &dyn Fn() -> String) -> Result<()> {
        send_whole(&self.socket, buf, op)
    }

    fn recv(&mut self, flags: libc::c_int, op: &dyn Fn() -> String) -> Result<Option<usize>> {
        let mut buf = std::mem::take(&mut self.rx);
        let r = self.socket.recv(&mut &mut buf[..], flags);
        self.rx = buf;
        match r {
            Ok(n) => Ok(Some(n)),
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => Ok(None),
            Err(e) => Err(Error::io(format!("{}: netlink receive", op()), e)),
        }
    }

    /// Sends one request with `NLM_F_ACK` and waits for its ACK.
    pub(crate) fn request(
        &mut self,
        msg: RouteNetlinkMessage,
        flags: u16,
        op: &dyn Fn() -> String,
    ) -> Result<()> {
        let mut buf = Vec::with_capacity(256);
        let seq = self.encode(msg, flags | NLM_F_ACK, &mut buf);
        self.send(&buf, op)?;
        loop {
            let n = self.recv(0, op)?.unwrap_or(0);
            for m in frames(&self.rx[..n]) {
                if m.seq == seq && m.kind == NLMSG_ERROR {
                    return match m.error() {
                        None => Ok(()),
                        Some((errno, detail)) => Err(Error::Kernel {
                            op: op(),
                            errno,
                            detail,
                        }),
                    };
                }
            }
        }
    }

    /// Sends one non-dump `GET` request and returns its single reply (`Ok(None)` never happens for
    /// a well-formed request: the kernel answers with the object or an error).
    pub(crate) fn get(
        &mut self,
        msg: RouteNetlinkMessage,
        op: &dyn Fn() -> String,
    ) -> Result<Option<RouteNetlinkMessage>> {
        let mut buf = Vec::with_capacity(64);
        let seq = self.encode(msg, 0, &mut buf);
        self.send(&buf, op)?;
        loop {
            let n = self.recv(0, op)?.unwrap_or(0);
            for m in frames(&self.rx[..n]) {
                if m.seq != seq {
                    continue;
                }
                if m.kind == NLMSG_ERROR {
                    return match m.error() {
                        None => Ok(None),
                        Some((errno, detail)) => Err(Error::Kernel {
                            op: op(),
                            errno,
                            detail,
                        }),
                    };
                }
                let parsed = NetlinkMessage::<RouteNetlinkMessage>::deserialize(m.bytes).map_err(|e| {
                    Error::Decode {
                        op: op(),
                        detail: e.to_string(),
                    }
                })?;
                return Ok(match parsed.payload {
                    NetlinkPayload::InnerMessage(inner) => Some(inner),
                    _ => None,
                });
            }
        }
    }

    /// Sends a dump request and collects every reply message.
    pub(crate) fn dump(
        &mut self,
        msg: RouteNetlinkMessage,
        op: &dyn Fn() -> String,
    ) -> Result<Vec<RouteNetlinkMessage>> {
        let mut buf = Vec::with_capacity(64);
        let seq = self.encode(msg, NLM_F_DUMP, &mut buf);
        self.send(&buf, op)?;
        let mut out = Vec::new();
        loop {
            let n = self.recv(0, op)?.unwrap_or(0);
            let mut done = false;
            for m in frames(&self.rx[..n]) {
                if m.seq != seq {
                    continue;
                }
                match m.kind {
                    NLMSG_DONE => done = true,
                    NLMSG_ERROR => {
                        if let Some((errno, detail)) = m.error() {
                            return Err(Error::Kernel {
                                op: op(),
                                errno,
                                detail,
                            });
                        }
                        done = true;
                    }
                    _ => {
                        let parsed =
                            NetlinkMessage::<RouteNetlinkMessage>::deserialize(m.bytes).map_err(|e| {
                                Error::Decode {
                                    op: op(),
                                    detail: e.to_string(),
                                }
                            })?;
                        if let NetlinkPayload::InnerMessage(inner) = parsed.payload {
                            out.push(inner);
                        }
                        if m.flags & NLM_F_MULTI == 0 {
                            done = true;
                        }
                    }
                }
            }
            if done {
                return Ok(out);
            }
        }
    }

    /// Sends `total` messages in as few writes as possible, without a per-message ACK; only the
    /// last one asks for an ACK, and since the kernel processes a socket's requests in order,
    /// receiving it means every earlier one was processed. Refused messages are reported by index.
    ///
    /// The encoder: `encode(handle, i, extra_flags, buf)` appends message `i` (with
    /// `extra_flags` added to its own) and returns its sequence number from [`Handle::next_seq`].
    pub(crate) fn batch_with(
        &mut self,
        total: usize,
        mut encode: impl FnMut(&mut Handle, usize, u16, &mut Vec<u8>) -> u32,
        op: &dyn Fn() -> String,
    ) -> Result<Vec<Refused>> {
        if total == 0 {
            return Ok(Vec::new());
        }
        let mut seqs = Vec::with_capacity(total);
        let mut refused = Vec::new();
        let mut buf = Vec::with_capacity(BATCH_BYTES + 4096);
        let mut last_seq = 0;
        for i in 0..total {
            let ack = if i + 1 == total { NLM_F_ACK } else { 0 };
            last_seq = encode(self, i, NLM_F_REQUEST | ack, &mut buf);
            seqs.push(last_seq);
            if buf.len() >= BATCH_BYTES || i + 1 == total {
                self.send(&buf, op)?;
                buf.clear();
                // Drain the errors so far so the receive queue never overflows. Only the final
                // message carries the ACK we wait for (sequence numbers are never 0).
                let waiting_for = if i + 1 == total { last_seq } else { 0 };
                while let Some(n) = self.recv(libc::MSG_DONTWAIT, op)? {
                    if self.collect_errors(n, &seqs, &mut refused, waiting_for) {
                        return Ok(refused);
                    }
                }
            }
        }
        loop {
            let n = self.recv(0, op)?.unwrap_or(0);
            if self.collect_errors(n, &seqs, &mut refused, last_seq) {
                return Ok(refused);
            }
        }
    }

    /// Records refusals among the first `n` received bytes; true once the final ACK was seen.
    fn collect_errors(&self, n: usize, seqs: &[u32], refused: &mut Vec<Refused>, last: u32) -> bool {
        let mut finished = false;
        for m in frames(&self.rx[..n]) {
            if m.kind != NLMSG_ERROR {
                continue;
            }
            if let Some((errno, detail)) = m.error()
                && let Some(index) = index_of(seqs, m.seq)
            {
                refused.push(Refused { index, errno, detail });
            }
            if m.seq == last {
                finished = true;
            }
        }
        finished
    }
}

/// Sequence numbers are assigned in increasing order within a batch (wrapping is handled by a
/// fallback linear scan).
fn index_of(seqs: &[u32], seq: u32) -> Option<usize> {
    seqs.binary_search(&seq)
        .ok()
        .or_else(|| seqs.iter().position(|s| *s == seq))
}

fn open_socket() -> Result<Socket> {
    let mut s = Socket::new(NETLINK_ROUTE).map_err(|e| Error::io("open rtnetlink socket", e))?;
    s.bind(&SocketAddr::new(0, 0))
        .map_err(|e| Error::io("bind rtnetlink socket", e))?;
    // Best effort: extended ACK messages and capped errors (smaller replies).
    let _ = s.set_ext_ack(true);
    let _ = s.set_cap_ack(true);
    // A large receive buffer so that errors of a big batch are never dropped (SO_RCVBUFFORCE
    // needs CAP_NET_ADMIN, which every writer has; fall back to SO_RCVBUF).
    let size: libc::c_int = 8 << 20;
    // SAFETY: setsockopt with a valid fd and a pointer to a live c_int of the given size.
    let rc = unsafe {
        libc::setsockopt(
            std::os::fd::AsRawFd::as_raw_fd(&s),
            libc::SOL_SOCKET,
            libc::SO_RCVBUFFORCE,
            (&size as *const libc::c_int).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    if rc != 0 {
        let _ = s.set_rx_buf_sz(size as usize);
    }
    Ok(s)
}

/// A raw netlink message inside a receive buffer.
pub(crate) struct Frame<'a> {
    pub(crate) kind: u16,
    pub(crate) flags: u16,
    pub(crate) seq: u32,
    pub(crate) bytes: &'a [u8],
}

impl Frame<'_> {
    /// For an `NLMSG_ERROR`: `None` for an ACK, else the errno and the extended-ack message.
    pub(crate) fn error(&self) -> Option<(i32, Option<String>)> {
        let b = self.bytes;
        if b.len() < 20 {
            return Some((libc::EIO, Some("truncated netlink error".into())));
        }
        let code = i32::from_ne_bytes([b[16], b[17], b[18], b[19]]);
        if code == 0 {
            return None;
        }
        let mut detail = None;
        if self.flags & NLM_F_ACK_TLVS != 0 && b.len() >= 36 {
            // The echoed request: its header only when capped, else the whole request.
            let inner_len = u32::from_ne_bytes([b[20], b[21], b[22], b[23]]) as usize;
            let echoed = if self.flags & NLM_F_CAPPED != 0 {
                16
            } else {
                inner_len
            };
            let mut off = 20 + align4(echoed);
            while off + 4 <= b.len() {
                let len = u16::from_ne_bytes([b[off], b[off + 1]]) as usize;
                let ty = u16::from_ne_bytes([b[off + 2], b[off + 3]]) & 0x3fff;
                if len < 4 || off + len > b.len() {
                    break;
                }
                if ty == NLMSGERR_ATTR_MSG {
                    let s = &b[off + 4..off + len];
                    let s = s.split(|c| *c == 0).next().unwrap_or_default();
                    detail = Some(String::from_utf8_lossy(s).into_owned());
                }
                off += align4(len);
            }
        }
        Some((code.saturating_neg(), detail))
    }
}

fn align4(n: usize) -> usize {
    (n + 3) & !3
}

/// Sends `buf` as one datagram; a short send is an error (a netlink message is never split).
/// Every socket of the crate (rtnetlink, nf_tables, ctnetlink) sends through it.
pub(crate) fn send_whole(socket: &Socket, buf: &[u8], op: &dyn Fn() -> String) -> Result<()> {
    let n = socket
        .send(buf, 0)
        .map_err(|e| Error::io(format!("{}: netlink send", op()), e))?;
    if n != buf.len() {
        return Err(Error::Decode {
            op: op(),
            detail: format!("short netlink send ({n} of {} bytes)", buf.len()),
        });
    }
    Ok(())
}

pub(crate) fn frames(mut buf: &[u8]) -> impl Iterator<Item = Frame<'_>> {
    std::iter::from_fn(move || {
        let nb = NetlinkBuffer::new_checked(buf).ok()?;
        let len = nb.length() as usize;
        if len < 16 || len > buf.len() {
            return None;
        }
        let f = Frame {
            kind: nb.message_type(),
            flags: nb.flags(),
            seq: nb.sequence_number(),
            bytes: &buf[..len],
        };
        buf = &buf[align4(len).min(buf.len())..];
        Some(f)
    })
}
