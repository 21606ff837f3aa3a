//! The datastore side of an attachment: the WorkloadEndpoint (docs/CALICO.md §6 and §7) and
//! the Profile it refers to, through the datastore's typed client (Calico's client semantics:
//! validation, defaults, `uid` and `creationTimestamp` on create, compare-and-swap on the
//! resource version), so `calicoctl`-style tools and the agent see what Calico's CNI plugin
//! would have written.

use std::collections::BTreeMap;
use std::net::IpAddr;

use brindle_datastore::{Client, ResourceError};
use brindle_model::resources::workloadendpoint::WorkloadEndpointSpec;
use brindle_model::resources::{EntityRule, ProfileSpec, Rule};
use brindle_model::resources::{Profile, WorkloadEndpoint};
use brindle_model::{Kind, ObjectMeta, Resource};

use crate::error::CniError;
use crate::identity::{Identity, Orchestrator};
use crate::store::ds_error;
use crate::wiring::host_net;

/// What an ADD wrote, so a rollback can undo exactly that.
#[derive(Debug, Clone)]
pub enum Written {
    /// A new endpoint: delete it.
    Created(WorkloadEndpoint),
    /// An endpoint of an earlier sandbox was overwritten: put the old one back.
    Replaced(WorkloadEndpoint),
}

/// A resource-client failure as a CNI error naming what was being done.
pub fn resource_error(what: &str, e: ResourceError) -> CniError {
    match e {
        ResourceError::Store(d) => ds_error(d).context(what),
        other => CniError::internal(format!("{what}: {other}")),
    }
}

/// The key of the identity's endpoint (for messages).
pub fn key_of(id: &Identity) -> String {
    brindle_model::keys::resource_key(Kind::WorkloadEndpoint, &id.namespace, &id.endpoint_name())
}

/// The profiles an endpoint carries: `kns.<namespace>` for pods (Calico's namespace profile),
/// the network name for CNI workloads.
pub fn profiles(id: &Identity, network: &str) -> Vec<String> {
    match id.orchestrator {
        Orchestrator::K8s => vec![format!("kns.{}", id.namespace)],
        Orchestrator::Cni => vec![network.to_string()],
    }
}

/// The endpoint for a wired attachment: `template` (what the stored Pod says, see
/// [`crate::pod`]) completed with what the ADD made, or without a Pod the endpoint Calico's
/// plugin writes for a bare pod or CNI workload.
pub fn build(
    id: &Identity,
    network: &str,
    template: Option<&WorkloadEndpoint>,
    host_veth: &str,
    pod_mac: &str,
    ips: &[IpAddr],
) -> WorkloadEndpoint {
    let ip_networks = ips.iter().map(|a| host_net(*a).to_string()).collect();
    if let Some(t) = template {
        let mut wep = t.clone();
        // The template is named for `eth0`; the runtime's interface name decides.
        wep.metadata.name = id.endpoint_name();
        let s = &mut wep.spec;
        s.endpoint = id.endpoint.clone();
        s.container_id = id.container_id.clone();
        s.ip_networks = ip_networks;
        s.interface_name = host_veth.into();
        s.mac = pod_mac.into();
        return wep;
    }
    let mut meta = ObjectMeta::namespaced(&id.namespace, id.endpoint_name());
    meta.labels = BTreeMap::from([
        ("projectcalico.org/namespace".to_string(), id.namespace.clone()),
        (
            "projectcalico.org/orchestrator".to_string(),
            id.orchestrator.as_str().to_string(),
        ),
    ]);
    let spec = WorkloadEndpointSpec {
        orchestrator: id.orchestrator.as_str().into(),
        workload: match id.orchestrator {
            Orchestrator::K8s => String::new(),
            Orchestrator::Cni => id.container_id.clone(),
        },
        node: id.node.clone(),
        container_id: id.container_id.clone(),
        pod: id.pod.clone().unwrap_or_default(),
        endpoint: id.endpoint.clone(),
        ip_networks,
        profiles: profiles(id, network),
        interface_name: host_veth.into(),
        mac: pod_mac.into(),
        ..Default::default()
    };
    WorkloadEndpoint::new(meta, spec)
}

fn as_wep(r: Resource) -> Option<WorkloadEndpoint> {
    match r {
        Resource::WorkloadEndpoint(w) => Some(w),
        _ => None,
    }
}

/// Creates the endpoint, or overwrites the one an earlier sandbox of the same pod left
/// (compare-and-swap on its resource version, retried on a race).
pub fn write(client: &Client, wep: &WorkloadEndpoint) -> Result<Written, CniError> {
    let what = format!(
        "write WorkloadEndpoint {}/{}",
        wep.metadata.namespace, wep.metadata.name
    );
    let new = Resource::WorkloadEndpoint(wep.clone());
    for _ in 0..brindle_ipam::DATASTORE_RETRIES {
        match client.create(&new) {
            Ok(r) => return Ok(Written::Created(as_wep(r).expect("created a WorkloadEndpoint"))),
            Err(ResourceError::AlreadyExists(_)) => {}
            Err(e) => return Err(resource_error(&what, e)),
        }
        let m = &wep.metadata;
        let Some(current) = client
            .get(Kind::WorkloadEndpoint, &m.namespace, &m.name)
            .map_err(|e| resource_error(&what, e))?
            .and_then(as_wep)
        else {
            continue;
        };
        let mut replacement = wep.clone();
        replacement.metadata.resource_version = current.metadata.resource_version.clone();
        match client.update(&Resource::WorkloadEndpoint(replacement)) {
            Ok(_) => return Ok(Written::Replaced(current)),
            Err(e)
                if e.is_conflict()
                    || matches!(e, ResourceError::NotFound(_) | ResourceError::OutOfDate { .. }) => {}
            Err(e) => return Err(resource_error(&what, e)),
        }
    }
    Err(CniError::internal(format!(
        "{what}: {}",
        brindle_ipam::error::MAX_RETRIES_TEXT
    )))
}

/// Rollback of [`write`]. Best effort (the caller is already failing).
pub fn undo(client: &Client, w: &Written) {
    let r = match w {
        Written::Created(wep) => client
            .delete(
                Kind::WorkloadEndpoint,
                &wep.metadata.namespace,
                &wep.metadata.name,
                "",
            )
            .map(|_| ()),
        Written::Replaced(previous) => {
            let mut back = previous.clone();
            back.metadata.resource_version.clear();
            client.update(&Resource::WorkloadEndpoint(back)).map(|_| ())
        }
    };
    if let Err(e) = r
        && !matches!(e, ResourceError::NotFound(_))
    {
        crate::log::warn(&format!("rollback: WorkloadEndpoint: {e}"));
    }
}

/// Reads the identity's endpoint.
pub fn get(client: &Client, id: &Identity) -> Result<Option<WorkloadEndpoint>, CniError> {
    client
        .get(Kind::WorkloadEndpoint, &id.namespace, &id.endpoint_name())
        .map(|r| r.and_then(as_wep))
        .map_err(|e| resource_error(&format!("read WorkloadEndpoint {}", key_of(id)), e))
}

/// DEL: deletes the endpoint only if it belongs to this container (a stale sandbox's DEL must
/// not remove the live pod's endpoint). `Ok(false)` when there was nothing of ours to delete.
pub fn delete_if_owned(client: &Client, id: &Identity) -> Result<bool, CniError> {
    let what = format!("delete WorkloadEndpoint {}", key_of(id));
    for _ in 0..brindle_ipam::DATASTORE_RETRIES {
        let Some(wep) = get(client, id)? else {
            return Ok(false);
        };
        if wep.spec.container_id != id.container_id {
            return Ok(false);
        }
        let m = &wep.metadata;
        match client.delete(Kind::WorkloadEndpoint, &m.namespace, &m.name, &m.resource_version) {
            Ok(_) => return Ok(true),
            Err(ResourceError::NotFound(_)) => return Ok(false),
            Err(e) if e.is_conflict() || matches!(e, ResourceError::OutOfDate { .. }) => continue,
            Err(e) => return Err(resource_error(&what, e)),
        }
    }
    Err(CniError::internal(format!(
        "{what}: {}",
        brindle_ipam::error::MAX_RETRIES_TEXT
    )))
}

/// The profile an endpoint of `id` refers to, created when missing: for CNI workloads the
/// network's profile (egress allowed, ingress from `has(<network>)`, label `<network>` applied,
/// as Calico's plugin creates it); for pods `kns.<namespace>` (allow all, as Calico's
/// kube-controllers derives it from a namespace without labels). Profiles are network-wide
/// configuration, shared by every endpoint: a rolled-back ADD leaves them.
pub fn ensure_profile(client: &Client, id: &Identity, network: &str) -> Result<(), CniError> {
    let profile = match id.orchestrator {
        Orchestrator::Cni => Profile::new(
            ObjectMeta::named(network),
            ProfileSpec {
                ingress: vec![Rule {
                    source: EntityRule {
                        selector: format!("has({network})"),
                        ..Default::default()
                    },
                    ..Default::default()
                }],
                egress: vec![Rule::default()],
                labels_to_apply: BTreeMap::from([(network.to_string(), String::new())]),
            },
        ),
        Orchestrator::K8s => brindle_model::k8s::namespace_to_profile(&brindle_model::k8s::Namespace {
            metadata: ObjectMeta::named(&id.namespace),
            ..Default::default()
        }),
    };
    crate::pod::create_if_missing(client, profile)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cni_args::CniArgs;

    #[test]
    fn endpoint_json_is_calicos() {
        let id = Identity::new(
            &CniArgs::parse("K8S_POD_NAMESPACE=default;K8S_POD_NAME=web-1").unwrap(),
            "cc4687b3",
            "eth0",
            "node1",
        );
        let wep = build(
            &id,
            "k8s-pod-network",
            None,
            "cali36dac03ac5d",
            "6e:1f:00:00:00:01",
            &["10.233.94.1".parse().unwrap()],
        );
        assert_eq!(
            key_of(&id),
            "/calico/resources/v3/projectcalico.org/workloadendpoints/default/node1-k8s-web--1-eth0"
        );
        let v: serde_json::Value = serde_json::to_value(&wep).unwrap();
        assert_eq!(v["kind"], "WorkloadEndpoint");
        assert_eq!(v["apiVersion"], "projectcalico.org/v3");
        assert_eq!(v["metadata"]["name"], "node1-k8s-web--1-eth0");
        assert_eq!(v["metadata"]["labels"]["projectcalico.org/orchestrator"], "k8s");
        let spec = &v["spec"];
        assert_eq!(spec["orchestrator"], "k8s");
        assert_eq!(spec["pod"], "web-1");
        assert_eq!(spec["containerID"], "cc4687b3");
        assert_eq!(spec["ipNetworks"], serde_json::json!(["10.233.94.1/32"]));
        assert_eq!(spec["interfaceName"], "cali36dac03ac5d");
        assert_eq!(spec["profiles"], serde_json::json!(["kns.default"]));
        assert!(spec.get("workload").is_none());
    }
}
