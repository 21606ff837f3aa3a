//! The dual-stack harness of the `agent_ipv6` test and bench: a hub namespace with a bridge,
//! node namespaces with an IPv4 and IPv6 (or IPv6-only) uplink on it, real agents on one
//! SQLite datastore, and pods attached by the real CNI plugin.

#![allow(dead_code)]

use std::path::PathBuf;
use std::process::Stdio;
use std::time::{Duration, Instant};

use brindle_ctl::status::AgentStatus;
use brindle_testkit::{Daemon, Netns, TempDir};
use serde_json::{Value, json};

pub const BIN: &str = env!("CARGO_BIN_EXE_brindle");
pub const POOL4: &str = "10.244.0.0/16";
pub const POOL6: &str = "fd00:10:244::/64";

/// The hub holding the bridge both nodes' uplinks are ports of.
pub struct Hub {
    pub ns: Netns,
}

impl Hub {
    pub fn new() -> Hub {
        let ns = Netns::new("v6h");
        ns.ip(&["link", "add", "br0", "type", "bridge"]);
        ns.ip(&["link", "set", "br0", "up"]);
        ns.ip(&["addr", "add", "172.31.6.1/24", "dev", "br0"]);
        ns.ip(&["-6", "addr", "add", "fd00:31:6::1/64", "dev", "br0", "nodad"]);
        Hub { ns }
    }
}

/// One node: its namespace (uplink `eth0` on the hub's bridge), its agent's files.
pub struct Node {
    pub name: String,
    /// IPv6 only (`IP=none`): no IPv4 address on the node.
    pub v6_only: bool,
    pub v4: String,
    pub v6: String,
    pub ns: Netns,
    pub dir: PathBuf,
}

impl Node {
    pub fn new(hub: &Hub, dir: &TempDir, name: &str, last: u8, v6_only: bool) -> Node {
        let ns = Netns::new("v6n");
        let port = format!("p{last}");
        ns.veth("eth0", &hub.ns, &port);
        hub.ns.ip(&["link", "set", &port, "master", "br0", "up"]);
        let v4 = format!("172.31.6.{last}");
        let v6 = format!("fd00:31:6::{last}");
        if !v6_only {
            ns.ip(&["addr", "add", &format!("{v4}/24"), "dev", "eth0"]);
        }
        ns.ip(&["-6", "addr", "add", &format!("{v6}/64"), "dev", "eth0", "nodad"]);
        ns.ip(&["link", "set", "eth0", "up"]);
        // A default route, as a node has: proxy ARP answers pods only for destinations
        // routed through another interface.
        if !v6_only {
            ns.ip(&["route", "add", "default", "via", "172.31.6.1", "dev", "eth0"]);
        }
        ns.ip(&[
            "-6",
            "route",
            "add",
            "default",
            "via",
            "fd00:31:6::1",
            "dev",
            "eth0",
        ]);
        ns.sysctl("net.ipv4.ip_forward", "1");
        let d = dir.join(name);
        std::fs::create_dir_all(&d).unwrap();
        Node {
            name: name.to_string(),
            v6_only,
            v4,
            v6,
            ns,
            dir: d,
        }
    }

    pub fn ctl(&self) -> PathBuf {
        self.dir.join("brindle.ctl")
    }

    pub fn agent(&self, db: &std::path::Path, n: u32) -> Daemon {
        let mut cmd = self.ns.cmd(BIN);
        cmd.args(["node", "run"])
            .env("NODENAME", &self.name)
            .env(
                "IP",
                if self.v6_only {
                    "none".to_string()
                } else {
                    format!("{}/24", self.v4)
                },
            )
            .env("IP6", format!("{}/64", self.v6))
            .env("NO_DEFAULT_POOLS", "true")
            .env("BRINDLE_DATASTORE_TYPE", "sqlite")
            .env("BRINDLE_DATASTORE_PATH", db)
            .env("BRINDLE_STATE_DIR", self.dir.join("state"))
            .env("BRINDLE_CTL_SOCKET", self.ctl())
            .env("BRINDLE_IPAM_GC", "false")
            .env("BRINDLE_SECRETS_DIR", self.dir.parent().unwrap().join("secrets"))
            .env("BRINDLE_LOG", "info");
        Daemon::spawn("agent", cmd, &self.dir.join(format!("agent-{n}.log")))
    }

    /// The log of the node's `n`th agent.
    pub fn log(&self, n: u32) -> String {
        std::fs::read_to_string(self.dir.join(format!("agent-{n}.log"))).unwrap_or_default()
    }

    pub fn status(&self) -> Option<AgentStatus> {
        brindle_ctl::control::query_status(&self.ctl()).ok()
    }

    /// `ip [-6] route show proto bird` in the node.
    pub fn bird_routes(&self, v6: bool) -> String {
        let fam = if v6 { "-6" } else { "-4" };
        self.ns.ip(&[fam, "route", "show", "proto", "bird"])
    }

    /// `brindle node status` as a user runs it on the node.
    pub fn node_status(&self) -> String {
        let out = self
            .ns
            .cmd(BIN)
            .args(["node", "status"])
            .env("BRINDLE_CTL_SOCKET", self.ctl())
            .output()
            .unwrap();
        assert!(out.status.success(), "node status: {out:?}");
        String::from_utf8_lossy(&out.stdout).into_owned()
    }
}

/// Waits until `ok` holds, panicking with `why()` after `timeout`.
pub fn wait_for(what: &str, timeout: Duration, mut ok: impl FnMut() -> bool, why: impl Fn() -> String) {
    let deadline = Instant::now() + timeout;
    while Instant::now() < deadline {
        if ok() {
            return;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    panic!("{what} not within {timeout:?}:\n{}", why());
}

pub fn put(ds: &dyn brindle_datastore::Datastore, key: &str, v: Value) {
    let bytes = serde_json::to_vec(&v).unwrap();
    match ds.get(key).unwrap() {
        Some(cur) => ds.update(key, &bytes, cur.revision).map(|_| ()),
        None => ds.create(key, &bytes).map(|_| ()),
    }
    .unwrap();
}

/// A pool without encapsulation.
pub fn pool(name: &str, cidr: &str, block: u32) -> (String, Value) {
    pool_vxlan(name, cidr, block, "Never")
}

/// A pool with `vxlanMode` `vxlan` (no IPIP).
pub fn pool_vxlan(name: &str, cidr: &str, block: u32, vxlan: &str) -> (String, Value) {
    (
        format!("/calico/resources/v3/projectcalico.org/ippools/{name}"),
        json!({"kind":"IPPool","apiVersion":"projectcalico.org/v3","metadata":{"name":name},
               "spec":{"cidr":cidr,"blockSize":block,"ipipMode":"Never","vxlanMode":vxlan,
                       "natOutgoing":false,"nodeSelector":"all()"}}),
    )
}

/// A pod on `node`, attached by the CNI plugin with an address of each family.
pub struct Pod {
    pub ns: Netns,
    pub v4: String,
    pub v6: String,
}

pub fn add_pod(node: &Node, db: &std::path::Path, n: u32) -> Pod {
    let ns = Netns::new("v6p");
    let conf = json!({
        "cniVersion": "1.0.0",
        "name": "k8s-pod-network",
        "type": "brindle",
        "datastore_type": "sqlite",
        "datastore_path": db,
        "nodename": node.name,
        "log_level": "debug",
        "log_file_path": node.dir.join("cni.log"),
        "ipam_lock_file": node.dir.join("ipam.lock"),
        "ipam": {"type": "brindle-ipam", "assign_ipv4": (!node.v6_only).to_string(), "assign_ipv6": "true"}
    });
    let id = format!("{:08x}{n:04x}{}", std::process::id(), "b".repeat(52));
    let netns = ns.path().display().to_string();
    let mut child = node
        .ns
        .cmd(BIN)
        .env_clear()
        .env("PATH", "/usr/sbin:/usr/bin:/sbin:/bin")
        .env("BRINDLE_STATE_DIR", node.dir.join("state"))
        .envs([
            ("CNI_COMMAND", "ADD"),
            ("CNI_CONTAINERID", id.as_str()),
            ("CNI_NETNS", netns.as_str()),
            ("CNI_IFNAME", "eth0"),
            ("CNI_ARGS", "IgnoreUnknown=1"),
            ("CNI_PATH", "/usr/lib/cni"),
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::Write as _;
    child
        .stdin
        .take()
        .unwrap()
        .write_all(conf.to_string().as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "CNI ADD on {}: {out:?}", node.name);
    let result: Value = serde_json::from_slice(&out.stdout).unwrap();
    let addr = |v6: bool| {
        result["ips"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|i| i["address"].as_str())
            .find(|a| a.contains(':') == v6)
            .unwrap_or_else(|| panic!("no IPv{} address in {result}", if v6 { 6 } else { 4 }))
            .split('/')
            .next()
            .unwrap()
            .to_string()
    };
    let v4 = if node.v6_only { String::new() } else { addr(false) };
    let v6 = addr(true);
    Pod { ns, v4, v6 }
}

impl Pod {
    /// The plugin's pod side of IPv6: the /128 on eth0 and a v6 default route via the host
    /// end's link-local address.
    pub fn check_v6_wiring(&self) {
        let a6 = self.ns.ip(&["-6", "addr", "show", "dev", "eth0"]);
        assert!(a6.contains(&format!("{}/128", self.v6)), "pod v6 address: {a6}");
        let r6 = self.ns.ip(&["-6", "route", "show", "default"]);
        assert!(
            r6.contains("via fe80::ecee:eeff:feee:eeee dev eth0"),
            "pod v6 default route: {r6}"
        );
    }
}

/// BIRD 2 in the hub as an external eBGP router (AS 65001) over IPv6 only, with a password,
/// announcing `2001:db8:99::/48` to `neighbor` and importing what it sends.
pub struct Bird6 {
    ctl: PathBuf,
    _daemon: Daemon,
}

impl Bird6 {
    pub fn start(hub: &Hub, dir: &TempDir, neighbor: &str, password: &str) -> Bird6 {
        let bird = brindle_testkit::require::command("bird", "bird2");
        let conf = format!(
            "router id 172.31.6.1;\nprotocol device {{ scan time 10; }}\n\
             protocol static ext6 {{ ipv6; route 2001:db8:99::/48 blackhole; route 2001:db8:77::/48 blackhole; }}\n\
             filter out6 {{ if proto != \"ext6\" then reject; \
             if net = 2001:db8:77::/48 then bgp_next_hop = 2001:db8:99::7; accept; }}\n\
             protocol bgp tor6 {{\n  local fd00:31:6::1 as 65001; neighbor {neighbor} as 64512;\n  \
             password \"{password}\"; connect delay time 1; connect retry time 1; error wait time 1, 5;\n  \
             ipv6 {{ import all; export filter out6; }};\n}}\n"
        );
        let conf_path = dir.join("bird6.conf");
        std::fs::write(&conf_path, conf).unwrap();
        let ctl = dir.join("bird6.ctl");
        let mut cmd = hub.ns.cmd(bird);
        cmd.arg("-f").arg("-c").arg(&conf_path).arg("-s").arg(&ctl);
        cmd.arg("-P").arg(dir.join("bird6.pid"));
        let mut daemon = Daemon::spawn("bird2", cmd, &dir.join("bird6.log"));
        daemon.wait_until("birdc answers", Duration::from_secs(10), || {
            Bird6::show(&ctl, "show status").contains("Daemon is up")
        });
        Bird6 { ctl, _daemon: daemon }
    }

    fn show(ctl: &std::path::Path, what: &str) -> String {
        let birdc = brindle_testkit::require::command("birdc", "bird2");
        let out = std::process::Command::new(birdc)
            .arg("-s")
            .arg(ctl)
            .args(what.split(' '))
            .output();
        out.map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
            .unwrap_or_default()
    }

    /// `birdc <what>` (words split on spaces).
    pub fn birdc(&self, what: &str) -> String {
        Bird6::show(&self.ctl, what)
    }
}
