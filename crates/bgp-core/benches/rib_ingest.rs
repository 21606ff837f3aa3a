//! RIB ingest: 1M IPv4 /24s in packed UPDATEs (≈1013 per 4096-byte message, one attribute set:
//! the shape the BIRD anchor was measured with), decoded and applied to the RIB, changes drained
//! as the speaker does. Prints ns/prefix, heap bytes per route (counting allocator) and the RSS
//! growth per route, next to BIRD 2's anchor (BIRD 2.0.12 measured on this project's 2-core
//! machine: 0.25–0.30 s, 94 B/route; see docs/BENCHMARKS.md).

use std::hint::black_box;
use std::net::{IpAddr, Ipv4Addr};
use std::time::Instant;

use brindle_bgp_core::{PeerInfo, Rib};
use brindle_bgp_wire::*;
use brindle_testkit::alloc::{Counting, live_bytes};
use criterion::{Criterion, criterion_group, criterion_main};
use ipnet::{IpNet, Ipv4Net};

#[global_allocator]
static A: Counting = Counting;

const N: u32 = 1_000_000;

fn ctx() -> Ctx {
    Ctx {
        four_octet_as: true,
        ..Ctx::default()
    }
}

fn stream() -> Vec<u8> {
    let attrs = PathAttrs {
        origin: Some(Origin::Igp),
        as_path: Some(AsPath::default()),
        next_hop: Some(Ipv4Addr::new(10, 99, 0, 1)),
        local_pref: Some(100),
        ..PathAttrs::default()
    };
    let c = ctx();
    let mut p = UpdatePacker::announce(&c, Family::IPV4_UNICAST, &attrs, None);
    for i in 0..N {
        let a = Ipv4Addr::from(0x0b00_0000u32.wrapping_add(i << 8));
        p.push_prefix(IpNet::V4(Ipv4Net::new(a, 24).unwrap()));
    }
    p.finish()
}

/// The BIRD anchor's second shape: 100k UPDATEs of one prefix each, every one with its own MED
/// (100k distinct attribute sets).
fn single_stream(n: u32) -> Vec<u8> {
    let c = ctx();
    let mut out = Vec::new();
    for i in 0..n {
        let attrs = PathAttrs {
            origin: Some(Origin::Igp),
            as_path: Some(AsPath::default()),
            next_hop: Some(Ipv4Addr::new(10, 99, 0, 1)),
            local_pref: Some(100),
            med: Some(i),
            ..PathAttrs::default()
        };
        let mut p = UpdatePacker::announce(&c, Family::IPV4_UNICAST, &attrs, None);
        let a = Ipv4Addr::from(0x0b00_0000u32.wrapping_add(i << 8));
        p.push_prefix(IpNet::V4(Ipv4Net::new(a, 24).unwrap()));
        out.extend(p.finish());
    }
    out
}

fn ingest(bytes: &[u8]) -> Rib {
    let c = ctx();
    let mut rib = Rib::new(Ipv4Addr::new(10, 99, 0, 2), 64512);
    let peer = rib.add_peer(PeerInfo::new(
        IpAddr::V4(Ipv4Addr::new(10, 99, 0, 1)),
        Ipv4Addr::new(10, 99, 0, 1),
        64512,
        64512,
    ));
    let mut pos = 0;
    while pos < bytes.len() {
        let len = header::frame_len(&bytes[pos..], c.max_len).unwrap().unwrap();
        if let Message::Update(u) = Message::decode(&bytes[pos..pos + len], &c).unwrap() {
            rib.apply_update(peer, &u);
            // The speaker hands changes to subscribers per batch; with none, they are dropped.
            rib.discard_changes();
        }
        pos += len;
    }
    rib
}

fn rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        })
        .unwrap_or(0)
}

fn bench(c: &mut Criterion) {
    let bytes = stream();
    let heap0 = live_bytes();
    let rss0 = rss_kib();
    let t = Instant::now();
    let rib = ingest(&bytes);
    let secs = t.elapsed().as_secs_f64();
    let heap = live_bytes() - heap0;
    let rss = rss_kib().saturating_sub(rss0);
    assert_eq!(rib.len(), N as usize);
    println!(
        "rib_ingest: 1M /24 (988 packed UPDATEs) into the RIB in {secs:.3} s = {:.0} ns/prefix; \
         heap {:.1} B/route, RSS growth {:.1} B/route \
         (BIRD 2.0.12 on this machine: 0.25-0.30 s, 94 B/route; BIRD 1.6.8: 0.32 s, 123 B/route)",
        secs * 1e9 / f64::from(N),
        heap as f64 / f64::from(N),
        rss as f64 * 1024.0 / f64::from(N),
    );
    drop(black_box(rib));

    let single = single_stream(100_000);
    let heap0 = live_bytes();
    let t = Instant::now();
    let rib = ingest(&single);
    let secs = t.elapsed().as_secs_f64();
    let heap = live_bytes() - heap0;
    assert_eq!(rib.attr_sets(), 100_001);
    println!(
        "rib_ingest: 100k single-prefix UPDATEs, distinct MEDs, in {secs:.3} s; heap {:.0} B/route \
         (BIRD 2.0.12 on this machine: 0.15 s, 366 B/route)",
        heap as f64 / 100_000.0,
    );
    drop(black_box(rib));

    let mut g = c.benchmark_group("rib_ingest");
    g.sample_size(10);
    g.bench_function("1M_v4_24_packed", |b| b.iter(|| ingest(&bytes)));
    g.bench_function("100k_single_prefix_distinct_med", |b| b.iter(|| ingest(&single)));
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
