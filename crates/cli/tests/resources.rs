//! CRUD through the real binary: calicoctl's messages, exit codes, and nothing written when any
//! document of a file is bad.

mod support;

use support::{Env, SEED_POOL};

const PEER: &str = "\
apiVersion: projectcalico.org/v3
kind: BGPPeer
metadata:
  name: tor
spec:
  peerIP: 172.20.40.1
  asNumber: 65001
";

#[test]
fn missing_file() {
    let env = Env::sqlite();
    let r = env.run(&["apply", "-f", "/nonexistent/pool.yaml"]).fails();
    assert!(
        r.stderr
            .starts_with("failed to execute command: open /nonexistent/pool.yaml: No such file"),
        "{r:?}"
    );
}

#[test]
fn yaml_error_has_its_line_and_nothing_is_written() {
    let env = Env::sqlite();
    let f = env.write(
        "bad.yaml",
        &format!("{SEED_POOL}---\n{PEER}  keepaliveTime: [oops\n"),
    );
    let r = env.run(&["apply", "-f", &f]).fails();
    assert!(r.stderr.contains(": document 2, line "), "{r:?}");
    assert_eq!(
        env.run(&["get", "ippool"]).ok().stdout,
        "NAME   CIDR   SELECTOR   \n\n"
    );
}

#[test]
fn unknown_field_is_rejected_with_calicos_words() {
    let env = Env::sqlite();
    let f = env.write("typo.yaml", &SEED_POOL.replace("natOutgoing", "natOutgoin"));
    let r = env.run(&["create", "-f", &f]).fails();
    assert!(
        r.stderr.contains("document 1, line 9: IPPool(default-pool): field in document is not recognized or is in the wrong location: natOutgoin (in spec)"),
        "{r:?}"
    );
}

#[test]
fn validation_error_names_kind_name_field_and_nothing_is_written() {
    let env = Env::sqlite();
    let bad_pool = SEED_POOL
        .replace("10.233.64.0/18", "10.233.64.1/18")
        .replace("default-pool", "p2");
    let f = env.write("mixed.yaml", &format!("{PEER}---\n{bad_pool}"));
    let r = env.run(&["apply", "-f", &f]).fails();
    assert_eq!(r.stdout, "");
    assert_eq!(
        r.stderr,
        "failed to apply any resources: [IPPool(p2): error with field IPPool.Spec.CIDR = '10.233.64.1/18' (IPPool CIDR is not strictly masked)]\n"
    );
    // The valid peer in the same file was not written either.
    assert_eq!(
        env.run(&["get", "bgppeer"]).ok().stdout,
        "NAME   PEERIP   NODE   ASN   \n\n"
    );
}

#[test]
fn overlapping_pools_are_refused() {
    let env = Env::sqlite();
    env.run(&["apply", "-f", &env.write("p.yaml", SEED_POOL)]).ok();
    let other = SEED_POOL
        .replace("default-pool", "p2")
        .replace("10.233.64.0/18", "10.233.100.0/24");
    let r = env.run(&["create", "-f", &env.write("p2.yaml", &other)]).fails();
    assert_eq!(
        r.stderr,
        "failed to create 'IPPool' resource: [IPPool(p2): error with field IPPool.Spec.CIDR = '10.233.100.0/24' (IPPool(p2) CIDR overlaps with IPPool(default-pool) CIDR 10.233.64.0/18)]\n"
    );
    // Two overlapping pools in one file are caught before either is written.
    let a = SEED_POOL
        .replace("default-pool", "a")
        .replace("10.233.64.0/18", "10.1.0.0/16");
    let b = SEED_POOL
        .replace("default-pool", "b")
        .replace("10.233.64.0/18", "10.1.0.0/20");
    env.run(&["apply", "-f", &env.write("ab.yaml", &format!("{a}---\n{b}"))])
        .fails();
    let r = env.run(&["get", "ippool"]).ok();
    assert_eq!(r.stdout.lines().count(), 3, "{}", r.stdout);
}

#[test]
fn create_exists_and_skip_exists() {
    let env = Env::sqlite();
    let f = env.write("p.yaml", SEED_POOL);
    assert_eq!(
        env.run(&["create", "-f", &f]).ok().stdout,
        "Successfully created 1 'IPPool' resource(s)\n"
    );
    let r = env.run(&["create", "-f", &f]).fails();
    assert_eq!(
        r.stderr,
        "failed to create 'IPPool' resource: [resource already exists: IPPool(default-pool) with error: <nil>]\n"
    );
    assert_eq!(
        env.run(&["create", "-f", &f, "--skip-exists"]).ok().stdout,
        "Successfully created 1 'IPPool' resource(s)\n"
    );
}

/// A store with one unrelated pool in it (read commands never create a store).
fn store_with_other_pool() -> Env {
    let env = Env::sqlite();
    let other = SEED_POOL
        .replace("default-pool", "other-pool")
        .replace("10.233.64.0/18", "10.9.0.0/16");
    env.run(&["apply", "-f", &env.write("other.yaml", &other)]).ok();
    env
}

#[test]
fn get_and_delete_missing() {
    let env = store_with_other_pool();
    let r = env.run(&["get", "ippool", "nope"]).fails();
    assert_eq!(
        r.stderr,
        "resource does not exist: IPPool(nope) with error: <nil>\n"
    );
    let r = env.run(&["delete", "ippool", "nope"]).fails();
    assert_eq!(
        r.stderr,
        "Failed to delete 'IPPool' resource: resource does not exist: IPPool(nope) with error: <nil>\n"
    );
    assert_eq!(
        env.run(&["delete", "ippool", "nope", "--skip-not-exists"])
            .ok()
            .stdout,
        "Successfully deleted 1 'IPPool' resource(s)\n"
    );
    let r = env.run(&["get", "nosuchkind"]).fails();
    assert_eq!(r.stderr, "resource type 'nosuchkind' is not supported\n");
}

#[test]
fn apply_twice_replace_patch_delete() {
    let env = Env::sqlite();
    let f = env.write("all.yaml", &format!("{SEED_POOL}---\n{PEER}"));
    assert_eq!(
        env.run(&["apply", "-f", &f]).ok().stdout,
        "Successfully applied 2 resource(s)\n"
    );
    // Applying again updates in place: uid and creation time kept, revision moves on.
    let before = env
        .run(&["get", "ippool", "default-pool", "-o", "json"])
        .ok()
        .stdout;
    env.run(&["apply", "-f", &f]).ok();
    let after = env
        .run(&["get", "ippool", "default-pool", "-o", "json"])
        .ok()
        .stdout;
    let field = |s: &str, k: &str| s.lines().find(|l| l.contains(k)).unwrap().to_string();
    assert_eq!(field(&before, "\"uid\""), field(&after, "\"uid\""));
    assert_ne!(
        field(&before, "resourceVersion"),
        field(&after, "resourceVersion")
    );

    let peer2 = PEER.replace("65001", "65002");
    let r = env.run(&["replace", "-f", &env.write("peer2.yaml", &peer2)]).ok();
    assert_eq!(r.stdout, "Successfully replaced 1 'BGPPeer' resource(s)\n");
    assert_eq!(
        env.run(&["get", "bgppeer"]).ok().stdout,
        "NAME   PEERIP        NODE       ASN     \ntor    172.20.40.1   (global)   65002   \n\n"
    );
    let r = env
        .run(&["patch", "bgppeer", "tor", "-p", r#"{"spec":{"node":"node1"}}"#])
        .ok();
    assert_eq!(r.stdout, "Successfully patched 1 'BGPPeer' resource\n");
    assert!(
        env.run(&["get", "bgppeer", "tor", "-o", "yaml"])
            .ok()
            .stdout
            .contains("  node: node1\n")
    );
    // Patching in something invalid is refused.
    let r = env
        .run(&[
            "patch",
            "ippool",
            "default-pool",
            "-p",
            r#"{"spec":{"vxlanMode":"Always"}}"#,
        ])
        .fails();
    assert!(
        r.stderr
            .contains("Cannot enable both VXLAN and IPIP on the same IPPool"),
        "{r:?}"
    );

    let r = env.run(&["delete", "-f", &f]).ok();
    assert_eq!(r.stdout, "Successfully deleted 2 resource(s)\n");
    assert_eq!(
        env.run(&["get", "ippool"]).ok().stdout,
        "NAME   CIDR   SELECTOR   \n\n"
    );
}

#[test]
fn replace_of_missing_and_stale_versions() {
    let env = store_with_other_pool();
    let r = env
        .run(&["replace", "-f", &env.write("p.yaml", SEED_POOL)])
        .fails();
    assert_eq!(
        r.stderr,
        "failed to replace 'IPPool' resource: [resource does not exist: IPPool(default-pool) with error: <nil>]\n"
    );
    env.run(&["apply", "-f", &env.write("p.yaml", SEED_POOL)]).ok();
    let stale = SEED_POOL.replace(
        "  name: default-pool\n",
        "  name: default-pool\n  resourceVersion: \"999\"\n",
    );
    let r = env
        .run(&["replace", "-f", &env.write("stale.yaml", &stale)])
        .fails();
    assert!(
        r.stderr
            // Revisions: the other pool and the pools' guard key (1, 2), then the guard again
            // and default-pool (3, 4): every pool write rewrites the guard in its transaction.
            .contains("resource version '999' is out of date (latest: 4)"),
        "{r:?}"
    );
}

#[test]
fn partial_failure_is_reported_like_calicoctl() {
    let env = Env::sqlite();
    let f = env.write("p.yaml", SEED_POOL);
    env.run(&["create", "-f", &f]).ok();
    let other = SEED_POOL
        .replace("default-pool", "p2")
        .replace("10.233.64.0/18", "10.234.0.0/16");
    let both = env.write("both.yaml", &format!("{other}---\n{SEED_POOL}"));
    let r = env.run(&["create", "-f", &both]).fails();
    assert_eq!(
        r.stdout,
        "Partial success: created the first 1 out of 2 'IPPool' resources:\n"
    );
    assert_eq!(
        r.stderr,
        "hit error: [resource already exists: IPPool(default-pool) with error: <nil>]\n"
    );
}

#[test]
fn stdin_lists_and_namespaces() {
    let env = Env::sqlite();
    let wep = "\
apiVersion: projectcalico.org/v3
kind: WorkloadEndpointList
items:
- apiVersion: projectcalico.org/v3
  kind: WorkloadEndpoint
  metadata:
    name: node1-k8s-nginx-eth0
  spec:
    node: node1
    pod: nginx
    endpoint: eth0
    interfaceName: cali36dac03ac5d
    ipNetworks: [10.233.94.1/32]
- apiVersion: projectcalico.org/v3
  kind: WorkloadEndpoint
  metadata:
    name: node1-k8s-dns-eth0
    namespace: kube-system
  spec:
    node: node1
    pod: dns
    endpoint: eth0
    interfaceName: cali05c862e5940
    ipNetworks: [10.233.94.2/32]
";
    let r = env.run_stdin(&["apply", "-f", "-"], wep).ok();
    assert_eq!(
        r.stdout,
        "Successfully applied 2 'WorkloadEndpoint' resource(s)\n"
    );
    assert_eq!(
        env.run(&["get", "wep"]).ok().stdout,
        "WORKLOAD   NODE    NETWORKS         INTERFACE         \nnginx      node1   10.233.94.1/32   cali36dac03ac5d   \n\n"
    );
    assert_eq!(
        env.run(&["get", "wep", "-A"]).ok().stdout,
        "NAMESPACE     WORKLOAD   NODE    NETWORKS         INTERFACE         \n\
         default       nginx      node1   10.233.94.1/32   cali36dac03ac5d   \n\
         kube-system   dns        node1   10.233.94.2/32   cali05c862e5940   \n\n"
    );
    let r = env.run(&["get", "ippool", "-n", "x"]).fails();
    assert_eq!(r.stderr, "IPPool is not namespaced\n");
}

#[test]
fn validate_needs_no_datastore() {
    let env = Env::sqlite();
    let r = env.run(&["validate", "-f", &env.write("p.yaml", SEED_POOL)]).ok();
    assert_eq!(r.stdout, "Successfully validated 1 'IPPool' resource(s)\n");
}

#[test]
fn cni_face_is_the_cni_plugin() {
    let env = Env::sqlite();
    let mut cmd = std::process::Command::new(&env.binary);
    let out = cmd
        .env("CNI_COMMAND", "VERSION")
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0));
    assert!(
        String::from_utf8_lossy(&out.stdout)
            .contains("\"supportedVersions\":[\"0.3.0\",\"0.3.1\",\"0.4.0\",\"1.0.0\",\"1.1.0\"]"),
        "{out:?}"
    );
}

#[test]
fn bgpfilter_crud_columns_and_validation() {
    let env = Env::sqlite();
    let filter = "\
apiVersion: projectcalico.org/v3
kind: BGPFilter
metadata:
  name: edge
spec:
  exportV4:
  - {action: Accept, matchOperator: In, cidr: 77.0.0.0/16}
  - {action: Reject, matchOperator: In, cidr: 77.1.0.0/16}
  importV6:
  - {action: Reject, matchOperator: NotIn, cidr: 'fd00::/8', prefixLength: {min: 48}}
";
    let f = env.write("filter.yaml", filter);
    env.run(&["apply", "-f", &f]).ok();
    let out = env.run(&["get", "bgpfilters"]).ok().stdout;
    assert_eq!(
        out,
        "NAME   NUMEXPORT   NUMIMPORT   \nedge   2           1           \n\n"
    );
    let y = env.run(&["get", "bgpf", "edge", "-o", "yaml"]).ok().stdout;
    assert!(
        y.contains("kind: BGPFilter") && y.contains("prefixLength:"),
        "{y}"
    );
    // Calico's rule checks, and nothing written.
    let bad = env.write(
        "bad.yaml",
        &filter
            .replace("name: edge", "name: bad")
            .replace("matchOperator: In, cidr: 77.1.0.0/16", "cidr: 77.1.0.0/16"),
    );
    let r = env.run(&["create", "-f", &bad]).fails();
    assert!(
        r.stderr.contains("BGPFilter(bad)")
            && r.stderr
                .contains("cidr and matchOperator must both be set or both be empty"),
        "{r:?}"
    );
    env.run(&["get", "bgpfilter", "bad"]).fails();
}

/// A stored row that does not decode: `get` prints the good rows, names the bad key on stderr
/// and exits 1; `delete` by name removes it.
#[test]
fn an_undecodable_row_is_reported_and_deletable() {
    let env = Env::sqlite();
    env.run(&["apply", "-f", &env.write("p.yaml", SEED_POOL)]).ok();
    let db = env.dir.join("brindle.db");
    let store = brindle_datastore::open(&brindle_datastore::DatastoreConfig::sqlite(&db)).unwrap();
    store
        .create(
            "/calico/resources/v3/projectcalico.org/ippools/damaged",
            b"{\"spec\": 1",
        )
        .unwrap();
    drop(store);
    let r = env.run(&["get", "ippool"]).fails();
    assert!(r.stdout.contains("default-pool   10.233.64.0/18"), "{r:?}");
    assert!(!r.stdout.contains("damaged"), "{r:?}");
    assert!(
        r.stderr.contains("IPPool(damaged): /calico/resources/v3/projectcalico.org/ippools/damaged: stored value is not a valid IPPool"),
        "{r:?}"
    );
    assert!(
        r.stderr.contains("(delete it with: delete IPPool damaged)"),
        "{r:?}"
    );
    let r = env.run(&["delete", "ippool", "damaged"]).ok();
    assert_eq!(r.stdout, "Successfully deleted 1 'IPPool' resource(s)\n");
    let r = env.run(&["get", "ippool"]).ok();
    assert!(r.stdout.contains("default-pool") && r.stderr.is_empty(), "{r:?}");
}
