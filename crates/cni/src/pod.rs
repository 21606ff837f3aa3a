//! The Kubernetes Pod an ADD is for, read from the datastore, so the WorkloadEndpoint is
//! complete when it is first written: the pod's labels, `projectcalico.org/namespace`,
//! `…/orchestrator: k8s`, `…/serviceaccount`, profiles `[kns.<ns>, ksa.<ns>.<sa>]`, named
//! ports, `serviceAccountName` and `allowSpoofedSourcePrefixes`. Calico's plugin (with
//! `policy: {type: k8s}`) reads the Pod from the API server during ADD for the same reason
//! (`cni-plugin/pkg/k8s/k8s.go`): policy applies from the pod's first packet, not from
//! whenever a controller catches up.
//!
//! Brindle has no API server: whoever plays it (`brindle lab`) stores the `v1` Pod under
//! `brindle_model::keys::k8s_pod_key` before the ADD. Without `K8S_POD_NAMESPACE` and
//! `K8S_POD_NAME` in `CNI_ARGS`, or without a stored Pod, the plugin writes the endpoint it
//! always wrote (a plain CNI runtime such as podman has no Pod object).

use brindle_datastore::{Client, ResourceError};
use brindle_model::k8s::{Namespace, Pod, ServiceAccount};
use brindle_model::k8s::{namespace_to_profile, pod_to_workload_endpoint, service_account_to_profile};
use brindle_model::resources::{Profile, WorkloadEndpoint};
use brindle_model::{Kind, ObjectMeta, Resource};

use crate::cni_args::CniArgs;
use crate::endpoint::resource_error;
use crate::error::CniError;
use crate::store::ds_error;

/// The endpoint Calico derives from the stored Pod named by `args`, placed on `node`, without
/// what only the ADD knows (addresses, interface, container ID, MAC). `None` when `CNI_ARGS`
/// names no pod or no Pod object is stored. A stored object that is not a valid Pod fails the
/// ADD before anything is changed (an endpoint without its labels would get the wrong policy).
pub fn endpoint_template(
    client: &Client,
    args: &CniArgs,
    node: &str,
) -> Result<Option<WorkloadEndpoint>, CniError> {
    let (Some(ns), Some(name)) = (&args.pod_namespace, &args.pod_name) else {
        return Ok(None);
    };
    let key = brindle_model::keys::k8s_pod_key(ns, name);
    let Some(kv) = client
        .store()
        .get(&key)
        .map_err(|e| ds_error(e).context(format!("read pod {ns}/{name}")))?
    else {
        return Ok(None);
    };
    let pod: Pod = serde_json::from_slice(&kv.value)
        .map_err(|e| CniError::internal(format!("pod {ns}/{name}: {key} is not a v1 Pod: {e}")))?;
    if pod.metadata.namespace != *ns || pod.metadata.name != *name {
        return Err(CniError::internal(format!(
            "pod {ns}/{name}: {key} holds pod {}/{}",
            pod.metadata.namespace, pod.metadata.name
        )));
    }
    pod_to_workload_endpoint(&pod, node)
        .map(Some)
        .map_err(|e| CniError::internal(format!("pod {ns}/{name}: {e}")))
}

/// The profiles a pod's endpoint names (`kns.<ns>`, `ksa.<ns>.<sa>`), created when missing
/// (normally kube-controllers', here the lab's, job: this only covers a Pod stored without
/// them, so the endpoint never names a profile that does not exist, which would drop all its
/// traffic). What is created is what the controllers derive from a namespace or service
/// account without labels.
pub fn ensure_profiles(client: &Client, wep: &WorkloadEndpoint) -> Result<(), CniError> {
    let ns = &wep.metadata.namespace;
    let sa = &wep.spec.service_account_name;
    let wanted = [
        namespace_to_profile(&Namespace {
            metadata: ObjectMeta::named(ns),
            ..Default::default()
        }),
        service_account_to_profile(&ServiceAccount {
            metadata: ObjectMeta::namespaced(ns, sa),
            ..Default::default()
        }),
    ];
    for p in wanted {
        if wep.spec.profiles.contains(&p.metadata.name) {
            create_if_missing(client, p)?;
        }
    }
    Ok(())
}

/// Creates `p` unless a profile of that name exists (an existing one is never changed).
pub fn create_if_missing(client: &Client, p: Profile) -> Result<(), CniError> {
    let what = format!("create Profile {}", p.metadata.name);
    if client
        .get(Kind::Profile, "", &p.metadata.name)
        .map_err(|e| resource_error(&what, e))?
        .is_some()
    {
        return Ok(());
    }
    match client.create(&Resource::Profile(p)) {
        Ok(_) | Err(ResourceError::AlreadyExists(_)) => Ok(()),
        Err(e) => Err(resource_error(&what, e)),
    }
}
