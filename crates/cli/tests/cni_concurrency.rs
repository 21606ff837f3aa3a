//! Many ADDs at once on one node (a runtime starting a burst of pods): every pod gets its own
//! address and its own veth, all are reachable, and the same burst of DELs leaves nothing.

mod cni_support;

use std::collections::BTreeSet;

use cni_support::{Lab, Pod};

#[test]
fn a_burst_of_adds_and_dels() {
    const N: usize = 16;
    let lab = Lab::new();
    let conf = lab.conf("1.0.0");
    let before = lab.node_links();
    let pods: Vec<Pod> = (0..N).map(|i| Pod::k8s(&format!("burst-{i}"))).collect();
    let results: Vec<serde_json::Value> = std::thread::scope(|s| {
        let handles: Vec<_> = pods.iter().map(|p| s.spawn(|| lab.add(p, &conf))).collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let addrs: BTreeSet<String> = results.iter().map(cni_support::ip_of).collect();
    assert_eq!(addrs.len(), N, "addresses handed out twice: {addrs:?}");
    let hosts: BTreeSet<String> = results
        .iter()
        .map(|r| r["interfaces"][0]["name"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(hosts.len(), N);
    assert_eq!(lab.allocated().len(), N);
    assert_eq!(lab.endpoints().len(), N);
    for a in &addrs {
        assert!(lab.node.reach(a), "{a} unreachable");
    }
    // Pod to pod through the node.
    let addr_of = |i: usize| cni_support::ip_of(&results[i]);
    assert!(
        pods[N - 1].ns.reach(&addr_of(0)),
        "pod {} cannot reach pod 0",
        N - 1
    );
    assert!(
        pods[0].ns.reach(&addr_of(N - 1)),
        "pod 0 cannot reach pod {}",
        N - 1
    );
    std::thread::scope(|s| {
        for p in &pods {
            s.spawn(|| lab.cni("DEL", p, &conf, &[]).ok());
        }
    });
    assert!(lab.allocated().is_empty());
    assert!(lab.endpoints().is_empty());
    assert_eq!(lab.node_links(), before);
}
