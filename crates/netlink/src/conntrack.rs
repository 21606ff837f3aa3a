//! Connection tracking over ctnetlink (`NETLINK_NETFILTER`, subsystem `NFNL_SUBSYS_CTNETLINK`):
//! list a namespace's flows and delete the ones that involve given addresses, what
//! `conntrack --delete --orig-src ADDR` does, without the `conntrack` binary.
//!
//! Why: a workload's address can be given to a new pod under other policy; a flow the old pod's
//! policy allowed must not live on in the conntrack table, where `ct state established` would
//! accept it for the new pod. Felix (`felix/conntrack/conntrack.go`, called by the route
//! table's conntrack cleanup once a workload route is gone) deletes by original and reply
//! source; [`Conntrack::delete_flows_of`] deletes every flow with the address in either tuple,
//! as source or destination (a superset: it also catches the pod's flows through NAT).
//!
//! A delete echoes the flow's original tuple as the kernel dumped it (so protocol details such
//! as ICMP ids or GRE keys need no encoding here), its zone, and its id (so a new flow that
//! happens to reuse the tuple in between is not deleted).
//!
//! The dump is outside input: every length is checked and a malformed message is an
//! [`Error::Decode`], never a panic (`fuzz/fuzz_targets/conntrack_decode.rs` feeds
//! [`decode_flow`] arbitrary bytes).
//!
//! Kernel interface: `linux/netfilter/nfnetlink_conntrack.h`, `nfnetlink.h`.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::os::fd::AsRawFd;
use std::time::Duration;

use netlink_sys::{Socket, SocketAddr};

use crate::error::{Error, Result};
use crate::handle::frames;
use crate::netns::NetnsFd;
use crate::nftables::attr::{AttrWriter, Attrs, DResult, DecodeError};

const NETLINK_NETFILTER: isize = 12;
const NFNL_SUBSYS_CTNETLINK: u16 = 1;
const IPCTNL_MSG_CT_GET: u16 = 1;
const IPCTNL_MSG_CT_DELETE: u16 = 2;
const NFNETLINK_V0: u8 = 0;

const NLM_F_REQUEST: u16 = 0x1;
const NLM_F_MULTI: u16 = 0x2;
const NLM_F_ACK: u16 = 0x4;
const NLM_F_DUMP: u16 = 0x300;
const NLMSG_ERROR: u16 = 2;
const NLMSG_DONE: u16 = 3;
const NLA_F_NESTED: u16 = 0x8000;

// `enum ctattr_type`.
const CTA_TUPLE_ORIG: u16 = 1;
const CTA_TUPLE_REPLY: u16 = 2;
const CTA_ID: u16 = 12;
const CTA_ZONE: u16 = 18;
// `enum ctattr_tuple`, `ctattr_ip`, `ctattr_l4proto`.
const CTA_TUPLE_IP: u16 = 1;
const CTA_TUPLE_PROTO: u16 = 2;
const CTA_IP_V4_SRC: u16 = 1;
const CTA_IP_V4_DST: u16 = 2;
const CTA_IP_V6_SRC: u16 = 3;
const CTA_IP_V6_DST: u16 = 4;
const CTA_PROTO_NUM: u16 = 1;
const CTA_PROTO_SRC_PORT: u16 = 2;
const CTA_PROTO_DST_PORT: u16 = 3;

/// Delete requests per `sendmsg` (each ~100 bytes; the replies stay far below the socket's
/// receive buffer).
const DELETES_PER_WRITE: usize = 256;
const RECV_BUF: usize = 256 * 1024;
const REPLY_WAIT: Duration = Duration::from_secs(10);

/// One direction of a flow: what `conntrack -L` prints as `src= dst= sport= dport=`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Tuple {
    pub src: IpAddr,
    pub dst: IpAddr,
    /// IP protocol number (6 TCP, 17 UDP, 1 ICMP, 58 ICMPv6, …).
    pub protocol: u8,
    /// Ports, for the protocols that have them.
    pub src_port: Option<u16>,
    pub dst_port: Option<u16>,
}

impl Tuple {
    /// True when `addr` is this direction's source or destination.
    pub fn has(&self, addr: IpAddr) -> bool {
        self.src == addr || self.dst == addr
    }
}

/// One conntrack entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Flow {
    pub original: Tuple,
    pub reply: Tuple,
    /// The conntrack zone (0 unless set by a `ct zone` rule).
    pub zone: u16,
    /// The kernel's id of the entry, when it sent one.
    pub id: Option<u32>,
    /// `CTA_TUPLE_ORIG` as dumped, echoed in a delete.
    raw_original: Vec<u8>,
}

impl Flow {
    /// True when `addr` appears in either tuple, as source or destination.
    pub fn involves(&self, addr: IpAddr) -> bool {
        self.original.has(addr) || self.reply.has(addr)
    }
}

/// What [`Conntrack::delete_flows_of`] did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Deleted {
    /// Flows listed (both families asked for).
    pub listed: usize,
    /// Flows deleted.
    pub deleted: usize,
    /// Matching flows that were already gone when deleted (expired meanwhile).
    pub vanished: usize,
}

/// One ctnetlink socket bound to one namespace (`Send`, not `Sync`: one owner thread).
pub struct Conntrack {
    socket: Socket,
    seq: u32,
    rx: Vec<u8>,
    netns: NetnsFd,
}

fn open_socket() -> Result<Socket> {
    let mut s = Socket::new(NETLINK_NETFILTER).map_err(|e| Error::io("open ctnetlink socket", e))?;
    s.bind(&SocketAddr::new(0, 0))
        .map_err(|e| Error::io("bind ctnetlink socket", e))?;
    let _ = s.set_ext_ack(true);
    let _ = s.set_cap_ack(true);
    Ok(s)
}

fn family_of(v6: bool) -> u8 {
    if v6 {
        libc::AF_INET6 as u8
    } else {
        libc::AF_INET as u8
    }
}

/// Appends a ctnetlink message header (`nlmsghdr` + `nfgenmsg`); returns where it starts.
fn header(buf: &mut Vec<u8>, msg: u16, flags: u16, seq: u32, family: u8) -> usize {
    let start = buf.len();
    buf.extend_from_slice(&[0; 4]);
    buf.extend_from_slice(&((NFNL_SUBSYS_CTNETLINK << 8) | msg).to_ne_bytes());
    buf.extend_from_slice(&(NLM_F_REQUEST | flags).to_ne_bytes());
    buf.extend_from_slice(&seq.to_ne_bytes());
    buf.extend_from_slice(&[0; 4]);
    buf.extend_from_slice(&[family, NFNETLINK_V0, 0, 0]);
    start
}

fn finish(buf: &mut [u8], start: usize) {
    let len = (buf.len() - start) as u32;
    buf[start..start + 4].copy_from_slice(&len.to_ne_bytes());
}

fn addr(v: &[u8]) -> DResult<IpAddr> {
    match v.len() {
        4 => Ok(IpAddr::V4(Ipv4Addr::from(
            <[u8; 4]>::try_from(v).expect("4 bytes"),
        ))),
        16 => Ok(IpAddr::V6(Ipv6Addr::from(
            <[u8; 16]>::try_from(v).expect("16 bytes"),
        ))),
        n => Err(DecodeError(format!("address attribute of {n} bytes"))),
    }
}

/// Decodes a `CTA_TUPLE_*` nest.
pub fn decode_tuple(nest: &[u8]) -> DResult<Tuple> {
    let (mut src, mut dst, mut protocol) = (None, None, None);
    let (mut src_port, mut dst_port) = (None, None);
    for a in Attrs::new(nest) {
        let a = a?;
        match a.ty {
            CTA_TUPLE_IP => {
                for ip in a.nested() {
                    let ip = ip?;
                    match ip.ty {
                        CTA_IP_V4_SRC | CTA_IP_V6_SRC => src = Some(addr(ip.value)?),
                        CTA_IP_V4_DST | CTA_IP_V6_DST => dst = Some(addr(ip.value)?),
                        _ => {}
                    }
                }
            }
            CTA_TUPLE_PROTO => {
                for p in a.nested() {
                    let p = p?;
                    match p.ty {
                        CTA_PROTO_NUM => protocol = Some(p.u8()?),
                        CTA_PROTO_SRC_PORT => src_port = Some(p.u16()?),
                        CTA_PROTO_DST_PORT => dst_port = Some(p.u16()?),
                        _ => {}
                    }
                }
            }
            _ => {}
        }
    }
    match (src, dst, protocol) {
        (Some(src), Some(dst), Some(protocol)) => Ok(Tuple {
            src,
            dst,
            protocol,
            src_port,
            dst_port,
        }),
        _ => Err(DecodeError(
            "conntrack tuple without addresses or protocol".into(),
        )),
    }
}

/// Decodes the attributes of one `IPCTNL_MSG_CT_NEW` dump reply (after `nfgenmsg`).
pub fn decode_flow(attrs: &[u8]) -> DResult<Flow> {
    let (mut original, mut reply, mut raw_original) = (None, None, Vec::new());
    let (mut zone, mut id) = (0, None);
    for a in Attrs::new(attrs) {
        let a = a?;
        match a.ty {
            CTA_TUPLE_ORIG => {
                original = Some(decode_tuple(a.value)?);
                raw_original = a.value.to_vec();
            }
            CTA_TUPLE_REPLY => reply = Some(decode_tuple(a.value)?),
            CTA_ZONE => zone = a.u16()?,
            CTA_ID => id = Some(a.u32()?),
            _ => {}
        }
    }
    match (original, reply) {
        (Some(original), Some(reply)) => Ok(Flow {
            original,
            reply,
            zone,
            id,
            raw_original,
        }),
        _ => Err(DecodeError("conntrack entry without both tuples".into())),
    }
}

impl Conntrack {
    /// A socket in the calling thread's namespace.
    pub fn new() -> Result<Conntrack> {
        Ok(Conntrack::with(open_socket()?, NetnsFd::current()?))
    }

    /// A socket in `netns`, opened from a short-lived thread inside it.
    pub fn open(netns: &NetnsFd) -> Result<Conntrack> {
        let socket = netns.run(open_socket)??;
        Ok(Conntrack::with(socket, netns.try_clone()?))
    }

    fn with(socket: Socket, netns: NetnsFd) -> Conntrack {
        Conntrack {
            socket,
            seq: 0,
            rx: vec![0; RECV_BUF],
            netns,
        }
    }

    pub fn netns(&self) -> &NetnsFd {
        &self.netns
    }

    fn next_seq(&mut self) -> u32 {
        self.seq = self.seq.wrapping_add(1).max(1);
        self.seq
    }

    fn send(&self, buf: &[u8], op: &str) -> Result<()> {
        crate::handle::send_whole(&self.socket, buf, &|| op.to_string())
    }

    /// Receives into `self.rx`, waiting at most [`REPLY_WAIT`].
    fn recv(&mut self, op: &str) -> Result<usize> {
        let mut pfd = libc::pollfd {
            fd: self.socket.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        };
        // SAFETY: one valid pollfd for the duration of the call.
        let n = unsafe { libc::poll(&mut pfd, 1, REPLY_WAIT.as_millis() as i32) };
        if n <= 0 {
            return Err(Error::Decode {
                op: op.into(),
                detail: format!("no reply within {} s", REPLY_WAIT.as_secs()),
            });
        }
        let mut buf = std::mem::take(&mut self.rx);
        let r = self.socket.recv(&mut &mut buf[..], libc::MSG_DONTWAIT);
        self.rx = buf;
        r.map_err(|e| Error::io(format!("{op}: netlink receive"), e))
    }

    /// Every flow of one family (`conntrack -L -f ipv4|ipv6`), handed to `f` one by one so a
    /// large table is never held twice.
    pub fn for_each_flow(&mut self, v6: bool, mut f: impl FnMut(Flow)) -> Result<()> {
        let op = format!("list conntrack flows (IPv{})", if v6 { 6 } else { 4 });
        let seq = self.next_seq();
        let mut buf = Vec::with_capacity(32);
        let s = header(&mut buf, IPCTNL_MSG_CT_GET, NLM_F_DUMP, seq, family_of(v6));
        finish(&mut buf, s);
        self.send(&buf, &op)?;
        loop {
            let n = self.recv(&op)?;
            let mut done = false;
            for fr in frames(&self.rx[..n]) {
                if fr.seq != seq {
                    continue;
                }
                match fr.kind {
                    NLMSG_DONE => done = true,
                    NLMSG_ERROR => match fr.error() {
                        None => done = true,
                        Some((errno, detail)) => return Err(Error::Kernel { op, errno, detail }),
                    },
                    _ => {
                        // After `nlmsghdr` (16 bytes) and `nfgenmsg` (4).
                        let attrs = fr.bytes.get(20..).ok_or_else(|| Error::Decode {
                            op: op.clone(),
                            detail: "conntrack message without nfgenmsg".into(),
                        })?;
                        f(decode_flow(attrs).map_err(|e| decode_err(&op, e))?);
                        if fr.flags & NLM_F_MULTI == 0 {
                            done = true;
                        }
                    }
                }
            }
            if done {
                return Ok(());
            }
        }
    }

    /// Every flow of one family.
    pub fn flows(&mut self, v6: bool) -> Result<Vec<Flow>> {
        let mut out = Vec::new();
        self.for_each_flow(v6, |f| out.push(f))?;
        Ok(out)
    }

    /// Deletes every flow that has one of `addrs` as source or destination of its original
    /// or reply tuple (one dump per family asked for, then the deletes in batches). A flow
    /// that expired in between is counted as vanished, not as an error.
    pub fn delete_flows_of(&mut self, addrs: &[IpAddr]) -> Result<Deleted> {
        let mut out = Deleted::default();
        for v6 in [false, true] {
            let mine: Vec<IpAddr> = addrs.iter().copied().filter(|a| a.is_ipv6() == v6).collect();
            if mine.is_empty() {
                continue;
            }
            let mut doomed = Vec::new();
            self.for_each_flow(v6, |f| {
                out.listed += 1;
                if mine.iter().any(|a| f.involves(*a)) {
                    doomed.push(f);
                }
            })?;
            for chunk in doomed.chunks(DELETES_PER_WRITE) {
                let vanished = self.delete_batch(chunk, v6)?;
                out.deleted += chunk.len() - vanished;
                out.vanished += vanished;
            }
        }
        Ok(out)
    }

    /// Sends one delete per flow in one write (only the last asks for an ACK: the kernel
    /// handles a socket's requests in order, so that ACK closes the batch); returns how many
    /// were already gone.
    fn delete_batch(&mut self, flows: &[Flow], v6: bool) -> Result<usize> {
        let Some(last_flow) = flows.last() else {
            return Ok(0);
        };
        let mut buf = Vec::with_capacity(flows.len() * 128);
        let first = self.seq.wrapping_add(1);
        let mut last = 0;
        for (i, f) in flows.iter().enumerate() {
            last = self.next_seq();
            let ack = if i + 1 == flows.len() { NLM_F_ACK } else { 0 };
            let s = header(&mut buf, IPCTNL_MSG_CT_DELETE, ack, last, family_of(v6));
            let mut w = AttrWriter::new(&mut buf);
            w.put(CTA_TUPLE_ORIG | NLA_F_NESTED, &f.raw_original);
            if f.zone != 0 {
                w.put(CTA_ZONE, &f.zone.to_be_bytes());
            }
            if let Some(id) = f.id {
                w.put_u32(CTA_ID, id);
            }
            finish(&mut buf, s);
        }
        let op = format!(
            "delete {} conntrack flows (last {} -> {})",
            flows.len(),
            last_flow.original.src,
            last_flow.original.dst
        );
        self.send(&buf, &op)?;
        let mut vanished = 0;
        loop {
            let n = self.recv(&op)?;
            let mut closed = false;
            for fr in frames(&self.rx[..n]) {
                if fr.kind != NLMSG_ERROR || fr.seq.wrapping_sub(first) > last.wrapping_sub(first) {
                    continue;
                }
                match fr.error() {
                    None => {}
                    Some((libc::ENOENT, _)) => vanished += 1,
                    Some((errno, detail)) => return Err(Error::Kernel { op, errno, detail }),
                }
                if fr.seq == last {
                    closed = true;
                }
            }
            if closed {
                return Ok(vanished);
            }
        }
    }
}

fn decode_err(op: &str, e: DecodeError) -> Error {
    Error::Decode {
        op: op.into(),
        detail: e.0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A dump reply's attributes as the kernel writes them: a UDP flow 10.0.0.1:5000 →
    /// 10.0.0.2:53, its reply, zone 3, id 77.
    fn sample() -> Vec<u8> {
        let tuple = |w: &mut AttrWriter<'_>, s: [u8; 4], d: [u8; 4], sp: u16, dp: u16| {
            w.nest(CTA_TUPLE_IP, |w| {
                w.put(CTA_IP_V4_SRC, &s);
                w.put(CTA_IP_V4_DST, &d);
            });
            w.nest(CTA_TUPLE_PROTO, |w| {
                w.put(CTA_PROTO_NUM, &[17]);
                w.put(CTA_PROTO_SRC_PORT, &sp.to_be_bytes());
                w.put(CTA_PROTO_DST_PORT, &dp.to_be_bytes());
            });
        };
        let mut buf = Vec::new();
        let mut w = AttrWriter::new(&mut buf);
        w.nest(CTA_TUPLE_ORIG, |w| {
            tuple(w, [10, 0, 0, 1], [10, 0, 0, 2], 5000, 53)
        });
        w.nest(CTA_TUPLE_REPLY, |w| {
            tuple(w, [10, 0, 0, 2], [10, 0, 0, 1], 53, 5000)
        });
        w.put(CTA_ZONE, &3u16.to_be_bytes());
        w.put_u32(CTA_ID, 77);
        buf
    }

    #[test]
    fn decodes_a_flow_and_matches_every_address_of_it() {
        let f = decode_flow(&sample()).unwrap();
        assert_eq!(f.original.src, "10.0.0.1".parse::<IpAddr>().unwrap());
        assert_eq!((f.original.src_port, f.original.dst_port), (Some(5000), Some(53)));
        assert_eq!(f.reply.src, "10.0.0.2".parse::<IpAddr>().unwrap());
        assert_eq!((f.original.protocol, f.zone, f.id), (17, 3, Some(77)));
        assert!(f.involves("10.0.0.1".parse().unwrap()));
        assert!(f.involves("10.0.0.2".parse().unwrap()));
        assert!(!f.involves("10.0.0.3".parse().unwrap()));
    }

    #[test]
    fn short_or_malformed_messages_are_errors_not_panics() {
        let full = sample();
        for cut in 0..full.len() {
            let _ = decode_flow(&full[..cut]);
        }
        assert!(decode_flow(&full[..full.len() / 2]).is_err());
        assert!(decode_flow(&[]).is_err());
        // A frame claiming more bytes than there are ends the reply; a short one is no frame.
        let mut msg = vec![0u8; 20];
        msg[0..4].copy_from_slice(&200u32.to_ne_bytes());
        assert_eq!(frames(&msg).count(), 0);
        assert_eq!(frames(&msg[..10]).count(), 0);
    }
}
