//! The lab's directory and its state file: the exact names of everything `lab up` made, written
//! before each object is made (namespaces) or right after (processes), so `lab down` removes
//! exactly that, also after `lab up` or an agent crashed.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::proc::ProcRecord;
use crate::spec::LabSpec;

/// Where labs live unless `BRINDLE_LAB_ROOT` says otherwise.
pub const DEFAULT_ROOT: &str = "/var/lib/brindle/labs";
const STATE_FILE: &str = "state.json";
const STATE_VERSION: u32 = 1;

/// The root directory holding every lab's directory.
pub fn root_dir() -> PathBuf {
    std::env::var_os("BRINDLE_LAB_ROOT")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(DEFAULT_ROOT))
}

/// The files of one lab: `<root>/<name>/…`.
#[derive(Debug, Clone)]
pub struct LabDir {
    pub dir: PathBuf,
}

impl LabDir {
    pub fn new(root: &Path, name: &str) -> LabDir {
        LabDir { dir: root.join(name) }
    }
    pub fn state_file(&self) -> PathBuf {
        self.dir.join(STATE_FILE)
    }
    /// The SQLite datastore shared by the nodes.
    pub fn sqlite(&self) -> PathBuf {
        self.dir.join("brindle.db")
    }
    /// The lab's calicoctl connection file (`BRINDLE_CONFIG` of every lab process).
    pub fn connection_file(&self) -> PathBuf {
        self.dir.join("calicoctl.cfg")
    }
    pub fn etcd_dir(&self) -> PathBuf {
        self.dir.join("etcd")
    }
    /// A node's own directory: nodename and MTU files, agent log, control socket.
    pub fn node_dir(&self, node: &str) -> PathBuf {
        self.dir.join(node)
    }
    pub fn ctl_socket(&self, node: &str) -> PathBuf {
        self.node_dir(node).join("brindle.ctl")
    }
    pub fn agent_log(&self, node: &str) -> PathBuf {
        self.node_dir(node).join("agent.log")
    }
    /// The nodes' `BRINDLE_SECRETS_DIR` (BGP passwords as `<secret>/<key>` files), shared by
    /// the lab's nodes as a cluster's Secrets are.
    pub fn secrets(&self) -> PathBuf {
        self.dir.join("secrets")
    }
    pub fn cni_log(&self) -> PathBuf {
        self.dir.join("cni.log")
    }
}

/// A pod as the CNI plugin wired it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PodRecord {
    pub name: String,
    /// Kubernetes namespace (`default` for the seed's pods and labs made before namespaces).
    #[serde(default = "default_namespace")]
    pub namespace: String,
    /// The labels of its WorkloadEndpoint (the pod's own and Calico's), for selectors over pods.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub labels: BTreeMap<String, String>,
    pub node: String,
    pub netns: String,
    pub container_id: String,
    /// The pod's address (from the CNI result), without prefix: the first of [`Self::ips`]
    /// (Kubernetes' `podIP`).
    pub ip: Option<String>,
    /// Every address of the pod (Kubernetes' `podIPs`: IPv4 then IPv6 in a dual-stack lab).
    /// Empty in state files written before it (then [`Self::ip`] is the only one).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ips: Vec<String>,
    /// The host-side veth (`cali…`).
    pub host_if: Option<String>,
    /// What its `lab probe` listener serves (`tcp/80`, `udp/81`), if one was started.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub listening: Vec<String>,
}

/// What a lab is and what was made for it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct LabState {
    pub version: u32,
    pub spec: LabSpec,
    /// The `brindle` binary the agents and the CNI plugin run.
    pub exe: PathBuf,
    /// Namespaces made (or about to be made) by this lab, in creation order.
    pub namespaces: Vec<String>,
    /// Daemons started for this lab (agents, etcd), identified by PID and start time.
    pub processes: Vec<ProcRecord>,
    pub pods: Vec<PodRecord>,
    /// `lab up` finished.
    pub complete: bool,
}

impl LabState {
    pub fn new(spec: LabSpec, exe: PathBuf) -> LabState {
        LabState {
            version: STATE_VERSION,
            spec,
            exe,
            namespaces: Vec::new(),
            processes: Vec::new(),
            pods: Vec::new(),
            complete: false,
        }
    }

    /// Reads `<dir>/state.json`.
    pub fn load(dir: &LabDir) -> Result<LabState> {
        let path = dir.state_file();
        let bytes = std::fs::read(&path).map_err(|e| {
            if e.kind() == std::io::ErrorKind::NotFound {
                Error::NoSuchLab {
                    name: dir
                        .dir
                        .file_name()
                        .map(|n| n.to_string_lossy().into_owned())
                        .unwrap_or_default(),
                    path: path.clone(),
                }
            } else {
                Error::io(&path, e)
            }
        })?;
        let state: LabState =
            serde_json::from_slice(&bytes).map_err(|e| Error::step(format!("read {}", path.display()), e))?;
        if state.version != STATE_VERSION {
            return Err(Error::step(
                format!("read {}", path.display()),
                format!(
                    "state version {} (this brindle reads {STATE_VERSION})",
                    state.version
                ),
            ));
        }
        Ok(state)
    }

    /// Writes the state atomically (temporary file + rename), so a crash never leaves half a file.
    pub fn save(&self, dir: &LabDir) -> Result<()> {
        let path = dir.state_file();
        let tmp = dir.dir.join(".state.json.tmp");
        let bytes = serde_json::to_vec_pretty(self).expect("state serialises");
        std::fs::write(&tmp, bytes).map_err(|e| Error::io(&tmp, e))?;
        std::fs::rename(&tmp, &path).map_err(|e| Error::io(&path, e))
    }

    /// The process record of a role (`agent bgp-master1`, `etcd`), if any.
    pub fn process(&self, role: &str) -> Option<&ProcRecord> {
        self.processes.iter().find(|p| p.role == role)
    }

    /// A pod by `NAMESPACE/NAME`, or by its name alone when only one namespace has it.
    pub fn pod(&self, target: &str) -> Option<&PodRecord> {
        match target.split_once('/') {
            Some((ns, name)) => self.pods.iter().find(|p| p.namespace == ns && p.name == name),
            None => {
                let mut found = self.pods.iter().filter(|p| p.name == target);
                let first = found.next()?;
                found.next().is_none().then_some(first)
            }
        }
    }
}

impl PodRecord {
    /// Every address of the pod ([`Self::ips`], or [`Self::ip`] for older records).
    pub fn addresses(&self) -> Vec<&str> {
        if self.ips.is_empty() {
            self.ip.iter().map(String::as_str).collect()
        } else {
            self.ips.iter().map(String::as_str).collect()
        }
    }

    /// The pod's IPv4 address, if it has one.
    pub fn ip4(&self) -> Option<&str> {
        self.addresses().into_iter().find(|a| !a.contains(':'))
    }

    /// The pod's IPv6 address, if it has one.
    pub fn ip6(&self) -> Option<&str> {
        self.addresses().into_iter().find(|a| a.contains(':'))
    }
}

fn default_namespace() -> String {
    crate::plan::POD_NAMESPACE.to_string()
}

/// The role name of the listener `lab probe` runs in pod `namespace/name`.
pub fn serve_role(namespace: &str, name: &str) -> String {
    format!("serve {namespace}/{name}")
}

/// The role name of a node's agent in [`LabState::processes`].
pub fn agent_role(node: &str) -> String {
    format!("agent {node}")
}
