//! Calico's IPAM invariants, one named test each, on the in-memory store (with injected
//! concurrent writers where a race is the point). The same behaviour on SQLite and etcd, with
//! real processes, is in `tests/`.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use ipnet::IpNet;
use serde_json::json;

use crate::memstore::MemStore;
use crate::tunnel::TunnelKind;
use crate::*;
use brindle_model::{Kind, keys};

struct ManualClock(Mutex<SystemTime>);

impl Clock for ManualClock {
    fn now(&self) -> SystemTime {
        *self.0.lock().unwrap()
    }
}

struct Fix {
    ds: Arc<MemStore>,
    ipam: Ipam,
    clock: Arc<ManualClock>,
}

fn fix() -> Fix {
    let ds = Arc::new(MemStore::new());
    let clock = Arc::new(ManualClock(Mutex::new(
        UNIX_EPOCH + Duration::from_secs(1_700_000_000),
    )));
    let ipam = Ipam::new(ds.clone()).with_clock(clock.clone());
    // Created up front so that "nothing was written" checks are about the request alone.
    ipam.config().unwrap();
    Fix { ds, ipam, clock }
}

fn a(s: &str) -> IpAddr {
    s.parse().unwrap()
}

fn n(s: &str) -> IpNet {
    s.parse().unwrap()
}

impl Fix {
    fn pool(&self, name: &str, cidr: &str, block_size: u8, extra: serde_json::Value) {
        let mut spec =
            json!({"cidr": cidr, "blockSize": block_size, "ipipMode": "Always", "nodeSelector": "all()"});
        for (k, v) in extra.as_object().cloned().unwrap_or_default() {
            spec[k] = v;
        }
        let v = json!({"kind": "IPPool", "apiVersion": "projectcalico.org/v3", "metadata": {"name": name}, "spec": spec});
        self.put(&keys::resource_key(Kind::IPPool, "", name), v);
    }

    fn node(&self, name: &str, labels: &[(&str, &str)]) {
        let labels: BTreeMap<&str, &str> = labels.iter().copied().collect();
        let v = json!({"kind": "Node", "apiVersion": "projectcalico.org/v3",
            "metadata": {"name": name, "labels": labels}, "spec": {"bgp": {"ipv4Address": "172.20.42.80/22"}}});
        self.put(&keys::resource_key(Kind::Node, "", name), v);
    }

    fn put(&self, key: &str, v: serde_json::Value) {
        let bytes = serde_json::to_vec(&v).unwrap();
        use brindle_datastore::Datastore;
        match self.ds.get(key).unwrap() {
            Some(kv) => self.ds.update(key, &bytes, kv.revision).map(|_| ()).unwrap(),
            None => self.ds.create(key, &bytes).map(|_| ()).unwrap(),
        }
    }

    fn strict(&self, strict: bool, max_blocks: u32) {
        self.ipam
            .update_config(|c| {
                c.strict_affinity = strict;
                c.max_blocks_per_host = max_blocks;
            })
            .unwrap();
    }

    fn alloc(&self, node: &str, handle: &str) -> Result<IpAddr> {
        Ok(self
            .ipam
            .auto_assign(&AutoAssignArgs::workload_v4(node, handle))?
            .ipv4[0]
            .addr())
    }

    fn block(&self, cidr: &str) -> Option<AllocationBlock> {
        use brindle_datastore::Datastore;
        self.ds
            .get(&keys::block_key(&n(cidr)))
            .unwrap()
            .map(|kv| serde_json::from_slice(&kv.value).unwrap())
    }

    fn block_of(&self, addr: IpAddr, prefix: u8) -> AllocationBlock {
        let c = cidr::block_for(addr, prefix);
        self.block(&c.to_string()).expect("block exists")
    }

    fn affinity(&self, host: &str, cidr: &str) -> Option<BlockAffinity> {
        use brindle_datastore::Datastore;
        self.ds
            .get(&keys::affinity_key(host, &n(cidr)))
            .unwrap()
            .map(|kv| BlockAffinity::from_stored(&kv.value).unwrap())
    }

    fn handle(&self, id: &str) -> Option<IpamHandle> {
        use brindle_datastore::Datastore;
        self.ds
            .get(&keys::handle_key(id))
            .unwrap()
            .map(|kv| serde_json::from_slice(&kv.value).unwrap())
    }

    fn advance(&self, d: Duration) {
        *self.clock.0.lock().unwrap() += d;
    }
}

#[test]
fn ordinals_in_order_with_tunnel_dot_zero_first() {
    // The seed: pool 10.233.64.0/18 in /24 blocks, node 172.20.42.80 (IPIP Always). Its
    // tunnel address is the first allocation of its first block (.0), its first pod gets .1.
    let f = fix();
    f.pool("default-pool", "10.233.64.0/18", 24, json!({"natOutgoing": true}));
    f.node("172.20.42.80", &[]);
    let tun = f
        .ipam
        .ensure_tunnel_address("172.20.42.80", TunnelKind::Ipip)
        .unwrap()
        .unwrap();
    let block = cidr::block_for(tun, 24);
    assert!(n("10.233.64.0/18").contains(&block.addr()));
    assert_eq!(tun, block.addr(), "tunl0 gets the block's .0");
    let pod = f
        .ipam
        .auto_assign(&AutoAssignArgs::workload_v4("172.20.42.80", "k8s-pod-network.c1"))
        .unwrap();
    assert_eq!(
        pod.ipv4,
        vec![IpNet::new(cidr::addr_at(&block, 1), 24).unwrap()],
        "first pod: .1 with the block mask"
    );
    let pod2 = f.alloc("172.20.42.80", "k8s-pod-network.c2").unwrap();
    assert_eq!(pod2, cidr::addr_at(&block, 2));
    // The Node records it; a second run keeps it.
    let node = resources::get_node(&*f.ds, "172.20.42.80").unwrap().unwrap();
    assert_eq!(node.ipip_tunnel_addr, Some(tun.to_string()));
    assert_eq!(
        f.ipam
            .ensure_tunnel_address("172.20.42.80", TunnelKind::Ipip)
            .unwrap(),
        Some(tun)
    );
    let t = f.ipam.allocation(tun).unwrap().unwrap();
    assert_eq!(t.handle.as_deref(), Some("ipip-tunnel-addr-172.20.42.80"));
    assert_eq!(t.attrs.get("type").map(String::as_str), Some("ipipTunnelAddress"));
    assert_eq!(t.attrs.get("node").map(String::as_str), Some("172.20.42.80"));
}

#[test]
fn tunnel_address_released_when_no_pool_wants_it() {
    let f = fix();
    f.pool("p", "10.233.64.0/18", 24, json!({}));
    f.node("n1", &[]);
    let tun = f
        .ipam
        .ensure_tunnel_address("n1", TunnelKind::Ipip)
        .unwrap()
        .unwrap();
    assert_eq!(
        f.ipam.ensure_tunnel_address("n1", TunnelKind::Vxlan).unwrap(),
        None,
        "no VXLAN pool"
    );
    f.pool("p", "10.233.64.0/18", 24, json!({"ipipMode": "Never"}));
    assert_eq!(
        f.ipam.ensure_tunnel_address("n1", TunnelKind::Ipip).unwrap(),
        None
    );
    assert!(f.ipam.allocation(tun).unwrap().is_none());
    assert!(f.handle("ipip-tunnel-addr-n1").is_none());
    let node = resources::get_node(&*f.ds, "n1").unwrap().unwrap();
    assert_eq!(node.ipip_tunnel_addr, None);
}

/// vxlan-v6.calico's address (allocate-tunnel-addrs): from an IPv6 pool with vxlanMode on,
/// handle `vxlan-v6-tunnel-addr-<node>`, type `vxlanV6TunnelAddress`, on
/// `spec.ipv6VXLANTunnelAddr`; released when the pool stops wanting it; never from a v4 pool.
#[test]
fn vxlan_v6_tunnel_address_from_the_v6_pool() {
    let f = fix();
    f.pool(
        "p4",
        "10.233.64.0/18",
        24,
        json!({"ipipMode": "Never", "vxlanMode": "Always"}),
    );
    f.node("n1", &[]);
    assert_eq!(
        f.ipam.ensure_tunnel_address("n1", TunnelKind::VxlanV6).unwrap(),
        None,
        "no IPv6 pool"
    );
    f.pool(
        "p6",
        "fd00:10:244::/64",
        122,
        json!({"ipipMode": "Never", "vxlanMode": "CrossSubnet"}),
    );
    let tun = f
        .ipam
        .ensure_tunnel_address("n1", TunnelKind::VxlanV6)
        .unwrap()
        .unwrap();
    assert!(tun.is_ipv6() && n("fd00:10:244::/64").contains(&tun), "{tun}");
    let t = f.ipam.allocation(tun).unwrap().unwrap();
    assert_eq!(t.handle.as_deref(), Some("vxlan-v6-tunnel-addr-n1"));
    assert_eq!(
        t.attrs.get("type").map(String::as_str),
        Some("vxlanV6TunnelAddress")
    );
    let node = resources::get_node(&*f.ds, "n1").unwrap().unwrap();
    assert_eq!(node.vxlan_v6_tunnel_addr, Some(tun.to_string()));
    // Kept on a second call.
    assert_eq!(
        f.ipam.ensure_tunnel_address("n1", TunnelKind::VxlanV6).unwrap(),
        Some(tun)
    );
    f.pool("p6", "fd00:10:244::/64", 122, json!({"ipipMode": "Never"}));
    assert_eq!(
        f.ipam.ensure_tunnel_address("n1", TunnelKind::VxlanV6).unwrap(),
        None
    );
    assert!(f.ipam.allocation(tun).unwrap().is_none());
    let node = resources::get_node(&*f.ds, "n1").unwrap().unwrap();
    assert_eq!(node.vxlan_v6_tunnel_addr, None);
}

#[test]
fn two_phase_claim_pending_then_confirmed() {
    let f = fix();
    f.pool("p", "10.0.0.0/24", 26, json!({}));
    f.node("n1", &[]);
    let log: Arc<Mutex<Vec<String>>> = Arc::default();
    let l = log.clone();
    f.ds.race(move |key, st| {
        let what = if key.contains("/host/") {
            format!(
                "affinity (was {:?})",
                st.get(key).map(|v| String::from_utf8_lossy(v).to_string())
            )
        } else if key.contains("/assignment/") {
            let aff_key = key.replace("/assignment/ipv4/block/", "/host/n1/ipv4/block/");
            let aff = st
                .get(&aff_key)
                .map(|v| BlockAffinity::from_stored(v).unwrap().state);
            format!("block (exists: {}, affinity {:?})", st.get(key).is_some(), aff)
        } else {
            "handle".to_string()
        };
        l.lock().unwrap().push(what);
        false
    });
    let addr = f.alloc("n1", "h1").unwrap();
    let log = log.lock().unwrap().clone();
    assert_eq!(
        log,
        vec![
            "affinity (was None)".to_string(), // create, pending
            "block (exists: false, affinity Some(Pending))".to_string(), // create the block
            format!(
                "affinity (was Some({:?}))",
                r#"{"state":"pending","deleted":false}"#
            ), // confirm
            "handle".to_string(),
            "block (exists: true, affinity Some(Confirmed))".to_string(), // the allocation
        ]
    );
    let block = cidr::block_for(addr, 26);
    assert_eq!(
        f.affinity("n1", &block.to_string()).unwrap().state,
        AffinityState::Confirmed
    );
    let b = f.block(&block.to_string()).unwrap();
    assert_eq!(b.affinity.as_deref(), Some("host:n1"));
    assert_eq!(b.affinity_claim_time.as_deref(), Some("2023-11-14T22:13:20Z"));
}

#[test]
fn two_phase_claim_interrupted_is_finished_by_the_next_request() {
    let f = fix();
    f.pool("p", "10.0.0.0/24", 26, json!({}));
    f.node("n1", &[]);
    // Crash after phase one: a pending affinity, no block.
    f.put(
        &keys::affinity_key("n1", &n("10.0.0.128/26")),
        json!({"state": "pending", "deleted": false}),
    );
    assert_eq!(
        f.alloc("n1", "h1").unwrap(),
        a("10.0.0.128"),
        "the pending claim is finished and used"
    );
    assert_eq!(
        f.affinity("n1", "10.0.0.128/26").unwrap().state,
        AffinityState::Confirmed
    );
    // Crash between block create and confirmation: the block is ours, the affinity pending.
    let b = AllocationBlock::new(n("10.0.0.64/26"), Some("host:n2".into()), None, 5);
    f.put(&keys::block_key(&b.cidr), serde_json::to_value(&b).unwrap());
    f.node("n2", &[]);
    f.put(
        &keys::affinity_key("n2", &b.cidr),
        json!({"state": "pending", "deleted": false}),
    );
    assert_eq!(f.alloc("n2", "h2").unwrap(), a("10.0.0.64"));
    assert_eq!(
        f.affinity("n2", "10.0.0.64/26").unwrap().state,
        AffinityState::Confirmed
    );
    // Confirmation wrote the block once (seq 5 → 6), then the allocation (→ 7).
    let b = f.block("10.0.0.64/26").unwrap();
    assert_eq!(b.sequence_number, 7);
    assert_eq!(b.sequence_of(0), 6);
}

#[test]
fn two_phase_claim_race_lost_withdraws_the_pending_affinity() {
    let f = fix();
    f.pool("p", "10.0.0.0/24", 26, json!({}));
    f.node("n1", &[]);
    // n1 will go for the block its search starts at; n2 creates that block first.
    let first = search::BlockSearch::new(n("10.0.0.0/24"), 26, search::seed_for("n1", 26, 32, 0))
        .next()
        .unwrap();
    let taken = AllocationBlock::new(first, Some("host:n2".into()), None, 1);
    let bkey = keys::block_key(&first);
    let json = serde_json::to_vec(&taken).unwrap();
    f.ds.race(move |key, st| {
        if key == bkey && st.get(key).is_none() {
            st.put(key, json.clone());
            return true;
        }
        false
    });
    let addr = f.alloc("n1", "h1").unwrap();
    assert!(!first.contains(&addr), "n1 got {addr} from another block");
    assert!(
        f.affinity("n1", &first.to_string()).is_none(),
        "losing claim withdrawn"
    );
    assert_eq!(
        f.block(&first.to_string()).unwrap().affinity.as_deref(),
        Some("host:n2")
    );
}

#[test]
fn concurrent_write_to_the_same_block_is_retried() {
    let f = fix();
    f.pool("p", "10.0.0.0/24", 26, json!({}));
    f.node("n1", &[]);
    let first = f.alloc("n1", "h1").unwrap();
    let bkey = keys::block_key(&cidr::block_for(first, 26));
    // Just before our next block write, another process of n1 allocates in the same block.
    let k = bkey.clone();
    f.ds.race(move |key, st| {
        if key != k {
            return false;
        }
        let mut b: AllocationBlock = serde_json::from_slice(st.get(key).unwrap()).unwrap();
        b.auto_assign(1, Some("other"), &BTreeMap::new());
        b.bump_sequence();
        st.put(key, serde_json::to_vec(&b).unwrap());
        true
    });
    let second = f.alloc("n1", "h2").unwrap();
    let b = f.block_of(first, 26);
    let other = b.addr_at(b.ordinals_of_handle("other")[0]);
    assert_eq!(other, cidr::addr_at(&b.cidr, 1), "the racer took .1");
    assert_eq!(second, cidr::addr_at(&b.cidr, 2), "we retried and took .2");
    assert_eq!(
        f.handle("h2").unwrap().count(),
        1,
        "handle counted once despite the retry"
    );
    assert!(b.consistency_problems().is_empty());
}

#[test]
fn excessive_conflicts_give_calicos_error_and_undo_the_handle() {
    let f = fix();
    f.pool("p", "10.0.0.0/24", 26, json!({}));
    f.node("n1", &[]);
    f.alloc("n1", "h0").unwrap();
    f.ds.race(|key, st| {
        if key.contains("/assignment/") {
            let v = st.get(key).unwrap().to_vec();
            st.put(key, v); // same value, new revision: every CAS on the block loses
        }
        false
    });
    let e = f.alloc("n1", "h1").unwrap_err();
    assert!(
        e.to_string()
            .starts_with("Max retries hit - excessive concurrent IPAM requests"),
        "{e}"
    );
    assert!(f.handle("h1").is_none(), "the handle increment was undone");
}

#[test]
fn borrow_when_strict_affinity_is_off() {
    let f = fix();
    f.pool("p", "10.0.0.0/30", 30, json!({})); // one block of 4
    f.node("n1", &[]);
    f.node("n2", &[]);
    assert_eq!(f.alloc("n1", "h1").unwrap(), a("10.0.0.0"));
    // No block left for n2: it borrows from n1's block.
    let b = f.alloc("n2", "h2").unwrap();
    assert_eq!(b, a("10.0.0.1"));
    let blk = f.block("10.0.0.0/30").unwrap();
    assert_eq!(blk.host(), Some("n1"), "the block stays n1's");
    assert!(f.affinity("n2", "10.0.0.0/30").is_none());
    let (borrowed, _) = f.ipam.borrowed().unwrap();
    assert!(
        borrowed.is_empty(),
        "no node attribute set by this test's allocations"
    );
}

#[test]
fn strict_affinity_refuses_borrowing() {
    let f = fix();
    f.pool("p", "10.233.64.0/18", 24, json!({}));
    f.strict(true, 0);
    f.node("n1", &[]);
    f.node("n2", &[]);
    // n1 holds all 64 blocks (claimed directly, as a node with many pods would).
    for i in 0..64u32 {
        let c = n(&format!("10.233.{}.0/24", 64 + i));
        f.put(
            &keys::affinity_key("n1", &c),
            json!({"state": "confirmed", "deleted": false}),
        );
        let mut b = AllocationBlock::new(c, Some("host:n1".into()), Some("2023-11-14T22:13:20Z".into()), 1);
        b.auto_assign(1, Some(&format!("pod{i}")), &BTreeMap::new());
        f.put(&keys::block_key(&c), serde_json::to_value(&b).unwrap());
    }
    let before = f.ds.dump();
    let e = f.alloc("n2", "h2").unwrap_err();
    assert_eq!(
        e.to_string(),
        "no IPs available in pools: [10.233.64.0/18]: all 64 blocks are claimed by other nodes and strict affinity is on"
    );
    assert_eq!(f.ds.dump(), before, "a failed request writes nothing");
    // Off again: n2 borrows.
    f.strict(false, 0);
    assert!(n("10.233.64.0/18").contains(&f.alloc("n2", "h2").unwrap()));
}

#[test]
fn exhausted_pool_says_all_addresses_are_in_use() {
    let f = fix();
    f.pool("p", "10.0.0.0/30", 31, json!({}));
    f.node("n1", &[]);
    let first = f.alloc("n1", "h0").unwrap();
    for i in 1..4 {
        f.alloc("n1", &format!("h{i}")).unwrap();
    }
    let before = f.ds.dump();
    let e = f.alloc("n1", "h9").unwrap_err();
    assert_eq!(
        e.to_string(),
        "no IPs available in pools: [10.0.0.0/30]: all 4 addresses are in use"
    );
    assert_eq!(f.ds.dump(), before);
    // A request for two addresses with one left takes nothing.
    f.ipam.release_by_handle("h0").unwrap();
    let mut two = AutoAssignArgs::workload_v4("n1", "h8");
    two.num4 = 2;
    assert!(f.ipam.auto_assign(&two).is_err());
    assert!(f.handle("h8").is_none());
    assert_eq!(
        f.alloc("n1", "h7").unwrap(),
        first,
        "the rolled-back address is free again"
    );
}

#[test]
fn stale_release_after_reuse_is_refused() {
    let f = fix();
    f.pool("p", "10.0.0.0/30", 30, json!({}));
    f.node("n1", &[]);
    let x = f.alloc("n1", "old").unwrap();
    let old = f.ipam.allocation(x).unwrap().unwrap(); // what a report records
    f.ipam.release_by_handle("old").unwrap();
    for i in 0..3 {
        f.alloc("n1", &format!("fill{i}")).unwrap();
    }
    assert_eq!(f.alloc("n1", "new").unwrap(), x, "the address was reused");
    let out = f
        .ipam
        .release_ips(&[ReleaseRequest {
            addr: x,
            handle: old.handle.clone(),
            sequence: Some(old.sequence),
        }])
        .unwrap();
    assert!(out.released.is_empty());
    assert_eq!(out.failed.len(), 1);
    assert!(
        matches!(out.failed[0].1, IpamError::StaleSequence { .. }),
        "{:?}",
        out.failed
    );
    // Same with the sequence number alone.
    let e = f
        .ipam
        .release_ip(&ReleaseRequest {
            addr: x,
            handle: None,
            sequence: Some(old.sequence),
        })
        .unwrap_err();
    assert!(
        e.to_string().contains("was re-allocated since it was read"),
        "{e}"
    );
    assert_eq!(
        f.ipam.allocation(x).unwrap().unwrap().handle.as_deref(),
        Some("new")
    );
}

#[test]
fn block_release_when_empty_and_node_no_longer_selected() {
    let f = fix();
    f.pool("p", "10.0.0.0/24", 26, json!({"nodeSelector": "zone == 'a'"}));
    f.pool("q", "10.1.0.0/24", 26, json!({"nodeSelector": "zone == 'b'"}));
    f.node("n1", &[("zone", "a")]);
    let x = f.alloc("n1", "h1").unwrap();
    let y = f.alloc("n1", "h2").unwrap();
    let block = cidr::block_for(x, 26);
    // The node moves to zone b: its block in p is no longer wanted, but holds addresses.
    f.node("n1", &[("zone", "b")]);
    f.ipam.release_by_handle("h1").unwrap();
    assert!(f.block(&block.to_string()).is_some(), "not empty yet: kept");
    f.ipam.release_by_handle("h2").unwrap();
    assert!(
        f.block(&block.to_string()).is_none(),
        "empty and unwanted: deleted"
    );
    assert!(f.affinity("n1", &block.to_string()).is_none());
    // Its next address comes from q.
    assert!(n("10.1.0.0/24").contains(&f.alloc("n1", "h3").unwrap()));
    let _ = y;
}

#[test]
fn empty_block_of_a_still_selected_node_is_kept() {
    let f = fix();
    f.pool("p", "10.0.0.0/24", 26, json!({}));
    f.node("n1", &[]);
    let x = f.alloc("n1", "h1").unwrap();
    f.ipam.release_by_handle("h1").unwrap();
    let b = f.block_of(x, 26);
    assert!(
        b.is_empty() && b.host() == Some("n1"),
        "the node keeps its (empty) block"
    );
    assert_eq!(
        f.alloc("n1", "h2").unwrap(),
        cidr::addr_at(&b.cidr, 1),
        "and continues in it"
    );
}

#[test]
fn node_deletion_releases_affinities_orphaning_used_blocks() {
    let f = fix();
    f.pool("p", "10.0.0.0/24", 26, json!({}));
    f.node("n1", &[]);
    let x = f.alloc("n1", "h1").unwrap();
    let used = cidr::block_for(x, 26);
    let empty = n("10.0.0.192/26");
    let empty = if empty == used { n("10.0.0.0/26") } else { empty };
    f.ipam
        .assign_ip(&AssignIpArgs {
            ip: empty.addr(),
            handle_id: Some("h2".into()),
            attrs: BTreeMap::new(),
            hostname: "n1".into(),
            intended_use: IntendedUse::Workload,
        })
        .unwrap();
    f.ipam.release_by_handle("h2").unwrap();
    assert_eq!(f.ipam.release_host_affinities("n1").unwrap(), 2);
    assert!(f.block(&empty.to_string()).is_none(), "empty block deleted");
    let b = f.block(&used.to_string()).unwrap();
    assert_eq!(b.affinity, None, "used block orphaned");
    assert_eq!(b.in_use_count(), 1);
    assert!(f.affinity("n1", &used.to_string()).is_none());
    // Releasing the last address of an orphaned block deletes it.
    f.ipam.release_by_handle("h1").unwrap();
    assert!(f.block(&used.to_string()).is_none());
}

#[test]
fn reclaim_others_empty_blocks_only_after_min_age() {
    let f = fix();
    f.pool("p", "10.0.0.0/26", 26, json!({})); // a single block
    f.strict(true, 0);
    f.node("n1", &[]);
    f.node("n2", &[]);
    f.alloc("n1", "h1").unwrap();
    f.ipam.release_by_handle("h1").unwrap(); // n1's block is empty but still n1's
    f.advance(Duration::from_secs(30));
    let e = f.alloc("n2", "h2").unwrap_err();
    assert!(
        e.to_string()
            .contains("the pool's only block is claimed by another node"),
        "{e}"
    );
    assert!(
        e.to_string()
            .contains("(1 empty block of other nodes claimed less than 1m ago can be reclaimed later)"),
        "{e}"
    );
    f.advance(Duration::from_secs(31));
    assert_eq!(
        f.alloc("n2", "h2").unwrap(),
        a("10.0.0.0"),
        "reclaimed after 1 min"
    );
    assert_eq!(f.block("10.0.0.0/26").unwrap().host(), Some("n2"));
    assert!(f.affinity("n1", "10.0.0.0/26").is_none());
}

#[test]
fn reclaim_skips_a_block_that_changed_since_it_was_read() {
    let f = fix();
    f.pool("p", "10.0.0.0/26", 26, json!({}));
    f.strict(true, 0);
    f.node("n1", &[]);
    f.node("n2", &[]);
    f.alloc("n1", "h1").unwrap();
    f.ipam.release_by_handle("h1").unwrap();
    f.advance(Duration::from_secs(120));
    // n1 allocates again just as n2 tries to take the (empty) block.
    let bkey = keys::block_key(&n("10.0.0.0/26"));
    f.ds.race(move |key, st| {
        if key.contains("/host/n1/") {
            let mut b: AllocationBlock = serde_json::from_slice(st.get(&bkey).unwrap()).unwrap();
            b.auto_assign(1, Some("n1-late"), &BTreeMap::new());
            b.bump_sequence();
            st.put(&bkey, serde_json::to_vec(&b).unwrap());
            return true;
        }
        false
    });
    assert!(f.alloc("n2", "h2").is_err());
    let b = f.block("10.0.0.0/26").unwrap();
    assert_eq!(b.host(), Some("n1"), "n1 keeps its block and its new address");
    assert_eq!(b.in_use_count(), 1);
}

#[test]
fn max_blocks_per_host() {
    let f = fix();
    f.pool("p", "10.0.0.0/28", 30, json!({})); // 4 blocks of 4
    f.node("n1", &[]);
    f.strict(true, 2);
    for i in 0..8 {
        f.alloc("n1", &format!("h{i}")).unwrap();
    }
    let e = f.alloc("n1", "h8").unwrap_err();
    assert_eq!(
        e.to_string(),
        "cannot allocate new block due to per host block limit: node n1 already has 2 IPv4 blocks and maxBlocksPerHost is 2"
    );
    // A freed address in a held block is used without a new block.
    f.ipam.release_by_handle("h3").unwrap();
    assert!(f.alloc("n1", "h9").is_ok());
    // The per-request limit applies when stricter.
    f.strict(true, 0);
    let mut args = AutoAssignArgs::workload_v4("n1", "h10");
    args.max_blocks_per_host = 1;
    assert!(matches!(
        f.ipam.auto_assign(&args).unwrap_err(),
        IpamError::BlockLimit { limit: 1, .. }
    ));
}

#[test]
fn max_blocks_per_host_defaults_to_20() {
    let f = fix();
    f.pool("p", "10.0.0.0/24", 30, json!({})); // 64 blocks of 4
    f.node("n1", &[]);
    for i in 0..80 {
        f.alloc("n1", &format!("h{i}")).unwrap();
    }
    let e = f.alloc("n1", "h80").unwrap_err();
    assert!(
        matches!(
            e,
            IpamError::BlockLimit {
                held: 20,
                limit: 20,
                ..
            }
        ),
        "{e}"
    );
}

#[test]
fn handle_counts() {
    let f = fix();
    f.pool("p", "10.0.0.0/24", 29, json!({})); // blocks of 8
    f.node("n1", &[]);
    let mut args = AutoAssignArgs::workload_v4("n1", "multi");
    args.num4 = 10; // spans two blocks
    let got = f.ipam.auto_assign(&args).unwrap();
    assert_eq!(got.ipv4.len(), 10);
    let h = f.handle("multi").unwrap();
    assert_eq!(h.count(), 10);
    assert_eq!(h.block.len(), 2);
    assert_eq!(
        h.block.values().copied().collect::<Vec<_>>().iter().sum::<u64>(),
        10
    );
    // Release one by address: the count goes down in that block.
    let one = got.ipv4[9].addr();
    f.ipam
        .release_ip(&ReleaseRequest {
            addr: one,
            handle: Some("multi".into()),
            sequence: None,
        })
        .unwrap();
    assert_eq!(f.handle("multi").unwrap().count(), 9);
    assert_eq!(f.ipam.addrs_by_handle("multi").unwrap().len(), 9);
    // Release by handle frees the rest and deletes the handle.
    assert_eq!(f.ipam.release_by_handle("multi").unwrap().len(), 9);
    assert!(f.handle("multi").is_none());
    assert!(matches!(
        f.ipam.release_by_handle("multi"),
        Err(IpamError::UnknownHandle { .. })
    ));
}

#[test]
fn release_by_handle_repairs_an_overcounting_handle() {
    // A crash between the handle increment and the block write leaves a count with no address.
    let f = fix();
    f.pool("p", "10.0.0.0/24", 26, json!({}));
    f.node("n1", &[]);
    let x = f.alloc("n1", "h1").unwrap();
    let mut h = f.handle("h1").unwrap();
    h.increment(&cidr::block_for(x, 26), 1);
    h.increment(&n("10.0.0.192/26"), 1); // a block that does not even exist
    f.put(&keys::handle_key("h1"), serde_json::to_value(&h).unwrap());
    assert_eq!(f.ipam.release_by_handle("h1").unwrap(), vec![x]);
    assert!(f.handle("h1").is_none());
}

#[test]
fn bad_input_errors_name_the_problem_and_change_nothing() {
    let f = fix();
    f.pool("p", "10.0.0.0/24", 26, json!({}));
    f.node("n1", &[]);
    let x = f.alloc("n1", "h1").unwrap();
    let before = f.ds.dump();
    let e = f
        .ipam
        .release_ip(&ReleaseRequest {
            addr: a("10.0.0.200"),
            handle: None,
            sequence: None,
        })
        .unwrap_err();
    assert_eq!(e.to_string(), "IP address 10.0.0.200 is not assigned");
    let e = f
        .ipam
        .release_ip(&ReleaseRequest {
            addr: a("192.168.1.1"),
            handle: None,
            sequence: None,
        })
        .unwrap_err();
    assert_eq!(e.to_string(), "IP address 192.168.1.1 is not assigned");
    let e = f.ipam.release_by_handle("nope").unwrap_err();
    assert_eq!(e.to_string(), "handle nope does not exist");
    let e = f
        .ipam
        .assign_ip(&AssignIpArgs {
            ip: a("192.168.1.1"),
            handle_id: None,
            attrs: BTreeMap::new(),
            hostname: "n1".into(),
            intended_use: IntendedUse::Workload,
        })
        .unwrap_err();
    assert_eq!(
        e.to_string(),
        "IP address 192.168.1.1 is not in any configured pool"
    );
    let e = f
        .ipam
        .assign_ip(&AssignIpArgs {
            ip: x,
            handle_id: Some("h2".into()),
            attrs: BTreeMap::new(),
            hostname: "n1".into(),
            intended_use: IntendedUse::Workload,
        })
        .unwrap_err();
    assert_eq!(
        e.to_string(),
        format!("IP address {x} is already assigned (handle h1)")
    );
    let e = f.alloc("ghost", "h").unwrap_err();
    assert_eq!(e.to_string(), "node ghost does not exist");
    let mut args = AutoAssignArgs::workload_v4("n1", "h");
    args.ipv4_pools = vec![n("10.9.0.0/16")];
    assert_eq!(
        f.ipam.auto_assign(&args).unwrap_err().to_string(),
        "the given pool (10.9.0.0/16) does not exist, or is not enabled"
    );
    assert_eq!(f.ds.dump(), before);
}

#[test]
fn ipv6_and_dual_stack() {
    let f = fix();
    f.pool("v4", "10.0.0.0/24", 26, json!({}));
    f.pool("v6", "fd00:10::/120", 122, json!({"ipipMode": "Never"}));
    f.node("n1", &[]);
    let mut args = AutoAssignArgs::workload_v4("n1", "dual");
    args.num6 = 1;
    let got = f.ipam.auto_assign(&args).unwrap();
    assert_eq!(got.ipv4.len(), 1);
    assert_eq!(got.ipv6.len(), 1);
    assert_eq!(got.ipv6[0].prefix_len(), 122);
    let v6 = got.ipv6[0].addr();
    assert_eq!(v6, cidr::block_for(v6, 122).addr());
    assert_eq!(f.handle("dual").unwrap().count(), 2);
    assert_eq!(f.ipam.release_by_handle("dual").unwrap().len(), 2);
    // A v6 request with no v6 pool selecting the node fails before anything is taken.
    f.pool(
        "v6",
        "fd00:10::/120",
        122,
        json!({"ipipMode": "Never", "disabled": true}),
    );
    let e = f.ipam.auto_assign(&args).unwrap_err();
    assert_eq!(e.to_string(), "no configured Calico pools for node n1 (IPv6)");
    assert!(f.handle("dual").is_none(), "the IPv4 address was rolled back");
}

#[test]
fn nodes_start_in_different_blocks() {
    let f = fix();
    f.pool("p", "10.233.64.0/18", 24, json!({}));
    let mut blocks = std::collections::BTreeSet::new();
    for i in 0..10 {
        let node = format!("node{i}");
        f.node(&node, &[]);
        blocks.insert(cidr::block_for(f.alloc(&node, &format!("h{i}")).unwrap(), 24));
    }
    assert_eq!(blocks.len(), 10, "each node has its own block");
}

#[test]
fn releasing_a_deleted_node_frees_its_pods_tunnel_and_blocks() {
    let f = fix();
    f.pool("p", "10.233.64.0/18", 24, json!({}));
    f.node("n1", &[]);
    f.node("n2", &[]);
    let tun = f
        .ipam
        .ensure_tunnel_address("n1", TunnelKind::Ipip)
        .unwrap()
        .unwrap();
    let pod = f.alloc("n1", "k8s-pod-network.a").unwrap();
    let other = f.alloc("n2", "k8s-pod-network.b").unwrap();
    let wep = |node: &str, name: &str, ip: IpAddr| {
        f.put(
            &keys::resource_key(Kind::WorkloadEndpoint, "default", name),
            json!({"metadata": {"name": name, "namespace": "default"},
                   "spec": {"node": node, "ipNetworks": [format!("{ip}/32")]}}),
        );
    };
    wep("n1", "n1-k8s-a-eth0", pod);
    wep("n2", "n2-k8s-b-eth0", other);
    let block = cidr::block_for(tun, 24);
    let out = f.ipam.release_node("n1").unwrap();
    let mut addrs = out.addrs.clone();
    addrs.sort();
    let mut want = vec![tun, pod];
    want.sort();
    assert_eq!(addrs, want);
    assert_eq!(out.affinities, 1);
    assert!(
        f.block(&block.to_string()).is_none(),
        "the emptied block is deleted"
    );
    assert!(f.affinity("n1", &block.to_string()).is_none());
    assert!(f.handle("ipip-tunnel-addr-n1").is_none());
    assert!(
        f.ipam.allocation(other).unwrap().is_some(),
        "other nodes untouched"
    );
    assert_eq!(
        f.ipam.release_node("n1").unwrap(),
        NodeRelease::default(),
        "repeatable"
    );
}
