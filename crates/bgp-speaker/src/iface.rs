//! The interface a session runs on, found from its local address (`getifaddrs(3)` in the
//! speaker's network namespace): its name is the interface of the peer's routes for
//! BGPFilter's `interface` match, and its IPv6 link-local address goes after our global one in
//! the next hop we send a peer on that link (RFC 2545 §3).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// What a session's interface tells us.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct SessionLink {
    pub interface: Option<String>,
    /// Our link-local address on it, when the peer is on one of its subnets.
    pub link_local: Option<Ipv6Addr>,
}

struct IfAddr {
    name: String,
    addr: IpAddr,
    prefix_len: u8,
}

fn sockaddr_ip(sa: *const libc::sockaddr) -> Option<IpAddr> {
    if sa.is_null() {
        return None;
    }
    // SAFETY: getifaddrs hands out valid sockaddrs whose family says which struct they are.
    unsafe {
        match i32::from((*sa).sa_family) {
            libc::AF_INET => {
                let sin = &*sa.cast::<libc::sockaddr_in>();
                Some(IpAddr::V4(Ipv4Addr::from(u32::from_be(sin.sin_addr.s_addr))))
            }
            libc::AF_INET6 => {
                let sin6 = &*sa.cast::<libc::sockaddr_in6>();
                Some(IpAddr::V6(Ipv6Addr::from(sin6.sin6_addr.s6_addr)))
            }
            _ => None,
        }
    }
}

fn prefix_len(mask: Option<IpAddr>) -> u8 {
    match mask {
        Some(IpAddr::V4(m)) => u32::from(m).count_ones() as u8,
        Some(IpAddr::V6(m)) => u128::from(m).count_ones() as u8,
        None => 0,
    }
}

fn addresses() -> Vec<IfAddr> {
    let mut head: *mut libc::ifaddrs = std::ptr::null_mut();
    // SAFETY: getifaddrs fills `head` with a list we free below with freeifaddrs.
    if unsafe { libc::getifaddrs(&mut head) } != 0 {
        return Vec::new();
    }
    let mut out = Vec::new();
    let mut cur = head;
    while !cur.is_null() {
        // SAFETY: `cur` is a node of the list getifaddrs returned, not yet freed.
        let ifa = unsafe { &*cur };
        if let Some(addr) = sockaddr_ip(ifa.ifa_addr) {
            // SAFETY: ifa_name is a NUL-terminated interface name.
            let name = unsafe { std::ffi::CStr::from_ptr(ifa.ifa_name) }
                .to_string_lossy()
                .into_owned();
            out.push(IfAddr {
                name,
                addr,
                prefix_len: prefix_len(sockaddr_ip(ifa.ifa_netmask)),
            });
        }
        cur = ifa.ifa_next;
    }
    // SAFETY: `head` came from getifaddrs and is freed once.
    unsafe { libc::freeifaddrs(head) };
    out
}

fn contains(a: &IfAddr, ip: IpAddr) -> bool {
    match (a.addr, ip) {
        (IpAddr::V4(n), IpAddr::V4(x)) => {
            let mask = u32::MAX.checked_shl(32 - u32::from(a.prefix_len)).unwrap_or(0);
            u32::from(n) & mask == u32::from(x) & mask
        }
        (IpAddr::V6(n), IpAddr::V6(x)) => {
            let mask = u128::MAX.checked_shl(128 - u32::from(a.prefix_len)).unwrap_or(0);
            u128::from(n) & mask == u128::from(x) & mask
        }
        _ => false,
    }
}

fn is_link_local(a: Ipv6Addr) -> bool {
    a.segments()[0] & 0xffc0 == 0xfe80
}

/// The interface holding `local` (our end of a session with `peer`).
pub(crate) fn session_link(local: IpAddr, peer: IpAddr) -> SessionLink {
    let all = addresses();
    let Some(name) = all.iter().find(|a| a.addr == local).map(|a| a.name.clone()) else {
        return SessionLink::default();
    };
    let mine = || all.iter().filter(|a| a.name == name);
    let on_link = mine().any(|a| a.prefix_len > 0 && contains(a, peer));
    let link_local = mine().find_map(|a| match a.addr {
        IpAddr::V6(v6) if is_link_local(v6) => Some(v6),
        _ => None,
    });
    SessionLink {
        link_local: link_local.filter(|_| on_link),
        interface: Some(name),
    }
}
