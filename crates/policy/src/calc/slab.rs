//! Small integer handles for the label index: items, policies and selectors are interned so
//! the index's sets hold `u32`s, not strings.

use std::collections::HashMap;
use std::hash::Hash;

/// Values under `u32` handles, found by key; freed handles are reused.
pub(crate) struct Slab<K, V> {
    ids: HashMap<K, u32>,
    slots: Vec<Option<(K, V)>>,
    free: Vec<u32>,
}

impl<K, V> Default for Slab<K, V> {
    fn default() -> Self {
        Slab {
            ids: HashMap::new(),
            slots: Vec::new(),
            free: Vec::new(),
        }
    }
}

impl<K: Clone + Eq + Hash, V> Slab<K, V> {
    pub fn id(&self, key: &K) -> Option<u32> {
        self.ids.get(key).copied()
    }

    /// Inserts or replaces; returns the handle and the value it replaced.
    pub fn insert(&mut self, key: K, value: V) -> (u32, Option<V>) {
        if let Some(&id) = self.ids.get(&key) {
            let slot = self.slots[id as usize].as_mut().expect("live handle");
            return (id, Some(std::mem::replace(&mut slot.1, value)));
        }
        let id = match self.free.pop() {
            Some(id) => id,
            None => {
                self.slots.push(None);
                u32::try_from(self.slots.len() - 1).expect("fewer than 2^32 objects")
            }
        };
        self.slots[id as usize] = Some((key.clone(), value));
        self.ids.insert(key, id);
        (id, None)
    }

    pub fn remove(&mut self, key: &K) -> Option<(u32, V)> {
        let id = self.ids.remove(key)?;
        let (_, v) = self.slots[id as usize].take().expect("live handle");
        self.free.push(id);
        Some((id, v))
    }

    pub fn get(&self, id: u32) -> Option<&V> {
        self.slots.get(id as usize)?.as_ref().map(|(_, v)| v)
    }

    pub fn get_mut(&mut self, id: u32) -> Option<&mut V> {
        self.slots.get_mut(id as usize)?.as_mut().map(|(_, v)| v)
    }

    pub fn key(&self, id: u32) -> Option<&K> {
        self.slots.get(id as usize)?.as_ref().map(|(k, _)| k)
    }

    pub fn by_key(&self, key: &K) -> Option<&V> {
        self.id(key).and_then(|id| self.get(id))
    }

    pub fn iter(&self) -> impl Iterator<Item = (u32, &K, &V)> {
        self.slots
            .iter()
            .enumerate()
            .filter_map(|(i, s)| s.as_ref().map(|(k, v)| (i as u32, k, v)))
    }

    pub fn len(&self) -> usize {
        self.ids.len()
    }
}
