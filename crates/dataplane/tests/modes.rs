//! Cross-node pod-to-pod traffic in every encapsulation mode, on a 3-node cluster in namespaces.

mod common;

use std::time::Duration;

use brindle_dataplane::{EncapMode, IpipPath};
use brindle_testkit::{Daemon, TempDir};
use common::{Cluster, Modes, lines, one_pod_per_node, ping};

#[test]
fn ipip_always_seed_routes_wire_format_nat_and_restart() {
    let mut c = common::seed_cluster();
    c.add_pod(1);
    c.add_pod(2);
    let mut dps = c.start_all();
    let path = dps[0].status().ipip.unwrap();
    eprintln!("IPIP path on this kernel: {path}");

    // The seed's five kinds of lines, byte for byte.
    let routes = lines(&c.nodes[0].ns.ip(&["route"]));
    let p = &c.nodes[0].pods;
    for want in [
        "10.233.87.0/24 via 172.20.42.81 dev tunl0 proto bird onlink".to_string(),
        "10.233.124.0/24 via 172.20.42.82 dev tunl0 proto bird onlink".to_string(),
        "blackhole 10.233.94.0/24 proto bird".to_string(),
        format!("10.233.94.1 dev {} scope link", p[0].iface),
        format!("10.233.94.2 dev {} scope link", p[1].iface),
    ] {
        assert!(
            routes.contains(&want),
            "missing `{want}` in:\n{}",
            routes.join("\n")
        );
    }
    let tunl = c.nodes[0].ns.ip(&["-d", "addr", "show", "tunl0"]);
    assert!(tunl.contains("inet 10.233.94.0/32"), "{tunl}");
    assert!(tunl.contains("mtu 1480"), "{tunl}");

    // Real IPIP on the wire: tcpdump on node 0's bridge port decodes it, and a bridge counter
    // sees protocol 4.
    let ipip_frames = common::count_ipip_on_fabric(&c.fabric);
    let dir = TempDir::new("dp-tcpdump");
    let mut tcpdump = Daemon::spawn(
        "tcpdump",
        {
            let mut cmd = c.fabric.cmd("tcpdump");
            cmd.args(["-n", "-l", "-i", "n0", "-c", "1", "ip proto 4"]);
            cmd
        },
        &dir.join("tcpdump.log"),
    );
    std::thread::sleep(Duration::from_millis(500));
    let bad = c.ping_all();
    assert!(bad.is_empty(), "failed pairs: {bad:?}");
    // Node to remote pod (source: the tunnel address, as with Calico).
    assert!(
        ping(&c.nodes[0].ns, &c.nodes[2].pods[0].ip.to_string()),
        "node 0 -> remote pod"
    );
    let via = c.nodes[0]
        .ns
        .ip(&["route", "get", &c.nodes[2].pods[0].ip.to_string()]);
    assert!(
        via.contains("via 172.20.42.82 dev tunl0 src 10.233.94.0"),
        "{via}"
    );
    tcpdump.wait_until("an IPIP frame", Duration::from_secs(10), || {
        tcpdump_saw(&dir.join("tcpdump.log"))
    });
    let log = tcpdump.log();
    assert!(
        log.contains("172.20.42.80 > 172.20.42.81: IP 10.233.94.")
            || log.contains("172.20.42.81 > 172.20.42.80: IP 10.233.87.")
            || log.contains("172.20.42.80 > 172.20.42.82: IP 10.233.94.")
            || log.contains("172.20.42.82 > 172.20.42.80: IP 10.233.124."),
        "{log}"
    );
    assert!(ipip_frames() > 0);
    if path == IpipPath::Bpf {
        let s = dps[0].status().bpf.unwrap();
        assert!(s.encap > 0 && s.decap > 0, "{s:?}");
        assert_eq!(s.decap_denied, 0);
    }

    // NAT outgoing: the external host sees the node address, and answers.
    let ext_seen = c
        .ext
        .cmd("nft")
        .args(["-f", "-"])
        .stdin(std::process::Stdio::piped())
        .spawn();
    {
        use std::io::Write;
        let mut child = ext_seen.unwrap();
        child
            .stdin
            .take()
            .unwrap()
            .write_all(
                b"table ip seen {\n chain input4 {\n  type filter hook input priority 0;\n  ip saddr 172.20.42.80 icmp type echo-request counter\n  ip saddr 10.233.64.0/18 counter\n }\n}\n",
            )
            .unwrap();
        assert!(child.wait().unwrap().success());
    }
    assert!(
        ping(&c.nodes[0].pods[0].ns, "192.0.2.1"),
        "pod cannot reach the external host"
    );
    let seen = c.ext.run("nft", &["list", "table", "ip", "seen"]);
    let counts: Vec<u64> = seen
        .split("packets ")
        .skip(1)
        .map(|s| s.split_whitespace().next().unwrap().parse().unwrap())
        .collect();
    assert!(counts[0] > 0 && counts[1] == 0, "external saw: {seen}");

    // Restart: the agent goes away (its programs stay attached) and traffic flows meanwhile.
    drop(dps.remove(0));
    let bad = c.ping_all();
    assert!(bad.is_empty(), "while node 0's agent is down: {bad:?}");
    // A new agent adopts the kernel state: nothing to replace or delete.
    let h = brindle_netlink::Handle::open_named(c.nodes[0].ns.name()).unwrap();
    let (_dp, report) = brindle_dataplane::Dataplane::start(h, c.config(0), &c.desired(0)).unwrap();
    assert_eq!(
        (report.routes.replaced, report.routes.deleted),
        (0, 0),
        "{report:?}"
    );
    assert!(c.ping_all().is_empty());
}

fn tcpdump_saw(path: &std::path::Path) -> bool {
    std::fs::read_to_string(path)
        .map(|s| s.contains(": IP 10.233."))
        .unwrap_or(false)
}

#[test]
fn ipip_cross_subnet_encapsulates_only_across_the_router() {
    let (c, _dps) = one_pod_per_node(
        true,
        Modes {
            ipip: EncapMode::CrossSubnet,
            vxlan: EncapMode::Never,
        },
    );
    let r0 = lines(&c.nodes[0].ns.ip(&["route"]));
    assert!(
        r0.contains(&"10.233.87.0/24 via 172.20.42.81 dev eth0 proto bird".to_string()),
        "{r0:?}"
    );
    assert!(
        r0.contains(&"10.233.124.0/24 via 172.21.0.12 dev tunl0 proto bird onlink".to_string()),
        "{r0:?}"
    );
    let r2 = lines(&c.nodes[2].ns.ip(&["route"]));
    assert!(
        r2.contains(&"10.233.94.0/24 via 172.20.42.80 dev tunl0 proto bird onlink".to_string()),
        "{r2:?}"
    );
    let ipip_frames = common::count_ipip_on_fabric(&c.fabric);
    // Same subnet: no encapsulation.
    assert!(ping(&c.nodes[0].pods[0].ns, &c.nodes[1].pods[0].ip.to_string()));
    assert_eq!(ipip_frames(), 0, "same-subnet traffic was encapsulated");
    // Across the router: IPIP.
    let bad = c.ping_all();
    assert!(bad.is_empty(), "failed pairs: {bad:?}");
    assert!(ipip_frames() > 0);
}

#[test]
fn no_encapsulation() {
    let (c, _dps) = one_pod_per_node(
        false,
        Modes {
            ipip: EncapMode::Never,
            vxlan: EncapMode::Never,
        },
    );
    let r0 = lines(&c.nodes[0].ns.ip(&["route"]));
    assert!(
        r0.contains(&"10.233.87.0/24 via 172.20.42.81 dev eth0 proto bird".to_string()),
        "{r0:?}"
    );
    let ipip_frames = common::count_ipip_on_fabric(&c.fabric);
    let bad = c.ping_all();
    assert!(bad.is_empty(), "failed pairs: {bad:?}");
    assert_eq!(ipip_frames(), 0);
}

#[test]
fn vxlan_always() {
    let (c, _dps) = one_pod_per_node(
        false,
        Modes {
            ipip: EncapMode::Never,
            vxlan: EncapMode::Always,
        },
    );
    let n0 = &c.nodes[0].ns;
    let r0 = lines(&n0.ip(&["route"]));
    assert!(
        r0.contains(&"10.233.87.0/24 via 10.233.87.0 dev vxlan.calico proto 80 onlink".to_string()),
        "{r0:?}"
    );
    let link = n0.ip(&["-d", "link", "show", "vxlan.calico"]);
    assert!(
        link.contains("vxlan id 4096") && link.contains("dstport 4789") && link.contains("nolearning"),
        "{link}"
    );
    assert!(link.contains("mtu 1450"), "{link}");
    let mac = brindle_netlink::mac_to_string(&brindle_dataplane::vxlan::vtep_mac("bgp-master2"));
    let neigh = n0.ip(&["neigh", "show", "dev", "vxlan.calico"]);
    assert!(
        neigh.contains(&format!("10.233.87.0 lladdr {mac} PERMANENT")),
        "{neigh}"
    );
    let fdb = n0.run("bridge", &["fdb", "show", "dev", "vxlan.calico"]);
    assert!(
        fdb.contains(&format!("{mac} dst 172.20.42.81 self permanent")),
        "{fdb}"
    );
    let bad = c.ping_all();
    assert!(bad.is_empty(), "failed pairs: {bad:?}");
}

#[test]
fn vxlan_cross_subnet() {
    let (c, _dps) = one_pod_per_node(
        true,
        Modes {
            ipip: EncapMode::Never,
            vxlan: EncapMode::CrossSubnet,
        },
    );
    let r0 = lines(&c.nodes[0].ns.ip(&["route"]));
    assert!(
        r0.contains(&"10.233.87.0/24 via 172.20.42.81 dev eth0 proto 80".to_string()),
        "{r0:?}"
    );
    assert!(
        r0.contains(&"10.233.124.0/24 via 10.233.124.0 dev vxlan.calico proto 80 onlink".to_string()),
        "{r0:?}"
    );
    let bad = c.ping_all();
    assert!(bad.is_empty(), "failed pairs: {bad:?}");
}

/// RFC 1071 checksum.
fn csum(b: &[u8]) -> u16 {
    let mut s: u32 = b
        .chunks(2)
        .map(|c| u32::from(u16::from_be_bytes([c[0], *c.get(1).unwrap_or(&0)])))
        .sum();
    while s > 0xffff {
        s = (s & 0xffff) + (s >> 16);
    }
    !(s as u16)
}

/// An IPIP packet `outer_src → outer_dst` carrying an ICMP echo `10.9.9.9 → inner_dst`.
fn ipip_packet(outer_src: [u8; 4], outer_dst: [u8; 4], inner_dst: [u8; 4]) -> Vec<u8> {
    let mut icmp = vec![8, 0, 0, 0, 0x12, 0x34, 0, 1];
    let c = csum(&icmp);
    icmp[2..4].copy_from_slice(&c.to_be_bytes());
    let mut inner = vec![0x45, 0, 0, 28, 0, 1, 0, 0, 64, 1, 0, 0, 10, 9, 9, 9];
    inner.extend_from_slice(&inner_dst);
    let c = csum(&inner);
    inner[10..12].copy_from_slice(&c.to_be_bytes());
    let mut outer = vec![0x45, 0, 0, 48, 0, 0, 0, 0, 64, 4, 0, 0];
    outer.extend_from_slice(&outer_src);
    outer.extend_from_slice(&outer_dst);
    [outer, inner, icmp].concat()
}

#[test]
fn ipip_with_strict_rp_filter_refuses_unknown_senders() {
    let mut c = Cluster::new(
        2,
        false,
        Modes {
            ipip: EncapMode::Always,
            vxlan: EncapMode::Never,
        },
    );
    for n in &c.nodes {
        n.ns.sysctl("net.ipv4.conf.all.rp_filter", "1");
        n.ns.sysctl("net.ipv4.conf.default.rp_filter", "1");
    }
    c.add_pod(0);
    c.add_pod(1);
    let dps = c.start_all();
    let bad = c.ping_all();
    assert!(bad.is_empty(), "with strict rp_filter: {bad:?}");
    let denied = |dps: &[brindle_dataplane::Dataplane]| dps[0].status().bpf.map(|s| s.decap_denied);
    let before = denied(&dps);
    // The external host (not a node) sends IPIP to node 0 for its pod.
    let pod = c.nodes[0].pods[0].ip.octets();
    let pkt = ipip_packet([172, 20, 42, 1], [172, 20, 42, 80], pod);
    let ext = brindle_netlink::NetnsFd::named(c.ext.name()).unwrap();
    ext.run(|| {
        // SAFETY: a raw socket used for one sendto with valid buffers, then closed.
        unsafe {
            let fd = libc::socket(libc::AF_INET, libc::SOCK_RAW, libc::IPPROTO_RAW);
            assert!(fd >= 0, "raw socket");
            let mut sa: libc::sockaddr_in = std::mem::zeroed();
            sa.sin_family = libc::AF_INET as u16;
            sa.sin_addr.s_addr = u32::from_ne_bytes([172, 20, 42, 80]);
            for _ in 0..3 {
                let n = libc::sendto(
                    fd,
                    pkt.as_ptr().cast(),
                    pkt.len(),
                    0,
                    (&sa as *const libc::sockaddr_in).cast(),
                    std::mem::size_of::<libc::sockaddr_in>() as u32,
                );
                assert_eq!(n, pkt.len() as isize, "sendto");
            }
            libc::close(fd);
        }
    })
    .unwrap();
    std::thread::sleep(Duration::from_millis(300));
    match dps[0].status().ipip.unwrap() {
        IpipPath::Bpf => assert_eq!(denied(&dps).unwrap(), before.unwrap() + 3),
        IpipPath::Kernel => {
            let t = c.nodes[0]
                .ns
                .run("nft", &["list", "chain", "ip", "brindle", "filter-cali-INPUT"]);
            assert!(t.contains("packets 3"), "{t}");
        }
    }
}
