//! Raw IP packets with any source address, sent from inside a namespace, and a UDP sink that
//! reports the sources of what arrived (anti-spoofing tests).

use std::net::IpAddr;
use std::time::Duration;

use brindle_testkit::Netns;

fn checksum(data: &[u8]) -> u16 {
    let mut sum: u32 = 0;
    for c in data.chunks(2) {
        let w = if c.len() == 2 {
            u16::from_be_bytes([c[0], c[1]])
        } else {
            u16::from_be_bytes([c[0], 0])
        };
        sum += u32::from(w);
    }
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

/// An IP/UDP packet from `src` to `dst` (any source: a raw socket sends what it is given).
pub fn udp_packet(src: IpAddr, dst: IpAddr, sport: u16, dport: u16, payload: &[u8]) -> Vec<u8> {
    let ulen = (8 + payload.len()) as u16;
    let mut udp = Vec::new();
    udp.extend_from_slice(&sport.to_be_bytes());
    udp.extend_from_slice(&dport.to_be_bytes());
    udp.extend_from_slice(&ulen.to_be_bytes());
    udp.extend_from_slice(&[0, 0]);
    udp.extend_from_slice(payload);
    match (src, dst) {
        (IpAddr::V4(s), IpAddr::V4(d)) => {
            // UDP checksum 0 (none) is allowed over IPv4; the kernel fills the IP checksum.
            let mut p = vec![0x45, 0, 0, 0, 0, 0, 0x40, 0, 64, 17, 0, 0];
            let total = (20 + udp.len()) as u16;
            p[2..4].copy_from_slice(&total.to_be_bytes());
            p.extend_from_slice(&s.octets());
            p.extend_from_slice(&d.octets());
            p.extend_from_slice(&udp);
            p
        }
        (IpAddr::V6(s), IpAddr::V6(d)) => {
            let mut pseudo = Vec::new();
            pseudo.extend_from_slice(&s.octets());
            pseudo.extend_from_slice(&d.octets());
            pseudo.extend_from_slice(&(u32::from(ulen)).to_be_bytes());
            pseudo.extend_from_slice(&[0, 0, 0, 17]);
            pseudo.extend_from_slice(&udp);
            let c = checksum(&pseudo);
            udp[6..8].copy_from_slice(&(if c == 0 { 0xffff } else { c }).to_be_bytes());
            let mut p = vec![0x60, 0, 0, 0];
            p.extend_from_slice(&ulen.to_be_bytes());
            p.extend_from_slice(&[17, 64]);
            p.extend_from_slice(&s.octets());
            p.extend_from_slice(&d.octets());
            p.extend_from_slice(&udp);
            p
        }
        _ => panic!("mixed families"),
    }
}

/// Sends `packet` (a whole IP packet, any source address) from inside `ns` with a raw socket.
pub fn send_raw(ns: &Netns, packet: Vec<u8>, dst: IpAddr) {
    ns.spawn_in(move || {
        // SAFETY: a raw socket used for one sendto with valid buffers, then closed.
        unsafe {
            let (domain, addr, len): (libc::c_int, Vec<u8>, usize) = match dst {
                IpAddr::V4(d) => {
                    let mut sa: libc::sockaddr_in = std::mem::zeroed();
                    sa.sin_family = libc::AF_INET as u16;
                    sa.sin_addr.s_addr = u32::from_ne_bytes(d.octets());
                    let b = std::slice::from_raw_parts(
                        (&sa as *const libc::sockaddr_in).cast::<u8>(),
                        std::mem::size_of::<libc::sockaddr_in>(),
                    )
                    .to_vec();
                    (libc::AF_INET, b, std::mem::size_of::<libc::sockaddr_in>())
                }
                IpAddr::V6(d) => {
                    let mut sa: libc::sockaddr_in6 = std::mem::zeroed();
                    sa.sin6_family = libc::AF_INET6 as u16;
                    sa.sin6_addr.s6_addr = d.octets();
                    let b = std::slice::from_raw_parts(
                        (&sa as *const libc::sockaddr_in6).cast::<u8>(),
                        std::mem::size_of::<libc::sockaddr_in6>(),
                    )
                    .to_vec();
                    (libc::AF_INET6, b, std::mem::size_of::<libc::sockaddr_in6>())
                }
            };
            // IPPROTO_RAW implies a header written by the caller (IP_HDRINCL / IPV6_HDRINCL).
            let fd = libc::socket(domain, libc::SOCK_RAW, libc::IPPROTO_RAW);
            assert!(fd >= 0, "raw socket: {}", std::io::Error::last_os_error());
            let n = libc::sendto(
                fd,
                packet.as_ptr().cast(),
                packet.len(),
                0,
                addr.as_ptr().cast(),
                len as libc::socklen_t,
            );
            let err = std::io::Error::last_os_error();
            libc::close(fd);
            assert_eq!(n, packet.len() as isize, "sendto: {err}");
        }
    })
    .join()
    .unwrap();
}

/// A UDP socket in `ns` on `port`; returns a reader of the sources of what arrived.
pub fn udp_sink(ns: &Netns, v6: bool, port: u16) -> impl FnMut(Duration) -> Vec<IpAddr> {
    let sock = ns
        .spawn_in(move || {
            let bind = if v6 { "[::]" } else { "0.0.0.0" };
            std::net::UdpSocket::bind(format!("{bind}:{port}")).expect("bind udp")
        })
        .join()
        .unwrap();
    move |wait: Duration| {
        sock.set_read_timeout(Some(wait)).unwrap();
        let mut got = Vec::new();
        let mut buf = [0u8; 2048];
        while let Ok((_, from)) = sock.recv_from(&mut buf) {
            got.push(from.ip());
            sock.set_read_timeout(Some(Duration::from_millis(200))).unwrap();
        }
        got
    }
}
