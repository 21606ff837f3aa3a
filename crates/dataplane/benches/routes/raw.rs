//! The raw-netlink anchor, in-process: the method of the v4 anchor script (pre-built
//! RTM_NEWROUTE messages, 512 per `send`, no per-route ACK, errors drained as they come, one
//! ACKed probe at the end), for either family. It shares no code with brindle-netlink, so it
//! measures what the kernel costs, not what Brindle's encoder costs.

use std::net::IpAddr;
use std::time::Instant;

use ipnet::IpNet;

const RTM_NEWROUTE: u16 = 24;
const RTM_DELROUTE: u16 = 25;
const NLMSG_ERROR: u16 = 2;
const NLM_F_REQUEST: u16 = 1;
const NLM_F_ACK: u16 = 4;
const NLM_F_EXCL: u16 = 0x200;
const NLM_F_CREATE: u16 = 0x400;
const RTA_DST: u16 = 1;
const RTA_OIF: u16 = 4;
const RTA_GATEWAY: u16 = 5;
const RTPROT_STATIC: u8 = 4;
const PER_SEND: usize = 512;

fn attr(buf: &mut Vec<u8>, kind: u16, data: &[u8]) {
    buf.extend_from_slice(&((4 + data.len()) as u16).to_ne_bytes());
    buf.extend_from_slice(&kind.to_ne_bytes());
    buf.extend_from_slice(data);
    buf.resize(buf.len() + (4 - data.len() % 4) % 4, 0);
}

fn octets(ip: IpAddr) -> Vec<u8> {
    match ip {
        IpAddr::V4(v) => v.octets().to_vec(),
        IpAddr::V6(v) => v.octets().to_vec(),
    }
}

fn message(seq: u32, kind: u16, flags: u16, dst: IpNet, gw: IpAddr, oif: u32) -> Vec<u8> {
    let family = if dst.addr().is_ipv4() {
        libc::AF_INET
    } else {
        libc::AF_INET6
    } as u8;
    let mut b = vec![0u8; 16];
    b.extend_from_slice(&[family, dst.prefix_len(), 0, 0, 254, RTPROT_STATIC, 0, 1]);
    b.extend_from_slice(&0u32.to_ne_bytes());
    attr(&mut b, RTA_DST, &octets(dst.network()));
    attr(&mut b, RTA_GATEWAY, &octets(gw));
    attr(&mut b, RTA_OIF, &oif.to_ne_bytes());
    let len = b.len() as u32;
    b[0..4].copy_from_slice(&len.to_ne_bytes());
    b[4..6].copy_from_slice(&kind.to_ne_bytes());
    b[6..8].copy_from_slice(&flags.to_ne_bytes());
    b[8..12].copy_from_slice(&seq.to_ne_bytes());
    b
}

/// Errors in the NLMSG_ERROR messages of `d`; whether the probe's reply (`probe_seq`) is there.
fn errors_in(d: &[u8], probe_seq: u32) -> (usize, bool) {
    let (mut errors, mut probe, mut off) = (0, false, 0);
    while off + 20 <= d.len() {
        let len = u32::from_ne_bytes(d[off..off + 4].try_into().unwrap()) as usize;
        let kind = u16::from_ne_bytes(d[off + 4..off + 6].try_into().unwrap());
        let seq = u32::from_ne_bytes(d[off + 8..off + 12].try_into().unwrap());
        if kind == NLMSG_ERROR {
            if seq == probe_seq {
                probe = true;
            } else if i32::from_ne_bytes(d[off + 16..off + 20].try_into().unwrap()) != 0 {
                errors += 1;
            }
        }
        if len == 0 {
            break;
        }
        off += (len + 3) & !3;
    }
    (errors, probe)
}

/// Installs `routes` (`dst via gw dev oif`) in the namespace at `netns` and returns the seconds
/// from the first `send` to the probe's ACK, and the count of refused routes.
pub fn install(netns: &std::path::Path, routes: &[IpNet], gw: IpAddr, oif: u32) -> (f64, usize) {
    let msgs: Vec<Vec<u8>> = routes
        .iter()
        .enumerate()
        .map(|(i, d)| {
            message(
                i as u32 + 1,
                RTM_NEWROUTE,
                NLM_F_REQUEST | NLM_F_CREATE | NLM_F_EXCL,
                *d,
                gw,
                oif,
            )
        })
        .collect();
    let batches: Vec<Vec<u8>> = msgs.chunks(PER_SEND).map(|c| c.concat()).collect();
    // The probe: an ACKed delete of a route that does not exist, answered after everything else.
    let probe_dst: IpNet = if gw.is_ipv4() {
        "127.127.127.0/24".parse().unwrap()
    } else {
        "fd7f:7f7f:7f7f::/48".parse().unwrap()
    };
    let probe_seq = 0x0fff_ffff;
    let probe = message(
        probe_seq,
        RTM_DELROUTE,
        NLM_F_REQUEST | NLM_F_ACK,
        probe_dst,
        gw,
        oif,
    );
    let ns = brindle_netlink::NetnsFd::open(netns).unwrap();
    ns.run(move || {
        // SAFETY: plain socket calls on a socket this closure owns and closes; buffers are valid
        // for the lengths passed.
        unsafe {
            let fd = libc::socket(
                libc::AF_NETLINK,
                libc::SOCK_RAW | libc::SOCK_CLOEXEC,
                libc::NETLINK_ROUTE,
            );
            assert!(fd >= 0, "netlink socket");
            let rcv: libc::c_int = 8 << 20;
            libc::setsockopt(
                fd,
                libc::SOL_SOCKET,
                libc::SO_RCVBUF,
                (&rcv as *const libc::c_int).cast(),
                std::mem::size_of::<libc::c_int>() as u32,
            );
            let mut sa: libc::sockaddr_nl = std::mem::zeroed();
            sa.nl_family = libc::AF_NETLINK as u16;
            assert_eq!(
                libc::bind(
                    fd,
                    (&sa as *const libc::sockaddr_nl).cast(),
                    std::mem::size_of::<libc::sockaddr_nl>() as u32
                ),
                0
            );
            let mut rx = vec![0u8; 1 << 20];
            let mut errors = 0;
            let t = Instant::now();
            for b in &batches {
                assert_eq!(libc::send(fd, b.as_ptr().cast(), b.len(), 0), b.len() as isize);
                loop {
                    let n = libc::recv(fd, rx.as_mut_ptr().cast(), rx.len(), libc::MSG_DONTWAIT);
                    if n <= 0 {
                        break;
                    }
                    errors += errors_in(&rx[..n as usize], probe_seq).0;
                }
            }
            assert_eq!(
                libc::send(fd, probe.as_ptr().cast(), probe.len(), 0),
                probe.len() as isize
            );
            loop {
                let n = libc::recv(fd, rx.as_mut_ptr().cast(), rx.len(), 0);
                assert!(n > 0, "netlink recv");
                let (e, done) = errors_in(&rx[..n as usize], probe_seq);
                errors += e;
                if done {
                    break;
                }
            }
            let secs = t.elapsed().as_secs_f64();
            libc::close(fd);
            (secs, errors)
        }
    })
    .unwrap()
}
