//! Where Brindle keeps the Kubernetes objects it plays the API server for, and in what format.
//!
//! Brindle has no Kubernetes: `brindle lab apply` stores the `v1` Namespaces, ServiceAccounts
//! and Pods it is given in the datastore, next to Calico's keys, so that what reads the API
//! server in Calico reads them here. The CNI plugin is the reader that matters: Calico's
//! plugin (`policy: {type: k8s}`) reads the Pod from the API server during ADD and writes the
//! WorkloadEndpoint with the pod's labels, service account, named ports and profiles at once
//! (`cni-plugin/pkg/k8s/k8s.go`), so policy applies from the pod's first packet. Brindle's
//! plugin reads [`pod_key`] for `K8S_POD_NAMESPACE`/`K8S_POD_NAME` and converts what it finds
//! with [`super::pod_to_workload_endpoint`]; no key means a pod without Kubernetes metadata
//! (a plain CNI runtime), as before.
//!
//! Layout (one JSON document per key, the object as the API server returns it: `kind`,
//! `apiVersion`, `metadata` with `uid` and `creationTimestamp`, and the rest of the object):
//!
//! Keys (functions in `crate::keys`, re-exported here):
//!
//! | object | key |
//! |---|---|
//! | Namespace `n` | `/brindle/k8s/v1/namespaces/<n>` |
//! | ServiceAccount `sa` in `n` | `/brindle/k8s/v1/serviceaccounts/<n>/<sa>` |
//! | Pod `p` in `n` | `/brindle/k8s/v1/pods/<n>/<p>` |
//!
//! Writers keep the object and what Calico's controllers derive from it in step (the `kns.` and
//! `ksa.` Profiles, the WorkloadEndpoint's labels); readers other than the plugin should use
//! those derived resources.

use serde::Serialize;

use super::types::{Namespace, Pod, ServiceAccount};

// The keys have one home, `crate::keys`, shared by the lab (writer) and the plugin (reader).
pub use crate::keys::{
    K8S_PREFIX as PREFIX, k8s_namespace_key as namespace_key, k8s_namespaces_prefix as namespaces_prefix,
    k8s_pod_key as pod_key, k8s_pods_prefix as pods_prefix, k8s_service_account_key as service_account_key,
    k8s_service_accounts_prefix as service_accounts_prefix,
};

/// The stored form of an object: its JSON with `kind` and `apiVersion`.
pub fn encode<T: Serialize>(object: &T) -> Vec<u8> {
    serde_json::to_vec(object).expect("Kubernetes objects serialise")
}

/// A stored pod, read back. An error names the key.
pub fn decode_pod(key: &str, value: &[u8]) -> Result<Pod, String> {
    serde_json::from_slice(value).map_err(|e| format!("{key}: not a v1 Pod: {e}"))
}

/// A stored namespace, read back. An error names the key.
pub fn decode_namespace(key: &str, value: &[u8]) -> Result<Namespace, String> {
    serde_json::from_slice(value).map_err(|e| format!("{key}: not a v1 Namespace: {e}"))
}

/// A stored service account, read back. An error names the key.
pub fn decode_service_account(key: &str, value: &[u8]) -> Result<ServiceAccount, String> {
    serde_json::from_slice(value).map_err(|e| format!("{key}: not a v1 ServiceAccount: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::meta::ObjectMeta;

    #[test]
    fn keys_and_round_trip() {
        assert_eq!(pod_key("x", "a"), "/brindle/k8s/v1/pods/x/a");
        assert!(pod_key("x", "a").starts_with(&pods_prefix("x")));
        assert!(pod_key("x", "a").starts_with(&pods_prefix("")));
        assert_eq!(namespace_key("x"), "/brindle/k8s/v1/namespaces/x");
        assert_eq!(
            service_account_key("x", "api"),
            "/brindle/k8s/v1/serviceaccounts/x/api"
        );
        let mut pod = Pod {
            metadata: ObjectMeta::namespaced("x", "a"),
            ..Default::default()
        };
        pod.metadata.labels.insert("pod".into(), "a".into());
        let bytes = encode(&pod);
        let text = String::from_utf8(bytes.clone()).unwrap();
        assert!(text.starts_with(r#"{"kind":"Pod","apiVersion":"v1","#), "{text}");
        assert_eq!(decode_pod("k", &bytes).unwrap(), pod);
        let e = decode_pod("/brindle/k8s/v1/pods/x/a", b"{}x").unwrap_err();
        assert!(e.starts_with("/brindle/k8s/v1/pods/x/a: not a v1 Pod"), "{e}");
    }
}
