//! Startup's IPv6 rules against a real (SQLite) datastore: `IP6` written as
//! `spec.bgp.ipv6Address` with its prefix, `IP=none` + `IP6` (IPv6-only), an IPv6 address
//! another node has refused, and the default IPv6 pool created only when the node has IPv6,
//! no IPv6 pool exists and `NO_DEFAULT_POOLS` is not true.

use std::collections::HashMap;
use std::sync::Arc;

use brindle_datastore::{Client, Datastore, DatastoreConfig};
use brindle_model::resources::{IPPool, Node};
use brindle_model::{CalicoResource, Kind};

use crate::config::AgentConfig;
use crate::startup;

fn store(dir: &brindle_testkit::TempDir) -> Arc<dyn Datastore> {
    brindle_datastore::open(&DatastoreConfig::sqlite(dir.join("brindle.db"))).unwrap()
}

fn cfg(dir: &brindle_testkit::TempDir, node: &str, pairs: &[(&str, &str)]) -> AgentConfig {
    let state = dir.join(node).display().to_string();
    let mut m: HashMap<String, String> = pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    m.insert("BRINDLE_STATE_DIR".into(), state);
    AgentConfig::from_env(|k| m.get(k).cloned()).unwrap()
}

fn node(ds: &Arc<dyn Datastore>, name: &str) -> Node {
    let c = Client::lenient(ds.clone());
    Node::from_resource(c.get(Kind::Node, "", name).unwrap().unwrap()).unwrap()
}

fn pools(ds: &Arc<dyn Datastore>) -> Vec<IPPool> {
    let c = Client::lenient(ds.clone());
    c.list(Kind::IPPool, None)
        .unwrap()
        .items
        .into_iter()
        .filter_map(IPPool::from_resource)
        .collect()
}

#[test]
fn ipv6_registration_conflict_and_default_pool() {
    let dir = brindle_testkit::TempDir::new("start6");
    let ds = store(&dir);
    // Dual stack with the default pools: the v6 pool is a random ULA /48 of /122 blocks.
    let c = cfg(&dir, "n1", &[("IP", "10.9.0.1/24"), ("IP6", "fd00:9::1/64")]);
    let s = startup::run(&c, &ds, "n1").unwrap();
    assert_eq!(s.ipv6.unwrap().to_string(), "fd00:9::1/64");
    let n1 = node(&ds, "n1");
    let bgp = n1.spec.bgp.as_ref().unwrap();
    assert_eq!(
        (bgp.ipv4_address.as_str(), bgp.ipv6_address.as_str()),
        ("10.9.0.1/24", "fd00:9::1/64")
    );
    let ps = pools(&ds);
    let v6 = ps
        .iter()
        .find(|p| p.metadata.name == "default-ipv6-ippool")
        .expect("default v6 pool");
    let net: ipnet::Ipv6Net = v6.spec.cidr.parse().unwrap();
    assert_eq!(net.prefix_len(), 48);
    assert_eq!(net.addr().segments()[0] & 0xff00, 0xfd00, "ULA: {net}");
    assert_eq!(v6.spec.block_size, 122);
    assert!(ps.iter().any(|p| p.metadata.name == "default-ipv4-ippool"));

    // Another node claiming n1's IPv6 address is refused, in Calico's words.
    let c = cfg(&dir, "n2", &[("IP", "10.9.0.2/24"), ("IP6", "fd00:9::1/64")]);
    let e = startup::run(&c, &ds, "n2").unwrap_err().to_string();
    assert!(
        e.contains("Calico node 'n1' is already using the IPv6 address fd00:9::1"),
        "{e}"
    );

    // IPv6-only (IP=none): no IPv4 address; an existing v6 pool means no second one, even
    // with another CIDR asked for.
    let c = cfg(
        &dir,
        "n3",
        &[
            ("IP", "none"),
            ("IP6", "fd00:9::3/64"),
            ("CALICO_IPV6POOL_CIDR", "fd00:77::/64"),
        ],
    );
    let s = startup::run(&c, &ds, "n3").unwrap();
    assert_eq!(s.ipv4, None);
    assert_eq!(
        (s.ipip_tunnel, s.vxlan_tunnel),
        (None, None),
        "no v4 tunnels on a v6-only node"
    );
    let bgp = node(&ds, "n3").spec.bgp.unwrap();
    assert_eq!(
        (bgp.ipv4_address.as_str(), bgp.ipv6_address.as_str()),
        ("", "fd00:9::3/64")
    );
    assert_eq!(pools(&ds).len(), 2);
    // `IP` left to autodetect, nothing found, IPv6 given: IPv6-only too.
    let c = cfg(
        &dir,
        "n4",
        &[
            ("IP_AUTODETECTION_METHOD", "interface=nomatch.*"),
            ("IP6", "fd00:9::4/64"),
        ],
    );
    assert_eq!(startup::run(&c, &ds, "n4").unwrap().ipv4, None);
    // Without IPv6 that stays an error.
    let c = cfg(&dir, "n5", &[("IP_AUTODETECTION_METHOD", "interface=nomatch.*")]);
    let e = startup::run(&c, &ds, "n5").unwrap_err().to_string();
    assert!(e.contains("failed to autodetect an IPv4 address"), "{e}");

    // A node without IPv6 never creates the v6 pool.
    let dir2 = brindle_testkit::TempDir::new("start6");
    let ds2 = store(&dir2);
    let c = cfg(
        &dir2,
        "n1",
        &[("IP", "10.9.0.1/24"), ("CALICO_IPV6POOL_CIDR", "fd00:77::/64")],
    );
    startup::run(&c, &ds2, "n1").unwrap();
    let names: Vec<String> = pools(&ds2).into_iter().map(|p| p.metadata.name).collect();
    assert_eq!(names, ["default-ipv4-ippool"]);
    // ... and NO_DEFAULT_POOLS keeps it out on a node with IPv6 too.
    let c = cfg(
        &dir2,
        "n2",
        &[
            ("IP", "10.9.0.2/24"),
            ("IP6", "fd00:9::2/64"),
            ("NO_DEFAULT_POOLS", "true"),
        ],
    );
    startup::run(&c, &ds2, "n2").unwrap();
    assert_eq!(pools(&ds2).len(), 1);
    // Dropping IP6 clears the Node's IPv6 address, as calico-node does.
    let c = cfg(
        &dir2,
        "n2",
        &[("IP", "10.9.0.2/24"), ("NO_DEFAULT_POOLS", "true")],
    );
    startup::run(&c, &ds2, "n2").unwrap();
    assert_eq!(node(&ds2, "n2").spec.bgp.unwrap().ipv6_address, "");
}
