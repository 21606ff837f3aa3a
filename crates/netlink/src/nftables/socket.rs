//! [`Nft`]: the nf_tables socket of one namespace. Transactions go out as one `sendmsg`
//! (`BATCH_BEGIN` … `BATCH_END`, applied by the kernel all or nothing, optionally only if the
//! ruleset generation is still the one the caller last saw); dumps read one table back.

use std::collections::BTreeMap;
use std::os::fd::AsRawFd;
use std::time::Duration;

use netlink_sys::{Socket, SocketAddr};

use super::attr::{AttrWriter, Attrs};
use super::batch::Batch;
use super::dump::{self, ChainInfo, Generation, Message, RuleInfo, SetInfo, TableInfo};
use super::elements::Elem;
use super::object::TableFamily;
use super::sys::*;
use crate::error::{Error, Refusal, Result};
use crate::netns::NetnsFd;

const RECV_BUF: usize = 1 << 20;
/// `NLM_F_DUMP_INTR`: the ruleset changed during the dump; it must be read again.
const NLM_F_DUMP_INTR: u16 = 0x10;
/// `ERESTART`: the generation check of a batch failed.
pub const ERESTART: i32 = 85;

/// Everything one table holds.
#[derive(Debug, Clone, Default)]
pub struct TableDump {
    pub table: Option<TableInfo>,
    pub chains: Vec<ChainInfo>,
    pub rules: Vec<RuleInfo>,
    pub sets: Vec<SetInfo>,
    pub elements: BTreeMap<String, Vec<Elem>>,
}

/// One nf_tables netlink socket bound to one namespace (`Send`, not `Sync`: one owner thread).
pub struct Nft {
    socket: Socket,
    seq: u32,
    portid: u32,
    rx: Vec<u8>,
    sndbuf: usize,
    netns: NetnsFd,
}

fn open_socket() -> Result<(Socket, u32)> {
    let mut s = Socket::new(NETLINK_NETFILTER).map_err(|e| Error::io("open nf_tables socket", e))?;
    s.bind(&SocketAddr::new(0, 0))
        .map_err(|e| Error::io("bind nf_tables socket", e))?;
    let _ = s.set_ext_ack(true);
    let _ = s.set_cap_ack(true);
    set_buf(&s, libc::SO_RCVBUFFORCE, libc::SO_RCVBUF, 16 << 20);
    let mut addr = SocketAddr::new(0, 0);
    s.get_address(&mut addr)
        .map_err(|e| Error::io("nf_tables socket address", e))?;
    Ok((s, addr.port_number()))
}

/// Sets a socket buffer size, forcing past `rmem_max`/`wmem_max` (CAP_NET_ADMIN) when allowed.
pub(super) fn set_buf(s: &Socket, force: libc::c_int, plain: libc::c_int, size: usize) {
    let v = size.min(i32::MAX as usize) as libc::c_int;
    for opt in [force, plain] {
        // SAFETY: setsockopt with a valid fd and a pointer to a live c_int of the given size.
        let rc = unsafe {
            libc::setsockopt(
                s.as_raw_fd(),
                libc::SOL_SOCKET,
                opt,
                (&v as *const libc::c_int).cast(),
                std::mem::size_of::<libc::c_int>() as libc::socklen_t,
            )
        };
        if rc == 0 {
            return;
        }
    }
}

fn header(buf: &mut Vec<u8>, ty: u16, flags: u16, seq: u32, family: u8, res_id: u16) -> usize {
    let start = buf.len();
    buf.extend_from_slice(&[0; 4]);
    buf.extend_from_slice(&ty.to_ne_bytes());
    buf.extend_from_slice(&(NLM_F_REQUEST | flags).to_ne_bytes());
    buf.extend_from_slice(&seq.to_ne_bytes());
    buf.extend_from_slice(&[0; 4]);
    buf.extend_from_slice(&[family, NFNETLINK_V0]);
    buf.extend_from_slice(&res_id.to_be_bytes());
    start
}

fn finish(buf: &mut [u8], start: usize) {
    let len = (buf.len() - start) as u32;
    buf[start..start + 4].copy_from_slice(&len.to_ne_bytes());
}

impl Nft {
    /// A socket in the calling thread's namespace.
    pub fn new() -> Result<Nft> {
        let netns = NetnsFd::current()?;
        let (socket, portid) = open_socket()?;
        Ok(Nft::with(socket, portid, netns))
    }

    /// A socket in `netns`, opened from a short-lived thread inside it.
    pub fn open(netns: &NetnsFd) -> Result<Nft> {
        let (socket, portid) = netns.run(open_socket)??;
        Ok(Nft::with(socket, portid, netns.try_clone()?))
    }

    fn with(socket: Socket, portid: u32, netns: NetnsFd) -> Nft {
        Nft {
            socket,
            seq: 0,
            portid,
            rx: vec![0; RECV_BUF],
            sndbuf: 0,
            netns,
        }
    }

    /// The netlink port id: changes this socket makes carry it in notifications.
    pub fn portid(&self) -> u32 {
        self.portid
    }

    pub fn netns(&self) -> &NetnsFd {
        &self.netns
    }

    /// Reserves `n + 1` consecutive sequence numbers (never wrapping inside a range).
    fn next_seq(&mut self, n: u32) -> u32 {
        let mut s = self.seq.wrapping_add(1).max(1);
        if s.checked_add(n + 2).is_none() {
            s = 1;
        }
        self.seq = s + n;
        s
    }

    fn send(&mut self, buf: &[u8], op: &str) -> Result<()> {
        if buf.len() + 4096 > self.sndbuf {
            let want = (buf.len() + 64 * 1024).next_power_of_two();
            set_buf(&self.socket, libc::SO_SNDBUFFORCE, libc::SO_SNDBUF, want);
            self.sndbuf = want;
        }
        crate::handle::send_whole(&self.socket, buf, &|| op.to_string())
    }

    /// Receives into `self.rx`; `Ok(None)` when nothing is queued (with `MSG_DONTWAIT`) or
    /// nothing came within `timeout`.
    fn recv(&mut self, wait: Option<Duration>, op: &str) -> Result<Option<usize>> {
        if let Some(t) = wait {
            let mut pfd = libc::pollfd {
                fd: self.socket.as_raw_fd(),
                events: libc::POLLIN,
                revents: 0,
            };
            // SAFETY: one valid pollfd for the duration of the call.
            let n = unsafe { libc::poll(&mut pfd, 1, t.as_millis().min(i32::MAX as u128) as i32) };
            if n <= 0 {
                return Ok(None);
            }
        }
        let mut buf = std::mem::take(&mut self.rx);
        let r = self.socket.recv(&mut &mut buf[..], libc::MSG_DONTWAIT);
        self.rx = buf;
        match r {
            Ok(n) => Ok(Some(n)),
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => Ok(None),
            Err(e) => Err(Error::io(format!("{op}: netlink receive"), e)),
        }
    }

    /// The current ruleset generation of the namespace (`NFT_MSG_GETGEN`).
    pub fn generation(&mut self) -> Result<Generation> {
        let op = "get nf_tables generation";
        let seq = self.next_seq(0);
        let mut buf = Vec::with_capacity(32);
        let s = header(
            &mut buf,
            (NFNL_SUBSYS_NFTABLES << 8) | NFT_MSG_GETGEN,
            0,
            seq,
            0,
            0,
        );
        finish(&mut buf, s);
        self.send(&buf, op)?;
        loop {
            let n = self
                .recv(Some(Duration::from_secs(10)), op)?
                .ok_or_else(|| Error::Decode {
                    op: op.into(),
                    detail: "no reply within 10 s".into(),
                })?;
            for m in dump::messages(&self.rx[..n]) {
                let m = m.map_err(|e| decode_err(op, e))?;
                if m.seq != seq {
                    continue;
                }
                if m.control {
                    if let Some((errno, detail, _)) = m.error() {
                        return Err(Error::Kernel {
                            op: op.into(),
                            errno,
                            detail,
                        });
                    }
                    continue;
                }
                return dump::decode_gen(&m).map_err(|e| decode_err(op, e));
            }
        }
    }

    /// Applies `batch` as one transaction. With `generation`, the kernel refuses it
    /// (errno `ERESTART`) unless the ruleset is still at that generation: nobody changed
    /// anything since the caller last looked. On refusal nothing was applied and the error
    /// names each refused message.
    pub fn commit(&mut self, batch: &Batch, generation: Option<u32>) -> Result<()> {
        let op = "nf_tables transaction";
        if batch.is_empty() {
            return Ok(());
        }
        let n = batch.msgs.len() as u32;
        let begin = self.next_seq(n + 1);
        let mut buf = Vec::with_capacity(batch.buf.len() + 64);
        let s = header(&mut buf, NFNL_MSG_BATCH_BEGIN, 0, begin, 0, NFNL_SUBSYS_NFTABLES);
        if let Some(g) = generation {
            AttrWriter::new(&mut buf).put_u32(NFNL_BATCH_GENID, g);
        }
        finish(&mut buf, s);
        let base = buf.len();
        buf.extend_from_slice(&batch.buf);
        for (i, m) in batch.msgs.iter().enumerate() {
            let at = base + m.start;
            buf[at + 8..at + 12].copy_from_slice(&(begin + 1 + i as u32).to_ne_bytes());
        }
        // Only the last message asks for an ACK: the kernel queues every reply before
        // `sendmsg` returns, and that ACK (or its error) closes the transaction's replies.
        let last = base + batch.msgs[n as usize - 1].start;
        let flags = u16::from_ne_bytes([buf[last + 6], buf[last + 7]]) | NLM_F_ACK;
        buf[last + 6..last + 8].copy_from_slice(&flags.to_ne_bytes());
        let end_seq = begin + n + 1;
        let s = header(&mut buf, NFNL_MSG_BATCH_END, 0, end_seq, 0, NFNL_SUBSYS_NFTABLES);
        finish(&mut buf, s);
        self.send(&buf, op)?;

        let last_seq = begin + n;
        let mut refused = Vec::new();
        let mut closed = false;
        let mut begin_error = None;
        loop {
            let wait = if closed || begin_error.is_some() {
                None
            } else {
                Some(Duration::from_secs(30))
            };
            let got = self.recv(wait, op)?;
            let Some(len) = got else {
                break;
            };
            for m in dump::messages(&self.rx[..len]) {
                let m = m.map_err(|e| decode_err(op, e))?;
                if !m.control || m.kind != NLMSG_ERROR || m.seq < begin || m.seq > end_seq {
                    continue;
                }
                let err = m.error();
                if m.seq == last_seq {
                    closed = true;
                }
                let Some((errno, detail, offset)) = err else {
                    continue;
                };
                if m.seq == begin || m.seq == end_seq {
                    begin_error = Some(Refusal {
                        what: match (errno, generation) {
                            (ERESTART, Some(g)) => {
                                format!("commit {} messages (ruleset generation {g} changed meanwhile)", n)
                            }
                            _ => format!("commit {n} messages"),
                        },
                        errno,
                        detail,
                    });
                    continue;
                }
                let i = (m.seq - begin - 1) as usize;
                let msg = &batch.msgs[i];
                let end = batch.msgs.get(i + 1).map(|x| x.start).unwrap_or(batch.buf.len());
                let detail = detail.or_else(|| offset.and_then(|o| blame(&batch.buf[msg.start..end], o)));
                refused.push(Refusal {
                    what: msg.desc.clone(),
                    errno,
                    detail,
                });
            }
        }
        if let Some(b) = begin_error {
            refused.insert(0, b);
        }
        if !refused.is_empty() {
            return Err(Error::Transaction {
                op: op.into(),
                refused,
            });
        }
        if !closed {
            return Err(Error::Decode {
                op: op.into(),
                detail: "the kernel's acknowledgement never came (replies lost?)".into(),
            });
        }
        Ok(())
    }

    /// Sends a request (`NLM_F_DUMP` when `dump`) and hands every reply to `f`. A dump the
    /// kernel marks interrupted (the ruleset changed meanwhile) is an `EINTR` error.
    fn request(
        &mut self,
        ty: u16,
        family: u8,
        dump: bool,
        attrs: impl FnOnce(&mut AttrWriter<'_>),
        op: &str,
        mut f: impl FnMut(&Message<'_>) -> std::result::Result<(), super::attr::DecodeError>,
    ) -> Result<()> {
        let seq = self.next_seq(0);
        let mut buf = Vec::with_capacity(128);
        let flags = if dump { NLM_F_DUMP } else { NLM_F_ACK };
        let s = header(&mut buf, (NFNL_SUBSYS_NFTABLES << 8) | ty, flags, seq, family, 0);
        attrs(&mut AttrWriter::new(&mut buf));
        finish(&mut buf, s);
        self.send(&buf, op)?;
        let mut interrupted = false;
        loop {
            let len = self
                .recv(Some(Duration::from_secs(30)), op)?
                .ok_or_else(|| Error::Decode {
                    op: op.into(),
                    detail: "no reply within 30 s".into(),
                })?;
            for m in dump::messages(&self.rx[..len]) {
                let m = m.map_err(|e| decode_err(op, e))?;
                if m.seq != seq {
                    continue;
                }
                if m.flags & NLM_F_DUMP_INTR != 0 {
                    interrupted = true;
                }
                if m.control {
                    if m.kind == NLMSG_ERROR
                        && let Some((errno, detail, _)) = m.error()
                    {
                        return Err(Error::Kernel {
                            op: op.into(),
                            errno,
                            detail,
                        });
                    }
                    if m.kind == NLMSG_DONE || m.kind == NLMSG_ERROR {
                        return if interrupted {
                            Err(Error::Kernel {
                                op: op.into(),
                                errno: libc::EINTR,
                                detail: Some("ruleset changed during the dump".into()),
                            })
                        } else {
                            Ok(())
                        };
                    }
                    continue;
                }
                f(&m).map_err(|e| decode_err(op, e))?;
                if !dump {
                    // A single reply; its ACK follows.
                    continue;
                }
            }
        }
    }

    /// The tables of the namespace.
    pub fn tables(&mut self) -> Result<Vec<TableInfo>> {
        let mut out = Vec::new();
        self.request(
            NFT_MSG_GETTABLE,
            0,
            true,
            |_| {},
            "list tables",
            |m| {
                out.push(dump::decode_table(m)?);
                Ok(())
            },
        )?;
        Ok(out)
    }

    /// Whether the table `family name` exists (one `NFT_MSG_GETTABLE`, nothing dumped).
    pub fn has_table(&mut self, family: TableFamily, name: &str) -> Result<bool> {
        let what = format!("get table {family} {name}");
        match self.request(
            NFT_MSG_GETTABLE,
            family.code(),
            false,
            |w| w.put_str(NFTA_TABLE_NAME, name),
            &what,
            |_| Ok(()),
        ) {
            Ok(()) => Ok(true),
            Err(e) if e.errno() == Some(libc::ENOENT) => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// Everything `family name` holds, or `None` when the table does not exist. Retried when
    /// the ruleset changes during the dump.
    pub fn list_table(&mut self, family: TableFamily, name: &str) -> Result<Option<TableDump>> {
        let mut tries = 0;
        loop {
            match self.list_table_once(family, name) {
                Err(e) if e.errno() == Some(libc::EINTR) && tries < 5 => tries += 1,
                other => return other,
            }
        }
    }

    fn list_table_once(&mut self, family: TableFamily, name: &str) -> Result<Option<TableDump>> {
        let fam = family.code();
        let what = format!("list table {family} {name}");
        let mut d = TableDump::default();
        let mut table = None;
        match self.request(
            NFT_MSG_GETTABLE,
            fam,
            false,
            |w| w.put_str(NFTA_TABLE_NAME, name),
            &what,
            |m| {
                table = Some(dump::decode_table(m)?);
                Ok(())
            },
        ) {
            Err(e) if e.errno() == Some(libc::ENOENT) => return Ok(None),
            r => r?,
        }
        d.table = table;
        self.dump_table(family, name, |m| {
            match m.kind {
                NFT_MSG_NEWCHAIN => d.chains.push(dump::decode_chain(m)?),
                NFT_MSG_NEWRULE => d.rules.push(dump::decode_rule(m)?),
                NFT_MSG_NEWSET => d.sets.push(dump::decode_set(m)?),
                NFT_MSG_NEWSETELEM => {
                    let (set, e) = dump::decode_elems(m)?;
                    d.elements.entry(set).or_default().extend(e);
                }
                _ => {}
            }
            Ok(())
        })?;
        for s in &d.sets {
            d.elements.entry(s.name.clone()).or_default();
        }
        Ok(Some(d))
    }
}

impl Nft {
    /// The raw reply messages of every dump [`Nft::list_table`] makes (diagnostics, and the
    /// decoder's fuzz seeds are real kernel replies captured this way).
    pub fn list_table_raw(&mut self, family: TableFamily, name: &str) -> Result<Vec<Vec<u8>>> {
        let mut out = Vec::new();
        self.dump_table(family, name, |m| {
            out.push(m.raw.to_vec());
            Ok(())
        })?;
        Ok(out)
    }

    /// Dumps the chains, rules, sets and each set's elements of `family name`, handing every
    /// reply message (of that table only) to `visit`.
    fn dump_table(
        &mut self,
        family: TableFamily,
        name: &str,
        mut visit: impl FnMut(&Message<'_>) -> std::result::Result<(), super::attr::DecodeError>,
    ) -> Result<()> {
        let fam = family.code();
        let what = format!("list table {family} {name}");
        let mut sets = Vec::new();
        for (ty, attr) in [
            (NFT_MSG_GETCHAIN, NFTA_CHAIN_TABLE),
            (NFT_MSG_GETRULE, NFTA_RULE_TABLE),
            (NFT_MSG_GETSET, NFTA_SET_TABLE),
        ] {
            self.request(
                ty,
                fam,
                true,
                |w| w.put_str(attr, name),
                &what,
                |m| {
                    // Every object's table is its attribute 1; older kernels ignore the filter.
                    if dump::decode_event(m)?.table.as_deref() != Some(name) {
                        return Ok(());
                    }
                    if ty == NFT_MSG_GETSET {
                        sets.push(dump::decode_set(m)?.name);
                    }
                    visit(m)
                },
            )?;
        }
        for set in sets {
            self.request(
                NFT_MSG_GETSETELEM,
                fam,
                true,
                |w| {
                    w.put_str(NFTA_SET_ELEM_LIST_TABLE, name);
                    w.put_str(NFTA_SET_ELEM_LIST_SET, &set);
                },
                &what,
                &mut visit,
            )?;
        }
        Ok(())
    }
}

fn decode_err(op: &str, e: super::attr::DecodeError) -> Error {
    Error::Decode {
        op: op.into(),
        detail: e.0,
    }
}

/// Names the attribute at byte `offset` of a request the kernel refused (extended ACK): for a
/// rule, the expression it points into.
fn blame(msg: &[u8], offset: u32) -> Option<String> {
    let offset = offset as usize;
    if offset < 20 || offset >= msg.len() {
        return None;
    }
    let mut at = 20;
    for a in Attrs::new(&msg[20..]).flatten() {
        let len = 4 + a.value.len();
        if offset >= at && offset < at + len {
            if a.ty == NFTA_RULE_EXPRESSIONS {
                let mut e_at = at + 4;
                for (i, e) in a.nested().flatten().enumerate() {
                    let elen = 4 + e.value.len();
                    if offset >= e_at && offset < e_at + elen {
                        let name = e
                            .nested()
                            .flatten()
                            .find(|x| x.ty == NFTA_EXPR_NAME)
                            .map(|x| x.string())
                            .unwrap_or_default();
                        return Some(format!("expression {} ({name})", i + 1));
                    }
                    e_at += super::attr::align4(elen);
                }
            }
            return Some(format!("attribute {}", a.ty));
        }
        at += super::attr::align4(len);
    }
    None
}
