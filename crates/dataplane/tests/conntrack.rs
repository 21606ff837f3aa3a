//! Conntrack cleanup of gone workload addresses, against a real kernel: flows made by real
//! traffic between pods on a node, the pod removed the way the agent sees it (its
//! WorkloadEndpoint gone from the desired state), and the kernel's own conntrack listing
//! (`/proc/net/nf_conntrack` in the node) as the judge.

mod common;

use std::net::{IpAddr, SocketAddr, UdpSocket};
use std::time::Duration;

use brindle_dataplane::{ApplyOptions, EncapMode};
use brindle_testkit::Netns;
use brindle_testkit::conntrack::{entries, entries_of, udp_exchange};
use common::policy::{PolicyCluster, connect, network_policy};
use common::{Cluster, DUAL, Modes, lines};

const NONE: Modes = Modes {
    ipip: EncapMode::Never,
    vxlan: EncapMode::Never,
};

fn tracked(node: &Netns, a: IpAddr) -> bool {
    !entries_of(node, a).is_empty()
}

#[test]
fn a_gone_workloads_flows_are_deleted_once_its_route_is() {
    let mut c = Cluster::with_families(1, false, NONE, DUAL);
    for _ in 0..3 {
        c.add_pod(0);
    }
    let mut dp = c.start(0);
    assert!(c.ping_all().is_empty(), "{:?}", c.ping_all());
    let node = &c.nodes[0].ns;
    let (a, b, k) = (&c.nodes[0].pods[0], &c.nodes[0].pods[1], &c.nodes[0].pods[2]);
    // Flows from a to b (the pod that goes) and to k (the pod that stays), both families, and
    // an established TCP connection to b.
    for (to, port) in [(b, 7001), (k, 7002)] {
        for (src, dst) in a.addrs().into_iter().zip(to.addrs()) {
            udp_exchange(&a.ns, src, &to.ns, dst, port);
        }
    }
    let _listeners = common::policy::listen(&b.ns, &[80]);
    let mut tcp = connect(&a.ns, IpAddr::V4(b.ip), 80, Duration::from_secs(5)).expect("a connects to b");
    assert!(common::policy::alive(&mut tcp));
    let b_addrs = b.addrs();
    let k_addrs = k.addrs();
    for ip in b_addrs.iter().chain(&k_addrs) {
        assert!(
            tracked(node, *ip),
            "no flow of {ip}:\n{}",
            entries(node).join("\n")
        );
    }
    assert!(
        entries_of(node, IpAddr::V4(b.ip))
            .iter()
            .any(|l| l.contains("ESTABLISHED"))
    );

    // b's WorkloadEndpoint is gone from the desired state. While the agent may not prune
    // (restarting, still learning), its route and its flows stay.
    let b_iface = b.iface.clone();
    let mut without_b = c.desired(0);
    without_b.workloads.retain(|w| w.iface != b_iface);
    let r = dp.apply(
        &without_b,
        ApplyOptions {
            prune: false,
            full: false,
        },
    );
    assert!(r.errors.is_empty(), "{:?}", r.errors);
    assert_eq!(r.conntrack, Default::default());
    for ip in &b_addrs {
        assert!(
            tracked(node, *ip),
            "flows of {ip} deleted before the agent may prune"
        );
    }

    // The first pruning apply removes its routes, then starts the deletion of its flows (on
    // the cleanup thread), in both families; k's stay.
    let r = dp.apply(&without_b, Cluster::opts());
    assert!(r.errors.is_empty(), "{:?}", r.errors);
    assert_eq!(r.conntrack.started, 2, "{:?}", r.conntrack);
    let routes = lines(&node.ip(&["route"]));
    assert!(!routes.iter().any(|l| l.contains(&b_iface)), "{routes:?}");
    for ip in &b_addrs {
        wait_untracked(node, *ip);
    }
    for ip in &k_addrs {
        assert!(tracked(node, *ip), "flows of {ip} deleted too");
    }
    // The next apply reports what the thread did, and starts nothing more.
    let r = dp.apply(&without_b, Cluster::opts());
    assert_eq!(
        (r.conntrack.started, r.conntrack.addresses),
        (0, 2),
        "{:?}",
        r.conntrack
    );
    assert!(r.conntrack.flows_deleted >= 3, "{:?}", r.conntrack);
    let r = dp.apply(&without_b, Cluster::opts());
    assert_eq!(r.conntrack, Default::default());
}

/// Waits until the kernel lists no flow of `ip` in `node` (the cleanup runs on a thread).
fn wait_untracked(node: &Netns, ip: IpAddr) {
    for _ in 0..200 {
        if !tracked(node, ip) {
            return;
        }
        std::thread::sleep(Duration::from_millis(25));
    }
    panic!("flows of {ip} kept:\n{}", entries_of(node, ip).join("\n"));
}

/// Waits until the node has no interface `iface` (a pod's veth goes when the kernel destroys
/// the pod's namespace, asynchronously).
fn wait_gone(node: &Netns, iface: &str) {
    for _ in 0..200 {
        if !node.ip(&["-o", "link"]).contains(&format!(" {iface}@")) {
            return;
        }
        std::thread::sleep(Duration::from_millis(25));
    }
    panic!("{iface} still exists");
}

/// A UDP socket inside `ns` bound to `at`.
fn udp_in(ns: &Netns, at: SocketAddr) -> UdpSocket {
    let s = ns
        .spawn_in(move || UdpSocket::bind(at).unwrap_or_else(|e| panic!("bind {at}: {e}")))
        .join()
        .unwrap();
    s.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
    s
}

#[test]
fn a_reused_address_gets_no_flow_its_previous_pod_was_allowed() {
    // x/a talks to x/b over UDP, allowed. x/b goes; x/b2 is made with the same address (as IPAM
    // may hand it out again) under a policy that denies all its ingress. a's next datagram on
    // the same flow must not reach b2: without the cleanup, `ct state established` would let
    // it through.
    let mut pc = PolicyCluster::new(
        1,
        NONE,
        &[(0, "x", "a", &[("app", "a")]), (0, "x", "b", &[("app", "b")])],
    );
    let b_ip = pc.pod_ip(1);
    let to = SocketAddr::new(b_ip, 7000);
    let client = udp_in(pc.pod_ns(0), SocketAddr::new(pc.pod_ip(0), 0));
    {
        let server = udp_in(pc.pod_ns(1), to);
        let mut buf = [0u8; 16];
        client.send_to(b"hello", to).unwrap();
        let (n, from) = server.recv_from(&mut buf).expect("b gets a's datagram (allowed)");
        server.send_to(&buf[..n], from).unwrap();
        client.recv(&mut buf).expect("a gets b's answer");
    }
    let node = &pc.c.nodes[0];
    assert!(tracked(&node.ns, b_ip), "{}", entries(&node.ns).join("\n"));

    // b goes: its namespace (and veth) deleted as CNI DEL does, its WorkloadEndpoint removed.
    let wep = pc.wep(1);
    let iface = wep.spec.interface_name.clone();
    pc.listeners.remove(1);
    pc.pods.remove(1);
    pc.c.nodes[0].pods.remove(1);
    wait_gone(&pc.c.nodes[0].ns, &iface);
    pc.change(|c| c.remove_workload_endpoint(&wep.metadata.namespace, &wep.metadata.name));
    let r = pc.dps[0].apply(&pc.c.desired(0), Cluster::opts());
    assert!(r.errors.is_empty(), "{:?}", r.errors);
    assert_eq!(r.conntrack.started, 1, "{:?}", r.conntrack);

    // b2: the same address, ingress denied by policy. Routing it waits for the cleanup of the
    // address if it is still running.
    pc.add_policy(&network_policy("x", "deny-b2", "app == 'b2'", Some("[]"), None));
    let i = pc.add_pod_unannounced(0, "x", "b2", &[("app", "b2")]);
    assert_eq!(pc.pod_ip(i), b_ip, "the new pod reuses the address");
    assert!(
        !tracked(&pc.c.nodes[0].ns, b_ip),
        "the old flow outlived the new pod's route"
    );
    pc.announce(i);
    // The host reaches it (host to workload is not policed): its new veth passes traffic.
    assert!(
        pc.c.nodes[0].ns.reach(&b_ip.to_string()),
        "b2 unreachable from its node"
    );
    let server = udp_in(pc.pod_ns(i), to);
    let mut buf = [0u8; 16];
    client.send_to(b"again", to).unwrap();
    let got = server.recv_from(&mut buf);
    assert!(
        got.is_err(),
        "b2 got a's datagram on the old flow: {got:?}\n{}",
        entries(&pc.c.nodes[0].ns).join("\n")
    );
}
