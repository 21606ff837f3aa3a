//! Shared harness of the CNI tests: a node namespace (uplink, default route, forwarding) in
//! which the real `brindle` binary runs exactly as a runtime runs a plugin (env + stdin, in
//! the runtime's namespace), a private SQLite datastore seeded the way the agent seeds it
//! (ClusterInformation, the Node, an IPPool), and pod namespaces.

#![allow(dead_code)]

use std::io::Write as _;
use std::net::IpAddr;
use std::path::PathBuf;
use std::process::Stdio;
use std::sync::Arc;

use brindle_datastore::{Datastore, DatastoreConfig};
use brindle_ipam::BlockOps;
use brindle_testkit::{Etcd, Netns, TempDir};
use serde_json::{Value, json};

pub const NODE: &str = "node1";
pub const POOL: &str = "10.233.64.0/18";

/// What a plugin call printed and returned.
#[derive(Debug)]
pub struct Out {
    pub status: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Out {
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.stdout).unwrap_or_else(|e| panic!("stdout is not JSON ({e}): {self:?}"))
    }

    /// Panics unless the call succeeded.
    pub fn ok(self) -> Out {
        assert_eq!(self.status, 0, "plugin failed: {self:?}");
        self
    }

    /// Panics unless the call failed; returns the error JSON.
    pub fn err(&self) -> Value {
        assert_ne!(self.status, 0, "plugin succeeded unexpectedly: {self:?}");
        self.json()
    }
}

/// The first address of a CNI result, without its prefix length.
pub fn ip_of(result: &Value) -> String {
    let a = result["ips"][0]["address"]
        .as_str()
        .unwrap_or_else(|| panic!("no address in {result}"));
    a.split('/').next().unwrap_or_default().to_string()
}

/// One node: its namespace, its datastore, its files.
/// Fields drop in order: the store client, then etcd, then the namespace it ran in.
pub struct Lab {
    pub ds: Arc<dyn Datastore>,
    /// etcd inside the node namespace, when the lab uses etcd.
    pub etcd: Option<Etcd>,
    pub dir: TempDir,
    pub node: Netns,
    pub net: String,
}

pub fn bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_brindle"))
}

pub fn key(plural: &str, name: &str) -> String {
    format!("/calico/resources/v3/projectcalico.org/{plural}/{name}")
}

impl Lab {
    /// A node whose datastore is an SQLite file.
    pub fn new() -> Lab {
        let dir = TempDir::new("cni");
        let node = Netns::node_with_uplink("cnn", "172.20.42.80/24", "172.20.42.1");
        let ds = brindle_datastore::open(&DatastoreConfig::sqlite(dir.join("brindle.db")))
            .expect("open datastore");
        Lab::seeded(dir, node, ds, None)
    }

    /// A node whose datastore is a real etcd, running inside the node's namespace (where the
    /// plugin runs) on the uplink address.
    pub fn etcd() -> Lab {
        let dir = TempDir::new("cni");
        let node = Netns::node_with_uplink("cne", "172.20.42.80/24", "172.20.42.1");
        let etcd = Etcd::start_in(&node, "172.20.42.80");
        let cfg = DatastoreConfig::etcd([etcd.endpoint().to_string()]);
        // The client's connection is made from inside the namespace, where etcd is reachable.
        let ds = node
            .spawn_in(move || brindle_datastore::open(&cfg).expect("open etcd"))
            .join()
            .unwrap();
        Lab::seeded(dir, node, ds, Some(etcd))
    }

    fn seeded(dir: TempDir, node: Netns, ds: Arc<dyn Datastore>, etcd: Option<Etcd>) -> Lab {
        let lab = Lab {
            net: brindle_testkit::names::unique("net"),
            dir,
            node,
            ds,
            etcd,
        };
        lab.put(
            &key("clusterinformations", "default"),
            json!({"kind":"ClusterInformation","apiVersion":"projectcalico.org/v3",
                   "metadata":{"name":"default"},
                   "spec":{"clusterGUID":"0123456789abcdef","clusterType":"k8s,bgp","calicoVersion":"brindle","datastoreReady":true}}),
        );
        lab.put(
            &key("nodes", NODE),
            json!({"kind":"Node","apiVersion":"projectcalico.org/v3","metadata":{"name":NODE},"spec":{}}),
        );
        lab.put(
            &key("ippools", "default-ipv4-ippool"),
            json!({"kind":"IPPool","apiVersion":"projectcalico.org/v3","metadata":{"name":"default-ipv4-ippool"},
                   "spec":{"cidr":POOL,"blockSize":24,"ipipMode":"Always","natOutgoing":true,"nodeSelector":"all()"}}),
        );
        lab
    }

    /// Writes (creates or replaces) a key.
    pub fn put(&self, key: &str, v: Value) {
        let bytes = serde_json::to_vec(&v).unwrap();
        match self.ds.get(key).unwrap() {
            Some(cur) => self.ds.update(key, &bytes, cur.revision).map(|_| ()),
            None => self.ds.create(key, &bytes).map(|_| ()),
        }
        .unwrap();
    }

    pub fn get(&self, key: &str) -> Option<Value> {
        self.ds
            .get(key)
            .unwrap()
            .map(|kv| serde_json::from_slice(&kv.value).unwrap())
    }

    /// The network configuration: this lab's datastore, node name, log and lock files.
    pub fn conf(&self, version: &str) -> Value {
        json!({
            "cniVersion": version,
            "name": self.net,
            "type": "brindle",
            "datastore_type": if self.etcd.is_some() { "etcdv3" } else { "sqlite" },
            "datastore_path": self.dir.join("brindle.db"),
            "etcd_endpoints": self.etcd.as_ref().map(|e| e.endpoint().to_string()),
            "nodename": NODE,
            "nodename_file_optional": true,
            "log_level": "debug",
            "log_file_path": self.dir.join("cni.log"),
            "ipam_lock_file": self.dir.join("ipam.lock"),
            "ipam": {"type": "brindle-ipam"}
        })
    }

    /// Runs the binary (as `program`, a link name, when given) inside the node namespace with
    /// exactly the CNI environment.
    pub fn call_as(&self, program: Option<&str>, env: &[(&str, &str)], stdin: &[u8]) -> Out {
        let exe = match program {
            Some(name) => {
                let link = self.dir.join(name);
                if !link.exists() {
                    std::os::unix::fs::symlink(bin(), &link).unwrap();
                }
                link
            }
            None => bin(),
        };
        let mut cmd = self.node.cmd(&exe);
        cmd.env_clear()
            .env("PATH", "/usr/sbin:/usr/bin:/sbin:/bin")
            .env("BRINDLE_STATE_DIR", self.dir.join("state"))
            .envs(env.iter().copied())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = cmd
            .spawn()
            .unwrap_or_else(|e| panic!("spawn {}: {e}", exe.display()));
        child.stdin.take().unwrap().write_all(stdin).unwrap();
        let out = child.wait_with_output().unwrap();
        Out {
            status: out.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }

    /// Runs another plugin binary (Debian's `bridge`, `portmap`, …) the same way, with
    /// `CNI_PATH` = this lab's directory (holding the `brindle-ipam` link) then `/usr/lib/cni`.
    pub fn exec(&self, plugin: &str, command: &str, pod: &Pod, conf: &Value) -> Out {
        // The link must exist before the plugin looks for it.
        let link = self.dir.join("brindle-ipam");
        if !link.exists() {
            std::os::unix::fs::symlink(bin(), &link).unwrap();
        }
        let path = format!("{}:/usr/lib/cni", self.dir.path().display());
        let netns = pod.netns_path();
        let mut cmd = self.node.cmd(format!("/usr/lib/cni/{plugin}"));
        cmd.env_clear()
            .env("PATH", "/usr/sbin:/usr/bin:/sbin:/bin")
            .env("BRINDLE_STATE_DIR", self.dir.join("state"))
            .envs([
                ("CNI_COMMAND", command),
                ("CNI_CONTAINERID", pod.id.as_str()),
                ("CNI_NETNS", netns.as_str()),
                ("CNI_IFNAME", "eth0"),
                ("CNI_ARGS", pod.args.as_str()),
                ("CNI_PATH", path.as_str()),
            ])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = cmd.spawn().unwrap_or_else(|e| panic!("spawn {plugin}: {e}"));
        child
            .stdin
            .take()
            .unwrap()
            .write_all(conf.to_string().as_bytes())
            .unwrap();
        let out = child.wait_with_output().unwrap();
        Out {
            status: out.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }

    /// A CNI call for `pod`: `CNI_COMMAND`, `CNI_CONTAINERID`, `CNI_NETNS`, `CNI_IFNAME=eth0`,
    /// `CNI_ARGS`, `CNI_PATH`, plus `extra`.
    pub fn cni(&self, command: &str, pod: &Pod, conf: &Value, extra: &[(&str, &str)]) -> Out {
        let netns = pod.netns_path();
        let mut env: Vec<(&str, &str)> = vec![
            ("CNI_COMMAND", command),
            ("CNI_CONTAINERID", &pod.id),
            ("CNI_NETNS", &netns),
            ("CNI_IFNAME", "eth0"),
            ("CNI_ARGS", &pod.args),
            ("CNI_PATH", "/usr/lib/cni"),
        ];
        env.extend_from_slice(extra);
        self.call_as(None, &env, conf.to_string().as_bytes())
    }

    pub fn add(&self, pod: &Pod, conf: &Value) -> Value {
        self.cni("ADD", pod, conf, &[]).ok().json()
    }

    /// Addresses held by this network's handle of `pod`.
    pub fn held(&self, pod: &Pod) -> Vec<IpAddr> {
        match brindle_ipam::Ipam::new(self.ds.clone()).addrs_by_handle(&format!("{}.{}", self.net, pod.id)) {
            Ok(a) => a,
            Err(brindle_ipam::IpamError::UnknownHandle { .. }) => Vec::new(),
            Err(e) => panic!("read handle: {e}"),
        }
    }

    /// Every allocated address of the pool.
    pub fn allocated(&self) -> Vec<IpAddr> {
        let ipam = brindle_ipam::Ipam::new(self.ds.clone());
        ipam.blocks()
            .unwrap()
            .iter()
            .flat_map(|b| b.value.allocated().map(|(_, a, _)| a).collect::<Vec<_>>())
            .collect()
    }

    /// Every WorkloadEndpoint key.
    pub fn endpoints(&self) -> Vec<String> {
        self.ds
            .list("/calico/resources/v3/projectcalico.org/workloadendpoints/")
            .unwrap()
            .items
            .into_iter()
            .map(|kv| kv.key)
            .collect()
    }

    /// Interface names in the node namespace.
    pub fn node_links(&self) -> Vec<String> {
        let mut h = brindle_netlink::Handle::open_named(self.node.name()).unwrap();
        h.links().unwrap().into_iter().map(|l| l.name).collect()
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("cni.log")).unwrap_or_default()
    }
}

static PODS: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(1);

/// A 64-hex-digit container ID (as runtimes make them), unique to this process and pod.
pub fn container_id() -> String {
    let n = PODS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    format!("{n:06x}{:08x}{}", std::process::id(), "a".repeat(50))
}

/// A pod: its own namespace, a container ID, its CNI_ARGS.
pub struct Pod {
    pub ns: Netns,
    pub id: String,
    pub args: String,
}

impl Pod {
    /// A Kubernetes-style pod (`K8S_POD_NAMESPACE`, `K8S_POD_NAME`).
    pub fn k8s(name: &str) -> Pod {
        let ns = Netns::new("cnp");
        Pod {
            id: container_id(),
            args: format!("IgnoreUnknown=1;K8S_POD_NAMESPACE=default;K8S_POD_NAME={name}"),
            ns,
        }
    }

    /// A plain CNI workload (no pod name): the host veth is named after the container ID.
    pub fn plain() -> Pod {
        let mut p = Pod::k8s("x");
        p.args = "IgnoreUnknown=1".into();
        p
    }

    pub fn netns_path(&self) -> String {
        self.ns.path().display().to_string()
    }

    /// `ip -o -4 addr` of eth0, or empty if there is no eth0.
    pub fn eth0(&self) -> String {
        let out = self
            .ns
            .cmd("ip")
            .args(["-o", "-4", "addr", "show", "dev", "eth0"])
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).into_owned()
    }
}
