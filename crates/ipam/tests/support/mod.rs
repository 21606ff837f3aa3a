//! A datastore (SQLite file or real etcd) with a pool, nodes and their tunnel addresses, the
//! `brindle-ipam-stress` processes run against it, and an independent recomputation of the
//! IPAM state from the raw keys.

#![allow(dead_code)] // each test binary uses part of this

use std::collections::{BTreeMap, BTreeSet};
use std::io::Read;
use std::net::IpAddr;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use brindle_datastore::{Datastore, DatastoreConfig};
use brindle_ipam::{AllocationBlock, AttributeOps, BlockOps, Ipam, IpamHandle, TunnelKind, cidr};
use brindle_model::Kind;
use brindle_model::keys::resource_key;
use brindle_testkit::{Etcd, TempDir};
use serde_json::json;

/// The seed's pool.
pub const POOL: &str = "10.233.64.0/18";

pub struct Cluster {
    pub ds: Arc<dyn Datastore>,
    env: Vec<(String, String)>,
    _etcd: Option<Etcd>,
    _dir: TempDir,
}

/// One worker process's fate.
pub struct Run {
    pub name: String,
    pub killed: bool,
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    pub fn done(&self) -> bool {
        self.code == Some(0) && self.stdout.lines().last() == Some("DONE")
    }
}

pub fn failures(runs: &[Run]) -> String {
    runs.iter()
        .filter(|r| !r.killed && !r.done())
        .map(|r| format!("{}: exit {:?}\n{}{}", r.name, r.code, r.stdout, r.stderr))
        .collect()
}

pub fn assert_no_duplicates(runs: &[Run]) {
    let dups: Vec<&str> = runs
        .iter()
        .flat_map(|r| r.stdout.lines())
        .filter(|l| l.starts_with("DUPLICATE"))
        .collect();
    assert!(dups.is_empty(), "an address was given to two live pods: {dups:?}");
}

impl Cluster {
    pub fn sqlite() -> Cluster {
        let dir = TempDir::new("ipam");
        let path = dir.join("brindle.db");
        let ds = brindle_datastore::open(&DatastoreConfig::sqlite(&path)).expect("open sqlite");
        Cluster {
            ds,
            env: vec![
                ("BRINDLE_DATASTORE_TYPE".into(), "sqlite".into()),
                ("BRINDLE_DATASTORE_PATH".into(), path.display().to_string()),
            ],
            _etcd: None,
            _dir: dir,
        }
    }

    pub fn etcd() -> Cluster {
        let etcd = Etcd::start();
        let ds = brindle_datastore::open(&DatastoreConfig::etcd([etcd.endpoint()])).expect("open etcd");
        Cluster {
            ds,
            env: vec![
                ("BRINDLE_DATASTORE_TYPE".into(), "etcdv3".into()),
                ("ETCD_ENDPOINTS".into(), etcd.endpoint().to_string()),
            ],
            _etcd: Some(etcd),
            _dir: TempDir::new("ipam"),
        }
    }

    pub fn ipam(&self) -> Ipam {
        Ipam::new(self.ds.clone())
    }

    fn put(&self, key: &str, v: serde_json::Value) {
        self.ds
            .create(key, &serde_json::to_vec(&v).unwrap())
            .expect("create");
    }

    /// The seed's pool (IPIP Always) in /26 blocks (so nodes fill blocks and claim more under
    /// load), ClusterInformation, `nodes` Nodes (`node-<i>`), each with its tunnel address
    /// allocated as the agent does at startup.
    pub fn setup(&self, nodes: usize) {
        self.setup_with(nodes, 26);
    }

    /// [`Self::setup`] with blocks of `block_size` (the seed uses 24).
    pub fn setup_with(&self, nodes: usize, block_size: u8) {
        self.put(
            &resource_key(Kind::IPPool, "", "default-pool"),
            json!({"kind": "IPPool", "apiVersion": "projectcalico.org/v3",
                   "metadata": {"name": "default-pool"},
                   "spec": {"cidr": POOL, "blockSize": block_size, "ipipMode": "Always", "natOutgoing": true,
                            "nodeSelector": "all()"}}),
        );
        self.put(
            &resource_key(Kind::ClusterInformation, "", "default"),
            json!({"kind": "ClusterInformation", "apiVersion": "projectcalico.org/v3",
                   "metadata": {"name": "default"},
                   "spec": {"clusterGUID": "c0ffee", "clusterType": "k8s,bgp", "datastoreReady": true}}),
        );
        let ipam = self.ipam();
        for i in 0..nodes {
            let name = node_name(i);
            self.put(
                &resource_key(Kind::Node, "", &name),
                json!({"kind": "Node", "apiVersion": "projectcalico.org/v3", "metadata": {"name": name},
                       "spec": {"bgp": {"ipv4Address": format!("172.20.42.{}/22", 80 + i)}}}),
            );
            let tun = ipam
                .ensure_tunnel_address(&name, TunnelKind::Ipip)
                .unwrap()
                .unwrap();
            assert_eq!(
                tun,
                cidr::block_for(tun, 26).addr(),
                "tunnel address is its block's .0"
            );
        }
    }

    /// Starts one `brindle-ipam-stress` process on this store.
    pub fn spawn(&self, node: &str, worker: usize, ops: usize, hold: usize, seed: u64) -> Child {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_brindle-ipam-stress"));
        for v in [
            "DATASTORE_TYPE",
            "ETCD_ENDPOINTS",
            "BRINDLE_DATASTORE_TYPE",
            "BRINDLE_DATASTORE_PATH",
        ] {
            cmd.env_remove(v);
        }
        cmd.envs(self.env.iter().map(|(k, v)| (k, v)))
            .args([
                "--node",
                node,
                "--worker",
                &worker.to_string(),
                "--ops",
                &ops.to_string(),
            ])
            .args(["--hold", &hold.to_string(), "--seed", &seed.to_string()])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        cmd.spawn().expect("spawn brindle-ipam-stress")
    }

    /// Runs `nodes × per_node` workers at once. With `kill_within`, each gets SIGKILL (by PID)
    /// at a random moment within that time (unless it finished before).
    pub fn run_workers(
        &self,
        nodes: usize,
        per_node: usize,
        ops: usize,
        hold: usize,
        kill_within: Option<Duration>,
    ) -> Vec<Run> {
        let mut rng = 0x1234_5678_9abc_def1u64 ^ u64::from(std::process::id());
        let mut next = move || {
            rng ^= rng << 13;
            rng ^= rng >> 7;
            rng ^= rng << 17;
            rng
        };
        let mut children = Vec::new();
        for n in 0..nodes {
            for w in 0..per_node {
                let name = node_name(n);
                let child = self.spawn(&name, w, ops, hold, next());
                children.push((format!("{name}/{w}"), child));
            }
        }
        let started = Instant::now();
        let mut kills: Vec<(Duration, usize)> = Vec::new();
        if let Some(within) = kill_within {
            for i in 0..children.len() {
                let at = Duration::from_millis(next() % within.as_millis() as u64);
                kills.push((at, i));
            }
        }
        kills.sort();
        let mut killed = vec![false; children.len()];
        for (at, i) in kills {
            if let Some(wait) = at.checked_sub(started.elapsed()) {
                std::thread::sleep(wait);
            }
            let child = &mut children[i].1;
            if matches!(child.try_wait(), Ok(None)) {
                child.kill().expect("SIGKILL a worker we started");
                killed[i] = true;
            }
        }
        children
            .into_iter()
            .zip(killed)
            .map(|((name, mut child), killed)| {
                let mut stdout = String::new();
                let mut stderr = String::new();
                child.stdout.take().unwrap().read_to_string(&mut stdout).unwrap();
                child.stderr.take().unwrap().read_to_string(&mut stderr).unwrap();
                let status = child.wait().unwrap();
                Run {
                    name,
                    killed,
                    code: status.code(),
                    stdout,
                    stderr,
                }
            })
            .collect()
    }

    fn list<T: serde::de::DeserializeOwned>(&self, prefix: &str) -> Vec<(String, T)> {
        self.ds
            .list(prefix)
            .unwrap()
            .items
            .into_iter()
            .map(|kv| (kv.key.clone(), serde_json::from_slice(&kv.value).unwrap()))
            .collect()
    }

    /// Recomputes the state from the raw keys and asserts what must hold even after crashes:
    /// blocks internally consistent, every endpoint's address allocated (to one endpoint only),
    /// every handle counting exactly its addresses (a handle with none is a leak, allowed).
    /// Returns the leaked addresses: allocated, yet neither a pod's nor a node's.
    pub fn verify_state(&self) -> BTreeSet<IpAddr> {
        let mut allocated: BTreeMap<IpAddr, Option<String>> = BTreeMap::new();
        let mut counts: BTreeMap<String, BTreeMap<String, u64>> = BTreeMap::new();
        for (key, b) in self.list::<AllocationBlock>("/calico/ipam/v2/assignment/") {
            let problems = b.consistency_problems();
            assert!(problems.is_empty(), "{key}: {problems:?}");
            for (_, addr, a) in b.allocated() {
                let h = a.and_then(|a| a.handle()).map(str::to_string);
                if let Some(h) = &h {
                    *counts
                        .entry(h.clone())
                        .or_default()
                        .entry(b.cidr.to_string())
                        .or_default() += 1;
                }
                assert!(allocated.insert(addr, h).is_none(), "{addr} in two blocks");
            }
        }
        let mut in_use: BTreeMap<IpAddr, String> = BTreeMap::new();
        for (key, w) in
            self.list::<serde_json::Value>("/calico/resources/v3/projectcalico.org/workloadendpoints/")
        {
            for n in w["spec"]["ipNetworks"].as_array().unwrap() {
                let ip: IpAddr = n.as_str().unwrap().split('/').next().unwrap().parse().unwrap();
                if let Some(other) = in_use.insert(ip, key.clone()) {
                    panic!("{ip} used by two endpoints: {other} and {key}");
                }
                assert!(
                    allocated.contains_key(&ip),
                    "endpoint {key} uses {ip}, which is not allocated"
                );
            }
        }
        for (key, n) in self.list::<serde_json::Value>("/calico/resources/v3/projectcalico.org/nodes/") {
            if let Some(t) = n["spec"]["bgp"]["ipv4IPIPTunnelAddr"].as_str() {
                let ip: IpAddr = t.parse().unwrap();
                assert!(
                    allocated.contains_key(&ip),
                    "{key}: tunnel address {ip} not allocated"
                );
                assert!(
                    in_use.insert(ip, key.clone()).is_none(),
                    "{ip} is a tunnel address and a pod's"
                );
            }
        }
        for (key, h) in self.list::<IpamHandle>("/calico/ipam/v2/handle/") {
            let id = key.rsplit('/').next().unwrap();
            // No count at all is a leaked handle (a crash between its increment and the block
            // write); otherwise it must be exact.
            if let Some(c) = counts.get(id) {
                assert_eq!(&h.block, c, "handle {id} counts its addresses exactly");
            }
        }
        allocated
            .keys()
            .filter(|ip| !in_use.contains_key(ip))
            .copied()
            .collect()
    }

    /// `ipam check` finds nothing wrong.
    pub fn assert_check_clean(&self) {
        let c = self.ipam().check().unwrap();
        let text = c.text(false, true);
        assert_eq!(c.problems(), 0, "{text}");
        assert!(text.ends_with("Check complete; found 0 problems.\n"), "{text}");
    }
}

pub fn node_name(i: usize) -> String {
    format!("node-{i}")
}
