//! TCP MD5 signatures (RFC 2385) through Linux's `TCP_MD5SIG` socket option. libc has the
//! constant but not the struct, so it is defined here as in `include/uapi/linux/tcp.h`.

use std::io;
use std::net::{IpAddr, SocketAddr};
use std::os::fd::RawFd;

const TCP_MD5SIG_MAXKEYLEN: usize = 80;

#[repr(C)]
struct TcpMd5Sig {
    addr: libc::sockaddr_storage,
    flags: u8,
    prefixlen: u8,
    keylen: u16,
    ifindex: libc::c_int,
    key: [u8; TCP_MD5SIG_MAXKEYLEN],
}

/// Sets (or, with `key == None`, removes) the MD5 key for connections with `peer` on `fd`.
/// On a listening socket this covers connections accepted from `peer`; on a connecting one,
/// the connection to it. `v6_socket`: the socket is AF_INET6, so an IPv4 peer is given as an
/// IPv4-mapped address.
pub fn set_key(fd: RawFd, peer: IpAddr, v6_socket: bool, key: Option<&[u8]>) -> io::Result<()> {
    let key = key.unwrap_or(&[]);
    if key.len() > TCP_MD5SIG_MAXKEYLEN {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "key longer than 80 bytes",
        ));
    }
    let addr: SocketAddr = match (peer, v6_socket) {
        (IpAddr::V4(a), true) => SocketAddr::from((a.to_ipv6_mapped(), 0)),
        (a, _) => SocketAddr::from((a, 0)),
    };
    let sa = socket2::SockAddr::from(addr);
    // SAFETY: all-zero bytes are a valid value for this plain C struct.
    let mut sig: TcpMd5Sig = unsafe { std::mem::zeroed() };
    // SAFETY: SockAddr holds a valid sockaddr of `sa.len()` bytes, which fits sockaddr_storage.
    unsafe {
        std::ptr::copy_nonoverlapping(
            sa.as_ptr().cast::<u8>(),
            (&raw mut sig.addr).cast::<u8>(),
            sa.len() as usize,
        );
    }
    sig.keylen = key.len() as u16;
    sig.key[..key.len()].copy_from_slice(key);
    // SAFETY: fd is a socket owned by the caller for the duration of the call; the option value
    // points to a live struct of the size passed.
    let rc = unsafe {
        libc::setsockopt(
            fd,
            libc::IPPROTO_TCP,
            libc::TCP_MD5SIG,
            (&raw const sig).cast(),
            std::mem::size_of::<TcpMd5Sig>() as libc::socklen_t,
        )
    };
    if rc == 0 {
        Ok(())
    } else {
        let e = io::Error::last_os_error();
        // Removing a key that was never set is not an error worth reporting.
        if key.is_empty() && e.raw_os_error() == Some(libc::ENOENT) {
            return Ok(());
        }
        Err(e)
    }
}
