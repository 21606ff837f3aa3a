//! The route reconciler against a real kernel: repairs what is changed behind its back, leaves
//! foreign routes alone, adopts existing routes on restart, reports what it cannot do.

mod common;

use std::time::Duration;

use brindle_dataplane::{ApplyOptions, Dataplane};
use brindle_netlink::{Handle, Monitor, NetnsFd};
use common::{Cluster, lines};

fn cluster() -> Cluster {
    common::seed_cluster()
}

#[test]
fn repairs_changes_and_leaves_foreign_routes() {
    let c = cluster();
    let mut dp = c.start(0);
    let ns = &c.nodes[0].ns;
    let cali = c.nodes[0].pods[0].iface.clone();
    let before = lines(&ns.ip(&["route"]));
    // Foreign routes, including a host route on a non-cali device and a static one.
    ns.ip(&[
        "route",
        "add",
        "198.51.100.0/24",
        "via",
        "172.20.42.1",
        "proto",
        "static",
    ]);
    ns.ip(&["route", "add", "198.51.100.7", "dev", "eth0", "scope", "link"]);
    ns.ip(&["route", "add", "203.0.113.0/24", "via", "172.20.42.1"]);
    // Behind its back: delete a block route, alter another, delete a workload route, remove the
    // blackhole.
    ns.ip(&["route", "del", "10.233.87.0/24"]);
    ns.ip(&[
        "route",
        "replace",
        "10.233.124.0/24",
        "via",
        "172.20.42.99",
        "dev",
        "tunl0",
        "onlink",
        "proto",
        "bird",
    ]);
    ns.ip(&["route", "del", "10.233.94.1", "dev", &cali]);
    ns.ip(&["route", "del", "blackhole", "10.233.94.0/24"]);
    // And add a stale owned route (a block whose node is gone).
    let stale = [
        "route",
        "add",
        "10.233.77.0/24",
        "via",
        "172.20.42.77",
        "dev",
        "tunl0",
        "onlink",
        "proto",
        "bird",
    ];
    ns.ip(&stale);
    let mut mon = dp.monitor().unwrap();
    let mut mon2 = Monitor::open(&NetnsFd::named(ns.name()).unwrap()).unwrap();
    ns.ip(&["route", "del", "10.233.77.0/24"]);
    assert!(mon.wait(Duration::from_secs(2)), "no change notification");
    assert!(mon2.wait(Duration::from_secs(2)), "no change notification");
    assert!(
        !mon.wait(Duration::from_millis(50)),
        "notifications were not drained"
    );
    ns.ip(&stale);

    let r = dp.apply(&c.desired(0), Cluster::opts());
    assert!(r.errors.is_empty(), "{:?}", r.errors);
    assert_eq!((r.routes.replaced, r.routes.deleted), (4, 1), "{:?}", r.routes);
    let after = lines(&ns.ip(&["route"]));
    for l in &before {
        assert!(after.contains(l), "`{l}` not restored:\n{}", after.join("\n"));
    }
    assert!(
        !after.iter().any(|l| l.starts_with("10.233.77.0/24")),
        "stale route kept"
    );
    for foreign in [
        "198.51.100.0/24 via 172.20.42.1 dev eth0 proto static",
        "198.51.100.7 dev eth0 scope link",
        "203.0.113.0/24 via 172.20.42.1 dev eth0",
    ] {
        assert!(
            after.contains(&foreign.to_string()),
            "foreign `{foreign}` touched"
        );
    }
    // A second apply changes nothing.
    let r = dp.apply(&c.desired(0), Cluster::opts());
    assert_eq!((r.routes.replaced, r.routes.deleted), (0, 0));
}

#[test]
fn a_foreign_route_on_a_wanted_key_is_a_reported_conflict() {
    let c = cluster();
    let ns = &c.nodes[0].ns;
    ns.ip(&[
        "route",
        "add",
        "10.233.87.0/24",
        "via",
        "172.20.42.1",
        "proto",
        "static",
    ]);
    let h = Handle::open_named(ns.name()).unwrap();
    let (mut dp, r) = Dataplane::start(h, c.config(0), &c.desired(0)).unwrap();
    assert!(
        r.errors
            .iter()
            .any(|e| e.contains("10.233.87.0/24 via 172.20.42.81 dev tunl0 proto bird onlink conflicts")),
        "{:?}",
        r.errors
    );
    assert!(
        lines(&ns.ip(&["route"]))
            .contains(&"10.233.87.0/24 via 172.20.42.1 dev eth0 proto static".to_string())
    );
    // Once the foreign route is gone, the next resync installs Brindle's.
    ns.ip(&["route", "del", "10.233.87.0/24"]);
    let r = dp.apply(&c.desired(0), Cluster::opts());
    assert!(r.errors.is_empty(), "{:?}", r.errors);
    assert!(
        lines(&ns.ip(&["route"]))
            .contains(&"10.233.87.0/24 via 172.20.42.81 dev tunl0 proto bird onlink".to_string())
    );
}

#[test]
fn restart_adopts_without_flushing() {
    let c = cluster();
    let dp = c.start(0);
    let ns = &c.nodes[0].ns;
    let before = lines(&ns.ip(&["route"]));
    drop(dp);
    // The restarted agent knows only part of the state yet (BGP still converging).
    let mut partial = c.desired(0);
    partial.remote_blocks.truncate(1);
    let h = Handle::open_named(ns.name()).unwrap();
    let (mut dp, r) = Dataplane::start(h, c.config(0), &partial).unwrap();
    assert!(r.errors.is_empty(), "{:?}", r.errors);
    assert_eq!((r.routes.replaced, r.routes.deleted), (0, 0));
    assert_eq!(lines(&ns.ip(&["route"])), before);
    // Once converged, pruning removes what is really gone.
    let r = dp.apply(
        &partial,
        ApplyOptions {
            prune: true,
            full: true,
        },
    );
    assert_eq!(r.routes.deleted, 1);
    assert!(
        !lines(&ns.ip(&["route"]))
            .iter()
            .any(|l| l.starts_with("10.233.124.0/24"))
    );
}

#[test]
fn missing_devices_are_reported_and_retried() {
    let mut c = cluster();
    let mut dp = c.start(0);
    // A workload whose interface is not there yet.
    let with_missing = |c: &Cluster| {
        let mut d = c.desired(0);
        d.workloads.push(brindle_dataplane::Workload {
            ip: "10.233.94.9".parse().unwrap(),
            iface: "cali0000000009".into(),
            mac: None,
        });
        d
    };
    let d = with_missing(&c);
    let r = dp.apply(&d, Cluster::opts());
    assert!(
        r.errors
            .iter()
            .any(|e| e == "route 10.233.94.9 dev cali0000000009: device cali0000000009 missing"),
        "{:?}",
        r.errors
    );
    // The pod appears (as the CNI would make it): the next resync installs its route.
    c.add_pod(0);
    let d = with_missing(&c);
    let p = c.nodes[0].pods.last().unwrap();
    let r = dp.apply(&d, Cluster::opts());
    assert_eq!(r.errors.len(), 1, "{:?}", r.errors);
    let routes = lines(&c.nodes[0].ns.ip(&["route"]));
    assert!(
        routes.contains(&format!("10.233.94.3 dev {} scope link", p.iface)),
        "{routes:?}"
    );
    let neigh = c.nodes[0].ns.ip(&["neigh", "show", "dev", &p.iface]);
    assert!(neigh.contains("PERMANENT"), "no static ARP entry: {neigh}");
}

#[test]
fn cni_workload_route_helper() {
    let mut c = cluster();
    c.add_pod(1);
    let ns = &c.nodes[1].ns;
    let mut h = Handle::open_named(ns.name()).unwrap();
    let p = &c.nodes[1].pods[0];
    let idx = h.require_link(&p.iface).unwrap().index;
    brindle_netlink::workload::add_workload_route(&mut h, p.ip, idx, &p.iface).unwrap();
    // Idempotent on the same interface.
    brindle_netlink::workload::add_workload_route(&mut h, p.ip, idx, &p.iface).unwrap();
    assert!(lines(&ns.ip(&["route"])).contains(&format!("{} dev {} scope link", p.ip, p.iface)));
    // On another interface: Calico's error.
    let eth0 = h.require_link("eth0").unwrap().index;
    let e = brindle_netlink::workload::add_workload_route(&mut h, p.ip, eth0, "eth0").unwrap_err();
    assert_eq!(
        e.to_string(),
        format!(
            "route {}/32 already exists for an interface other than 'eth0': {}",
            p.ip, p.iface
        )
    );
    let forward = h.sysctl(&format!("net/ipv4/conf/{}/proxy_arp", p.iface)).unwrap();
    assert_eq!(forward, "1");
    assert_eq!(
        h.sysctl(&format!("net/ipv4/neigh/{}/proxy_delay", p.iface))
            .unwrap(),
        "0"
    );
}

#[test]
fn startup_fails_clearly_when_tunl0_cannot_be_made() {
    let c = cluster();
    let ns = &c.nodes[0].ns;
    ns.ip(&["link", "add", "tunl0", "type", "veth", "peer", "name", "tunl0p"]);
    let h = Handle::open_named(ns.name()).unwrap();
    let e = Dataplane::start(h, c.config(0), &c.desired(0))
        .err()
        .expect("start must fail");
    assert_eq!(
        e.to_string(),
        "unsupported: pools use IPIP but tunl0 cannot be set up: device tunl0 exists as a veth device, not ipip (or Brindle's ifb): remove it"
    );
}
