//! Sockets: the listener (large backlog, one per address) and outgoing connections bound to the
//! node's address, with MD5 keys set before the SYN.

use std::io;
use std::net::{IpAddr, SocketAddr};
use std::os::fd::{AsRawFd, RawFd};
use std::time::Duration;

use socket2::{Domain, Protocol, Socket, Type};
use tokio::net::{TcpListener, TcpSocket, TcpStream};

use crate::config::LISTEN_BACKLOG;
use crate::md5;

pub(crate) fn listen(addr: SocketAddr) -> io::Result<TcpListener> {
    let s = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))?;
    s.set_reuse_address(true)?;
    if addr.is_ipv6() {
        // Separate IPv4 and IPv6 listeners, as BIRD and bird6 have.
        s.set_only_v6(true)?;
    }
    s.set_nonblocking(true)?;
    // Accepted connections (SYN-ACK included) inherit TTL 255, so a peer using GTSM
    // (RFC 5082) accepts them; nothing checks a high TTL otherwise.
    let (level, opt) = if addr.is_ipv6() {
        (libc::IPPROTO_IPV6, libc::IPV6_UNICAST_HOPS)
    } else {
        (libc::IPPROTO_IP, libc::IP_TTL)
    };
    setsockopt_int(s.as_raw_fd(), level, opt, 255)?;
    if !addr.ip().is_unspecified() {
        // `bindMode: NodeIP`: bind even before the address is there (an IPv6 address is
        // unusable while duplicate address detection runs); connections come once it is.
        if addr.is_ipv6() {
            s.set_freebind_v6(true)?;
        } else {
            s.set_freebind_v4(true)?;
        }
    }
    s.bind(&addr.into())?;
    s.listen(LISTEN_BACKLOG)?;
    TcpListener::from_std(s.into())
}

/// Text of an OS error as strerror gives it (BIRD's `Socket: Connection refused`).
pub(crate) fn strerror(e: &io::Error) -> String {
    match e.kind() {
        io::ErrorKind::TimedOut => "Connection timed out".into(),
        _ => {
            let s = e.to_string();
            match s.find(" (os error") {
                Some(i) => s[..i].to_string(),
                None => s,
            }
        }
    }
}

pub(crate) async fn connect(
    peer: SocketAddr,
    source: Option<IpAddr>,
    password: Option<&str>,
    ttl_security: Option<u8>,
    timeout: Duration,
) -> io::Result<TcpStream> {
    let sock = if peer.is_ipv4() {
        TcpSocket::new_v4()?
    } else {
        TcpSocket::new_v6()?
    };
    if let Some(src) = source {
        sock.bind(SocketAddr::new(src, 0))?;
    }
    if let Some(p) = password {
        md5::set_key(sock.as_raw_fd(), peer.ip(), peer.is_ipv6(), Some(p.as_bytes()))?;
    }
    if let Some(hops) = ttl_security {
        // Before the SYN, so the whole connection is checked.
        gtsm(sock.as_raw_fd(), peer.is_ipv6(), hops)?;
    }
    let stream = tokio::time::timeout(timeout, sock.connect(peer))
        .await
        .map_err(|_| io::Error::from(io::ErrorKind::TimedOut))??;
    stream.set_nodelay(true)?;
    Ok(stream)
}

/// GTSM (RFC 5082 §3): send with TTL (hop limit) 255 and drop what arrives with less than
/// 256 − `hops`, so only a peer at most `hops` hops away can speak to us.
fn gtsm(fd: RawFd, v6: bool, hops: u8) -> io::Result<()> {
    let min = 256 - i32::from(hops);
    let (level, ttl_opt, min_opt) = if v6 {
        (
            libc::IPPROTO_IPV6,
            libc::IPV6_UNICAST_HOPS,
            libc::IPV6_MINHOPCOUNT,
        )
    } else {
        (libc::IPPROTO_IP, libc::IP_TTL, libc::IP_MINTTL)
    };
    setsockopt_int(fd, level, ttl_opt, 255)?;
    setsockopt_int(fd, level, min_opt, min)
}

fn setsockopt_int(fd: RawFd, level: i32, opt: i32, value: i32) -> io::Result<()> {
    // SAFETY: fd is an open socket of the caller; the value is a live c_int of the size passed.
    let rc = unsafe {
        libc::setsockopt(
            fd,
            level,
            opt,
            (&raw const value).cast(),
            std::mem::size_of::<i32>() as libc::socklen_t,
        )
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// GTSM on an accepted connection: from now on, segments from farther than `hops` are
/// dropped, so a peer out of range never gets its OPEN through.
pub(crate) fn set_ttl_security(stream: &TcpStream, hops: u8) -> io::Result<()> {
    let v6 = stream.local_addr()?.is_ipv6();
    gtsm(stream.as_raw_fd(), v6, hops)
}
