//! End to end on one lab: `brindle lab apply|delete` of Kubernetes Namespaces, ServiceAccounts,
//! Pods and NetworkPolicies (the lab as API server, kubelet and Calico's controllers), `lab
//! exec NAMESPACE/POD`, `lab status` by namespace, and `lab probe` (table and `-o json`).
//! What the datastore holds is read back through the typed client: the stored Pod (written
//! before the CNI ADD), the endpoint's labels, profiles, service account and named ports, the
//! `kns.`/`ksa.` Profiles; label changes re-applied reach them; refused input writes nothing.

mod lab_support;

use std::io::Write;
use std::process::{Command, Output, Stdio};

use brindle_datastore::Client;
use brindle_model::resources::WorkloadEndpoint;
use brindle_model::{Kind, Resource, keys};
use lab_support::{BIN, TestLab};

fn lab_cmd(lab: &TestLab, args: &[&str], stdin: &str) -> Output {
    let mut c = Command::new(BIN)
        .arg("lab")
        .arg(args[0])
        .args(["--name", &lab.name])
        .args(&args[1..])
        .env("BRINDLE_LAB_ROOT", lab.root.path())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run brindle lab");
    c.stdin.take().unwrap().write_all(stdin.as_bytes()).unwrap();
    c.wait_with_output().unwrap()
}

fn ok(lab: &TestLab, args: &[&str], stdin: &str) -> String {
    let o = lab_cmd(lab, args, stdin);
    assert!(
        o.status.success(),
        "lab {args:?} failed:\n{stdin}\n{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn fails(lab: &TestLab, args: &[&str], stdin: &str) -> String {
    let o = lab_cmd(lab, args, stdin);
    assert!(!o.status.success(), "lab {args:?} succeeded:\n{stdin}");
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn wep(c: &Client, ns: &str, pod: &str) -> Option<WorkloadEndpoint> {
    let items = c.list(Kind::WorkloadEndpoint, Some(ns)).unwrap().items;
    items.into_iter().find_map(|r| match r {
        Resource::WorkloadEndpoint(w) if w.spec.pod == pod => Some(w),
        _ => None,
    })
}

fn labels_of(r: &Option<Resource>) -> Vec<(String, String)> {
    match r {
        Some(Resource::Profile(p)) => p
            .spec
            .labels_to_apply
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect(),
        other => panic!("not a profile: {other:?}"),
    }
}

const OBJECTS: &str = "apiVersion: v1
kind: Namespace
metadata: {name: shop, labels: {team: blue}}
---
apiVersion: v1
kind: ServiceAccount
metadata: {name: api, namespace: shop, labels: {tier: backend}}
---
apiVersion: v1
kind: Pod
metadata: {name: web, namespace: shop, labels: {app: web}}
spec:
  nodeName: bgp-node2
  serviceAccountName: api
  containers:
  - name: c
    ports:
    - {name: http, containerPort: 8080, protocol: TCP}
---
apiVersion: v1
kind: Pod
metadata: {name: db, namespace: shop, labels: {app: db}}
spec:
  containers: [{name: c}]
---
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: web-only, namespace: shop}
spec:
  podSelector: {matchLabels: {app: db}}
  ingress:
  - from:
    - podSelector: {matchLabels: {app: web}}
";

#[test]
fn lab_apply_exec_status_probe_delete() {
    let lab = TestLab::up("k8s", &[]);
    let out = ok(&lab, &["apply", "-f", "-"], OBJECTS);
    for line in [
        "namespace/shop created",
        "serviceaccount/api created",
        "Successfully applied 1 'NetworkPolicy' resource(s)",
        "pod/web created",
        "pod/db created",
    ] {
        assert!(out.lines().any(|l| l == line), "no `{line}` in:\n{out}");
    }
    let l = lab.lab();
    let c = l.client().expect("client");

    // The Pod was stored where the CNI plugin reads it, with the node it was placed on.
    let kv = c
        .store()
        .get(&keys::k8s_pod_key("shop", "web"))
        .unwrap()
        .expect("stored pod");
    let pod = brindle_model::k8s::stored::decode_pod("web", &kv.value).unwrap();
    assert_eq!(pod.spec.node_name, "bgp-node2");
    assert!(!pod.metadata.uid.is_empty());
    let db = c
        .store()
        .get(&keys::k8s_pod_key("shop", "db"))
        .unwrap()
        .expect("db");
    let db = brindle_model::k8s::stored::decode_pod("db", &db.value).unwrap();
    assert!(!db.spec.node_name.is_empty(), "a pod without nodeName is placed");

    // The endpoint carries what Calico writes for a pod.
    let w = wep(&c, "shop", "web").expect("web's endpoint");
    assert_eq!(w.spec.node, "bgp-node2");
    assert_eq!(w.metadata.labels.get("app").map(String::as_str), Some("web"));
    for (k, v) in [
        ("projectcalico.org/namespace", "shop"),
        ("projectcalico.org/orchestrator", "k8s"),
        ("projectcalico.org/serviceaccount", "api"),
    ] {
        assert_eq!(w.metadata.labels.get(k).map(String::as_str), Some(v), "{k}");
    }
    assert_eq!(w.spec.profiles, ["kns.shop", "ksa.shop.api"]);
    assert_eq!(w.spec.service_account_name, "api");
    assert_eq!(w.spec.ports.len(), 1);
    assert_eq!(w.spec.ports[0].name, "http");
    assert_eq!(w.spec.ports[0].port, 8080);
    let ns_labels = labels_of(&c.get(Kind::Profile, "", "kns.shop").unwrap());
    assert!(
        ns_labels.contains(&("pcns.team".into(), "blue".into())),
        "{ns_labels:?}"
    );
    assert!(ns_labels.contains(&("pcns.kubernetes.io/metadata.name".into(), "shop".into())));
    let sa_labels = labels_of(&c.get(Kind::Profile, "", "ksa.shop.api").unwrap());
    assert!(
        sa_labels.contains(&("pcsa.tier".into(), "backend".into())),
        "{sa_labels:?}"
    );
    assert!(c.get(Kind::Profile, "", "ksa.shop.default").unwrap().is_some());
    assert!(
        c.get(Kind::NetworkPolicy, "shop", "knp.default.web-only")
            .unwrap()
            .is_some()
    );

    // Status by namespace; exec in a pod by NAMESPACE/POD.
    let status = ok(&lab, &["status"], "");
    let row = status
        .lines()
        .find(|l| l.starts_with("shop ") && l.contains(" web "))
        .unwrap_or_else(|| panic!("no shop/web row:\n{status}"));
    assert!(row.contains("bgp-node2"), "{row}");
    let ip = w.spec.ip_networks[0].split('/').next().unwrap().to_string();
    assert!(row.contains(&ip), "{row}");
    assert!(status.contains("default   pod-bgp-master1-1"), "{status}");
    let addr = lab.stdout("shop/web", &["ip", "-4", "-o", "addr", "show", "eth0"]);
    assert!(addr.contains(&format!("{ip}/32")), "{addr}");

    // Re-applied with new labels: the endpoint and the namespace's profile follow.
    let relabelled = OBJECTS
        .replace("{app: web}}\nspec", "{app: web, version: v2}}\nspec")
        .replace("{team: blue}", "{team: green}");
    let out = ok(&lab, &["apply", "-f", "-"], &relabelled);
    assert!(out.contains("pod/web configured"), "{out}");
    assert!(out.contains("pod/db unchanged"), "{out}");
    assert!(out.contains("namespace/shop configured"), "{out}");
    let w2 = wep(&c, "shop", "web").unwrap();
    assert_eq!(w2.metadata.labels.get("version").map(String::as_str), Some("v2"));
    assert_eq!(
        w2.spec.ip_networks, w.spec.ip_networks,
        "the same pod, not a new one"
    );
    let ns_labels = labels_of(&c.get(Kind::Profile, "", "kns.shop").unwrap());
    assert!(
        ns_labels.contains(&("pcns.team".into(), "green".into())),
        "{ns_labels:?}"
    );

    // Probe: no policy selects the default namespace's pods, so they reach each other; the
    // table and the JSON agree on it.
    let table = ok(
        &lab,
        &[
            "probe",
            "--from",
            "default",
            "--to",
            "default",
            "--ports",
            "80",
            "--protocol",
            "tcp,udp",
        ],
        "",
    );
    assert!(table.contains("TCP/80 (rows: from, columns: to"), "{table}");
    assert!(table.contains("UDP/80"), "{table}");
    assert_eq!(table.matches("30 of 30 reachable").count(), 2, "{table}");
    let json = ok(&lab, &["probe", "--ports", "80", "-o", "json"], "");
    let v: serde_json::Value = serde_json::from_str(&json).expect("json");
    let results = v["results"].as_array().unwrap();
    assert_eq!(results.len(), 8 * 7, "8 pods, each to the 7 others");
    let cell = |from: &str, to: &str| {
        results
            .iter()
            .find(|r| r["from"] == from && r["to"] == to)
            .unwrap_or_else(|| panic!("no {from} -> {to}"))
            .clone()
    };
    assert_eq!(cell("shop/web", "default/pod-bgp-node1-1")["reachable"], true);
    assert_eq!(
        cell("default/pod-bgp-node1-1", "shop/web")["outcome"],
        "connected"
    );

    // Refused input names the object, exits non-zero and writes nothing.
    let e = fails(
        &lab,
        &["apply", "-f", "-"],
        "apiVersion: v1\nkind: Pod\nmetadata: {name: q, namespace: nowhere}\nspec: {containers: [{name: c}]}\n---\napiVersion: v1\nkind: Pod\nmetadata: {name: r, namespace: shop}\nspec: {nodeName: no-such-node, containers: [{name: c}]}\n",
    );
    assert!(e.contains("namespaces \"nowhere\" not found"), "{e}");
    assert!(e.contains("no-such-node is not a node of lab"), "{e}");
    assert!(c.store().get(&keys::k8s_pod_key("shop", "r")).unwrap().is_none());
    assert!(lab.lab().state().pod("shop/r").is_none());
    let e = fails(&lab, &["probe", "--protocol", "sctp"], "");
    assert!(e.contains("--protocol sctp"), "{e}");
    let e = fails(&lab, &["probe", "--ip-family", "6"], "");
    assert!(e.contains("has no IPv6 (it was made with --ip-family 4)"), "{e}");
    let e = fails(&lab, &["exec", "shop/nope", "--", "true"], "");
    assert!(e.contains("no node or pod named shop/nope"), "{e}");

    // Delete the pod, then the namespace with everything in it.
    let web_netns = lab.lab().state().pod("shop/web").unwrap().netns.clone();
    let out = ok(
        &lab,
        &["delete", "-f", "-"],
        "apiVersion: v1\nkind: Pod\nmetadata: {name: web, namespace: shop}\n",
    );
    assert!(out.contains("pod \"web\" deleted"), "{out}");
    assert!(wep(&c, "shop", "web").is_none());
    assert!(
        c.store()
            .get(&keys::k8s_pod_key("shop", "web"))
            .unwrap()
            .is_none()
    );
    assert!(!std::path::Path::new("/run/netns").join(&web_netns).exists());
    let out = ok(
        &lab,
        &["delete", "-f", "-"],
        "apiVersion: v1\nkind: Namespace\nmetadata: {name: shop}\n",
    );
    assert!(out.contains("namespace \"shop\" deleted"), "{out}");
    assert!(wep(&c, "shop", "db").is_none());
    assert!(c.get(Kind::Profile, "", "kns.shop").unwrap().is_none());
    assert!(c.get(Kind::Profile, "", "ksa.shop.api").unwrap().is_none());
    assert!(
        c.get(Kind::NetworkPolicy, "shop", "knp.default.web-only")
            .unwrap()
            .is_none()
    );
    assert!(lab.lab().state().pods.iter().all(|p| p.namespace == "default"));
    let e = fails(
        &lab,
        &["delete", "-f", "-"],
        "apiVersion: v1\nkind: Namespace\nmetadata: {name: default}\n",
    );
    assert!(e.contains("may not be deleted"), "{e}");
    lab.ping_all();
}
