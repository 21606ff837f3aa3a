//! Named network namespaces for multi-node tests.

use std::path::PathBuf;
use std::process::Command;

/// A network namespace `ip netns add <name>`, with `lo` up, deleted by its exact name on drop.
/// Processes started inside it must be dropped (killed) before it: declare their guards after
/// the namespace in a struct, or drop them explicitly.
pub struct Netns {
    name: String,
}

/// Runs a command, panicking with its output if it fails; returns stdout.
pub fn run(cmd: &mut Command) -> String {
    let out = cmd.output().unwrap_or_else(|e| panic!("run {cmd:?}: {e}"));
    if !out.status.success() {
        panic!(
            "{cmd:?} failed ({}):\n{}{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// `ip ARGS…` in the root namespace, panicking on failure.
pub fn ip(args: &[&str]) -> String {
    run(Command::new("ip").args(args))
}

impl Netns {
    /// Creates a namespace named `<prefix><unique suffix>` (keep the prefix ≤ 6 characters).
    pub fn new(prefix: &str) -> Netns {
        crate::require::root();
        let name = crate::names::unique(prefix);
        ip(&["netns", "add", &name]);
        let ns = Netns { name };
        ns.ip(&["link", "set", "lo", "up"]);
        ns
    }

    /// A namespace standing for a node with an uplink: a veth pair `up0`/`up1` (both ends
    /// inside, up), `addr` (CIDR) on `up0`, `default via gw`, and `ip_forward=1`. The default
    /// route matters for pod wiring tests: proxy ARP answers only for destinations routed
    /// through another interface.
    pub fn node_with_uplink(prefix: &str, addr: &str, gw: &str) -> Netns {
        let node = Netns::new(prefix);
        node.ip(&["link", "add", "up0", "type", "veth", "peer", "name", "up1"]);
        node.ip(&["addr", "add", addr, "dev", "up0"]);
        node.ip(&["link", "set", "up0", "up"]);
        node.ip(&["link", "set", "up1", "up"]);
        node.ip(&["route", "add", "default", "via", gw, "dev", "up0"]);
        node.sysctl("net.ipv4.ip_forward", "1");
        node
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// `/run/netns/<name>`, for `setns` or `nsenter --net=`.
    pub fn path(&self) -> PathBuf {
        PathBuf::from(format!("/run/netns/{}", self.name))
    }

    /// A command that runs `program` inside this namespace through `nsenter --net=…` (keeps the
    /// mount namespace, so /sys, bpffs and cgroups stay the host's, unlike `ip netns exec`).
    pub fn cmd(&self, program: impl AsRef<std::ffi::OsStr>) -> Command {
        let mut c = Command::new("nsenter");
        c.arg(format!("--net={}", self.path().display()))
            .arg("--")
            .arg(program);
        c
    }

    /// Runs `program args…` inside the namespace, panicking on failure; returns stdout.
    pub fn run(&self, program: &str, args: &[&str]) -> String {
        run(self.cmd(program).args(args))
    }

    /// `ip -n <name> ARGS…`, panicking on failure; returns stdout.
    pub fn ip(&self, args: &[&str]) -> String {
        run(Command::new("ip").arg("-n").arg(&self.name).args(args))
    }

    /// Sets a sysctl inside the namespace, e.g. `net.ipv4.ip_forward`, `1`.
    pub fn sysctl(&self, key: &str, value: &str) {
        let path = format!("/proc/sys/{}", key.replace('.', "/"));
        run(self.cmd("sh").args(["-c", &format!("echo {value} > {path}")]));
    }

    /// Creates a veth pair: `local` in this namespace, `remote` in `other`.
    pub fn veth(&self, local: &str, other: &Netns, remote: &str) {
        self.ip(&[
            "link",
            "add",
            local,
            "type",
            "veth",
            "peer",
            "name",
            remote,
            "netns",
            other.name(),
        ]);
    }

    /// Runs `f` on a new thread that first enters this namespace (`setns`), so every socket `f`
    /// opens lives in it (e.g. a tokio current-thread runtime serving a daemon under test).
    /// Other threads, including the caller, stay where they are.
    pub fn spawn_in<T: Send + 'static>(
        &self,
        f: impl FnOnce() -> T + Send + 'static,
    ) -> std::thread::JoinHandle<T> {
        let path = self.path();
        let file = std::fs::File::open(&path).unwrap_or_else(|e| panic!("open {}: {e}", path.display()));
        std::thread::spawn(move || {
            use std::os::fd::AsRawFd;
            // SAFETY: setns on a valid namespace fd affects only this thread.
            let rc = unsafe { libc::setns(file.as_raw_fd(), libc::CLONE_NEWNET) };
            assert_eq!(
                rc,
                0,
                "setns {}: {}",
                path.display(),
                std::io::Error::last_os_error()
            );
            drop(file);
            f()
        })
    }

    /// True if `addr` answers any of three echoes sent 200 ms apart. Use this right after
    /// creating an interface: a new veth passes no traffic until the kernel's link watcher has
    /// activated its queue, asynchronously after the carrier comes up (up to a second later on a
    /// loaded machine), so a single echo can be lost while the wiring is right.
    pub fn reach(&self, addr: &str) -> bool {
        self.cmd("ping")
            .args(["-c", "3", "-i", "0.2", "-W", "1", addr])
            .output()
            .map(|o| o.status.success())
            .unwrap_or(false)
    }

    /// True if `ping -c1 -W1 <addr>` from inside the namespace gets a reply.
    pub fn ping(&self, addr: &str) -> bool {
        self.cmd("ping")
            .args(["-c", "1", "-W", "1", addr])
            .output()
            .map(|o| o.status.success())
            .unwrap_or(false)
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        let out = Command::new("ip").args(["netns", "del", &self.name]).output();
        if let Ok(o) = out
            && !o.status.success()
        {
            eprintln!(
                "ip netns del {}: {}",
                self.name,
                String::from_utf8_lossy(&o.stderr)
            );
        }
    }
}
