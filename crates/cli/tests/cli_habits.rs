//! calicoctl's habits: `get -o name`, `get --skip-empty`, and `-f DIR` (with `-R`) for the
//! writing verbs, through the real binary on a real SQLite store.

mod support;

use support::{Env, SEED_POOL};

fn pool(name: &str, cidr: &str) -> String {
    format!(
        "apiVersion: projectcalico.org/v3\nkind: IPPool\nmetadata:\n  name: {name}\nspec:\n  cidr: {cidr}\n"
    )
}

fn peer(name: &str) -> String {
    format!(
        "apiVersion: projectcalico.org/v3\nkind: BGPPeer\nmetadata:\n  name: {name}\nspec:\n  peerIP: 192.0.2.1\n  asNumber: 64513\n"
    )
}

/// A directory of manifests: two at the top (one .yml, one .json), one in a subdirectory, and a
/// file that is not a manifest (ignored).
fn manifests(env: &Env) -> String {
    let dir = env.dir.join("manifests");
    std::fs::create_dir_all(dir.join("sub")).unwrap();
    std::fs::write(dir.join("b-pool.yml"), pool("pool-b", "10.1.0.0/16")).unwrap();
    let json = r#"{"apiVersion":"projectcalico.org/v3","kind":"IPPool","metadata":{"name":"pool-a"},"spec":{"cidr":"10.2.0.0/16"}}"#;
    std::fs::write(dir.join("a-pool.json"), json).unwrap();
    std::fs::write(dir.join("sub/peer.yaml"), peer("peer-1")).unwrap();
    std::fs::write(dir.join("README.md"), "not a manifest: {{{").unwrap();
    dir.display().to_string()
}

#[test]
fn get_output_name_prints_kind_slash_name() {
    let env = Env::sqlite();
    let f = env.write("pool.yaml", SEED_POOL);
    env.run(&["apply", "-f", &f]).ok();
    let f = env.write("pool2.yaml", &pool("second", "10.9.0.0/16"));
    env.run(&["apply", "-f", &f]).ok();
    let r = env.run(&["get", "ippool", "-o", "name"]).ok();
    assert_eq!(r.stdout, "ippool/default-pool\nippool/second\n");
    let r = env.run(&["get", "ippool", "second", "-o", "name"]).ok();
    assert_eq!(r.stdout, "ippool/second\n");
    // Nothing listed: no lines at all.
    assert_eq!(env.run(&["get", "bgppeer", "-o", "name"]).ok().stdout, "");
    let r = env.run(&["get", "ippool", "-o", "names"]);
    assert_ne!(r.code, 0);
    assert!(r.stderr.contains("name"), "{r:?}");
}

#[test]
fn skip_empty_prints_nothing_without_results() {
    let env = Env::sqlite();
    // A store that exists (read-only commands never create one).
    let f = env.write("pool.yaml", SEED_POOL);
    env.run(&["apply", "-f", &f]).ok();
    // Without the flag calicoctl prints the headings of an empty table...
    let r = env.run(&["get", "bgppeer"]).ok();
    assert!(r.stdout.starts_with("NAME"), "{r:?}");
    // ...and with it nothing, in every format.
    for out in ["ps", "wide", "yaml", "json", "name"] {
        let r = env.run(&["get", "bgppeer", "--skip-empty", "-o", out]).ok();
        assert_eq!(r.stdout, "", "-o {out}");
    }
    // With results, the flag changes nothing.
    assert_eq!(
        env.run(&["get", "ippool", "--skip-empty"]).ok().stdout,
        env.run(&["get", "ippool"]).ok().stdout
    );
}

#[test]
fn apply_directory_reads_its_manifests_sorted_and_recursively_with_r() {
    let env = Env::sqlite();
    let dir = manifests(&env);
    // Without -R: the top level only, in file-name order (a-pool.json, then b-pool.yml).
    let r = env.run(&["apply", "-f", &dir]).ok();
    assert_eq!(r.stdout, "Successfully applied 2 'IPPool' resource(s)\n");
    assert_eq!(env.run(&["get", "bgppeer", "-o", "name"]).ok().stdout, "");
    let r = env.run(&["apply", "-f", &dir, "-R"]).ok();
    assert_eq!(r.stdout, "Successfully applied 3 resource(s)\n");
    assert_eq!(
        env.run(&["get", "bgppeer", "-o", "name"]).ok().stdout,
        "bgppeer/peer-1\n"
    );
    // get -f DIR -R names the same resources.
    let r = env.run(&["get", "-f", &dir, "--recursive", "-o", "name"]).ok();
    assert_eq!(r.stdout, "ippool/pool-a\nippool/pool-b\nbgppeer/peer-1\n");
}

#[test]
fn create_replace_delete_take_a_directory() {
    let env = Env::sqlite();
    let dir = manifests(&env);
    let r = env.run(&["create", "-f", &dir, "-R"]).ok();
    assert_eq!(r.stdout, "Successfully created 3 resource(s)\n");
    let r = env.run(&["replace", "-f", &dir, "-R"]).ok();
    assert_eq!(r.stdout, "Successfully replaced 3 resource(s)\n");
    let r = env.run(&["validate", "-f", &dir, "-R"]).ok();
    assert_eq!(r.stdout, "Successfully validated 3 resource(s)\n");
    let r = env.run(&["delete", "-f", &dir]).ok();
    assert_eq!(r.stdout, "Successfully deleted 2 'IPPool' resource(s)\n");
    let r = env.run(&["delete", "-f", &dir, "-R", "--skip-not-exists"]).ok();
    assert!(r.stdout.starts_with("Successfully deleted"), "{r:?}");
    assert_eq!(env.run(&["get", "bgppeer", "-o", "name"]).ok().stdout, "");
}

#[test]
fn a_directory_without_manifests_is_an_error_naming_it() {
    let env = Env::sqlite();
    let dir = env.dir.join("empty");
    std::fs::create_dir_all(&dir).unwrap();
    let dir = dir.display().to_string();
    let r = env.run(&["apply", "-f", &dir]);
    assert_ne!(r.code, 0);
    assert!(r.stderr.contains(&dir) && r.stderr.contains("no .yaml"), "{r:?}");
    // -R needs -f.
    let r = env.run(&["get", "ippool", "-R"]).fails();
    assert!(r.stderr.contains("-R/--recursive needs -f"), "{r:?}");
}
