//! Kubernetes objects → what Calico's controllers and CNI plugin store (etcd mode): the
//! NetworkPolicy conversion table (with the worked example of docs/POLICY.md, byte for byte),
//! the API server's checks, Namespace/ServiceAccount → Profile and Pod → WorkloadEndpoint.

use brindle_model::k8s::{self, K8sInvalid};
use brindle_model::{Document, Resource, load_documents_str, load_str, validate};

fn docs(yaml: &str) -> Vec<Document> {
    load_documents_str("t.yaml", yaml).unwrap_or_else(|e| panic!("{e}\n{yaml}"))
}

fn knp(spec: &str) -> k8s::NetworkPolicy {
    let yaml = format!(
        "apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata:\n  name: web\n  namespace: x\nspec:\n{spec}"
    );
    match docs(&yaml).remove(0) {
        Document::NetworkPolicy(np) => np,
        other => panic!("{other:?}"),
    }
}

/// The converted policy's spec as compact JSON (Calico's field order).
fn converted(spec: &str) -> String {
    let p = k8s::network_policy_to_calico(&knp(spec)).unwrap_or_else(|e| panic!("{e}"));
    validate(&Resource::NetworkPolicy(p.clone())).unwrap_or_else(|e| panic!("converted policy invalid: {e}"));
    serde_json::to_string(&p.spec).unwrap()
}

fn invalid(spec: &str) -> String {
    k8s::network_policy_to_calico(&knp(spec)).unwrap_err().to_string()
}

const ORCH: &str = "projectcalico.org/orchestrator == 'k8s'";

#[test]
fn worked_example_byte_for_byte() {
    let np = knp("  podSelector: {matchLabels: {pod: a}}
  policyTypes: [Ingress]
  ingress:
  - from:
    - {namespaceSelector: {matchLabels: {team: blue}}, podSelector: {matchLabels: {pod: b}}}
    - {ipBlock: {cidr: 10.0.0.0/8, except: [10.1.0.0/16]}}
    ports: [{port: 80}, {port: 81}, {protocol: UDP, port: 53}]
");
    let p = k8s::network_policy_to_calico(&np).unwrap();
    assert_eq!(
        serde_json::to_string(&p).unwrap(),
        concat!(
            r#"{"kind":"NetworkPolicy","apiVersion":"projectcalico.org/v3","metadata":{"name":"knp.default.web","namespace":"x","creationTimestamp":null},"#,
            r#""spec":{"tier":"default","order":1000,"ingress":["#,
            r#"{"action":"Allow","protocol":"TCP","source":{"selector":"projectcalico.org/orchestrator == 'k8s' && pod == 'b'","namespaceSelector":"team == 'blue'"},"destination":{"ports":["80:81"]}},"#,
            r#"{"action":"Allow","protocol":"TCP","source":{"nets":["10.0.0.0/8"],"notNets":["10.1.0.0/16"]},"destination":{"ports":["80:81"]}},"#,
            r#"{"action":"Allow","protocol":"UDP","source":{"selector":"projectcalico.org/orchestrator == 'k8s' && pod == 'b'","namespaceSelector":"team == 'blue'"},"destination":{"ports":[53]}},"#,
            r#"{"action":"Allow","protocol":"UDP","source":{"nets":["10.0.0.0/8"],"notNets":["10.1.0.0/16"]},"destination":{"ports":[53]}}"#,
            r#"],"selector":"projectcalico.org/orchestrator == 'k8s' && pod == 'a'","types":["Ingress"]}}"#
        )
    );
    validate(&Resource::NetworkPolicy(p)).unwrap();
}

#[test]
fn conversion_table() {
    let cases: &[(&str, String)] = &[
        // Default deny ingress: all pods, no rules.
        (
            "  podSelector: {}\n  policyTypes: [Ingress]\n",
            format!(r#"{{"tier":"default","order":1000,"selector":"{ORCH}","types":["Ingress"]}}"#),
        ),
        // No policyTypes and no egress rules: the API server says [Ingress].
        (
            "  podSelector: {}\n",
            format!(r#"{{"tier":"default","order":1000,"selector":"{ORCH}","types":["Ingress"]}}"#),
        ),
        // No policyTypes with egress rules: [Ingress, Egress]; a rule {} allows everything.
        (
            "  podSelector: {}\n  egress:\n  - {}\n",
            format!(
                r#"{{"tier":"default","order":1000,"egress":[{{"action":"Allow"}}],"selector":"{ORCH}","types":["Ingress","Egress"]}}"#
            ),
        ),
        // Egress-only; every selector operator; matchLabels sorted.
        (
            "  podSelector:\n    matchLabels: {z: '1', a: '2'}\n    matchExpressions:\n    - {key: tier, operator: In, values: [web, api]}\n    - {key: env, operator: NotIn, values: [dev]}\n    - {key: gpu, operator: Exists}\n    - {key: spot, operator: DoesNotExist}\n  policyTypes: [Egress]\n",
            format!(
                r#"{{"tier":"default","order":1000,"selector":"{ORCH} && a == '2' && z == '1' && tier in {{ 'web', 'api' }} && env not in {{ 'dev' }} && has(gpu) && ! has(spot)","types":["Egress"]}}"#
            ),
        ),
        // Egress rule without Egress in policyTypes: kept, but the types leave egress out.
        (
            "  podSelector: {}\n  policyTypes: [Ingress]\n  egress:\n  - to:\n    - podSelector: {}\n",
            format!(
                r#"{{"tier":"default","order":1000,"egress":[{{"action":"Allow","destination":{{"selector":"{ORCH}"}}}}],"selector":"{ORCH}","types":["Ingress"]}}"#
            ),
        ),
        // A namespace selector alone: pods (orchestrator clause) in matching namespaces;
        // present but empty: all().
        (
            "  podSelector: {}\n  ingress:\n  - from:\n    - namespaceSelector: {matchLabels: {kubernetes.io/metadata.name: y}}\n    - namespaceSelector: {}\n",
            format!(
                r#"{{"tier":"default","order":1000,"ingress":[{{"action":"Allow","source":{{"selector":"{ORCH}","namespaceSelector":"kubernetes.io/metadata.name == 'y'"}}}},{{"action":"Allow","source":{{"selector":"{ORCH}","namespaceSelector":"all()"}}}}],"selector":"{ORCH}","types":["Ingress"]}}"#
            ),
        ),
        // Egress: peer and ports both in destination; ipBlock masked; endPort; a port entry
        // without a number opens the protocol and wins over listed ports; named ports first,
        // numbers merged; protocols in string order.
        (
            "  podSelector: {}\n  policyTypes: [Egress]\n  egress:\n  - to:\n    - ipBlock: {cidr: 10.9.8.7/16, except: [10.9.1.1/24]}\n    ports:\n    - {port: 9090}\n    - {port: 80}\n    - {port: serve-80-tcp}\n    - {port: 81, endPort: 83}\n    - {protocol: UDP, port: 53}\n    - {protocol: UDP}\n    - {protocol: UDP, port: 54}\n    - {protocol: SCTP, port: 7}\n",
            format!(
                r#"{{"tier":"default","order":1000,"egress":[{{"action":"Allow","protocol":"SCTP","destination":{{"nets":["10.9.0.0/16"],"ports":[7],"notNets":["10.9.1.0/24"]}}}},{{"action":"Allow","protocol":"TCP","destination":{{"nets":["10.9.0.0/16"],"ports":["serve-80-tcp","80:83",9090],"notNets":["10.9.1.0/24"]}}}},{{"action":"Allow","protocol":"UDP","destination":{{"nets":["10.9.0.0/16"],"notNets":["10.9.1.0/24"]}}}}],"selector":"{ORCH}","types":["Egress"]}}"#
            ),
        ),
        // One named port alone stays as it is; one rule per peer; no peers = any source.
        (
            "  podSelector: {}\n  ingress:\n  - ports: [{port: http}]\n  - from: [{podSelector: {matchLabels: {a: b}}}, {podSelector: {}}]\n",
            format!(
                r#"{{"tier":"default","order":1000,"ingress":[{{"action":"Allow","protocol":"TCP","destination":{{"ports":["http"]}}}},{{"action":"Allow","source":{{"selector":"{ORCH} && a == 'b'"}}}},{{"action":"Allow","source":{{"selector":"{ORCH}"}}}}],"selector":"{ORCH}","types":["Ingress"]}}"#
            ),
        ),
        // An empty ingress list: no rules (the tier's default drop).
        (
            "  podSelector: {}\n  ingress: []\n",
            format!(r#"{{"tier":"default","order":1000,"selector":"{ORCH}","types":["Ingress"]}}"#),
        ),
        // IPv6 ipBlock.
        (
            "  podSelector: {}\n  ingress:\n  - from: [{ipBlock: {cidr: 'fd00::1/64'}}]\n",
            format!(
                r#"{{"tier":"default","order":1000,"ingress":[{{"action":"Allow","source":{{"nets":["fd00::/64"]}}}}],"selector":"{ORCH}","types":["Ingress"]}}"#
            ),
        ),
    ];
    for (spec, want) in cases {
        assert_eq!(&converted(spec), want, "spec:\n{spec}");
    }
}

#[test]
fn simplify_ports_like_calico() {
    use brindle_model::numorstring::Port;
    let p = |s: &str| s.parse::<Port>().unwrap();
    let simplify = |v: &[&str]| {
        k8s::netpol::simplify_ports(&v.iter().map(|s| p(s)).collect::<Vec<_>>())
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
    };
    assert_eq!(
        simplify(&["80", "81", "82", "9090", "foo"]),
        ["foo", "80:82", "9090"]
    );
    assert_eq!(simplify(&["81", "80", "80"]), ["80:81"]);
    assert_eq!(simplify(&["http", "80"]), ["http", "80"], "one number: unchanged");
    assert_eq!(simplify(&["100:200", "150:250", "252"]), ["100:250", "252"]);
    assert_eq!(simplify(&["65535", "65534"]), ["65534:65535"]);
}

#[test]
fn api_server_checks() {
    let cases = [
        (
            "  podSelector: {}\n  ingress:\n  - ports: [{port: 0}]\n",
            "spec.ingress[0].ports[0].port: Invalid value: 0: must be between 1 and 65535, inclusive",
        ),
        (
            "  podSelector: {}\n  ingress:\n  - ports: [{protocol: ICMP}]\n",
            r#"spec.ingress[0].ports[0].protocol: Unsupported value: "ICMP": supported values: "SCTP", "TCP", "UDP""#,
        ),
        (
            "  podSelector: {}\n  ingress:\n  - ports: [{port: 90, endPort: 80}]\n",
            "spec.ingress[0].ports[0].endPort: Invalid value: 90: must be greater than or equal to `port`",
        ),
        (
            "  podSelector: {}\n  ingress:\n  - ports: [{port: http, endPort: 80}]\n",
            "spec.ingress[0].ports[0].endPort: Invalid value: 80: may not be specified when `port` is non-numeric",
        ),
        (
            "  podSelector: {}\n  ingress:\n  - ports: [{endPort: 80}]\n",
            "spec.ingress[0].ports[0].endPort: Invalid value: 80: may not be specified when `port` is not specified",
        ),
        (
            "  podSelector: {}\n  ingress:\n  - ports: [{port: '9999'}]\n",
            r#"spec.ingress[0].ports[0].port: Invalid value: "9999": must contain at least one letter (a-z)"#,
        ),
        (
            "  podSelector: {}\n  egress:\n  - to: [{}]\n",
            "spec.egress[0].to[0]: Required value: must specify a peer",
        ),
        (
            "  podSelector: {}\n  egress:\n  - to: [{podSelector: {}, ipBlock: {cidr: 10.0.0.0/8}}]\n",
            "spec.egress[0].to[0]: Forbidden: may not specify both ipBlock and another peer",
        ),
        (
            "  podSelector: {}\n  egress:\n  - to: [{ipBlock: {cidr: 10.0.0.0/33}}]\n",
            r#"spec.egress[0].to[0].ipBlock.cidr: Invalid value: "10.0.0.0/33": must be a valid CIDR value, (e.g. 10.9.8.0/24 or 2001:db8::/64)"#,
        ),
        (
            "  podSelector: {}\n  egress:\n  - to: [{ipBlock: {cidr: 10.0.0.0/8, except: [10.0.0.0/8]}}]\n",
            r#"spec.egress[0].to[0].ipBlock.except[0]: Invalid value: "10.0.0.0/8": must be a strict subset of `cidr`"#,
        ),
        (
            "  podSelector:\n    matchExpressions: [{key: a, operator: In}]\n",
            "spec.podSelector.matchExpressions[0].values: Required value: must be specified when `operator` is 'In' or 'NotIn'",
        ),
        (
            "  podSelector:\n    matchExpressions: [{key: a, operator: Exists, values: [b]}]\n",
            "spec.podSelector.matchExpressions[0].values: Forbidden: may not be specified when `operator` is 'Exists' or 'DoesNotExist'",
        ),
        (
            "  podSelector:\n    matchExpressions: [{key: a, operator: Like}]\n",
            r#"spec.podSelector.matchExpressions[0].operator: Invalid value: "Like": not a valid selector operator"#,
        ),
        (
            "  podSelector: {}\n  policyTypes: [Ingress, Sideways]\n",
            r#"spec.policyTypes[1]: Unsupported value: "Sideways": supported values: "Ingress", "Egress""#,
        ),
    ];
    for (spec, want) in cases {
        assert_eq!(
            invalid(spec),
            format!(r#"The NetworkPolicy "web" in namespace "x" is invalid: {want}"#),
            "spec:\n{spec}"
        );
    }
    let e: K8sInvalid = k8s::network_policy_to_calico(&knp(
        "  podSelector: {}\n  ingress:\n  - ports: [{port: 0}, {port: 70000}]\n",
    ))
    .unwrap_err();
    assert_eq!(e.errors.len(), 2);
    assert!(e.to_string().ends_with("inclusive]"), "{e}");
}

#[test]
fn namespaces_and_service_accounts_become_profiles() {
    let d = docs(
        "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: y\n  labels: {team: blue, kubernetes.io/metadata.name: y}\n---\napiVersion: v1\nkind: ServiceAccount\nmetadata:\n  name: api\n  namespace: y\n  labels: {role: backend}\n",
    );
    let (Document::Namespace(ns), Document::ServiceAccount(sa)) = (&d[0], &d[1]) else {
        panic!("{d:?}")
    };
    k8s::workload::validate_namespace(ns).unwrap();
    assert_eq!(
        serde_json::to_string(&k8s::namespace_to_profile(ns)).unwrap(),
        r#"{"kind":"Profile","apiVersion":"projectcalico.org/v3","metadata":{"name":"kns.y","creationTimestamp":null},"spec":{"ingress":[{"action":"Allow"}],"egress":[{"action":"Allow"}],"labelsToApply":{"pcns.kubernetes.io/metadata.name":"y","pcns.projectcalico.org/name":"y","pcns.team":"blue"}}}"#
    );
    // The API server's label is added when the manifest lacks it.
    let bare = k8s::Namespace {
        metadata: brindle_model::ObjectMeta::named("z"),
        ..Default::default()
    };
    let p = k8s::namespace_to_profile(&bare);
    assert_eq!(p.spec.labels_to_apply["pcns.kubernetes.io/metadata.name"], "z");
    assert_eq!(
        serde_json::to_string(&k8s::service_account_to_profile(sa)).unwrap(),
        r#"{"kind":"Profile","apiVersion":"projectcalico.org/v3","metadata":{"name":"ksa.y.api","creationTimestamp":null},"spec":{"labelsToApply":{"pcsa.projectcalico.org/name":"api","pcsa.role":"backend"}}}"#
    );
    let def = k8s::workload::default_service_account("x");
    assert_eq!(
        k8s::service_account_to_profile(&def).metadata.name,
        "ksa.x.default"
    );
    for p in [k8s::namespace_to_profile(ns), k8s::service_account_to_profile(sa)] {
        validate(&Resource::Profile(p)).unwrap();
    }
    let e = k8s::workload::validate_namespace(&k8s::Namespace {
        metadata: brindle_model::ObjectMeta::named("a.b"),
        ..Default::default()
    })
    .unwrap_err();
    assert!(
        e.to_string().starts_with(r#"The Namespace "a.b" is invalid: metadata.name: Invalid value: "a.b": a lowercase RFC 1123 label"#),
        "{e}"
    );
}

const POD: &str = "apiVersion: v1
kind: Pod
metadata:
  name: a
  namespace: x
  labels: {pod: a}
  annotations:
    cni.projectcalico.org/allowedSourcePrefixes: '[\"192.0.2.7/24\"]'
spec:
  nodeName: bgp-node1
  serviceAccountName: api
  initContainers:
  - name: init
    image: busybox
    command: [sh, -c, 'true']
    ports:
    - {name: init-port, containerPort: 3000}
  containers:
  - name: cont-80-tcp
    image: registry.k8s.io/e2e-test-images/agnhost:2.52
    args: [serve-hostname, --tcp, --port, '80']
    imagePullPolicy: IfNotPresent
    ports:
    - {name: serve-80-tcp, containerPort: 80, protocol: TCP}
    - {containerPort: 8080}
    - {containerPort: 8443, hostPort: 443}
  - name: cont-81-udp
    image: registry.k8s.io/e2e-test-images/agnhost:2.52
    ports:
    - {name: serve-81-udp, containerPort: 81, protocol: UDP}
    - {name: serve-82-sctp, containerPort: 82, protocol: SCTP}
";

#[test]
fn pods_become_endpoint_fields() {
    let Document::Pod(pod) = docs(POD).remove(0) else {
        panic!()
    };
    let wep = k8s::pod_to_workload_endpoint(&pod, &pod.spec.node_name).unwrap();
    assert_eq!(
        serde_json::to_string(&wep).unwrap(),
        concat!(
            r#"{"kind":"WorkloadEndpoint","apiVersion":"projectcalico.org/v3","metadata":{"name":"bgp--node1-k8s-a-eth0","namespace":"x","creationTimestamp":null,"#,
            r#""labels":{"pod":"a","projectcalico.org/namespace":"x","projectcalico.org/orchestrator":"k8s","projectcalico.org/serviceaccount":"api"}},"#,
            r#""spec":{"orchestrator":"k8s","node":"bgp-node1","pod":"a","endpoint":"eth0","serviceAccountName":"api","profiles":["kns.x","ksa.x.api"],"#,
            r#""ports":[{"name":"serve-80-tcp","protocol":"TCP","port":80,"hostPort":0,"hostIP":""},{"name":"","protocol":"TCP","port":8443,"hostPort":443,"hostIP":""},"#,
            r#"{"name":"serve-81-udp","protocol":"UDP","port":81,"hostPort":0,"hostIP":""},{"name":"serve-82-sctp","protocol":"SCTP","port":82,"hostPort":0,"hostIP":""},"#,
            r#"{"name":"init-port","protocol":"TCP","port":3000,"hostPort":0,"hostIP":""}],"allowSpoofedSourcePrefixes":["192.0.2.0/24"]}}"#
        )
    );
    // Without a service account the pod gets `default`, as the API server assigns it.
    let mut bare = pod.clone();
    bare.spec.service_account_name.clear();
    bare.metadata.annotations.clear();
    let wep = k8s::pod_to_workload_endpoint(&bare, "n1").unwrap();
    assert_eq!(wep.metadata.labels["projectcalico.org/serviceaccount"], "default");
    assert_eq!(wep.spec.profiles, ["kns.x", "ksa.x.default"]);
    assert_eq!(wep.metadata.name, "n1-k8s-a-eth0");
    // A service account name of 63 characters or more gets no label (Calico's rule).
    let mut long = bare.clone();
    long.spec.service_account_name = "s".repeat(63);
    let wep = k8s::pod_to_workload_endpoint(&long, "n1").unwrap();
    assert!(
        !wep.metadata
            .labels
            .contains_key("projectcalico.org/serviceaccount")
    );
    // Bad ports are refused in Kubernetes' words.
    let mut bad = bare.clone();
    bad.spec.containers[0].ports[0].container_port = 0;
    assert_eq!(
        k8s::pod_to_workload_endpoint(&bad, "n1").unwrap_err().to_string(),
        r#"The Pod "a" in namespace "x" is invalid: spec.containers[0].ports[0].containerPort: Invalid value: 0: must be between 1 and 65535, inclusive"#
    );
}

#[test]
fn a_port_that_is_neither_number_nor_name_is_a_load_error() {
    let e = load_documents_str(
        "p.yaml",
        "apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata: {name: a}\nspec:\n  ingress:\n  - ports: [{port: [80]}]\n",
    )
    .unwrap_err();
    assert!(
        e.to_string().contains("expected a port number or a port name"),
        "{e}"
    );
}

#[test]
fn unknown_pod_fields_are_refused_known_ones_kept() {
    let typo = POD.replace("nodeName:", "nodename:");
    let e = load_documents_str("p.yaml", &typo).unwrap_err();
    assert!(e.to_string().contains("nodename"), "{e}");
    let Document::Pod(pod) = docs(POD).remove(0) else {
        panic!()
    };
    assert_eq!(
        pod.spec.containers[0].image_pull_policy,
        Some(serde_json::json!("IfNotPresent"))
    );
}

#[test]
fn lists_and_streams_of_kubernetes_objects() {
    let d = docs(
        "apiVersion: v1
kind: List
items:
- apiVersion: v1
  kind: Namespace
  metadata: {name: x}
- apiVersion: networking.k8s.io/v1
  kind: NetworkPolicy
  metadata: {name: deny, namespace: x}
  spec: {podSelector: {}}
- apiVersion: projectcalico.org/v3
  kind: GlobalNetworkSet
  metadata: {name: outside}
  spec: {nets: [192.0.2.0/24]}
---
apiVersion: networking.k8s.io/v1
kind: NetworkPolicyList
metadata: {resourceVersion: '7'}
items:
- metadata: {name: a, namespace: y}
  spec: {podSelector: {}}
",
    );
    let ids: Vec<String> = d.iter().map(Document::identifier).collect();
    assert_eq!(
        ids,
        [
            "Namespace(x)",
            "NetworkPolicy(x/deny)",
            "GlobalNetworkSet(outside)",
            "NetworkPolicy(y/a)"
        ]
    );
    assert!(matches!(d[3], Document::NetworkPolicy(_)));
    // load_str takes Calico resources only.
    let e = load_str(
        "k.yaml",
        "apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata: {name: a}\n",
    )
    .unwrap_err();
    assert_eq!(
        e.to_string(),
        "k.yaml: document 1: NetworkPolicy (networking.k8s.io/v1) is a Kubernetes object, not a Calico resource"
    );
    // JSON works too, and a wrong apiVersion for a Kubernetes kind is Calico's error.
    let d = load_documents_str(
        "k.json",
        r#"{"apiVersion":"v1","kind":"Pod","metadata":{"name":"p"},"spec":{"containers":[{"name":"c"}]}}"#,
    )
    .unwrap();
    assert!(matches!(d[0], Document::Pod(_)));
    let e = load_documents_str("k.yaml", "apiVersion: v2\nkind: Pod\nmetadata: {name: a}\n").unwrap_err();
    assert!(e.to_string().contains("unknown resource type \"Pod\""), "{e}");
}
