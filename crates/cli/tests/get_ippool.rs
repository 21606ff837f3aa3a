//! Golden tests: the seed's pool applied, `get ippool` in every format, through the real binary
//! on a real SQLite store, as `brindle` and as `calicoctl`.

mod support;

use support::{Env, SEED_POOL, mask};

/// One pool applied to a new store: revision 2, because a pool write also rewrites the pools'
/// guard key (revision 1) in the same transaction (the atomic overlap check).
fn seeded() -> Env {
    let env = Env::sqlite();
    let f = env.write("pool.yaml", SEED_POOL);
    let r = env.run(&["apply", "-f", &f]).ok();
    assert_eq!(r.stdout, "Successfully applied 1 'IPPool' resource(s)\n");
    env
}

/// The seed's two lines, with calicoctl's trailing spaces and the blank line after the table.
const WIDE: &str = "\
NAME           CIDR             NAT    IPIPMODE   VXLANMODE   DISABLED   SELECTOR   \n\
default-pool   10.233.64.0/18   true   Always     Never       false      all()      \n\
\n";

#[test]
fn wide_is_the_seeds_output() {
    let env = seeded();
    assert_eq!(env.run(&["get", "ippool", "-o", "wide"]).ok().stdout, WIDE);
    // Kind aliases are case-insensitive, and naming the pool gives the same table.
    assert_eq!(env.run(&["get", "IPPools", "-o", "wide"]).ok().stdout, WIDE);
    assert_eq!(
        env.run(&["get", "ipp", "default-pool", "-o", "wide"]).ok().stdout,
        WIDE
    );
}

#[test]
fn calicoctl_link_behaves_the_same() {
    let env = seeded();
    let link = env.as_calicoctl();
    let r = env.run_with(&link, &["get", "ippool", "-o", "wide"], None).ok();
    assert_eq!(r.stdout, WIDE);
}

#[test]
fn ps_is_the_default() {
    let env = seeded();
    let want = "\
NAME           CIDR             SELECTOR   \n\
default-pool   10.233.64.0/18   all()      \n\
\n";
    assert_eq!(env.run(&["get", "ippool"]).ok().stdout, want);
    assert_eq!(env.run(&["get", "ippool", "-o", "ps"]).ok().stdout, want);
}

#[test]
fn custom_columns() {
    let env = seeded();
    let r = env
        .run(&["get", "ippool", "-o", "custom-columns=name,cidr,disablebgpexport"])
        .ok();
    assert_eq!(
        r.stdout,
        "NAME           CIDR             DISABLEBGPEXPORT   \ndefault-pool   10.233.64.0/18   false              \n\n"
    );
    let r = env
        .run(&["get", "ippool", "-o", "custom-columns=NAME,BOGUS"])
        .fails();
    assert!(
        r.stderr
            .starts_with("unknown heading BOGUS, valid values are: NAME, CIDR, NAT"),
        "{r:?}"
    );
}

#[test]
fn yaml_is_a_sorted_list_document() {
    let env = seeded();
    let r = env.run(&["get", "ippool", "-o", "yaml"]).ok();
    assert_eq!(
        mask(&r.stdout),
        "\
apiVersion: projectcalico.org/v3
items:
- apiVersion: projectcalico.org/v3
  kind: IPPool
  metadata:
    creationTimestamp: <creationTimestamp>
    name: default-pool
    resourceVersion: \"2\"
    uid: <uid>
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
  resourceVersion: \"2\"
"
    );
    // The creation time is a quoted RFC 3339 UTC time, the uid a UUID.
    let ts = r
        .stdout
        .lines()
        .find(|l| l.contains("creationTimestamp"))
        .unwrap();
    assert!(
        ts.trim().starts_with("creationTimestamp: \"20") && ts.trim().ends_with("Z\""),
        "{ts}"
    );
    let uid = r
        .stdout
        .lines()
        .find(|l| l.contains("uid:"))
        .unwrap()
        .trim()
        .trim_start_matches("uid: ");
    assert_eq!(uid.len(), 36, "{uid}");
}

#[test]
fn yaml_of_one_named_pool_is_the_object() {
    let env = seeded();
    let r = env.run(&["get", "ippool", "default-pool", "-o", "yaml"]).ok();
    assert!(
        r.stdout
            .starts_with("apiVersion: projectcalico.org/v3\nkind: IPPool\nmetadata:\n"),
        "{}",
        r.stdout
    );
    // What get prints can be applied back unchanged.
    let f = env.write("back.yaml", &r.stdout);
    env.run(&["apply", "-f", &f]).ok();
}

#[test]
fn json_is_go_marshal_indent_without_trailing_newline() {
    let env = seeded();
    let r = env.run(&["get", "ippool", "default-pool", "-o", "json"]).ok();
    assert_eq!(
        mask(&r.stdout),
        r#"{
  "kind": "IPPool",
  "apiVersion": "projectcalico.org/v3",
  "metadata": {
    "name": "default-pool",
    "uid": "<uid>",
    "resourceVersion": "2",
    "creationTimestamp": "<creationTimestamp>"
  },
  "spec": {
    "cidr": "10.233.64.0/18",
    "vxlanMode": "Never",
    "ipipMode": "Always",
    "natOutgoing": true,
    "blockSize": 24,
    "nodeSelector": "all()",
    "allowedUses": [
      "Workload",
      "Tunnel"
    ]
  }
}"#
    );
    let r = env.run(&["get", "ippool", "-o", "json"]).ok();
    assert!(r.stdout.starts_with("{\n  \"kind\": \"IPPoolList\",\n  \"apiVersion\": \"projectcalico.org/v3\",\n  \"metadata\": {\n    \"resourceVersion\": \"2\"\n  },\n  \"items\": ["), "{}", r.stdout);
    assert!(!r.stdout.ends_with('\n'));
}

#[test]
fn empty_kind_prints_only_the_header() {
    let env = seeded();
    let r = env.run(&["get", "bgppeer"]).ok();
    assert_eq!(r.stdout, "NAME   PEERIP   NODE   ASN   \n\n");
}
