//! The environment a process of a lab node needs: where the datastore is, which node it is,
//! where the node's agent listens. Used for the agents, the CNI plugin and `lab exec`.

use std::path::Path;

use crate::plan::{NodePlan, Plan};
use crate::spec::DatastoreKind;
use crate::state::LabDir;

/// Datastore variables (Brindle's names win over Calico's, so a stray `ETCD_ENDPOINTS` in the
/// caller's shell cannot redirect a lab process).
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
