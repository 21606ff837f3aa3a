//! The environment a process of a lab node needs: where the datastore is, which node it is,
//! where the node's agent listens. Used for the agents, the CNI plugin and `lab exec`.
//!
//! A lab's processes get their datastore from the lab alone: every process the lab starts has
//! the caller's datastore variables removed ([`isolate`]) and is pointed at the lab's own
//! connection file (`BRINDLE_CONFIG=<lab>/calicoctl.cfg`, [`write_connection_file`]), which
//! wins over the environment and keeps the host's `/etc/calico/calicoctl.cfg` out of it. A
//! workstation whose shell or calicoctl.cfg points at a real cluster cannot send a lab's agents
//! there.

use std::path::Path;
use std::process::Command;

use crate::plan::{NodePlan, Plan};
use crate::spec::DatastoreKind;
use crate::state::LabDir;

/// Variables that choose a datastore (Calico's, Brindle's, Kubernetes'): never inherited by a
/// lab process from the caller.
pub const FOREIGN: &[&str] = &[
    "BRINDLE_CONFIG",
    "BRINDLE_DATASTORE_TYPE",
    "BRINDLE_DATASTORE_PATH",
    "DATASTORE_TYPE",
    "ETCD_ENDPOINTS",
    "ETCD_DISCOVERY_SRV",
    "ETCD_CA_CERT_FILE",
    "ETCD_CERT_FILE",
    "ETCD_KEY_FILE",
    "ETCD_USERNAME",
    "ETCD_PASSWORD",
    "KUBECONFIG",
    "K8S_API_ENDPOINT",
];

/// Removes the caller's datastore variables from `cmd`'s environment (the lab's are added
/// after).
pub fn isolate(cmd: &mut Command) {
    for v in FOREIGN {
        cmd.env_remove(v);
    }
}

/// Writes the lab's connection file (calicoctl's `CalicoAPIConfig`) naming its datastore.
pub fn write_connection_file(dir: &LabDir, plan: &Plan, kind: DatastoreKind) -> std::io::Result<()> {
    let spec = match (kind, &plan.etcd) {
        (DatastoreKind::Etcd, Some(e)) => {
            format!("  datastoreType: etcdv3\n  etcdEndpoints: {}\n", e.endpoint())
        }
        _ => format!(
            "  datastoreType: sqlite\n  datastorePath: {}\n",
            dir.sqlite().display()
        ),
    };
    std::fs::write(
        dir.connection_file(),
        format!(
            "# Written by `brindle lab up`: every process of this lab reads its datastore here.\n\
             apiVersion: projectcalico.org/v3\nkind: CalicoAPIConfig\nmetadata: {{}}\nspec:\n{spec}"
        ),
    )
}

/// Datastore variables (also in the connection file, which wins; the CNI configuration is
/// written from these).
pub fn datastore_env(dir: &LabDir, plan: &Plan, kind: DatastoreKind) -> Vec<(String, String)> {
    match (kind, &plan.etcd) {
        (DatastoreKind::Etcd, Some(e)) => vec![
            ("BRINDLE_DATASTORE_TYPE".into(), "etcdv3".into()),
            ("DATASTORE_TYPE".into(), "etcdv3".into()),
            ("ETCD_ENDPOINTS".into(), e.endpoint()),
        ],
        _ => vec![
            ("BRINDLE_DATASTORE_TYPE".into(), "sqlite".into()),
            (
                "BRINDLE_DATASTORE_PATH".into(),
                dir.sqlite().display().to_string(),
            ),
        ],
    }
}

/// Everything a command run "on" a node needs: datastore, node name, the node's state
/// directory and control socket, the lab's secrets directory, and `PATH` led by the directory
/// of the lab's `brindle`.
pub fn node_env(
    dir: &LabDir,
    plan: &Plan,
    kind: DatastoreKind,
    node: &NodePlan,
    exe: &Path,
) -> Vec<(String, String)> {
    let mut env = datastore_env(dir, plan, kind);
    env.push((
        "BRINDLE_CONFIG".into(),
        dir.connection_file().display().to_string(),
    ));
    env.push(("NODENAME".into(), node.name.clone()));
    env.push((
        "BRINDLE_STATE_DIR".into(),
        dir.node_dir(&node.name).display().to_string(),
    ));
    env.push((
        "BRINDLE_CTL_SOCKET".into(),
        dir.ctl_socket(&node.name).display().to_string(),
    ));
    env.push(("BRINDLE_SECRETS_DIR".into(), dir.secrets().display().to_string()));
    env.push(("PATH".into(), path_with(exe)));
    env
}

/// `PATH` with the directory of `exe` first, so `brindle` inside a lab is the lab's binary.
pub fn path_with(exe: &Path) -> String {
    let old = std::env::var("PATH").unwrap_or_else(|_| "/usr/sbin:/usr/bin:/sbin:/bin".into());
    match exe.parent() {
        Some(d) => format!("{}:{old}", d.display()),
        None => old,
    }
}
