//! The calculation driven by a datastore watch: one call per stored resource that changed.

use brindle_model::{Kind, Resource};

use crate::calc::PolicyCalculator;
use crate::calc::inputs::{NetworkSetInput, PolicyInput, TierInput};
use crate::error::PolicyError;
use crate::ir::PolicyId;

impl PolicyCalculator {
    /// A resource was created or updated. Kinds policy does not use are ignored (`Ok(false)`);
    /// an object the calculation cannot use is an error and changes nothing.
    pub fn upsert_resource(&mut self, resource: &Resource) -> Result<bool, PolicyError> {
        match resource {
            Resource::WorkloadEndpoint(w) => self.upsert_workload_endpoint(w)?,
            Resource::Profile(p) => self.upsert_profile(p)?,
            Resource::NetworkPolicy(np) => self.upsert_policy(PolicyInput::from_network_policy(np)?)?,
            Resource::GlobalNetworkPolicy(gnp) => match PolicyInput::from_global_network_policy(gnp)? {
                Some(input) => self.upsert_policy(input)?,
                // Host-endpoint-only now: it may have been a workload policy before.
                None => self.remove_policy(&PolicyId::global(gnp.metadata.name.clone())),
            },
            Resource::NetworkSet(s) => {
                self.upsert_network_set(&NetworkSetInput::from_network_set(s))?;
            }
            Resource::GlobalNetworkSet(s) => {
                self.upsert_network_set(&NetworkSetInput::from_global_network_set(s))?;
            }
            Resource::Tier(t) => self.upsert_tier(TierInput::from_tier(t)),
            _ => return Ok(false),
        }
        Ok(true)
    }

    /// A resource was deleted (`namespace` empty for cluster-wide kinds). Kinds policy does not
    /// use are ignored (`false`).
    pub fn remove_resource(&mut self, kind: Kind, namespace: &str, name: &str) -> bool {
        match kind {
            Kind::WorkloadEndpoint => self.remove_workload_endpoint(namespace, name),
            Kind::Profile => self.remove_profile(name),
            Kind::NetworkPolicy => self.remove_policy(&PolicyId::network(namespace, name)),
            Kind::GlobalNetworkPolicy => self.remove_policy(&PolicyId::global(name)),
            Kind::NetworkSet => self.remove_network_set(namespace, name),
            Kind::GlobalNetworkSet => self.remove_network_set("", name),
            Kind::Tier => self.remove_tier(name),
            _ => return false,
        }
        true
    }
}
