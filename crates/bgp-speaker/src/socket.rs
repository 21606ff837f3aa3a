//! Sockets: the listener (large backlog, one per address) and outgoing connections bound to the
//! node's address, with MD5 keys set before the SYN.

use std::io;
use std::net::{IpAddr, SocketAddr};
use std::os::fd::AsRawFd;
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
    let stream = tokio::time::timeout(timeout, sock.connect(peer))
        .await
        .map_err(|_| io::Error::from(io::ErrorKind::TimedOut))??;
    stream.set_nodelay(true)?;
    Ok(stream)
}
