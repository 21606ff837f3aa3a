//! Endpoints and network sets: their labels with what they inherit from their profiles
//! (`felix/labelindex/label_inheritance_index.go`: the item's own label wins, then the first
//! profile in its list that has the label), their place in the two label indexes (all items
//! for IP sets, local endpoints for policy selectors) and their contributions to sets.

use brindle_model::resources::WorkloadEndpoint;

use crate::calc::PolicyCalculator;
use crate::calc::inputs::{self, ItemData, ItemKey, Labels, NetworkSetInput};
use crate::error::PolicyError;
use crate::ir::EndpointKey;

impl PolicyCalculator {
    /// An item's labels with its profiles' `labelsToApply` under them.
    pub(crate) fn effective_labels(&self, item: &ItemData) -> Labels {
        let mut labels = item.labels.clone();
        for name in &item.profiles {
            if let Some(p) = self.profiles.get(name) {
                for (k, v) in &p.labels_to_apply {
                    labels.entry(k.clone()).or_insert_with(|| v.clone());
                }
            }
        }
        labels
    }

    /// Adds or replaces a WorkloadEndpoint (of any node: rule peers match endpoints
    /// cluster-wide; endpoints of this node also get policy).
    pub fn upsert_workload_endpoint(&mut self, wep: &WorkloadEndpoint) -> Result<(), PolicyError> {
        let (key, data) = inputs::workload_endpoint(wep, &self.local_node)?;
        self.upsert_item(ItemKey::Endpoint(key), data);
        Ok(())
    }

    /// Removes a WorkloadEndpoint.
    pub fn remove_workload_endpoint(&mut self, namespace: &str, name: &str) {
        self.remove_item(&ItemKey::Endpoint(EndpointKey::new(namespace, name)));
    }

    /// Adds or replaces a NetworkSet or GlobalNetworkSet (empty namespace).
    pub fn upsert_network_set(&mut self, set: &NetworkSetInput) -> Result<(), PolicyError> {
        let data = inputs::network_set(set)?;
        let key = ItemKey::NetworkSet {
            namespace: set.namespace.clone(),
            name: set.name.clone(),
        };
        self.upsert_item(key, data);
        Ok(())
    }

    /// Removes a NetworkSet or GlobalNetworkSet (empty namespace).
    pub fn remove_network_set(&mut self, namespace: &str, name: &str) {
        self.remove_item(&ItemKey::NetworkSet {
            namespace: namespace.to_string(),
            name: name.to_string(),
        });
    }

    fn upsert_item(&mut self, key: ItemKey, data: ItemData) {
        if self.items.by_key(&key) == Some(&data) {
            return;
        }
        // Take the old contributions out, swap the data in, put the new ones back: members
        // both have cancel out in the pending delta.
        if let Some(idx) = self.items.id(&key) {
            let selectors: Vec<u32> = self.ip_index.item_matches(idx).collect();
            for s in selectors {
                self.apply_contribution(s, idx, false);
            }
        }
        let labels = self.effective_labels(&data);
        let new_profiles = data.profiles.clone();
        let now_local = data.local.is_some();
        let (idx, old) = self.items.insert(key.clone(), data);
        for p in &new_profiles {
            self.profile_children.entry(p.clone()).or_default().insert(idx);
        }
        if let Some(old) = &old {
            for p in &old.profiles {
                if !new_profiles.contains(p) {
                    self.unlink_child(p, idx);
                }
            }
        }
        self.ip_index.upsert_item(idx, labels.clone());
        let selectors: Vec<u32> = self.ip_index.item_matches(idx).collect();
        for s in selectors {
            self.apply_contribution(s, idx, true);
        }

        let was_local = old.as_ref().is_some_and(|o| o.local.is_some());
        if now_local || was_local {
            self.touch_endpoint(idx);
        }
        if now_local {
            self.local_items.insert(idx);
            let events = self.local_index.upsert_item(idx, labels);
            self.apply_policy_matches(events);
            for p in &new_profiles {
                self.profile_ref(p);
            }
        } else if was_local {
            self.local_items.remove(&idx);
            let events = self.local_index.remove_item(idx);
            self.apply_policy_matches(events);
        }
        if was_local && let Some(old) = &old {
            for p in &old.profiles {
                self.profile_unref(p);
            }
        }
    }

    fn unlink_child(&mut self, profile: &str, idx: u32) {
        if let Some(children) = self.profile_children.get_mut(profile) {
            children.remove(&idx);
            if children.is_empty() {
                self.profile_children.remove(profile);
            }
        }
    }

    fn remove_item(&mut self, key: &ItemKey) {
        let Some(idx) = self.items.id(key) else {
            return;
        };
        let selectors: Vec<u32> = self.ip_index.item_matches(idx).collect();
        for s in selectors {
            self.apply_contribution(s, idx, false);
        }
        self.ip_index.remove_item(idx);
        let data = self.items.get(idx).expect("present").clone();
        for p in &data.profiles {
            self.unlink_child(p, idx);
        }
        if data.local.is_some() {
            self.touch_removed_endpoint(idx);
            self.local_items.remove(&idx);
            let events = self.local_index.remove_item(idx);
            self.apply_policy_matches(events);
            for p in &data.profiles {
                self.profile_unref(p);
            }
        }
        self.items.remove(key);
    }

    /// A profile's `labelsToApply` changed: every item naming it is re-indexed.
    pub(crate) fn refresh_inherited_labels(&mut self, profile: &str) {
        let children: Vec<u32> = self
            .profile_children
            .get(profile)
            .map(|c| c.iter().copied().collect())
            .unwrap_or_default();
        for idx in children {
            let data = self.items.get(idx).expect("child item");
            let labels = self.effective_labels(data);
            let local = data.local.is_some();
            let events = self.ip_index.upsert_item(idx, labels.clone());
            for (sel, item, on) in events {
                self.apply_contribution(sel, item, on);
            }
            if local {
                let events = self.local_index.upsert_item(idx, labels);
                self.apply_policy_matches(events);
            }
        }
    }
}
