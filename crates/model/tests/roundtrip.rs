//! Calico's own JSON (as calico-node, the CNI plugin and calicoctl store it in etcd) reads and
//! writes back byte for byte; calicoctl `-o yaml` exports load.

use brindle_model::resources::{IPPool, Profile, WorkloadEndpoint};
use brindle_model::{Kind, ObjectMeta, Resource, apply_defaults, load_str, validate};

const STORED: &[(Kind, &str)] = &[
    (
        Kind::IPPool,
        r#"{"kind":"IPPool","apiVersion":"projectcalico.org/v3","metadata":{"name":"default-pool","uid":"0b7c8b0e-6d5f-4e39-9f0e-2f1b5c0e8a11","creationTimestamp":"2024-05-01T10:00:00Z"},"spec":{"cidr":"10.233.64.0/18","vxlanMode":"Never","ipipMode":"Always","natOutgoing":true,"blockSize":24,"nodeSelector":"all()","allowedUses":["Workload","Tunnel"]}}"#,
    ),
    (
        Kind::FelixConfiguration,
        r#"{"kind":"FelixConfiguration","apiVersion":"projectcalico.org/v3","metadata":{"name":"default","uid":"1c0f","creationTimestamp":"2024-05-01T10:00:01Z"},"spec":{"logSeverityScreen":"Info","reportingInterval":"0s","bpfLogLevel":""}}"#,
    ),
    (
        Kind::FelixConfiguration,
        r#"{"kind":"FelixConfiguration","apiVersion":"projectcalico.org/v3","metadata":{"name":"node.node1","creationTimestamp":"2024-05-01T10:00:01Z"},"spec":{"defaultEndpointToHostAction":"Return","ipipEnabled":true,"ipipMTU":1440,"vxlanPort":4789,"vxlanVNI":4096,"healthEnabled":true,"healthPort":9099,"natPortRange":"32768:65535","deviceRouteProtocol":3,"bpfLogLevel":"","routeTableRanges":[{"min":1,"max":250}],"mtuIfacePattern":"^eth.*"}}"#,
    ),
    (
        Kind::Node,
        r#"{"kind":"Node","apiVersion":"projectcalico.org/v3","metadata":{"name":"bgp-master1","uid":"5d2","creationTimestamp":"2024-05-01T10:00:00Z","labels":{"beta.kubernetes.io/arch":"amd64","kubernetes.io/hostname":"bgp-master1"}},"spec":{"bgp":{"ipv4Address":"172.20.42.80/22","ipv4IPIPTunnelAddr":"10.233.94.0"},"orchRefs":[{"nodeName":"bgp-master1","orchestrator":"k8s"}]},"status":{}}"#,
    ),
    (
        Kind::WorkloadEndpoint,
        r#"{"kind":"WorkloadEndpoint","apiVersion":"projectcalico.org/v3","metadata":{"name":"bgp--master1-k8s-nginx-eth0","namespace":"default","uid":"9e1","creationTimestamp":"2024-05-01T10:05:00Z","labels":{"projectcalico.org/namespace":"default","projectcalico.org/orchestrator":"k8s","projectcalico.org/serviceaccount":"default"}},"spec":{"orchestrator":"k8s","node":"bgp-master1","containerID":"cc4687b3","pod":"nginx","endpoint":"eth0","serviceAccountName":"default","ipNetworks":["10.233.94.1/32"],"profiles":["kns.default","ksa.default.default"],"interfaceName":"cali36dac03ac5d","mac":"2a:4b:11:22:33:44","ports":[{"name":"http","protocol":"TCP","port":80,"hostPort":0,"hostIP":""}]}}"#,
    ),
    (
        Kind::Profile,
        r#"{"kind":"Profile","apiVersion":"projectcalico.org/v3","metadata":{"name":"mynet","creationTimestamp":null},"spec":{"ingress":[{"action":"Allow","source":{"selector":"has(mynet)"}}],"egress":[{"action":"Allow"}],"labelsToApply":{"mynet":""}}}"#,
    ),
    (
        Kind::ClusterInformation,
        r#"{"kind":"ClusterInformation","apiVersion":"projectcalico.org/v3","metadata":{"name":"default","creationTimestamp":"2024-05-01T10:00:00Z"},"spec":{"clusterGUID":"b0f1d8c2a9e44a9e8f6c1f7e2d3c4b5a","clusterType":"k8s,bgp","calicoVersion":"v3.26.1","datastoreReady":true}}"#,
    ),
    (
        Kind::BGPConfiguration,
        r#"{"kind":"BGPConfiguration","apiVersion":"projectcalico.org/v3","metadata":{"name":"default","creationTimestamp":"2024-05-01T10:00:00Z"},"spec":{"logSeverityScreen":"Info","nodeToNodeMeshEnabled":true,"asNumber":64512,"serviceClusterIPs":[{"cidr":"10.233.0.0/18"}],"listenPort":179,"bindMode":"NodeIP"}}"#,
    ),
    (
        Kind::BGPPeer,
        r#"{"kind":"BGPPeer","apiVersion":"projectcalico.org/v3","metadata":{"name":"tor","creationTimestamp":"2024-05-01T10:00:00Z"},"spec":{"nodeSelector":"rack == 'r1'","peerIP":"172.20.40.1","asNumber":65001,"nextHopMode":"Self","sourceAddress":"None","keepaliveTime":"20s","ttlSecurity":1}}"#,
    ),
    (
        Kind::IPAMConfiguration,
        r#"{"kind":"IPAMConfiguration","apiVersion":"projectcalico.org/v3","metadata":{"name":"default","creationTimestamp":"2024-05-01T10:00:00Z"},"spec":{"strictAffinity":false,"maxBlocksPerHost":4,"autoAllocateBlocks":true}}"#,
    ),
    (
        Kind::NetworkPolicy,
        r#"{"kind":"NetworkPolicy","apiVersion":"projectcalico.org/v3","metadata":{"name":"allow-web","namespace":"prod","uid":"3f1","creationTimestamp":"2024-05-01T10:00:00Z","labels":{"projectcalico.org/tier":"default"},"annotations":{"projectcalico.org/metadata":"{\"name\":\"allow-web\"}"}},"spec":{"tier":"default","order":100,"ingress":[{"action":"Allow","protocol":"TCP","source":{"selector":"role == 'frontend'","notNets":["10.9.0.0/16"]},"destination":{"ports":[80,"8080:8090","http"]}},{"action":"Log","ipVersion":4,"protocol":"ICMP","icmp":{"type":8,"code":0}},{"action":"Deny","notProtocol":"UDP","notICMP":{"type":3},"source":{"nets":["10.0.0.0/8"],"namespaceSelector":"team == 'red'","notSelector":"has(banned)","serviceAccounts":{"names":["api"],"selector":"tier == 'gold'"}},"destination":{"notPorts":["ssh"]},"metadata":{"annotations":{"why":"audit"}}},{"action":"Allow","protocol":"TCP","source":{"services":{"name":"frontend","namespace":"prod"}},"http":{"methods":["GET"],"paths":[{"exact":"/healthz"},{"prefix":"/api"}]}}],"egress":[{"action":"Pass","protocol":6,"destination":{"ports":["https"]}}],"selector":"app == 'web'","types":["Ingress","Egress"],"serviceAccountSelector":"role == 'api'","performanceHints":["AssumeNeededOnEveryNode"]}}"#,
    ),
    (
        Kind::GlobalNetworkPolicy,
        r#"{"kind":"GlobalNetworkPolicy","apiVersion":"projectcalico.org/v3","metadata":{"name":"security.deny-blocked","creationTimestamp":"2024-05-01T10:00:00Z","labels":{"projectcalico.org/tier":"security"}},"spec":{"tier":"security","order":10.5,"ingress":[{"action":"Deny","source":{"selector":"blocked == 'true'","namespaceSelector":"global()"}}],"selector":"all()","types":["Ingress"],"namespaceSelector":"has(projectcalico.org/name)"}}"#,
    ),
    (
        Kind::GlobalNetworkPolicy,
        r#"{"kind":"GlobalNetworkPolicy","apiVersion":"projectcalico.org/v3","metadata":{"name":"host-prednat","creationTimestamp":null},"spec":{"tier":"default","ingress":[{"action":"Allow","protocol":"TCP","destination":{"ports":[22]}}],"selector":"has(host)","types":["Ingress"],"preDNAT":true,"applyOnForward":true}}"#,
    ),
    (
        Kind::NetworkSet,
        r#"{"kind":"NetworkSet","apiVersion":"projectcalico.org/v3","metadata":{"name":"partners","namespace":"prod","creationTimestamp":"2024-05-01T10:00:00Z","labels":{"role":"partner"}},"spec":{"nets":["198.51.100.0/24","2001:db8::/32"]}}"#,
    ),
    (
        Kind::GlobalNetworkSet,
        r#"{"kind":"GlobalNetworkSet","apiVersion":"projectcalico.org/v3","metadata":{"name":"outside","creationTimestamp":"2024-05-01T10:00:00Z","labels":{"zone":"internet"}},"spec":{"nets":["192.0.2.0/24"]}}"#,
    ),
    (
        Kind::Tier,
        r#"{"kind":"Tier","apiVersion":"projectcalico.org/v3","metadata":{"name":"default","uid":"77a","creationTimestamp":"2024-05-01T10:00:00Z"},"spec":{"order":1000000,"defaultAction":"Deny"},"status":{}}"#,
    ),
    (
        Kind::Tier,
        r#"{"kind":"Tier","apiVersion":"projectcalico.org/v3","metadata":{"name":"kube-admin","creationTimestamp":"2024-05-01T10:00:00Z"},"spec":{"order":1000,"defaultAction":"Pass"},"status":{}}"#,
    ),
];

#[test]
fn stored_json_round_trips_byte_for_byte() {
    for (kind, json) in STORED {
        let r = Resource::from_json(*kind, json.as_bytes()).unwrap_or_else(|e| panic!("{kind}: {e}"));
        assert_eq!(r.kind(), *kind);
        assert_eq!(&serde_json::to_string(&r).unwrap(), json);
        if let Err(e) = validate(&r) {
            panic!("{kind}: {e}");
        }
    }
}

#[test]
fn stored_json_also_loads_as_a_manifest() {
    for (kind, json) in STORED {
        let rs = load_str("stored.json", json).unwrap_or_else(|e| panic!("{kind}: {e}"));
        assert_eq!(rs[0].kind(), *kind);
    }
}

/// `calicoctl get ippool -o yaml` from a kubespray cluster (Calico 3.2x), fed back to apply.
#[test]
fn calicoctl_yaml_export_loads() {
    let export = r#"apiVersion: projectcalico.org/v3
items:
- apiVersion: projectcalico.org/v3
  kind: IPPool
  metadata:
    creationTimestamp: "2023-03-08T12:31:29Z"
    name: default-pool
    resourceVersion: "1140"
    uid: 5b0f5d3f-2c21-4c7e-9a3b-3f3b7b0c3d41
  spec:
    allowedUses:
    - Workload
    - Tunnel
    blockSize: 24
    cidr: 10.233.64.0/18
    ipipMode: Always
    natOutgoing: true
    nodeSelector: all()
    vxlanMode: Never
kind: IPPoolList
metadata:
  resourceVersion: "1150"
"#;
    let rs = load_str("export.yaml", export).unwrap();
    let Resource::IPPool(p) = &rs[0] else { panic!() };
    assert_eq!(p.metadata.resource_version, "1140");
    assert_eq!(
        p.metadata.creation_timestamp.as_deref(),
        Some("2023-03-08T12:31:29Z")
    );
    validate(&rs[0]).unwrap();
}

#[test]
fn defaults_fill_a_minimal_pool_like_calico() {
    let mut rs = load_str(
        "p.yaml",
        "apiVersion: projectcalico.org/v3\nkind: IPPool\nmetadata:\n  name: default-pool\nspec:\n  cidr: 10.233.64.0/18\n  blockSize: 24\n  ipipMode: Always\n  natOutgoing: true\n",
    )
    .unwrap();
    apply_defaults(&mut rs[0]);
    let Resource::IPPool(p) = &rs[0] else { panic!() };
    assert_eq!(
        serde_json::to_string(&p.spec).unwrap(),
        r#"{"cidr":"10.233.64.0/18","vxlanMode":"Never","ipipMode":"Always","natOutgoing":true,"blockSize":24,"nodeSelector":"all()","allowedUses":["Workload","Tunnel"]}"#
    );
}

#[test]
fn constructors_and_helpers() {
    let p = IPPool::new(ObjectMeta::named("x"), Default::default());
    assert_eq!(serde_json::to_value(&p).unwrap()["kind"], "IPPool");
    assert_eq!(
        WorkloadEndpoint::name_for("node-1", "k8s", "my-pod", "eth0"),
        "node--1-k8s-my--pod-eth0"
    );
    let prof = Profile::new(ObjectMeta::named("net"), Default::default());
    assert_eq!(
        serde_json::to_string(&prof).unwrap(),
        r#"{"kind":"Profile","apiVersion":"projectcalico.org/v3","metadata":{"name":"net","creationTimestamp":null},"spec":{}}"#
    );
}
