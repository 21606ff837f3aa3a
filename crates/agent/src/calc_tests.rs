//! Golden tests of the calculation: `testdata/<case>.input.json` (datastore keys and values)
//! → `testdata/<case>.<node>.out` (a readable rendering of the desired state).
//! `UPDATE_GOLDEN=1 cargo test -p brindle-agent` rewrites the outputs.

use std::path::PathBuf;

use crate::cache::Cache;
use crate::calc::{CalcSettings, Desired, compute};
use crate::config::Backend;

fn load(case: &str) -> Cache {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(format!("testdata/{case}.input.json"));
    let items: Vec<serde_json::Value> = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
    let mut c = Cache::default();
    for it in items {
        let v = serde_json::to_vec(&it["value"]).unwrap();
        c.apply(it["key"].as_str().unwrap(), Some(&v));
    }
    c
}

fn render(d: &Desired) -> String {
    let mut out = String::new();
    if let Some(b) = &d.bgp {
        out += &format!("bgp router-id {} as {}", b.router_id, b.local_as);
        if let Some(a) = b.node_v4 {
            out += &format!(" source {a}");
        }
        if let Some(a) = b.node_v6 {
            out += &format!(" source6 {a}");
        }
        out += "\n";
        for p in &b.peers {
            out += &format!(
                "  peer {} as {} {}{}\n",
                p.addr,
                p.asn,
                p.kind.label(),
                if p.passive { " passive" } else { "" }
            );
        }
        for o in &b.originate {
            out += &format!("  originate {o}\n");
        }
    } else {
        out += "bgp off\n";
    }
    if let Some(dp) = &d.dataplane {
        if let Some(net) = dp.node.ipv4 {
            out += &format!("node {} {} subnet {}\n", dp.node.name, net.addr(), net.trunc());
        }
        for b in &dp.local_blocks {
            out += &format!("  blackhole {b}\n");
        }
        for r in &dp.remote_blocks {
            out += &format!(
                "  remote {} via {} ipip {:?} vxlan {:?}\n",
                r.dst, r.node_ip, r.ipip, r.vxlan
            );
        }
        for w in &dp.workloads {
            out += &format!("  workload {} dev {}\n", w.ip, w.iface);
        }
        if let Some(i) = &dp.ipip {
            out += &format!("  tunl0 {:?} mtu {}\n", i.tunnel_addr, i.mtu);
        }
        if let Some(v) = &dp.vxlan {
            out += &format!(
                "  vxlan.calico {} mtu {} remotes {}\n",
                v.vtep_addr,
                v.mtu,
                v.remotes.len()
            );
        }
        let (masq, all) = dp.nat.v4();
        out += &format!("  nat masq {masq:?} all {all:?}\n");
        out += &format!("  peer nodes {:?}\n", dp.peer_nodes);
    }
    out
}

fn golden(name: &str, actual: &str) {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(format!("testdata/{name}.out"));
    if std::env::var_os("UPDATE_GOLDEN").is_some() {
        std::fs::write(&path, actual).unwrap();
    }
    let expected = std::fs::read_to_string(&path)
        .unwrap_or_else(|_| panic!("{} missing (UPDATE_GOLDEN=1)", path.display()));
    assert_eq!(actual, expected, "golden {name} differs");
}

pub(crate) fn settings() -> CalcSettings {
    CalcSettings {
        backend: Backend::Bird,
        host_mtu: 1500,
        ipip_mtu: None,
        vxlan_mtu: None,
        vxlan_mtu_v6: None,
        vxlan_vni: None,
        vxlan_port: None,
        routes_from_datastore: false,
        router_id: None,
    }
}

#[test]
fn seed_node1_with_bgp_routes() {
    let c = load("seed");
    let learned = [
        ("10.233.87.0/24".parse().unwrap(), "172.20.42.81".parse().unwrap()),
        (
            "10.233.124.0/24".parse().unwrap(),
            "172.20.42.82".parse().unwrap(),
        ),
        // Outside every pool, from the ToR: installed plainly, as BIRD's kernel protocol
        // accepts every route the pool rules leave.
        ("198.51.100.0/24".parse().unwrap(), "172.20.42.1".parse().unwrap()),
    ];
    golden(
        "seed.bgp-master1",
        &render(&compute(&c, "bgp-master1", &learned, &settings())),
    );
}

#[test]
fn seed_node3_routes_from_datastore() {
    let c = load("seed");
    let s = CalcSettings {
        routes_from_datastore: true,
        ..settings()
    };
    golden("seed.bgp-master3", &render(&compute(&c, "bgp-master3", &[], &s)));
}

#[test]
fn unknown_node_has_no_desired_state() {
    let c = load("seed");
    let d = compute(&c, "nobody", &[], &settings());
    assert!(d.bgp.is_none() && d.dataplane.is_none());
}

#[test]
fn deleted_node_drops_its_peer_and_routes() {
    let mut c = load("seed");
    c.apply("/calico/resources/v3/projectcalico.org/nodes/bgp-master2", None);
    let s = CalcSettings {
        routes_from_datastore: true,
        ..settings()
    };
    let d = compute(&c, "bgp-master1", &[], &s);
    let b = d.bgp.unwrap();
    assert!(!b.peers.iter().any(|p| p.addr.to_string() == "172.20.42.81"));
    let dp = d.dataplane.unwrap();
    assert!(
        !dp.remote_blocks
            .iter()
            .any(|r| r.node_ip.to_string() == "172.20.42.81")
    );
}

#[test]
fn mesh_off_keeps_only_bgp_peers() {
    let mut c = load("seed");
    c.apply(
        "/calico/resources/v3/projectcalico.org/bgpconfigurations/default",
        Some(br#"{"kind":"BGPConfiguration","metadata":{"name":"default"},"spec":{"nodeToNodeMeshEnabled":false,"asNumber":64513}}"#),
    );
    let b = compute(&c, "bgp-master1", &[], &settings()).bgp.unwrap();
    assert_eq!(b.local_as, 64513);
    assert_eq!(b.peers.len(), 1);
    assert_eq!(b.peers[0].addr.to_string(), "172.20.42.1");
}

#[test]
fn bgp_peer_node_selector_uses_node_labels() {
    let mut c = load("seed");
    c.apply(
        "/calico/resources/v3/projectcalico.org/bgppeers/rack1",
        Some(br#"{"kind":"BGPPeer","metadata":{"name":"rack1"},"spec":{"nodeSelector":"rack == 'r1'","peerIP":"172.20.42.2","asNumber":65002}}"#),
    );
    let has = |c: &Cache, n: &str| {
        compute(c, n, &[], &settings())
            .bgp
            .unwrap()
            .peers
            .iter()
            .any(|p| p.addr.to_string() == "172.20.42.2")
    };
    assert!(!has(&c, "bgp-master1"));
    c.apply(
        "/calico/resources/v3/projectcalico.org/nodes/bgp-master1",
        Some(br#"{"kind":"Node","metadata":{"name":"bgp-master1","labels":{"rack":"r1"}},"spec":{"bgp":{"ipv4Address":"172.20.42.80/22"}}}"#),
    );
    assert!(has(&c, "bgp-master1"));
    assert!(!has(&c, "bgp-master2"));
}
