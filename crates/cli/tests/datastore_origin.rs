//! Datastore safety: read-only commands never create a store, and every error about the store
//! says where its settings came from (flag, environment variable, connection file).

mod support;

use std::path::Path;

use support::{Env, SEED_POOL};

/// An environment with no datastore flags at all (only what each case sets).
fn bare() -> Env {
    let mut env = Env::sqlite();
    env.extra_args.clear();
    env
}

fn run(env: &Env, args: &[&str], vars: &[(&str, &str)]) -> support::Run {
    env.run_env(&env.binary, args, None, vars)
}

#[track_caller]
fn fails_naming(r: support::Run, path: &Path, origin: &str) {
    assert_eq!(r.code, 1, "{r:?}");
    let want = format!("sqlite:{}: no such database file", path.display());
    assert!(r.stderr.contains(&want), "missing {want:?} in {r:?}");
    assert!(r.stderr.contains(origin), "missing {origin:?} in {r:?}");
    assert!(r.stdout.is_empty(), "{r:?}");
    assert!(!path.exists(), "{} was created", path.display());
}

#[test]
fn a_mistyped_path_on_a_read_fails_naming_it_and_its_origin() {
    let env = bare();
    let cfg = env.write("empty.cfg", "kind: CalicoAPIConfig\nspec: {}\n");
    let typo = env.dir.join("brindel.db");
    let typo_s = typo.display().to_string();
    // A flag.
    for args in [
        vec!["get", "ippool"],
        vec!["get", "ippool", "default-pool", "-o", "yaml"],
        vec!["ipam", "show"],
        vec!["delete", "ippool", "default-pool"],
        vec!["label", "ippool", "default-pool", "a=b"],
    ] {
        let mut a = args.clone();
        a.extend(["--datastore-path", &typo_s, "--config", &cfg]);
        fails_naming(run(&env, &a, &[]), &typo, "(path from flag --datastore-path)");
    }
    // The environment.
    fails_naming(
        run(
            &env,
            &["get", "nodes", "--config", &cfg],
            &[("BRINDLE_DATASTORE_PATH", &typo_s)],
        ),
        &typo,
        "(path from environment variable BRINDLE_DATASTORE_PATH)",
    );
    // A connection file, named by flag or by BRINDLE_CONFIG.
    let file = env.write(
        "calicoctl.cfg",
        &format!("kind: CalicoAPIConfig\nspec:\n  datastoreType: sqlite\n  datastorePath: {typo_s}\n"),
    );
    let origin = format!("(path from spec.datastorePath in {file}, type from spec.datastoreType in {file})");
    fails_naming(
        run(&env, &["get", "ippool", "--config", &file], &[]),
        &typo,
        &origin,
    );
    fails_naming(
        run(&env, &["get", "ippool"], &[("BRINDLE_CONFIG", &file)]),
        &typo,
        &origin,
    );
    // A named connection file that is missing is an error too, naming who named it.
    let r = run(
        &env,
        &["get", "ippool"],
        &[("BRINDLE_CONFIG", "/nonexistent/calicoctl.cfg")],
    );
    assert_eq!(r.code, 1);
    assert!(
        r.stderr
            .contains("/nonexistent/calicoctl.cfg (from environment variable BRINDLE_CONFIG)"),
        "{r:?}"
    );
}

#[test]
fn writes_create_the_store_and_reads_then_work() {
    let env = bare();
    let cfg = env.write("empty.cfg", "kind: CalicoAPIConfig\nspec: {}\n");
    let db = env.dir.join("new.db");
    let db_s = db.display().to_string();
    let pool = env.write("pool.yaml", SEED_POOL);
    let r = run(
        &env,
        &["apply", "-f", &pool, "--datastore-path", &db_s, "--config", &cfg],
        &[],
    );
    assert_eq!(r.code, 0, "{r:?}");
    assert!(db.is_file());
    let r = run(
        &env,
        &["get", "ippool", "--datastore-path", &db_s, "--config", &cfg],
        &[],
    );
    assert_eq!(r.code, 0, "{r:?}");
    assert!(r.stdout.contains("default-pool"));
}

#[test]
fn bad_settings_are_quoted_with_their_origin() {
    let env = bare();
    let cfg = env.write(
        "calicoctl.cfg",
        "kind: CalicoAPIConfig\nspec:\n  datastoreType: etcdv3\n  etcdEndpoints: 10.0.0.1:2379\n",
    );
    let r = run(&env, &["get", "ippool", "--config", &cfg], &[]);
    assert_eq!(r.code, 1);
    assert!(
        r.stderr.contains(&format!(
            "spec.etcdEndpoints=10.0.0.1:2379 in {cfg}: endpoint 10.0.0.1:2379 must start with http:// or https://"
        )),
        "{r:?}"
    );
    let empty = env.write("empty.cfg", "kind: CalicoAPIConfig\nspec: {}\n");
    let r = run(
        &env,
        &["get", "ippool", "--config", &empty],
        &[("DATASTORE_TYPE", "kubernetes")],
    );
    assert!(
        r.stderr
            .contains("DATASTORE_TYPE=kubernetes: the kubernetes datastore is not supported"),
        "{r:?}"
    );
}
