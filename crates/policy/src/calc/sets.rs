//! IP sets: which exist (referenced by an active policy's or profile's rules, per family) and
//! their members (the addresses, or named ports, of every endpoint and network set in the
//! cluster that the set's selector matches), as Felix's rule scanner and
//! `SelectorAndNamedPortIndex` keep them.

use std::collections::{BTreeSet, HashMap, HashSet};

use crate::calc::PolicyCalculator;
use crate::calc::inputs::ItemData;
use crate::ir::{IpFamily, IpSet, Member, SetId, SetKey, SetKind};
use crate::rules::SetDef;

fn family_index(f: IpFamily) -> usize {
    match f {
        IpFamily::V4 => 0,
        IpFamily::V6 => 1,
    }
}

pub(crate) struct SetEntry {
    pub def: SetDef,
    /// The handle of its selector in the IP-set label index.
    pub selector: u32,
    /// Rule references per family; the set exists in a family while this is non-zero.
    pub refs: [u32; 2],
    /// Members with the number of items contributing each (two endpoints may share an
    /// address, a pod's /32 may also be a network set's net).
    pub members: HashMap<Member, u32>,
}

impl SetEntry {
    pub fn active(&self, f: IpFamily) -> bool {
        self.refs[family_index(f)] > 0
    }

    pub fn to_ir(&self, f: IpFamily) -> IpSet {
        IpSet {
            key: SetKey {
                id: self.def.id.clone(),
                family: f,
            },
            kind: if self.def.named_port.is_some() {
                SetKind::NamedPort
            } else {
                SetKind::Net
            },
            comment: self.def.comment(),
            members: self.members.keys().filter(|m| m.family() == f).cloned().collect(),
        }
    }
}

/// Changes to one set since the last flush.
#[derive(Default)]
pub(crate) struct PendingSet {
    /// Whether the set existed at the last flush.
    pub existed: bool,
    pub added: HashSet<Member>,
    pub removed: HashSet<Member>,
}

impl PendingSet {
    fn add(&mut self, m: Member) {
        if !self.removed.remove(&m) {
            self.added.insert(m);
        }
    }

    fn remove(&mut self, m: Member) {
        if !self.added.remove(&m) {
            self.removed.insert(m);
        }
    }
}

/// What an item contributes to a set: its nets, or for a named-port set the address ·
/// protocol · port of each of its ports with that name (`CalculateEndpointContribution`).
pub(crate) fn contributions(item: &ItemData, def: &SetDef) -> Vec<Member> {
    match &def.named_port {
        None => item.nets.iter().map(|n| Member::Net(*n)).collect(),
        Some((proto, name)) => item
            .ports
            .iter()
            .filter(|p| *p.name == **name && proto.matches(p.protocol))
            .flat_map(|p| {
                item.nets.iter().map(|n| Member::AddrPort {
                    addr: n.addr(),
                    protocol: p.protocol,
                    port: p.port,
                })
            })
            .collect(),
    }
}

impl PolicyCalculator {
    pub(crate) fn set_active(&self, key: &SetKey) -> bool {
        self.sets.get(&key.id).is_some_and(|s| s.active(key.family))
    }

    fn touch_set(&mut self, key: &SetKey) -> &mut PendingSet {
        let existed = self.set_active(key);
        self.pending
            .sets
            .entry(key.clone())
            .or_insert_with(|| PendingSet {
                existed,
                ..PendingSet::default()
            })
    }

    /// Takes a rule reference on a set, creating it from `def` if needed.
    pub(crate) fn add_set_ref(&mut self, key: &SetKey, def: &SetDef) {
        self.touch_set(key);
        if !self.sets.contains_key(&key.id) {
            self.create_set(def);
        }
        let entry = self.sets.get_mut(&key.id).expect("just created");
        entry.refs[family_index(key.family)] += 1;
        if entry.refs[family_index(key.family)] == 1 {
            let members: Vec<Member> = entry
                .members
                .keys()
                .filter(|m| m.family() == key.family)
                .cloned()
                .collect();
            let pending = self.pending.sets.get_mut(key).expect("touched");
            for m in members {
                pending.add(m);
            }
        }
    }

    /// Drops a rule reference; the set goes when no family has any.
    pub(crate) fn release_set_ref(&mut self, key: &SetKey) {
        self.touch_set(key);
        let Some(entry) = self.sets.get_mut(&key.id) else {
            return;
        };
        let slot = &mut entry.refs[family_index(key.family)];
        *slot = slot.saturating_sub(1);
        if *slot == 0 {
            let members: Vec<Member> = entry
                .members
                .keys()
                .filter(|m| m.family() == key.family)
                .cloned()
                .collect();
            let pending = self.pending.sets.get_mut(key).expect("touched");
            for m in members {
                pending.remove(m);
            }
        }
        if entry.refs == [0, 0] {
            let entry = self.sets.remove(&key.id).expect("present");
            let users = self
                .selector_users
                .get_mut(&entry.selector)
                .expect("selector has users");
            users.retain(|id| *id != key.id);
            if users.is_empty() {
                self.selector_users.remove(&entry.selector);
                self.ip_index.remove_selector(entry.selector);
                self.selector_ids.remove(entry.def.selector_id());
            }
        }
    }

    fn create_set(&mut self, def: &SetDef) {
        let (sel, existing) = match self.selector_ids.id(def.selector_id()) {
            Some(sel) => (sel, true),
            None => (self.selector_ids.insert(def.selector_id().clone(), ()).0, false),
        };
        self.sets.insert(
            def.id.clone(),
            SetEntry {
                def: def.clone(),
                selector: sel,
                refs: [0, 0],
                members: HashMap::new(),
            },
        );
        self.selector_users.entry(sel).or_default().push(def.id.clone());
        let matched: Vec<u32> = if existing {
            self.ip_index.selector_matches(sel).collect()
        } else {
            self.ip_index
                .upsert_selector(sel, def.selector.selector.clone())
                .into_iter()
                .filter(|(_, _, on)| *on)
                .map(|(_, item, _)| item)
                .collect()
        };
        for item in matched {
            let members = contributions(self.items.get(item).expect("indexed item"), def);
            for m in members {
                self.add_member(&def.id, m);
            }
        }
    }

    fn add_member(&mut self, id: &SetId, m: Member) {
        let entry = self.sets.get_mut(id).expect("set exists");
        let count = entry.members.entry(m.clone()).or_insert(0);
        *count += 1;
        if *count == 1 && entry.active(m.family()) {
            let key = SetKey {
                id: id.clone(),
                family: m.family(),
            };
            self.touch_set(&key).add(m);
        }
    }

    fn remove_member(&mut self, id: &SetId, m: Member) {
        let entry = self.sets.get_mut(id).expect("set exists");
        let Some(count) = entry.members.get_mut(&m) else {
            return;
        };
        *count -= 1;
        if *count == 0 {
            entry.members.remove(&m);
            if entry.active(m.family()) {
                let key = SetKey {
                    id: id.clone(),
                    family: m.family(),
                };
                self.touch_set(&key).remove(m);
            }
        }
    }

    /// Adds (or removes) an item's contribution to every set using `selector`.
    pub(crate) fn apply_contribution(&mut self, selector: u32, item: u32, add: bool) {
        let Some(users) = self.selector_users.get(&selector) else {
            return;
        };
        let data = self.items.get(item).expect("indexed item");
        let changes: Vec<(SetId, Vec<Member>)> = users
            .iter()
            .map(|id| (id.clone(), contributions(data, &self.sets[id].def)))
            .collect();
        for (id, members) in changes {
            for m in members {
                if add {
                    self.add_member(&id, m);
                } else {
                    self.remove_member(&id, m);
                }
            }
        }
    }

    /// The sets as they are now.
    pub(crate) fn sets_ir(&self) -> impl Iterator<Item = IpSet> + '_ {
        self.sets.values().flat_map(|e| {
            IpFamily::ALL
                .into_iter()
                .filter(|f| e.active(*f))
                .map(|f| e.to_ir(f))
        })
    }

    /// The set part of a delta.
    pub(crate) fn flush_sets(&mut self, delta: &mut crate::ir::Delta) {
        let pending = std::mem::take(&mut self.pending.sets);
        let mut keys: BTreeSet<SetKey> = pending.keys().cloned().collect();
        let mut pending = pending;
        while let Some(key) = keys.pop_first() {
            let p = pending.remove(&key).expect("key from map");
            let now = self.set_active(&key);
            match (p.existed, now) {
                (false, true) => delta.sets_added.push(self.sets[&key.id].to_ir(key.family)),
                (true, false) => delta.sets_removed.push(key),
                (true, true) if !p.added.is_empty() || !p.removed.is_empty() => {
                    let mut added: Vec<Member> = p.added.into_iter().collect();
                    let mut removed: Vec<Member> = p.removed.into_iter().collect();
                    added.sort();
                    removed.sort();
                    delta
                        .set_members
                        .push(crate::ir::SetMembersDelta { key, added, removed });
                }
                _ => {}
            }
        }
    }
}
