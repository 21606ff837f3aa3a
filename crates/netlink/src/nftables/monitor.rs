//! [`NftMonitor`]: ruleset change notifications (`NFNLGRP_NFTABLES`) filtered down to what a
//! reconciler cares about: changes to *its* table made by *another* socket. Lost notifications
//! (the receive queue overflowed) count as a change, so nothing goes unnoticed.

use std::os::fd::AsRawFd;
use std::time::Duration;

use netlink_sys::{Socket, SocketAddr};

use super::dump;
use super::object::TableFamily;
use super::sys::{NETLINK_NETFILTER, NFNLGRP_NFTABLES, NFT_MSG_NEWGEN};
use crate::error::{Error, Result};
use crate::netns::NetnsFd;

/// The monitor socket's receive buffer: room for the notifications of a large transaction.
const MONITOR_BUFFER: usize = 64 << 20;

/// A subscription to one namespace's nf_tables changes.
pub struct NftMonitor {
    socket: Socket,
    buf: Vec<u8>,
    families: Vec<u8>,
    table: String,
    ignore: Vec<u32>,
}

impl NftMonitor {
    /// Watches the tables named `table` of `families` in `netns`, ignoring changes made through
    /// the sockets whose port ids are in `ignore` (the reconciler's own writer,
    /// [`super::Nft::portid`]).
    pub fn open(
        netns: &NetnsFd,
        families: &[TableFamily],
        table: &str,
        ignore: &[u32],
    ) -> Result<NftMonitor> {
        let socket = netns.run(|| -> Result<Socket> {
            let mut s = Socket::new(NETLINK_NETFILTER).map_err(|e| Error::io("open nf_tables monitor", e))?;
            s.bind(&SocketAddr::new(0, 0))
                .map_err(|e| Error::io("bind nf_tables monitor", e))?;
            s.add_membership(NFNLGRP_NFTABLES)
                .map_err(|e| Error::io("join NFNLGRP_NFTABLES", e))?;
            s.set_non_blocking(true)
                .map_err(|e| Error::io("nf_tables monitor non-blocking", e))?;
            // The kernel notifies every rule and element of every transaction, the writer's
            // own included (filtered out here, by port id): a burst of a thousand policies is
            // megabytes of them. With the default buffer they overflowed, and a lost
            // notification counts as a foreign change, so each big transaction was followed by
            // a read-back of the whole table. Memory is only used while notifications queue.
            super::socket::set_buf(&s, libc::SO_RCVBUFFORCE, libc::SO_RCVBUF, MONITOR_BUFFER);
            Ok(s)
        })??;
        Ok(NftMonitor {
            socket,
            buf: vec![0; 256 * 1024],
            families: families.iter().map(|f| f.code()).collect(),
            table: table.to_string(),
            ignore: ignore.to_vec(),
        })
    }

    /// Reads every pending notification; true if one was a foreign change to the table (or
    /// some were lost, or one did not decode).
    pub fn drain(&mut self) -> bool {
        let mut changed = false;
        loop {
            match self.socket.recv(&mut &mut self.buf[..], 0) {
                Ok(n) => {
                    for m in dump::messages(&self.buf[..n]) {
                        let Ok(m) = m else {
                            changed = true;
                            break;
                        };
                        if m.control || m.kind == NFT_MSG_NEWGEN || self.ignore.contains(&m.portid) {
                            continue;
                        }
                        match dump::decode_event(&m) {
                            Ok(e) => {
                                if self.families.contains(&e.family)
                                    && e.table.as_deref() == Some(&self.table)
                                {
                                    changed = true;
                                }
                            }
                            Err(_) => changed = true,
                        }
                    }
                }
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => return changed,
                // ENOBUFS: notifications were lost.
                Err(_) => changed = true,
            }
        }
    }

    /// Waits up to `timeout` for a foreign change; true if one came.
    pub fn wait(&mut self, timeout: Duration) -> bool {
        let deadline = std::time::Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            let mut pfd = libc::pollfd {
                fd: self.socket.as_raw_fd(),
                events: libc::POLLIN,
                revents: 0,
            };
            // SAFETY: one valid pollfd for the duration of the call.
            let n = unsafe { libc::poll(&mut pfd, 1, left.as_millis().min(i32::MAX as u128) as i32) };
            if n <= 0 {
                return false;
            }
            if self.drain() {
                return true;
            }
            if left.is_zero() {
                return false;
            }
        }
    }
}
