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
        if let Some(net) = dp.node.ipv6 {
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
        if let Some(v) = &dp.vxlan_v6 {
            out += &format!(
                "  vxlan-v6.calico {} mtu {} remotes {:?}\n",
                v.vtep_addr,
                v.mtu,
                v.remotes
                    .iter()
                    .map(|r| format!("{} at {}", r.vtep_ip, r.node_ip))
                    .collect::<Vec<_>>()
            );
        }
        let (masq, all) = dp.nat.v4();
        out += &format!("  nat masq {masq:?} all {all:?}\n");
        let (masq, all) = dp.nat.v6();
        if !all.is_empty() {
            out += &format!("  nat66 masq {masq:?} all {all:?}\n");
        }
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

/// Dual stack (Calico's two BIRDs): a v4 and a v6 session per node pair, v6 blocks as
/// blackholes and advertised, /128 workloads, borrowed /128s advertised, v6 service CIDRs
/// (single external addresses not), remote v6 blocks via the owner's v6 address (learned
/// over BGP, never IPIP), NAT66; an IPv6-only node with the hash router id and v6 sessions
/// only; v6 BGPPeers only on the v6 side.
#[test]
fn dual_stack_both_families() {
    let c = load("dual");
    let learned: Vec<(ipnet::IpNet, std::net::IpAddr)> = [
        ("10.233.64.64/26", "172.20.42.81"),
        ("fd00:10:244::40/122", "fd00:20::81"),
        // Outside every pool, off-subnet next hop resolved through the ToR's route.
        ("2001:db8:99::/48", "2001:db8:1::7"),
        ("2001:db8:1::/64", "fd00:20::1"),
        // A family mismatch is never installed.
        ("fd00:10:244::80/122", "172.20.42.81"),
    ]
    .iter()
    .map(|(p, n)| (p.parse().unwrap(), n.parse().unwrap()))
    .collect();
    golden("dual.n1", &render(&compute(&c, "n1", &learned, &settings())));
    golden("dual.v6only", &render(&compute(&c, "v6only", &[], &settings())));
    let d = compute(&c, "v6only", &[], &settings());
    let b = d.bgp.unwrap();
    assert_eq!(b.router_id, crate::calc::hash_router_id("v6only"));
    assert!(b.peers.iter().all(|p| p.addr.is_ipv6()));
    // CALICO_ROUTER_ID wins.
    let s = CalcSettings {
        router_id: Some(crate::config::RouterId::Addr("10.0.0.9".parse().unwrap())),
        ..settings()
    };
    assert_eq!(
        compute(&c, "n1", &[], &s).bgp.unwrap().router_id.to_string(),
        "10.0.0.9"
    );
}

/// VXLAN on the v6 pool: vxlan-v6.calico with the v6 tunnel addresses, routes from IPAM via
/// the owner's v6 address, Always and CrossSubnet kept for the dataplane to decide against
/// the v6 subnets.
#[test]
fn vxlan_v6_pools() {
    let mut c = load("dual");
    for mode in ["Always", "CrossSubnet"] {
        c.apply(
            "/calico/resources/v3/projectcalico.org/ippools/default-ipv6-ippool",
            Some(format!(r#"{{"kind":"IPPool","metadata":{{"name":"default-ipv6-ippool"}},"spec":{{"cidr":"fd00:10:244::/64","blockSize":122,"vxlanMode":"{mode}","nodeSelector":"all()"}}}}"#).as_bytes()),
        );
        for (n, v4, v6, vtep) in [
            ("n1", "172.20.42.80/24", "fd00:20::80/64", "fd00:10:244::3f"),
            ("n2", "172.20.42.81/24", "fd00:20::81/64", "fd00:10:244::7f"),
        ] {
            c.apply(
                &format!("/calico/resources/v3/projectcalico.org/nodes/{n}"),
                Some(format!(r#"{{"kind":"Node","metadata":{{"name":"{n}"}},"spec":{{"bgp":{{"ipv4Address":"{v4}","ipv6Address":"{v6}"}},"ipv6VXLANTunnelAddr":"{vtep}"}}}}"#).as_bytes()),
            );
        }
        golden(
            &format!("dual.vxlan-{mode}.n1"),
            &render(&compute(&c, "n1", &[], &settings())),
        );
    }
}
