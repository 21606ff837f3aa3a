//! The systemd unit and its environment file (`deploy/systemd/`): `systemd-analyze verify`
//! accepts the unit as installed on a host (in a scratch root holding Debian's system units,
//! the unit, its environment file and the binary at its `ExecStart` path) with no warning, and
//! the environment file is one the agent and the datastore selection accept.

use std::path::{Path, PathBuf};
use std::process::Command;

use brindle_testkit::TempDir;

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn copy_tree(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        let ty = e.file_type().unwrap();
        let dst = to.join(e.file_name());
        if ty.is_dir() {
            copy_tree(&e.path(), &dst);
        } else if ty.is_symlink() {
            let target = std::fs::read_link(e.path()).unwrap();
            std::os::unix::fs::symlink(target, dst).unwrap();
        } else {
            std::fs::copy(e.path(), dst).unwrap();
        }
    }
}

/// `systemd-analyze verify --root` of `unit`, installed under /etc/systemd/system; returns
/// (success, everything it printed).
fn verify(root: &Path, unit_text: &str) -> (bool, String) {
    std::fs::write(root.join("etc/systemd/system/brindle-node.service"), unit_text).unwrap();
    let out = Command::new("systemd-analyze")
        .args(["verify", "--man=no"])
        .arg(format!("--root={}", root.display()))
        .arg("/etc/systemd/system/brindle-node.service")
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success() && text.trim().is_empty(), text)
}

#[test]
fn the_unit_verifies_cleanly() {
    brindle_testkit::require::command("systemd-analyze", "systemd");
    let root = TempDir::new("unit");
    // What a Debian host has: the system units (targets the unit orders against).
    copy_tree(
        Path::new("/lib/systemd/system"),
        &root.join("usr/lib/systemd/system"),
    );
    for d in ["etc/systemd/system", "etc/brindle", "usr/local/bin"] {
        std::fs::create_dir_all(root.join(d)).unwrap();
    }
    std::fs::copy(env!("CARGO_BIN_EXE_brindle"), root.join("usr/local/bin/brindle")).unwrap();
    std::fs::copy(
        repo().join("deploy/systemd/brindle-node.env"),
        root.join("etc/brindle/brindle-node.env"),
    )
    .unwrap();
    let unit = std::fs::read_to_string(repo().join("deploy/systemd/brindle-node.service")).unwrap();
    let (ok, text) = verify(root.path(), &unit);
    assert!(ok, "systemd-analyze verify complained:\n{text}");

    // What the unit promises.
    for line in [
        "EnvironmentFile=/etc/brindle/brindle-node.env",
        "ExecStart=/usr/local/bin/brindle node run",
        "Restart=always",
        "KillSignal=SIGTERM",
        "LimitNOFILE=16384",
    ] {
        assert!(unit.lines().any(|l| l == line), "missing {line}");
    }

    // The check is not blind: a typo'd key and a missing binary are reported.
    let (ok, text) = verify(root.path(), &unit.replace("Restart=always", "Restrat=always"));
    assert!(!ok && text.contains("Restrat"), "{text}");
    std::fs::remove_file(root.join("usr/local/bin/brindle")).unwrap();
    let (ok, text) = verify(root.path(), &unit);
    assert!(!ok && text.contains("/usr/local/bin/brindle"), "{text}");
}

#[test]
fn the_environment_file_is_one_the_agent_accepts() {
    let text = std::fs::read_to_string(repo().join("deploy/systemd/brindle-node.env")).unwrap();
    let vars: Vec<(String, String)> = text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(|l| {
            let (k, v) = l.split_once('=').unwrap_or_else(|| panic!("not KEY=VALUE: {l}"));
            (k.to_string(), v.to_string())
        })
        .collect();
    let env = |k: &str| vars.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone());
    brindle_agent::config::AgentConfig::from_env(env).expect("the agent accepts the file");
    let ds = brindle_datastore::DatastoreConfig::resolve(&Default::default(), env).unwrap();
    assert!(ds.describe().starts_with("etcdv3:https://"), "{}", ds.describe());
}
