//! Who an attachment is for, and the names derived from it (Calico's
//! `libcalico-go/lib/names/workloadendpoint.go` and
//! `libcalico-go/lib/backend/k8s/conversion/workload_endpoint_default.go`):
//! the orchestrator (`k8s` when a pod name is given, `cni` otherwise), the host-side veth name,
//! the WorkloadEndpoint name, and the IPAM handles.

use sha1::{Digest, Sha1};

use crate::cni_args::CniArgs;

/// Felix's default interface prefix (`FELIX_INTERFACEPREFIX`).
pub const IFACE_PREFIX: &str = "cali";

/// Calico's orchestrator IDs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Orchestrator {
    K8s,
    Cni,
}

impl Orchestrator {
    pub fn as_str(self) -> &'static str {
        match self {
            Orchestrator::K8s => "k8s",
            Orchestrator::Cni => "cni",
        }
    }
}

/// The identity of one attachment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    pub orchestrator: Orchestrator,
    /// The pod's namespace; `default` for CNI workloads (as Calico) and for pods whose
    /// runtime gave no namespace (podman passes only `K8S_POD_NAME`).
    pub namespace: String,
    /// The pod name (k8s only).
    pub pod: Option<String>,
    pub container_id: String,
    /// The interface inside the container (`CNI_IFNAME`).
    pub endpoint: String,
    pub node: String,
}

impl Identity {
    pub fn new(args: &CniArgs, container_id: &str, ifname: &str, node: &str) -> Identity {
        let (orchestrator, pod) = match &args.pod_name {
            Some(p) => (Orchestrator::K8s, Some(p.clone())),
            None => (Orchestrator::Cni, None),
        };
        let namespace = match orchestrator {
            Orchestrator::K8s => args.pod_namespace.clone().unwrap_or_else(|| "default".into()),
            Orchestrator::Cni => "default".into(),
        };
        Identity {
            orchestrator,
            namespace,
            pod,
            container_id: container_id.to_string(),
            endpoint: ifname.to_string(),
            node: node.to_string(),
        }
    }

    /// `cali` + 11 hex digits of sha1("<namespace>.<pod>") for pods; `cali` + 11 hex digits
    /// of sha1(container ID) otherwise. 15 characters: IFNAMSIZ − 1.
    ///
    /// Calico takes the container ID's first 11 characters for non-Kubernetes workloads, but
    /// containerd 1.6 (`ctr run --cni`) passes `<namespace>-<id>`, so two containers of one
    /// namespace whose IDs start alike would get the same host veth; hashing the whole ID
    /// keeps them apart, as the pod case already does.
    pub fn host_veth(&self) -> String {
        let key = match &self.pod {
            Some(pod) => format!("{}.{}", self.namespace, pod),
            None => self.container_id.clone(),
        };
        let digest = Sha1::digest(key.as_bytes());
        let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
        format!("{IFACE_PREFIX}{}", &hex[..11])
    }

    /// The workload segment of the endpoint name: the pod, or the container ID.
    pub fn workload(&self) -> &str {
        self.pod.as_deref().unwrap_or(&self.container_id)
    }

    /// `<node>-<orchestrator>-<pod|containerID>-<endpoint>`, every `-` inside a segment doubled
    /// (`libcalico-go/lib/names/workloadendpoint.go`).
    pub fn endpoint_name(&self) -> String {
        [
            self.node.as_str(),
            self.orchestrator.as_str(),
            self.workload(),
            self.endpoint.as_str(),
        ]
        .iter()
        .map(|s| s.replace('-', "--"))
        .collect::<Vec<_>>()
        .join("-")
    }

    /// The IPAM handle of this attachment: `<network>.<containerID>`.
    pub fn handle(&self, network: &str) -> String {
        handle_for(network, &self.container_id)
    }

    /// The handle older Calico versions used: `<namespace>.<pod>` for pods, the container ID
    /// otherwise. DEL releases it too.
    pub fn legacy_handle(&self) -> String {
        match &self.pod {
            Some(pod) => format!("{}.{}", self.namespace, pod),
            None => self.container_id.clone(),
        }
    }
}

/// `<network>.<containerID>`.
pub fn handle_for(network: &str, container_id: &str) -> String {
    format!("{network}.{container_id}")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(s: &str) -> CniArgs {
        CniArgs::parse(s).unwrap()
    }

    #[test]
    fn k8s_pod_names() {
        let id = Identity::new(
            &args("K8S_POD_NAMESPACE=default;K8S_POD_NAME=nginx-1"),
            "cc4687b3",
            "eth0",
            "node1",
        );
        assert_eq!(id.orchestrator, Orchestrator::K8s);
        // sha1("default.nginx-1") = 4c0e1f52a0c1…
        let digest = Sha1::digest(b"default.nginx-1");
        let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
        assert_eq!(id.host_veth(), format!("cali{}", &hex[..11]));
        assert_eq!(id.host_veth().len(), 15);
        assert_eq!(id.endpoint_name(), "node1-k8s-nginx--1-eth0");
        assert_eq!(id.handle("k8s-pod-network"), "k8s-pod-network.cc4687b3");
        assert_eq!(id.legacy_handle(), "default.nginx-1");
    }

    #[test]
    fn sha1_matches_a_known_vector() {
        // Independent check of the digest formatting: sha1("abc") is a9993e36…
        let digest = Sha1::digest(b"abc");
        let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
        assert_eq!(hex, "a9993e364706816aba3e25717850c26c9cd0d89d");
    }

    #[test]
    fn cni_workloads_use_the_container_id() {
        let id = Identity::new(&args("IgnoreUnknown=1"), "3f6940ab5ab43bc5", "eth0", "my-node");
        assert_eq!(id.orchestrator, Orchestrator::Cni);
        assert_eq!(id.namespace, "default");
        // sha1("3f6940ab5ab43bc5") = abf9534fe7d…
        let digest = Sha1::digest(b"3f6940ab5ab43bc5");
        let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
        assert_eq!(id.host_veth(), format!("cali{}", &hex[..11]));
        assert_eq!(id.endpoint_name(), "my--node-cni-3f6940ab5ab43bc5-eth0");
        assert_eq!(id.legacy_handle(), "3f6940ab5ab43bc5");
        let short = Identity::new(&args(""), "c1", "eth0", "n");
        assert_eq!(short.host_veth().len(), 15);
    }

    #[test]
    fn containerd_ids_sharing_a_prefix_get_distinct_veths() {
        // containerd 1.6 passes `<namespace>-<id>`: the first 11 characters are often the
        // namespace alone.
        let a = Identity::new(&args("IgnoreUnknown=1"), "default-web-1", "eth0", "n");
        let b = Identity::new(&args("IgnoreUnknown=1"), "default-web-2", "eth0", "n");
        assert_eq!(a.container_id[..11], b.container_id[..11]);
        assert_ne!(a.host_veth(), b.host_veth());
        assert!(a.host_veth().len() == 15 && b.host_veth().len() == 15);
        assert!(a.host_veth()[4..].bytes().all(|c| c.is_ascii_hexdigit()));
    }

    #[test]
    fn podman_pods_without_namespace_are_in_default() {
        let id = Identity::new(&args("IgnoreUnknown=1;K8S_POD_NAME=web"), "abc", "eth0", "n");
        assert_eq!(id.namespace, "default");
        assert_eq!(id.orchestrator, Orchestrator::K8s);
    }
}
