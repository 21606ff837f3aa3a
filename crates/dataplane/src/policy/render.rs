//! The wanted content of Brindle's tables, kept up to date object by object (pure): each
//! render replaces one chain or set and marks it dirty only when it really changed, so a
//! delta's transaction holds exactly what the delta affects. Brindle's own shared sets (a
//! rule's several nets or ports) live as long as a chain uses them.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use brindle_netlink::nftables::Elements;
use brindle_netlink::nftables::{DataType, SetSpec, TableFamily};
use brindle_policy::ir::{self, Direction, IpFamily, SetKind};

use super::chains::{self, Known, Shape};
use super::rules::{self, AuxSet, PORT_PROTOCOLS};
use super::{HostFirewall, PolicyConfig};
use crate::firewall::{Chain, Content, Key, Set};

pub fn table_family(f: IpFamily) -> TableFamily {
    match f {
        IpFamily::V4 => TableFamily::Ip,
        IpFamily::V6 => TableFamily::Ip6,
    }
}

/// The wanted content and what changed in it since the last write.
#[derive(Default)]
pub struct Desired {
    pub content: Content,
    pub dirty: BTreeSet<Key>,
    /// The shared sets each chain uses.
    chain_aux: BTreeMap<(TableFamily, String), Vec<String>>,
    /// How many chains use each shared set.
    aux_refs: BTreeMap<(TableFamily, String), usize>,
}

impl Desired {
    fn table(&mut self, f: TableFamily) -> &mut crate::firewall::TableContent {
        if !self.content.contains_key(&f) {
            self.dirty.insert(Key::Table(f));
        }
        self.content.entry(f).or_default()
    }

    pub fn put_chain(&mut self, f: TableFamily, mut chain: Chain) {
        let name = chain.spec.name.clone();
        let t = self.table(f);
        if t.chains.get(&name).is_some_and(|c| **c == chain) {
            return;
        }
        // Kept until the chain changes (12k rules with 1000 policies): a rule's expressions
        // and text were built by pushing, with room to spare.
        chain.rules.shrink_to_fit();
        for r in &mut chain.rules {
            r.exprs.shrink_to_fit();
            r.text.shrink_to_fit();
        }
        t.chains.insert(name.clone(), Arc::new(chain));
        self.dirty.insert(Key::Chain(f, name));
    }

    /// A chain with the shared sets its rules use.
    pub fn put_chain_aux(&mut self, f: TableFamily, chain: Chain, aux: Vec<AuxSet>) {
        let name = chain.spec.name.clone();
        let mut names: Vec<String> = Vec::new();
        for a in aux {
            if names.contains(&a.name) {
                continue;
            }
            names.push(a.name.clone());
            let n = self.aux_refs.entry((f, a.name.clone())).or_insert(0);
            *n += 1;
            if *n == 1 {
                self.put_set(f, Set::new(a.spec, &a.elements));
            }
        }
        self.release_aux(f, &name);
        if !names.is_empty() {
            self.chain_aux.insert((f, name), names);
        }
        self.put_chain(f, chain);
    }

    fn release_aux(&mut self, f: TableFamily, chain: &str) {
        for s in self.chain_aux.remove(&(f, chain.to_string())).unwrap_or_default() {
            let k = (f, s);
            if let Some(n) = self.aux_refs.get_mut(&k) {
                *n -= 1;
                if *n == 0 {
                    self.aux_refs.remove(&k);
                    self.remove_set(f, &k.1);
                }
            }
        }
    }

    pub fn remove_chain(&mut self, f: TableFamily, name: &str) {
        self.release_aux(f, name);
        if let Some(t) = self.content.get_mut(&f)
            && t.chains.remove(name).is_some()
        {
            self.dirty.insert(Key::Chain(f, name.to_string()));
        }
    }

    pub fn put_set(&mut self, f: TableFamily, set: Set) {
        let name = set.spec.name.clone();
        let t = self.table(f);
        if t.sets
            .get(&name)
            .is_some_and(|s| s.same(&set) && s.spec == set.spec)
        {
            return;
        }
        t.sets.insert(name.clone(), Arc::new(set));
        self.dirty.insert(Key::Set(f, name));
    }

    pub fn remove_set(&mut self, f: TableFamily, name: &str) {
        if let Some(t) = self.content.get_mut(&f)
            && t.sets.remove(name).is_some()
        {
            self.dirty.insert(Key::Set(f, name.to_string()));
        }
    }
}

impl Known for ir::State {
    fn policy(&self, id: &ir::PolicyId, d: Direction, f: IpFamily) -> Option<Shape> {
        self.policies.get(id).map(|p| Shape::of(p.rules(d).family(f)))
    }

    fn profile(&self, name: &str, d: Direction, f: IpFamily) -> Option<Shape> {
        self.profiles.get(name).map(|p| Shape::of(p.rules(d).family(f)))
    }
}

/// The families whose workload policy is programmed.
pub fn policy_families(cfg: &PolicyConfig) -> Vec<IpFamily> {
    if cfg.ipv6 {
        vec![IpFamily::V4, IpFamily::V6]
    } else {
        vec![IpFamily::V4]
    }
}

/// The host's own chains and sets (both tables), given whether workload policy is on.
pub fn host(d: &mut Desired, cfg: &PolicyConfig, host: &HostFirewall, state: Option<&ir::State>) {
    let policy = cfg.enabled && state.is_some();
    for f in [IpFamily::V4, IpFamily::V6] {
        let tf = table_family(f);
        let fam_policy = policy && policy_families(cfg).contains(&f);
        let skip = fam_policy
            && state.is_some_and(|s| {
                s.endpoints
                    .values()
                    .any(|e| e.allow_spoofed_sources.iter().any(|n| IpFamily::of_net(n) == f))
            });
        for c in chains::raw(&host.iface_prefixes, skip) {
            d.put_chain(tf, c);
        }
        if skip {
            let eps = state
                .expect("skip implies a state")
                .endpoints
                .values()
                .map(|e| &**e);
            d.put_chain(tf, chains::rpf_skip(f, eps));
        } else {
            d.remove_chain(tf, chains::RPF_SKIP);
        }
        let guards = if f == IpFamily::V4 {
            host.guards.clone()
        } else {
            Default::default()
        };
        for c in chains::input(f, &host.iface_prefixes, &guards, fam_policy) {
            d.put_chain(tf, c);
        }
        if f == IpFamily::V4 && (guards.ipip || guards.vxlan_port.is_some()) {
            let (spec, e) = chains::all_hosts(&host.peer_nodes);
            d.put_set(tf, Set::new(spec, &e));
        } else {
            d.remove_set(tf, chains::ALL_HOSTS);
        }
        let pools = match f {
            IpFamily::V4 => Some(&host.nat_v4),
            IpFamily::V6 => host.nat_v6.as_ref(),
        };
        if let Some(p) = pools {
            let (cs, ss) = chains::nat(f, p, host.tunl0);
            for c in cs {
                d.put_chain(tf, c);
            }
            for (spec, e) in ss {
                d.put_set(tf, Set::new(spec, &e));
            }
        } else {
            for c in ["nat-POSTROUTING", "nat-cali-nat-outgoing"] {
                d.remove_chain(tf, c);
            }
            for s in ["masq-ipam-pools", "all-ipam-pools"] {
                d.remove_set(tf, &chains::fam_name(f, s));
            }
        }
        if fam_policy {
            let s = state.expect("policy implies a state");
            for c in chains::forward(&host.iface_prefixes, &s.settings) {
                d.put_chain(tf, c);
            }
            d.put_chain(
                tf,
                chains::wl_to_host(f, s.settings.default_endpoint_to_host_action),
            );
            d.put_set(
                tf,
                Set::new(
                    SetSpec::new(PORT_PROTOCOLS, &[DataType::InetProto]),
                    &Elements::Protos(vec![6, 17, 132, 136]),
                ),
            );
            endpoint_maps(d, f, s);
        } else if policy {
            // Workload policy is on, but not for this family: closed.
            for c in chains::forward_closed(&host.iface_prefixes) {
                d.put_chain(tf, c);
            }
        } else {
            for c in chains::forward(&host.iface_prefixes, &ir::Settings::default()) {
                d.remove_chain(tf, &c.spec.name);
            }
            d.remove_chain(tf, chains::WL_TO_HOST);
            d.remove_set(tf, PORT_PROTOCOLS);
            d.remove_set(tf, chains::FROM_WL_DISPATCH);
            d.remove_set(tf, chains::TO_WL_DISPATCH);
        }
    }
}

/// The dispatch maps of family `f`.
pub fn endpoint_maps(d: &mut Desired, f: IpFamily, s: &ir::State) {
    let tf = table_family(f);
    let (from, to) = chains::dispatch_elements(s.endpoints.values().map(|e| &**e));
    d.put_set(
        tf,
        Set::new(chains::dispatch_map(chains::FROM_WL_DISPATCH), &from),
    );
    d.put_set(tf, Set::new(chains::dispatch_map(chains::TO_WL_DISPATCH), &to));
}

/// One IR set.
pub fn set(d: &mut Desired, cfg: &PolicyConfig, s: &ir::IpSet) {
    if !policy_families(cfg).contains(&s.key.family) {
        return;
    }
    let tf = table_family(s.key.family);
    let name = s.key.nft_name();
    let addr = match s.key.family {
        IpFamily::V4 => DataType::Ipv4Addr,
        IpFamily::V6 => DataType::Ipv6Addr,
    };
    let (spec, elements) = match s.kind {
        SetKind::Net => (
            SetSpec::new(&name, &[addr]).interval(),
            Elements::Nets(
                s.members
                    .iter()
                    .filter_map(|m| match m {
                        ir::Member::Net(n) => Some(*n),
                        ir::Member::AddrPort { .. } => None,
                    })
                    .collect(),
            ),
        ),
        SetKind::NamedPort => (
            SetSpec::new(&name, &[addr, DataType::InetProto, DataType::InetService]).interval(),
            Elements::AddrProtoPorts(
                s.members
                    .iter()
                    .filter_map(|m| match m {
                        ir::Member::AddrPort { addr, protocol, port } => Some((*addr, *protocol, *port)),
                        ir::Member::Net(_) => None,
                    })
                    .collect(),
            ),
        ),
    };
    d.put_set(tf, Set::new(spec.with_comment(&s.comment), &elements));
}

pub fn remove_set(d: &mut Desired, key: &ir::SetKey) {
    d.remove_set(table_family(key.family), &key.nft_name());
}

fn rule_chains<'a>(
    d: &mut Desired,
    cfg: &PolicyConfig,
    chain: impl Fn(Direction) -> String,
    rules: impl Fn(Direction) -> &'a ir::FamilyRules,
) {
    for f in policy_families(cfg) {
        for dir in Direction::ALL {
            let list = rules(dir).family(f);
            if list.is_empty() {
                // Nothing to jump to: endpoint chains skip it (see `chains::endpoint`).
                d.remove_chain(table_family(f), &chain(dir));
                continue;
            }
            let mut aux = Vec::new();
            let ctx = rules::Ctx {
                family: f,
                direction: dir,
                log: cfg.log,
            };
            let rs = rules::render_list(list, ctx, &mut aux);
            d.put_chain_aux(
                table_family(f),
                Chain::new(brindle_netlink::nftables::ChainSpec::regular(chain(dir)), rs),
                aux,
            );
        }
    }
}

/// A policy's chains (both directions, every policy family; empty when it has no rules).
pub fn policy(d: &mut Desired, cfg: &PolicyConfig, p: &ir::PolicyRules) {
    rule_chains(d, cfg, |dir| chains::policy_chain(&p.id, dir), |dir| p.rules(dir));
}

pub fn remove_policy(d: &mut Desired, cfg: &PolicyConfig, id: &ir::PolicyId) {
    for f in policy_families(cfg) {
        for dir in Direction::ALL {
            d.remove_chain(table_family(f), &chains::policy_chain(id, dir));
        }
    }
}

pub fn profile(d: &mut Desired, cfg: &PolicyConfig, p: &ir::ProfileRules) {
    rule_chains(
        d,
        cfg,
        |dir| chains::profile_chain(&p.name, dir),
        |dir| p.rules(dir),
    );
}

pub fn remove_profile(d: &mut Desired, cfg: &PolicyConfig, name: &str) {
    for f in policy_families(cfg) {
        for dir in Direction::ALL {
            d.remove_chain(table_family(f), &chains::profile_chain(name, dir));
        }
    }
}

pub fn endpoint(d: &mut Desired, cfg: &PolicyConfig, e: &ir::Endpoint, s: &ir::State) {
    for f in policy_families(cfg) {
        for dir in Direction::ALL {
            d.put_chain(table_family(f), chains::endpoint(e, dir, f, s));
        }
    }
}

pub fn remove_endpoint(d: &mut Desired, cfg: &PolicyConfig, e: &ir::Endpoint) {
    for f in policy_families(cfg) {
        for dir in Direction::ALL {
            d.remove_chain(table_family(f), &chains::endpoint_chain(e, dir));
        }
    }
}

/// Everything, from scratch: what a full resync wants.
pub fn all(cfg: &PolicyConfig, h: &HostFirewall, state: Option<&ir::State>) -> Desired {
    let mut d = Desired::default();
    if let (true, Some(s)) = (cfg.enabled, state) {
        for set in s.sets.values() {
            self::set(&mut d, cfg, set);
        }
        for p in s.policies.values() {
            policy(&mut d, cfg, p);
        }
        for p in s.profiles.values() {
            profile(&mut d, cfg, p);
        }
        for e in s.endpoints.values() {
            endpoint(&mut d, cfg, e, s);
        }
    }
    host(&mut d, cfg, h, state);
    d
}
