//! `ipam check` and `ipam release --from-report` on the in-memory store.

use std::collections::BTreeMap;

use serde_json::json;

use crate::check::Report;
use crate::memstore::MemStore;
use crate::report_release::HandleFate;
use crate::tunnel::TunnelKind;
use crate::*;
use brindle_datastore::Datastore;
use brindle_model::{Kind, keys};
use std::sync::Arc;

fn put(ds: &MemStore, key: &str, v: serde_json::Value) {
    let bytes = serde_json::to_vec(&v).unwrap();
    match ds.get(key).unwrap() {
        Some(kv) => ds.update(key, &bytes, kv.revision).map(|_| ()).unwrap(),
        None => ds.create(key, &bytes).map(|_| ()).unwrap(),
    }
}

fn wep(ds: &MemStore, ns: &str, name: &str, ip: &str) {
    put(
        ds,
        &format!(
            "{}{ns}/{name}",
            keys::resource_prefix(Kind::WorkloadEndpoint, None)
        ),
        json!({"kind": "WorkloadEndpoint", "apiVersion": "projectcalico.org/v3",
               "metadata": {"name": name, "namespace": ns}, "spec": {"ipNetworks": [format!("{ip}/32")]}}),
    );
}

/// One pool with a single /26 block (so placement is fixed), node n1 with its tunnel address,
/// pod a (with its endpoint), pod b (endpoint never written: leaked), an endpoint with an
/// address nobody allocated, one outside every pool, a handle with no address, a block of a
/// deleted node.
fn scenario() -> (Arc<MemStore>, Ipam) {
    let ds = Arc::new(MemStore::new());
    let ipam = Ipam::new(ds.clone());
    put(
        &ds,
        &keys::resource_key(Kind::IPPool, "", "p"),
        json!({"metadata": {"name": "p"}, "spec": {"cidr": "10.0.0.0/26", "blockSize": 26, "ipipMode": "Always"}}),
    );
    put(
        &ds,
        &keys::resource_key(Kind::IPPool, "", "q"),
        json!({"metadata": {"name": "q"}, "spec": {"cidr": "10.1.0.0/26", "blockSize": 26}}),
    );
    put(
        &ds,
        &keys::resource_key(Kind::Node, "", "n1"),
        json!({"metadata": {"name": "n1"}, "spec": {}}),
    );
    put(
        &ds,
        &keys::resource_key(Kind::ClusterInformation, "", "default"),
        json!({"metadata": {"name": "default"}, "spec": {"clusterGUID": "abc", "clusterType": "k8s,bgp", "datastoreReady": true}}),
    );
    assert_eq!(
        ipam.ensure_tunnel_address("n1", TunnelKind::Ipip).unwrap(),
        Some("10.0.0.0".parse().unwrap())
    );
    let pod = |h: &str, name: &str| {
        let mut args = AutoAssignArgs::workload_v4("n1", h);
        args.attrs = BTreeMap::from([
            ("namespace".to_string(), "default".to_string()),
            ("node".to_string(), "n1".to_string()),
            ("pod".to_string(), name.to_string()),
        ]);
        ipam.auto_assign(&args).unwrap().ipv4[0].addr()
    };
    assert_eq!(pod("k8s-pod-network.a", "a").to_string(), "10.0.0.1");
    assert_eq!(pod("k8s-pod-network.b", "b").to_string(), "10.0.0.2");
    wep(&ds, "default", "n1-k8s-a-eth0", "10.0.0.1");
    wep(&ds, "default", "n1-k8s-ghost-eth0", "10.0.0.9");
    wep(&ds, "default", "n1-k8s-outside-eth0", "192.168.7.7");
    put(
        &ds,
        &keys::handle_key("k8s-pod-network.crashed"),
        json!({"block": {"10.0.0.0/26": 1}, "deleted": false}),
    );
    let gone = AllocationBlock::new("10.1.0.0/26".parse().unwrap(), Some("host:n9".into()), None, 1);
    put(
        &ds,
        &keys::block_key(&gone.cidr),
        serde_json::to_value(&gone).unwrap(),
    );
    (ds, ipam)
}

#[test]
fn check_text_is_calicoctls() {
    let (_ds, ipam) = scenario();
    let c = ipam.check().unwrap();
    assert_eq!(
        c.text(false, true),
        "Checking IPAM for inconsistencies...

Loading all IPAM blocks...
Found 2 IPAM blocks.
 IPAM block 10.0.0.0/26 affinity=host:n1:
 IPAM block 10.1.0.0/26 affinity=host:n9:
IPAM blocks record 3 allocations.

Loading all IPAM pools...
  10.0.0.0/26
  10.1.0.0/26
Found 2 active IP pools.

Loading all nodes.
Found 1 node tunnel IPs.

Loading all service load balancer IPs.
Found 0 service load balancer.

Loading all workload endpoints.
Found 3 workload IPs.
Workloads and nodes are using 4 IPs.

Loading all handles
Looking for top (up to 20) nodes by allocations...
  n1 has 3 allocations
Node with most allocations has 3; median is 3

Scanning for IPs that are allocated but not actually in use...
  10.0.0.2 leaked; attrs Main:k8s-pod-network.b Extra:namespace=default,node=n1,pod=b
Found 1 IPs that are allocated in IPAM but not actually in use.
Scanning for IPs that are in use by a workload or node but not allocated in IPAM...
  192.168.7.7 in use by Workload(default/n1-k8s-outside-eth0) is not in any active IP pool.
  10.0.0.9 in use by Workload(default/n1-k8s-ghost-eth0) and in active IPAM pool but has no IPAM allocation.
Found 1 in-use IPs that are not in active IP pools.
Found 1 in-use IPs that are in active IP pools but have no corresponding IPAM allocation.

Scanning for IPAM handles with no matching IPs...
Found 1 handles with no matching IPs (and 3 handles with matches).
Scanning for IPs with missing handle...
Found 0 handles mentioned in blocks with no matching handle resource.
Scanning for IPAM blocks affine to nodes that no longer exist...
  10.1.0.0/26 is affine to deleted node n9.
Found 1 IPAM blocks affine to deleted nodes.
Scanning IPAM blocks for internal consistency...
Found 0 IPAM block inconsistencies.
Check complete; found 5 problems.
"
    );
}

#[test]
fn check_report_has_calicos_keys() {
    let (_ds, ipam) = scenario();
    let r = ipam.check().unwrap().report("v0.1.0");
    let v: serde_json::Value = serde_json::from_str(&r.to_json()).unwrap();
    let keys: Vec<&str> = v.as_object().unwrap().keys().map(String::as_str).collect();
    assert_eq!(
        keys,
        [
            "version",
            "clusterGUID",
            "datastoreLocked",
            "clusterInformationRevision",
            "clusterType",
            "allocations",
            "leakedHandles"
        ]
    );
    assert_eq!(v["clusterGUID"], "abc");
    let b = &v["allocations"]["10.0.0.2"][0];
    assert_eq!(b["handle"], "k8s-pod-network.b");
    assert_eq!(b["inUse"], false);
    assert_eq!(b["owners"], serde_json::Value::Null);
    assert_eq!(b["pod"], "b");
    assert!(b["sequenceNumber"].is_u64());
    let t = &v["allocations"]["10.0.0.0"][0];
    assert_eq!(t["type"], "ipipTunnelAddress");
    assert_eq!(t["owners"], json!(["Node(n1)"]));
    assert_eq!(
        v["leakedHandles"],
        json!([{"ID": "k8s-pod-network.crashed", "UID": null, "Revision": v["leakedHandles"][0]["Revision"]}])
    );
    let back: Report = serde_json::from_str(&r.to_json()).unwrap();
    assert_eq!(back, Report { ..r.clone() }.clone_without_text());
}

impl Report {
    fn clone_without_text(&self) -> Report {
        let mut r = self.clone();
        for a in r.allocations.values_mut().flatten() {
            a.attr_text.clear();
        }
        r
    }
}

#[test]
fn release_from_report_frees_leaks_and_spares_reused_addresses() {
    let (ds, ipam) = scenario();
    let report = ipam.check().unwrap().report("v1");
    let reports = vec![("r.json".to_string(), report.clone())];
    // Refusals: unlocked datastore without --force, another version, another cluster.
    let e = ipam.release_from_reports(&reports, "v1", false).unwrap_err();
    assert_eq!(
        e.to_string(),
        "data store is not locked. Either lock the data store, or re-run with --force"
    );
    let e = ipam.release_from_reports(&reports, "v2", false).unwrap_err();
    assert!(
        e.to_string()
            .contains("was produced using a different version (v1)"),
        "{e}"
    );
    let mut other = report.clone();
    other.cluster_guid = "zzz".into();
    let e = ipam
        .release_from_reports(&[("o.json".into(), other)], "v1", true)
        .unwrap_err();
    assert_eq!(
        e.to_string(),
        "cluster does not match the provided report (o.json): mismatched cluster GUID. Refusing to release"
    );
    let out = ipam.release_from_reports(&reports, "v1", true).unwrap();
    assert_eq!(
        out.warnings,
        ["WARNING: Data store is not locked. Ignoring due to --force option"]
    );
    assert_eq!(out.to_release, 1);
    assert_eq!(
        out.ips.as_ref().unwrap().released,
        ["10.0.0.2".parse::<std::net::IpAddr>().unwrap()]
    );
    assert_eq!(
        out.handles,
        [("k8s-pod-network.crashed".to_string(), HandleFate::Deleted)]
    );
    let after = ipam.check().unwrap();
    assert!(after.leaked.is_empty() && after.leaked_handles.is_empty());
    // The same report again: the address was freed and handed out anew meanwhile; the stale
    // report must not take it from its new owner.
    let _ = ds;
    let mut args = AutoAssignArgs::workload_v4("n1", "k8s-pod-network.c");
    args.num4 = 62; // the rest of the block: .2 comes back last
    let got = ipam.auto_assign(&args).unwrap();
    assert!(got.ipv4.iter().any(|n| n.addr().to_string() == "10.0.0.2"));
    let out = ipam.release_from_reports(&reports, "v1", true).unwrap();
    let ips = out.ips.unwrap();
    assert!(ips.released.is_empty());
    assert!(matches!(
        ips.failed[0].1,
        IpamError::StaleSequence { .. } | IpamError::HandleMismatch { .. }
    ));
    assert_eq!(
        ipam.allocation("10.0.0.2".parse().unwrap())
            .unwrap()
            .unwrap()
            .handle
            .as_deref(),
        Some("k8s-pod-network.c")
    );
    assert_eq!(
        out.handles,
        [("k8s-pod-network.crashed".to_string(), HandleFate::Skipped)]
    );
}

#[test]
fn two_reports_release_only_what_both_call_leaked() {
    let (ds, ipam) = scenario();
    let first = ipam.check().unwrap().report("v1");
    // Between the reports, pod b's endpoint appears: it was being set up, not leaked.
    wep(&ds, "default", "n1-k8s-b-eth0", "10.0.0.2");
    let second = ipam.check().unwrap().report("v1");
    let out = ipam
        .release_from_reports(&[("1".into(), first), ("2".into(), second)], "v1", true)
        .unwrap();
    assert_eq!(out.to_release, 0);
    assert!(ipam.allocation("10.0.0.2".parse().unwrap()).unwrap().is_some());
}
