//! IPv6 as Calico runs it, against real daemons: one session per family between the nodes'
//! addresses of that family (Calico's `bird` and `bird6`), IPv6 unicast over MP-BGP (RFC 4760,
//! RFC 2545 next hops: global, and link-local on a shared link), TCP MD5 and GTSM over IPv6,
//! `bindMode: NodeIP`, prefix-advertisement communities seen by BIRD, and graceful restart of
//! an IPv6 session (End-of-RIB for IPv6) with BIRD 2 keeping our routes in its kernel.

mod common;

use std::net::Ipv6Addr;
use std::time::Duration;

use brindle_bgp_speaker::*;
use common::daemons::{Bird, Frr, ME, THEM};
use common::testd::{KernelWatch, RestartCase, Testd};
use common::*;

const T: Duration = Duration::from_secs(30);
const ME6: &str = "fd80:42::80";
const THEM6: &str = "fd80:42::81";

fn routed(prefix: &str, communities: &[&str]) -> Originated {
    Originated {
        communities: CommunitySet::of(communities.iter().map(|c| c.parse::<Community>().unwrap())),
        ..Originated::plain(net(prefix))
    }
}

fn ebgp_peer(addr: &str, password: &str) -> PeerConfig {
    PeerConfig {
        password: Some(password.into()),
        hold_time: 9,
        timers: test_timers(),
        ..PeerConfig::new(ip(addr), 65001, PeerType::Global)
    }
}

/// BIRD 2 as an external router (AS 65001) with a session per family to a Brindle node
/// listening on its node addresses only: MD5 on both, GTSM on the IPv6 one, communities on
/// what Brindle announces, the families kept apart.
#[test]
fn bird2_dual_stack_ebgp() {
    let fab = Fabric::new(2);
    let node = &fab.nodes[0];
    // The node's IPv6 address is not there yet when the speaker binds (as while DAD runs):
    // the NodeIP listeners bind anyway and accept once it appears.
    node.ip(&["addr", "del", &format!("{ME6}/64"), "dev", "eth0"]);
    let mut cfg = SpeakerConfig::new("172.20.42.80".parse().unwrap(), AS);
    cfg.node_v6 = Some(ME6.parse().unwrap());
    cfg.listen_on_node_addresses(BGP_PORT);
    let brindle = BrindleNode::start_with(node, cfg);
    let listening = node.run("ss", &["-ltnH"]);
    assert!(
        listening.contains("172.20.42.80:179") && listening.contains("[fd80:42::80]:179"),
        "{listening}"
    );
    assert!(
        !listening.contains("0.0.0.0:179") && !listening.contains("[::]:179"),
        "{listening}"
    );
    node.ip(&["addr", "add", &format!("{ME6}/64"), "dev", "eth0", "nodad"]);

    let bird = Bird::with_config(
        &fab.nodes[1],
        &format!(
            "router id {THEM};
protocol device {{ scan time 10; }}
protocol direct {{ ipv4; ipv6; interface \"eth0\"; }}
protocol static own4 {{ ipv4; route 10.233.87.0/24 blackhole; }}
protocol static own6 {{ ipv6; route fd00:87::/122 blackhole; }}
protocol bgp Global_172_20_42_80 {{
  local {THEM} as 65001; neighbor {ME} as 64512;
  connect delay time 1; connect retry time 1; error wait time 1, 5; hold time 9;
  password \"v4-s3cret\";
  ipv4 {{ import all; export where proto = \"own4\"; }};
  ipv6 {{ import all; export where proto = \"own6\"; }};
}}
protocol bgp Global_fd80_42__80 {{
  local {THEM6} as 65001; neighbor {ME6} as 64512;
  connect delay time 1; connect retry time 1; error wait time 1, 5; hold time 9;
  password \"v6-s3cret\"; ttl security on;
  ipv6 {{ import all; export where proto = \"own6\"; }};
}}
"
        ),
    );
    let v6 = PeerConfig {
        ttl_security: Some(1),
        ..ebgp_peer(THEM6, "v6-s3cret")
    };
    brindle.set_peers(vec![ebgp_peer(THEM, "v4-s3cret"), v6]);
    brindle.originate_routes(vec![
        routed("10.233.94.0/24", &["65000:100", "65000:100:7"]),
        routed("fd00:94::/122", &["65000:600", "64512:6:6"]),
    ]);
    let dump = || format!("{}\n{}", brindle.dump(), bird.birdc("show protocols all"));
    wait_for(
        "both sessions Established",
        T,
        || brindle.established(THEM) && brindle.established(THEM6),
        dump,
    );
    let names: Vec<String> = brindle.status().into_iter().map(|p| p.name).collect();
    assert_eq!(names, ["Global_172_20_42_81", "Global_fd80_42__81"]);

    // Each session carries its own family: BIRD's IPv6 channel on the IPv4 session stays down
    // (Calico's one-BIRD-per-family model), so its IPv6 route comes over the IPv6 session only.
    wait_for(
        "their routes, one per session",
        T,
        || brindle.prefixes() == ["10.233.87.0/24", "fd00:87::/122"],
        dump,
    );
    let routes = brindle.routes();
    let r4 = &routes[&net("10.233.87.0/24")];
    assert_eq!((r4.next_hop, r4.peer), (ip(THEM), ip(THEM)));
    let r6 = &routes[&net("fd00:87::/122")];
    assert_eq!((r6.next_hop, r6.peer), (ip(THEM6), ip(THEM6)));
    assert_eq!(brindle.peer_status(THEM).routes_imported, 1);
    assert_eq!(brindle.peer_status(THEM6).routes_imported, 1);
    let v4_proto = bird.birdc("show protocols all Global_172_20_42_80");
    let ipv6_channel = v4_proto.split("Channel ipv6").nth(1).unwrap_or_default();
    assert!(ipv6_channel.contains("State:          DOWN"), "{v4_proto}");

    // Ours in BIRD, each with its communities, the IPv6 one with global and link-local next
    // hops (RFC 2545), our AS in the path.
    let has = |prefix: &str, what: &[&str]| {
        let out = bird.birdc(&format!("show route {prefix} all"));
        what.iter().all(|w| out.contains(w))
    };
    wait_for(
        "our IPv4 block in BIRD with its communities",
        T,
        || {
            has(
                "10.233.94.0/24",
                &[
                    "via 172.20.42.80 on eth0",
                    "BGP.as_path: 64512",
                    "BGP.community: (65000,100)",
                    "BGP.large_community: (65000, 100, 7)",
                ],
            )
        },
        || bird.birdc("show route all"),
    );
    wait_for(
        "our IPv6 block in BIRD with its communities and next hops",
        T,
        || {
            has(
                "fd00:94::/122",
                &[
                    "via fd80:42::80 on eth0",
                    "BGP.next_hop: fd80:42::80 fe80::",
                    "BGP.community: (65000,600)",
                    "BGP.large_community: (64512, 6, 6)",
                ],
            )
        },
        || bird.birdc("show route all"),
    );
    // The IPv4 session did not carry the IPv6 block.
    let all = bird.birdc("show route all fd00:94::/122");
    assert!(!all.contains("Global_172_20_42_80"), "{all}");

    // New communities: announced again, the sessions untouched.
    let since: Vec<_> = brindle.status().into_iter().map(|p| p.since).collect();
    brindle.originate_routes(vec![
        routed("10.233.94.0/24", &["65000:200"]),
        routed("fd00:94::/122", &[]),
    ]);
    wait_for(
        "new communities in BIRD",
        T,
        || {
            let v4 = bird.birdc("show route 10.233.94.0/24 all");
            let v6 = bird.birdc("show route fd00:94::/122 all");
            v4.contains("BGP.community: (65000,200)")
                && !v4.contains("large_community")
                && v6.contains("fd00:94::/122")
                && !v6.contains("community")
        },
        || bird.birdc("show route all"),
    );
    let after: Vec<_> = brindle.status().into_iter().map(|p| p.since).collect();
    assert_eq!(since, after, "sessions restarted");
}

/// FRR as an iBGP peer over IPv6 only (with MD5): global and link-local next hops both ways;
/// zebra installs our block through our link-local address.
#[test]
fn frr_ipv6_session() {
    let fab = Fabric::new(2);
    let brindle = BrindleNode::start_dual(&fab.nodes[0], ME, ME6);
    let frr = Frr::with_config(
        &fab.nodes[1],
        &format!(
            "hostname brindle-test-bgpd
router bgp 64512
 bgp router-id {THEM}
 no bgp ebgp-requires-policy
 no bgp network import-check
 no bgp default ipv4-unicast
 timers bgp 3 9
 neighbor {ME6} remote-as 64512
 neighbor {ME6} timers connect 1
 neighbor {ME6} password v6-md5
 address-family ipv6 unicast
  network fd00:87::/122
  neighbor {ME6} activate
 exit-address-family
"
        ),
    );
    brindle.set_peers(vec![PeerConfig {
        password: Some("v6-md5".into()),
        ..peer(THEM6, false, None)
    }]);
    brindle.originate(&["fd00:94::/122", "10.233.94.0/24"]);
    let dump = || {
        format!(
            "{}\n{}",
            brindle.dump(),
            frr.vtysh(&[&format!("show bgp neighbors {ME6}"), "show bgp ipv6 unicast"])
        )
    };
    wait_for("Established", T, || brindle.established(THEM6), dump);
    assert_eq!(brindle.peer_status(THEM6).name, "Mesh_fd80_42__81");
    wait_for(
        "FRR's block with its next hops",
        T,
        || {
            brindle.routes().get(&net("fd00:87::/122")).is_some_and(|r| {
                r.next_hop == ip(THEM6) && r.link_local.is_some_and(|l| l.segments()[0] == 0xfe80)
            })
        },
        dump,
    );
    let ours = || frr.vtysh(&["show bgp ipv6 unicast fd00:94::/122"]);
    wait_for(
        "our block in FRR",
        T,
        || ours().contains("fd80:42::80") && ours().contains("fe80::"),
        ours,
    );
    // zebra programs it through our link-local address, on the session's interface.
    let our_ll = our_link_local(&fab.nodes[0]);
    wait_for(
        "our block in FRR's kernel via our link-local address",
        T,
        || {
            fab.nodes[1]
                .ip(&["-6", "route", "show", "fd00:94::/122"])
                .contains(&format!("via {our_ll} dev eth0"))
        },
        || fab.nodes[1].ip(&["-6", "route"]),
    );
    // An IPv6-only session: no IPv4 route either way.
    assert!(!frr.vtysh(&["show bgp ipv4 unicast"]).contains("10.233.94.0"));
    assert!(brindle.routes().keys().all(|p| p.addr().is_ipv6()));
}

fn our_link_local(ns: &brindle_testkit::Netns) -> Ipv6Addr {
    let out = ns.ip(&["-6", "-o", "addr", "show", "dev", "eth0", "scope", "link"]);
    out.split_whitespace()
        .skip_while(|w| *w != "inet6")
        .nth(1)
        .and_then(|a| a.split('/').next())
        .and_then(|a| a.parse().ok())
        .unwrap_or_else(|| panic!("no link-local address: {out}"))
}

const KEPT6: &str = "fd00:94::/122";
const DROPPED6: &str = "fd00:95::/122";

fn testd_v6_args<'a>(originate: &[&'a str], restarting: bool) -> Vec<&'a str> {
    // fd80:42::81 > fd80:42::80 as strings: passive, as Calico's mesh rule has it.
    let mut a = vec![
        "--router-id",
        ME,
        "--as",
        "64512",
        "--node-v6",
        ME6,
        "--listen",
        "[::]:179",
        "--peer",
        "fd80:42::81,passive,hold=9,fast,mesh",
    ];
    for p in originate {
        a.extend(["--originate", p]);
    }
    if restarting {
        a.extend(["--restarting", "--deferral-s", "60"]);
    }
    a
}

/// The speaker process is killed (SIGKILL) and started again as a restarting speaker: BIRD 2
/// keeps its IPv6 routes in the kernel throughout (sampled every 10 ms), sweeps the one no
/// longer announced after our IPv6 End-of-RIB, and the restarted speaker converges on BIRD's.
#[test]
fn bird2_ipv6_graceful_restart() {
    let fab = Fabric::new(2);
    let bird = Bird::with_config(
        &fab.nodes[1],
        &format!(
            "router id {THEM};
protocol device {{ scan time 10; }}
protocol direct {{ ipv6; interface \"eth0\"; }}
protocol kernel {{ ipv6 {{ import none; export where source = RTS_BGP; }}; }}
protocol static own6 {{ ipv6; route fd00:87::/122 blackhole; }}
protocol bgp Mesh_fd80_42__80 {{
  local {THEM6} as 64512; neighbor {ME6} as 64512;
  connect delay time 1; connect retry time 1; error wait time 1, 5; hold time 9;
  graceful restart on;
  ipv6 {{ import all; export where proto = \"own6\"; next hop self; }};
}}
"
        ),
    );
    let kernel = KernelWatch::start_family(&fab.nodes[1], "-6");
    let mut testd = Testd::start(&fab.nodes[0], &testd_v6_args(&[KEPT6, DROPPED6], false));
    let proto = || bird.birdc("show protocols all Mesh_fd80_42__80");
    let case = RestartCase {
        kept: KEPT6,
        dropped: DROPPED6,
        restart_args: &testd_v6_args(&[KEPT6], true),
        theirs: "fd00:87::/122",
        their_next_hop: THEM6,
    };
    case.run(&mut testd, &kernel, &|| proto() + &bird.birdc("show route"));
    assert!(proto().contains("Established"), "{}", proto());
}

/// Calico's dual-stack route reflection between Brindle speakers: a reflector with an IPv4
/// and an IPv6 session to each of two clients (one per family, as `bird` and `bird6` peer).
/// Each client learns the other's IPv4 block over its IPv4 session and its IPv6 block over
/// its IPv6 session, next hops unchanged (RFC 4456), and nothing twice: one family per session.
#[test]
fn brindle_dual_stack_route_reflection() {
    let fab = Fabric::new(3);
    let v6 = |i: usize| format!("fd80:42::{}", 80 + i);
    let v4 = |i: usize| Fabric::addr(i).to_string();
    let mut cfg = SpeakerConfig::new("172.20.42.80".parse().unwrap(), AS);
    cfg.node_v6 = Some(v6(0).parse().unwrap());
    cfg.listen
        .push(std::net::SocketAddr::from((Ipv6Addr::UNSPECIFIED, BGP_PORT)));
    cfg.cluster_id = Some("10.255.0.1".parse().unwrap());
    let rr = BrindleNode::start_with(&fab.nodes[0], cfg);
    let client = |i: usize| PeerConfig {
        rr_client: true,
        peer_type: PeerType::Node,
        ..peer(&v4(i), false, None)
    };
    let client6 = |i: usize| PeerConfig {
        rr_client: true,
        peer_type: PeerType::Node,
        ..peer(&v6(i), false, None)
    };
    rr.set_peers(vec![client(1), client6(1), client(2), client6(2)]);
    let clients: Vec<BrindleNode> = (1..3)
        .map(|i| {
            let c = BrindleNode::start_dual(&fab.nodes[i], &v4(i), &v6(i));
            c.set_peers(vec![
                PeerConfig {
                    peer_type: PeerType::Node,
                    ..peer(&v4(0), false, None)
                },
                PeerConfig {
                    peer_type: PeerType::Node,
                    ..peer(&v6(0), false, None)
                },
            ]);
            c.originate(&[
                &format!("10.233.{}.0/26", 100 + i),
                &format!("fd00:{}::/122", 100 + i),
            ]);
            c
        })
        .collect();
    for (k, c) in clients.iter().enumerate() {
        let other = 2 - k;
        let (b4, b6) = (
            format!("10.233.{}.0/26", 100 + other),
            format!("fd00:{}::/122", 100 + other),
        );
        let dump = || format!("{}\n{}", c.dump(), rr.dump());
        wait_for(
            "the other client's blocks, reflected",
            T,
            || {
                let r = c.routes();
                r.get(&net(&b4))
                    .is_some_and(|r| (r.next_hop, r.peer) == (ip(&v4(other)), ip(&v4(0))))
                    && r.get(&net(&b6))
                        .is_some_and(|r| (r.next_hop, r.peer) == (ip(&v6(other)), ip(&v6(0))))
            },
            dump,
        );
        assert_eq!(c.peer_status(&v4(0)).routes_imported, 1, "{}", dump());
        assert_eq!(c.peer_status(&v6(0)).routes_imported, 1, "{}", dump());
        assert_eq!(c.peer_status(&v6(0)).name, "Node_fd80_42__80");
    }
    let st = rr.status();
    assert!(st.iter().all(|p| p.routes_imported == 1), "{st:#?}");
}
