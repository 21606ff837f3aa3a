//! Policy enforcement, anti-spoofing and NAT outgoing in Brindle's own nftables tables, `ip
//! brindle` and `ip6 brindle` (one per family, as Felix's `ip calico`/`ip6 calico`: rules need
//! no family checks and read as in Felix; one transaction still spans both).
//!
//! [`PolicyDataplane`] is the one writer of those tables in a namespace:
//! - [`PolicyDataplane::set_host`]: the host's part (NAT pools, tunnel guards, anti-spoofing);
//! - [`PolicyDataplane::resync`]: the calculation's full [`State`]; the tables are read back
//!   and whatever differs is fixed, in one transaction;
//! - [`PolicyDataplane::apply`]: one [`Delta`], one transaction that touches only what the
//!   delta affects (set elements in place, a chain flushed and refilled, a map element);
//! - [`PolicyDataplane::check`]: the reconciler; rules changed behind Brindle's back are put
//!   back (call it when [`PolicyDataplane::monitor`] reports a change, and periodically).
//!
//! With workload policy enabled, nothing is written until the first resync, so a restarted
//! agent leaves the previous agent's rules in place until it knows the full state (no open
//! window), and an interface the tables do not know is dropped (fail closed). Design and
//! invariants: `crates/dataplane/DESIGN.md`.
//!
//! Modules: [`chains`] (the chains around policy, Felix's layout), [`rules`] (IR rule → nft
//! rules), [`render`] (the wanted content, kept object by object), [`marks`] (Felix's bits).

pub mod chains;
pub mod marks;
pub mod render;
pub mod rules;

use std::collections::BTreeSet;
use std::net::IpAddr;

use brindle_netlink::NetnsFd;
use brindle_netlink::nftables::NftMonitor;
use brindle_policy::ir::{self, Delta, Direction, IpFamily, State};

pub use chains::{NatPools, TunnelGuards};
pub use rules::LogLimit;

use crate::error::Error;
use crate::firewall::{TableWriter, Written};
use render::Desired;

/// The name of Brindle's tables (`ip brindle`, `ip6 brindle`).
pub const TABLE: &str = "brindle";

/// Static settings.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PolicyConfig {
    /// Enforce workload policy (resync/apply). Off: the tables hold only the host's part.
    pub enabled: bool,
    /// Enforce IPv6 workload policy too; off, IPv6 workload traffic is not forwarded at all
    /// (the IPv4-only default of a cluster without IPv6 pools).
    pub ipv6: bool,
    /// Rate limit of Log rules.
    pub log: LogLimit,
}

/// The host's part of the tables.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostFirewall {
    /// Workload interface prefixes (`cali`).
    pub iface_prefixes: Vec<String>,
    /// NAT outgoing for IPv4 pools.
    pub nat_v4: NatPools,
    /// NAT outgoing for IPv6 pools (`None`: no `nat-` chains in `ip6 brindle`).
    pub nat_v6: Option<NatPools>,
    /// tunl0 exists: the host's own traffic down it is masqueraded to the tunnel address.
    pub tunl0: bool,
    /// Drop IPIP / VXLAN packets from hosts that are not nodes.
    pub guards: TunnelGuards,
    /// The other nodes' addresses.
    pub peer_nodes: Vec<IpAddr>,
}

impl Default for HostFirewall {
    fn default() -> HostFirewall {
        HostFirewall {
            iface_prefixes: vec!["cali".into()],
            nat_v4: NatPools::default(),
            nat_v6: None,
            tunl0: false,
            guards: TunnelGuards::default(),
            peer_nodes: Vec::new(),
        }
    }
}

/// The writer of Brindle's tables in one namespace.
pub struct PolicyDataplane {
    netns: NetnsFd,
    /// Opened on first use (a kernel without nf_tables fails each use, with its reason).
    writer: Option<TableWriter>,
    cfg: PolicyConfig,
    host: HostFirewall,
    state: Option<State>,
    desired: Desired,
    host_set: bool,
}

impl PolicyDataplane {
    /// A writer for `netns` (nothing is opened, read or written yet).
    pub fn open(netns: &NetnsFd, cfg: PolicyConfig) -> Result<PolicyDataplane, Error> {
        Ok(PolicyDataplane {
            netns: netns.try_clone()?,
            writer: None,
            cfg,
            host: HostFirewall::default(),
            state: None,
            desired: Desired::default(),
            host_set: false,
        })
    }

    pub fn config(&self) -> &PolicyConfig {
        &self.cfg
    }

    /// The nf_tables socket, opened now if it is not yet: fails when the kernel has no
    /// nf_tables (`Protocol not supported`).
    pub fn writer(&mut self) -> Result<&mut TableWriter, Error> {
        opened(&mut self.writer, &self.netns)
    }

    /// True once the tables are written: always with policy off, after the first
    /// [`PolicyDataplane::resync`] with it on.
    pub fn ready(&self) -> bool {
        self.host_set && (!self.cfg.enabled || self.state.is_some())
    }

    /// The calculation's state as last applied.
    pub fn state(&self) -> Option<&State> {
        self.state.as_ref()
    }

    /// Sets the host's part (one transaction of what changed; deferred until the first resync
    /// when policy is on).
    pub fn set_host(&mut self, host: &HostFirewall) -> Result<Written, Error> {
        if self.host_set && *host == self.host {
            return Ok(Written::default());
        }
        let first = !self.host_set;
        self.host = host.clone();
        self.host_set = true;
        render::host(&mut self.desired, &self.cfg, &self.host, self.state.as_ref());
        if first && !self.cfg.enabled {
            // The first write reads the tables back and fixes everything.
            return self.resync_now();
        }
        self.write()
    }

    /// The calculation's full state (`PolicyCalculator::state()`, taken over): the tables
    /// are read back and made to match, in one transaction. Call it when the calculation is
    /// first in sync (and it may be called periodically). With policy off it only records the
    /// state.
    pub fn resync(&mut self, state: State) -> Result<Written, Error> {
        self.state = Some(state);
        if !self.host_set {
            return Ok(Written::default());
        }
        self.resync_now()
    }

    fn resync_now(&mut self) -> Result<Written, Error> {
        let t = std::time::Instant::now();
        self.desired = render::all(&self.cfg, &self.host, self.state.as_ref());
        self.desired.dirty.clear();
        let render = t.elapsed();
        let content = &self.desired.content;
        let writer = opened(&mut self.writer, &self.netns)?;
        let mut w = writer.sync(content)?;
        w.timings.render = render;
        w.took += render;
        Ok(w)
    }

    /// One delta of the calculation, as one transaction touching only what it affects. A
    /// delta before the first resync is an error (the state it changes is unknown).
    pub fn apply(&mut self, delta: &Delta) -> Result<Written, Error> {
        self.apply_all(std::slice::from_ref(delta))
    }

    /// Deltas queued one after another, as one transaction: each is rendered in order, then
    /// what they changed together is written at once (the kernel re-validates the table once
    /// per transaction, so a burst of changes costs one validation, not one per delta).
    pub fn apply_all(&mut self, deltas: &[Delta]) -> Result<Written, Error> {
        for d in deltas {
            self.stage(d)?;
        }
        if !self.cfg.enabled || !self.host_set {
            return Ok(Written::default());
        }
        self.write()
    }

    /// Takes one delta into the mirrored state and the wanted content (nothing is written).
    fn stage(&mut self, delta: &Delta) -> Result<(), Error> {
        let Some(state) = self.state.as_mut() else {
            return Err(Error::Conflict(
                "policy delta before the first resync: the full state is needed first".into(),
            ));
        };
        let cfg = &self.cfg;
        let d = &mut self.desired;
        // Interfaces of endpoints that go away or move, before the state forgets them.
        let mut gone = Vec::new();
        for k in &delta.endpoints_removed {
            if let Some(e) = state.endpoints.get(k) {
                gone.push(e.clone());
            }
        }
        for e in &delta.endpoints_updated {
            if let Some(old) = state.endpoints.get(&e.key)
                && old.interface != e.interface
            {
                gone.push(old.clone());
            }
        }
        // Policies and profiles whose lists change shape (become empty, or able to pass or
        // allow): the endpoint chains that use them change too.
        let mut reshaped_policies: BTreeSet<&ir::PolicyId> = delta.policies_removed.iter().collect();
        for p in &delta.policies_updated {
            if state.policies.get(&p.id).map(|o| policy_shapes(o)) != Some(policy_shapes(p)) {
                reshaped_policies.insert(&p.id);
            }
        }
        let mut reshaped_profiles: BTreeSet<&str> =
            delta.profiles_removed.iter().map(|s| s.as_str()).collect();
        for p in &delta.profiles_updated {
            if state.profiles.get(&p.name).map(|o| profile_shapes(o)) != Some(profile_shapes(p)) {
                reshaped_profiles.insert(&p.name);
            }
        }
        state.apply(delta);
        if !cfg.enabled {
            return Ok(());
        }
        let state = &*state;
        for s in &delta.sets_added {
            render::set(d, cfg, s);
        }
        for m in &delta.set_members {
            if let Some(s) = state.sets.get(&m.key) {
                render::set(d, cfg, s);
            }
        }
        for p in &delta.policies_updated {
            render::policy(d, cfg, p);
        }
        for p in &delta.profiles_updated {
            render::profile(d, cfg, p);
        }
        for e in &gone {
            render::remove_endpoint(d, cfg, e);
        }
        let mut endpoints: BTreeSet<&ir::EndpointKey> =
            delta.endpoints_updated.iter().map(|e| &e.key).collect();
        if !reshaped_policies.is_empty() || !reshaped_profiles.is_empty() {
            for e in state.endpoints.values() {
                let uses = Direction::ALL.iter().any(|d| {
                    let dir = e.direction(*d);
                    dir.tiers
                        .iter()
                        .any(|t| t.policies.iter().any(|p| reshaped_policies.contains(p)))
                        || dir
                            .profiles
                            .iter()
                            .any(|p| reshaped_profiles.contains(p.as_str()))
                });
                if uses {
                    endpoints.insert(&e.key);
                }
            }
        }
        for k in endpoints {
            if let Some(e) = state.endpoints.get(k) {
                render::endpoint(d, cfg, e, state);
            }
        }
        for id in &delta.policies_removed {
            render::remove_policy(d, cfg, id);
        }
        for name in &delta.profiles_removed {
            render::remove_profile(d, cfg, name);
        }
        for k in &delta.sets_removed {
            render::remove_set(d, k);
        }
        if !delta.endpoints_updated.is_empty() || !gone.is_empty() || delta.settings.is_some() {
            render::host(d, cfg, &self.host, Some(state));
        }
        Ok(())
    }

    fn write(&mut self) -> Result<Written, Error> {
        if !self.ready() {
            return Ok(Written::default());
        }
        let dirty = std::mem::take(&mut self.desired.dirty);
        if dirty.is_empty() {
            return Ok(Written::default());
        }
        let content = &self.desired.content;
        let writer = opened(&mut self.writer, &self.netns)?;
        Ok(writer.write(content, &dirty)?)
    }

    /// The reconciler: if the ruleset changed since the last look (or with `force`), the
    /// tables are read back and whatever differs from what Brindle wants is put back.
    pub fn check(&mut self, force: bool) -> Result<Written, Error> {
        if !self.ready() {
            return Ok(Written::default());
        }
        let content = &self.desired.content;
        let writer = opened(&mut self.writer, &self.netns)?;
        Ok(writer.check(content, force)?)
    }

    /// Notifications of changes to Brindle's tables by anyone else (for the reconciler's
    /// loop: `if monitor.wait(period) { check(true) }`).
    pub fn monitor(&mut self) -> Result<NftMonitor, Error> {
        Ok(self.writer()?.monitor()?)
    }

    /// What the wanted tables hold (tests, status).
    pub fn wanted(&self) -> &crate::firewall::Content {
        &self.desired.content
    }
}

/// Fails closed from the agent's first instant on a node that has no Brindle tables yet (its
/// first start): installs the base now, before the datastore is listed — the dispatch maps
/// empty, so every `cali*` interface is dropped ("Unknown interface"), conntrack and the
/// anti-spoofing chains in place, NAT outgoing with no pools. The first
/// [`PolicyDataplane::resync`] then reads it back and swaps in the full state in one
/// transaction. Where a table already exists (a restart) nothing is written: the previous
/// agent's rules stay in force until that resync. Returns whether the base was installed.
pub fn install_base(netns: &NetnsFd, cfg: &PolicyConfig) -> Result<bool, Error> {
    if !cfg.enabled {
        return Ok(false);
    }
    let mut w = TableWriter::open(netns, TABLE)?;
    for f in crate::firewall::writer::FAMILIES {
        if w.nft().has_table(f, TABLE)? {
            return Ok(false);
        }
    }
    let base = render::all(cfg, &HostFirewall::default(), Some(&State::default()));
    w.sync(&base.content)?;
    Ok(true)
}

/// The writer in `slot`, opened in `netns` first if need be.
fn opened<'a>(slot: &'a mut Option<TableWriter>, netns: &NetnsFd) -> Result<&'a mut TableWriter, Error> {
    if slot.is_none() {
        *slot = Some(TableWriter::open(netns, TABLE)?);
    }
    Ok(slot.as_mut().expect("just opened"))
}

/// The shapes of a policy's or profile's lists (ingress v4, v6, egress v4, v6).
fn shapes(ingress: &ir::FamilyRules, egress: &ir::FamilyRules) -> [chains::Shape; 4] {
    let s = |r: &ir::FamilyRules, f| chains::Shape::of(r.family(f));
    [
        s(ingress, IpFamily::V4),
        s(ingress, IpFamily::V6),
        s(egress, IpFamily::V4),
        s(egress, IpFamily::V6),
    ]
}

fn policy_shapes(p: &ir::PolicyRules) -> [chains::Shape; 4] {
    shapes(&p.ingress, &p.egress)
}

fn profile_shapes(p: &ir::ProfileRules) -> [chains::Shape; 4] {
    shapes(&p.ingress, &p.egress)
}
