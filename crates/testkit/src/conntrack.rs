//! A namespace's conntrack table as the kernel prints it (`/proc/net/nf_conntrack`, read from
//! inside the namespace), and a UDP request/answer that leaves an established flow in it: the
//! tests of conntrack cleanup check with the kernel's own listing, not the code under test.

use std::net::{IpAddr, SocketAddr, UdpSocket};
use std::time::Duration;

use crate::netns::Netns;

/// The lines of `/proc/net/nf_conntrack` inside `ns`.
pub fn entries(ns: &Netns) -> Vec<String> {
    ns.run("cat", &["/proc/net/nf_conntrack"])
        .lines()
        .map(str::to_string)
        .collect()
}

/// How `/proc/net/nf_conntrack` writes an address (IPv6 in full, `%pI6`).
pub fn proc_addr(ip: IpAddr) -> String {
    match ip {
        IpAddr::V4(a) => a.to_string(),
        IpAddr::V6(a) => a
            .segments()
            .iter()
            .map(|s| format!("{s:04x}"))
            .collect::<Vec<_>>()
            .join(":"),
    }
}

/// The entries of `ns` with `ip` as a source or destination of either direction.
pub fn entries_of(ns: &Netns, ip: IpAddr) -> Vec<String> {
    let a = proc_addr(ip);
    let (src, dst) = (format!("src={a} "), format!("dst={a} "));
    entries(ns)
        .into_iter()
        .filter(|l| l.contains(&src) || l.contains(&dst))
        .collect()
}

/// One UDP datagram from `src` (in `client`) to `dst:port` (in `server`) and its answer, so the
/// flow is established in both namespaces' conntrack tables. Returns the client's port.
/// Panics when the answer does not come back within 5 s.
pub fn udp_exchange(client: &Netns, src: IpAddr, server: &Netns, dst: IpAddr, port: u16) -> u16 {
    let to = SocketAddr::new(dst, port);
    let wait = Some(Duration::from_secs(5));
    let listener = server.spawn_in(move || {
        let s = UdpSocket::bind(to).unwrap_or_else(|e| panic!("bind {to}: {e}"));
        s.set_read_timeout(wait).unwrap();
        let mut buf = [0u8; 64];
        let (n, from) = s
            .recv_from(&mut buf)
            .unwrap_or_else(|e| panic!("receive on {to}: {e}"));
        s.send_to(&buf[..n], from).unwrap();
    });
    let sender = client.spawn_in(move || {
        let s = UdpSocket::bind(SocketAddr::new(src, 0)).unwrap_or_else(|e| panic!("bind {src}: {e}"));
        s.set_read_timeout(Some(Duration::from_millis(200))).unwrap();
        let mut buf = [0u8; 64];
        // Resent until answered: the listener may not be bound yet.
        for _ in 0..25 {
            s.send_to(b"ping", to).unwrap();
            if s.recv(&mut buf).is_ok() {
                return s.local_addr().unwrap().port();
            }
        }
        panic!("no answer from {to} to {src}");
    });
    let port = sender.join().expect("udp client");
    listener.join().expect("udp server");
    port
}
