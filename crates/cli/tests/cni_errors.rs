//! Every error path a runtime can hit, through the real binary: each is a CNI error JSON on
//! stdout with the spec's code and a message naming what is wrong, exit status non-zero, and
//! nothing changed on the node or in the datastore.

mod cni_support;

use cni_support::{Lab, NODE, Pod, key};
use serde_json::json;

fn add_err(lab: &Lab, pod: &Pod, conf: &serde_json::Value) -> serde_json::Value {
    let e = lab.cni("ADD", pod, conf, &[]).err();
    assert!(lab.allocated().is_empty(), "allocation left after {e}");
    assert!(lab.endpoints().is_empty(), "endpoint left after {e}");
    assert!(pod.eth0().is_empty(), "interface left after {e}");
    e
}

fn msg(e: &serde_json::Value) -> String {
    e["msg"].as_str().unwrap_or_default().to_string()
}

#[test]
fn malformed_and_unsupported_configurations() {
    let lab = Lab::new();
    let pod = Pod::k8s("p");
    let env = |cmd| {
        vec![
            ("CNI_COMMAND", cmd),
            ("CNI_CONTAINERID", "c1"),
            ("CNI_NETNS", "/run/netns/x"),
            ("CNI_IFNAME", "eth0"),
        ]
    };
    // Not JSON at all: code 6.
    let e = lab
        .call_as(None, &env("ADD"), b"{\"cniVersion\": \"1.0.0\", oops")
        .err();
    assert_eq!(e["code"], 6);
    assert!(msg(&e).starts_with("failed to load netconf:"), "{e}");
    // A field of the wrong type: code 6 naming the field.
    let mut conf = lab.conf("1.0.0");
    conf["mtu"] = json!("big");
    let e = add_err(&lab, &pod, &conf);
    assert_eq!(e["code"], 6);
    assert!(msg(&e).contains("mtu: invalid type"), "{e}");
    // Unknown, newer and empty versions: code 1 with libcni's wording.
    for v in ["2.0.0", "1.2.0", ""] {
        let e = add_err(&lab, &pod, &lab.conf(v));
        assert_eq!(e["code"], 1, "{v}: {e}");
        assert_eq!(e["msg"], "incompatible CNI versions");
        assert!(e["details"].as_str().unwrap().contains("plugin supports"), "{e}");
    }
    // Invalid values: code 7.
    let mut conf = lab.conf("1.0.0");
    conf["mtu"] = json!(20);
    assert_eq!(add_err(&lab, &pod, &conf)["code"], 7);
    let mut conf = lab.conf("1.0.0");
    conf.as_object_mut().unwrap().remove("name");
    let e = add_err(&lab, &pod, &conf);
    assert_eq!(
        (e["code"].as_u64(), msg(&e).as_str()),
        (Some(7), "missing network name")
    );
    let mut conf = lab.conf("1.0.0");
    conf["ipam"] = json!({});
    assert!(msg(&add_err(&lab, &pod, &conf)).contains("ipam.type is required"));
    // Unsupported field: code 2 naming key and value.
    let mut conf = lab.conf("1.0.0");
    conf["feature_control"] = json!({"floating_ips": true});
    let e = add_err(&lab, &pod, &conf);
    assert_eq!(e["code"], 2);
    assert!(msg(&e).contains("floating_ips=true"), "{e}");
    // The kubernetes datastore is refused by name: code 7.
    let mut conf = lab.conf("1.0.0");
    conf["datastore_type"] = json!("kubernetes");
    let e = add_err(&lab, &pod, &conf);
    assert_eq!(e["code"], 7);
    assert!(msg(&e).contains("kubernetes"), "{e}");
}

#[test]
fn bad_environments() {
    let lab = Lab::new();
    let conf = lab.conf("1.0.0").to_string();
    let e = lab
        .call_as(
            None,
            &[("CNI_COMMAND", "ADD"), ("CNI_IFNAME", "eth0")],
            conf.as_bytes(),
        )
        .err();
    assert_eq!(e["code"], 4);
    assert_eq!(
        msg(&e),
        "required env variables [CNI_CONTAINERID,CNI_NETNS] missing"
    );
    assert_eq!(e["cniVersion"], "1.0.0", "errors speak the request's version");
    let e = lab
        .call_as(None, &[("CNI_COMMAND", "BOUNCE")], conf.as_bytes())
        .err();
    assert_eq!(
        (e["code"].as_u64(), msg(&e).as_str()),
        (Some(4), "unknown CNI_COMMAND: BOUNCE")
    );
    let e = lab
        .call_as(
            None,
            &[
                ("CNI_COMMAND", "ADD"),
                ("CNI_CONTAINERID", "c1"),
                ("CNI_NETNS", "/run/netns/x"),
                ("CNI_IFNAME", "eth0:1"),
            ],
            conf.as_bytes(),
        )
        .err();
    assert_eq!(e["code"], 4);
    assert!(msg(&e).contains("CNI_IFNAME"), "{e}");
    let pod = Pod::k8s("p");
    let e = lab
        .cni("ADD", &pod, &lab.conf("1.0.0"), &[("CNI_ARGS", "K8S_POD_NAME")])
        .err();
    assert_eq!(e["code"], 4);
    assert!(msg(&e).contains("CNI_ARGS"), "{e}");
    // Without CNI_COMMAND at all the plugin describes itself (libcni's `about`), status 0.
    let out = lab.call_as(Some("brindle-ipam"), &[], b"");
    assert_eq!(out.status, 0);
    assert!(
        out.stderr
            .contains("CNI protocol versions supported: 0.3.0, 0.3.1, 0.4.0, 1.0.0, 1.1.0"),
        "{out:?}"
    );
}

#[test]
fn missing_or_wrong_netns() {
    let lab = Lab::new();
    let conf = lab.conf("1.0.0");
    let pod = Pod::k8s("gone");
    let path = format!("/run/netns/{}-does-not-exist", pod.ns.name());
    let e = lab.cni("ADD", &pod, &conf, &[("CNI_NETNS", &path)]).err();
    assert_eq!(e["code"], 3);
    assert!(
        msg(&e).contains("failed to open netns") && msg(&e).contains(&path),
        "{e}"
    );
    assert!(lab.allocated().is_empty());
    // A file that is not a namespace.
    let file = lab.dir.join("not-a-netns");
    std::fs::write(&file, "x").unwrap();
    let e = lab
        .cni("ADD", &pod, &conf, &[("CNI_NETNS", file.to_str().unwrap())])
        .err();
    assert_eq!(e["code"], 4);
    assert!(msg(&e).contains("is not a network namespace"), "{e}");
    // The plugin's own namespace (the node): refused, the node is never rewired.
    let own = lab.node.path().display().to_string();
    let e = lab.cni("ADD", &pod, &conf, &[("CNI_NETNS", &own)]).err();
    assert_eq!(e["code"], 4);
    assert!(msg(&e).contains("own network namespace"), "{e}");
    assert!(lab.allocated().is_empty());
}

#[test]
fn datastore_not_ready_missing_or_down() {
    let lab = Lab::new();
    let pod = Pod::k8s("p");
    let conf = lab.conf("1.0.0");
    let ci = key("clusterinformations", "default");
    let mut info = lab.get(&ci).unwrap();
    info["spec"]["datastoreReady"] = json!(false);
    lab.put(&ci, info);
    let e = add_err(&lab, &pod, &conf);
    assert_eq!(e["code"], 11);
    assert_eq!(msg(&e), "Calico is currently not ready to process requests");
    lab.ds.delete(&ci, None).unwrap();
    let e = add_err(&lab, &pod, &conf);
    assert_eq!(e["code"], 11);
    assert!(
        msg(&e).contains("ClusterInformation(default) does not exist"),
        "{e}"
    );
    // etcd that is not there: transient, code 11, naming the endpoint.
    let port = brindle_testkit::port::free_tcp();
    let mut conf = lab.conf("1.0.0");
    conf["datastore_type"] = json!("etcdv3");
    conf["etcd_endpoints"] = json!(format!("http://127.0.0.1:{port}"));
    let e = add_err(&lab, &pod, &conf);
    assert_eq!(e["code"], 11, "{e}");
    assert!(msg(&e).contains(&port.to_string()), "{e}");
    // DEL with the datastore down fails too (so the runtime retries it), code 11.
    let e = lab.cni("DEL", &pod, &conf, &[]).err();
    assert_eq!(e["code"], 11, "{e}");
}

#[test]
fn ipam_failures_name_the_pool_or_node() {
    let lab = Lab::new();
    let pod = Pod::k8s("p");
    // A node the datastore does not know.
    let mut conf = lab.conf("1.0.0");
    conf["nodename"] = json!("stranger");
    let e = add_err(&lab, &pod, &conf);
    assert_eq!(e["code"], 999);
    assert!(
        msg(&e).contains("failed to request IP addresses") && msg(&e).contains("stranger"),
        "{e}"
    );
    // A pool by a name that does not exist.
    let mut conf = lab.conf("1.0.0");
    conf["ipam"]["ipv4_pools"] = json!(["no-such-pool"]);
    let e = add_err(&lab, &pod, &conf);
    assert_eq!(e["code"], 7);
    assert!(
        msg(&e).contains("the given pool (no-such-pool) does not exist"),
        "{e}"
    );
    // An exhausted pool: a /30 pool with /30 blocks holds 4 addresses.
    lab.put(
        &key("ippools", "tiny"),
        json!({"kind":"IPPool","apiVersion":"projectcalico.org/v3","metadata":{"name":"tiny"},
               "spec":{"cidr":"10.99.0.0/30","blockSize":30,"nodeSelector":"all()"}}),
    );
    let mut conf = lab.conf("1.0.0");
    conf["ipam"]["ipv4_pools"] = json!(["tiny"]);
    let pods: Vec<Pod> = (0..4).map(|i| Pod::k8s(&format!("t{i}"))).collect();
    for p in &pods {
        lab.add(p, &conf);
    }
    let extra = Pod::k8s("t4");
    let e = lab.cni("ADD", &extra, &conf, &[]).err();
    assert_eq!(e["code"], 999);
    assert!(msg(&e).contains("10.99.0.0/30"), "{e}");
    assert!(extra.eth0().is_empty());
    assert_eq!(lab.allocated().len(), 4);
    for p in &pods {
        lab.cni("DEL", p, &conf, &[]).ok();
    }
    assert!(lab.allocated().is_empty());
    let _ = NODE;
}
