//! Convergence over both families (run as root; not a timed test): two dual-stack agents on
//! a shared bridge (the `agent_ipv6` test's harness), /31 IPv4 and /127 IPv6 blocks so every
//! other pod needs a new block; each dual-stack pod ADD on node1 (the CNI plugin, as a runtime
//! runs it) is timed until node2's kernel holds a route to the pod's IPv4 address and to its
//! IPv6 address. The IPv4 figures are the anchor of the same run. Goal: IPv6 p99 < 100 ms.
//!
//! `cargo bench -p brindle --bench agent_ipv6 [-- PODS]` (default 40).

#[path = "../tests/v6_support/mod.rs"]
mod v6_support;

use std::net::IpAddr;
use std::time::{Duration, Instant};

use brindle_netlink::Handle;
use brindle_testkit::TempDir;
use v6_support::{Hub, Node, add_pod, pool, put, wait_for};

fn pct(v: &mut [f64], p: f64) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    let i = ((v.len() as f64 - 1.0) * p).round() as usize;
    v[i]
}

/// Some route other than a default one covers `ip` in `h`'s main table.
fn routed(h: &mut Handle, ip: IpAddr) -> bool {
    h.routes(Some(254))
        .expect("routes")
        .iter()
        .any(|r| r.dst.prefix_len() > 0 && r.dst.contains(&ip))
}

/// The main table's non-default prefixes.
fn prefixes(h: &mut Handle) -> Vec<ipnet::IpNet> {
    h.routes(Some(254))
        .expect("routes")
        .into_iter()
        .map(|r| r.dst)
        .filter(|d| d.prefix_len() > 0)
        .collect()
}

fn main() {
    let pods: u32 = std::env::args()
        .skip(1)
        .find(|a| !a.starts_with('-'))
        .and_then(|a| a.parse().ok())
        .unwrap_or(40);
    let dir = TempDir::new("v6b");
    let db = dir.join("brindle.db");
    let ds =
        brindle_datastore::open(&brindle_datastore::DatastoreConfig::sqlite(&db)).expect("open datastore");
    for (k, v) in [
        pool("pool4", "10.244.0.0/16", 31),
        pool("pool6", "fd00:10:244::/64", 127),
    ] {
        put(ds.as_ref(), &k, v);
    }
    let hub = Hub::new();
    let n1 = Node::new(&hub, &dir, "v6b-node1", 11, false);
    let n2 = Node::new(&hub, &dir, "v6b-node2", 12, false);
    let mut a1 = n1.agent(&db, 1);
    let mut a2 = n2.agent(&db, 1);
    for n in [&n1, &n2] {
        wait_for(
            &format!("{}: every session Established", n.name),
            Duration::from_secs(60),
            || {
                n.status().and_then(|s| s.bgp).is_some_and(|b| {
                    b.peers_v4.len() == 1
                        && b.peers_v6.len() == 1
                        && b.peers_v4.iter().chain(&b.peers_v6).all(|p| p.established)
                })
            },
            || n.log(1),
        );
    }
    eprintln!(
        "convergence: 2 dual-stack agents, /31 and /127 blocks, {pods} pod ADDs on node1, watched from node2"
    );
    let mut h = Handle::open_named(n2.ns.name()).expect("netlink in node2");
    let (mut add, mut v4, mut v6) = (vec![], vec![], vec![]);
    // Only the ADDs that needed a new block (its route is news to node2).
    let (mut new4, mut new6) = (vec![], vec![]);
    let mut keep = Vec::new();
    for i in 0..pods {
        let before = prefixes(&mut h);
        let t0 = Instant::now();
        let p = add_pod(&n1, &db, i + 1);
        let t_add = t0.elapsed();
        let (ip4, ip6): (IpAddr, IpAddr) = (p.v4.parse().unwrap(), p.v6.parse().unwrap());
        let (mut s4, mut s6) = (None, None);
        let deadline = Instant::now() + Duration::from_secs(10);
        while s4.is_none() || s6.is_none() {
            assert!(
                Instant::now() < deadline,
                "no routes to {ip4} / {ip6} on node2 after 10 s"
            );
            if s4.is_none() && routed(&mut h, ip4) {
                s4 = Some(t0.elapsed());
            }
            if s6.is_none() && routed(&mut h, ip6) {
                s6 = Some(t0.elapsed());
            }
            std::thread::sleep(Duration::from_micros(300));
        }
        add.push(t_add.as_secs_f64() * 1e3);
        let (t4, t6) = (s4.unwrap().as_secs_f64() * 1e3, s6.unwrap().as_secs_f64() * 1e3);
        v4.push(t4);
        v6.push(t6);
        if !before.iter().any(|b| b.contains(&ip4)) {
            new4.push(t4);
        }
        if !before.iter().any(|b| b.contains(&ip6)) {
            new6.push(t6);
        }
        keep.push(p);
    }
    let line = |what: &str, v: &mut Vec<f64>| {
        eprintln!(
            "  {what:<28} p50 {:>7.1} ms  p99 {:>7.1} ms  max {:>7.1} ms",
            pct(v, 0.5),
            pct(v, 0.99),
            pct(v, 1.0)
        );
    };
    line("pod ADD (plugin returns)", &mut add);
    line("ADD → IPv4 route on node2", &mut v4);
    line("ADD → IPv6 route on node2", &mut v6);
    line("  new block: IPv4", &mut new4);
    line("  new block: IPv6", &mut new6);
    let ratio = pct(&mut v6, 0.99) / pct(&mut v4, 0.99);
    eprintln!(
        "  IPv6 p99 / IPv4 p99 (anchor, same run): {ratio:.2}×; goal IPv6 p99 < 100 ms: {}",
        if pct(&mut v6, 0.99) < 100.0 {
            "met"
        } else {
            "NOT met"
        }
    );
    a1.terminate(Duration::from_secs(10));
    a2.terminate(Duration::from_secs(10));
}
