//! A second real runtime: containerd 1.6 (Debian) with `ctr run --cni`, against the conflist
//! `brindle install-cni` wrote. Two containers of a locally built busybox image get /32s from
//! the pool, reach each other and the host, and their addresses are released when they end.
//!
//! How it runs on a shared machine: containerd has its own root, state and socket in the test's
//! directory (the CRI plugin off) and is stopped by PID; `ctr` runs in the node's network
//! namespace and in a private mount namespace where the test's CNI directories are mounted on
//! ctr's fixed `/opt/cni/bin` and `/etc/cni/net.d`, so the host's are never read or touched.
//! containerd 1.6 runs CNI DEL only from a foreground `ctr run --cni --rm`, so each container
//! is such a `ctr run`, ended by killing its task. containerd passes `<namespace>-<id>` as the
//! container ID: the two IDs share far more than 11 leading characters, which the host veth
//! names must survive.

mod cni_support;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use brindle_testkit::Daemon;
use cni_support::{Lab, NODE};

/// containerd with everything under `dir`, killed by PID on drop (its containers first).
struct Containerd {
    dir: PathBuf,
    ns: String,
    daemon: Daemon,
    containers: std::cell::RefCell<Vec<String>>,
}

impl Containerd {
    fn start(dir: &Path) -> Containerd {
        brindle_testkit::require::command("containerd", "containerd");
        brindle_testkit::require::command("ctr", "containerd");
        brindle_testkit::require::command("runc", "runc");
        std::fs::create_dir_all(dir).unwrap();
        let config = dir.join("config.toml");
        std::fs::write(
            &config,
            format!(
                "version = 2\nroot = \"{root}\"\nstate = \"{state}\"\n\
                 disabled_plugins = [\"io.containerd.grpc.v1.cri\"]\n\
                 [grpc]\n  address = \"{sock}\"\n\
                 [ttrpc]\n  address = \"{sock}.ttrpc\"\n\
                 [debug]\n  address = \"\"\n\
                 [metrics]\n  address = \"\"\n",
                root = dir.join("root").display(),
                state = dir.join("state").display(),
                sock = dir.join("containerd.sock").display(),
            ),
        )
        .unwrap();
        let mut cmd = Command::new("containerd");
        cmd.arg("--config").arg(&config);
        let mut daemon = Daemon::spawn("containerd", cmd, &dir.join("containerd.log"));
        let sock = dir.join("containerd.sock");
        daemon.wait_until("containerd socket", Duration::from_secs(30), || {
            sock.exists()
                && Command::new("ctr")
                    .arg("--address")
                    .arg(&sock)
                    .arg("version")
                    .output()
                    .is_ok_and(|o| o.status.success())
        });
        Containerd {
            dir: dir.to_path_buf(),
            ns: brindle_testkit::names::unique("bt"),
            daemon,
            containers: Default::default(),
        }
    }

    fn ctr(&self) -> Command {
        let mut c = Command::new("ctr");
        c.arg("--address")
            .arg(self.dir.join("containerd.sock"))
            .arg("--namespace")
            .arg(&self.ns);
        c
    }

    fn ok(&self, args: &[&str]) -> String {
        let out = self.ctr().args(args).output().unwrap();
        assert!(out.status.success(), "ctr {args:?}: {out:?}");
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// The busybox-static image, built from a rootfs by podman (import, then save as a docker
    /// archive) and imported: nothing is pulled.
    fn import_busybox(&self, name: &str) {
        brindle_testkit::require::command("/bin/busybox", "busybox-static");
        let work = self.dir.join("image");
        let rootfs = work.join("rootfs");
        for d in ["bin", "tmp", "proc", "sys", "dev", "etc"] {
            std::fs::create_dir_all(rootfs.join(d)).unwrap();
        }
        std::fs::copy("/bin/busybox", rootfs.join("bin/busybox")).unwrap();
        for applet in ["sh", "ip", "ping", "sleep", "cat"] {
            std::os::unix::fs::symlink("busybox", rootfs.join("bin").join(applet)).unwrap();
        }
        let tar = work.join("rootfs.tar");
        brindle_testkit::netns::run(
            Command::new("tar")
                .arg("-C")
                .arg(&rootfs)
                .arg("-cf")
                .arg(&tar)
                .arg("."),
        );
        let podman = |args: &[&str]| {
            let mut c = Command::new("podman");
            c.arg("--root")
                .arg(work.join("storage"))
                .arg("--runroot")
                .arg(work.join("run"))
                .args(["--storage-driver", "vfs", "--events-backend", "file"])
                .args(args);
            brindle_testkit::netns::run(&mut c)
        };
        podman(&["import", tar.to_str().unwrap(), name]);
        let archive = work.join("image.tar");
        podman(&[
            "save",
            "--format",
            "docker-archive",
            "-o",
            archive.to_str().unwrap(),
            name,
        ]);
        self.ok(&[
            "images",
            "import",
            "--snapshotter",
            "native",
            archive.to_str().unwrap(),
        ]);
    }

    /// `ctr run --cni --rm` in the node namespace with the test's CNI directories on ctr's
    /// fixed paths: a foreground run, as the only one containerd 1.6 sends DEL for.
    fn run(&self, lab: &Lab, cni_root: &Path, image: &str, id: &str) -> Daemon {
        let script = format!(
            "set -e; mount --make-rprivate /; \
             mount --bind {root}/etc/cni/net.d /etc/cni/net.d; \
             mount --bind {root}/opt /opt; \
             exec ctr --address {sock} --namespace {ns} run --cni --rm --snapshotter native \
             {image} {id} sleep 600",
            root = cni_root.display(),
            sock = self.dir.join("containerd.sock").display(),
            ns = self.ns,
        );
        std::fs::create_dir_all("/etc/cni/net.d").unwrap();
        let mut cmd = lab.node.cmd("unshare");
        cmd.args(["--mount", "sh", "-c", &script])
            .env("BRINDLE_STATE_DIR", lab.dir.join("state"))
            .env("BRINDLE_CTL_SOCKET", lab.dir.join("brindle.ctl"));
        self.containers.borrow_mut().push(id.to_string());
        Daemon::spawn(
            &format!("ctr run {id}"),
            cmd,
            &self.dir.join(format!("ctr-{id}.log")),
        )
    }

    fn exec(&self, id: &str, cmd: &[&str]) -> Output {
        let exec_id = brindle_testkit::names::unique("x");
        self.ctr()
            .args(["task", "exec", "--exec-id", &exec_id, id])
            .args(cmd)
            .output()
            .unwrap()
    }

    /// The container's eth0 IPv4 address with its prefix, once CNI has wired it.
    fn addr(&self, id: &str, ctr_run: &mut Daemon) -> String {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let out = self.exec(id, &["ip", "-o", "-4", "addr", "show", "dev", "eth0"]);
            let text = String::from_utf8_lossy(&out.stdout).into_owned();
            if let Some(a) = text.split_whitespace().skip_while(|w| *w != "inet").nth(1) {
                return a.to_string();
            }
            assert!(
                ctr_run.is_running() && Instant::now() < deadline,
                "{id} never got an address: {text}\n--- ctr ---\n{}",
                ctr_run.log()
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    fn ping(&self, id: &str, to: &str) -> bool {
        self.exec(id, &["ping", "-c", "3", "-i", "0.2", "-W", "1", to])
            .status
            .success()
    }

    /// Ends a container the way its foreground `ctr run --rm` notices: SIGKILL to its task
    /// (a shell or sleep as PID 1 ignores SIGTERM). ctr then runs CNI DEL and removes it.
    fn stop(&self, id: &str, ctr_run: &mut Daemon) -> std::process::ExitStatus {
        self.ok(&["task", "kill", "--signal", "SIGKILL", id]);
        let st = ctr_run
            .wait(Duration::from_secs(60))
            .unwrap_or_else(|| panic!("ctr run {id} did not return:\n{}", ctr_run.log()));
        self.containers.borrow_mut().retain(|c| c != id);
        st
    }
}

impl Drop for Containerd {
    fn drop(&mut self) {
        for id in self.containers.borrow().iter() {
            let _ = self
                .ctr()
                .args(["task", "kill", "--signal", "SIGKILL", id])
                .output();
            std::thread::sleep(Duration::from_millis(200));
            let _ = self.ctr().args(["task", "rm", "-f", id]).output();
            let _ = self.ctr().args(["container", "rm", id]).output();
        }
        self.daemon.kill();
    }
}

#[test]
fn ctr_run_cni_on_the_conflist_install_cni_wrote() {
    let lab = Lab::new();
    std::fs::create_dir_all(lab.dir.join("state")).unwrap();
    // What the agent leaves for the plugin: the node's name.
    std::fs::write(lab.dir.join("state/nodename"), NODE).unwrap();

    // install-cni into the test's /opt/cni/bin and /etc/cni/net.d, Debian's portmap alongside.
    let cni_root = lab.dir.join("root");
    let extra = lab.dir.join("extra-plugins");
    std::fs::create_dir_all(&extra).unwrap();
    std::fs::copy(
        brindle_testkit::require::command("/usr/lib/cni/portmap", "containernetworking-plugins"),
        extra.join("portmap"),
    )
    .unwrap();
    let out = Command::new(cni_support::bin())
        .arg("install-cni")
        .arg("--bin-dir")
        .arg(cni_root.join("opt/cni/bin"))
        .arg("--conf-dir")
        .arg(cni_root.join("etc/cni/net.d"))
        .arg("--extra-plugins-dir")
        .arg(&extra)
        .env_clear()
        .env("PATH", "/usr/sbin:/usr/bin:/sbin:/bin")
        .env("TLS_ASSETS_DIR", lab.dir.join("none"))
        .env("DATASTORE_TYPE", "sqlite")
        .env("BRINDLE_DATASTORE_PATH", lab.dir.join("brindle.db"))
        .env("LOG_FILE_PATH", lab.dir.join("cni.log"))
        .env("LOG_LEVEL", "debug")
        .output()
        .unwrap();
    assert!(out.status.success(), "install-cni: {out:?}");

    let ctd = Containerd::start(&lab.dir.join("containerd"));
    let image = format!("localhost/{}:latest", brindle_testkit::names::unique("bbctd"));
    ctd.import_busybox(&image);

    // IDs alike for far more than 11 characters, as containerd's `<namespace>-<id>` makes them.
    let stem = brindle_testkit::names::unique("web");
    let (id_a, id_b) = (format!("{stem}-a"), format!("{stem}-b"));
    let mut run_a = ctd.run(&lab, &cni_root, &image, &id_a);
    let mut run_b = ctd.run(&lab, &cni_root, &image, &id_b);
    let a = ctd.addr(&id_a, &mut run_a);
    let b = ctd.addr(&id_b, &mut run_b);
    assert!(a.ends_with("/32") && b.ends_with("/32"), "{a} {b}");
    let (ip_a, ip_b) = (a.trim_end_matches("/32"), b.trim_end_matches("/32"));
    assert!(ip_a.starts_with("10.233.") && ip_b.starts_with("10.233.") && ip_a != ip_b);

    // Each reaches the other and the host; the host reaches both.
    assert!(ctd.ping(&id_a, ip_b), "a cannot reach b");
    assert!(ctd.ping(&id_b, ip_a), "b cannot reach a");
    assert!(ctd.ping(&id_a, "172.20.42.80"), "a cannot reach the host");
    assert!(lab.node.reach(ip_b), "the host cannot reach b");

    // What Brindle recorded: two allocations, two endpoints named after containerd's IDs.
    assert_eq!(lab.allocated().len(), 2, "{:?}", lab.allocated());
    let weps = lab.endpoints();
    for id in [&id_a, &id_b] {
        let full = format!("{}-{id}", ctd.ns);
        assert!(
            weps.iter()
                .any(|k| k.ends_with(&format!("/default/{NODE}-cni-{}-eth0", full.replace('-', "--")))),
            "{full}: {weps:?}"
        );
    }

    // The end of a foreground `ctr run --cni --rm` sends DEL: address, endpoint, veth gone.
    let links = lab.node_links().len();
    ctd.stop(&id_a, &mut run_a);
    assert!(
        !lab.allocated().contains(&ip_a.parse().unwrap()),
        "{ip_a} still allocated"
    );
    assert_eq!(lab.allocated().len(), 1);
    assert_eq!(lab.endpoints().len(), 1);
    assert_eq!(lab.node_links().len(), links - 1);
    ctd.stop(&id_b, &mut run_b);
    assert!(lab.allocated().is_empty(), "{:?}", lab.allocated());
    assert!(lab.endpoints().is_empty());
    let log = lab.log();
    assert!(
        log.contains("brindle ADD") && log.contains("brindle DEL"),
        "{log}"
    );
}
