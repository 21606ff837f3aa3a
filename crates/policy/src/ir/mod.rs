//! The calculation's output, the intermediate representation a dataplane renders: IP sets,
//! per-policy and per-profile rule lists, and per local endpoint the ordered tiers and profiles.
//!
//! It follows what Felix's calculation graph hands its dataplane drivers (`felix/proto`:
//! `IPSetUpdate`, `ActivePolicyUpdate`, `ActiveProfileUpdate`, `WorkloadEndpointUpdate` with
//! `TierInfo`), with Felix's later steps already applied: rules are split per IP family
//! (`felix/rules/policy.go` `FilterRuleToIPVersion`), protocols are numbers, nets are masked,
//! and a Log rule carries its log prefix.
//!
//! How a dataplane reads it (and how [`crate::eval`] decides a packet, the same way):
//! - An endpoint's chain for one direction runs the [`EndpointDirection::tiers`] in order. In a
//!   tier, each policy's rule list for the packet's family runs in order; the **first rule that
//!   matches decides**: [`Action::Allow`] accepts for this direction (nothing after it runs, not
//!   even the profiles), [`Action::Deny`] drops, [`Action::Pass`] skips the rest of this tier,
//!   [`Action::Log`] logs and goes on with the next rule. A policy with no matching rule goes on
//!   to the next policy. At the end of a tier nothing passed: drop, unless the tier's
//!   [`TierDefault`] is `Pass`.
//! - Then the [`EndpointDirection::profiles`] in order: Allow accepts, Deny drops, Pass and no
//!   match go on to the next profile; after the last one, drop.
//! - Egress only, before the tiers: UDP to [`Settings::vxlan_port`] and IP protocol 4 are dropped
//!   unless [`Settings::allow_vxlan_packets_from_workloads`] /
//!   [`Settings::allow_ipip_packets_from_workloads`].
//! - Every condition of a [`Rule`] must hold (AND). Inside one list the entries are alternatives
//!   (OR): `nets`, `ports` together with `named_port_sets`. Negated lists must all fail
//!   (`not_nets`, `not_sets`, `not_ports` together with `not_named_port_sets`). Each entry of
//!   `sets` must hold (there is at most one in practice).
//! - A rule with port conditions only matches packets that have ports (TCP, UDP, SCTP,
//!   UDP-Lite); Calico's validation requires a protocol for numeric ports, a named port without
//!   a protocol matches any of the protocols its set members carry.
//! - Set references in a family's rule list mean the set of that family ([`SetKey`]).

use std::collections::BTreeSet;
use std::fmt;
use std::net::IpAddr;
use std::sync::Arc;

use ipnet::IpNet;
use serde::Serialize;

use crate::names::length_limited;

mod state;

pub use state::{Delta, EndpointToHostAction, SetMembersDelta, Settings, State};

/// An IP family; every set and rule list exists per family, as Felix keeps one dataplane per
/// family (IPv6 ones only on a node with IPv6, [`crate::PolicyCalculator::with_ipv6`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
pub enum IpFamily {
    V4,
    V6,
}

impl IpFamily {
    pub const ALL: [IpFamily; 2] = [IpFamily::V4, IpFamily::V6];

    pub fn of_addr(addr: &IpAddr) -> IpFamily {
        match addr {
            IpAddr::V4(_) => IpFamily::V4,
            IpAddr::V6(_) => IpFamily::V6,
        }
    }

    pub fn of_net(net: &IpNet) -> IpFamily {
        IpFamily::of_addr(&net.addr())
    }

    /// 4 or 6.
    pub fn version(self) -> u8 {
        match self {
            IpFamily::V4 => 4,
            IpFamily::V6 => 6,
        }
    }
}

/// Which way traffic goes, seen from the endpoint: `Ingress` is to it (Felix's `cali-tw-`
/// chain, policy chains `cali-pi-`), `Egress` from it (`cali-fw-`, `cali-po-`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
pub enum Direction {
    Ingress,
    Egress,
}

impl Direction {
    pub const ALL: [Direction; 2] = [Direction::Ingress, Direction::Egress];
}

// ---------------------------------------------------------------------------------------------
// IP sets

/// A Calico IP set id, stable across restarts and nodes: `s:` + base64url(SHA-224) of the
/// canonical selector for a selector set, `n:` + the hash of `<selector id>,<protocol>,<name>`
/// for a named-port set (`felix/calc/rule_scanner.go` `IPSetData.UniqueID`).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(transparent)]
pub struct SetId(Arc<str>);

impl SetId {
    pub(crate) fn new(id: String) -> SetId {
        SetId(id.into())
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Whether this is a named-port set (members are address · protocol · port).
    pub fn is_named_port(&self) -> bool {
        self.0.starts_with("n:")
    }
}

impl fmt::Display for SetId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// One dataplane set: an id in one family.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
pub struct SetKey {
    pub id: SetId,
    pub family: IpFamily,
}

impl SetKey {
    /// Felix's ipset name: `cali40` (v4) or `cali60` (v6) + the id, cut to 31 characters
    /// (`felix/ipsets/ipset_defs.go`), e.g. `cali40s:qMt7iLlGDhvLnCjM0l9nzxb`.
    pub fn calico_name(&self) -> String {
        let prefix = match self.family {
            IpFamily::V4 => "cali40",
            IpFamily::V6 => "cali60",
        };
        let mut name = format!("{prefix}{}", self.id);
        name.truncate(31);
        name
    }

    /// Felix's nftables set name: the ipset name with `:` as `-` (`felix/nftables/ipsets.go`).
    pub fn nft_name(&self) -> String {
        self.calico_name().replace(':', "-")
    }
}

/// What a set holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
pub enum SetKind {
    /// Networks (endpoint addresses and network sets' nets): nft `type ipv4_addr; flags
    /// interval`. Members may overlap (a network set's /16 and a pod's /32 in it).
    Net,
    /// Address · protocol · port triples of named ports: nft `ipv4_addr . inet_proto .
    /// inet_service`.
    NamedPort,
}

/// A set member.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
pub enum Member {
    Net(IpNet),
    AddrPort { addr: IpAddr, protocol: u8, port: u16 },
}

impl Member {
    pub fn family(&self) -> IpFamily {
        match self {
            Member::Net(n) => IpFamily::of_net(n),
            Member::AddrPort { addr, .. } => IpFamily::of_addr(addr),
        }
    }
}

/// A set with its members.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct IpSet {
    pub key: SetKey,
    pub kind: SetKind,
    /// What the set is for, to show users: the canonical selector, and for a named-port set
    /// `named port <name> (<protocol>) of <selector>`.
    pub comment: String,
    pub members: BTreeSet<Member>,
}

// ---------------------------------------------------------------------------------------------
// Rules

/// What a matching rule does.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
pub enum Action {
    Allow,
    Deny,
    /// Skip the rest of the tier (a no-op in a profile).
    Pass,
    /// Log with this prefix (Felix's `LogPrefix` with `%t %k %n %p` filled in), then go on.
    Log {
        prefix: String,
    },
}

/// An inclusive port range; a single port has `first == last`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
pub struct PortRange {
    pub first: u16,
    pub last: u16,
}

impl PortRange {
    pub fn contains(&self, port: u16) -> bool {
        (self.first..=self.last).contains(&port)
    }
}

/// An ICMP (v4 rule list) or ICMPv6 (v6 rule list) type, and code if given.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
pub struct Icmp {
    pub icmp_type: u8,
    pub code: Option<u8>,
}

/// Conditions on one side of a packet (its source or its destination). Empty lists match
/// everything. Lists are boxed slices (16 bytes, not a `Vec`'s 24): a node keeps two sides of
/// every rule of every policy (20 000 with 1000 policies of 10 rules).
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, Serialize)]
pub struct PeerMatch {
    /// The address is in one of these (masked, of the list's family).
    pub nets: Box<[IpNet]>,
    /// The address is in none of these.
    pub not_nets: Box<[IpNet]>,
    /// The address is in each of these selector sets.
    pub sets: Box<[SetId]>,
    /// The address is in none of these selector sets.
    pub not_sets: Box<[SetId]>,
    /// The port is in one of these ranges, or address · protocol · port is in one of the
    /// `named_port_sets` (one condition: either list may satisfy it).
    pub ports: Box<[PortRange]>,
    pub named_port_sets: Box<[SetId]>,
    /// The port is in none of these ranges and address · protocol · port is in none of the
    /// `not_named_port_sets`.
    pub not_ports: Box<[PortRange]>,
    pub not_named_port_sets: Box<[SetId]>,
}

impl PeerMatch {
    pub fn is_empty(&self) -> bool {
        *self == PeerMatch::default()
    }

    /// Every set this side refers to.
    pub fn set_ids(&self) -> impl Iterator<Item = &SetId> {
        self.sets
            .iter()
            .chain(&self.not_sets)
            .chain(&self.named_port_sets)
            .chain(&self.not_named_port_sets)
    }
}

/// One rule for one family.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
pub struct Rule {
    pub action: Action,
    /// IP protocol number (TCP 6, UDP 17, ICMP 1, ICMPv6 58, SCTP 132, UDP-Lite 136, …).
    pub protocol: Option<u8>,
    pub not_protocol: Option<u8>,
    pub src: PeerMatch,
    pub dst: PeerMatch,
    pub icmp: Option<Icmp>,
    /// Not (this type, and this code when given).
    pub not_icmp: Option<Icmp>,
    /// The rule's `metadata.annotations` as `key=value`, for comments.
    pub comments: Box<[String]>,
}

impl Rule {
    /// A rule that matches everything.
    pub fn any(action: Action) -> Rule {
        Rule {
            action,
            protocol: None,
            not_protocol: None,
            src: PeerMatch::default(),
            dst: PeerMatch::default(),
            icmp: None,
            not_icmp: None,
            comments: Box::default(),
        }
    }

    /// Every set the rule refers to.
    pub fn set_ids(&self) -> impl Iterator<Item = &SetId> {
        self.src.set_ids().chain(self.dst.set_ids())
    }
}

/// A rule list per family.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, Serialize)]
pub struct FamilyRules {
    pub v4: Vec<Rule>,
    pub v6: Vec<Rule>,
}

impl FamilyRules {
    pub fn family(&self, family: IpFamily) -> &[Rule] {
        match family {
            IpFamily::V4 => &self.v4,
            IpFamily::V6 => &self.v6,
        }
    }
}

/// The kind of a policy (Felix's `types.PolicyID` kinds that reach workloads).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
pub enum PolicyKind {
    /// Namespaced, including Kubernetes policies converted to `knp.default.<name>`.
    NetworkPolicy,
    GlobalNetworkPolicy,
}

impl PolicyKind {
    /// The v3 kind name (used to break order ties, `felix/calc/policy_sorter.go`).
    pub fn name(self) -> &'static str {
        match self {
            PolicyKind::NetworkPolicy => "NetworkPolicy",
            PolicyKind::GlobalNetworkPolicy => "GlobalNetworkPolicy",
        }
    }

    /// Felix's short kind (`np`, `gnp`), used in chain names and log prefixes.
    pub fn short(self) -> &'static str {
        match self {
            PolicyKind::NetworkPolicy => "np",
            PolicyKind::GlobalNetworkPolicy => "gnp",
        }
    }
}

/// A policy's identity.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
pub struct PolicyId {
    pub kind: PolicyKind,
    /// Empty for a GlobalNetworkPolicy.
    pub namespace: String,
    pub name: String,
}

impl PolicyId {
    pub fn network(namespace: impl Into<String>, name: impl Into<String>) -> PolicyId {
        PolicyId {
            kind: PolicyKind::NetworkPolicy,
            namespace: namespace.into(),
            name: name.into(),
        }
    }

    pub fn global(name: impl Into<String>) -> PolicyId {
        PolicyId {
            kind: PolicyKind::GlobalNetworkPolicy,
            namespace: String::new(),
            name: name.into(),
        }
    }

    /// Felix v3.32's policy id: `np/<namespace>/<name>` or `gnp/<name>`.
    pub fn calico_id(&self) -> String {
        if self.namespace.is_empty() {
            format!("{}/{}", self.kind.short(), self.name)
        } else {
            format!("{}/{}/{}", self.kind.short(), self.namespace, self.name)
        }
    }

    /// Felix's chain name, `cali-pi-<id>` / `cali-po-<id>`, hashed to fit `max_len` (28 for
    /// iptables, 256 for nftables) as `libcalico-go/lib/hash` `GetLengthLimitedID` does.
    pub fn chain_name(&self, direction: Direction, max_len: usize) -> String {
        let prefix = match direction {
            Direction::Ingress => "cali-pi-",
            Direction::Egress => "cali-po-",
        };
        length_limited(prefix, &self.calico_id(), max_len)
    }
}

impl fmt::Display for PolicyId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.calico_id())
    }
}

/// The rules of one active policy (one that selects at least one local endpoint).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PolicyRules {
    pub id: PolicyId,
    pub tier: String,
    /// Empty for a direction the policy does not govern (its `types`).
    pub ingress: FamilyRules,
    pub egress: FamilyRules,
}

impl PolicyRules {
    pub fn rules(&self, direction: Direction) -> &FamilyRules {
        match direction {
            Direction::Ingress => &self.ingress,
            Direction::Egress => &self.egress,
        }
    }
}

/// Felix's profile chain name, `cali-pri-<name>` / `cali-pro-<name>`, hashed to fit `max_len`.
pub fn profile_chain_name(profile: &str, direction: Direction, max_len: usize) -> String {
    let prefix = match direction {
        Direction::Ingress => "cali-pri-",
        Direction::Egress => "cali-pro-",
    };
    length_limited(prefix, profile, max_len)
}

/// The rules of one active profile (named by a local endpoint). A profile that is named but
/// missing gets one Deny rule each way, so its endpoints are closed (Felix's `DummyDropRules`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ProfileRules {
    pub name: String,
    pub ingress: FamilyRules,
    pub egress: FamilyRules,
}

impl ProfileRules {
    pub fn rules(&self, direction: Direction) -> &FamilyRules {
        match direction {
            Direction::Ingress => &self.ingress,
            Direction::Egress => &self.egress,
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Endpoints

/// What happens at the end of a tier when no rule passed the packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
pub enum TierDefault {
    Deny,
    Pass,
}

/// One tier as it applies to one endpoint in one direction: only the policies that select the
/// endpoint and govern the direction, in order. A tier with none is not listed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TierPolicies {
    pub name: String,
    pub default_action: TierDefault,
    pub policies: Vec<PolicyId>,
}

/// What one direction of an endpoint runs: tiers, then profiles.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct EndpointDirection {
    pub tiers: Vec<TierPolicies>,
    pub profiles: Vec<String>,
}

/// A WorkloadEndpoint's identity: its namespace and name.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
pub struct EndpointKey {
    pub namespace: String,
    pub name: String,
}

impl EndpointKey {
    pub fn new(namespace: impl Into<String>, name: impl Into<String>) -> EndpointKey {
        EndpointKey {
            namespace: namespace.into(),
            name: name.into(),
        }
    }
}

impl fmt::Display for EndpointKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.namespace, self.name)
    }
}

/// A local workload endpoint as the dataplane programs it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Endpoint {
    pub key: EndpointKey,
    /// The host side of the veth (`cali…`).
    pub interface: String,
    /// Its `ipNetworks`, masked: the only sources it may send from (anti-spoofing).
    pub addrs: Vec<IpNet>,
    /// `allowSpoofedSourcePrefixes`: other sources it may send from.
    pub allow_spoofed_sources: Vec<IpNet>,
    pub ingress: EndpointDirection,
    pub egress: EndpointDirection,
}

impl Endpoint {
    pub fn direction(&self, direction: Direction) -> &EndpointDirection {
        match direction {
            Direction::Ingress => &self.ingress,
            Direction::Egress => &self.egress,
        }
    }

    /// Felix's endpoint chain name: `cali-tw-<interface>` (to the workload, ingress) or
    /// `cali-fw-<interface>` (from it, egress), hashed to fit `max_len`.
    pub fn chain_name(&self, direction: Direction, max_len: usize) -> String {
        let prefix = match direction {
            Direction::Ingress => "cali-tw-",
            Direction::Egress => "cali-fw-",
        };
        length_limited(prefix, &self.interface, max_len)
    }
}

#[cfg(test)]
mod tests {
    /// A node keeps every rule of every active policy (10 000 with 1000 policies of 10
    /// rules): lists are boxed slices, so a rule stays small.
    #[test]
    fn rules_stay_small() {
        let (rule, side) = (size_of::<super::Rule>(), size_of::<super::PeerMatch>());
        eprintln!("Rule {rule} B, PeerMatch {side} B");
        assert!(side <= 128 && rule <= 320, "Rule {rule} B, PeerMatch {side} B");
    }
}
