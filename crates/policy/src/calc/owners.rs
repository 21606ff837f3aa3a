//! Policies, profiles and tiers: conversion of their rules, and activation (Felix's
//! `ActiveRulesCalculator`): a policy is active while its selector matches a local endpoint, a
//! profile while a local endpoint names it; only active ones are output and hold references on
//! the IP sets their rules use.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use brindle_model::resources::{DEFAULT_ALLOW_PROFILE, Profile};
use brindle_model::selector::Selector;

use crate::calc::PolicyCalculator;
use crate::calc::inputs::{Labels, PolicyInput, TierInput};
use crate::error::PolicyError;
use crate::ir::{Action, FamilyRules, IpFamily, PolicyId, PolicyRules, ProfileRules, Rule, SetKey};
use crate::rules::{LogContext, SetDef, convert_rules, with_log_prefix};

/// Rules converted once, shared by the output and the set references.
pub(crate) struct Converted<R> {
    pub rules: Arc<R>,
    /// The sets the rules use, by id (sorted).
    pub defs: Arc<[SetDef]>,
    pub refs: Arc<[SetKey]>,
}

impl<R> Clone for Converted<R> {
    fn clone(&self) -> Self {
        Converted {
            rules: self.rules.clone(),
            defs: self.defs.clone(),
            refs: self.refs.clone(),
        }
    }
}

fn set_refs<'a>(lists: impl IntoIterator<Item = &'a FamilyRules>) -> Vec<SetKey> {
    let mut keys = BTreeSet::new();
    for rules in lists {
        for f in IpFamily::ALL {
            for r in rules.family(f) {
                for id in r.set_ids() {
                    keys.insert(SetKey {
                        id: id.clone(),
                        family: f,
                    });
                }
            }
        }
    }
    keys.into_iter().collect()
}

/// What ordering needs to know of a policy.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct PolicyMeta {
    pub id: PolicyId,
    /// With the default filled in.
    pub tier: String,
    pub order: Option<f64>,
    pub ingress: bool,
    pub egress: bool,
}

impl PolicyMeta {
    fn log_context<'a>(&'a self, prefix_format: &'a str) -> LogContext<'a> {
        LogContext {
            prefix_format,
            tier: &self.tier,
            kind: self.id.kind.short(),
            namespace: &self.id.namespace,
            name: &self.id.name,
        }
    }
}

pub(crate) struct PolicyEntry {
    pub meta: PolicyMeta,
    pub converted: Converted<PolicyRules>,
    /// Local endpoints the selector matches.
    pub matched: u32,
}

pub(crate) struct ProfileEntry {
    pub labels_to_apply: Labels,
    pub converted: Converted<ProfileRules>,
}

fn profile_log_context<'a>(name: &'a str, prefix_format: &'a str) -> LogContext<'a> {
    LogContext {
        prefix_format,
        tier: "",
        kind: "pro",
        namespace: "",
        name,
    }
}

/// Rules one action both ways in `families`: Felix's `DummyDropRules` for a missing profile
/// (Deny), and the built-in `projectcalico-default-allow` (Allow).
fn all_rules(name: &str, action: Action, families: &[IpFamily]) -> Converted<ProfileRules> {
    let list = |f| {
        if families.contains(&f) {
            vec![Rule::any(action.clone())]
        } else {
            Vec::new()
        }
    };
    let rules = FamilyRules {
        v4: list(IpFamily::V4),
        v6: list(IpFamily::V6),
    };
    Converted {
        rules: Arc::new(ProfileRules {
            name: name.to_string(),
            ingress: rules.clone(),
            egress: rules,
        }),
        defs: Arc::default(),
        refs: Arc::default(),
    }
}

impl PolicyCalculator {
    fn convert_policy(&mut self, input: &PolicyInput) -> Result<(PolicyEntry, Selector), PolicyError> {
        let object = input.object();
        let selector = Selector::parse(&input.selector)
            .map_err(|e| PolicyError::new(&object, format!("selector: {}", e.reason)))?;
        let meta = PolicyMeta {
            id: input.id.clone(),
            tier: input.tier_name().to_string(),
            order: input.order,
            ingress: input.ingress.is_some(),
            egress: input.egress.is_some(),
        };
        let log = meta.log_context(&self.settings.log_prefix);
        let families = self.families();
        let cache = &mut self.selector_cache;
        let mut defs = BTreeMap::new();
        let mut convert = |rules: &Option<Vec<_>>, dir: &str| match rules {
            Some(rs) => convert_rules(rs, families, dir, &input.id.namespace, &log, &mut defs, cache)
                .map_err(|e| PolicyError::new(&object, e.to_string())),
            None => Ok(FamilyRules::default()),
        };
        let ingress = convert(&input.ingress, "ingress")?;
        let egress = convert(&input.egress, "egress")?;
        let refs = set_refs([&ingress, &egress]);
        let converted = Converted {
            rules: Arc::new(PolicyRules {
                id: meta.id.clone(),
                tier: meta.tier.clone(),
                ingress,
                egress,
            }),
            defs: defs.into_values().collect(),
            refs: refs.into(),
        };
        Ok((
            PolicyEntry {
                meta,
                converted,
                matched: 0,
            },
            selector,
        ))
    }

    fn convert_profile(&mut self, profile: &Profile) -> Result<ProfileEntry, PolicyError> {
        let name = &profile.metadata.name;
        let object = format!("Profile {name}");
        if name.is_empty() {
            return Err(PolicyError::new(object, "metadata.name is empty"));
        }
        let log = profile_log_context(name, &self.settings.log_prefix);
        let families = self.families();
        let cache = &mut self.selector_cache;
        let mut defs = BTreeMap::new();
        let mut convert = |rules: &[_], dir: &str| {
            convert_rules(rules, families, dir, "", &log, &mut defs, cache)
                .map_err(|e| PolicyError::new(&object, e.to_string()))
        };
        let ingress = convert(&profile.spec.ingress, "ingress")?;
        let egress = convert(&profile.spec.egress, "egress")?;
        let refs = set_refs([&ingress, &egress]);
        Ok(ProfileEntry {
            labels_to_apply: profile.spec.labels_to_apply.clone(),
            converted: Converted {
                rules: Arc::new(ProfileRules {
                    name: name.clone(),
                    ingress,
                    egress,
                }),
                defs: defs.into_values().collect(),
                refs: refs.into(),
            },
        })
    }

    /// Takes the new references before dropping the old, so a set both use stays.
    fn swap_set_refs<R>(&mut self, new: Option<&Converted<R>>, old: Option<&Converted<R>>) {
        if let Some(c) = new {
            for key in c.refs.iter() {
                let def = c
                    .defs
                    .binary_search_by(|d| d.id.cmp(&key.id))
                    .map(|i| &c.defs[i])
                    .expect("every referenced set has a definition");
                self.add_set_ref(key, def);
            }
        }
        if let Some(c) = old {
            for key in c.refs.iter() {
                self.release_set_ref(key);
            }
        }
    }

    fn touch_policy(&mut self, id: &PolicyId) {
        if !self.pending.policies.contains_key(id) {
            let old = self.out_policies.get(id).cloned();
            self.pending.policies.insert(id.clone(), old);
        }
    }

    fn touch_profile(&mut self, name: &str) {
        if !self.pending.profiles.contains_key(name) {
            let old = self.out_profiles.get(name).map(|c| c.rules.clone());
            self.pending.profiles.insert(name.to_string(), old);
        }
    }

    /// Adds or replaces a policy.
    pub fn upsert_policy(&mut self, input: PolicyInput) -> Result<(), PolicyError> {
        let (entry, selector) = self.convert_policy(&input)?;
        let id = input.id.clone();
        let meta = entry.meta.clone();
        let (idx, old) = self.policies.insert(id.clone(), entry);
        let matched = old.as_ref().map_or(0, |o| o.matched);
        self.policies.get_mut(idx).expect("inserted").matched = matched;
        if matched > 0 {
            let new = self.policies.get(idx).expect("inserted").converted.clone();
            let old_conv = old.as_ref().map(|o| o.converted.clone());
            self.swap_set_refs(Some(&new), old_conv.as_ref());
            self.touch_policy(&id);
            self.out_policies.insert(id.clone(), new.rules.clone());
        }
        if old.as_ref().is_none_or(|o| o.meta != meta) {
            let endpoints: Vec<u32> = self.local_index.selector_matches(idx).collect();
            for item in endpoints {
                self.touch_endpoint(item);
            }
        }
        let events = self.local_index.upsert_selector(idx, selector);
        self.apply_policy_matches(events);
        Ok(())
    }

    /// Removes a policy.
    pub fn remove_policy(&mut self, id: &PolicyId) {
        let Some(idx) = self.policies.id(id) else {
            return;
        };
        let events = self.local_index.remove_selector(idx);
        self.apply_policy_matches(events);
        self.policies.remove(id);
    }

    /// Local-index events: policy `pol` started or stopped matching local endpoint `item`.
    pub(crate) fn apply_policy_matches(&mut self, events: Vec<(u32, u32, bool)>) {
        for (pol, item, on) in events {
            self.touch_endpoint(item);
            let entry = self.policies.get_mut(pol).expect("indexed policy");
            let was = entry.matched;
            entry.matched = if on { was + 1 } else { was - 1 };
            let now = entry.matched;
            let conv = entry.converted.clone();
            let id = entry.meta.id.clone();
            if was == 0 && now == 1 {
                self.swap_set_refs(Some(&conv), None);
                self.touch_policy(&id);
                self.out_policies.insert(id, conv.rules);
            } else if was == 1 && now == 0 {
                self.touch_policy(&id);
                self.out_policies.remove(&id);
                self.swap_set_refs(None, Some(&conv));
            }
        }
    }

    /// What an active profile outputs: its rules; the built-in default-allow profile (which
    /// Calico's etcd backend serves without storing it, so no watch delivers it) allows both
    /// ways; any other missing profile denies both ways.
    fn profile_output(&self, name: &str) -> Converted<ProfileRules> {
        match self.profiles.get(name) {
            Some(p) => p.converted.clone(),
            None if name == DEFAULT_ALLOW_PROFILE => all_rules(name, Action::Allow, self.families()),
            None => all_rules(name, Action::Deny, self.families()),
        }
    }

    /// A local endpoint started naming `name`.
    pub(crate) fn profile_ref(&mut self, name: &str) {
        let count = self.profile_refs.entry(name.to_string()).or_insert(0);
        *count += 1;
        if *count == 1 {
            let conv = self.profile_output(name);
            self.swap_set_refs(Some(&conv), None);
            self.touch_profile(name);
            self.out_profiles.insert(name.to_string(), conv);
        }
    }

    /// A local endpoint stopped naming `name`.
    pub(crate) fn profile_unref(&mut self, name: &str) {
        let Some(count) = self.profile_refs.get_mut(name) else {
            return;
        };
        *count -= 1;
        if *count == 0 {
            self.profile_refs.remove(name);
            self.touch_profile(name);
            if let Some(conv) = self.out_profiles.remove(name) {
                self.swap_set_refs(None, Some(&conv));
            }
        }
    }

    /// Replaces the output of an active profile after its resource changed.
    fn refresh_active_profile(&mut self, name: &str) {
        if !self.profile_refs.contains_key(name) {
            return;
        }
        let new = self.profile_output(name);
        self.touch_profile(name);
        let old = self.out_profiles.insert(name.to_string(), new.clone());
        self.swap_set_refs(Some(&new), old.as_ref());
    }

    /// Adds or replaces a profile.
    pub fn upsert_profile(&mut self, profile: &Profile) -> Result<(), PolicyError> {
        let entry = self.convert_profile(profile)?;
        let name = profile.metadata.name.clone();
        let labels_changed =
            self.profiles.get(&name).map(|p| &p.labels_to_apply) != Some(&entry.labels_to_apply);
        self.profiles.insert(name.clone(), entry);
        self.refresh_active_profile(&name);
        if labels_changed {
            self.refresh_inherited_labels(&name);
        }
        Ok(())
    }

    /// Removes a profile: endpoints naming it are closed, and lose its labels.
    pub fn remove_profile(&mut self, name: &str) {
        let Some(old) = self.profiles.remove(name) else {
            return;
        };
        self.refresh_active_profile(name);
        if !old.labels_to_apply.is_empty() {
            self.refresh_inherited_labels(name);
        }
    }

    /// Adds or replaces a tier.
    pub fn upsert_tier(&mut self, tier: TierInput) {
        if self.tiers.get(&tier.name) == Some(&tier) {
            return;
        }
        self.tiers.insert(tier.name.clone(), tier);
        self.touch_all_local_endpoints();
    }

    /// Removes a tier (a built-in one goes back to its built-in values).
    pub fn remove_tier(&mut self, name: &str) {
        if self.tiers.remove(name).is_some() {
            self.touch_all_local_endpoints();
        }
    }

    /// Gives every Log rule the prefix the settings now make. Only actions change, so set
    /// references stay as they are.
    pub(crate) fn relog_all(&mut self) {
        let format = self.settings.log_prefix.clone();
        let ids: Vec<u32> = self.policies.iter().map(|(i, _, _)| i).collect();
        for idx in ids {
            let entry = self.policies.get(idx).expect("listed");
            let prefix = entry.meta.log_context(&format).prefix();
            let old = &entry.converted.rules;
            let ingress = with_log_prefix(&old.ingress, &prefix);
            let egress = with_log_prefix(&old.egress, &prefix);
            if ingress.is_none() && egress.is_none() {
                continue;
            }
            let rules = Arc::new(PolicyRules {
                id: old.id.clone(),
                tier: old.tier.clone(),
                ingress: ingress.unwrap_or_else(|| old.ingress.clone()),
                egress: egress.unwrap_or_else(|| old.egress.clone()),
            });
            let (id, active) = (entry.meta.id.clone(), entry.matched > 0);
            self.policies.get_mut(idx).expect("listed").converted.rules = rules.clone();
            if active {
                self.touch_policy(&id);
                self.out_policies.insert(id, rules);
            }
        }
        let names: Vec<String> = self.profiles.keys().cloned().collect();
        for name in names {
            let prefix = profile_log_context(&name, &format).prefix();
            let entry = self.profiles.get_mut(&name).expect("listed");
            let old = &entry.converted.rules;
            let ingress = with_log_prefix(&old.ingress, &prefix);
            let egress = with_log_prefix(&old.egress, &prefix);
            if ingress.is_none() && egress.is_none() {
                continue;
            }
            entry.converted.rules = Arc::new(ProfileRules {
                name: name.clone(),
                ingress: ingress.unwrap_or_else(|| old.ingress.clone()),
                egress: egress.unwrap_or_else(|| old.egress.clone()),
            });
            self.refresh_active_profile(&name);
        }
    }
}
