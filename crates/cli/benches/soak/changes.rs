//! The random changes: extra IPPools (never the seed pool; CIDRs apart from it and from each
//! other), BGPPeers to addresses where nothing listens, labels on Nodes and on the seed pods'
//! WorkloadEndpoints (`brindle label`), and pods added and deleted through the CNI plugin (run
//! as a runtime runs it, the way the lab makes its own pods).

use std::collections::BTreeSet;
use std::io::Write;
use std::process::Stdio;

use brindle_lab::Lab;
use brindle_lab::plan::{POD_NAMESPACE, PodPlan, container_id};
use rand::Rng;
use rand::rngs::StdRng;

const POOL_SLOTS: usize = 8;
const PEER_SLOTS: usize = 4;
const LABEL_KEYS: usize = 4;
const MAX_PODS: usize = 9;
/// The node every CLI change runs on (all nodes share the lab's datastore).
const CLI_NODE: &str = "bgp-master1";

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Kind {
    PoolCreate,
    PoolDelete,
    PeerCreate,
    PeerDelete,
    NodeLabel,
    NodeUnlabel,
    WepLabel,
    WepUnlabel,
    PodAdd,
    PodDel,
}

impl Kind {
    pub fn name(self) -> &'static str {
        match self {
            Kind::PoolCreate => "IPPool create",
            Kind::PoolDelete => "IPPool delete",
            Kind::PeerCreate => "BGPPeer create",
            Kind::PeerDelete => "BGPPeer delete",
            Kind::NodeLabel => "Node label add",
            Kind::NodeUnlabel => "Node label remove",
            Kind::WepLabel => "WorkloadEndpoint label add",
            Kind::WepUnlabel => "WorkloadEndpoint label remove",
            Kind::PodAdd => "pod ADD (CNI)",
            Kind::PodDel => "pod DEL (CNI)",
        }
    }
}

/// A seed pod's WorkloadEndpoint: (namespace, name).
pub type Wep = (String, String);

/// A pod the soak made: its plan and its address.
struct SoakPod {
    plan: PodPlan,
    ip: Option<std::net::Ipv4Addr>,
}

/// What exists now, so that every change is valid (delete only what exists, never a pool a
/// live pod has its address in).
pub struct World<'a> {
    lab: &'a Lab,
    nodes: Vec<String>,
    weps: Vec<Wep>,
    pools: [bool; POOL_SLOTS],
    peers: [bool; PEER_SLOTS],
    node_labels: BTreeSet<(usize, usize)>,
    wep_labels: BTreeSet<(usize, usize)>,
    pods: Vec<SoakPod>,
    next_pod: usize,
}

impl<'a> World<'a> {
    pub fn new(lab: &'a Lab, weps: Vec<Wep>) -> World<'a> {
        World {
            lab,
            nodes: lab.plan().nodes.iter().map(|n| n.name.clone()).collect(),
            weps,
            pools: [false; POOL_SLOTS],
            peers: [false; PEER_SLOTS],
            node_labels: BTreeSet::new(),
            wep_labels: BTreeSet::new(),
            pods: Vec::new(),
            next_pod: 0,
        }
    }

    pub fn live_pods(&self) -> usize {
        self.pods.len()
    }

    /// Picks a valid change at random and applies it: its kind, a description, the outcome.
    pub fn step(&mut self, rng: &mut StdRng) -> (Kind, String, Result<(), String>) {
        loop {
            let create = rng.random_bool(0.5);
            let r = match rng.random_range(0..4) {
                0 => self.pool(rng, create),
                1 => self.peer(rng, create),
                2 => {
                    let wep = rng.random_bool(0.5);
                    self.relabel(rng, create, wep)
                }
                _ => self.pod(rng, create),
            };
            if let Some(r) = r {
                return r;
            }
        }
    }

    fn pool(&mut self, rng: &mut StdRng, create: bool) -> Option<(Kind, String, Result<(), String>)> {
        let free: Vec<usize> = (0..POOL_SLOTS).filter(|k| !self.pools[*k]).collect();
        let cidr = |k: usize| -> ipnet::Ipv4Net { format!("10.250.{k}.0/24").parse().expect("cidr") };
        // A pool a soak pod has its address in stays (deleting it would orphan the address).
        let deletable: Vec<usize> = (0..POOL_SLOTS)
            .filter(|k| self.pools[*k])
            .filter(|k| {
                !self
                    .pods
                    .iter()
                    .any(|p| p.ip.is_some_and(|ip| cidr(*k).contains(&ip)))
            })
            .collect();
        if (create || deletable.is_empty()) && !free.is_empty() {
            let k = free[rng.random_range(0..free.len())];
            let ipip = ["Always", "Never", "CrossSubnet"][rng.random_range(0..3)];
            let nat = rng.random_bool(0.5);
            let yaml = format!(
                "apiVersion: projectcalico.org/v3\nkind: IPPool\nmetadata: {{name: soak-pool-{k}}}\n\
                 spec: {{cidr: {}, blockSize: 26, ipipMode: {ipip}, natOutgoing: {nat}}}\n",
                cidr(k)
            );
            let r = self.cli(&["create", "-f", "-"], Some(&yaml));
            self.pools[k] = r.is_ok();
            return Some((
                Kind::PoolCreate,
                format!("soak-pool-{k} {} ipip {ipip}", cidr(k)),
                r,
            ));
        }
        if deletable.is_empty() {
            return None;
        }
        let k = deletable[rng.random_range(0..deletable.len())];
        let r = self.cli(&["delete", "ippool", &format!("soak-pool-{k}")], None);
        self.pools[k] = r.is_err();
        Some((Kind::PoolDelete, format!("soak-pool-{k}"), r))
    }

    fn peer(&mut self, rng: &mut StdRng, create: bool) -> Option<(Kind, String, Result<(), String>)> {
        let (on, off): (Vec<usize>, Vec<usize>) = (0..PEER_SLOTS).partition(|k| self.peers[*k]);
        if (create || on.is_empty()) && !off.is_empty() {
            let k = off[rng.random_range(0..off.len())];
            // On the nodes' subnet, where no host answers: the speaker keeps trying to connect.
            let ip = format!("172.20.43.{}", 200 + k);
            let scope = if rng.random_bool(0.5) {
                String::new()
            } else {
                format!(", node: {}", self.nodes[rng.random_range(0..self.nodes.len())])
            };
            let yaml = format!(
                "apiVersion: projectcalico.org/v3\nkind: BGPPeer\nmetadata: {{name: soak-peer-{k}}}\n\
                 spec: {{peerIP: {ip}, asNumber: {}{scope}}}\n",
                65000 + k
            );
            let r = self.cli(&["create", "-f", "-"], Some(&yaml));
            self.peers[k] = r.is_ok();
            return Some((Kind::PeerCreate, format!("soak-peer-{k} {ip}{scope}"), r));
        }
        let k = on[rng.random_range(0..on.len())];
        let r = self.cli(&["delete", "bgppeer", &format!("soak-peer-{k}")], None);
        self.peers[k] = r.is_err();
        Some((Kind::PeerDelete, format!("soak-peer-{k}"), r))
    }

    /// A label added to or removed from a Node (`wep` false) or a seed pod's WorkloadEndpoint.
    fn relabel(
        &mut self,
        rng: &mut StdRng,
        add: bool,
        wep: bool,
    ) -> Option<(Kind, String, Result<(), String>)> {
        let count = if wep { self.weps.len() } else { self.nodes.len() };
        if count == 0 {
            return None;
        }
        let (n, key) = (rng.random_range(0..count), rng.random_range(0..LABEL_KEYS));
        let (kind, name, ns) = if wep {
            (
                "workloadendpoints",
                self.weps[n].1.clone(),
                Some(self.weps[n].0.clone()),
            )
        } else {
            ("nodes", self.nodes[n].clone(), None)
        };
        let set = if wep { &self.wep_labels } else { &self.node_labels };
        let present = set.contains(&(n, key));
        let (add, what, r) = self.label((kind, &name, ns.as_deref()), key, add || !present, rng);
        let set = if wep {
            &mut self.wep_labels
        } else {
            &mut self.node_labels
        };
        if r.is_ok() && add {
            set.insert((n, key));
        } else if r.is_ok() {
            set.remove(&(n, key));
        }
        let kind = match (wep, add) {
            (false, true) => Kind::NodeLabel,
            (false, false) => Kind::NodeUnlabel,
            (true, true) => Kind::WepLabel,
            (true, false) => Kind::WepUnlabel,
        };
        Some((kind, what, r))
    }

    fn pod(&mut self, rng: &mut StdRng, add: bool) -> Option<(Kind, String, Result<(), String>)> {
        if (add || self.pods.is_empty()) && self.pods.len() < MAX_PODS {
            let node = self.nodes[rng.random_range(0..self.nodes.len())].clone();
            let name = format!("soak-{}", self.next_pod);
            self.next_pod += 1;
            let plan = PodPlan {
                netns: format!("{}-{name}", self.lab.name()),
                container_id: container_id(self.lab.name(), &name),
                namespace: POD_NAMESPACE.to_string(),
                node,
                name,
            };
            let what = format!("{} on {}", plan.name, plan.node);
            return Some(match self.cni_add(&plan) {
                Ok(ip) => {
                    let what = format!("{what} ({})", ip.map(|i| i.to_string()).unwrap_or_default());
                    self.pods.push(SoakPod { plan, ip });
                    (Kind::PodAdd, what, Ok(()))
                }
                Err(e) => {
                    // Keep it for the cleanup: its namespace (and maybe its veth) exists.
                    self.pods.push(SoakPod { plan, ip: None });
                    (Kind::PodAdd, what, Err(e))
                }
            });
        }
        if self.pods.is_empty() {
            return None;
        }
        let pod = self.pods.remove(rng.random_range(0..self.pods.len()));
        let what = format!("{} on {}", pod.plan.name, pod.plan.node);
        Some((Kind::PodDel, what, self.cni_del(&pod.plan)))
    }

    fn cni_add(&self, pod: &PodPlan) -> Result<Option<std::net::Ipv4Addr>, String> {
        brindle_lab::netns::add(&pod.netns).map_err(|e| e.to_string())?;
        brindle_lab::netns::ip_batch(&pod.netns, &["link set lo up".to_string()])
            .map_err(|e| e.to_string())?;
        let out = self.cni("ADD", pod)?;
        Ok(brindle_lab::cni::record(pod, &out)
            .ip
            .and_then(|s| s.parse().ok()))
    }

    /// CNI DEL (idempotent), then the namespace.
    fn cni_del(&self, pod: &PodPlan) -> Result<(), String> {
        let del = self.cni("DEL", pod).map(|_| ());
        let ns = if brindle_lab::netns::exists(&pod.netns) {
            brindle_lab::netns::del(&pod.netns).map_err(|e| e.to_string())
        } else {
            Ok(())
        };
        del.and(ns)
    }

    /// The plugin run for `command` in the pod's node, as the lab runs it for its own pods.
    fn cni(&self, command: &str, pod: &PodPlan) -> Result<String, String> {
        let node = self.lab.plan().node(&pod.node).expect("planned node");
        let env = self.lab.node_env(node);
        let conf = brindle_lab::cni::netconf(
            &env,
            &pod.node,
            self.lab.state().spec.pod_mtu(),
            &self.lab.dir().cni_log(),
        );
        brindle_lab::cni::invoke(self.lab.exe(), command, pod, &node.netns, &env, &conf)
            .map_err(|e| e.to_string())
    }

    /// Deletes every pod the soak made (also on failure, from `Drop`).
    pub fn delete_pods(&mut self) -> Vec<String> {
        let pods = std::mem::take(&mut self.pods);
        pods.iter().filter_map(|p| self.cni_del(&p.plan).err()).collect()
    }

    /// `brindle label KIND NAME soak-kK=vN --overwrite` (add) or `soak-kK --remove`.
    fn label(
        &self,
        (kind, name, ns): (&str, &str, Option<&str>),
        key: usize,
        add: bool,
        rng: &mut StdRng,
    ) -> (bool, String, Result<(), String>) {
        let key = format!("soak-k{key}");
        let kv = format!("{key}=v{}", rng.random_range(0..1000));
        let mut argv = vec!["label", kind, name];
        if add {
            argv.extend([kv.as_str(), "--overwrite"]);
        } else {
            argv.extend([key.as_str(), "--remove"]);
        }
        if let Some(ns) = ns {
            argv.extend(["--namespace", ns]);
        }
        let what = format!("{name} {}", if add { &kv } else { &key });
        (add, what, self.cli(&argv, None))
    }

    /// `brindle ARGV…` on the CLI node, `stdin` piped in.
    pub fn cli(&self, argv: &[&str], stdin: Option<&str>) -> Result<(), String> {
        let argv: Vec<String> = std::iter::once("brindle")
            .chain(argv.iter().copied())
            .map(String::from)
            .collect();
        let mut cmd = self.lab.command(CLI_NODE, &argv).map_err(|e| e.to_string())?;
        cmd.stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = cmd.spawn().map_err(|e| format!("{argv:?}: {e}"))?;
        let mut input = child.stdin.take().expect("piped");
        if let Some(s) = stdin {
            input
                .write_all(s.as_bytes())
                .map_err(|e| format!("{argv:?}: {e}"))?;
        }
        drop(input);
        let out = child.wait_with_output().map_err(|e| format!("{argv:?}: {e}"))?;
        if out.status.success() {
            Ok(())
        } else {
            Err(format!(
                "{}: {}{}",
                argv.join(" "),
                String::from_utf8_lossy(&out.stdout).trim(),
                String::from_utf8_lossy(&out.stderr).trim()
            ))
        }
    }
}

impl Drop for World<'_> {
    fn drop(&mut self) {
        for e in self.delete_pods() {
            eprintln!("soak pod cleanup: {e}");
        }
    }
}
