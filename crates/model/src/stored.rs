//! What a resource looks like in the datastore, where it differs from the API form.
//!
//! Calico v3.32's etcd backend (`libcalico-go/lib/backend/etcdv3/etcdv3.go` `defaultPolicyName`,
//! `backend/model/keys.go` `determinePolicyName`) stores NetworkPolicies and
//! GlobalNetworkPolicies under their plain name (`…/networkpolicies/<ns>/<name>`, also in a
//! non-default tier) and records the name the client used in the annotation
//! `projectcalico.org/metadata: {"name":"<name>"}`; on read the annotation is removed and its
//! name is the policy's. A policy written by Calico 3.30–3.31 into the default tier as
//! `default.<name>` (no annotation) reads as `<name>`. Brindle writes and reads the same way,
//! so either can read the other's store. Every other kind is stored as it is.

use std::collections::BTreeMap;

use crate::resources::{DEFAULT_TIER, Resource};

/// The annotation carrying a policy's API name in the store.
pub const METADATA_ANNOTATION: &str = "projectcalico.org/metadata";

/// The stored form of `r` (the resource itself for every kind but the policy kinds).
pub fn to_stored(r: &Resource) -> Resource {
    let mut out = r.clone();
    match &mut out {
        Resource::NetworkPolicy(p) => record_name(&p.metadata.name, &mut p.metadata.annotations),
        Resource::GlobalNetworkPolicy(p) => record_name(&p.metadata.name, &mut p.metadata.annotations),
        _ => {}
    }
    out
}

/// Turns a stored resource back into its API form, in place.
pub fn from_stored(r: &mut Resource) {
    match r {
        Resource::NetworkPolicy(p) => {
            restore_name(&mut p.metadata.name, &mut p.metadata.annotations, &p.spec.tier)
        }
        Resource::GlobalNetworkPolicy(p) => {
            restore_name(&mut p.metadata.name, &mut p.metadata.annotations, &p.spec.tier)
        }
        _ => {}
    }
}

fn record_name(name: &str, annotations: &mut BTreeMap<String, String>) {
    let v = serde_json::json!({ "name": name }).to_string();
    annotations.insert(METADATA_ANNOTATION.to_string(), v);
}

fn restore_name(name: &mut String, annotations: &mut BTreeMap<String, String>, tier: &str) {
    if let Some(v) = annotations.remove(METADATA_ANNOTATION) {
        if let Some(n) = serde_json::from_str::<serde_json::Value>(&v)
            .ok()
            .and_then(|j| j.get("name")?.as_str().map(str::to_string))
        {
            *name = n;
            return;
        }
        // Not Calico's JSON: keep it, as a user annotation.
        annotations.insert(METADATA_ANNOTATION.to_string(), v);
        return;
    }
    if (tier.is_empty() || tier == DEFAULT_TIER)
        && let Some(plain) = name.strip_prefix("default.")
    {
        *name = plain.to_string();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::meta::ObjectMeta;
    use crate::resources::{GlobalNetworkPolicy, NetworkPolicy, NetworkSet};

    #[test]
    fn policies_carry_their_name_in_the_store() {
        let p = Resource::NetworkPolicy(NetworkPolicy::new(
            ObjectMeta::namespaced("ns", "allow-web"),
            Default::default(),
        ));
        let stored = to_stored(&p);
        assert_eq!(
            serde_json::to_value(&stored).unwrap()["metadata"]["annotations"],
            serde_json::json!({"projectcalico.org/metadata": "{\"name\":\"allow-web\"}"})
        );
        let mut back = stored;
        from_stored(&mut back);
        assert_eq!(back, p);
    }

    #[test]
    fn old_default_tier_names_read_plain() {
        let mut g = Resource::GlobalNetworkPolicy(GlobalNetworkPolicy::new(
            ObjectMeta::named("default.deny-all"),
            Default::default(),
        ));
        from_stored(&mut g);
        assert_eq!(g.name(), "deny-all");
        let mut other = GlobalNetworkPolicy::new(ObjectMeta::named("default.x"), Default::default());
        other.spec.tier = "security".into();
        let mut other = Resource::GlobalNetworkPolicy(other);
        from_stored(&mut other);
        assert_eq!(other.name(), "default.x");
        let set = Resource::NetworkSet(NetworkSet::new(
            ObjectMeta::namespaced("n", "s"),
            Default::default(),
        ));
        assert_eq!(to_stored(&set), set);
    }
}
