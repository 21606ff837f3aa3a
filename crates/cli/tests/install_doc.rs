//! docs/INSTALL.md, followed step by step on three hosts: the test runs exactly the command
//! blocks the document marks with `<!-- install-test: HOSTS [FLAGS] -->`, in order, on the
//! hosts named (`all`, or `host1`…`host3`), so the document and the install cannot drift.
//!
//! A host is a podman container booting real systemd as PID 1 (so `systemctl enable --now`
//! runs Debian's etcd unit and Brindle's unit for real) over an overlay of this machine's root
//! (its packages; writes stay in the overlay), in its own network namespace on a shared bridge
//! (192.0.2.11–13/24), named host1…host3. It boots `basic.target`, so none of this machine's
//! enabled services start unless a step starts them. What the document leaves to the reader is
//! done by the test instead: the binary is on every host at /usr/local/bin/brindle, `scp`
//! between hosts (flag `scp`) copies the named files, and `ctr image pull` is an import of a
//! locally built busybox image under the same name. Flags: `retry` re-runs a block until it
//! succeeds (a reader waiting for BGP), `background` starts it and goes on, `prints=TEXT`
//! requires TEXT in its output (what the document says the reader sees). Blocks run with bash
//! `-euo pipefail` from the repository's root (the document's checkout).

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use brindle_testkit::{Netns, TempDir};

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .unwrap()
}

/// One marked block of the document.
#[derive(Debug, Clone)]
struct Step {
    line: usize,
    hosts: Vec<String>,
    flags: Vec<String>,
    script: String,
}

const HOSTS: [&str; 3] = ["host1", "host2", "host3"];
const MARK: &str = "<!-- install-test:";

fn steps(doc: &str) -> Vec<Step> {
    let lines: Vec<&str> = doc.lines().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < lines.len() {
        if let Some(rest) = lines[i].trim().strip_prefix(MARK) {
            let words: Vec<String> = rest
                .trim_end_matches("-->")
                .split_whitespace()
                .map(str::to_string)
                .collect();
            let (mut hosts, flags): (Vec<String>, Vec<String>) = words
                .into_iter()
                .partition(|w| w == "all" || HOSTS.contains(&w.as_str()));
            if hosts.iter().any(|h| h == "all") {
                hosts = HOSTS.iter().map(|h| h.to_string()).collect();
            }
            assert!(!hosts.is_empty(), "line {}: no host named", i + 1);
            let open = i + 1;
            assert!(
                lines.get(open).is_some_and(|l| l.starts_with("```sh")),
                "line {}: a marked block must follow its mark",
                open + 1
            );
            let end = (open + 1..lines.len())
                .find(|&j| lines[j].starts_with("```"))
                .unwrap_or_else(|| panic!("line {}: unterminated block", open + 1));
            out.push(Step {
                line: open + 1,
                hosts,
                flags,
                script: lines[open + 1..end].join("\n"),
            });
            i = end;
        }
        i += 1;
    }
    out
}

/// The three hosts: a bridge namespace, one namespace and one systemd container per host.
struct Hosts {
    podman_dir: TempDir,
    names: Vec<String>,
    _ns: Vec<Netns>,
    _fabric: Netns,
}

impl Hosts {
    fn podman(&self) -> Command {
        let d = self.podman_dir.path();
        let mut c = Command::new("podman");
        c.env("CONTAINERS_CONF", d.join("containers.conf"))
            .arg("--root")
            .arg(d.join("storage"))
            .arg("--runroot")
            .arg(d.join("run"))
            .args(["--storage-driver", "vfs", "--events-backend", "file"]);
        c
    }

    fn start() -> Hosts {
        brindle_testkit::require::root();
        brindle_testkit::require::command("podman", "podman");
        brindle_testkit::require::command("/lib/systemd/systemd", "systemd");
        let fabric = Netns::new("ifab");
        fabric.ip(&["link", "add", "br0", "type", "bridge"]);
        fabric.ip(&["link", "set", "br0", "up"]);
        fabric.sysctl("net.bridge.bridge-nf-call-iptables", "0");
        let podman_dir = TempDir::new("idoc");
        std::fs::write(
            podman_dir.join("containers.conf"),
            "[containers]\ndefault_ulimits = [\"nofile=20000:20000\", \"nproc=8192:8192\"]\n\
             [engine]\ncgroup_manager = \"cgroupfs\"\nevents_logger = \"file\"\nruntime = \"runc\"\n",
        )
        .unwrap();
        let mut hosts = Hosts {
            podman_dir,
            names: Vec::new(),
            _ns: Vec::new(),
            _fabric: fabric,
        };
        for (i, h) in HOSTS.iter().enumerate() {
            let ns = Netns::new("ihst");
            // eth0 in the host, its peer on the bridge.
            let port = brindle_testkit::names::unique("ip");
            ns.ip(&["link", "add", "eth0", "type", "veth", "peer", "name", &port]);
            ns.ip(&["link", "set", &port, "netns", hosts._fabric.name()]);
            hosts._fabric.ip(&["link", "set", &port, "master", "br0", "up"]);
            ns.ip(&["addr", "add", &format!("192.0.2.{}/24", 11 + i), "dev", "eth0"]);
            ns.ip(&["link", "set", "eth0", "up"]);
            ns.ip(&["route", "add", "default", "via", "192.0.2.1"]);
            let name = brindle_testkit::names::unique(&format!("{h}-"));
            let lib_containerd = hosts.podman_dir.join(&format!("{h}-containerd"));
            std::fs::create_dir_all(&lib_containerd).unwrap();
            let out = hosts
                .podman()
                .args(["run", "-d", "--name", &name, "--hostname", h, "--privileged"])
                .arg(format!("--network=ns:{}", ns.path().display()))
                .args([
                    "--systemd=always",
                    "--tmpfs",
                    "/tmp:rw,notmpcopyup",
                    "--tmpfs",
                    "/run:rw,notmpcopyup",
                ])
                .args(["--tmpfs", "/var/tmp:rw,notmpcopyup"])
                // containerd's snapshots need a real filesystem, not the overlay root (a disk).
                .arg("-v")
                .arg(format!("{}:/var/lib/containerd", lib_containerd.display()))
                .arg("-v")
                .arg(format!(
                    "{}:/usr/local/bin/brindle:ro",
                    env!("CARGO_BIN_EXE_brindle")
                ))
                .args(["--rootfs", "/:O", "/lib/systemd/systemd", "--unit=basic.target"])
                .output()
                .unwrap();
            assert!(out.status.success(), "start {h}: {out:?}");
            hosts.names.push(name);
            hosts._ns.push(ns);
        }
        for h in HOSTS {
            let deadline = Instant::now() + Duration::from_secs(90);
            loop {
                let out = hosts.exec(h, &["systemctl", "is-system-running"]);
                let state = String::from_utf8_lossy(&out.stdout).trim().to_string();
                if state == "running" || state == "degraded" {
                    break;
                }
                assert!(Instant::now() < deadline, "{h} did not boot: {state}");
                std::thread::sleep(Duration::from_millis(500));
            }
        }
        hosts
    }

    fn container(&self, host: &str) -> &str {
        let i = HOSTS.iter().position(|h| *h == host).unwrap();
        &self.names[i]
    }

    fn exec(&self, host: &str, cmd: &[&str]) -> Output {
        self.podman()
            .args(["exec", "-w"])
            .arg(repo())
            .arg(self.container(host))
            .args(cmd)
            .output()
            .unwrap()
    }

    fn bash(&self, host: &str, script: &str) -> Output {
        self.exec(host, &["bash", "-euo", "pipefail", "-c", script])
    }

    fn journal(&self, host: &str, unit: &str) -> String {
        let out = self.exec(host, &["journalctl", "-u", unit, "--no-pager", "-n", "60"]);
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// `scp FILE… root@ADDR:DIR/` lines: each file is read on `from` and written on the host
    /// with that address.
    fn scp(&self, from: &str, script: &str) {
        for line in script.lines().filter(|l| l.trim_start().starts_with("scp ")) {
            let words: Vec<&str> = line.split_whitespace().skip(1).collect();
            let (dest, files) = words.split_last().unwrap();
            let (addr, dir) = dest.trim_start_matches("root@").split_once(':').unwrap();
            let to = match addr {
                "192.0.2.11" => "host1",
                "192.0.2.12" => "host2",
                "192.0.2.13" => "host3",
                other => panic!("scp to unknown host {other}"),
            };
            for f in files {
                let out = self.exec(from, &["cat", f]);
                assert!(out.status.success(), "scp: read {f} on {from}: {out:?}");
                let name = Path::new(f).file_name().unwrap().to_string_lossy().into_owned();
                let target = format!("{}/{name}", dir.trim_end_matches('/'));
                let mut child = self
                    .podman()
                    .args([
                        "exec",
                        "-i",
                        self.container(to),
                        "sh",
                        "-c",
                        &format!("cat > {target}"),
                    ])
                    .stdin(std::process::Stdio::piped())
                    .spawn()
                    .unwrap();
                use std::io::Write as _;
                child.stdin.take().unwrap().write_all(&out.stdout).unwrap();
                assert!(child.wait().unwrap().success(), "scp: write {target} on {to}");
            }
        }
    }

    /// What `ctr image pull docker.io/library/busybox:latest` would leave: the image, built here
    /// from busybox-static and imported into the host's containerd.
    fn busybox_image(&self, host: &str, dir: &Path) {
        let archive = dir.join("busybox.tar");
        if !archive.exists() {
            let rootfs = dir.join("bbroot");
            for d in ["bin", "tmp", "proc", "sys", "dev", "etc"] {
                std::fs::create_dir_all(rootfs.join(d)).unwrap();
            }
            std::fs::copy("/bin/busybox", rootfs.join("bin/busybox")).unwrap();
            for a in ["sh", "ip", "ping", "sleep"] {
                std::os::unix::fs::symlink("busybox", rootfs.join("bin").join(a)).unwrap();
            }
            let tar = dir.join("bbroot.tar");
            brindle_testkit::netns::run(
                Command::new("tar")
                    .arg("-C")
                    .arg(&rootfs)
                    .arg("-cf")
                    .arg(&tar)
                    .arg("."),
            );
            let name = "docker.io/library/busybox:latest";
            brindle_testkit::netns::run(self.podman().args(["import", tar.to_str().unwrap(), name]));
            brindle_testkit::netns::run(self.podman().args([
                "save",
                "--format",
                "docker-archive",
                "-o",
                archive.to_str().unwrap(),
                name,
            ]));
        }
        let data = std::fs::read(&archive).unwrap();
        let mut child = self
            .podman()
            .args(["exec", "-i", self.container(host), "ctr", "image", "import", "-"])
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        use std::io::Write as _;
        child.stdin.take().unwrap().write_all(&data).unwrap();
        let out = child.wait_with_output().unwrap();
        assert!(out.status.success(), "import busybox on {host}: {out:?}");
    }
}

impl Drop for Hosts {
    fn drop(&mut self) {
        for n in &self.names {
            let _ = self.podman().args(["rm", "-f", "-t", "0", n]).output();
        }
        let _ = self
            .podman()
            .args(["rmi", "-f", "docker.io/library/busybox:latest"])
            .output();
    }
}

#[test]
fn install_md_on_three_hosts_sharing_one_etcd() {
    let doc = std::fs::read_to_string(repo().join("docs/INSTALL.md")).unwrap();
    let steps = steps(&doc);
    assert!(steps.len() >= 10, "{steps:?}");
    let hosts = Hosts::start();
    let scratch = TempDir::new("idocimg");
    let mut images_on = Vec::new();
    for step in &steps {
        // The document pulls busybox once containerd runs; the test imports it then.
        if step.script.contains("ctr run") {
            for h in &step.hosts {
                if !images_on.contains(h) {
                    hosts.busybox_image(h, scratch.path());
                    images_on.push(h.clone());
                }
            }
        }
        for h in &step.hosts {
            if step.flags.iter().any(|f| f == "scp") {
                hosts.scp(h, &step.script);
                continue;
            }
            if step.flags.iter().any(|f| f == "background") {
                let out = hosts
                    .podman()
                    .args(["exec", "-d", "-w"])
                    .arg(repo())
                    .arg(hosts.container(h))
                    .args(["bash", "-euo", "pipefail", "-c", &step.script])
                    .output()
                    .unwrap();
                assert!(out.status.success(), "line {} on {h}: {out:?}", step.line);
                continue;
            }
            let retry = step.flags.iter().any(|f| f == "retry");
            let deadline = Instant::now() + Duration::from_secs(if retry { 120 } else { 0 });
            loop {
                let out = hosts.bash(h, &step.script);
                let printed = String::from_utf8_lossy(&out.stdout);
                let prints = step
                    .flags
                    .iter()
                    .filter_map(|f| f.strip_prefix("prints="))
                    .all(|want| printed.contains(want));
                if out.status.success() && prints {
                    break;
                }
                if Instant::now() >= deadline {
                    panic!(
                        "INSTALL.md line {} on {h} failed ({}):\n{}\n--- stdout ---\n{}\n--- stderr ---\n{}\n\
                         --- brindle-node ---\n{}\n--- etcd ---\n{}",
                        step.line,
                        out.status,
                        step.script,
                        String::from_utf8_lossy(&out.stdout),
                        String::from_utf8_lossy(&out.stderr),
                        hosts.journal(h, "brindle-node"),
                        hosts.journal("host1", "etcd"),
                    );
                }
                std::thread::sleep(Duration::from_secs(2));
            }
        }
    }

    // One cluster: every host sees the other two in its mesh (again, after host2's restart),
    // and all three nodes.
    for h in HOSTS {
        let deadline = Instant::now() + Duration::from_secs(120);
        loop {
            let out = hosts.bash(h, "brindle node status");
            let text = String::from_utf8_lossy(&out.stdout).into_owned();
            if text.matches("Established").count() == 2 {
                break;
            }
            assert!(Instant::now() < deadline, "{h}:\n{text}");
            std::thread::sleep(Duration::from_secs(1));
        }
    }
    let nodes = String::from_utf8_lossy(&hosts.bash("host3", "brindle get nodes").stdout).into_owned();
    for h in HOSTS {
        assert!(nodes.contains(h), "{nodes}");
    }
    // The ping pod ended: its address is released; the pod on host2 still holds one.
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let weps = String::from_utf8_lossy(&hosts.bash("host1", "brindle get workloadendpoints -A").stdout)
            .into_owned();
        if weps.matches("192.168.").count() == 1 {
            break;
        }
        assert!(Instant::now() < deadline, "endpoints left:\n{weps}");
        std::thread::sleep(Duration::from_secs(1));
    }
}
