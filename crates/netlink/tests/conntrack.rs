//! Conntrack over ctnetlink against a real kernel: flows made by real UDP and TCP exchanges
//! between two namespaces, listed, and deleted by address; the kernel's own listing
//! (`/proc/net/nf_conntrack`) is the judge.

use std::io::{Read, Write};
use std::net::{IpAddr, SocketAddr, TcpListener, TcpStream};
use std::time::Duration;

use brindle_netlink::{Conntrack, NetnsFd};
use brindle_testkit::Netns;
use brindle_testkit::conntrack::{entries, entries_of, udp_exchange};

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

/// A "node" namespace and a "pod" namespace joined by a veth; the pod has two addresses per
/// family (the one that goes away and a neighbour that stays). Conntrack is switched on in the
/// node by a table with a `ct state` rule (the kernel tracks a namespace's flows only once
/// something there asks for conntrack).
fn pair() -> (Netns, Netns) {
    let node = Netns::new("ctn");
    let pod = Netns::new("ctp");
    node.veth("ct0", &pod, "eth0");
    node.ip(&["addr", "add", "10.99.0.1/24", "dev", "ct0"]);
    node.ip(&["-6", "addr", "add", "fd00:99::1/64", "dev", "ct0", "nodad"]);
    node.ip(&["link", "set", "ct0", "up"]);
    for a in ["10.99.0.2/24", "10.99.0.3/24"] {
        pod.ip(&["addr", "add", a, "dev", "eth0"]);
    }
    for a in ["fd00:99::2/64", "fd00:99::3/64"] {
        pod.ip(&["-6", "addr", "add", a, "dev", "eth0", "nodad"]);
    }
    pod.ip(&["link", "set", "eth0", "up"]);
    node.run(
        "nft",
        &[
            "add table inet cttest; add chain inet cttest input { type filter hook input priority 0; }; \
             add rule inet cttest input ct state established,related counter accept",
        ],
    );
    assert!(pod.reach("10.99.0.1"), "veth passes no traffic");
    (node, pod)
}

/// An established TCP connection from `src` in `pod` to `dst` in `node`, kept open by the
/// returned streams.
fn tcp_connection(node: &Netns, pod: &Netns, src: IpAddr, dst: IpAddr) -> (TcpStream, TcpStream) {
    let listener = node
        .spawn_in(move || TcpListener::bind(SocketAddr::new(dst, 0)).unwrap())
        .join()
        .unwrap();
    let to = listener.local_addr().unwrap();
    let client = pod
        .spawn_in(move || {
            let s = connect_from(src, to);
            s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
            s
        })
        .join()
        .unwrap();
    let (mut server, _) = listener.accept().unwrap();
    let mut c = client.try_clone().unwrap();
    c.write_all(b"hi").unwrap();
    let mut buf = [0u8; 2];
    server.read_exact(&mut buf).unwrap();
    server.write_all(b"ok").unwrap();
    c.read_exact(&mut buf).unwrap();
    (client, server)
}

/// A TCP connection that must leave from `src` (std cannot bind before connecting; the kernel
/// picks the subnet route's preferred source, the pod's first address of the family).
fn connect_from(src: IpAddr, to: SocketAddr) -> TcpStream {
    let s = TcpStream::connect_timeout(&to, Duration::from_secs(5)).unwrap();
    assert_eq!(
        s.local_addr().unwrap().ip(),
        src,
        "the kernel chose another source"
    );
    s
}

#[test]
fn flows_of_an_address_are_deleted_and_the_others_kept() {
    let (node, pod) = pair();
    let (gone4, kept4, gone6, kept6) = (
        ip("10.99.0.2"),
        ip("10.99.0.3"),
        ip("fd00:99::2"),
        ip("fd00:99::3"),
    );
    for (src, dst) in [
        (gone4, ip("10.99.0.1")),
        (kept4, ip("10.99.0.1")),
        (gone6, ip("fd00:99::1")),
        (kept6, ip("fd00:99::1")),
    ] {
        udp_exchange(&pod, src, &node, dst, 7000);
    }
    let _tcp = tcp_connection(&node, &pod, gone4, ip("10.99.0.1"));
    for a in [gone4, kept4, gone6, kept6] {
        assert!(
            !entries_of(&node, a).is_empty(),
            "no flow of {a} in the kernel:\n{}",
            entries(&node).join("\n")
        );
    }
    assert!(entries_of(&node, gone4).iter().any(|l| l.contains("ESTABLISHED")));

    // The dump sees what the kernel lists.
    let fd = NetnsFd::named(node.name()).unwrap();
    let mut ct = Conntrack::open(&fd).unwrap();
    let v4 = ct.flows(false).unwrap();
    let v6 = ct.flows(true).unwrap();
    assert!(v4.iter().all(|f| f.original.src.is_ipv4()) && v6.iter().all(|f| f.original.src.is_ipv6()));
    let tcp = v4
        .iter()
        .find(|f| f.original.protocol == 6 && f.original.src == gone4)
        .expect("the TCP flow is dumped");
    assert_eq!(tcp.reply.src, ip("10.99.0.1"));
    assert!(tcp.original.src_port.is_some() && tcp.original.dst_port.is_some());
    assert!(
        v6.iter()
            .any(|f| f.involves(kept6) && f.original.dst_port == Some(7000))
    );

    // Delete the flows of one address per family: the kernel lists none of them afterwards,
    // and the neighbours' flows are still there.
    let d = ct.delete_flows_of(&[gone4, gone6]).unwrap();
    assert!(d.deleted >= 3, "{d:?}");
    assert!(d.listed >= 5, "{d:?}");
    for a in [gone4, gone6] {
        assert_eq!(entries_of(&node, a), Vec::<String>::new(), "{a} still tracked");
    }
    for a in [kept4, kept6] {
        assert!(
            !entries_of(&node, a).is_empty(),
            "the flow of {a} was deleted too"
        );
    }
    // Nothing left to delete is not an error.
    let again = ct.delete_flows_of(&[gone4, gone6]).unwrap();
    assert_eq!(again.deleted, 0, "{again:?}");
}

#[test]
fn a_namespace_without_flows_lists_nothing() {
    let ns = Netns::new("cte");
    let mut ct = Conntrack::open(&NetnsFd::named(ns.name()).unwrap()).unwrap();
    assert!(ct.flows(false).unwrap().is_empty());
    assert!(ct.flows(true).unwrap().is_empty());
    assert_eq!(ct.delete_flows_of(&[ip("10.0.0.1")]).unwrap().deleted, 0);
}
