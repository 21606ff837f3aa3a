//! Kubernetes objects Brindle reads, and the pure conversions Calico's controllers and CNI
//! plugin make from them on an etcd datastore (Brindle has no Kubernetes: the CLI and the lab
//! play the API server's and the controllers' parts).
//!
//! Module map:
//! - [`meta`]: the kinds ([`K8sKind`]) and their `kind`/`apiVersion` header.
//! - [`types`]: `networking.k8s.io/v1 NetworkPolicy`, `v1 Namespace`, `v1 ServiceAccount`,
//!   `v1 Pod`, with Go's field names.
//! - [`netpol`]: NetworkPolicy → Calico `NetworkPolicy knp.default.<name>` (Calico's
//!   `conversion.go`), with the API server's validation and defaults first.
//! - [`workload`]: Namespace → `kns.<ns>` Profile, ServiceAccount → `ksa.<ns>.<sa>` Profile,
//!   Pod → WorkloadEndpoint labels, profiles, ports and service account.
//! - [`stored`]: where the objects Brindle plays the API server for are kept in the datastore
//!   (the lab writes them; the CNI plugin reads a pod's during ADD), and their format.
//! - [`invalid`]: errors worded as Kubernetes words them.

pub mod invalid;
pub mod meta;
pub mod netpol;
pub mod stored;
pub mod types;
pub mod workload;

pub use invalid::{K8sFieldError, K8sInvalid};
pub use meta::K8sKind;
pub use netpol::network_policy_to_calico;
pub use types::{
    Container, ContainerPort, IntOrString, IpBlock, LabelSelector, LabelSelectorRequirement, Namespace,
    NetworkPolicy, NetworkPolicyEgressRule, NetworkPolicyIngressRule, NetworkPolicyPeer, NetworkPolicyPort,
    Pod, PodSpec, ServiceAccount,
};
pub use workload::{namespace_to_profile, pod_to_workload_endpoint, service_account_to_profile};
