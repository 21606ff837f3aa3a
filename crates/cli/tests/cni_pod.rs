//! ADD for a pod whose Kubernetes object is stored (`/brindle/k8s/v1/pods/<ns>/<name>`, what
//! `brindle lab` writes in the API server's place): the WorkloadEndpoint is complete when it is
//! first written (labels, service account, profiles, named ports, spoofing allowances), the
//! profiles it names exist, and a stored object that is not a valid Pod fails the ADD with
//! nothing left behind.

mod cni_support;

use cni_support::{Lab, NODE, Pod, key};
use serde_json::json;

fn store_pod(lab: &Lab, ns: &str, name: &str, pod: serde_json::Value) {
    lab.put(&brindle_model::keys::k8s_pod_key(ns, name), pod);
}

#[test]
fn endpoint_is_complete_at_add() {
    let lab = Lab::new();
    let pod = Pod::k8s("web-1");
    store_pod(
        &lab,
        "default",
        "web-1",
        json!({
            "kind": "Pod", "apiVersion": "v1",
            "metadata": {
                "name": "web-1", "namespace": "default", "uid": "0c3e55a2-1111-4c5e-9f00-000000000001",
                "labels": {"app": "web", "tier": "front"},
                "annotations": {"cni.projectcalico.org/allowedSourcePrefixes": "[\"192.0.2.7/24\"]"}
            },
            "spec": {
                "serviceAccountName": "api",
                "containers": [{"name": "srv", "image": "busybox",
                    "ports": [{"name": "http", "containerPort": 8080},
                              {"name": "dns", "containerPort": 53, "protocol": "UDP"},
                              {"containerPort": 9000}]}],
                "initContainers": [{"name": "init", "image": "busybox",
                    "ports": [{"name": "metrics", "containerPort": 9100}]}]
            }
        }),
    );
    let result = lab.add(&pod, &lab.conf("1.0.0"));
    let host = result["interfaces"][0]["name"].as_str().unwrap().to_string();
    let mac = result["interfaces"][1]["mac"].as_str().unwrap().to_string();
    let addr = result["ips"][0]["address"].as_str().unwrap().to_string();

    let wep_key = key("workloadendpoints", &format!("default/{NODE}-k8s-web--1-eth0"));
    let wep = lab.get(&wep_key).expect("WorkloadEndpoint written");
    assert_eq!(
        wep["metadata"]["labels"],
        json!({
            "app": "web",
            "tier": "front",
            "projectcalico.org/namespace": "default",
            "projectcalico.org/orchestrator": "k8s",
            "projectcalico.org/serviceaccount": "api",
        }),
        "{wep}"
    );
    let spec = &wep["spec"];
    assert_eq!(spec["orchestrator"], "k8s");
    assert_eq!(spec["node"], NODE);
    assert_eq!(spec["pod"], "web-1");
    assert_eq!(spec["endpoint"], "eth0");
    assert_eq!(spec["serviceAccountName"], "api");
    assert_eq!(spec["profiles"], json!(["kns.default", "ksa.default.api"]));
    assert_eq!(spec["containerID"], pod.id.as_str());
    assert_eq!(spec["interfaceName"], host.as_str());
    assert_eq!(spec["mac"], mac.as_str());
    assert_eq!(spec["ipNetworks"], json!([addr]));
    assert_eq!(spec["allowSpoofedSourcePrefixes"], json!(["192.0.2.0/24"]));
    assert_eq!(
        spec["ports"],
        json!([
            {"name": "http", "protocol": "TCP", "port": 8080, "hostPort": 0, "hostIP": ""},
            {"name": "dns", "protocol": "UDP", "port": 53, "hostPort": 0, "hostIP": ""},
            {"name": "metrics", "protocol": "TCP", "port": 9100, "hostPort": 0, "hostIP": ""},
        ]),
        "{wep}"
    );

    // The profiles it names exist (the lab normally writes them; the plugin fills the gap).
    let kns = lab.get(&key("profiles", "kns.default")).expect("kns.default");
    assert_eq!(
        kns["spec"]["labelsToApply"]["pcns.projectcalico.org/name"],
        "default"
    );
    let ksa = lab
        .get(&key("profiles", "ksa.default.api"))
        .expect("ksa.default.api");
    assert_eq!(
        ksa["spec"]["labelsToApply"],
        json!({"pcsa.projectcalico.org/name": "api"})
    );

    // A profile that exists is left as it is (the controller's, with its namespace labels).
    let pod2 = Pod::k8s("web-2");
    lab.put(
        &key("profiles", "ksa.default.api"),
        json!({"kind": "Profile", "apiVersion": "projectcalico.org/v3",
               "metadata": {"name": "ksa.default.api"},
               "spec": {"labelsToApply": {"pcsa.projectcalico.org/name": "api", "pcsa.team": "a"}}}),
    );
    store_pod(
        &lab,
        "default",
        "web-2",
        json!({"kind": "Pod", "apiVersion": "v1",
               "metadata": {"name": "web-2", "namespace": "default"},
               "spec": {"serviceAccountName": "api", "containers": [{"name": "c", "image": "x"}]}}),
    );
    lab.add(&pod2, &lab.conf("1.0.0"));
    let ksa = lab.get(&key("profiles", "ksa.default.api")).unwrap();
    assert_eq!(ksa["spec"]["labelsToApply"]["pcsa.team"], "a", "{ksa}");
    let wep2 = lab
        .get(&key(
            "workloadendpoints",
            &format!("default/{NODE}-k8s-web--2-eth0"),
        ))
        .unwrap();
    assert_eq!(
        wep2["metadata"]["labels"]["projectcalico.org/serviceaccount"],
        "api"
    );
    assert!(wep2["spec"].get("ports").is_none(), "{wep2}");
}

#[test]
fn a_stored_object_that_is_no_valid_pod_fails_add() {
    let lab = Lab::new();
    let pod = Pod::k8s("bad");
    let conf = lab.conf("1.0.0");
    let check = |stored: serde_json::Value, want: &str| {
        store_pod(&lab, "default", "bad", stored);
        let e = lab.cni("ADD", &pod, &conf, &[]).err();
        let msg = e["msg"].as_str().unwrap_or_default();
        assert!(msg.starts_with("pod default/bad: "), "{e}");
        assert!(msg.contains(want), "want {want:?}: {e}");
        assert!(lab.allocated().is_empty(), "allocation left after {e}");
        assert!(lab.endpoints().is_empty(), "endpoint left after {e}");
        assert!(pod.eth0().is_empty(), "interface left after {e}");
    };
    check(json!({"kind": "Pod", "metadata": 7}), "is not a v1 Pod");
    check(
        json!({"kind": "Pod", "apiVersion": "v1",
               "metadata": {"name": "other", "namespace": "default"},
               "spec": {"containers": [{"name": "c", "image": "x"}]}}),
        "holds pod default/other",
    );
    check(
        json!({"kind": "Pod", "apiVersion": "v1",
               "metadata": {"name": "bad", "namespace": "default"},
               "spec": {"containers": [{"name": "c", "image": "x",
                        "ports": [{"name": "http", "containerPort": 70000}]}]}}),
        "containerPort",
    );
}
