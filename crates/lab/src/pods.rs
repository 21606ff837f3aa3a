//! Pods coming and going after `lab up`, as a runtime makes and removes them: a network
//! namespace, the CNI plugin's ADD (or DEL) from the node's namespace, the record in the state.
//! The seed's extra pods ([`Lab::add_pod`]) and Kubernetes pods ([`Lab::attach_k8s_pod`]) take
//! the same path.

use crate::error::{Error, Result};
use crate::lab::Lab;
use crate::plan::{POD_NAMESPACE, PodPlan, k8s_container_id, k8s_pod_netns, pod_name};
use crate::state::{PodRecord, serve_role};
use crate::{cni, netns};

impl Lab {
    /// Adds one more pod to `node` through the CNI plugin (as a runtime scheduling a pod would)
    /// and records it. Returns its record (with its address).
    pub fn add_pod(&mut self, node: &str) -> Result<PodRecord> {
        self.node(node)?;
        let j = (0..)
            .find(|j| {
                let name = pod_name(node, *j);
                self.state().pod(&format!("{POD_NAMESPACE}/{name}")).is_none()
            })
            .expect("a free index");
        let name = pod_name(node, j);
        let pod = PodPlan {
            netns: format!("{}-{name}", self.name()),
            namespace: POD_NAMESPACE.to_string(),
            container_id: crate::plan::container_id(self.name(), &name),
            node: node.to_string(),
            name,
        };
        self.attach(pod, "")
    }

    /// Makes Kubernetes pod `namespace/name` on `node` through the CNI plugin: its own network
    /// namespace (`<lab>-<ns>.<pod>`), then ADD with `K8S_POD_NAMESPACE`, `K8S_POD_NAME` and
    /// `K8S_POD_UID` as kubelet passes them, plus `extra_args` (`;IP=…`). The caller has stored
    /// the Pod where the plugin reads it; `labels` (its endpoint's labels) go into the record.
    /// On failure nothing of the pod is left.
    pub fn attach_k8s_pod(
        &mut self,
        namespace: &str,
        name: &str,
        node: &str,
        labels: &std::collections::BTreeMap<String, String>,
        extra_args: &str,
    ) -> Result<PodRecord> {
        self.node(node)?;
        let pod = PodPlan {
            netns: k8s_pod_netns(self.name(), namespace, name),
            container_id: k8s_container_id(self.name(), namespace, name),
            namespace: namespace.to_string(),
            node: node.to_string(),
            name: name.to_string(),
        };
        let mut rec = self.attach(pod, extra_args)?;
        rec.labels = labels.clone();
        let stored = self
            .state_mut()
            .pods
            .iter_mut()
            .find(|p| p.namespace == namespace && p.name == name)
            .expect("just recorded");
        stored.labels = labels.clone();
        self.save()?;
        Ok(rec)
    }

    /// The namespace, its loopback, the ADD, the record; undone on failure.
    fn attach(&mut self, pod: PodPlan, extra_args: &str) -> Result<PodRecord> {
        if netns::exists(&pod.netns) {
            return Err(Error::NameInUse {
                name: self.name().to_string(),
                detail: format!(
                    "namespace {} of pod {}/{} exists and is not this lab's",
                    pod.netns, pod.namespace, pod.name
                ),
            });
        }
        let n = self.node(&pod.node)?.clone();
        // Recorded before it is made: a crash right after `ip netns add` leaks nothing.
        self.state_mut().namespaces.push(pod.netns.clone());
        self.save()?;
        let made = netns::add(&pod.netns).and_then(|()| {
            netns::loopback_up(&pod.netns)?;
            let (env, conf) = self.cni_call_setup(&n);
            cni::invoke_with(self.exe(), "ADD", &pod, &n.netns, &env, &conf, extra_args)
        });
        let out = match made {
            Ok(out) => out,
            Err(e) => {
                // The plugin rolls its own work back; the namespace is ours to remove.
                let _ = netns::del(&pod.netns);
                self.state_mut().namespaces.retain(|ns| *ns != pod.netns);
                self.save()?;
                return Err(e);
            }
        };
        let rec = cni::record(&pod, &out);
        self.state_mut().pods.push(rec.clone());
        self.plan_mut().pods.push(pod);
        self.save()?;
        Ok(rec)
    }

    /// Removes pod `namespace/name` as a runtime does: its listener (if `lab probe` started
    /// one) stopped, the plugin's DEL, its namespace deleted, its record dropped. A failed DEL
    /// leaves the pod in place and says why.
    pub fn remove_pod(&mut self, namespace: &str, name: &str) -> Result<()> {
        let target = format!("{namespace}/{name}");
        let rec = self
            .state()
            .pod(&target)
            .cloned()
            .ok_or_else(|| Error::Invalid(format!("lab {}: no pod {target}", self.name())))?;
        let plan = self
            .plan()
            .pod(&target)
            .cloned()
            .expect("every recorded pod is planned");
        let role = serve_role(namespace, name);
        if let Some(p) = self.state().process(&role) {
            p.stop(std::time::Duration::from_secs(5))?;
        }
        let n = self.node(&rec.node)?.clone();
        let (env, conf) = self.cni_call_setup(&n);
        cni::invoke(self.exe(), "DEL", &plan, &n.netns, &env, &conf)?;
        netns::del(&rec.netns)?;
        let state = self.state_mut();
        state.processes.retain(|p| p.role != role);
        state.namespaces.retain(|ns| *ns != rec.netns);
        state
            .pods
            .retain(|p| !(p.namespace == namespace && p.name == name));
        self.plan_mut()
            .pods
            .retain(|p| !(p.namespace == namespace && p.name == name));
        self.save()
    }

    /// The node a pod without `spec.nodeName` goes to: the one with the fewest pods (the first
    /// such node on a tie), as a scheduler spreading pods would. A named node must exist.
    pub fn place_pod(&self, node_name: &str) -> Result<String> {
        if !node_name.is_empty() {
            return self.node(node_name).map(|n| n.name.clone());
        }
        let count = |n: &str| self.state().pods.iter().filter(|p| p.node == n).count();
        self.plan()
            .nodes
            .iter()
            .min_by_key(|n| count(&n.name))
            .map(|n| n.name.clone())
            .ok_or_else(|| Error::Invalid(format!("lab {} has no nodes", self.name())))
    }
}
