//! What Brindle's tables hold, as values that compare: chains with their rules, sets with
//! their elements grouped into the units they are added and removed in. The same types hold
//! what Brindle wants and what a dump says the kernel has, so a plan is a plain comparison.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use brindle_netlink::nftables::Elements;
use brindle_netlink::nftables::{ChainSpec, Elem, Rule, SetSpec, TableDump, TableFamily};
use brindle_netlink::nftables::{Expr, Hook, HookPoint};

/// Elements added and removed together: the start and end of a range, or one element.
pub type Item = Vec<Elem>;

/// A chain and its rules, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Chain {
    pub spec: ChainSpec,
    pub rules: Vec<Rule>,
}

impl Chain {
    pub fn new(spec: ChainSpec, rules: Vec<Rule>) -> Chain {
        Chain { spec, rules }
    }

    /// The sets and chains its rules refer to.
    pub fn references(&self) -> impl Iterator<Item = &str> {
        self.rules
            .iter()
            .flat_map(|r| r.exprs.iter())
            .filter_map(|e| match e {
                Expr::Lookup { set, .. } => Some(set.as_str()),
                Expr::Immediate {
                    data:
                        brindle_netlink::nftables::expr::ImmData::Verdict(
                            brindle_netlink::nftables::Verdict::Jump(c)
                            | brindle_netlink::nftables::Verdict::Goto(c),
                        ),
                    ..
                } => Some(c.as_str()),
                _ => None,
            })
    }
}

/// What identifies a set's type in the kernel (a set whose shape changes is recreated; the
/// comment is for people and does not count).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SetShape {
    pub key_type: u32,
    pub key_len: u32,
    pub flags: u32,
    pub verdict_map: bool,
}

impl SetShape {
    pub fn of(spec: &SetSpec) -> SetShape {
        SetShape {
            key_type: spec.key_type(),
            key_len: spec.key_len(),
            flags: spec.flags(),
            verdict_map: spec.verdict_map,
        }
    }
}

/// A set (or verdict map) and its elements.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Set {
    pub spec: SetSpec,
    pub shape: SetShape,
    pub items: BTreeSet<Item>,
}

impl Set {
    pub fn new(spec: SetSpec, elements: &Elements) -> Set {
        let shape = SetShape::of(&spec);
        let items = group(&spec, elements.elems());
        Set { spec, shape, items }
    }

    /// Same shape and elements (what matters to the kernel).
    pub fn same(&self, other: &Set) -> bool {
        self.shape == other.shape && self.items == other.items
    }
}

/// Groups a set's elements into items: in a (non-concatenated) interval set a start and the
/// end element that follows it, else one element each.
pub fn group(spec: &SetSpec, mut elems: Vec<Elem>) -> BTreeSet<Item> {
    if !spec.interval || spec.is_concat() {
        return elems.into_iter().map(|e| vec![e]).collect();
    }
    elems.sort_by(|a, b| a.key.cmp(&b.key).then(a.interval_end.cmp(&b.interval_end)));
    let mut out = BTreeSet::new();
    let mut it = elems.into_iter().peekable();
    while let Some(e) = it.next() {
        if !e.interval_end
            && let Some(next) = it.peek()
            && next.interval_end
        {
            let end = it.next().expect("peeked");
            out.insert(vec![e, end]);
        } else {
            out.insert(vec![e]);
        }
    }
    out
}

/// One table's chains and sets.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TableContent {
    pub chains: BTreeMap<String, Arc<Chain>>,
    pub sets: BTreeMap<String, Arc<Set>>,
}

impl TableContent {
    /// The table as a dump shows it (taken apart as it is read: the rules and elements move,
    /// so a read-back never holds two copies of the table).
    pub fn from_dump(d: TableDump) -> TableContent {
        let TableDump {
            chains,
            rules,
            sets,
            mut elements,
            ..
        } = d;
        let mut t = TableContent::default();
        let mut by_chain: BTreeMap<String, Vec<Rule>> = BTreeMap::new();
        for r in rules {
            by_chain.entry(r.chain).or_default().push(r.rule);
        }
        for c in chains {
            let hook = c.hook.as_ref().map(|(point, prio, kind, accept)| Hook {
                kind: static_kind(kind),
                point: *point,
                priority: *prio,
                accept: *accept,
            });
            let rules = by_chain.remove(&c.name).unwrap_or_default();
            t.chains.insert(
                c.name.clone(),
                Arc::new(Chain::new(ChainSpec { name: c.name, hook }, rules)),
            );
        }
        for s in sets {
            let shape = SetShape {
                key_type: s.key_type,
                key_len: s.key_len,
                flags: s.flags,
                verdict_map: s.data_type == Some(0xffff_ff00),
            };
            // The spec is rebuilt only as far as grouping needs it.
            let spec = SetSpec {
                name: s.name.clone(),
                key: Vec::new(),
                interval: s.flags & 0x4 != 0,
                verdict_map: shape.verdict_map,
                comment: None,
            };
            let concat = s.flags & 0x80 != 0;
            let elems = elements.remove(&s.name).unwrap_or_default();
            let items = if concat {
                elems.into_iter().map(|e| vec![e]).collect()
            } else {
                group(&spec, elems)
            };
            t.sets.insert(s.name, Arc::new(Set { spec, shape, items }));
        }
        t
    }
}

fn static_kind(kind: &str) -> &'static str {
    match kind {
        "nat" => "nat",
        "route" => "route",
        _ => "filter",
    }
}

/// Every table Brindle owns (`ip brindle`, `ip6 brindle`).
pub type Content = BTreeMap<TableFamily, TableContent>;

/// One object of one table.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Key {
    Chain(TableFamily, String),
    Set(TableFamily, String),
    /// The table itself (created first; deleted with everything in it).
    Table(TableFamily),
}

/// The base chain spec of a hook, with Brindle's conventions (policy accept).
pub fn base(name: &str, kind: &'static str, point: HookPoint, priority: i32) -> ChainSpec {
    ChainSpec::base(name, kind, point, priority)
}

#[cfg(test)]
mod tests {
    use super::*;
    use brindle_netlink::nftables::DataType;

    #[test]
    fn interval_elements_group_into_ranges() {
        let spec = SetSpec::new("s", &[DataType::Ipv4Addr]).interval();
        let set = Set::new(
            spec.clone(),
            &Elements::Nets(vec![
                "10.0.0.0/24".parse().unwrap(),
                "10.0.2.1/32".parse().unwrap(),
                "255.255.255.255/32".parse().unwrap(),
            ]),
        );
        assert_eq!(set.items.len(), 3);
        assert!(set.items.iter().filter(|i| i.len() == 2).count() == 2);
        // Shuffled, as a dump may return them: the same items.
        let mut elems: Vec<Elem> = set.items.iter().flatten().cloned().collect();
        elems.reverse();
        assert_eq!(group(&spec, elems), set.items);
    }
}
