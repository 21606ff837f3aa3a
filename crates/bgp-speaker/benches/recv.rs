//! End-to-end receive race, the BIRD anchor's shape: one iBGP peer sends N distinct /24s packed
//! ≈1013 per 4096-byte UPDATE with one attribute set, in one write once Established; the time is
//! Established → the speaker's RIB holds all N (counter polled every 2 ms, the anchors' counter
//! method), and memory is the RSS growth 1 s later. Runs in two namespaces of its own (root).
//!
//! `cargo bench -p brindle-bgp-speaker --bench recv` (N from BRINDLE_BENCH_PREFIXES, default
//! 1,000,000). Compare with BIRD in the same session: the `race` bench of this crate runs
//! BIRD 2, FRR and GoBGP side by side (docs/BENCHMARKS.md).

use std::io::{Read, Write};
use std::net::{Ipv4Addr, TcpStream};
use std::time::{Duration, Instant};

use brindle_bgp_speaker::{PeerConfig, PeerType, Speaker, SpeakerConfig};
use brindle_bgp_wire::capability::Capability;
use brindle_bgp_wire::*;
use brindle_testkit::Netns;
use ipnet::{IpNet, Ipv4Net};

fn rss_kib() -> u64 {
    brindle_testkit::process::rss_kib(std::process::id())
}

/// CPU time (user + system) of the whole process, all threads, in ns.
fn cpu_ns() -> u64 {
    // SAFETY: getrusage fills the struct we pass; all-zero is a valid initial value.
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: RUSAGE_SELF with a valid pointer.
    unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut ru) };
    let t = |tv: libc::timeval| tv.tv_sec as u64 * 1_000_000_000 + tv.tv_usec as u64 * 1000;
    t(ru.ru_utime) + t(ru.ru_stime)
}

fn stream(n: u32) -> Vec<u8> {
    let ctx = Ctx {
        four_octet_as: true,
        ..Ctx::default()
    };
    let attrs = PathAttrs {
        origin: Some(Origin::Igp),
        as_path: Some(AsPath::default()),
        next_hop: Some(Ipv4Addr::new(10, 99, 0, 1)),
        local_pref: Some(100),
        ..PathAttrs::default()
    };
    let mut p = UpdatePacker::announce(&ctx, Family::IPV4_UNICAST, &attrs, None);
    for i in 0..n {
        let a = Ipv4Addr::from(0x0b00_0000u32.wrapping_add(i << 8));
        p.push_prefix(IpNet::V4(Ipv4Net::new(a, 24).unwrap()));
    }
    p.finish()
}

/// Reads one whole message.
fn read_msg(s: &mut TcpStream) -> Vec<u8> {
    let mut h = [0u8; 19];
    s.read_exact(&mut h).unwrap();
    let len = u16::from_be_bytes([h[16], h[17]]) as usize;
    let mut m = h.to_vec();
    m.resize(len, 0);
    s.read_exact(&mut m[19..]).unwrap();
    m
}

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    let n: u32 = std::env::var("BRINDLE_BENCH_PREFIXES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1_000_000);
    let a = Netns::new("bgpba");
    let b = Netns::new("bgpbb");
    a.veth("va", &b, "vb");
    a.ip(&["addr", "add", "10.99.0.1/30", "dev", "va"]);
    b.ip(&["addr", "add", "10.99.0.2/30", "dev", "vb"]);
    a.ip(&["link", "set", "va", "up"]);
    b.ip(&["link", "set", "vb", "up"]);
    let bytes = stream(n);

    let (htx, hrx) = std::sync::mpsc::channel();
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let server = b.spawn_in(move || {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async move {
            let h = Speaker::start(SpeakerConfig::new(Ipv4Addr::new(10, 99, 0, 2), 64512)).unwrap();
            h.set_peers(vec![PeerConfig {
                passive: true,
                hold_time: 180,
                ..PeerConfig::new("10.99.0.1".parse().unwrap(), 64512, PeerType::Global)
            }])
            .await
            .unwrap();
            htx.send(h.clone()).unwrap();
            let _ = stop_rx.await;
            let _ = h.shutdown().await;
        });
    });
    let handle = hrx.recv().unwrap();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    std::thread::sleep(Duration::from_secs(1));
    let rss0 = rss_kib();
    let cpu0 = cpu_ns();

    let sender = a.spawn_in(move || {
        let mut s = TcpStream::connect("10.99.0.2:179").expect("connect to the speaker");
        let open = Open::new(
            64512,
            180,
            Ipv4Addr::new(10, 99, 0, 1),
            vec![Capability::MultiProtocol(Family::IPV4_UNICAST)],
        );
        s.write_all(&OutMessage::Open(open).to_bytes(&Ctx::default()))
            .unwrap();
        s.write_all(&OutMessage::Keepalive.to_bytes(&Ctx::default()))
            .unwrap();
        // Their OPEN, then their KEEPALIVE: Established.
        while read_msg(&mut s)[18] != 4 {}
        let t0 = Instant::now();
        s.write_all(&bytes).unwrap();
        // Drain what the speaker sends (End-of-RIB, keepalives) until it closes.
        let mut r = s.try_clone().unwrap();
        std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            while r.read(&mut buf).is_ok_and(|n| n > 0) {}
        });
        // The stream is returned, not freed, so its pages do not offset the RSS growth.
        (t0, s, bytes)
    });
    let (t0, _conn, _bytes) = sender.join().unwrap();
    loop {
        let st = rt.block_on(handle.status()).unwrap();
        if st.first().is_some_and(|p| p.routes_imported >= n as usize) {
            break;
        }
        std::thread::sleep(Duration::from_millis(2));
    }
    let secs = t0.elapsed().as_secs_f64();
    // Includes the 2 ms status polling and the generator's one write.
    let cpu = (cpu_ns() - cpu0) as f64 / 1e9;
    std::thread::sleep(Duration::from_secs(1));
    let rss = rss_kib().saturating_sub(rss0);
    println!(
        "speaker_recv: {n} /24 packed, Established -> all in the RIB in {secs:.3} s \
         ({:.0} ns/prefix, {:.2} M prefixes/s), CPU {cpu:.2} s; RSS +{:.1} MiB = {:.1} B/route \
         (this machine, 1M: BIRD 2.0.12 0.25-0.30 s / 94 B/route, BIRD 1.6.8 0.32 s / 123, \
         FRR 2.2-2.7 s / 566, GoBGP 9-16 s / 1560)",
        secs * 1e9 / f64::from(n),
        f64::from(n) / secs / 1e6,
        rss as f64 / 1024.0,
        rss as f64 * 1024.0 / f64::from(n),
    );
    let _ = stop_tx.send(());
    server.join().unwrap();
}
