//! Every validation rule, through the public API: load YAML, validate, compare the message.

use brindle_model::resources::IPPool;
use brindle_model::{Resource, load_str, validate, validate_ippool_create, validate_ippool_update};

fn one(yaml: &str) -> Resource {
    let mut rs = load_str("t.yaml", yaml).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(rs.len(), 1);
    rs.remove(0)
}

fn pool(name: &str, spec: &str) -> Resource {
    one(&format!(
        "apiVersion: projectcalico.org/v3\nkind: IPPool\nmetadata:\n  name: {name}\nspec:\n{spec}"
    ))
}

fn pool_typed(name: &str, spec: &str) -> IPPool {
    match pool(name, spec) {
        Resource::IPPool(p) => p,
        _ => unreachable!(),
    }
}

/// The validation message, which must name the resource.
fn error_of(r: &Resource) -> String {
    let e = validate(r).expect_err("should be invalid");
    let s = e.to_string();
    assert!(s.starts_with(&format!("{}: ", r.identifier())), "{s}");
    s
}

fn assert_ok(r: &Resource) {
    if let Err(e) = validate(r) {
        panic!("unexpected: {e}");
    }
}

#[test]
fn seed_pool_is_valid() {
    assert_ok(&pool(
        "default-pool",
        "  cidr: 10.233.64.0/18\n  blockSize: 24\n  ipipMode: Always\n  natOutgoing: true\n",
    ));
    assert_ok(&pool("v6", "  cidr: fd00:10::/48\n  vxlanMode: CrossSubnet\n"));
}

#[test]
fn ippool_cidr_rules() {
    let cases = [
        (
            "  natOutgoing: true\n",
            "IPPool(p): error with field IPPool.Spec.CIDR (IPPool CIDR must be specified)",
        ),
        (
            "  cidr: 10.0.0.300/16\n",
            "IPPool(p): error with field IPPool.Spec.CIDR = '10.0.0.300/16' (IPPool CIDR must be a valid subnet)",
        ),
        (
            "  cidr: 10.233.64.1/18\n",
            "IPPool(p): error with field IPPool.Spec.CIDR = '10.233.64.1/18' (IPPool CIDR is not strictly masked)",
        ),
        (
            "  cidr: 169.254.0.0/16\n",
            "IPPool(p): error with field IPPool.Spec.CIDR = '169.254.0.0/16' (IPPool CIDR overlaps with IPv4 Link Local range 169.254.0.0/16)",
        ),
        (
            "  cidr: 169.0.0.0/8\n  blockSize: 26\n",
            "IPPool(p): error with field IPPool.Spec.CIDR = '169.0.0.0/8' (IPPool CIDR overlaps with IPv4 Link Local range 169.254.0.0/16)",
        ),
        (
            "  cidr: fe80::/64\n",
            "IPPool(p): error with field IPPool.Spec.CIDR = 'fe80::/64' (IPPool CIDR overlaps with IPv6 Link Local range fe80::/10)",
        ),
        (
            "  cidr: 10.0.0.0/28\n",
            "IPPool(p): error with field IPPool.Spec.CIDR = '10.0.0.0/28' (IP pool size is too small for use with Calico IPAM. It must be equal to or greater than the block size.)",
        ),
    ];
    for (spec, want) in cases {
        assert_eq!(error_of(&pool("p", spec)), want, "spec {spec:?}");
    }
    // A disabled pool may be smaller than a block.
    assert_ok(&pool("p", "  cidr: 10.0.0.0/28\n  disabled: true\n"));
}

#[test]
fn ippool_block_size_and_encapsulation() {
    let cases = [
        (
            "  cidr: 10.0.0.0/16\n  blockSize: 19\n",
            "IPPool.Spec.BlockSize = '19' (IPv4 block size must be between 20 and 32)",
        ),
        (
            "  cidr: 10.0.0.0/16\n  blockSize: 33\n",
            "IPPool.Spec.BlockSize = '33' (IPv4 block size must be between 20 and 32)",
        ),
        (
            "  cidr: fd00::/48\n  blockSize: 115\n",
            "IPPool.Spec.BlockSize = '115' (IPv6 block size must be between 116 and 128)",
        ),
        (
            "  cidr: fd00::/48\n  blockSize: 129\n",
            "IPPool.Spec.BlockSize = '129' (IPv6 block size must be between 116 and 128)",
        ),
        (
            "  cidr: 10.0.0.0/16\n  ipipMode: Always\n  vxlanMode: CrossSubnet\n",
            "IPPool.Spec.VXLANMode = 'CrossSubnet' (Cannot enable both VXLAN and IPIP on the same IPPool)",
        ),
        (
            "  cidr: fd00::/48\n  ipipMode: CrossSubnet\n",
            "IPPool.Spec.IPIPMode = 'CrossSubnet' (IPIP is not supported on an IPv6 IP pool)",
        ),
    ];
    for (spec, want) in cases {
        assert_eq!(
            error_of(&pool("p", spec)),
            format!("IPPool(p): error with field {want}"),
            "spec {spec:?}"
        );
    }
    assert_ok(&pool("p", "  cidr: 10.0.0.0/20\n  blockSize: 20\n"));
    assert_ok(&pool("p", "  cidr: 10.0.0.0/16\n  blockSize: 32\n"));
}

#[test]
fn ippool_selectors_uses_and_legacy_fields() {
    let e = error_of(&pool("p", "  cidr: 10.0.0.0/16\n  nodeSelector: \"role == \"\n"));
    assert_eq!(
        e,
        "IPPool(p): error with field IPPool.Spec.NodeSelector = 'role == ' (invalid selector: expected a quoted string, found end of selector)"
    );
    let e = error_of(&pool("p", "  cidr: 10.0.0.0/16\n  nodeSelector: global()\n"));
    assert!(
        e.contains("global() selector is not valid for IPPool nodeSelector - use all() instead"),
        "{e}"
    );
    let e = error_of(&pool(
        "p",
        "  cidr: 10.0.0.0/16\n  allowedUses: [LoadBalancer, Workload]\n  ipipMode: Always\n",
    ));
    assert!(e.contains("error with the following fields:"), "{e}");
    assert!(
        e.contains("LoadBalancer cannot be used at the same time as: Workload"),
        "{e}"
    );
    assert!(
        e.contains("Neither IPIPMode nor VXLANMode can be enabled on AllowedUses LoadBalancer IP pool"),
        "{e}"
    );
    let e = error_of(&pool(
        "p",
        "  cidr: 10.0.0.0/16\n  allowedUses: [Tunnel]\n  namespaceSelector: all()\n",
    ));
    assert!(e.contains("IPPool.Spec.NamespaceSelector"), "{e}");
    let e = error_of(&pool("p", "  cidr: 10.0.0.0/16\n  nat-outgoing: true\n"));
    assert!(e.contains("IPPool.Spec.NATOutgoingV1"), "{e}");
    let e = error_of(&pool("p", "  cidr: 10.0.0.0/16\n  ipip: {enabled: true}\n"));
    assert!(e.contains("IPPool.Spec.IPIP"), "{e}");
}

#[test]
fn ippool_overlap_on_create() {
    let existing = vec![
        pool_typed("default-pool", "  cidr: 10.233.64.0/18\n"),
        pool_typed("other", "  cidr: 192.168.0.0/16\n"),
    ];
    let new = pool_typed("p2", "  cidr: 10.233.100.0/24\n");
    let e = validate_ippool_create(&new, &existing).unwrap_err();
    assert_eq!(
        e.to_string(),
        "IPPool(p2): error with field IPPool.Spec.CIDR = '10.233.100.0/24' (IPPool(p2) CIDR overlaps with IPPool(default-pool) CIDR 10.233.64.0/18)"
    );
    let wider = pool_typed("p3", "  cidr: 10.0.0.0/8\n");
    assert!(
        validate_ippool_create(&wider, &existing).is_err(),
        "a wider pool overlaps too"
    );
    let fine = pool_typed("p4", "  cidr: 10.234.0.0/16\n");
    validate_ippool_create(&fine, &existing).unwrap();
    // The same name is not an overlap (re-creating is an "already exists" error elsewhere).
    validate_ippool_create(&existing[0], &existing).unwrap();
}

#[test]
fn ippool_update_rules() {
    let old = pool_typed("p", "  cidr: 10.0.0.0/16\n  blockSize: 24\n");
    let moved = pool_typed("p", "  cidr: 10.1.0.0/16\n  blockSize: 24\n");
    let e = validate_ippool_update(&old, &moved).unwrap_err().to_string();
    assert!(e.contains("IPPool CIDR cannot be modified"), "{e}");
    let resized = pool_typed("p", "  cidr: 10.0.0.0/16\n  blockSize: 26\n");
    let e = validate_ippool_update(&old, &resized).unwrap_err().to_string();
    assert!(
        e.contains("IPPool.Spec.BlockSize = '26' (IPPool BlockSize cannot be modified)"),
        "{e}"
    );
    let nat = pool_typed("p", "  cidr: 10.0.0.0/16\n  blockSize: 24\n  natOutgoing: true\n");
    validate_ippool_update(&old, &nat).unwrap();
    // Default block size and explicit 26 are the same.
    let a = pool_typed("p", "  cidr: 10.0.0.0/16\n");
    let b = pool_typed("p", "  cidr: 10.0.0.0/16\n  blockSize: 26\n");
    validate_ippool_update(&a, &b).unwrap();
}

fn peer(spec: &str) -> Resource {
    one(&format!(
        "apiVersion: projectcalico.org/v3\nkind: BGPPeer\nmetadata:\n  name: peer1\nspec:\n{spec}"
    ))
}

#[test]
fn bgppeer_rules() {
    assert_ok(&peer("  peerIP: 192.0.2.1\n  asNumber: 64513\n"));
    assert_ok(&peer(
        "  peerIP: \"[fd00::1]:1179\"\n  asNumber: 64513\n  node: node1\n",
    ));
    assert_ok(&peer(
        "  peerSelector: route-reflector == 'true'\n  nodeSelector: all()\n",
    ));
    let cases = [
        (
            "  peerIP: 192.0.2.1\n  node: n1\n  nodeSelector: all()\n",
            "BGPPeer.Spec.Node = 'n1' (Node field must be empty when NodeSelector is specified)",
        ),
        (
            "  peerIP: 192.0.2.1\n  peerSelector: all()\n",
            "BGPPeer.Spec.PeerIP = '192.0.2.1' (PeerIP field must be empty when PeerSelector is specified)",
        ),
        (
            "  peerSelector: all()\n  asNumber: 65000\n",
            "BGPPeer.Spec.ASNumber = '65000' (ASNumber field must be empty when PeerSelector is specified)",
        ),
        (
            "  peerIP: not-an-ip\n",
            "BGPPeer.Spec.PeerIP = 'not-an-ip' (PeerIP must be an IP address, IP:port or [IPv6]:port)",
        ),
        (
            "  peerSelector: \"has(\"\n",
            "BGPPeer.Spec.PeerSelector = 'has(' (invalid selector: expected identifier, found end)",
        ),
        (
            "  peerIP: 192.0.2.1\n  reachableBy: fd00::1\n",
            "BGPPeer.Spec.ReachableBy = 'fd00::1' (ReachableBy and PeerIP address family mismatched)",
        ),
        (
            "  asNumber: 65000\n",
            "BGPPeer.Spec.PeerIP (one of peerIP, peerSelector or localWorkloadSelector must be specified)",
        ),
        (
            "  peerIP: 192.0.2.1\n  keepOriginalNextHop: true\n  nextHopMode: Self\n",
            "BGPPeer.Spec.KeepOriginalNextHop = 'true' (The KeepOriginalNextHop field is deprecated. It must not be set to true when NextHopMode is configured.)",
        ),
    ];
    for (spec, want) in cases {
        let r = peer(spec);
        assert_eq!(
            error_of(&r),
            format!("BGPPeer(peer1): error with field {want}"),
            "spec {spec:?}"
        );
    }
}

#[test]
fn bgpconfiguration_rules() {
    let cfg = |spec: &str| {
        one(&format!(
            "apiVersion: projectcalico.org/v3\nkind: BGPConfiguration\nmetadata:\n  name: default\nspec:\n{spec}"
        ))
    };
    assert_ok(&cfg(
        "  logSeverityScreen: Info\n  nodeToNodeMeshEnabled: true\n  asNumber: 64512\n  serviceClusterIPs:\n  - cidr: 10.96.0.0/12\n",
    ));
    let e = error_of(&cfg("  logSeverityScreen: Loud\n"));
    assert!(
        e.contains("BGPConfiguration.Spec.LogSeverityScreen = 'Loud'"),
        "{e}"
    );
    let e = error_of(&cfg("  communities:\n  - name: c\n    value: 1:2:3:4\n"));
    assert!(
        e.contains("BGPConfiguration.Spec.Communities.Value = '1:2:3:4'"),
        "{e}"
    );
    let e = error_of(&cfg("  serviceClusterIPs:\n  - cidr: nope\n"));
    assert!(
        e.contains("BGPConfiguration.Spec.ServiceClusterIPs = 'nope' (is not a valid CIDR)"),
        "{e}"
    );
    let e = error_of(&cfg(
        "  nodeToNodeMeshEnabled: false\n  nodeMeshMaxRestartTime: 2m\n",
    ));
    assert!(
        e.contains("nodeMeshMaxRestartTime cannot be set when the node-to-node mesh is disabled"),
        "{e}"
    );
}

#[test]
fn node_felix_wep_rules() {
    let node = |spec: &str| {
        one(&format!(
            "apiVersion: projectcalico.org/v3\nkind: Node\nmetadata:\n  name: node1\nspec:\n{spec}"
        ))
    };
    assert_ok(&node(
        "  bgp:\n    ipv4Address: 172.20.42.80/22\n    ipv4IPIPTunnelAddr: 10.233.94.0\n",
    ));
    let e = error_of(&node("  bgp: {}\n"));
    assert!(e.contains("Node.Spec.BGP (Spec.BGP should not be empty)"), "{e}");
    let e = error_of(&node("  bgp:\n    ipv4Address: 172.20.42.80\n"));
    assert!(e.contains("Node.Spec.BGP.IPv4Address = '172.20.42.80'"), "{e}");
    let e = error_of(&node(
        "  bgp:\n    ipv4Address: 172.20.42.80/22\n    ipv4IPIPTunnelAddr: fd00::1\n",
    ));
    assert!(
        e.contains("Node.Spec.BGP.IPv4IPIPTunnelAddr = 'fd00::1' (is not a valid IPv4 address)"),
        "{e}"
    );

    let felix = |spec: &str| {
        one(&format!(
            "apiVersion: projectcalico.org/v3\nkind: FelixConfiguration\nmetadata:\n  name: default\nspec:\n{spec}"
        ))
    };
    assert_ok(&felix(
        "  ipipEnabled: true\n  ipipMTU: 1440\n  logSeverityScreen: Info\n  reportingInterval: 0s\n  bpfLogLevel: \"\"\n",
    ));
    let e = error_of(&felix("  natOutgoingAddress: fd00::1\n"));
    assert!(
        e.contains("FelixConfiguration.Spec.NATOutgoingAddress = 'fd00::1' (is not a valid IPv4 address)"),
        "{e}"
    );
    let e = error_of(&felix(
        "  routeTableRange: {min: 1, max: 10}\n  routeTableRanges: [{min: 20, max: 30}]\n",
    ));
    assert!(
        e.contains("cannot be set when `RouteTableRanges` is also set"),
        "{e}"
    );

    let wep = |spec: &str| {
        one(&format!(
            "apiVersion: projectcalico.org/v3\nkind: WorkloadEndpoint\nmetadata:\n  name: node1-k8s-pod-eth0\n  namespace: default\nspec:\n{spec}"
        ))
    };
    assert_ok(&wep(
        "  node: node1\n  interfaceName: cali36dac03ac5d\n  ipNetworks: [10.233.94.1/32]\n",
    ));
    let e = error_of(&wep(
        "  node: node1\n  interfaceName: cali1\n  ipNetworks: [10.233.94.0/24]\n",
    ));
    assert_eq!(
        e,
        "WorkloadEndpoint(default/node1-k8s-pod-eth0): error with field WorkloadEndpoint.Spec.IPNetworks = '10.233.94.0/24' (IP network contains multiple addresses)"
    );
    let e = error_of(&wep("  node: node1\n"));
    assert!(e.contains("WorkloadEndpoint.Spec.InterfaceName"), "{e}");
}

/// Kubernetes' 256 KiB limit on an object's annotations (keys and values summed).
#[test]
fn annotations_are_limited_to_256_kib_in_all() {
    let mut r = pool("p", "  cidr: 10.1.0.0/16\n");
    let m = r.metadata_mut();
    m.annotations.insert("a".into(), "x".repeat(200 * 1024));
    m.annotations.insert("b".into(), "y".repeat(56 * 1024 - 2));
    assert_ok(&r);
    r.metadata_mut().annotations.insert("c".into(), "z".into());
    assert_eq!(
        error_of(&r),
        "IPPool(p): error with field IPPool.Metadata.Annotations (size) = '262146' (total size of annotations is too large: the limit is 262144 bytes (256 KiB))"
    );
}
