//! The wiring steps against real namespaces: a "node" namespace with an uplink and a default
//! route (so proxy ARP has somewhere to answer for), and a "pod" namespace.

use std::net::IpAddr;

use brindle_cni::wiring;
use brindle_netlink::{Handle, NetnsFd};
use brindle_testkit::Netns;

struct Lab {
    node: Netns,
    pod: Netns,
}

fn lab() -> Lab {
    let node = Netns::node_with_uplink("cwn", "172.20.42.80/24", "172.20.42.1");
    let pod = Netns::new("cwp");
    Lab { node, pod }
}

fn handles(l: &Lab) -> (Handle, Handle) {
    let host = Handle::open_named(l.node.name()).unwrap();
    let pod = Handle::open(&NetnsFd::named(l.pod.name()).unwrap()).unwrap();
    (host, pod)
}

#[test]
fn a_pod_is_wired_like_calico() {
    let l = lab();
    let (mut host, mut pod) = handles(&l);
    let addr: IpAddr = "10.233.94.1".parse().unwrap();
    let v = wiring::create_veth(&mut host, &mut pod, "cali36dac03ac5d", "eth0", Some(1440)).unwrap();
    assert_eq!(v.mtu, 1440);
    wiring::configure_host(&host, &v, false).unwrap();
    wiring::configure_pod(&mut pod, &v, &[addr], &wiring::default_routes(&[addr]), false).unwrap();
    wiring::add_host_routes(&mut host, &v, &[addr]).unwrap();

    let routes = l.node.ip(&["route", "show", "dev", "cali36dac03ac5d"]);
    assert_eq!(routes.trim(), "10.233.94.1 scope link", "{routes}");
    let all = l.node.ip(&["route"]);
    assert!(
        all.lines()
            .any(|r| r.trim() == "10.233.94.1 dev cali36dac03ac5d scope link"),
        "{all}"
    );
    let link = l.node.ip(&["-o", "link", "show", "cali36dac03ac5d"]);
    assert!(link.contains("link/ether ee:ee:ee:ee:ee:ee"), "{link}");
    assert!(link.contains("mtu 1440") && link.contains("state UP"), "{link}");
    for (key, want) in [
        ("net/ipv4/conf/cali36dac03ac5d/proxy_arp", "1"),
        ("net/ipv4/neigh/cali36dac03ac5d/proxy_delay", "0"),
        ("net/ipv4/conf/cali36dac03ac5d/forwarding", "1"),
        ("net/ipv4/conf/cali36dac03ac5d/route_localnet", "1"),
    ] {
        let got = l.node.run("cat", &[&format!("/proc/sys/{key}")]);
        assert_eq!(got.trim(), want, "{key}");
    }
    let pod_routes: Vec<String> = l
        .pod
        .ip(&["route"])
        .lines()
        .map(|s| s.trim().to_string())
        .collect();
    assert_eq!(
        pod_routes,
        [
            "default via 169.254.1.1 dev eth0",
            "169.254.1.1 dev eth0 scope link"
        ],
    );
    let pod_addr = l.pod.ip(&["-o", "-4", "addr", "show", "dev", "eth0"]);
    assert!(pod_addr.contains("inet 10.233.94.1/32"), "{pod_addr}");
    assert_eq!(l.pod.run("cat", &["/proc/sys/net/ipv4/ip_forward"]).trim(), "0");

    assert!(l.node.reach("10.233.94.1"), "node cannot reach the pod");
    assert!(l.pod.reach("172.20.42.80"), "pod cannot reach the node");

    // The same host route again is accepted; on another interface it is refused by name.
    wiring::add_host_routes(&mut host, &v, &[addr]).unwrap();
    let pod2 = Netns::new("cwp");
    let mut pod2_h = Handle::open(&NetnsFd::named(pod2.name()).unwrap()).unwrap();
    let v2 = wiring::create_veth(&mut host, &mut pod2_h, "cali05c862e5940", "eth0", None).unwrap();
    let e = wiring::add_host_routes(&mut host, &v2, &[addr]).unwrap_err();
    assert!(
        e.msg
            .contains("already exists for an interface other than 'cali05c862e5940'")
            && e.msg.contains("cali36dac03ac5d"),
        "{e}"
    );

    // Tear down through the pod's namespace: the host end and its route go with it.
    assert!(wiring::remove_pod_interface(&l.pod.path(), "eth0").unwrap());
    assert!(!wiring::remove_pod_interface(&l.pod.path(), "eth0").unwrap());
    assert!(host.link_by_name("cali36dac03ac5d").unwrap().is_none());
    assert!(!l.node.ip(&["route"]).contains("10.233.94.1"));
    wiring::remove_veth(&mut host, "cali05c862e5940");
}

#[test]
fn stale_host_ends_are_replaced_and_pod_name_clashes_refused() {
    let l = lab();
    let (mut host, mut pod) = handles(&l);
    // A stale host interface with the name we want (a previous sandbox).
    l.node.ip(&[
        "link",
        "add",
        "calistale00001",
        "type",
        "veth",
        "peer",
        "name",
        "stalepeer",
    ]);
    let v = wiring::create_veth(&mut host, &mut pod, "calistale00001", "eth0", None).unwrap();
    assert!(
        host.link_by_name("stalepeer").unwrap().is_none(),
        "stale pair not removed"
    );
    let peer = pod.require_link("eth0").unwrap();
    assert_eq!(
        peer.link_index,
        Some(v.host_index),
        "pod end is not the host end's peer"
    );
    // eth0 already exists in the pod: refused, naming the interface and the namespace.
    let e = wiring::create_veth(&mut host, &mut pod, "calisecond0001", "eth0", None).unwrap_err();
    assert!(e.msg.contains("interface eth0 already exists in netns"), "{e}");
    assert!(host.link_by_name("calisecond0001").unwrap().is_none());
    // A missing namespace is "nothing to delete".
    assert!(
        !wiring::remove_pod_interface(std::path::Path::new("/run/netns/brindle-no-such-ns"), "eth0").unwrap()
    );
}

#[test]
fn dual_stack_host_routes_take_one_path() {
    let l = lab();
    let (mut host, mut pod) = handles(&l);
    let addrs: [IpAddr; 2] = ["10.233.94.2".parse().unwrap(), "fd00:10:233::2".parse().unwrap()];
    let v = wiring::create_veth(&mut host, &mut pod, "cali1d2b3c4e5f6", "eth0", None).unwrap();
    wiring::configure_host(&host, &v, true).unwrap();
    wiring::add_host_routes(&mut host, &v, &addrs).unwrap();
    let v4 = l.node.ip(&["route", "show", "dev", "cali1d2b3c4e5f6"]);
    // `linkdown`: the pod end is not configured here.
    assert!(v4.starts_with("10.233.94.2 scope link"), "{v4}");
    let v6 = l.node.ip(&["-6", "route", "show", "fd00:10:233::2"]);
    assert!(v6.contains("fd00:10:233::2 dev cali1d2b3c4e5f6"), "{v6}");

    // Both families: the same routes again are accepted (the kernel gave the IPv6 one metric
    // 1024), on another interface refused by name.
    wiring::add_host_routes(&mut host, &v, &addrs).unwrap();
    let pod2 = Netns::new("cwp");
    let mut pod2_h = Handle::open(&NetnsFd::named(pod2.name()).unwrap()).unwrap();
    let v2 = wiring::create_veth(&mut host, &mut pod2_h, "cali6f5e4d3c2b1", "eth0", None).unwrap();
    wiring::configure_host(&host, &v2, true).unwrap();
    for a in addrs {
        let e = wiring::add_host_routes(&mut host, &v2, &[a]).unwrap_err();
        assert!(
            e.msg.contains(&format!(
                "{a}/{} already exists for an interface other than 'cali6f5e4d3c2b1': cali1d2b3c4e5f6",
                if a.is_ipv4() { 32 } else { 128 }
            )),
            "{e}"
        );
    }
    wiring::remove_veth(&mut host, "cali6f5e4d3c2b1");
    wiring::remove_veth(&mut host, "cali1d2b3c4e5f6");
}
