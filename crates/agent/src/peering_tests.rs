//! One test per confd rule (confd's `pkg/backends/calico/client.go`, `bird.cfg.template`; Calico's
//! BGPConfiguration, BGPPeer and Node resources): route reflection through selectors, mesh
//! exclusion, reverse peerings, passive, next hop, per-session options, listen ports, service
//! advertisement, export policy, and the speaker's peer list with passwords from files.

use std::net::IpAddr;

use brindle_bgp_speaker::NextHopMode;
use serde_json::{Value, json};

use crate::bgp::{Secrets, peer_configs, speaker_config};
use crate::cache::Cache;
use crate::calc::{DesiredBgp, DesiredPeer, PeerKind, compute};
use crate::calc_tests::settings;

const RES: &str = "/calico/resources/v3/projectcalico.org";

fn node(name: &str, ip: &str, bgp: Value, labels: Value) -> (String, Value) {
    let mut b = json!({"ipv4Address": format!("{ip}/24")});
    if let (Some(o), Some(extra)) = (b.as_object_mut(), bgp.as_object()) {
        o.extend(extra.clone());
    }
    (
        format!("{RES}/nodes/{name}"),
        json!({"kind":"Node","metadata":{"name":name,"labels":labels},"spec":{"bgp":b}}),
    )
}

fn peer(name: &str, spec: Value) -> (String, Value) {
    (
        format!("{RES}/bgppeers/{name}"),
        json!({"kind":"BGPPeer","metadata":{"name":name},"spec":spec}),
    )
}

fn bgpconfig(name: &str, spec: Value) -> (String, Value) {
    (
        format!("{RES}/bgpconfigurations/{name}"),
        json!({"kind":"BGPConfiguration","metadata":{"name":name},"spec":spec}),
    )
}

fn pool(name: &str, cidr: &str, extra: Value) -> (String, Value) {
    let mut spec = json!({"cidr": cidr, "ipipMode": "Always"});
    if let (Some(o), Some(e)) = (spec.as_object_mut(), extra.as_object()) {
        o.extend(e.clone());
    }
    (
        format!("{RES}/ippools/{name}"),
        json!({"kind":"IPPool","metadata":{"name":name},"spec":spec}),
    )
}

fn cache(objs: Vec<(String, Value)>) -> Cache {
    let mut c = Cache::default();
    for (k, v) in objs {
        assert!(
            c.apply(&k, Some(&serde_json::to_vec(&v).unwrap())).is_some(),
            "{k} not taken"
        );
    }
    c
}

fn bgp(c: &Cache, me: &str) -> DesiredBgp {
    compute(c, me, &[], &settings()).bgp.expect("bgp")
}

fn ips(b: &DesiredBgp) -> Vec<String> {
    b.peers.iter().map(|p| p.addr.to_string()).collect()
}

fn get<'a>(b: &'a DesiredBgp, ip: &str) -> &'a DesiredPeer {
    let ip: IpAddr = ip.parse().unwrap();
    b.peers
        .iter()
        .find(|p| p.addr == ip)
        .unwrap_or_else(|| panic!("no peer {ip} in {:?}", ips(b)))
}

/// Four nodes; n1 and n2 are reflectors of cluster 244.0.0.1 labelled `rr=true`; every node
/// peers with the reflectors; the mesh is off (Calico's route reflector how-to).
fn rr_cluster(mesh: bool) -> Cache {
    let rr = json!({"routeReflectorClusterID": "244.0.0.1"});
    cache(vec![
        node("n1", "10.0.0.1", rr.clone(), json!({"rr": "true"})),
        node("n2", "10.0.0.2", rr, json!({"rr": "true"})),
        node("n3", "10.0.0.3", json!({}), json!({})),
        node("n4", "10.0.0.4", json!({}), json!({})),
        peer(
            "peer-with-rrs",
            json!({"nodeSelector": "all()", "peerSelector": "rr == 'true'"}),
        ),
        bgpconfig("default", json!({"nodeToNodeMeshEnabled": mesh})),
    ])
}

#[test]
fn clients_peer_only_with_the_reflectors() {
    let c = rr_cluster(false);
    let b = bgp(&c, "n3");
    assert_eq!(ips(&b), ["10.0.0.1", "10.0.0.2"]);
    assert_eq!(b.cluster_id, None);
    for p in &b.peers {
        // nodeSelector peerings are node-specific (BIRD `Node_…`), active on both sides.
        assert_eq!(p.kind, PeerKind::Node);
        assert!(!p.passive && !p.rr_client);
        assert_eq!(p.source.as_deref(), Some("peer-with-rrs"));
    }
}

#[test]
fn reflectors_peer_back_with_every_node_and_make_clients_of_other_clusters() {
    let c = rr_cluster(false);
    let b = bgp(&c, "n1");
    assert_eq!(b.cluster_id, Some("244.0.0.1".parse().unwrap()));
    // n2 from the BGPPeer itself; n3, n4 from the automatic reverse peering.
    assert_eq!(ips(&b), ["10.0.0.2", "10.0.0.3", "10.0.0.4"]);
    // Same cluster: not a client. Others: `rr client; rr cluster id 244.0.0.1`.
    assert!(!get(&b, "10.0.0.2").rr_client);
    assert!(get(&b, "10.0.0.3").rr_client && get(&b, "10.0.0.4").rr_client);
}

#[test]
fn reflectors_of_different_clusters_are_each_others_clients() {
    let mut c = rr_cluster(false);
    let (k, v) = node(
        "n2",
        "10.0.0.2",
        json!({"routeReflectorClusterID": "244.0.0.2"}),
        json!({"rr": "true"}),
    );
    c.apply(&k, Some(&serde_json::to_vec(&v).unwrap()));
    assert!(get(&bgp(&c, "n1"), "10.0.0.2").rr_client);
    assert!(get(&bgp(&c, "n2"), "10.0.0.1").rr_client);
}

#[test]
fn reflectors_stay_out_of_the_mesh() {
    let c = rr_cluster(true);
    let b = bgp(&c, "n3");
    assert_eq!(get(&b, "10.0.0.4").kind, PeerKind::Mesh);
    assert_eq!(get(&b, "10.0.0.1").kind, PeerKind::Node);
    // A reflector has no mesh sessions even with the mesh on.
    let r = bgp(&c, "n1");
    assert!(r.peers.iter().all(|p| p.kind != PeerKind::Mesh));
}

#[test]
fn reverse_peering_follows_peer_ip_unless_manual() {
    let mut c = cache(vec![
        node("n1", "10.0.0.1", json!({}), json!({})),
        node("n2", "10.0.0.2", json!({}), json!({})),
        bgpconfig("default", json!({"nodeToNodeMeshEnabled": false})),
        peer(
            "n1-to-n2",
            json!({"node": "n1", "peerIP": "10.0.0.2", "asNumber": 64512}),
        ),
    ]);
    let p = get(&bgp(&c, "n2"), "10.0.0.1").clone();
    assert_eq!(p.kind, PeerKind::Node);
    assert_eq!(p.asn, 64512);
    let (k, v) = peer(
        "n1-to-n2",
        json!({"node": "n1", "peerIP": "10.0.0.2", "asNumber": 64512, "reversePeering": "Manual"}),
    );
    c.apply(&k, Some(&serde_json::to_vec(&v).unwrap()));
    assert!(bgp(&c, "n2").peers.is_empty());
    // A peerIP at another AS than the node's is not that node: no reverse peering.
    let (k, v) = peer(
        "n1-to-n2",
        json!({"node": "n1", "peerIP": "10.0.0.2", "asNumber": 65000}),
    );
    c.apply(&k, Some(&serde_json::to_vec(&v).unwrap()));
    assert!(bgp(&c, "n2").peers.is_empty());
    assert_eq!(get(&bgp(&c, "n1"), "10.0.0.2").asn, 65000);
}

#[test]
fn passive_only_for_global_peerings_to_calico_nodes_with_greater_addresses() {
    let c = cache(vec![
        node("n1", "10.0.0.1", json!({}), json!({})),
        node("n2", "10.0.0.9", json!({}), json!({})),
        node("n3", "10.0.0.10", json!({}), json!({})),
        bgpconfig("default", json!({"nodeToNodeMeshEnabled": false})),
        peer("to-n2", json!({"peerIP": "10.0.0.9", "asNumber": 64512})),
        peer(
            "to-n3",
            json!({"node": "n2", "peerIP": "10.0.0.10", "asNumber": 64512}),
        ),
        peer("tor", json!({"peerIP": "10.0.0.254", "asNumber": 65001})),
    ]);
    let b = bgp(&c, "n1");
    // "10.0.0.9" > "10.0.0.1" as strings: n1 waits for n2.
    assert!(get(&b, "10.0.0.9").passive);
    assert!(!get(&b, "10.0.0.254").passive, "not a Calico node");
    let b2 = bgp(&c, "n2");
    // "10.0.0.1" < "10.0.0.9": n2 connects to n1.
    assert!(!get(&b2, "10.0.0.1").passive);
    // Node-specific: both sides active, even though "10.0.0.10" < "10.0.0.9".
    assert_eq!(get(&b2, "10.0.0.10").kind, PeerKind::Node);
    assert!(!get(&b2, "10.0.0.10").passive);
}

#[test]
fn global_peering_wins_over_node_specific_to_the_same_address() {
    let c = cache(vec![
        node("n1", "10.0.0.1", json!({}), json!({})),
        peer(
            "a-node",
            json!({"node": "n1", "peerIP": "10.0.0.254", "asNumber": 65001}),
        ),
        peer("b-global", json!({"peerIP": "10.0.0.254", "asNumber": 65002})),
    ]);
    let p = get(&bgp(&c, "n1"), "10.0.0.254").clone();
    assert_eq!((p.kind, p.asn), (PeerKind::Global, 65002));
    assert_eq!(p.source.as_deref(), Some("b-global"));
}

#[test]
fn next_hop_keep_only_on_ebgp_and_next_hop_mode_wins() {
    let c = cache(vec![
        node("n1", "10.0.0.1", json!({}), json!({})),
        peer(
            "ebgp",
            json!({"peerIP": "10.0.0.250", "asNumber": 65001, "keepOriginalNextHop": true}),
        ),
        peer(
            "ibgp",
            json!({"peerIP": "10.0.0.251", "asNumber": 64512, "keepOriginalNextHop": true}),
        ),
        peer(
            "self",
            json!({"peerIP": "10.0.0.252", "asNumber": 65001, "keepOriginalNextHop": true, "nextHopMode": "Self"}),
        ),
        peer(
            "keep",
            json!({"peerIP": "10.0.0.253", "asNumber": 64512, "nextHopMode": "Keep"}),
        ),
        // localASNumber makes a peer in our AS an eBGP one.
        peer(
            "local-as",
            json!({"peerIP": "10.0.0.254", "asNumber": 64512, "localASNumber": 65100, "keepOriginalNextHop": true}),
        ),
    ]);
    let b = bgp(&c, "n1");
    assert_eq!(get(&b, "10.0.0.250").next_hop, NextHopMode::Keep);
    assert_eq!(get(&b, "10.0.0.251").next_hop, NextHopMode::Auto);
    assert_eq!(get(&b, "10.0.0.252").next_hop, NextHopMode::SetSelf);
    assert_eq!(get(&b, "10.0.0.253").next_hop, NextHopMode::Keep);
    let l = get(&b, "10.0.0.254");
    assert_eq!((l.local_as, l.next_hop), (Some(65100), NextHopMode::Keep));
}

#[test]
fn rr_client_needs_ibgp_on_the_session_local_as() {
    let c = cache(vec![
        node(
            "n1",
            "10.0.0.1",
            json!({"routeReflectorClusterID": "1.1.1.1"}),
            json!({}),
        ),
        peer("ibgp", json!({"peerIP": "10.0.0.250", "asNumber": 64512})),
        peer("ebgp", json!({"peerIP": "10.0.0.251", "asNumber": 65001})),
        peer(
            "local",
            json!({"peerIP": "10.0.0.252", "asNumber": 65001, "localASNumber": 65001}),
        ),
    ]);
    let b = bgp(&c, "n1");
    assert!(get(&b, "10.0.0.250").rr_client);
    assert!(!get(&b, "10.0.0.251").rr_client);
    assert!(get(&b, "10.0.0.252").rr_client);
}

#[test]
fn bgppeer_options_reach_the_session() {
    let c = cache(vec![
        node("n1", "10.0.0.1", json!({}), json!({})),
        node("n2", "10.0.0.2", json!({}), json!({"peer": "yes"})),
        bgpconfig("default", json!({"nodeToNodeMeshEnabled": false})),
        peer(
            "tor",
            json!({"peerIP": "10.0.0.254:1179", "asNumber": 65001, "password": {"secretKeyRef": {"name": "bgp", "key": "tor"}},
                   "ttlSecurity": 1, "keepaliveTime": "20s", "maxRestartTime": "1m30.6s", "sourceAddress": "None",
                   "numAllowedLocalASNumbers": 2, "localASNumber": 65010}),
        ),
        // peerSelector peerings take the session options but not localASNumber nor
        // numAllowedLocalASNumbers (confd's nodeAsBGPPeers).
        peer(
            "sel",
            json!({"node": "n1", "peerSelector": "peer == 'yes'", "ttlSecurity": 2, "keepaliveTime": "10s",
                   "localASNumber": 65010, "numAllowedLocalASNumbers": 2}),
        ),
    ]);
    let b = bgp(&c, "n1");
    let t = get(&b, "10.0.0.254");
    assert_eq!(t.port, Some(1179));
    let pw = t.password.as_ref().unwrap();
    assert_eq!((pw.name.as_str(), pw.key.as_str()), ("bgp", "tor"));
    assert_eq!(t.ttl_security, Some(1));
    assert_eq!(t.keepalive, Some(20));
    assert_eq!(t.restart_time, Some(91));
    assert!(!t.use_node_ip);
    assert_eq!((t.allow_local_as, t.local_as), (2, Some(65010)));
    let s = get(&b, "10.0.0.2");
    assert_eq!((s.ttl_security, s.keepalive), (Some(2), Some(10)));
    assert_eq!((s.allow_local_as, s.local_as), (0, None));
    assert!(s.use_node_ip);
}

#[test]
fn listen_ports_per_node_and_global() {
    let mut c = cache(vec![
        node("n1", "10.0.0.1", json!({}), json!({})),
        node("n2", "10.0.0.2", json!({}), json!({})),
        node("n3", "10.0.0.3", json!({}), json!({})),
        bgpconfig("default", json!({"listenPort": 1790})),
        bgpconfig("node.n2", json!({"listenPort": 1791})),
    ]);
    let b = bgp(&c, "n1");
    assert_eq!(b.listen_port, Some(1790));
    assert_eq!(get(&b, "10.0.0.2").port, Some(1791));
    assert_eq!(get(&b, "10.0.0.3").port, Some(1790));
    assert_eq!(bgp(&c, "n2").listen_port, Some(1791));
    c.apply(&format!("{RES}/bgpconfigurations/default"), None);
    assert_eq!(bgp(&c, "n1").listen_port, None);
    assert_eq!(get(&bgp(&c, "n1"), "10.0.0.3").port, None);
}

#[test]
fn mesh_password_and_restart_time() {
    let c = cache(vec![
        node("n1", "10.0.0.1", json!({}), json!({})),
        node("n2", "10.0.0.2", json!({"asNumber": 65002}), json!({})),
        bgpconfig(
            "default",
            json!({"nodeMeshPassword": {"secretKeyRef": {"name": "mesh", "key": "pw"}}, "nodeMeshMaxRestartTime": "5m"}),
        ),
    ]);
    let p = get(&bgp(&c, "n1"), "10.0.0.2").clone();
    assert_eq!(p.kind, PeerKind::Mesh);
    assert_eq!(p.asn, 65002, "the node's own AS");
    assert_eq!(p.password.unwrap().name, "mesh");
    assert_eq!(p.restart_time, Some(300));
}

#[test]
fn services_are_originated_not_installed() {
    let mut c = cache(vec![
        node("n1", "10.0.0.1", json!({}), json!({})),
        pool("p", "10.244.0.0/16", json!({})),
        pool("quiet", "10.245.0.0/16", json!({"disableBGPExport": true})),
        bgpconfig(
            "default",
            json!({"serviceClusterIPs": [{"cidr": "10.96.0.0/12"}, {"cidr": "10.97.0.1/32"}, {"cidr": "fd00::/108"}],
                   "serviceExternalIPs": [{"cidr": "192.0.2.0/24"}, {"cidr": "192.0.2.7/32"}],
                   "serviceLoadBalancerIPs": [{"cidr": "198.51.100.0/24"}]}),
        ),
    ]);
    let learned = [
        ("10.96.0.0/12".parse().unwrap(), "10.0.0.2".parse().unwrap()),
        ("203.0.113.0/24".parse().unwrap(), "10.0.0.254".parse().unwrap()),
        // Next hop off the node's subnet: BIRD would resolve it recursively; not installed.
        ("203.0.114.0/24".parse().unwrap(), "172.16.0.1".parse().unwrap()),
    ];
    let d = compute(&c, "n1", &learned, &settings());
    let b = d.bgp.unwrap();
    let orig: Vec<String> = b.originate.iter().map(|n| n.to_string()).collect();
    assert_eq!(
        orig,
        ["10.96.0.0/12", "10.97.0.1/32", "192.0.2.0/24", "198.51.100.0/24"]
    );
    assert_eq!(b.export_pools, ["10.244.0.0/16".parse::<ipnet::IpNet>().unwrap()]);
    let remote: Vec<String> = d
        .dataplane
        .unwrap()
        .remote_blocks
        .iter()
        .map(|r| format!("{} via {}", r.dst, r.node_ip))
        .collect();
    assert_eq!(remote, ["203.0.113.0/24 via 10.0.0.254"]);
    // A node that opts out of load balancing advertises no service.
    let (k, v) = node(
        "n1",
        "10.0.0.1",
        json!({}),
        json!({"node.kubernetes.io/exclude-from-external-load-balancers": "true"}),
    );
    c.apply(&k, Some(&serde_json::to_vec(&v).unwrap()));
    assert!(bgp(&c, "n1").originate.is_empty());
}

#[test]
fn invalid_cluster_id_is_not_a_reflector_but_leaves_the_mesh() {
    let c = cache(vec![
        node(
            "n1",
            "10.0.0.1",
            json!({"routeReflectorClusterID": "rack-1"}),
            json!({}),
        ),
        node("n2", "10.0.0.2", json!({}), json!({})),
        peer("ibgp", json!({"peerIP": "10.0.0.250", "asNumber": 64512})),
    ]);
    let b = bgp(&c, "n1");
    assert_eq!(b.cluster_id, None);
    assert_eq!(ips(&b), ["10.0.0.250"]);
    assert!(!b.peers[0].rr_client);
}

#[test]
fn speaker_gets_every_option_and_passwords_from_files() {
    let c = cache(vec![
        node(
            "n1",
            "10.0.0.1",
            json!({"routeReflectorClusterID": "244.0.0.1"}),
            json!({}),
        ),
        pool("p", "10.244.0.0/16", json!({})),
        peer(
            "tor",
            json!({"peerIP": "10.0.0.254", "asNumber": 65001, "password": {"secretKeyRef": {"name": "bgp", "key": "tor"}},
                   "ttlSecurity": 1, "keepaliveTime": "20s", "maxRestartTime": "90s", "sourceAddress": "None",
                   "nextHopMode": "Keep", "numAllowedLocalASNumbers": 1}),
        ),
        peer("client", json!({"peerIP": "10.0.0.250", "asNumber": 64512})),
        peer(
            "lost",
            json!({"peerIP": "10.0.0.251", "asNumber": 64512, "password": {"secretKeyRef": {"name": "bgp", "key": "missing"}}}),
        ),
        // The speaker refuses a keepalive above a third of the hold time: left out.
        peer(
            "bad",
            json!({"peerIP": "10.0.0.252", "asNumber": 65001, "keepaliveTime": "100s"}),
        ),
    ]);
    let dir = brindle_testkit::TempDir::new("secrets");
    std::fs::create_dir_all(dir.path().join("bgp")).unwrap();
    std::fs::write(dir.path().join("bgp/tor"), "s3cret\n").unwrap();
    let b = bgp(&c, "n1");
    let spk = speaker_config(&b, 179);
    assert_eq!(spk.cluster_id, Some("244.0.0.1".parse().unwrap()));
    assert_eq!(spk.export.learned_to_ebgp, b.export_pools);
    let cfgs = peer_configs(&b, 179, &Secrets::new(dir.path()));
    let addrs: Vec<String> = cfgs.iter().map(|c| c.address.to_string()).collect();
    assert_eq!(addrs, ["10.0.0.250", "10.0.0.251", "10.0.0.254"]);
    let tor = &cfgs[2];
    assert_eq!(tor.password.as_deref(), Some("s3cret"));
    assert_eq!((tor.ttl_security, tor.keepalive), (Some(1), Some(20)));
    assert_eq!(tor.graceful_restart_time, Some(90));
    assert_eq!((tor.source_address, tor.use_node_ip), (None, false));
    assert_eq!(
        (tor.next_hop, tor.allow_local_as, tor.rr_client),
        (NextHopMode::Keep, 1, false)
    );
    let client = &cfgs[0];
    assert!(client.rr_client);
    assert_eq!(client.source_address, Some("10.0.0.1".parse().unwrap()));
    assert_eq!(client.graceful_restart_time, Some(120));
    assert_eq!(cfgs[1].password, None, "missing secret: no password, logged");
}

#[test]
fn secrets_refuse_paths_outside_the_directory() {
    let s = Secrets::new("/nonexistent");
    let r = |n: &str, k: &str| crate::peering::SecretRef {
        name: n.into(),
        key: k.into(),
    };
    assert!(s.read(&r("..", "passwd")).unwrap_err().contains("not a valid"));
    assert!(s.read(&r("a", "b/c")).unwrap_err().contains("not a valid"));
    assert!(s.read(&r("a", "b")).unwrap_err().contains("/nonexistent/a/b"));
}

/// A dual-stack node: `ip` (v4) and `ip6` addresses, each /64 or /24.
fn node46(name: &str, ip: &str, ip6: &str, bgp: Value, labels: Value) -> (String, Value) {
    let (k, mut v) = node(name, ip, bgp, labels);
    v["spec"]["bgp"]["ipv6Address"] = json!(format!("{ip6}/64"));
    (k, v)
}

/// Calico's `bird6` between the nodes' IPv6 addresses, as `bird` between their IPv4 ones:
/// route reflection through selectors (reflectors' v6 addresses, clients of other clusters),
/// v6 `peerIP`s with a port and a password only on the v6 side, v4 `peerIP`s only on the v4
/// side, the mesh per family.
#[test]
fn ipv6_sessions_mirror_the_ipv4_rules() {
    let rr = json!({"routeReflectorClusterID": "244.0.0.1"});
    let c = cache(vec![
        node46("n1", "10.0.0.1", "fd00::1", rr.clone(), json!({"rr": "true"})),
        node46("n2", "10.0.0.2", "fd00::2", json!({}), json!({})),
        node46("n3", "10.0.0.3", "fd00::3", json!({}), json!({})),
        peer(
            "peer-with-rrs",
            json!({"nodeSelector": "all()", "peerSelector": "rr == 'true'"}),
        ),
        peer(
            "tor6",
            json!({"peerIP": "[fd00::fe]:1790", "asNumber": 65001,
                   "password": {"secretKeyRef": {"name": "bgp", "key": "tor6"}}}),
        ),
        peer("tor4", json!({"peerIP": "10.0.0.254", "asNumber": 65001})),
        bgpconfig("default", json!({"nodeToNodeMeshEnabled": false})),
    ]);
    // A client: the reflector of each family, and both ToRs, each on its own family.
    assert_eq!(
        ips(&bgp(&c, "n2")),
        ["10.0.0.1", "10.0.0.254", "fd00::1", "fd00::fe"]
    );
    // The reflector: every client of each family, as rr clients.
    let b = bgp(&c, "n1");
    assert_eq!(
        ips(&b),
        [
            "10.0.0.2",
            "10.0.0.3",
            "10.0.0.254",
            "fd00::2",
            "fd00::3",
            "fd00::fe"
        ]
    );
    assert!(get(&b, "fd00::2").rr_client && get(&b, "10.0.0.2").rr_client);
    let tor6 = get(&b, "fd00::fe");
    assert_eq!(
        (tor6.port, tor6.asn, tor6.kind),
        (Some(1790), 65001, PeerKind::Global)
    );
    assert!(tor6.password.is_some());
    // The speaker's view: v6 sessions from the node's v6 address, [::] listened on too.
    let dir = brindle_testkit::TempDir::new("secrets");
    std::fs::create_dir_all(dir.path().join("bgp")).unwrap();
    std::fs::write(dir.path().join("bgp/tor6"), "six\n").unwrap();
    let cfgs = peer_configs(&b, 179, &Secrets::new(dir.path()));
    let tor6 = cfgs.iter().find(|p| p.address.to_string() == "fd00::fe").unwrap();
    assert_eq!(tor6.port, 1790);
    assert_eq!(tor6.source_address, Some("fd00::1".parse().unwrap()));
    assert_eq!(tor6.password.as_deref(), Some("six"));
    let client = cfgs.iter().find(|p| p.address.to_string() == "fd00::2").unwrap();
    assert_eq!(client.source_address, Some("fd00::1".parse().unwrap()));
    let spk = speaker_config(&b, 179);
    let listen: Vec<String> = spk.listen.iter().map(|a| a.to_string()).collect();
    assert_eq!(listen, ["0.0.0.0:179", "[::]:179"]);
    assert_eq!(
        (spk.node_v4, spk.node_v6),
        (
            Some("10.0.0.1".parse().unwrap()),
            Some("fd00::1".parse().unwrap())
        )
    );
}

/// The mesh per family (passive by each family's address order), v6-only nodes in the v6
/// mesh only, `bindMode: NodeIP` listening on both node addresses, and a v6-only node's
/// speaker listening on [::] only.
#[test]
fn ipv6_mesh_bind_mode_and_v6_only_nodes() {
    let (k, mut v6only) = node("n3", "10.0.0.3", json!({}), json!({}));
    v6only["spec"]["bgp"] = json!({"ipv6Address": "fd00::3/64"});
    let mut objs = vec![
        node46("n1", "10.0.0.1", "fd00::1", json!({}), json!({})),
        node46("n2", "10.0.0.2", "fd00::2", json!({}), json!({})),
        (k, v6only),
    ];
    let c = cache(objs.clone());
    let b = bgp(&c, "n1");
    assert_eq!(ips(&b), ["10.0.0.2", "fd00::2", "fd00::3"]);
    assert!(get(&b, "10.0.0.2").passive && get(&b, "fd00::2").passive);
    assert_eq!(get(&b, "fd00::3").kind, PeerKind::Mesh);
    let b3 = bgp(&c, "n3");
    assert_eq!(ips(&b3), ["fd00::1", "fd00::2"]);
    assert!(!get(&b3, "fd00::1").passive);
    assert_eq!(b3.node_v4, None);
    let spk = speaker_config(&b3, 179);
    let listen: Vec<String> = spk.listen.iter().map(|a| a.to_string()).collect();
    assert_eq!(listen, ["[::]:179"]);
    objs.push(bgpconfig("default", json!({"bindMode": "NodeIP"})));
    let spk = speaker_config(&bgp(&cache(objs), "n1"), 179);
    let listen: Vec<String> = spk.listen.iter().map(|a| a.to_string()).collect();
    assert_eq!(listen, ["10.0.0.1:179", "[fd00::1]:179"]);
}

/// `BGPPeer.filters` reach the session (existing ones, in order; a missing one left out), and
/// `prefixAdvertisements` put their communities on the originated blocks of either family
/// (the node's own BGPConfiguration wins over the global one).
#[test]
fn filters_and_communities_reach_the_speaker() {
    let mut objs = vec![
        node46("n1", "10.0.0.1", "fd00::1", json!({}), json!({})),
        pool("p4", "10.244.0.0/16", json!({})),
        pool("p6", "fd00:244::/64", json!({"ipipMode": "Never"})),
        (
            "/calico/ipam/v2/host/n1/ipv4/block/10.244.1.0-26".into(),
            json!({"state": "confirmed", "deleted": false}),
        ),
        (
            "/calico/ipam/v2/host/n1/ipv6/block/fd00:244::-122".into(),
            json!({"state": "confirmed", "deleted": false}),
        ),
        (
            format!("{RES}/bgpfilters/no-ten"),
            json!({"kind": "BGPFilter", "metadata": {"name": "no-ten"},
                   "spec": {"exportV4": [{"action": "Reject", "matchOperator": "In", "cidr": "10.0.0.0/8"}],
                            "importV6": [{"action": "Accept", "matchOperator": "Equal", "cidr": "fd00:99::/64"}]}}),
        ),
        peer(
            "tor6",
            json!({"peerIP": "fd00::fe", "asNumber": 65001, "filters": ["missing", "no-ten"]}),
        ),
        bgpconfig(
            "default",
            json!({"communities": [{"name": "pods", "value": "65001:100"}],
                   "prefixAdvertisements": [{"cidr": "10.244.0.0/16", "communities": ["pods"]},
                                            {"cidr": "fd00:244::/64", "communities": ["65001:600", "64512:1:2"]}]}),
        ),
    ];
    let b = bgp(&cache(objs.clone()), "n1");
    let tor6 = get(&b, "fd00::fe");
    let names: Vec<&str> = tor6.filters.iter().map(|f| f.name.as_str()).collect();
    assert_eq!(names, ["no-ten"]);
    let cfgs = peer_configs(&b, 179, &Secrets::new("/nonexistent"));
    let tor6 = cfgs.iter().find(|p| p.address.to_string() == "fd00::fe").unwrap();
    assert_eq!(tor6.filters.len(), 1);
    assert_eq!(tor6.filters[0].import_v6.len(), 1);
    let shown = |b: &DesiredBgp| -> Vec<String> {
        crate::bgp::originated(b)
            .iter()
            .map(|o| {
                let c: Vec<String> = o.communities.iter().map(|c| c.to_string()).collect();
                format!("{} [{}]", o.prefix, c.join(" "))
            })
            .collect()
    };
    assert_eq!(
        shown(&b),
        [
            "10.244.1.0/26 [65001:100]",
            "fd00:244::/122 [65001:600 64512:1:2]"
        ]
    );
    objs.push(bgpconfig(
        "node.n1",
        json!({"prefixAdvertisements": [{"cidr": "fd00:244::/122", "communities": ["65001:7"]}]}),
    ));
    assert_eq!(
        shown(&bgp(&cache(objs), "n1")),
        ["10.244.1.0/26 []", "fd00:244::/122 [65001:7]"]
    );
}
