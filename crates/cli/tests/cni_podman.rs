//! A real runtime: podman 4.3 (Debian) with its CNI backend and runc runs containers on a Brindle
//! network (Debian's podman defaults to the CNI backend when netavark is not installed). Podman
//! runs inside the test's node namespace (entered with `nsenter --net`, never `ip netns exec`,
//! which remounts /sys under runc), with a private containers.conf, private storage
//! (`--root`/`--runroot`, vfs), a private CNI config directory and plugin directory (a `brindle`
//! link to the built binary), and an image made locally from busybox-static with `podman import`.
//! Every name is unique; everything is removed by name afterwards.

mod cni_support;

use std::path::{Path, PathBuf};
use std::process::Output;

use cni_support::{Lab, NODE};
use serde_json::json;

struct Podman<'a> {
    lab: &'a Lab,
    conf: PathBuf,
    root: PathBuf,
    image: String,
    containers: std::cell::RefCell<Vec<String>>,
}

impl<'a> Podman<'a> {
    fn new(lab: &'a Lab) -> Podman<'a> {
        brindle_testkit::require::command("podman", "podman");
        brindle_testkit::require::command("runc", "runc");
        brindle_testkit::require::command("/bin/busybox", "busybox-static");
        brindle_testkit::require::command("/usr/lib/cni/portmap", "containernetworking-plugins");
        let root = lab.dir.join("podman");
        let bin_dir = root.join("cni/bin");
        let net_dir = root.join("cni/net.d");
        std::fs::create_dir_all(&bin_dir).unwrap();
        std::fs::create_dir_all(&net_dir).unwrap();
        std::os::unix::fs::symlink(cni_support::bin(), bin_dir.join("brindle")).unwrap();
        std::os::unix::fs::symlink(cni_support::bin(), bin_dir.join("brindle-ipam")).unwrap();
        let conf = root.join("containers.conf");
        std::fs::write(
            &conf,
            format!(
                "[containers]\ndefault_ulimits = [\"nofile=1024:1024\", \"nproc=4096:4096\"]\n\
                 [engine]\ncgroup_manager = \"cgroupfs\"\nevents_logger = \"file\"\nruntime = \"runc\"\n\
                 [network]\nnetwork_backend = \"cni\"\ncni_plugin_dirs = [\"{}\", \"/usr/lib/cni\"]\n\
                 network_config_dir = \"{}\"\n",
                bin_dir.display(),
                net_dir.display()
            ),
        )
        .unwrap();
        let image = format!("localhost/{}:latest", brindle_testkit::names::unique("bbimg"));
        let p = Podman {
            lab,
            conf,
            root,
            image,
            containers: Default::default(),
        };
        p.import_busybox();
        p
    }

    fn run(&self, args: &[&str]) -> Output {
        let r = |d: &str| self.root.join(d).display().to_string();
        let mut cmd = self.lab.node.cmd("podman");
        cmd.env("CONTAINERS_CONF", &self.conf)
            .env("BRINDLE_STATE_DIR", self.lab.dir.join("state"))
            .args([
                "--root",
                &r("storage"),
                "--runroot",
                &r("run"),
                "--tmpdir",
                &r("tmp"),
            ])
            .args([
                "--storage-driver",
                "vfs",
                "--cgroup-manager",
                "cgroupfs",
                "--runtime",
                "runc",
            ])
            .args(["--events-backend", "file"])
            .args(args);
        cmd.output().unwrap_or_else(|e| panic!("podman {args:?}: {e}"))
    }

    fn ok(&self, args: &[&str]) -> String {
        let out = self.run(args);
        assert!(
            out.status.success(),
            "podman {args:?} failed ({}):\n{}{}\n--- cni log ---\n{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr),
            self.lab.log()
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// An image with busybox-static and a page for httpd, imported (no registry).
    fn import_busybox(&self) {
        let rootfs = self.root.join("rootfs");
        for d in ["bin", "www", "tmp", "proc", "sys", "dev", "etc"] {
            std::fs::create_dir_all(rootfs.join(d)).unwrap();
        }
        std::fs::copy("/bin/busybox", rootfs.join("bin/busybox")).unwrap();
        for applet in ["sh", "ip", "ping", "sleep", "httpd", "wget", "cat"] {
            std::os::unix::fs::symlink("busybox", rootfs.join("bin").join(applet)).unwrap();
        }
        std::fs::write(rootfs.join("www/index.html"), "served by a pod on brindle\n").unwrap();
        let tar = self.root.join("rootfs.tar");
        let st = std::process::Command::new("tar")
            .arg("-C")
            .arg(&rootfs)
            .arg("-cf")
            .arg(&tar)
            .arg(".")
            .status()
            .unwrap();
        assert!(st.success());
        self.ok(&["import", tar.to_str().unwrap(), &self.image]);
    }

    fn network(&self, name: &str, conflist: serde_json::Value) {
        let path = self.root.join("cni/net.d").join(format!("{name}.conflist"));
        std::fs::write(path, serde_json::to_string_pretty(&conflist).unwrap()).unwrap();
    }

    /// `podman run -d` a container sleeping (or serving), on `net`.
    fn start(&self, net: &str, extra: &[&str], cmd: &[&str]) -> String {
        let name = brindle_testkit::names::unique("bbc");
        let mut args = vec!["run", "-d", "--name", &name, "--network", net];
        args.extend_from_slice(extra);
        args.push(&self.image);
        args.extend_from_slice(cmd);
        self.ok(&args);
        self.containers.borrow_mut().push(name.clone());
        name
    }

    fn exec(&self, c: &str, cmd: &[&str]) -> Output {
        let mut args = vec!["exec", c];
        args.extend_from_slice(cmd);
        self.run(&args)
    }

    /// The container's eth0 IPv4 address (with prefix).
    fn addr(&self, c: &str) -> String {
        let out = self.exec(c, &["ip", "-o", "-4", "addr", "show", "dev", "eth0"]);
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        text.split_whitespace()
            .skip_while(|w| *w != "inet")
            .nth(1)
            .unwrap_or_else(|| panic!("no inet on eth0: {text}"))
            .to_string()
    }

    fn rm(&self, c: &str) {
        self.ok(&["rm", "-f", "-t", "0", c]);
        self.containers.borrow_mut().retain(|x| x != c);
    }
}

impl Drop for Podman<'_> {
    fn drop(&mut self) {
        for c in self.containers.borrow().iter() {
            let _ = self.run(&["rm", "-f", "-t", "0", c]);
        }
        let _ = self.run(&["rmi", "-f", &self.image]);
    }
}

fn conflist(lab: &Lab, name: &str, with_portmap: bool) -> serde_json::Value {
    let mut plugin = lab.conf("1.0.0");
    let o = plugin.as_object_mut().unwrap();
    o.remove("cniVersion");
    o.remove("name");
    let mut plugins = vec![plugin];
    if with_portmap {
        plugins.push(json!({"type": "portmap", "capabilities": {"portMappings": true}, "snat": true}));
    }
    json!({"cniVersion": "1.0.0", "name": name, "plugins": plugins})
}

fn ping(p: &Podman<'_>, c: &str, to: &str) -> bool {
    p.exec(c, &["ping", "-c", "3", "-i", "0.2", "-W", "1", to])
        .status
        .success()
}

#[test]
fn podman_runs_containers_on_a_brindle_network() {
    let lab = Lab::new();
    let podman = Podman::new(&lab);
    let net = lab.net.clone();
    podman.network(&net, conflist(&lab, &net, true));

    let c1 = podman.start(
        &net,
        &["-p", "18080:80"],
        &["httpd", "-f", "-p", "80", "-h", "/www"],
    );
    let c2 = podman.start(&net, &[], &["sleep", "300"]);
    let a1 = podman.addr(&c1);
    let a2 = podman.addr(&c2);
    assert!(a1.ends_with("/32") && a2.ends_with("/32"), "{a1} {a2}");
    let ip1 = a1.trim_end_matches("/32").to_string();
    let ip2 = a2.trim_end_matches("/32").to_string();
    assert!(ip1.starts_with("10.233.") && ip2.starts_with("10.233.") && ip1 != ip2);

    // Each container reaches the host (the node namespace) and the other container.
    assert!(ping(&podman, &c1, "172.20.42.80"), "c1 cannot reach the host");
    assert!(ping(&podman, &c2, &ip1), "c2 cannot reach c1");
    assert!(ping(&podman, &c1, &ip2), "c1 cannot reach c2");
    assert!(lab.node.reach(&ip2), "the host cannot reach c2");

    // The chained portmap plugin: the node's port 18080 reaches c1's httpd.
    // (busybox-static's wget crashes on the host; curl is in .ci/deps.)
    brindle_testkit::require::command("curl", "curl");
    let page = lab
        .node
        .cmd("curl")
        .args(["-s", "--max-time", "5", "http://172.20.42.80:18080/"])
        .output()
        .unwrap();
    assert_eq!(
        String::from_utf8_lossy(&page.stdout),
        "served by a pod on brindle\n",
        "{:?}",
        page
    );

    // What Brindle recorded: two allocations, two endpoints named after podman's pods.
    assert_eq!(lab.allocated().len(), 2, "{:?}", lab.allocated());
    let weps = lab.endpoints();
    assert_eq!(weps.len(), 2, "{weps:?}");
    assert!(
        weps.iter()
            .any(|k| k.ends_with(&format!("/default/{NODE}-k8s-{}-eth0", c1.replace('-', "--")))),
        "{weps:?}"
    );

    // podman rm calls DEL: the address is released, the endpoint and the veth are gone.
    let links_before = lab.node_links().len();
    podman.rm(&c1);
    assert_eq!(lab.allocated().len(), 1);
    assert!(
        !lab.allocated().contains(&ip1.parse().unwrap()),
        "{ip1} still allocated"
    );
    assert_eq!(lab.endpoints().len(), 1);
    assert_eq!(lab.node_links().len(), links_before - 1);
    assert!(!lab.node.ip(&["route"]).contains(&format!("{ip1} ")));
    podman.rm(&c2);
    assert!(lab.allocated().is_empty());
    assert!(lab.endpoints().is_empty());
    let log = lab.log();
    assert!(
        log.contains("brindle ADD") && log.contains("brindle DEL"),
        "{log}"
    );
    let _ = Path::new("/");
}
