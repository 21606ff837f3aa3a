//! Route generators written in Rust, so the generator is never what a run measures (the Python
//! generators the first anchors were measured with bound FRR and GoBGP at ~1k sessions/s). Both
//! build every message before connecting.
//!
//! - [`recv`]: one iBGP peer that sends N /24s in one write once Established (the receive race):
//!   packed ≈1013 per 4096-byte UPDATE with one attribute set, or one per UPDATE with its own
//!   MED.
//! - [`mesh`]: P iBGP peers connecting at once from P source addresses, each announcing one
//!   /26 with itself as next hop, then End-of-RIB (Calico's full-mesh shape).

use std::io::{Read, Write};
use std::net::{IpAddr, Ipv4Addr, SocketAddr, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use brindle_bgp_wire::capability::Capability;
use brindle_bgp_wire::*;
use ipnet::{IpNet, Ipv4Net};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

fn ctx() -> Ctx {
    Ctx {
        four_octet_as: true,
        ..Ctx::default()
    }
}

fn open(asn: u32, id: Ipv4Addr) -> Vec<u8> {
    let caps = vec![
        Capability::MultiProtocol(Family::IPV4_UNICAST),
        Capability::RouteRefresh,
    ];
    OutMessage::Open(Open::new(asn, 180, id, caps)).to_bytes(&Ctx::default())
}

fn attrs(nh: Ipv4Addr, med: Option<u32>) -> PathAttrs {
    PathAttrs {
        origin: Some(Origin::Igp),
        as_path: Some(AsPath::default()),
        next_hop: Some(nh),
        local_pref: Some(100),
        med,
        ..PathAttrs::default()
    }
}

fn p24(i: u32) -> IpNet {
    IpNet::V4(Ipv4Net::new(Ipv4Addr::from(0x0b00_0000u32.wrapping_add(i << 8)), 24).unwrap())
}

/// N distinct /24s from 11.0.0.0, packed or one per UPDATE with a distinct MED.
pub fn recv_stream(n: u32, single: bool, nh: Ipv4Addr) -> Vec<u8> {
    let c = ctx();
    if !single {
        let mut p = UpdatePacker::announce(&c, Family::IPV4_UNICAST, &attrs(nh, None), None);
        (0..n).for_each(|i| p.push_prefix(p24(i)));
        return p.finish();
    }
    let mut out = Vec::with_capacity(n as usize * 60);
    for i in 0..n {
        let mut p = UpdatePacker::announce(&c, Family::IPV4_UNICAST, &attrs(nh, Some(i)), None);
        p.push_prefix(p24(i));
        out.extend(p.finish());
    }
    out
}

fn read_msg(s: &mut TcpStream) -> std::io::Result<Vec<u8>> {
    let mut h = [0u8; 19];
    s.read_exact(&mut h)?;
    let len = u16::from_be_bytes([h[16], h[17]]) as usize;
    let mut m = h.to_vec();
    m.resize(len.max(19), 0);
    s.read_exact(&mut m[19..])?;
    Ok(m)
}

/// A running recv generator: Established at `established`, everything written at `sent`.
pub struct Recv {
    pub established: Instant,
    pub sent: Instant,
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

/// Connects (the calling thread must be in the generator's namespace), sends `bytes` once
/// Established, then drains what the daemon sends and keeps the session up until dropped.
pub fn recv(to: SocketAddr, me: Ipv4Addr, bytes: Vec<u8>) -> Recv {
    let mut s = TcpStream::connect(to).expect("connect to the daemon");
    s.write_all(&open(64512, me)).unwrap();
    s.write_all(&OutMessage::Keepalive.to_bytes(&Ctx::default()))
        .unwrap();
    // Their OPEN, then their KEEPALIVE: Established.
    while read_msg(&mut s).expect("handshake")[18] != 4 {}
    let established = Instant::now();
    s.write_all(&bytes).unwrap();
    let sent = Instant::now();
    drop(bytes);
    let stop = Arc::new(AtomicBool::new(false));
    let st = stop.clone();
    let thread = std::thread::spawn(move || {
        s.set_read_timeout(Some(Duration::from_secs(1))).unwrap();
        let mut last_ka = Instant::now();
        let mut buf = [0u8; 4096];
        while !st.load(Ordering::Relaxed) {
            match s.read(&mut buf) {
                Ok(0) => return,
                Ok(_) => {}
                Err(e)
                    if e.kind() == std::io::ErrorKind::WouldBlock
                        || e.kind() == std::io::ErrorKind::TimedOut => {}
                Err(_) => return,
            }
            if last_ka.elapsed() > Duration::from_secs(30) {
                let _ = s.write_all(&OutMessage::Keepalive.to_bytes(&Ctx::default()));
                last_ka = Instant::now();
            }
        }
    });
    Recv {
        established,
        sent,
        stop,
        thread: Some(thread),
    }
}

impl Drop for Recv {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Source address of mesh peer `i` (as mesh_blast.py: 10.98.<i/250>.<i%250+1>).
pub fn mesh_addr(i: usize) -> Ipv4Addr {
    Ipv4Addr::new(10, 98, (i / 250) as u8, (i % 250 + 1) as u8)
}

/// When every session of a mesh run was Established, and how many connects were retried.
pub struct MeshResult {
    pub all_established: Instant,
    pub retries: usize,
}

/// One mesh peer: connect from `src` (retrying after 1 s on any failure, as a BGP speaker's
/// connect retry), handshake, announce its /26 and End-of-RIB, then stay up until `stop`.
async fn mesh_peer(
    i: usize,
    to: SocketAddr,
    stop: Arc<AtomicBool>,
    est: tokio::sync::mpsc::UnboundedSender<(Instant, usize)>,
) {
    let src = mesh_addr(i);
    let block = Ipv4Net::new(Ipv4Addr::from(0x0ac8_0000u32 + (i as u32) * 64), 26).unwrap();
    let c = ctx();
    let mut p = UpdatePacker::announce(&c, Family::IPV4_UNICAST, &attrs(src, None), None);
    p.push_prefix(IpNet::V4(block));
    let mut update = p.finish();
    OutMessage::Update(UpdateMsg::end_of_rib(Family::IPV4_UNICAST)).encode(&ctx(), &mut update);
    let mut retries = 0;
    let mut stream = loop {
        let attempt = async {
            let sock = tokio::net::TcpSocket::new_v4()?;
            sock.bind(SocketAddr::new(IpAddr::V4(src), 0))?;
            let mut s = sock.connect(to).await?;
            s.write_all(&open(64512, src)).await?;
            let mut buf = Vec::new();
            loop {
                let mut chunk = [0u8; 4096];
                let n = s.read(&mut chunk).await?;
                if n == 0 {
                    return Err(std::io::Error::other("closed in handshake"));
                }
                buf.extend_from_slice(&chunk[..n]);
                while buf.len() >= 19 {
                    let len = u16::from_be_bytes([buf[16], buf[17]]) as usize;
                    if buf.len() < len {
                        break;
                    }
                    let t = buf[18];
                    buf.drain(..len);
                    match t {
                        1 => {
                            s.write_all(&OutMessage::Keepalive.to_bytes(&Ctx::default()))
                                .await?
                        }
                        4 => return Ok(s),
                        3 => return Err(std::io::Error::other("NOTIFICATION")),
                        _ => {}
                    }
                }
            }
        };
        match attempt.await {
            Ok(s) => break s,
            Err(_) if stop.load(Ordering::Relaxed) => return,
            Err(_) => {
                retries += 1;
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
        }
    };
    let _ = est.send((Instant::now(), retries));
    if stream.write_all(&update).await.is_err() {
        return;
    }
    let mut buf = [0u8; 4096];
    let mut last_ka = Instant::now();
    while !stop.load(Ordering::Relaxed) {
        match tokio::time::timeout(Duration::from_secs(1), stream.read(&mut buf)).await {
            Ok(Ok(0)) | Ok(Err(_)) => return,
            _ => {}
        }
        if last_ka.elapsed() > Duration::from_secs(30) {
            let _ = stream
                .write_all(&OutMessage::Keepalive.to_bytes(&Ctx::default()))
                .await;
            last_ka = Instant::now();
        }
    }
}

/// A running mesh generator (its own thread and tokio runtime in the caller's namespace).
pub struct Mesh {
    pub start: Instant,
    stop: Arc<AtomicBool>,
    result: std::sync::mpsc::Receiver<MeshResult>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Mesh {
    /// Opens `peers` sessions to `to` at once. Call from a thread in the generator namespace;
    /// the runtime thread it spawns inherits it.
    pub fn start(to: SocketAddr, peers: usize) -> Mesh {
        let stop = Arc::new(AtomicBool::new(false));
        let (tx, result) = std::sync::mpsc::channel();
        let st = stop.clone();
        let start = Instant::now();
        let thread = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async move {
                let (etx, mut erx) = tokio::sync::mpsc::unbounded_channel();
                let tasks: Vec<_> = (0..peers)
                    .map(|i| tokio::spawn(mesh_peer(i, to, st.clone(), etx.clone())))
                    .collect();
                let (mut last, mut retries) = (Instant::now(), 0);
                for _ in 0..peers {
                    match erx.recv().await {
                        Some((t, r)) => {
                            last = last.max(t);
                            retries += r;
                        }
                        None => break,
                    }
                }
                let _ = tx.send(MeshResult {
                    all_established: last,
                    retries,
                });
                for t in tasks {
                    let _ = t.await;
                }
            });
        });
        Mesh {
            start,
            stop,
            result,
            thread: Some(thread),
        }
    }

    /// The result once every session was Established (non-blocking).
    pub fn established(&self) -> Option<MeshResult> {
        self.result.try_recv().ok()
    }
}

impl Drop for Mesh {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}
