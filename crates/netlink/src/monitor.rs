//! Change notifications (rtnetlink multicast groups), so a reconciler can resync at once when
//! something else changes a route, link, address or neighbour. [`Monitor::changes`] decodes
//! them ([`Change`]), so the reconciler can tell its own writes (their echoes) from others.

use std::os::fd::AsRawFd;
use std::time::Duration;

use netlink_packet_core::{NetlinkMessage, NetlinkPayload};
use netlink_packet_route::RouteNetlinkMessage;
use netlink_sys::{Socket, SocketAddr, protocols::NETLINK_ROUTE};

use crate::error::{Error, Result};
use crate::link::Link;
use crate::neigh::Neighbour;
use crate::netns::NetnsFd;
use crate::route::Route;

/// One change the kernel announced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    /// A route was added or replaced (`deleted` false), or deleted.
    Route { deleted: bool, route: Route },
    /// A link was added or changed (`deleted` false), or deleted.
    Link { deleted: bool, link: Link },
    /// An address of link `index` was added or removed.
    Address { index: u32 },
    /// A neighbour (ARP/NDP) or FDB entry was added, changed or deleted.
    Neighbour { deleted: bool, neighbour: Neighbour },
    /// Notifications were lost (the socket's queue overflowed): anything may have changed.
    Lost,
}

/// The decoded changes of one received buffer (messages that do not decode are skipped).
fn decode(buf: &[u8], out: &mut Vec<Change>) {
    for f in crate::handle::frames(buf) {
        let Ok(m) = NetlinkMessage::<RouteNetlinkMessage>::deserialize(f.bytes) else {
            continue;
        };
        let NetlinkPayload::InnerMessage(m) = m.payload else {
            continue;
        };
        let change = match m {
            RouteNetlinkMessage::NewRoute(r) => crate::route::parse_route(&r).map(|route| Change::Route {
                deleted: false,
                route,
            }),
            RouteNetlinkMessage::DelRoute(r) => {
                crate::route::parse_route(&r).map(|route| Change::Route { deleted: true, route })
            }
            RouteNetlinkMessage::NewLink(l) => Some(Change::Link {
                deleted: false,
                link: crate::link::parse_link(&l),
            }),
            RouteNetlinkMessage::DelLink(l) => Some(Change::Link {
                deleted: true,
                link: crate::link::parse_link(&l),
            }),
            RouteNetlinkMessage::NewAddress(a) | RouteNetlinkMessage::DelAddress(a) => {
                Some(Change::Address {
                    index: a.header.index,
                })
            }
            RouteNetlinkMessage::NewNeighbour(n) => Some(Change::Neighbour {
                deleted: false,
                neighbour: crate::neigh::parse(&n),
            }),
            RouteNetlinkMessage::DelNeighbour(n) => Some(Change::Neighbour {
                deleted: true,
                neighbour: crate::neigh::parse(&n),
            }),
            _ => None,
        };
        out.extend(change);
    }
}

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

    /// Waits up to `timeout` for notifications, then decodes every pending one into `out`
    /// (appended). False on timeout.
    pub fn changes(&mut self, timeout: Duration, out: &mut Vec<Change>) -> bool {
        if !self.poll(timeout) {
            return false;
        }
        loop {
            match self.socket.recv(&mut &mut self.buf[..], 0) {
                Ok(n) => decode(&self.buf[..n.min(self.buf.len())], out),
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => return true,
                // ENOBUFS: notifications were lost.
                Err(_) => {
                    out.push(Change::Lost);
                    return true;
                }
            }
        }
    }

    fn poll(&mut self, timeout: Duration) -> bool {
        let mut pfd = libc::pollfd {
            fd: self.socket.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        };
        let ms = timeout.as_millis().min(i32::MAX as u128) as libc::c_int;
        // SAFETY: one valid pollfd for the duration of the call.
        let n = unsafe { libc::poll(&mut pfd, 1, ms) };
        n > 0
    }

    /// Waits up to `timeout` for a notification; true if one came (all pending are drained).
    pub fn wait(&mut self, timeout: Duration) -> bool {
        self.poll(timeout) && self.drain()
    }
}
