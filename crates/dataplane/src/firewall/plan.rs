//! The transaction that turns what the kernel holds into what Brindle wants (pure): only the
//! objects that differ are touched — a set's elements are added and removed in place, a
//! chain whose rules differ is flushed and refilled, a map element is swapped — and the steps
//! are ordered so every reference stays valid inside the one transaction:
//!
//! 1. create missing tables;
//! 2. flush the chains that will be refilled or deleted (releasing their jumps and lookups);
//! 3. remove elements (a map element that goes to a chain about to be deleted goes first);
//! 4. delete chains, then sets, no longer wanted (or whose shape changes);
//! 5. create sets, then chains;
//! 6. add elements (a map element may go to a chain created in step 5);
//! 7. fill the flushed and the new chains.

use std::collections::{BTreeMap, BTreeSet};

use brindle_netlink::nftables::{Batch, TableFamily};

use super::content::{Content, Item, Key, Set, TableContent};

/// What a plan changes, for reports and logs.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Changes {
    pub tables_created: usize,
    pub tables_deleted: usize,
    pub chains_created: usize,
    pub chains_rewritten: usize,
    pub chains_deleted: usize,
    pub rules_written: usize,
    pub sets_created: usize,
    pub sets_deleted: usize,
    pub elements_added: usize,
    pub elements_removed: usize,
    /// The objects that differed (capped, for messages).
    pub objects: Vec<String>,
    /// Every object the transaction writes or deletes.
    pub touched: BTreeSet<Key>,
}

impl Changes {
    pub fn is_empty(&self) -> bool {
        *self == Changes::default()
    }

    fn note(&mut self, family: TableFamily, what: &str, name: &str) {
        if self.objects.len() < 20 {
            self.objects.push(format!("{what} {family} {name}"));
        }
        self.touched.insert(match what {
            "chain" => Key::Chain(family, name.to_string()),
            "table" => Key::Table(family),
            _ => Key::Set(family, name.to_string()),
        });
    }
}

/// Which objects to compare: all of them, or only these.
pub enum Scope<'a> {
    All,
    Keys(&'a BTreeSet<Key>),
}

impl Scope<'_> {
    fn chain(&self, f: TableFamily, name: &str) -> bool {
        match self {
            Scope::All => true,
            Scope::Keys(k) => k.contains(&Key::Chain(f, name.to_string())) || k.contains(&Key::Table(f)),
        }
    }

    fn set(&self, f: TableFamily, name: &str) -> bool {
        match self {
            Scope::All => true,
            Scope::Keys(k) => k.contains(&Key::Set(f, name.to_string())) || k.contains(&Key::Table(f)),
        }
    }

    fn table(&self, f: TableFamily) -> bool {
        match self {
            Scope::All => true,
            Scope::Keys(k) => k.contains(&Key::Table(f)),
        }
    }
}

/// Per table: what each step does.
#[derive(Default)]
struct Steps<'a> {
    flush: Vec<&'a str>,
    remove_items: Vec<(&'a str, Vec<&'a Item>)>,
    delete_chains: Vec<&'a str>,
    delete_sets: Vec<&'a str>,
    create_sets: Vec<&'a Set>,
    create_chains: Vec<&'a super::content::Chain>,
    add_items: Vec<(&'a str, Vec<&'a Item>)>,
    fill: Vec<&'a super::content::Chain>,
}

/// The transaction from `have` to `want` over `scope`, and what it changes. `table` is the
/// name of Brindle's tables.
pub fn plan(table: &str, have: &Content, want: &Content, scope: Scope<'_>) -> (Batch, Changes) {
    let mut ch = Changes::default();
    let empty = TableContent::default();
    let families: BTreeSet<TableFamily> = have.keys().chain(want.keys()).copied().collect();
    let mut per: BTreeMap<TableFamily, Steps<'_>> = BTreeMap::new();
    let mut batch = Batch::new(TableFamily::Ip, table);
    let mut delete_tables = Vec::new();
    for f in families {
        let (h, w) = (have.get(&f), want.get(&f));
        match (h, w) {
            (Some(_), None) if scope.table(f) => {
                delete_tables.push(f);
                continue;
            }
            (None, Some(_)) => {
                batch.use_table(f, table);
                batch.add_table();
                ch.tables_created += 1;
                ch.touched.insert(Key::Table(f));
            }
            _ => {}
        }
        let (Some(w), h) = (w, h.unwrap_or(&empty)) else {
            continue;
        };
        let s = per.entry(f).or_default();
        // Sets whose shape changes are recreated: every chain that refers to them is refilled.
        let mut recreate: BTreeSet<&str> = BTreeSet::new();
        for (name, ws) in &w.sets {
            if !scope.set(f, name) {
                continue;
            }
            match h.sets.get(name) {
                None => {
                    s.create_sets.push(ws);
                    s.add_items.push((name, ws.items.iter().collect()));
                    ch.sets_created += 1;
                    ch.elements_added += ws.items.len();
                    ch.note(f, "set", name);
                }
                Some(hs) if hs.shape != ws.shape => {
                    recreate.insert(name);
                    s.delete_sets.push(name);
                    s.create_sets.push(ws);
                    s.add_items.push((name, ws.items.iter().collect()));
                    ch.sets_deleted += 1;
                    ch.sets_created += 1;
                    ch.elements_added += ws.items.len();
                    ch.note(f, "set", name);
                }
                Some(hs) => {
                    let gone: Vec<&Item> = hs.items.difference(&ws.items).collect();
                    let new: Vec<&Item> = ws.items.difference(&hs.items).collect();
                    if !gone.is_empty() || !new.is_empty() {
                        ch.elements_removed += gone.len();
                        ch.elements_added += new.len();
                        ch.note(f, "elements of", name);
                    }
                    if !gone.is_empty() {
                        s.remove_items.push((name, gone));
                    }
                    if !new.is_empty() {
                        s.add_items.push((name, new));
                    }
                }
            }
        }
        for name in h.sets.keys() {
            if scope.set(f, name) && !w.sets.contains_key(name) {
                s.delete_sets.push(name);
                ch.sets_deleted += 1;
                ch.note(f, "set", name);
            }
        }
        for (name, wc) in &w.chains {
            let refers_recreated = || wc.references().any(|r| recreate.contains(r));
            if !scope.chain(f, name) && !refers_recreated() {
                continue;
            }
            match h.chains.get(name) {
                None => {
                    s.create_chains.push(wc);
                    s.fill.push(wc);
                    ch.chains_created += 1;
                    ch.rules_written += wc.rules.len();
                    ch.note(f, "chain", name);
                }
                Some(hc) if hc.spec != wc.spec => {
                    // A base chain's hook cannot change in place.
                    s.flush.push(name);
                    s.delete_chains.push(name);
                    s.create_chains.push(wc);
                    s.fill.push(wc);
                    ch.chains_rewritten += 1;
                    ch.rules_written += wc.rules.len();
                    ch.note(f, "chain", name);
                }
                Some(hc) if hc.rules != wc.rules || refers_recreated() => {
                    s.flush.push(name);
                    s.fill.push(wc);
                    ch.chains_rewritten += 1;
                    ch.rules_written += wc.rules.len();
                    ch.note(f, "chain", name);
                }
                Some(_) => {}
            }
        }
        for (name, hc) in &h.chains {
            if (scope.chain(f, name) || hc.references().any(|r| recreate.contains(r)))
                && !w.chains.contains_key(name)
            {
                if !hc.rules.is_empty() {
                    s.flush.push(name);
                }
                s.delete_chains.push(name);
                ch.chains_deleted += 1;
                ch.note(f, "chain", name);
            }
        }
    }
    for (f, s) in &per {
        batch.use_table(*f, table);
        for c in &s.flush {
            batch.flush_chain(c);
        }
    }
    for (f, s) in &per {
        batch.use_table(*f, table);
        for (set, items) in &s.remove_items {
            let elems: Vec<_> = items.iter().flat_map(|i| i.iter().cloned()).collect();
            batch.delete_elements(set, &elems);
        }
    }
    for (f, s) in &per {
        batch.use_table(*f, table);
        for c in &s.delete_chains {
            batch.delete_chain(c);
        }
        for set in &s.delete_sets {
            batch.delete_set(set);
        }
    }
    for (f, s) in &per {
        batch.use_table(*f, table);
        for set in &s.create_sets {
            batch.add_set(&set.spec);
        }
        for c in &s.create_chains {
            batch.add_chain(&c.spec);
        }
    }
    for (f, s) in &per {
        batch.use_table(*f, table);
        for (set, items) in &s.add_items {
            if items.is_empty() {
                continue;
            }
            let elems: Vec<_> = items.iter().flat_map(|i| i.iter().cloned()).collect();
            batch.add_elements(set, &elems);
        }
    }
    for (f, s) in &per {
        batch.use_table(*f, table);
        for c in &s.fill {
            for r in &c.rules {
                batch.add_rule(&c.spec.name, r);
            }
        }
    }
    for f in delete_tables {
        // Delete whatever is in it: declare it (so a vanished table is no error), then delete.
        batch.use_table(f, table);
        batch.add_table();
        batch.delete_table();
        ch.tables_deleted += 1;
        ch.note(f, "table", table);
    }
    (batch, ch)
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use brindle_netlink::nftables::Elements;
    use brindle_netlink::nftables::{ChainSpec, DataType, Rule, SetSpec, Verdict};

    use super::super::content::Chain;
    use super::*;

    fn content(chains: &[(&str, Vec<Rule>)], sets: &[(&str, Elements)]) -> Content {
        let mut t = TableContent::default();
        for (n, r) in chains {
            t.chains.insert(
                n.to_string(),
                Arc::new(Chain::new(ChainSpec::regular(*n), r.clone())),
            );
        }
        for (n, e) in sets {
            let spec = match e {
                Elements::IfVerdicts(_) => SetSpec::new(*n, &[DataType::Ifname]).verdict_map(),
                _ => SetSpec::new(*n, &[DataType::Ipv4Addr]).interval(),
            };
            t.sets.insert(n.to_string(), Arc::new(Set::new(spec, e)));
        }
        Content::from([(TableFamily::Ip, t)])
    }

    fn nets(v: &[&str]) -> Elements {
        Elements::Nets(v.iter().map(|s| s.parse().unwrap()).collect())
    }

    fn steps(b: &Batch) -> Vec<String> {
        b.descriptions().map(|s| s.replace("ip brindle ", "")).collect()
    }

    #[test]
    fn nothing_to_do_is_an_empty_transaction() {
        let c = content(
            &[("a", vec![Rule::new().accept()])],
            &[("s", nets(&["10.0.0.0/8"]))],
        );
        let (b, ch) = plan("brindle", &c, &c, Scope::All);
        assert!(b.is_empty() && ch.is_empty());
    }

    #[test]
    fn only_what_differs_is_touched_in_a_safe_order() {
        let have = content(
            &[
                ("keep", vec![Rule::new().accept()]),
                ("change", vec![Rule::new().jump("old")]),
                ("old", vec![Rule::new().drop()]),
            ],
            &[
                ("s", nets(&["10.0.0.1/32", "10.0.1.0/24"])),
                (
                    "map",
                    Elements::IfVerdicts(vec![("cali1".into(), Verdict::Goto("old".into()))]),
                ),
            ],
        );
        let want = content(
            &[
                ("keep", vec![Rule::new().accept()]),
                ("change", vec![Rule::new().jump("new")]),
                ("new", vec![Rule::new().accept()]),
            ],
            &[
                ("s", nets(&["10.0.0.2/32", "10.0.1.0/24"])),
                (
                    "map",
                    Elements::IfVerdicts(vec![("cali1".into(), Verdict::Goto("new".into()))]),
                ),
            ],
        );
        let (b, ch) = plan("brindle", &have, &want, Scope::All);
        assert_eq!(
            steps(&b),
            [
                "flush chain change",
                "flush chain old",
                "delete element map (1 element)",
                "delete element s (2 elements)",
                "delete chain old",
                "add chain new",
                "add element map (1 element)",
                "add element s (2 elements)",
                "add rule change: jump new",
                "add rule new: accept",
            ]
        );
        assert_eq!(
            (ch.chains_rewritten, ch.chains_created, ch.chains_deleted),
            (1, 1, 1)
        );
        assert_eq!((ch.elements_added, ch.elements_removed), (2, 2));
        // Scoped to one set: nothing else is looked at.
        let keys = BTreeSet::from([Key::Set(TableFamily::Ip, "s".into())]);
        let (b, _) = plan("brindle", &have, &want, Scope::Keys(&keys));
        assert_eq!(
            steps(&b),
            ["delete element s (2 elements)", "add element s (2 elements)"]
        );
    }

    #[test]
    fn a_set_whose_type_changes_is_recreated_with_its_users() {
        let have = content(
            &[(
                "a",
                vec![
                    Rule::new()
                        .addr_in(
                            brindle_netlink::nftables::Family::V4,
                            brindle_netlink::nftables::Side::Src,
                            "s",
                            false,
                        )
                        .accept(),
                ],
            )],
            &[("s", nets(&["10.0.0.0/8"]))],
        );
        let mut want = have.clone();
        let t = want.get_mut(&TableFamily::Ip).unwrap();
        t.sets.insert(
            "s".into(),
            Arc::new(Set::new(
                SetSpec::new("s", &[DataType::Ipv6Addr]).interval(),
                &nets(&["fd00::/64"]),
            )),
        );
        let keys = BTreeSet::from([Key::Set(TableFamily::Ip, "s".into())]);
        let (b, _) = plan("brindle", &have, &want, Scope::Keys(&keys));
        assert_eq!(
            steps(&b),
            [
                "flush chain a",
                "delete set s",
                "add set s",
                "add element s (2 elements)",
                "add rule a: ip saddr @s accept",
            ]
        );
    }
}
