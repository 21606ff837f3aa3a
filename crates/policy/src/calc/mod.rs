//! The incremental calculation: one call per datastore change, [`PolicyCalculator::flush`] for
//! what changed since the last flush, [`PolicyCalculator::state`] for everything.
//!
//! Shape (Felix's calculation graph, `felix/calc/calc_graph.go`):
//! - every endpoint (all nodes) and network set is an item, labelled with its own labels plus
//!   its profiles' `labelsToApply` (`items`);
//! - the *local* label index matches policy selectors against this node's endpoints; a policy
//!   matching one is active (`owners`), as is every profile a local endpoint names;
//! - active policies' and profiles' rules are converted once (`rules`) and hold
//!   references on IP sets; the *IP-set* label index matches the sets' selectors against all
//!   items, whose addresses (or named ports) are the members (`sets`);
//! - each local endpoint's output lists its policies by tier and order, then its profiles
//!   (`endpoints`).
//!
//! Every change only touches what depends on it; the pending-change records turn into the
//! [`Delta`] at flush time, netted (a member added and removed again is not reported).

mod endpoints;
pub mod inputs;
mod items;
mod owners;
mod resources;
mod sets;
mod slab;

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;

use crate::idhash::{IdMap, IdSet};
use crate::index::LabelIndex;
use crate::ir::{
    Delta, Endpoint, EndpointKey, IpFamily, PolicyId, PolicyRules, ProfileRules, SetId, Settings, State,
};
use crate::rules::SelectorCache;
use inputs::{ItemData, ItemKey, TierInput};
use owners::{Converted, PolicyEntry, ProfileEntry};
use sets::{PendingSet, SetEntry};
use slab::Slab;

/// Changes since the last flush.
#[derive(Default)]
struct Pending {
    sets: HashMap<crate::ir::SetKey, PendingSet>,
    /// Policy outputs as they were at the last flush, for those touched since.
    policies: HashMap<PolicyId, Option<Arc<PolicyRules>>>,
    profiles: HashMap<String, Option<Arc<ProfileRules>>>,
    /// Keys of local endpoints removed since (their handles may be reused).
    endpoints: BTreeSet<EndpointKey>,
    /// Handles of endpoints whose output may have changed.
    endpoint_items: IdSet<u32>,
}

/// Calico's policy calculation for one node.
pub struct PolicyCalculator {
    local_node: String,
    /// Whether IPv6 rule lists and sets are calculated (IPv4 always is).
    ipv6: bool,
    settings: Settings,
    flushed_settings: Option<Settings>,

    /// Every endpoint and network set.
    items: Slab<ItemKey, ItemData>,
    local_items: BTreeSet<u32>,
    /// Profile name → items naming it (for label inheritance).
    profile_children: HashMap<String, IdSet<u32>>,

    profiles: HashMap<String, ProfileEntry>,
    /// Profile name → local endpoints naming it; named ones are active.
    profile_refs: HashMap<String, u32>,
    out_profiles: HashMap<String, Converted<ProfileRules>>,

    policies: Slab<PolicyId, PolicyEntry>,
    out_policies: HashMap<PolicyId, Arc<PolicyRules>>,
    tiers: HashMap<String, TierInput>,

    /// Policy selectors over local endpoints.
    local_index: LabelIndex<u32, u32>,
    /// IP-set selectors over all items.
    ip_index: LabelIndex<u32, u32>,
    sets: HashMap<SetId, SetEntry>,
    /// Selector set ids (`s:…`) under their handle in `ip_index`.
    selector_ids: Slab<SetId, ()>,
    /// Selector handle → the sets (plain and named-port) built on it.
    selector_users: IdMap<u32, Vec<SetId>>,
    selector_cache: SelectorCache,

    out_endpoints: HashMap<EndpointKey, Arc<Endpoint>>,
    pending: Pending,
}

impl PolicyCalculator {
    /// A calculation for node `local_node` (its `spec.node` name), both IP families.
    pub fn new(local_node: impl Into<String>, settings: Settings) -> PolicyCalculator {
        PolicyCalculator::with_ipv6(local_node, settings, true)
    }

    /// A calculation that outputs IPv6 rule lists and sets only with `ipv6` (Felix's
    /// `IPv6Support`): a node without IPv6 gets empty IPv6 lists and no IPv6 sets, and holds
    /// half the rules. Fixed for the calculator's life (a change needs a new one, as Felix
    /// restarts when its IPv6 support changes).
    pub fn with_ipv6(local_node: impl Into<String>, settings: Settings, ipv6: bool) -> PolicyCalculator {
        PolicyCalculator {
            local_node: local_node.into(),
            ipv6,
            settings,
            flushed_settings: None,
            items: Slab::default(),
            local_items: BTreeSet::new(),
            profile_children: HashMap::new(),
            profiles: HashMap::new(),
            profile_refs: HashMap::new(),
            out_profiles: HashMap::new(),
            policies: Slab::default(),
            out_policies: HashMap::new(),
            tiers: HashMap::new(),
            local_index: LabelIndex::default(),
            ip_index: LabelIndex::default(),
            sets: HashMap::new(),
            selector_ids: Slab::default(),
            selector_users: IdMap::default(),
            selector_cache: SelectorCache::default(),
            out_endpoints: HashMap::new(),
            pending: Pending::default(),
        }
    }

    pub fn local_node(&self) -> &str {
        &self.local_node
    }

    /// The families whose rule lists and sets are calculated.
    pub fn families(&self) -> &'static [IpFamily] {
        if self.ipv6 {
            &IpFamily::ALL
        } else {
            &[IpFamily::V4]
        }
    }

    pub fn settings(&self) -> &Settings {
        &self.settings
    }

    /// Replaces the settings.
    pub fn set_settings(&mut self, settings: Settings) {
        if settings == self.settings {
            return;
        }
        let relog = settings.log_prefix != self.settings.log_prefix;
        self.settings = settings;
        if relog {
            self.relog_all();
        }
    }

    /// What changed since the previous flush (everything, the first time).
    pub fn flush(&mut self) -> Delta {
        let mut delta = Delta::default();
        if self.flushed_settings.as_ref() != Some(&self.settings) {
            delta.settings = Some(self.settings.clone());
            self.flushed_settings = Some(self.settings.clone());
        }
        self.flush_sets(&mut delta);
        let mut policies: Vec<_> = std::mem::take(&mut self.pending.policies).into_iter().collect();
        policies.sort_by(|a, b| a.0.cmp(&b.0));
        for (id, old) in policies {
            match (old, self.out_policies.get(&id)) {
                (Some(old), Some(now)) if Arc::ptr_eq(&old, now) || old == *now => {}
                (_, Some(now)) => delta.policies_updated.push(now.clone()),
                (Some(_), None) => delta.policies_removed.push(id),
                (None, None) => {}
            }
        }
        let mut profiles: Vec<_> = std::mem::take(&mut self.pending.profiles).into_iter().collect();
        profiles.sort_by(|a, b| a.0.cmp(&b.0));
        for (name, old) in profiles {
            match (old, self.out_profiles.get(&name)) {
                (Some(old), Some(now)) if Arc::ptr_eq(&old, &now.rules) || old == now.rules => {}
                (_, Some(now)) => delta.profiles_updated.push(now.rules.clone()),
                (Some(_), None) => delta.profiles_removed.push(name),
                (None, None) => {}
            }
        }
        self.flush_endpoints(&mut delta);
        self.selector_cache.prune();
        delta
    }

    /// Everything the dataplane should hold now (for a full resync or the reconciler),
    /// including changes not flushed yet.
    pub fn state(&self) -> State {
        let pending = self.pending_endpoint_keys();
        let mut endpoints: std::collections::BTreeMap<EndpointKey, Arc<Endpoint>> = self
            .out_endpoints
            .iter()
            .filter(|(k, _)| !pending.contains(*k))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        for key in &pending {
            if let Some(e) = self.endpoint_output(key) {
                endpoints.insert(key.clone(), Arc::new(e));
            }
        }
        State {
            settings: self.settings.clone(),
            sets: self.sets_ir().map(|s| (s.key.clone(), s)).collect(),
            policies: self
                .out_policies
                .iter()
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect(),
            profiles: self
                .out_profiles
                .iter()
                .map(|(k, v)| (k.clone(), v.rules.clone()))
                .collect(),
            endpoints,
        }
    }

    /// Sizes, for metrics and benchmarks.
    pub fn stats(&self) -> Stats {
        Stats {
            items: self.items.len(),
            local_endpoints: self.local_items.len(),
            policies: self.policies.len(),
            active_policies: self.out_policies.len(),
            active_profiles: self.out_profiles.len(),
            sets: self.sets.len(),
            members: self.sets.values().map(|s| s.members.len()).sum(),
        }
    }
}

/// Sizes of the calculation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stats {
    /// Endpoints of every node plus network sets.
    pub items: usize,
    pub local_endpoints: usize,
    pub policies: usize,
    pub active_policies: usize,
    pub active_profiles: usize,
    /// Set ids in use (each may exist in both families).
    pub sets: usize,
    pub members: usize,
}
