//! Dual stack end to end with two real agents (`brindle node run`) in two node namespaces on a
//! shared bridge with an IPv4 and an IPv6 underlay, sharing one datastore: each node registers
//! its IPv6 address (`IP6`), the agents mesh over both families (two sessions per pair, as
//! Calico's `bird` and `bird6`), `brindle node status` shows both tables Established, each
//! node holds its v6 block as `blackhole … proto bird` and the other's via the other's IPv6
//! address (never a tunnel), pods attached by the real CNI plugin get an address of each
//! family and reach each other over both, and a `kill -9` of one agent under a ping6 stream
//! loses nothing (the kernel keeps forwarding; the restarted agent takes over). A third,
//! IPv6-only node (`IP=none`) joins the v6 mesh only and its pod reaches the others over IPv6,
//! and BIRD 2 as an external router peers with node1 over IPv6 only (a node-specific BGPPeer
//! with a password from a secret file), each side learning the other's prefixes, one of BIRD's
//! routes with a next hop off node1's subnet installed through recursive resolution. Last, the v6
//! pool turns to VXLAN (Always): v6 VTEP addresses, routes over `vxlan-v6.calico`, ping6 again;
//! and to natOutgoing: pods reach the hub, which has no route back to them, through NAT66.

mod v6_support;

use std::process::Stdio;
use std::time::Duration;

use brindle_testkit::TempDir;
use serde_json::Value;
use v6_support::{Bird6, Hub, Node, POOL4, POOL6, add_pod, pool, pool_vxlan, put, wait_for};

/// Both tables of `node status` have a row for `peer` (the other node's address of each
/// family) that is Established, as calicoctl prints them.
fn both_established(text: &str, peer4: &str, peer6: &str) -> bool {
    let (v4, v6) = match text.split_once("IPv6 BGP status") {
        Some(x) => x,
        None => return false,
    };
    let row = |t: &str, ip: &str| {
        t.lines().any(|l| {
            l.contains(&format!("| {ip} "))
                && l.contains("| node-to-node mesh |")
                && l.contains("| up ")
                && l.contains("Established")
        })
    };
    v4.contains("IPv4 BGP status") && row(v4, peer4) && row(v6, peer6) && !v6.contains("No IPv6 peers found.")
}

#[test]
fn dual_stack_agents_end_to_end() {
    let dir = TempDir::new("v6a");
    let db = dir.join("brindle.db");
    let ds =
        brindle_datastore::open(&brindle_datastore::DatastoreConfig::sqlite(&db)).expect("open datastore");
    // The pools, as the lab writes them (NO_DEFAULT_POOLS=true).
    for (k, v) in [pool("pool4", POOL4, 26), pool("pool6", POOL6, 122)] {
        put(ds.as_ref(), &k, v);
    }
    let hub = Hub::new();
    // An external router over IPv6 only (eBGP, password), peering with node1 through a
    // node-specific BGPPeer whose password is a secret file.
    let bird = Bird6::start(&hub, &dir, "fd00:31:6::11", "s3cret-six");
    std::fs::create_dir_all(dir.join("secrets/bgp")).unwrap();
    std::fs::write(dir.join("secrets/bgp/tor6"), "s3cret-six\n").unwrap();
    put(
        ds.as_ref(),
        "/calico/resources/v3/projectcalico.org/bgppeers/tor6",
        serde_json::json!({"kind": "BGPPeer", "apiVersion": "projectcalico.org/v3", "metadata": {"name": "tor6"},
               "spec": {"node": "v6-node1", "peerIP": "fd00:31:6::1", "asNumber": 65001,
                        "password": {"secretKeyRef": {"name": "bgp", "key": "tor6"}}}}),
    );
    let n1 = Node::new(&hub, &dir, "v6-node1", 11, false);
    let n2 = Node::new(&hub, &dir, "v6-node2", 12, false);
    // An IPv6-only node (`IP=none`): in the v6 mesh only, router id from its name's hash.
    let n3 = Node::new(&hub, &dir, "v6-node3", 13, true);
    let mut a1 = n1.agent(&db, 1);
    let mut a2 = n2.agent(&db, 1);
    let mut a3 = n3.agent(&db, 1);

    // Both families' sessions Established on both nodes, in `node status`.
    for (me, other, a) in [(&n1, &n2, &mut a1), (&n2, &n1, &mut a2)] {
        wait_for(
            &format!("{}: both sessions Established", me.name),
            Duration::from_secs(60),
            || {
                assert!(a.is_running(), "agent {} exited:\n{}", me.name, a.log());
                me.status().is_some() && both_established(&me.node_status(), &other.v4, &other.v6)
            },
            || format!("{}\n{}", me.node_status(), me.log(1)),
        );
    }
    wait_for(
        "v6-node3 (IPv6 only): v6 sessions Established, no IPv4 peers",
        Duration::from_secs(60),
        || {
            assert!(a3.is_running(), "agent v6-node3 exited:\n{}", a3.log());
            let t = n3.node_status();
            let rows = t
                .lines()
                .filter(|l| l.contains("| node-to-node mesh |") && l.contains("Established"))
                .count();
            t.contains("No IPv4 peers found.") && rows == 2
        },
        || format!("{}\n{}", n3.node_status(), n3.log(1)),
    );
    let st = n1.status().unwrap();
    assert_eq!(st.ipv6_address.as_deref(), Some("fd00:31:6::11/64"));
    let node1 = ds
        .get("/calico/resources/v3/projectcalico.org/nodes/v6-node1")
        .unwrap()
        .unwrap();
    let node1: Value = serde_json::from_slice(&node1.value).unwrap();
    assert_eq!(node1["spec"]["bgp"]["ipv6Address"], "fd00:31:6::11/64", "{node1}");

    // A pod on each node (its blocks are claimed by the plugin), both families.
    let p1 = add_pod(&n1, &db, 1);
    let p2 = add_pod(&n2, &db, 2);
    let p3 = add_pod(&n3, &db, 3);
    for p in [&p1, &p2, &p3] {
        p.check_v6_wiring();
    }
    for (me, other) in [(&n1, &n2), (&n2, &n1)] {
        wait_for(
            &format!(
                "{}: v6 blackhole and the other's v6 block via its v6 address",
                me.name
            ),
            Duration::from_secs(30),
            || {
                let r = me.bird_routes(true);
                r.contains("blackhole fd00:10:244:")
                    && r.lines().any(|l| {
                        l.starts_with("fd00:10:244:")
                            && l.contains("/122")
                            && l.contains(&format!("via {} dev eth0", other.v6))
                    })
            },
            || format!("{}\n{}", me.bird_routes(true), me.bird_routes(false)),
        );
        wait_for(
            &format!("{}: v4 block of the other node", me.name),
            Duration::from_secs(30),
            || {
                me.bird_routes(false)
                    .lines()
                    .any(|l| l.starts_with("10.244.") && l.contains(&format!("via {} dev eth0", other.v4)))
            },
            || me.bird_routes(false),
        );
    }
    // The external v6 peer: Established with a password, node1's v6 block learned by BIRD,
    // BIRD's prefix installed on node1 via BIRD's address.
    wait_for(
        "BIRD 2 over IPv6: session up, routes both ways",
        Duration::from_secs(30),
        || {
            let st = n1.node_status();
            st.lines().any(|l| {
                l.contains("| fd00:31:6::1 ") && l.contains("| node specific ") && l.contains("Established")
            }) && bird.birdc("show route").contains("fd00:10:244:")
                && n1
                    .bird_routes(true)
                    .contains("2001:db8:99::/48 via fd00:31:6::1 dev eth0")
                // A next hop off node1's subnet (2001:db8:99::7), resolved recursively
                // through the learned 2001:db8:99::/48 (BIRD's `gateway recursive`).
                && n1
                    .bird_routes(true)
                    .contains("2001:db8:77::/48 via fd00:31:6::1 dev eth0")
        },
        || {
            format!(
                "{}\n{}\n{}\n{}",
                n1.node_status(),
                bird.birdc("show protocols all tor6"),
                bird.birdc("show route"),
                n1.bird_routes(true)
            )
        },
    );
    let r6 = n1.bird_routes(true);
    assert!(
        !r6.contains("tunl0") && !r6.contains("vxlan"),
        "never a tunnel for v6: {r6}"
    );
    assert!(
        n1.ns.ip(&["-6", "route", "show", &p1.v6]).contains("dev cali"),
        "/128 workload route on n1: {}",
        n1.ns.ip(&["-6", "route", "show", "table", "main"])
    );

    // Pod to pod over both families.
    assert!(p1.ns.reach(&p2.v6), "ping6 {} → {}", p1.v6, p2.v6);
    assert!(p2.ns.reach(&p1.v6), "ping6 {} → {}", p2.v6, p1.v6);
    assert!(p1.ns.reach(&p2.v4), "ping {} → {}", p1.v4, p2.v4);
    wait_for(
        "v6-node3 reaches v6-node1's pod over IPv6",
        Duration::from_secs(30),
        || p3.ns.ping(&p1.v6) && p1.ns.ping(&p3.v6),
        || format!("{}\n{}", n3.bird_routes(true), n1.bird_routes(true)),
    );
    assert!(p2.ns.reach(&p1.v4), "ping {} → {}", p2.v4, p1.v4);

    // kill -9 of node1's agent under a ping6 stream, then a new agent: nothing lost.
    let stream = p1
        .ns
        .cmd("ping")
        .args(["-6", "-i", "0.02", "-c", "600", "-W", "1", &p2.v6])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_secs(2));
    a1.signal(libc::SIGKILL);
    a1.wait(Duration::from_secs(10));
    let mut a1 = n1.agent(&db, 2);
    wait_for(
        "node1's new agent: both sessions Established again",
        Duration::from_secs(60),
        || {
            assert!(a1.is_running(), "agent exited:\n{}", a1.log());
            n1.status().is_some() && both_established(&n1.node_status(), &n2.v4, &n2.v6)
        },
        || format!("{}\n{}", n1.node_status(), n1.log(2)),
    );
    let out = stream.wait_with_output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    let summary = text
        .lines()
        .find(|l| l.contains("packets transmitted"))
        .unwrap_or_default()
        .to_string();
    assert!(
        summary.contains("600 packets transmitted, 600 received"),
        "ping6 across kill -9: {summary}\n{}",
        a1.log()
    );
    eprintln!("ping6 across kill -9 and restart: {summary}");
    // The restart left the routes as they were.
    assert!(p1.ns.reach(&p2.v6));

    // VXLAN over IPv6: the v6 pool turns to vxlanMode Always; each node gets a v6 VTEP
    // address from its block (spec.ipv6VXLANTunnelAddr), the other nodes' v6 blocks move to
    // vxlan-v6.calico, and the pods still reach each other over IPv6.
    let (k, v) = pool_vxlan("pool6", POOL6, 122, "Always");
    put(ds.as_ref(), &k, v);
    let vtep_of = |n: &str| -> Option<String> {
        let kv = ds
            .get(&format!("/calico/resources/v3/projectcalico.org/nodes/{n}"))
            .unwrap()?;
        let v: Value = serde_json::from_slice(&kv.value).unwrap();
        v["spec"]["ipv6VXLANTunnelAddr"].as_str().map(str::to_string)
    };
    for (me, other) in [(&n1, &n2), (&n2, &n1), (&n3, &n1)] {
        wait_for(
            &format!(
                "{}: v6 VTEP and the other's v6 block over vxlan-v6.calico",
                me.name
            ),
            Duration::from_secs(30),
            || {
                let Some(vtep) = vtep_of(&other.name) else {
                    return false;
                };
                me.ns.ip(&["-6", "route", "show"]).lines().any(|l| {
                    l.starts_with("fd00:10:244:") && l.contains(&format!("via {vtep} dev vxlan-v6.calico"))
                })
            },
            || {
                format!(
                    "{:?}\n{}",
                    vtep_of(&other.name),
                    me.ns.ip(&["-6", "route", "show"])
                )
            },
        );
    }
    assert!(p1.ns.reach(&p2.v6), "ping6 over VXLAN v6 {} → {}", p1.v6, p2.v6);
    assert!(p3.ns.reach(&p1.v6), "ping6 over VXLAN v6 {} → {}", p3.v6, p1.v6);
    assert!(p1.ns.reach(&p2.v4), "IPv4 untouched by the v6 pool's VXLAN");

    // NAT66: the hub has no route back to the pods, so a pod reaches the hub's IPv6 address
    // only once natOutgoing on the v6 pool masquerades it behind the node's address.
    assert!(
        !p1.ns.ping("fd00:31:6::1"),
        "the hub answered a pod without NAT66"
    );
    let (k, mut v) = pool_vxlan("pool6", POOL6, 122, "Always");
    v["spec"]["natOutgoing"] = Value::Bool(true);
    put(ds.as_ref(), &k, v);
    wait_for(
        "a pod reaches the hub over IPv6 through NAT66",
        Duration::from_secs(30),
        || p1.ns.ping("fd00:31:6::1") && p3.ns.ping("fd00:31:6::1"),
        || n1.ns.run("nft", &["list", "table", "ip6", "brindle"]),
    );
    a1.terminate(Duration::from_secs(10));
    a2.terminate(Duration::from_secs(10));
    a3.terminate(Duration::from_secs(10));
}
