//! `brindle install-cni` as an operator and an init container run it: into non-default
//! directories (Debian's `/usr/lib/cni` layout under a test root), re-run without changing a
//! byte or an mtime, templates from `CNI_NETWORK_CONFIG(_FILE)` with Calico's placeholders and
//! etcd TLS assets, what a re-run removes, refusals that leave nothing behind, and an
//! uninstall that removes exactly what was written.

use std::collections::BTreeMap;
use std::os::unix::fs::MetadataExt as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use brindle_testkit::TempDir;
use serde_json::Value;

const NAMES: [&str; 4] = ["brindle", "brindle-ipam", "calico", "calico-ipam"];

struct Host {
    dir: TempDir,
    bin: PathBuf,
    conf: PathBuf,
}

impl Host {
    fn new() -> Host {
        let dir = TempDir::new("icni");
        let bin = dir.join("usr/lib/cni");
        let conf = dir.join("etc/cni/net.d");
        Host { dir, bin, conf }
    }

    fn run(&self, env: &[(&str, &str)], extra: &[&str]) -> Output {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_brindle"));
        cmd.env_clear()
            .env("PATH", "/usr/sbin:/usr/bin:/sbin:/bin")
            // No host TLS assets leak in from the machine.
            .env("TLS_ASSETS_DIR", self.dir.join("no-secrets"))
            .envs(env.iter().copied())
            .arg("install-cni")
            .arg("--bin-dir")
            .arg(&self.bin)
            .arg("--conf-dir")
            .arg(&self.conf)
            .args(extra);
        cmd.output().unwrap()
    }

    fn ok(&self, env: &[(&str, &str)], extra: &[&str]) -> String {
        let out = self.run(env, extra);
        assert!(
            out.status.success(),
            "install-cni failed: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    }

    fn conflist(&self, name: &str) -> Value {
        serde_json::from_slice(&std::fs::read(self.conf.join(name)).unwrap()).unwrap()
    }
}

/// Every file under `root`: (mtime ns, inode, size) by relative path.
fn snapshot(root: &Path) -> BTreeMap<String, (i64, u64, u64)> {
    let mut out = BTreeMap::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let e = e.unwrap();
            let md = std::fs::symlink_metadata(e.path()).unwrap();
            if md.is_dir() {
                stack.push(e.path());
            }
            let rel = e.path().strip_prefix(root).unwrap().display().to_string();
            out.insert(
                rel,
                (md.mtime() * 1_000_000_000 + md.mtime_nsec(), md.ino(), md.size()),
            );
        }
    }
    out
}

/// Runs an installed plugin name as a runtime would for VERSION.
fn version_of(path: &Path) -> Value {
    use std::io::Write as _;
    let mut child = Command::new(path)
        .env_clear()
        .env("CNI_COMMAND", "VERSION")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(br#"{"cniVersion":"1.0.0"}"#)
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "{}: {out:?}", path.display());
    serde_json::from_slice(&out.stdout).unwrap()
}

#[test]
fn fresh_install_then_a_rerun_changes_nothing() {
    let h = Host::new();
    let out = h.ok(&[], &[]);
    for n in NAMES {
        let p = h.bin.join(n);
        assert!(out.contains(&format!("installed {}", p.display())), "{out}");
        let md = std::fs::metadata(&p).unwrap();
        assert_eq!(md.mode() & 0o777, 0o755, "{n}");
        // Every name answers as the CNI plugin, Calico's names included.
        let v = version_of(&p);
        assert!(
            v["supportedVersions"]
                .as_array()
                .unwrap()
                .iter()
                .any(|x| x == "1.0.0"),
            "{n}: {v}"
        );
    }
    // `calico -v` prints the version, as Calico's plugin does (Calico's install-cni runs it).
    let v = Command::new(h.bin.join("calico"))
        .arg("-v")
        .env_clear()
        .output()
        .unwrap();
    assert!(v.status.success(), "{v:?}");
    assert_eq!(
        String::from_utf8_lossy(&v.stdout).trim(),
        env!("CARGO_PKG_VERSION")
    );

    // The default template: the plugin chained with portmap, Brindle's SQLite datastore.
    let c = h.conflist("10-brindle.conflist");
    assert_eq!(c["name"], "k8s-pod-network");
    assert_eq!(c["plugins"][0]["type"], "brindle");
    assert_eq!(c["plugins"][0]["datastore_type"], "sqlite");
    assert_eq!(c["plugins"][0]["mtu"], 1500);
    assert_eq!(c["plugins"][0]["ipam"]["type"], "brindle-ipam");
    assert_eq!(c["plugins"][1]["type"], "portmap");
    let md = std::fs::metadata(h.conf.join("10-brindle.conflist")).unwrap();
    assert_eq!(md.mode() & 0o777, 0o644);

    // A re-run: every path unchanged, not a single mtime or inode moved, no temporary left.
    let before = snapshot(h.dir.path());
    std::thread::sleep(std::time::Duration::from_millis(20));
    let again = h.ok(&[], &[]);
    assert!(again.lines().all(|l| l.starts_with("unchanged ")), "{again}");
    assert_eq!(again.lines().count(), 5, "{again}");
    assert_eq!(before, snapshot(h.dir.path()));
    assert!(!before.keys().any(|k| k.contains("brindle-tmp")), "{before:?}");
}

#[test]
fn templates_placeholders_and_tls_assets() {
    let h = Host::new();
    // The etcd Secret as Kubernetes mounts it (mode 0400 files).
    let secrets = h.dir.join("calico-secrets");
    std::fs::create_dir_all(&secrets).unwrap();
    for (n, body) in [
        ("etcd-ca", "CA\n"),
        ("etcd-cert", "CERT\n"),
        ("etcd-key", "KEY\n"),
    ] {
        std::fs::write(secrets.join(n), body).unwrap();
        std::fs::set_permissions(
            secrets.join(n),
            std::os::unix::fs::PermissionsExt::from_mode(0o400),
        )
        .unwrap();
    }
    // Calico's calico-etcd.yaml cni_network_config, verbatim in shape.
    let template = r#"{
  "name": "k8s-pod-network",
  "cniVersion": "1.0.0",
  "plugins": [
    {
      "type": "calico",
      "log_level": "__LOG_LEVEL__",
      "log_file_path": "__LOG_FILE_PATH__",
      "etcd_endpoints": "__ETCD_ENDPOINTS__",
      "etcd_key_file": "__ETCD_KEY_FILE__",
      "etcd_cert_file": "__ETCD_CERT_FILE__",
      "etcd_ca_cert_file": "__ETCD_CA_CERT_FILE__",
      "nodename": "__KUBERNETES_NODE_NAME__",
      "mtu": __CNI_MTU__,
      "ipam": {"type": "calico-ipam"},
      "policy": {"type": "k8s"},
      "kubernetes": {"kubeconfig": "__KUBECONFIG_FILEPATH__"}
    },
    {"type": "portmap", "snat": true, "capabilities": {"portMappings": true}}
  ]
}"#;
    let secrets_s = secrets.display().to_string();
    let env = [
        ("CNI_NETWORK_CONFIG", template),
        ("CNI_CONF_NAME", "10-calico.conflist"),
        ("CNI_NET_DIR", "/etc/cni/net.d"),
        ("CNI_MTU", "0"),
        ("ETCD_ENDPOINTS", "https://10.0.0.1:2379,https://10.0.0.2:2379"),
        ("KUBERNETES_NODE_NAME", "worker-3"),
        ("LOG_LEVEL", "debug"),
        ("TLS_ASSETS_DIR", secrets_s.as_str()),
    ];
    let out = h.ok(&env, &[]);
    let c = h.conflist("10-calico.conflist");
    let p = &c["plugins"][0];
    assert_eq!(p["etcd_endpoints"], "https://10.0.0.1:2379,https://10.0.0.2:2379");
    // The files are named as the host sees them (CNI_NET_DIR), not as this process does.
    assert_eq!(p["etcd_ca_cert_file"], "/etc/cni/net.d/brindle-tls/etcd-ca");
    assert_eq!(p["etcd_cert_file"], "/etc/cni/net.d/brindle-tls/etcd-cert");
    assert_eq!(p["etcd_key_file"], "/etc/cni/net.d/brindle-tls/etcd-key");
    assert_eq!(p["kubernetes"]["kubeconfig"], "/etc/cni/net.d/calico-kubeconfig");
    assert_eq!(p["nodename"], "worker-3");
    assert_eq!(p["mtu"], 0);
    assert_eq!(p["log_level"], "debug");
    assert_eq!(p["log_file_path"], "/var/log/brindle/cni/cni.log");
    for n in ["etcd-ca", "etcd-cert", "etcd-key"] {
        let f = h.conf.join("brindle-tls").join(n);
        assert!(out.contains(&format!("installed {}", f.display())), "{out}");
        assert_eq!(std::fs::metadata(&f).unwrap().mode() & 0o777, 0o400, "{n}");
    }
    assert_eq!(
        std::fs::read_to_string(h.conf.join("brindle-tls/etcd-cert")).unwrap(),
        "CERT\n"
    );
    assert!(!h.conf.join("10-brindle.conflist").exists());

    // A rotated certificate is installed again; the rest stays.
    std::fs::set_permissions(
        secrets.join("etcd-cert"),
        std::os::unix::fs::PermissionsExt::from_mode(0o600),
    )
    .unwrap();
    std::fs::write(secrets.join("etcd-cert"), "CERT2\n").unwrap();
    std::fs::set_permissions(
        secrets.join("etcd-cert"),
        std::os::unix::fs::PermissionsExt::from_mode(0o400),
    )
    .unwrap();
    let out = h.ok(&env, &[]);
    let changed: Vec<&str> = out.lines().filter(|l| !l.starts_with("unchanged ")).collect();
    assert_eq!(
        changed,
        vec![format!(
            "installed {}",
            h.conf.join("brindle-tls/etcd-cert").display()
        )],
        "{out}"
    );

    // The same template from a file; plain-host TLS: no assets, ETCD_*_FILE as they are.
    let file = h.dir.join("template.json");
    std::fs::write(&file, template).unwrap();
    let file_s = file.display().to_string();
    let h2 = Host::new();
    h2.ok(
        &[
            ("CNI_NETWORK_CONFIG_FILE", file_s.as_str()),
            ("CNI_NETWORK_CONFIG", "ignored when the file is given"),
            ("ETCD_ENDPOINTS", "https://10.0.0.1:2379"),
            ("ETCD_CA_CERT_FILE", "/etc/brindle/pki/ca.pem"),
            ("ETCD_CERT_FILE", "/etc/brindle/pki/node.pem"),
            ("ETCD_KEY_FILE", "/etc/brindle/pki/node-key.pem"),
        ],
        &[],
    );
    let p = &h2.conflist("10-brindle.conflist")["plugins"][0];
    assert_eq!(p["etcd_ca_cert_file"], "/etc/brindle/pki/ca.pem");
    assert_eq!(p["etcd_key_file"], "/etc/brindle/pki/node-key.pem");
    assert_eq!(p["mtu"], 1500);
    assert!(!h2.conf.join("brindle-tls").exists());
}

#[test]
fn refusals_leave_nothing_behind() {
    let h = Host::new();
    std::fs::create_dir_all(&h.conf).unwrap();
    std::fs::write(h.conf.join("87-podman-bridge.conflist"), "{}").unwrap();
    let before = snapshot(h.dir.path());
    for (env, why) in [
        (
            vec![("CNI_MTU", "fifteen-hundred")],
            "not valid JSON after substitution",
        ),
        (
            vec![(
                "CNI_NETWORK_CONFIG",
                r#"{"name":"n","cniVersion":"1.0.0","type":"brindle","ipam":{"type":"brindle-ipam"},"x":"__TYPO_PLACEHOLDER__"}"#,
            )],
            "unknown placeholder __TYPO_PLACEHOLDER__",
        ),
        (
            vec![(
                "CNI_NETWORK_CONFIG",
                r#"{"name":"n","cniVersion":"1.0.0","type":"calico","ipam":{"type":"calico-ipam"},"datastore_type":"kubernetes"}"#,
            )],
            "kubernetes datastore is not supported",
        ),
        (
            vec![("CNI_CONF_NAME", "brindle.yaml")],
            "CNI_CONF_NAME=brindle.yaml",
        ),
        (
            vec![("UPDATE_CNI_BINARIES", "maybe")],
            "UPDATE_CNI_BINARIES=maybe",
        ),
        (
            vec![("CNI_NETWORK_CONFIG_FILE", "/nonexistent/template")],
            "/nonexistent/template",
        ),
    ] {
        let out = h.run(&env, &[]);
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success() && err.contains(why), "{env:?}: {err}");
        assert_eq!(before, snapshot(h.dir.path()), "{env:?} left something");
    }
}

#[test]
fn reruns_remove_what_they_no_longer_write() {
    let h = Host::new();
    h.ok(&[("CNI_CONF_NAME", "10-first.conflist")], &[]);
    // A new name and skipped binaries: the old conflist and those binaries go.
    let out = h.ok(
        &[
            ("CNI_CONF_NAME", "10-second.conflist"),
            ("SKIP_CNI_BINARIES", "calico,calico-ipam"),
        ],
        &[],
    );
    assert!(
        out.contains(&format!("removed {}", h.conf.join("10-first.conflist").display())),
        "{out}"
    );
    assert!(
        out.contains(&format!("removed {}", h.bin.join("calico").display())),
        "{out}"
    );
    assert!(!h.bin.join("calico-ipam").exists() && h.bin.join("brindle").exists());
    assert!(h.conf.join("10-second.conflist").exists());

    // UPDATE_CNI_BINARIES=false leaves an existing binary as it is (Calico's rule).
    std::fs::write(h.bin.join("calico"), "#!/bin/sh\n").unwrap();
    let out = h.ok(&[("UPDATE_CNI_BINARIES", "false")], &[]);
    assert!(out.contains("exists and UPDATE_CNI_BINARIES=false"), "{out}");
    assert_eq!(
        std::fs::read_to_string(h.bin.join("calico")).unwrap(),
        "#!/bin/sh\n"
    );

    // Extra plugins (portmap) are installed and recorded like the rest.
    let extra = h.dir.join("extra");
    std::fs::create_dir_all(&extra).unwrap();
    std::fs::copy("/bin/true", extra.join("portmap")).unwrap();
    let out = h.ok(&[], &["--extra-plugins-dir", extra.to_str().unwrap()]);
    assert!(
        out.contains(&format!("installed {}", h.bin.join("portmap").display())),
        "{out}"
    );
    let out = h.ok(&[], &["--uninstall"]);
    assert!(
        out.contains(&format!("removed {}", h.bin.join("portmap").display())),
        "{out}"
    );
}

#[test]
fn uninstall_removes_exactly_what_was_written() {
    let h = Host::new();
    // Another network's files, there before and after.
    std::fs::create_dir_all(&h.bin).unwrap();
    std::fs::create_dir_all(&h.conf).unwrap();
    std::fs::copy("/bin/true", h.bin.join("bridge")).unwrap();
    std::fs::write(h.conf.join("87-podman-bridge.conflist"), "{\"name\":\"podman\"}").unwrap();
    h.ok(&[], &[]);
    // An operator edits the conflist after the install: uninstall keeps it.
    let conflist = h.conf.join("10-brindle.conflist");
    let edited = std::fs::read_to_string(&conflist)
        .unwrap()
        .replace("\"info\"", "\"debug\"");
    std::fs::write(&conflist, &edited).unwrap();

    let out = h.ok(&[], &["--uninstall"]);
    for n in NAMES {
        assert!(!h.bin.join(n).exists(), "{n} left");
        assert!(
            out.contains(&format!("removed {}", h.bin.join(n).display())),
            "{out}"
        );
    }
    assert!(
        out.contains(&format!(
            "kept {}: changed since install-cni wrote it",
            conflist.display()
        )),
        "{out}"
    );
    assert_eq!(std::fs::read_to_string(&conflist).unwrap(), edited);
    assert!(h.bin.join("bridge").exists());
    assert_eq!(
        std::fs::read_to_string(h.conf.join("87-podman-bridge.conflist")).unwrap(),
        "{\"name\":\"podman\"}"
    );
    // The directories existed before, so they stay; the record is gone.
    assert!(h.bin.is_dir() && h.conf.is_dir());
    assert!(!h.conf.join(".brindle-install-cni.record").exists());
    // A second uninstall has nothing to do.
    let out = h.ok(&[], &["--uninstall"]);
    assert!(out.contains("nothing to uninstall"), "{out}");

    // Directories install-cni created are removed with it.
    let h = Host::new();
    h.ok(&[], &[]);
    h.ok(&[], &["--uninstall"]);
    assert!(!h.bin.exists() && !h.conf.exists());
}
