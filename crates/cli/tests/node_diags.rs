//! `brindle node diags` where things are missing (the full bundle on a live node is checked on
//! the seed lab in `lab_e2e`): in an empty namespace with no agent and a datastore file that is
//! not there, the collectors that cannot work write `.error` files, the others still write
//! theirs (the connection file with its etcd password redacted), the tarball is made and the command exits 0 naming what failed; when nothing at all
//! can be written (no temporary directory) it exits non-zero.

use std::process::Command;

use brindle_testkit::{TempDir, netns::Netns, require};

const BIN: &str = env!("CARGO_BIN_EXE_brindle");

#[test]
fn collectors_fail_alone_and_nothing_written_fails_the_command() {
    require::root();
    let ns = Netns::new("dg");
    let tmp = TempDir::new("diags");
    let out_dir = tmp.join("out");
    std::fs::create_dir(&out_dir).unwrap();
    let missing = tmp.join("no-such.db");
    let cfg = tmp.join("calicoctl.cfg");
    std::fs::write(
        &cfg,
        format!(
            "apiVersion: projectcalico.org/v3\nkind: CalicoAPIConfig\nmetadata: {{}}\nspec:\n  datastoreType: sqlite\n  datastorePath: {}\n  etcdUsername: admin\n  etcdPassword: pw-s3cr3t\n",
            missing.display()
        ),
    )
    .unwrap();
    let run = |tmpdir: &std::path::Path| {
        ns.cmd(BIN)
            .args(["node", "diags", "--log-dir"])
            .arg(tmp.join("no-logs"))
            .arg("--cni-net-dir")
            .arg(tmp.join("no-net.d"))
            .env("TMPDIR", tmpdir)
            .env("NODENAME", "diag-node")
            .env("BRINDLE_CTL_SOCKET", tmp.join("no-agent.ctl"))
            .env("BRINDLE_CONFIG", &cfg)
            .env("FELIX_PROMETHEUSMETRICSPORT", "1")
            .env("FELIX_HEALTHPORT", "2")
            .output()
            .expect("run brindle node diags")
    };
    let o = run(&out_dir);
    let stdout = String::from_utf8_lossy(&o.stdout);
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert!(o.status.success(), "{stdout}\n{stderr}");
    let tarball = stdout
        .lines()
        .find_map(|l| l.strip_prefix("Diags saved to "))
        .unwrap_or_else(|| panic!("no tarball in:\n{stdout}"));
    assert!(stderr.contains("collectors failed (see SUMMARY.txt)"), "{stderr}");
    let x = tmp.untar(tarball, "x");
    let top = std::fs::read_dir(&x).unwrap().next().unwrap().unwrap().path();
    let read = |f: &str| std::fs::read_to_string(top.join(f)).unwrap_or_else(|e| panic!("{f}: {e}"));
    // Failed, each with its reason.
    assert!(read("status/node-status.txt.error").contains("Calico process is not running"));
    assert!(read("agent/metrics.txt.error").contains("connect to 127.0.0.1:1"));
    assert!(read("agent/readiness.txt.error").contains("connect to 127.0.0.1:2"));
    let ds = read("datastore/resources.error");
    assert!(
        ds.contains("no-such.db") && ds.contains("spec.datastorePath"),
        "{ds}"
    );
    assert!(read("logs/log-dir.error").contains("no-logs"));
    assert!(read("config/cni-net.d.error").contains("no-net.d"));
    let c = read("config/calicoctl.cfg");
    assert!(
        c.contains("  etcdUsername: admin\n  etcdPassword: \"<redacted>\"\n"),
        "{c}"
    );
    // The rest still collected: the namespace's (empty) network state and its sysctls.
    assert!(read("network/ip-link.txt").contains("lo:"));
    assert!(read("sysctl.txt").contains("net.ipv4.ip_forward = "));
    assert!(read("config/env.txt").contains("NODENAME=diag-node\n"));
    let summary = read("SUMMARY.txt");
    assert!(
        summary.contains("collectors failed:") && summary.contains("node status"),
        "{summary}"
    );
    assert!(!missing.exists(), "a read-only command created the store");
    let grep = Command::new("grep")
        .args(["-r", "-l", "s3cr3t"])
        .arg(&x)
        .output()
        .unwrap();
    assert!(
        grep.stdout.is_empty(),
        "secret left in {}",
        String::from_utf8_lossy(&grep.stdout)
    );

    // Nowhere to write: the one case that fails the command.
    let o = run(&tmp.join("not-a-dir"));
    assert!(!o.status.success());
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert!(stderr.contains("not-a-dir"), "{stderr}");
}
