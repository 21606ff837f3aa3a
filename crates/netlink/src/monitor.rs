//! Change notifications (rtnetlink multicast groups), so a reconciler can resync at once when
//! something else changes a route, link, address or neighbour.

use std::os::fd::AsRawFd;
use std::time::Duration;

use netlink_sys::{Socket, SocketAddr, protocols::NETLINK_ROUTE};

use crate::error::{Error, Result};
use crate::netns::NetnsFd;

/// `RTMGRP_LINK | RTMGRP_NEIGH | RTMGRP_IPV4_IFADDR | RTMGRP_IPV4_ROUTE`.
const GROUPS: u32 = 0x1 | 0x4 | 0x10 | 0x40;

/// A socket subscribed to link, neighbour, IPv4 address and IPv4 route changes of one namespace.
pub struct Monitor {
    socket: Socket,
    buf: Vec<u8>,
}

impl Monitor {
    /// Subscribes in `netns` (the socket is opened from a thread inside it).
    pub fn open(netns: &NetnsFd) -> Result<Monitor> {
        let socket = netns.run(|| -> Result<Socket> {
            let mut s = Socket::new(NETLINK_ROUTE).map_err(|e| Error::io("open rtnetlink monitor", e))?;
            s.bind(&SocketAddr::new(0, GROUPS))
                .map_err(|e| Error::io("bind rtnetlink monitor", e))?;
            s.set_non_blocking(true)
                .map_err(|e| Error::io("rtnetlink monitor non-blocking", e))?;
            Ok(s)
        })??;
        Ok(Monitor {
            socket,
            buf: vec![0; 64 * 1024],
        })
    }

    /// Discards pending notifications; true if there were any (or the queue overflowed).
    pub fn drain(&mut self) -> bool {
        let mut any = false;
        loop {
            match self.socket.recv(&mut &mut self.buf[..], 0) {
                Ok(_) => any = true,
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => return any,
                // ENOBUFS: notifications were lost, which also means "something changed".
                Err(_) => return true,
            }
        }
    }

    /// Waits up to `timeout` for a notification; true if one came (all pending are drained).
    pub fn wait(&mut self, timeout: Duration) -> bool {
        let mut pfd = libc::pollfd {
            fd: self.socket.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        };
        let ms = timeout.as_millis().min(i32::MAX as u128) as libc::c_int;
        // SAFETY: one valid pollfd for the duration of the call.
        let n = unsafe { libc::poll(&mut pfd, 1, ms) };
        n > 0 && self.drain()
    }
}
