//! `brindle lab exec NODE|[NAMESPACE/]POD -- CMD`: a command inside a node's or a pod's namespace, with
//! what it needs to find that node's agent and the datastore.

use std::process::Command;

use crate::error::{Error, Result};
use crate::lab::Lab;
use crate::proc::enter_netns;

impl Lab {
    /// A command that runs `argv` in the namespace of `target` (a node name such as
    /// `bgp-master1`, or a pod: `NAMESPACE/POD`, or its name alone when no other namespace
    /// has a pod of that name, such as `pod-bgp-master1-1`). For a node it carries the
    /// node's environment (datastore, `NODENAME`, `BRINDLE_CTL_SOCKET`, PATH led by the lab's
    /// `brindle`); for a pod, the environment of its node.
    pub fn command(&self, target: &str, argv: &[String]) -> Result<Command> {
        let (netns, node) = if let Some(n) = self.plan().node(target) {
            (n.netns.clone(), n)
        } else if let Some(p) = self.plan().pod(target) {
            let n = self.plan().node(&p.node).expect("pod's node is planned");
            (p.netns.clone(), n)
        } else {
            let same: Vec<String> = self
                .plan()
                .pods
                .iter()
                .filter(|p| p.name == target)
                .map(|p| format!("{}/{}", p.namespace, p.name))
                .collect();
            if same.len() > 1 {
                return Err(Error::Invalid(format!(
                    "lab {}: pod {target} is in several namespaces ({}); name one as NAMESPACE/POD",
                    self.name(),
                    same.join(", ")
                )));
            }
            let nodes: Vec<&str> = self.plan().nodes.iter().map(|n| n.name.as_str()).collect();
            return Err(Error::Invalid(format!(
                "lab {}: no node or pod named {target} (nodes: {}; pods: NAMESPACE/POD, see `lab status`)",
                self.name(),
                nodes.join(", ")
            )));
        };
        let Some((program, args)) = argv.split_first() else {
            return Err(Error::Invalid("lab exec: no command given after --".into()));
        };
        let mut cmd = Command::new(program);
        crate::env::isolate(&mut cmd);
        cmd.args(args).envs(self.node_env(node));
        enter_netns(&mut cmd, &netns)?;
        Ok(cmd)
    }
}
