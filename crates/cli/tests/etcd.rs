//! The CLI on a real etcd (started by the test on free loopback ports): selected by flags, by
//! calicoctl's environment and by a calicoctl.cfg file; keys and values laid out as Calico's.

mod support;

use brindle_testkit::Etcd;
use support::{Env, SEED_POOL};

/// An empty connection file of the test's own (the host's calicoctl.cfg is never read).
fn empty_cfg(env: &Env) -> String {
    env.write("empty.cfg", "kind: CalicoAPIConfig\nspec: {}\n")
}

fn etcd_env(etcd: &Etcd) -> Env {
    let mut env = Env::sqlite();
    env.extra_args = vec![
        "--datastore-type".into(),
        "etcdv3".into(),
        "--etcd-endpoints".into(),
        etcd.endpoint().to_string(),
        "--config".into(),
        empty_cfg(&env),
    ];
    env
}

#[test]
fn calico_layout_in_etcd() {
    let etcd = Etcd::start();
    let env = etcd_env(&etcd);
    env.run(&["apply", "-f", &env.write("p.yaml", SEED_POOL)]).ok();
    let out = etcd
        .etcdctl()
        .args([
            "get",
            "/calico/resources/v3/projectcalico.org/ippools/default-pool",
        ])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    let mut lines = text.lines();
    assert_eq!(
        lines.next(),
        Some("/calico/resources/v3/projectcalico.org/ippools/default-pool")
    );
    let value = lines.next().expect("value");
    assert!(value.starts_with(r#"{"kind":"IPPool","apiVersion":"projectcalico.org/v3","metadata":{"name":"default-pool","uid":""#), "{value}");
    assert!(
        !value.contains("resourceVersion"),
        "stored without resourceVersion: {value}"
    );
    assert!(value.ends_with(r#""spec":{"cidr":"10.233.64.0/18","vxlanMode":"Never","ipipMode":"Always","natOutgoing":true,"blockSize":24,"nodeSelector":"all()","allowedUses":["Workload","Tunnel"]}}"#), "{value}");
    let r = env.run(&["get", "ippool", "-o", "wide"]).ok();
    assert!(
        r.stdout.contains("default-pool   10.233.64.0/18   true   Always"),
        "{r:?}"
    );
}

#[test]
fn selected_by_calicoctl_cfg() {
    let etcd = Etcd::start();
    let mut env = Env::sqlite();
    let cfg = env.write(
        "calicoctl.cfg",
        &format!(
            "apiVersion: projectcalico.org/v3\nkind: CalicoAPIConfig\nmetadata: {{}}\nspec:\n  datastoreType: etcdv3\n  etcdEndpoints: {}\n",
            etcd.endpoint()
        ),
    );
    env.extra_args = vec!["--config".into(), cfg];
    env.run(&["apply", "-f", &env.write("p.yaml", SEED_POOL)]).ok();
    // The same data is seen through the flags.
    let flags = etcd_env(&etcd);
    assert!(flags.run(&["get", "ippool"]).ok().stdout.contains("default-pool"));
}

#[test]
fn unreachable_etcd_is_a_clear_error() {
    let env = Env::sqlite();
    let mut env = env;
    env.extra_args = vec![
        "--datastore-type".into(),
        "etcdv3".into(),
        "--etcd-endpoints".into(),
        "http://127.0.0.1:1".into(),
        "--config".into(),
        empty_cfg(&env),
    ];
    let r = env.run(&["get", "ippool"]).fails();
    assert!(r.stderr.contains("127.0.0.1:1"), "{r:?}");
    // The message says where the endpoints came from.
    assert!(
        r.stderr.contains("(endpoints from flag --etcd-endpoints"),
        "{r:?}"
    );
}

/// As `resources::an_undecodable_row_is_reported_and_deletable`, on etcd.
#[test]
fn an_undecodable_row_is_reported_and_deletable() {
    let etcd = Etcd::start();
    let env = etcd_env(&etcd);
    env.run(&["apply", "-f", &env.write("p.yaml", SEED_POOL)]).ok();
    let key = "/calico/resources/v3/projectcalico.org/ippools/damaged";
    let out = etcd
        .etcdctl()
        .args(["put", key, "{\"spec\": 1"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let r = env.run(&["get", "ippool", "-o", "yaml"]).fails();
    assert!(
        r.stdout.contains("name: default-pool") && !r.stdout.contains("damaged"),
        "{r:?}"
    );
    assert!(
        r.stderr.contains(&format!(
            "IPPool(damaged): {key}: stored value is not a valid IPPool"
        )),
        "{r:?}"
    );
    env.run(&["delete", "ippool", "damaged"]).ok();
    let r = env.run(&["get", "ippool"]).ok();
    assert!(r.stdout.contains("default-pool") && r.stderr.is_empty(), "{r:?}");
}
