//! `brindle node checksystem` on this machine: every kernel check passes (the features are
//! tried for real in a throwaway namespace), the CNI directories are judged by what they hold,
//! and an unprivileged run fails with exit status 1.

use std::process::Command;

use brindle_testkit::TempDir;

fn checksystem(args: &[&str]) -> (bool, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_brindle"))
        .args(["node", "checksystem"])
        .args(args)
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

fn status_of<'a>(out: &'a str, check: &str) -> &'a str {
    out.lines()
        .find(|l| l.get(6..).is_some_and(|r| r.starts_with(check)))
        .and_then(|l| l.split_whitespace().next())
        .unwrap_or_else(|| panic!("no {check} line in:\n{out}"))
}

#[test]
fn this_machine_meets_the_requirements() {
    brindle_testkit::require::root();
    let dir = TempDir::new("chk");
    let conf = dir.join("net.d");
    std::fs::create_dir_all(&conf).unwrap();
    std::fs::write(
        conf.join("10-brindle.conflist"),
        r#"{"plugins":[{"type":"brindle"}]}"#,
    )
    .unwrap();
    let (ok, out) = checksystem(&[
        "--cni-bin-dir",
        dir.join("missing-bin").to_str().unwrap(),
        "--cni-conf-dir",
        conf.to_str().unwrap(),
    ]);
    assert!(ok, "{out}");
    for c in [
        "kernel",
        "nftables",
        "nat and conntrack",
        "ipip",
        "vxlan",
        "ifb",
        "ip_forward",
    ] {
        assert_eq!(status_of(&out, c), "OK", "{c}:\n{out}");
    }
    // This kernel has no CONFIG_NET_IPIP: the BPF tunl0 must then be usable.
    if out.contains("no kernel ipip") {
        assert_eq!(status_of(&out, "bpf tunl0"), "OK", "{out}");
    }
    assert_eq!(status_of(&out, "cni bin dir"), "WARN", "{out}");
    assert_eq!(status_of(&out, "cni conf dir"), "OK", "{out}");
    assert!(
        out.contains("System meets the requirements to run Brindle"),
        "{out}"
    );
    // The probes left nothing behind in this namespace.
    let links = brindle_testkit::netns::ip(&["-o", "link"]);
    assert!(!links.contains("brindlechk"), "{links}");
}

#[test]
fn unprivileged_runs_fail() {
    brindle_testkit::require::command("setpriv", "util-linux");
    let out = Command::new("setpriv")
        .args(["--reuid=65534", "--regid=65534", "--clear-groups", "--"])
        .arg(env!("CARGO_BIN_EXE_brindle"))
        .args(["node", "checksystem"])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    assert!(text.starts_with("FAIL  privileges"), "{text}");
}
