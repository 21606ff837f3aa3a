//! The Containerfile: hadolint (pinned in .ci/deps) passes it and catches a bad one, and podman
//! builds it offline (`--network none`; no base image can be pulled here): the `BUILT` and
//! `RUNTIME` stages are replaced by images the test assembles — the binary this build made,
//! and a root filesystem with what the runtime stage installs (glibc, nft and its libraries,
//! portmap) — so the final stage is built exactly as written. The image then runs: `--version`,
//! `nft`, and `install-cni` as the DaemonSet's init container runs it, into host directories.

use std::path::{Path, PathBuf};
use std::process::Command;

use brindle_testkit::TempDir;

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn pytool(name: &str) -> PathBuf {
    let cache = std::env::var("BRINDLE_CI_CACHE").unwrap_or_else(|_| "/opt/brindle-ci".into());
    let p = Path::new(&cache).join("pytools/bin").join(name);
    assert!(p.is_file(), "{} not found: run .ci/deps", p.display());
    p
}

fn hadolint(file: &Path) -> (bool, String) {
    let out = Command::new(pytool("hadolint")).arg(file).output().unwrap();
    (
        out.status.success(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}

#[test]
fn hadolint_passes_the_containerfile() {
    let cf = repo().join("Containerfile");
    let (ok, out) = hadolint(&cf);
    assert!(ok, "{out}");
    // Not blind: an unpinned base and a `cd` in RUN are reported.
    let dir = TempDir::new("lint");
    let bad = dir.join("Containerfile");
    let text = std::fs::read_to_string(&cf).unwrap();
    std::fs::write(&bad, format!("{text}\nFROM debian\nRUN cd /tmp && ls\n")).unwrap();
    let (ok, out) = hadolint(&bad);
    assert!(!ok && out.contains("DL3006") && out.contains("DL3003"), "{out}");
}

/// Private podman storage and configuration, removed with the test directory.
struct Podman {
    dir: PathBuf,
    images: Vec<String>,
}

impl Podman {
    fn new(dir: &Path) -> Podman {
        brindle_testkit::require::command("podman", "podman");
        brindle_testkit::require::command("runc", "runc");
        std::fs::write(
            dir.join("containers.conf"),
            "[containers]\ndefault_ulimits = [\"nofile=1024:1024\", \"nproc=4096:4096\"]\n\
             [engine]\ncgroup_manager = \"cgroupfs\"\nevents_logger = \"file\"\nruntime = \"runc\"\n",
        )
        .unwrap();
        Podman {
            dir: dir.to_path_buf(),
            images: Vec::new(),
        }
    }

    fn cmd(&self) -> Command {
        let mut c = Command::new("podman");
        c.env("CONTAINERS_CONF", self.dir.join("containers.conf"))
            .arg("--root")
            .arg(self.dir.join("storage"))
            .arg("--runroot")
            .arg(self.dir.join("run"))
            .args(["--storage-driver", "vfs", "--events-backend", "file"]);
        c
    }

    fn ok(&self, args: &[&str]) -> String {
        let out = self.cmd().args(args).output().unwrap();
        assert!(
            out.status.success(),
            "podman {args:?}: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// `podman import` of a directory tree as `name`.
    fn import(&mut self, rootfs: &Path, name: &str) {
        let tar = rootfs.with_extension("tar");
        brindle_testkit::netns::run(
            Command::new("tar")
                .arg("-C")
                .arg(rootfs)
                .arg("-cf")
                .arg(&tar)
                .arg("."),
        );
        self.ok(&["import", tar.to_str().unwrap(), name]);
        self.images.push(name.to_string());
    }
}

impl Drop for Podman {
    fn drop(&mut self) {
        for i in self.images.iter().rev() {
            let _ = self.cmd().args(["rmi", "-f", i]).output();
        }
    }
}

/// Copies `file` and the shared libraries `ldd` lists for it under `root`, at their paths.
fn with_libraries(root: &Path, file: &Path, dest: &str) {
    let put = |src: &Path, dst: &str| {
        let to = root.join(dst.trim_start_matches('/'));
        std::fs::create_dir_all(to.parent().unwrap()).unwrap();
        std::fs::copy(src, &to).unwrap_or_else(|e| panic!("copy {}: {e}", src.display()));
    };
    put(file, dest);
    let ldd = brindle_testkit::netns::run(Command::new("ldd").arg(file));
    for l in ldd.lines() {
        // `libc.so.6 => /lib/x86_64-linux-gnu/libc.so.6 (0x…)` or `/lib64/ld-linux-x86-64.so.2 (0x…)`
        let path = l.split_whitespace().find(|w| w.starts_with('/'));
        if let Some(p) = path {
            put(Path::new(p), p);
        }
    }
}

#[test]
fn podman_builds_the_containerfile_offline_and_the_image_runs() {
    brindle_testkit::require::root();
    let nft = brindle_testkit::require::command("/usr/sbin/nft", "nftables");
    let portmap = brindle_testkit::require::command("/usr/lib/cni/portmap", "containernetworking-plugins");
    let dir = TempDir::new("img");
    let mut podman = Podman::new(dir.path());
    let tag = brindle_testkit::names::unique("bimg");

    // BUILT: the binary where the build stage leaves it.
    let built = dir.join("built");
    with_libraries(
        &built,
        Path::new(env!("CARGO_BIN_EXE_brindle")),
        "/out/usr/local/bin/brindle",
    );
    // Only the binary belongs in BUILT; its libraries come from RUNTIME.
    std::fs::remove_dir_all(built.join("lib")).ok();
    std::fs::remove_dir_all(built.join("lib64")).ok();
    let built_img = format!("localhost/{tag}-built:latest");
    podman.import(&built, &built_img);
    // RUNTIME: what `apt-get install nftables` and the portmap copy leave on a Debian base.
    let runtime = dir.join("runtime");
    with_libraries(&runtime, &nft, "/usr/sbin/nft");
    with_libraries(&runtime, &portmap, "/usr/lib/brindle/cni/portmap");
    with_libraries(&runtime, Path::new(env!("CARGO_BIN_EXE_brindle")), "/tmp/probe");
    std::fs::remove_file(runtime.join("tmp/probe")).unwrap();
    let runtime_img = format!("localhost/{tag}-runtime:latest");
    podman.import(&runtime, &runtime_img);

    let image = format!("localhost/{tag}-node:latest");
    let cf = repo().join("Containerfile");
    podman.ok(&[
        "build",
        "--network",
        "none",
        "--pull=never",
        "--build-arg",
        &format!("BUILT={built_img}"),
        "--build-arg",
        &format!("RUNTIME={runtime_img}"),
        "-t",
        &image,
        "-f",
        cf.to_str().unwrap(),
        repo().to_str().unwrap(),
    ]);
    podman.images.push(image.clone());

    let run = |args: &[&str]| {
        let mut a = vec!["run", "--rm", "--network", "none"];
        a.extend_from_slice(args);
        podman.ok(&a)
    };
    // The entrypoint is the binary; glibc and nft are there.
    assert!(run(&[&image, "--version"]).starts_with("brindle "));
    assert!(run(&["--entrypoint", "/usr/sbin/nft", &image, "--version"]).contains("nftables"));
    let cfg = podman.ok(&["image", "inspect", "--format", "{{json .Config}}", &image]);
    assert!(cfg.contains("\"node\",\"run\""), "{cfg}");

    // As the DaemonSet's init container: into the node's directories, portmap included.
    let host = dir.join("host");
    std::fs::create_dir_all(host.join("opt/cni/bin")).unwrap();
    std::fs::create_dir_all(host.join("etc/cni/net.d")).unwrap();
    let bin_mount = format!("{}:/host/opt/cni/bin", host.join("opt/cni/bin").display());
    let conf_mount = format!("{}:/host/etc/cni/net.d", host.join("etc/cni/net.d").display());
    let out = run(&[
        "-v",
        &bin_mount,
        "-v",
        &conf_mount,
        "-e",
        "CNI_NET_DIR=/etc/cni/net.d",
        "-e",
        "ETCD_ENDPOINTS=http://10.0.0.1:2379",
        &image,
        "install-cni",
        "--bin-dir",
        "/host/opt/cni/bin",
        "--conf-dir",
        "/host/etc/cni/net.d",
    ]);
    for f in ["brindle", "brindle-ipam", "calico", "calico-ipam", "portmap"] {
        assert!(
            host.join("opt/cni/bin").join(f).is_file(),
            "{f} not installed:\n{out}"
        );
    }
    let conf = std::fs::read_to_string(host.join("etc/cni/net.d/10-brindle.conflist")).unwrap();
    assert!(
        conf.contains("\"etcd_endpoints\": \"http://10.0.0.1:2379\""),
        "{conf}"
    );
}
