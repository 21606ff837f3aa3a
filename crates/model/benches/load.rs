//! Loading manifests within limits: how fast hostile input is refused next to how fast normal
//! input loads (issue 16: a 100,000-deep flow mapping took 45 s of CPU to reject, 20,000 deep
//! 1.6 s, 40,000 deep 6.9 s). `cargo bench -p brindle-model --bench load`
use std::time::{Duration, Instant};

use brindle_model::{Limits, Loader, load_str};

fn time<T>(runs: u32, mut f: impl FnMut() -> T) -> Duration {
    let start = Instant::now();
    for _ in 0..runs {
        std::hint::black_box(f());
    }
    start.elapsed() / runs
}

fn deep(levels: usize) -> String {
    format!(
        "apiVersion: projectcalico.org/v3\nkind: IPPool\nmetadata:\n  name: p\nspec: {}{}\n",
        "{a: ".repeat(levels),
        "}".repeat(levels)
    )
}

fn main() {
    let seed = "apiVersion: projectcalico.org/v3\nkind: IPPool\nmetadata:\n  name: default-pool\nspec:\n  cidr: 10.233.64.0/18\n  blockSize: 24\n  ipipMode: Always\n  natOutgoing: true\n";
    let t = time(2000, || load_str("seed", seed).unwrap());
    println!(
        "{:<52} {:>10.1} µs",
        "load the seed IPPool (reference)",
        t.as_secs_f64() * 1e6
    );
    for levels in [20_000, 40_000, 100_000] {
        let text = deep(levels);
        let t = time(20, || load_str("deep", &text).unwrap_err());
        println!(
            "{:<52} {:>10.1} µs   ({} KB; was {})",
            format!("refuse a {levels}-deep flow mapping"),
            t.as_secs_f64() * 1e6,
            text.len() / 1000,
            match levels {
                20_000 => "1.6 s",
                40_000 => "6.9 s",
                _ => "45 s",
            }
        );
    }
    let json = format!("{}{}", "[".repeat(100_000), "]".repeat(100_000));
    let t = time(20, || load_str("deep.json", &json).unwrap_err());
    println!(
        "{:<52} {:>10.1} µs",
        "refuse a 100000-deep JSON array",
        t.as_secs_f64() * 1e6
    );
    let big = format!(
        "{}{}",
        seed.replace("spec:", "  annotations:\n    a: "),
        "x".repeat(50 << 20)
    );
    let t = time(3, || load_str("big", &big).unwrap_err());
    println!(
        "{:<52} {:>10.1} ms",
        "refuse a 50 MB document",
        t.as_secs_f64() * 1e3
    );
    let docs = 20_000;
    let stream: String = (0..docs)
        .map(|i| {
            format!(
                "---\napiVersion: projectcalico.org/v3\nkind: BGPPeer\nmetadata: {{name: p{i}}}\nspec: {{peerIP: 10.0.{}.{}, asNumber: 65001}}\n",
                i / 256 % 256,
                i % 256
            )
        })
        .collect();
    let start = Instant::now();
    let n: usize = Loader::new("stream", stream.as_bytes(), Limits::default())
        .map(|d| d.unwrap().len())
        .sum();
    let t = start.elapsed();
    assert_eq!(n, docs);
    println!(
        "{:<52} {:>10.1} µs/doc ({:.0} docs/s)",
        format!("stream {docs} documents"),
        t.as_secs_f64() * 1e6 / docs as f64,
        docs as f64 / t.as_secs_f64()
    );
}
