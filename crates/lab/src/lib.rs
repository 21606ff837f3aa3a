//! Clusters of Brindle nodes in network namespaces on one machine: `brindle lab up|down|status|
//! exec|ping`, and the harness of the end-to-end tests.
//!
//! The default lab is the seed's cluster: nodes `bgp-master1`, `bgp-node1`, `bgp-node2` at
//! 172.20.42.80–82/22 on a bridge, a router namespace at 172.20.42.1 (every node's default route;
//! 192.0.2.1 on its loopback as the "internet" for NAT-outgoing), pool `default-pool
//! 10.233.64.0/18` (/24 blocks, IPIP Always, natOutgoing), an agent (`brindle node run`) per node
//! and two pods per node made through the CNI plugin.
//!
//! Module map:
//! - [`spec`]: [`LabSpec`], the options, validated before anything is made.
//! - [`plan`]: [`Plan`], the layout computed from the spec (names, addresses) — pure.
//! - [`state`]: the lab directory and its state file, the record of everything made.
//! - [`proc`]: daemons started detached in a namespace, identified by PID and start time.
//! - [`netns`]: namespaces by exact name; `ip -batch` per namespace.
//! - [`topology`]: bridges, router, etcd host and nodes wired.
//! - [`etcd`]: a real etcd for `--datastore etcd`.
//! - [`env`]: the environment of a node's processes (datastore, node name, control socket).
//! - [`cni`]: pods through the CNI plugin, as a runtime makes them.
//! - [`lab`]: [`Lab`]: up (with rollback), open, agents, convergence, down.
//! - [`k8s`]: the lab as Kubernetes' API server, kubelet and Calico's controllers for `lab
//!   apply`/`lab delete` (Namespaces, ServiceAccounts, Pods).
//! - [`pods`]: pods added and removed after `lab up` (the seed's kind and Kubernetes pods).
//! - [`exec`], [`ping`]: commands inside a node or pod; the all-pairs ping matrix.
//! - [`probe`]: `lab probe`, every pod to every pod on ports and protocols, as truth tables;
//!   [`serve`]: the listener it runs in each pod; [`podfilter`]: the pods `--from`/`--to` pick.
//! - [`down`]: teardown of exactly what the state file lists.
//! - [`progress`]: progress lines.
//! - [`error`]: the error type, [`Error`].

pub mod cni;
pub mod down;
pub mod env;
pub mod error;
pub mod etcd;
pub mod exec;
pub mod k8s;
pub mod lab;
pub mod netns;
pub mod ping;
pub mod plan;
pub mod podfilter;
pub mod pods;
pub mod probe;
pub mod proc;
pub mod progress;
pub mod serve;
pub mod spec;
pub mod state;
pub mod topology;

pub use error::{Error, Result};
pub use lab::Lab;
pub use ping::PingMatrix;
pub use plan::Plan;
pub use spec::{DatastoreKind, LabSpec, encap_modes};

/// Finds `cmd` on PATH (and the sbin directories), or says which package to install.
pub fn which(cmd: &str, package: &str) -> Result<std::path::PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(["/usr/sbin".into(), "/sbin".into(), "/usr/bin".into()])
        .map(|d| d.join(cmd))
        .find(|p| p.is_file())
        .ok_or_else(|| Error::Missing {
            command: cmd.into(),
            package: package.into(),
        })
}
