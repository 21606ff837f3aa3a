//! Settings, the full state and the delta between flushes.

use std::collections::BTreeMap;
use std::sync::Arc;

use serde::Serialize;

use super::{Endpoint, EndpointKey, IpSet, Member, PolicyId, PolicyRules, ProfileRules, SetKey};

/// `DefaultEndpointToHostAction`: what happens to a workload's traffic to its own host after its
/// egress policy allowed it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize)]
pub enum EndpointToHostAction {
    /// Felix's default.
    #[default]
    Drop,
    /// Leave it to the host's own INPUT rules.
    Return,
    Accept,
}

/// Felix settings that shape the programmed policy.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Settings {
    pub default_endpoint_to_host_action: EndpointToHostAction,
    /// `AllowVXLANPacketsFromWorkloads` (default false: a workload's VXLAN packets are dropped).
    pub allow_vxlan_packets_from_workloads: bool,
    /// `AllowIPIPPacketsFromWorkloads` (default false).
    pub allow_ipip_packets_from_workloads: bool,
    /// The VXLAN UDP port (`VXLANPort`, 4789).
    pub vxlan_port: u16,
    /// `LogPrefix` (default `calico-packet`); `%t %k %n %p` are filled in per rule.
    pub log_prefix: String,
}

impl Default for Settings {
    fn default() -> Settings {
        Settings {
            default_endpoint_to_host_action: EndpointToHostAction::Drop,
            allow_vxlan_packets_from_workloads: false,
            allow_ipip_packets_from_workloads: false,
            vxlan_port: 4789,
            log_prefix: "calico-packet".to_string(),
        }
    }
}

/// Everything the dataplane should hold: for a full resync and for the reconciler.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct State {
    pub settings: Settings,
    pub sets: BTreeMap<SetKey, IpSet>,
    pub policies: BTreeMap<PolicyId, Arc<PolicyRules>>,
    pub profiles: BTreeMap<String, Arc<ProfileRules>>,
    pub endpoints: BTreeMap<EndpointKey, Arc<Endpoint>>,
}

/// Member changes of a set that exists before and after.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SetMembersDelta {
    pub key: SetKey,
    pub added: Vec<Member>,
    pub removed: Vec<Member>,
}

/// What changed since the previous flush. Applied in one transaction, in this order, every
/// reference stays valid: add `sets_added`, apply `set_members`, write `policies_updated` and
/// `profiles_updated` (whole chains), write `endpoints_updated`; then delete
/// `endpoints_removed`, `policies_removed`, `profiles_removed`, `sets_removed`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Delta {
    /// New settings, when they changed.
    pub settings: Option<Settings>,
    /// Sets that did not exist, with all their members.
    pub sets_added: Vec<IpSet>,
    pub set_members: Vec<SetMembersDelta>,
    pub sets_removed: Vec<SetKey>,
    /// Policies that are new or whose rules changed.
    pub policies_updated: Vec<Arc<PolicyRules>>,
    pub policies_removed: Vec<PolicyId>,
    pub profiles_updated: Vec<Arc<ProfileRules>>,
    pub profiles_removed: Vec<String>,
    /// Endpoints that are new or changed (interface, addresses, tiers, policies, profiles).
    pub endpoints_updated: Vec<Arc<Endpoint>>,
    pub endpoints_removed: Vec<EndpointKey>,
}

impl Delta {
    pub fn is_empty(&self) -> bool {
        *self == Delta::default()
    }
}

impl State {
    /// Applies a delta, as a dataplane would: a mirror of the calculation's state.
    pub fn apply(&mut self, delta: &Delta) {
        if let Some(s) = &delta.settings {
            self.settings = s.clone();
        }
        for set in &delta.sets_added {
            self.sets.insert(set.key.clone(), set.clone());
        }
        for change in &delta.set_members {
            if let Some(set) = self.sets.get_mut(&change.key) {
                for m in &change.removed {
                    set.members.remove(m);
                }
                set.members.extend(change.added.iter().cloned());
            }
        }
        for p in &delta.policies_updated {
            self.policies.insert(p.id.clone(), p.clone());
        }
        for p in &delta.profiles_updated {
            self.profiles.insert(p.name.clone(), p.clone());
        }
        for e in &delta.endpoints_updated {
            self.endpoints.insert(e.key.clone(), e.clone());
        }
        for k in &delta.endpoints_removed {
            self.endpoints.remove(k);
        }
        for id in &delta.policies_removed {
            self.policies.remove(id);
        }
        for name in &delta.profiles_removed {
            self.profiles.remove(name);
        }
        for k in &delta.sets_removed {
            self.sets.remove(k);
        }
    }

    /// The local endpoint on this interface.
    pub fn endpoint_by_interface(&self, interface: &str) -> Option<&Arc<Endpoint>> {
        self.endpoints.values().find(|e| e.interface == interface)
    }
}
