//! `deploy/kubernetes/brindle-etcd.yaml`, checked offline: every document validates strictly
//! (an unknown field fails) against Kubernetes' own JSON schemas (kubernetes-validate, pinned in
//! .ci/deps), a typo'd field is caught, and what the DaemonSet hands Brindle is what Brindle
//! reads: the ConfigMap's CNI template renders through `brindle install-cni`, the probes hit the
//! agent's health paths and port.

use std::path::{Path, PathBuf};
use std::process::Command;

use brindle_testkit::TempDir;

/// Kubernetes version the manifest is validated against.
const K8S: &str = "1.32.0";

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

pub fn pytool(name: &str) -> PathBuf {
    let cache = std::env::var("BRINDLE_CI_CACHE").unwrap_or_else(|_| "/opt/brindle-ci".into());
    let p = Path::new(&cache).join("pytools/bin").join(name);
    assert!(
        p.is_file(),
        "{} not found: run .ci/deps (it installs the pinned deploy tools there)",
        p.display()
    );
    p
}

fn validate(file: &Path) -> (bool, String) {
    let out = Command::new(pytool("kubernetes-validate"))
        .args(["--strict", "-k", K8S])
        .arg(file)
        .output()
        .unwrap();
    (
        out.status.success(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}

fn manifest() -> (PathBuf, String) {
    let p = repo().join("deploy/kubernetes/brindle-etcd.yaml");
    let text = std::fs::read_to_string(&p).unwrap();
    (p, text)
}

#[test]
fn the_manifest_validates_strictly_and_typos_do_not() {
    let (path, text) = manifest();
    let (ok, out) = validate(&path);
    assert!(ok, "{out}");
    for kind in [
        "serviceaccount/brindle-node",
        "secret/brindle-etcd-secrets",
        "configmap/brindle-config",
        "daemonset/brindle-node",
    ] {
        assert!(
            out.contains(&format!("passed for resource {kind}")),
            "{kind}:\n{out}"
        );
    }
    let dir = TempDir::new("k8s");
    for (good, bad) in [
        ("hostNetwork: true", "hostNetwrk: true"),
        ("readinessProbe:", "readinesProbe:"),
        ("fieldPath: spec.nodeName", "fieldpath: spec.nodeName"),
        ("defaultMode: 0400", "defaultMode: \"0400\""),
    ] {
        assert!(text.contains(good), "{good}");
        let f = dir.join("bad.yaml");
        std::fs::write(&f, text.replacen(good, bad, 1)).unwrap();
        let (ok, out) = validate(&f);
        assert!(!ok, "{bad} was accepted:\n{out}");
    }
}

fn docs(text: &str) -> Vec<serde_json::Value> {
    text.split("\n---\n")
        .filter_map(|d| serde_norway::from_str::<serde_json::Value>(d).ok())
        .filter(|v| v.is_object())
        .collect()
}

#[test]
fn the_daemonset_speaks_brindles_interfaces() {
    let (_, text) = manifest();
    let docs = docs(&text);
    let by_kind = |k: &str| {
        docs.iter()
            .find(|d| d["kind"] == k)
            .unwrap_or_else(|| panic!("no {k}"))
    };
    let cm = by_kind("ConfigMap");
    let ds = by_kind("DaemonSet");
    let spec = &ds["spec"]["template"]["spec"];
    assert_eq!(spec["hostNetwork"], true);

    // The init container's template renders and passes install-cni's checks (into scratch
    // directories, with the values a TLS etcd would give).
    let template = cm["data"]["cni_network_config"].as_str().unwrap();
    let init = &spec["initContainers"][0];
    assert_eq!(init["args"][0], "install-cni");
    let dir = TempDir::new("k8scni");
    let secrets = dir.join("calico-secrets");
    std::fs::create_dir_all(&secrets).unwrap();
    for n in ["etcd-ca", "etcd-cert", "etcd-key"] {
        std::fs::write(secrets.join(n), n).unwrap();
    }
    let out = Command::new(env!("CARGO_BIN_EXE_brindle"))
        .args(["install-cni", "--bin-dir"])
        .arg(dir.join("host/opt/cni/bin"))
        .arg("--conf-dir")
        .arg(dir.join("host/etc/cni/net.d"))
        .env_clear()
        .env("CNI_NETWORK_CONFIG", template)
        .env("CNI_NET_DIR", "/etc/cni/net.d")
        .env("CNI_MTU", cm["data"]["veth_mtu"].as_str().unwrap())
        .env("ETCD_ENDPOINTS", "https://10.0.0.1:2379")
        .env("TLS_ASSETS_DIR", &secrets)
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let conf: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.join("host/etc/cni/net.d/10-brindle.conflist")).unwrap())
            .unwrap();
    assert_eq!(
        conf["plugins"][0]["etcd_cert_file"],
        "/etc/cni/net.d/brindle-tls/etcd-cert"
    );
    assert_eq!(conf["plugins"][0]["mtu"], 0);

    // The agent: its health endpoints, Calico's datastore variables, the node's name.
    let node = &spec["containers"][0];
    assert_eq!(node["args"], serde_json::json!(["node", "run"]));
    for (probe, path) in [("livenessProbe", "/liveness"), ("readinessProbe", "/readiness")] {
        assert_eq!(node[probe]["httpGet"]["path"], path);
        assert_eq!(node[probe]["httpGet"]["port"], 9099);
        assert_eq!(node[probe]["httpGet"]["host"], "127.0.0.1");
    }
    let env: Vec<&str> = node["env"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["name"].as_str().unwrap())
        .collect();
    for name in [
        "DATASTORE_TYPE",
        "ETCD_ENDPOINTS",
        "ETCD_CA_CERT_FILE",
        "ETCD_CERT_FILE",
        "ETCD_KEY_FILE",
        "NODENAME",
        "IP",
    ] {
        assert!(env.contains(&name), "{name} missing: {env:?}");
    }
    // Every mounted volume exists, and the plugin's state directory is the host's.
    let volumes: Vec<&str> = spec["volumes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["name"].as_str().unwrap())
        .collect();
    for c in [init, node] {
        for m in c["volumeMounts"].as_array().unwrap() {
            assert!(volumes.contains(&m["name"].as_str().unwrap()), "{m}");
        }
    }
    let state = spec["volumes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|v| v["name"] == "var-lib-brindle")
        .unwrap();
    assert_eq!(
        state["hostPath"]["path"],
        brindle_agent::config::DEFAULT_STATE_DIR
    );
}
