//! The label index: which selectors match which labelled items, kept up to date as items and
//! selectors come and go, without evaluating every selector against every item (the idea of
//! Felix's `felix/labelindex/labelrestrictionindex`).
//!
//! Each selector is reduced to a necessary condition on one label ([`Restriction`]): `a == 'x'`
//! needs label `a` with value `x`, `has(a)` needs `a`, an `&&` needs what its most selective
//! operand needs, an `||` what all its branches need in common. Selectors are filed under that
//! label (and value); items are filed under each of their labels. A changed item is evaluated
//! only against the selectors filed under its labels (plus the few with no restriction, such
//! as `!has(a)` or `all()`); a new selector only against the items carrying its label.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::hash::Hash;

use brindle_model::selector::{Expr, Selector};

use crate::idhash::{IdMap, IdSet};

/// Labels as the index sees them (an item's own labels plus inherited ones).
pub(crate) type LabelMap = BTreeMap<String, String>;

/// A necessary condition for a selector to match.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Restriction {
    None,
    Key(String),
    Values(String, BTreeSet<String>),
}

impl Restriction {
    /// How selective: values beat a bare key, fewer values beat more.
    fn rank(&self) -> (u8, usize) {
        match self {
            Restriction::None => (0, 0),
            Restriction::Key(_) => (1, 0),
            Restriction::Values(_, vs) => (2, usize::MAX - vs.len()),
        }
    }

    fn key(&self) -> Option<&str> {
        match self {
            Restriction::None => None,
            Restriction::Key(k) | Restriction::Values(k, _) => Some(k),
        }
    }
}

fn restriction(e: &Expr) -> Restriction {
    match e {
        Expr::Eq(k, v) => Restriction::Values(k.clone(), BTreeSet::from([v.clone()])),
        Expr::In(k, vs) => Restriction::Values(k.clone(), vs.clone()),
        Expr::Has(k) | Expr::Contains(k, _) | Expr::StartsWith(k, _) | Expr::EndsWith(k, _) => {
            Restriction::Key(k.clone())
        }
        Expr::And(es) => es
            .iter()
            .map(restriction)
            .max_by_key(Restriction::rank)
            .unwrap_or(Restriction::None),
        Expr::Or(es) => {
            let rs: Vec<Restriction> = es.iter().map(restriction).collect();
            let Some(key) = rs.first().and_then(Restriction::key).map(str::to_string) else {
                return Restriction::None;
            };
            if rs.iter().any(|r| r.key() != Some(key.as_str())) {
                return Restriction::None;
            }
            let mut values = BTreeSet::new();
            for r in rs {
                match r {
                    Restriction::Values(_, vs) => values.extend(vs),
                    _ => return Restriction::Key(key),
                }
            }
            Restriction::Values(key, values)
        }
        _ => Restriction::None,
    }
}

struct ItemEntry<S> {
    labels: LabelMap,
    matches: IdSet<S>,
}

struct SelectorEntry<I> {
    selector: Selector,
    restriction: Restriction,
    matches: IdSet<I>,
}

/// A change of match: `(selector, item, now_matches)`.
pub(crate) type MatchEvent<S, I> = (S, I, bool);

/// Selectors `S` over labelled items `I`.
pub(crate) struct LabelIndex<I, S> {
    items: IdMap<I, ItemEntry<S>>,
    selectors: IdMap<S, SelectorEntry<I>>,
    /// label → value → items with that label value.
    item_postings: HashMap<String, HashMap<String, IdSet<I>>>,
    selectors_by_value: HashMap<String, HashMap<String, IdSet<S>>>,
    selectors_by_key: HashMap<String, IdSet<S>>,
    unrestricted: IdSet<S>,
}

impl<I: Copy + Eq + Hash, S: Copy + Eq + Hash> Default for LabelIndex<I, S> {
    fn default() -> Self {
        LabelIndex {
            items: IdMap::default(),
            selectors: IdMap::default(),
            item_postings: HashMap::new(),
            selectors_by_value: HashMap::new(),
            selectors_by_key: HashMap::new(),
            unrestricted: IdSet::default(),
        }
    }
}

impl<I: Copy + Eq + Hash, S: Copy + Eq + Hash> LabelIndex<I, S> {
    /// The selectors an item matches.
    pub fn item_matches(&self, item: I) -> impl Iterator<Item = S> + '_ {
        self.items
            .get(&item)
            .into_iter()
            .flat_map(|e| e.matches.iter().copied())
    }

    /// The items a selector matches.
    pub fn selector_matches(&self, selector: S) -> impl Iterator<Item = I> + '_ {
        self.selectors
            .get(&selector)
            .into_iter()
            .flat_map(|e| e.matches.iter().copied())
    }

    /// Adds or replaces an item's labels; returns the matches that started or stopped.
    pub fn upsert_item(&mut self, item: I, labels: LabelMap) -> Vec<MatchEvent<S, I>> {
        let old_matches = match self.items.get(&item) {
            Some(e) if e.labels == labels => return Vec::new(),
            Some(_) => {
                let old = self.items.remove(&item).expect("present");
                self.unpost_item(item, &old.labels);
                old.matches
            }
            None => IdSet::default(),
        };
        // Each selector is filed under one label (or one label's values), and an item has one
        // value per label: every candidate turns up once.
        let mut matches: IdSet<S> = IdSet::default();
        let mut consider = |ss: Option<&IdSet<S>>| {
            for s in ss.into_iter().flatten() {
                if self.selectors[s].selector.matches(&labels) {
                    matches.insert(*s);
                }
            }
        };
        consider(Some(&self.unrestricted));
        for (k, v) in &labels {
            consider(self.selectors_by_key.get(k));
            consider(self.selectors_by_value.get(k).and_then(|m| m.get(v)));
        }
        let mut events = Vec::new();
        for s in old_matches.difference(&matches) {
            self.selectors.get_mut(s).expect("indexed").matches.remove(&item);
            events.push((*s, item, false));
        }
        for s in matches.difference(&old_matches) {
            self.selectors.get_mut(s).expect("indexed").matches.insert(item);
            events.push((*s, item, true));
        }
        for (k, v) in &labels {
            self.item_postings
                .entry(k.clone())
                .or_default()
                .entry(v.clone())
                .or_default()
                .insert(item);
        }
        self.items.insert(item, ItemEntry { labels, matches });
        events
    }

    fn unpost_item(&mut self, item: I, labels: &LabelMap) {
        for (k, v) in labels {
            if let Some(by_value) = self.item_postings.get_mut(k) {
                if let Some(items) = by_value.get_mut(v) {
                    items.remove(&item);
                    if items.is_empty() {
                        by_value.remove(v);
                    }
                }
                if by_value.is_empty() {
                    self.item_postings.remove(k);
                }
            }
        }
    }

    /// Removes an item; returns the matches that stopped.
    pub fn remove_item(&mut self, item: I) -> Vec<MatchEvent<S, I>> {
        let Some(old) = self.items.remove(&item) else {
            return Vec::new();
        };
        self.unpost_item(item, &old.labels);
        old.matches
            .into_iter()
            .map(|s| {
                self.selectors.get_mut(&s).expect("indexed").matches.remove(&item);
                (s, item, false)
            })
            .collect()
    }

    /// Adds or replaces a selector; returns the matches that started or stopped.
    pub fn upsert_selector(&mut self, id: S, selector: Selector) -> Vec<MatchEvent<S, I>> {
        let old_matches = match self.selectors.get(&id) {
            Some(e) if e.selector == selector => return Vec::new(),
            Some(_) => self.unfile_selector(id),
            None => IdSet::default(),
        };
        let restriction = restriction(selector.expr());
        let candidates: Vec<I> = match &restriction {
            Restriction::None => self.items.keys().copied().collect(),
            Restriction::Key(k) => self
                .item_postings
                .get(k)
                .into_iter()
                .flat_map(|m| m.values().flat_map(|s| s.iter().copied()))
                .collect(),
            Restriction::Values(k, vs) => self
                .item_postings
                .get(k)
                .into_iter()
                .flat_map(|m| vs.iter().filter_map(|v| m.get(v)))
                .flat_map(|s| s.iter().copied())
                .collect(),
        };
        let matches: IdSet<I> = candidates
            .into_iter()
            .filter(|i| selector.matches(&self.items[i].labels))
            .collect();
        let mut events = Vec::new();
        for i in old_matches.difference(&matches) {
            self.items.get_mut(i).expect("indexed").matches.remove(&id);
            events.push((id, *i, false));
        }
        for i in matches.difference(&old_matches) {
            self.items.get_mut(i).expect("indexed").matches.insert(id);
            events.push((id, *i, true));
        }
        match &restriction {
            Restriction::None => {
                self.unrestricted.insert(id);
            }
            Restriction::Key(k) => {
                self.selectors_by_key.entry(k.clone()).or_default().insert(id);
            }
            Restriction::Values(k, vs) => {
                let by_value = self.selectors_by_value.entry(k.clone()).or_default();
                for v in vs {
                    by_value.entry(v.clone()).or_default().insert(id);
                }
            }
        }
        self.selectors.insert(
            id,
            SelectorEntry {
                selector,
                restriction,
                matches,
            },
        );
        events
    }

    /// Takes a selector out of the filing structures; returns what it matched.
    fn unfile_selector(&mut self, id: S) -> IdSet<I> {
        let old = self.selectors.remove(&id).expect("present");
        match &old.restriction {
            Restriction::None => {
                self.unrestricted.remove(&id);
            }
            Restriction::Key(k) => {
                if let Some(ss) = self.selectors_by_key.get_mut(k) {
                    ss.remove(&id);
                    if ss.is_empty() {
                        self.selectors_by_key.remove(k);
                    }
                }
            }
            Restriction::Values(k, vs) => {
                if let Some(by_value) = self.selectors_by_value.get_mut(k) {
                    for v in vs {
                        if let Some(ss) = by_value.get_mut(v) {
                            ss.remove(&id);
                            if ss.is_empty() {
                                by_value.remove(v);
                            }
                        }
                    }
                    if by_value.is_empty() {
                        self.selectors_by_value.remove(k);
                    }
                }
            }
        }
        old.matches
    }

    /// Removes a selector; returns the matches that stopped.
    pub fn remove_selector(&mut self, id: S) -> Vec<MatchEvent<S, I>> {
        if !self.selectors.contains_key(&id) {
            return Vec::new();
        }
        self.unfile_selector(id)
            .into_iter()
            .map(|i| {
                self.items.get_mut(&i).expect("indexed").matches.remove(&id);
                (id, i, false)
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use super::*;

    fn labels(pairs: &[(&str, &str)]) -> LabelMap {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn sel(s: &str) -> Selector {
        Selector::parse(s).unwrap()
    }

    #[test]
    fn restrictions() {
        let r = |s: &str| restriction(sel(s).expr());
        assert_eq!(
            r("a == 'x'"),
            Restriction::Values("a".into(), ["x".into()].into())
        );
        assert_eq!(r("has(a) && b in {'1', '2'}").key(), Some("b"));
        assert_eq!(r("has(a) && b == '1'").rank().0, 2);
        assert_eq!(
            r("a == 'x' || a in {'y'}"),
            Restriction::Values("a".into(), ["x".into(), "y".into()].into())
        );
        assert_eq!(r("a == 'x' || has(a)"), Restriction::Key("a".into()));
        assert_eq!(r("a == 'x' || b == 'y'"), Restriction::None);
        assert_eq!(r("!has(a)"), Restriction::None);
        assert_eq!(r("a != 'x'"), Restriction::None);
        assert_eq!(r("a not in {'x'}"), Restriction::None);
        assert_eq!(r("all()"), Restriction::None);
    }

    /// The index agrees with evaluating every selector against every item, through a
    /// sequence of item and selector changes.
    #[test]
    fn agrees_with_brute_force() {
        let sels = [
            "a == 'x'",
            "a in {'x', 'y'} && has(b)",
            "!has(a)",
            "b != 'q' || a == 'y'",
            "a starts with 'x'",
            "all()",
            "(a == 'x' || a == 'y') && b == 'q'",
        ];
        let items = [
            labels(&[("a", "x")]),
            labels(&[("a", "y"), ("b", "q")]),
            labels(&[("b", "z")]),
            labels(&[]),
            labels(&[("a", "xx"), ("b", "q")]),
        ];
        let mut idx: LabelIndex<u32, u32> = LabelIndex::default();
        let mut want: HashSet<(u32, u32)> = HashSet::new();
        let mut live_items: HashMap<u32, LabelMap> = HashMap::new();
        let mut live_sels: HashMap<u32, Selector> = HashMap::new();
        let apply = |events: Vec<MatchEvent<u32, u32>>, got: &mut HashSet<(u32, u32)>| {
            for (s, i, on) in events {
                assert_eq!(got.contains(&(s, i)), !on, "event {s} {i} {on} out of step");
                if on {
                    got.insert((s, i));
                } else {
                    got.remove(&(s, i));
                }
            }
        };
        let mut got = HashSet::new();
        // A deterministic interleaving of item and selector changes.
        for step in 0..200u32 {
            let n = step.wrapping_mul(2_654_435_761) >> 7;
            match n % 4 {
                0 => {
                    let id = n % 6;
                    let l = items[(n / 7) as usize % items.len()].clone();
                    live_items.insert(id, l.clone());
                    apply(idx.upsert_item(id, l), &mut got);
                }
                1 => {
                    let id = n % 6;
                    live_items.remove(&id);
                    apply(idx.remove_item(id), &mut got);
                }
                2 => {
                    let id = n % 5;
                    let s = sel(sels[(n / 5) as usize % sels.len()]);
                    live_sels.insert(id, s.clone());
                    apply(idx.upsert_selector(id, s), &mut got);
                }
                _ => {
                    let id = n % 5;
                    live_sels.remove(&id);
                    apply(idx.remove_selector(id), &mut got);
                }
            }
            want.clear();
            for (s, selector) in &live_sels {
                for (i, l) in &live_items {
                    if selector.matches(l) {
                        want.insert((*s, *i));
                    }
                }
            }
            assert_eq!(got, want, "step {step}");
            for (s, i) in &want {
                assert!(idx.item_matches(*i).any(|x| x == *s));
                assert!(idx.selector_matches(*s).any(|x| x == *i));
            }
        }
    }
}
