//! UPDATE decode speed: 1M IPv4 /24s packed ≈1013 per 4096-byte UPDATE with one attribute set (the
//! shape the BIRD receive anchor was measured with, docs/BENCHMARKS.md). Prints ns/prefix; the RIB
//! ingest half of the race with BIRD is in brindle-bgp-core's `rib_ingest` bench.

use std::hint::black_box;
use std::net::Ipv4Addr;

use brindle_bgp_wire::*;
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use ipnet::{IpNet, Ipv4Net};

const N: u32 = 1_000_000;

fn stream() -> Vec<u8> {
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
    for i in 0..N {
        let a = Ipv4Addr::from(0x0b00_0000u32.wrapping_add(i << 8));
        p.push_prefix(IpNet::V4(Ipv4Net::new(a, 24).unwrap()));
    }
    p.finish()
}

/// Frames and decodes every message, walking every prefix; returns the prefix count.
fn decode_all(bytes: &[u8], ctx: &Ctx) -> usize {
    let mut pos = 0;
    let mut n = 0;
    while pos < bytes.len() {
        let len = header::frame_len(&bytes[pos..], ctx.max_len).unwrap().unwrap();
        if let Message::Update(u) = Message::decode(&bytes[pos..pos + len], ctx).unwrap() {
            for nlri in u.nlri() {
                black_box(nlri);
                n += 1;
            }
        }
        pos += len;
    }
    n
}

fn bench(c: &mut Criterion) {
    let bytes = stream();
    let ctx = Ctx {
        four_octet_as: true,
        ..Ctx::default()
    };
    assert_eq!(decode_all(&bytes, &ctx), N as usize);
    let t = std::time::Instant::now();
    let reps = 5;
    for _ in 0..reps {
        black_box(decode_all(&bytes, &ctx));
    }
    let per = t.elapsed().as_secs_f64() / reps as f64;
    println!(
        "update_decode: {} bytes, 1M /24 decoded in {:.4} s = {:.1} ns/prefix (BIRD 2.0.12 ingests 1M into its RIB in 0.25-0.30 s on this machine)",
        bytes.len(),
        per,
        per * 1e9 / N as f64
    );
    let mut g = c.benchmark_group("update_decode");
    g.throughput(Throughput::Elements(u64::from(N)));
    g.sample_size(10);
    g.bench_function("1M_v4_24_packed", |b| b.iter(|| decode_all(&bytes, &ctx)));
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
