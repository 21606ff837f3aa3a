//! The datastore side of an attachment: the WorkloadEndpoint (calico.md §2.7, §4.3 step 6) and
//! the Profile it refers to. Written with Calico's key layout and JSON, so `calicoctl`-style
//! tools and the agent see what Calico's CNI plugin would have written.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::time::{SystemTime, UNIX_EPOCH};

use brindle_datastore::Datastore;
use brindle_model::keys::resource_key;
use brindle_model::resources::profile::{EntityRule, ProfileSpec, Rule};
use brindle_model::resources::workloadendpoint::WorkloadEndpointSpec;
use brindle_model::resources::{Profile, WorkloadEndpoint};
use brindle_model::{Kind, ObjectMeta};

use crate::error::CniError;
use crate::identity::{Identity, Orchestrator};
use crate::store::ds_error;
use crate::wiring::host_net;

/// What an ADD wrote, so a rollback can undo exactly that.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Written {
    /// A new endpoint: delete it.
    Created { key: String },
    /// An endpoint of an earlier sandbox was overwritten: put the old value back.
    Replaced { key: String, previous: Vec<u8> },
}

/// The key of the identity's endpoint.
pub fn key_of(id: &Identity) -> String {
    resource_key(Kind::WorkloadEndpoint, &id.namespace, &id.endpoint_name())
}

/// The profiles an endpoint carries: `kns.<namespace>` for pods (Calico's namespace profile),
/// the network name for CNI workloads.
pub fn profiles(id: &Identity, network: &str) -> Vec<String> {
    match id.orchestrator {
        Orchestrator::K8s => vec![format!("kns.{}", id.namespace)],
        Orchestrator::Cni => vec![network.to_string()],
    }
}

/// The endpoint for a wired attachment.
pub fn build(
    id: &Identity,
    network: &str,
    host_veth: &str,
    pod_mac: &str,
    ips: &[IpAddr],
) -> WorkloadEndpoint {
    let mut meta = ObjectMeta::namespaced(&id.namespace, id.endpoint_name());
    meta.uid = uuid_v4();
    meta.creation_timestamp = Some(brindle_model::meta::rfc3339_utc(unix_now()));
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
        ip_networks: ips.iter().map(|a| host_net(*a).to_string()).collect(),
        profiles: profiles(id, network),
        interface_name: host_veth.into(),
        mac: pod_mac.into(),
        ..Default::default()
    };
    WorkloadEndpoint::new(meta, spec)
}

fn encode<T: serde::Serialize>(v: &T) -> Vec<u8> {
    serde_json::to_vec(v).expect("resources serialise")
}

/// Creates the endpoint, or overwrites the one an earlier sandbox of the same pod left
/// (compare-and-swap on its revision, retried on a race).
pub fn write(ds: &dyn Datastore, wep: &WorkloadEndpoint) -> Result<Written, CniError> {
    let key = resource_key(
        Kind::WorkloadEndpoint,
        &wep.metadata.namespace,
        &wep.metadata.name,
    );
    let value = encode(wep);
    for _ in 0..brindle_ipam::DATASTORE_RETRIES {
        match ds.create(&key, &value) {
            Ok(_) => return Ok(Written::Created { key }),
            Err(e) if e.is_conflict() => {}
            Err(e) => return Err(ds_error(e).context(format!("write WorkloadEndpoint {key}"))),
        }
        let Some(cur) = ds.get(&key).map_err(ds_error)? else {
            continue;
        };
        match ds.update(&key, &value, cur.revision) {
            Ok(_) => {
                return Ok(Written::Replaced {
                    key,
                    previous: cur.value,
                });
            }
            Err(e) if e.is_conflict() || e.is_not_found() => {}
            Err(e) => return Err(ds_error(e).context(format!("write WorkloadEndpoint {key}"))),
        }
    }
    Err(CniError::internal(format!(
        "write WorkloadEndpoint {key}: {}",
        brindle_ipam::error::MAX_RETRIES_TEXT
    )))
}

/// Rollback of [`write`]. Best effort (the caller is already failing).
pub fn undo(ds: &dyn Datastore, w: &Written) {
    let r = match w {
        Written::Created { key } => ds.delete(key, None).map(|_| ()),
        Written::Replaced { key, previous } => match ds.get(key) {
            Ok(Some(cur)) => ds.update(key, previous, cur.revision).map(|_| ()),
            Ok(None) => ds.create(key, previous).map(|_| ()),
            Err(e) => Err(e),
        },
    };
    if let Err(e) = r
        && !e.is_not_found()
    {
        crate::log::warn(&format!("rollback: WorkloadEndpoint: {e}"));
    }
}

/// Reads the identity's endpoint.
pub fn get(ds: &dyn Datastore, id: &Identity) -> Result<Option<(WorkloadEndpoint, i64)>, CniError> {
    let key = key_of(id);
    let Some(kv) = ds.get(&key).map_err(ds_error)? else {
        return Ok(None);
    };
    let wep: WorkloadEndpoint = serde_json::from_slice(&kv.value)
        .map_err(|e| CniError::internal(format!("WorkloadEndpoint {key} is not readable: {e}")))?;
    Ok(Some((wep, kv.revision)))
}

/// DEL: deletes the endpoint only if it belongs to this container (a stale sandbox's DEL must
/// not remove the live pod's endpoint). `Ok(false)` when there was nothing of ours to delete.
pub fn delete_if_owned(ds: &dyn Datastore, id: &Identity) -> Result<bool, CniError> {
    let key = key_of(id);
    for _ in 0..brindle_ipam::DATASTORE_RETRIES {
        let Some((wep, rev)) = get(ds, id)? else {
            return Ok(false);
        };
        if wep.spec.container_id != id.container_id {
            return Ok(false);
        }
        match ds.delete(&key, Some(rev)) {
            Ok(_) => return Ok(true),
            Err(e) if e.is_not_found() => return Ok(false),
            Err(e) if e.is_conflict() => continue,
            Err(e) => return Err(ds_error(e).context(format!("delete WorkloadEndpoint {key}"))),
        }
    }
    Err(CniError::internal(format!(
        "delete WorkloadEndpoint {key}: {}",
        brindle_ipam::error::MAX_RETRIES_TEXT
    )))
}

/// The profile an endpoint of `id` refers to, created when missing: for CNI workloads the
/// network's profile (egress allowed, ingress from `has(<network>)`, label `<network>` applied,
/// as Calico's plugin creates it); for pods `kns.<namespace>` (allow all, as Calico's
/// kube-controllers creates it, which Brindle has no equivalent of). Returns whether it was
/// created (for rollback).
pub fn ensure_profile(ds: &dyn Datastore, id: &Identity, network: &str) -> Result<Option<String>, CniError> {
    let (name, spec) = match id.orchestrator {
        Orchestrator::Cni => (
            network.to_string(),
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
        Orchestrator::K8s => (
            format!("kns.{}", id.namespace),
            ProfileSpec {
                ingress: vec![Rule::default()],
                egress: vec![Rule::default()],
                labels_to_apply: BTreeMap::from([(
                    "pcns.projectcalico.org/name".to_string(),
                    id.namespace.clone(),
                )]),
            },
        ),
    };
    let key = resource_key(Kind::Profile, "", &name);
    if ds.get(&key).map_err(ds_error)?.is_some() {
        return Ok(None);
    }
    let mut meta = ObjectMeta::named(&name);
    meta.uid = uuid_v4();
    meta.creation_timestamp = Some(brindle_model::meta::rfc3339_utc(unix_now()));
    match ds.create(&key, &encode(&Profile::new(meta, spec))) {
        Ok(_) => Ok(Some(key)),
        Err(e) if e.is_conflict() => Ok(None),
        Err(e) => Err(ds_error(e).context(format!("create Profile {name}"))),
    }
}

fn unix_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

/// A random (version 4) UUID, as Calico's client sets `metadata.uid` on create.
fn uuid_v4() -> String {
    let mut b = [0u8; 16];
    // SAFETY: getrandom(2) writes at most b.len() bytes into the live buffer.
    let n = unsafe { libc::getrandom(b.as_mut_ptr().cast(), b.len(), 0) };
    if n != b.len() as isize {
        // Never expected on Linux ≥ 3.17; a time-derived value keeps the uid unique enough.
        let t = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default()
            .as_nanos();
        b = (t ^ u128::from(std::process::id())).to_le_bytes();
    }
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    let h: String = b.iter().map(|x| format!("{x:02x}")).collect();
    format!(
        "{}-{}-{}-{}-{}",
        &h[0..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..32]
    )
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

    #[test]
    fn uuids_look_like_uuids() {
        let a = uuid_v4();
        assert_eq!(a.len(), 36);
        assert_eq!(&a[14..15], "4");
        assert_ne!(a, uuid_v4());
    }
}
