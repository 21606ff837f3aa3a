//! The chains around the policy rules (pure), in Felix's nftables layout (`felix/rules`:
//! `static.go`, `dispatch.go`, `endpoints.go`; names with the `filter-`/`raw-`/`nat-` layer
//! prefix of Felix's nftables mode):
//!
//! - `raw-PREROUTING` → `raw-cali-PREROUTING`: a packet from a workload interface whose source
//!   does not route back out of that interface is dropped (strict reverse-path check,
//!   `fib saddr . mark . iif oif 0`), unless `raw-cali-rpf-skip` allows it
//!   (`allowSpoofedSourcePrefixes`).
//! - `filter-INPUT` → `filter-cali-INPUT`: IPIP and VXLAN only from other nodes; workload →
//!   host traffic goes to `filter-cali-wl-to-host` (the workload's egress policy, then
//!   `DefaultEndpointToHostAction`).
//! - `filter-FORWARD` → `filter-cali-FORWARD` → `filter-cali-from-wl-dispatch` /
//!   `filter-cali-to-wl-dispatch`: verdict maps from interface to `filter-cali-fw-<if>` /
//!   `filter-cali-tw-<if>`; an interface not in the map is dropped ("Unknown interface"), so a
//!   new workload is closed until its chains are programmed.
//! - `filter-OUTPUT` → `filter-cali-OUTPUT`: host → workload traffic is never checked against
//!   the workload's ingress policy.
//! - the dispatch chains start with what Felix repeats in every endpoint chain: conntrack
//!   (established accepted, invalid dropped), clearing the marks, the workloads' tunnel drops.
//! - endpoint chains: tiers (end-of-tier drop), then profiles. An ingress Allow accepts in the
//!   policy chain (the ingress chain is the forward chain's last question), an egress Allow
//!   sets the accept mark that the endpoint chain tests.
//! - `nat-POSTROUTING` → `nat-cali-nat-outgoing`: NAT outgoing from the IP pools.

use std::net::IpAddr;

use brindle_netlink::nftables::Elements;
use brindle_netlink::nftables::{
    ChainSpec, DataType, Family, HookPoint, Rule, SetSpec, Side, Verdict, ct_state, priority,
};
use brindle_policy::ir::{self, Direction, EndpointToHostAction, IpFamily, TierDefault};
use ipnet::IpNet;

use super::marks::{ACCEPT, CLEAR, PASS};
use crate::firewall::Chain;

/// Names' room: nft allows 255 bytes; the layer prefix takes 7.
pub const NAME_MAX: usize = 240;

pub const FROM_WL_DISPATCH: &str = "filter-cali-from-wl-dispatch";
pub const TO_WL_DISPATCH: &str = "filter-cali-to-wl-dispatch";
pub const WL_TO_HOST: &str = "filter-cali-wl-to-host";
pub const RPF_SKIP: &str = "raw-cali-rpf-skip";

pub fn policy_chain(id: &ir::PolicyId, d: Direction) -> String {
    format!("filter-{}", id.chain_name(d, NAME_MAX))
}

pub fn profile_chain(name: &str, d: Direction) -> String {
    format!("filter-{}", ir::profile_chain_name(name, d, NAME_MAX))
}

pub fn endpoint_chain(e: &ir::Endpoint, d: Direction) -> String {
    format!("filter-{}", e.chain_name(d, NAME_MAX))
}

/// `<prefix>*` patterns of the workload interface prefixes.
fn wildcards(prefixes: &[String]) -> impl Iterator<Item = String> + '_ {
    prefixes.iter().map(|p| format!("{p}*"))
}

/// Per-family names (`cali40…`/`cali60…`).
pub fn fam_name(f: IpFamily, stem: &str) -> String {
    format!("cali{}0{stem}", f.version())
}

fn addr_type(f: IpFamily) -> DataType {
    match f {
        IpFamily::V4 => DataType::Ipv4Addr,
        IpFamily::V6 => DataType::Ipv6Addr,
    }
}

/// A nets set of family `f`.
pub fn nets_set(f: IpFamily, name: &str, nets: &[IpNet], comment: Option<&str>) -> (SetSpec, Elements) {
    let mut spec = SetSpec::new(name, &[addr_type(f)]).interval();
    if let Some(c) = comment {
        spec = spec.with_comment(c);
    }
    (spec, Elements::Nets(nets.to_vec()))
}

fn base(name: &str, kind: &'static str, point: HookPoint, prio: i32, jump_to: &str) -> Chain {
    Chain::new(
        ChainSpec::base(name, kind, point, prio),
        vec![Rule::new().jump(jump_to)],
    )
}

/// `raw-PREROUTING` and `raw-cali-PREROUTING`.
pub fn raw(prefixes: &[String], rpf_skip: bool) -> Vec<Chain> {
    let mut rules = Vec::new();
    for w in wildcards(prefixes) {
        if rpf_skip {
            rules.push(Rule::new().iifname(&w).jump(RPF_SKIP));
        }
        rules.push(
            Rule::new()
                .iifname(&w)
                .fib_rpf_fails()
                .counter()
                .drop()
                .comment("Drop packets from workloads with a source that does not route back to them"),
        );
    }
    vec![
        base(
            "raw-PREROUTING",
            "filter",
            HookPoint::Prerouting,
            priority::RAW,
            "raw-cali-PREROUTING",
        ),
        Chain::new(ChainSpec::regular("raw-cali-PREROUTING"), rules),
    ]
}

/// `raw-cali-rpf-skip`: the sources each workload may send from besides its own.
pub fn rpf_skip<'a>(f: IpFamily, endpoints: impl Iterator<Item = &'a ir::Endpoint>) -> Chain {
    let mut rules = Vec::new();
    for e in endpoints {
        for n in e
            .allow_spoofed_sources
            .iter()
            .filter(|n| ir::IpFamily::of_net(n) == f)
        {
            rules.push(
                Rule::new()
                    .iifname(&e.interface)
                    .addr(Side::Src, n, false)
                    .accept(),
            );
        }
    }
    Chain::new(ChainSpec::regular(RPF_SKIP), rules)
}

/// Guards against tunnel packets from hosts that are not nodes (`filter-cali-INPUT`'s first
/// rules, Felix's "Drop IPinIP/VXLAN packets from non-Calico hosts").
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TunnelGuards {
    pub ipip: bool,
    pub vxlan_port: Option<u16>,
}

pub const ALL_HOSTS: &str = "cali40all-hosts-net";

/// `filter-INPUT` and `filter-cali-INPUT`.
pub fn input(f: IpFamily, prefixes: &[String], guards: &TunnelGuards, policy: bool) -> Vec<Chain> {
    let mut rules = Vec::new();
    if f == IpFamily::V4 {
        if guards.ipip {
            rules.push(
                Rule::new()
                    .l4proto(4, false)
                    .addr_in(Family::V4, Side::Src, ALL_HOSTS, true)
                    .counter()
                    .drop()
                    .comment("Drop IPinIP packets from non-Calico hosts"),
            );
        }
        if let Some(port) = guards.vxlan_port {
            rules.push(
                Rule::new()
                    .l4proto(17, false)
                    .port(Side::Dst, port, port, false)
                    .addr_in(Family::V4, Side::Src, ALL_HOSTS, true)
                    .fib_daddr_local(false)
                    .counter()
                    .drop()
                    .comment("Drop VXLAN packets from non-Calico hosts"),
            );
        }
    }
    if policy {
        for w in wildcards(prefixes) {
            rules.push(Rule::new().iifname(&w).goto(WL_TO_HOST));
        }
    }
    vec![
        base(
            "filter-INPUT",
            "filter",
            HookPoint::Input,
            priority::FILTER,
            "filter-cali-INPUT",
        ),
        Chain::new(ChainSpec::regular("filter-cali-INPUT"), rules),
    ]
}

/// `filter-cali-wl-to-host`: the workload's egress policy, then `DefaultEndpointToHostAction`.
pub fn wl_to_host(f: IpFamily, action: EndpointToHostAction) -> Chain {
    let mut rules = Vec::new();
    if f == IpFamily::V6 {
        // Neighbour discovery and MLD (130–133, 135, 136) before any policy, as Felix.
        for t in [130, 131, 132, 133, 135, 136] {
            rules.push(Rule::new().icmp(Family::V6, t, None, false).accept());
        }
    }
    rules.push(Rule::new().jump(FROM_WL_DISPATCH));
    let r = Rule::new();
    let r = match action {
        EndpointToHostAction::Accept => r.accept(),
        EndpointToHostAction::Drop => r.counter().drop(),
        EndpointToHostAction::Return => r.ret(),
    };
    rules.push(r.comment("Configured DefaultEndpointToHostAction"));
    Chain::new(ChainSpec::regular(WL_TO_HOST), rules)
}

/// `filter-FORWARD`, `filter-cali-FORWARD`, the dispatch chains, `filter-OUTPUT` and
/// `filter-cali-OUTPUT`.
///
/// What Felix repeats at the top of every endpoint chain is said once, in the dispatch chains,
/// before the map: established and related packets are accepted and invalid ones dropped
/// (conntrack first: a policy change never cuts an established flow, and nothing of
/// an established flow is looked up again), the accept/pass marks cleared, and (from
/// workloads) VXLAN and IPIP packets dropped unless allowed. Every endpoint chain is entered
/// through its dispatch chain, so the packets that reach it are the same.
pub fn forward(prefixes: &[String], settings: &ir::Settings) -> Vec<Chain> {
    let mut fwd = Vec::new();
    for w in wildcards(prefixes) {
        fwd.push(Rule::new().iifname(&w).jump(FROM_WL_DISPATCH));
    }
    for w in wildcards(prefixes) {
        fwd.push(Rule::new().oifname(&w).jump(TO_WL_DISPATCH));
    }
    let out: Vec<Rule> = wildcards(prefixes)
        .map(|w| {
            Rule::new()
                .oifname(&w)
                .ret()
                .comment("Host to workload: not subject to the workload's ingress policy")
        })
        .collect();
    let dispatch = |name: &str, input: bool| {
        let mut rules = vec![
            Rule::new()
                .ct_state(ct_state::ESTABLISHED | ct_state::RELATED)
                .accept(),
            Rule::new().ct_state(ct_state::INVALID).counter().drop(),
            Rule::new().and_mark(CLEAR),
        ];
        if input {
            if !settings.allow_vxlan_packets_from_workloads {
                rules.push(
                    Rule::new()
                        .l4proto(17, false)
                        .port(Side::Dst, settings.vxlan_port, settings.vxlan_port, false)
                        .counter()
                        .drop()
                        .comment("Drop VXLAN encapped packets originating in workloads"),
                );
            }
            if !settings.allow_ipip_packets_from_workloads {
                rules.push(
                    Rule::new()
                        .l4proto(4, false)
                        .counter()
                        .drop()
                        .comment("Drop IPinIP encapped packets originating in workloads"),
                );
            }
        }
        rules.push(Rule::new().ifname_vmap(input, name));
        rules.push(Rule::new().counter().drop().comment("Unknown interface"));
        Chain::new(ChainSpec::regular(name), rules)
    };
    vec![
        base(
            "filter-FORWARD",
            "filter",
            HookPoint::Forward,
            priority::FILTER,
            "filter-cali-FORWARD",
        ),
        Chain::new(ChainSpec::regular("filter-cali-FORWARD"), fwd),
        dispatch(FROM_WL_DISPATCH, true),
        dispatch(TO_WL_DISPATCH, false),
        base(
            "filter-OUTPUT",
            "filter",
            HookPoint::Output,
            priority::FILTER,
            "filter-cali-OUTPUT",
        ),
        Chain::new(ChainSpec::regular("filter-cali-OUTPUT"), out),
    ]
}

/// An IPv6 table whose policy is not programmed: workload traffic is not forwarded.
pub fn forward_closed(prefixes: &[String]) -> Vec<Chain> {
    let mut rules = Vec::new();
    for w in wildcards(prefixes) {
        rules.push(
            Rule::new()
                .iifname(&w)
                .counter()
                .drop()
                .comment("IPv6 policy is not programmed"),
        );
        rules.push(
            Rule::new()
                .oifname(&w)
                .counter()
                .drop()
                .comment("IPv6 policy is not programmed"),
        );
    }
    vec![Chain::new(
        ChainSpec::base("filter-FORWARD", "filter", HookPoint::Forward, priority::FILTER),
        rules,
    )]
}

/// The dispatch maps' specs.
pub fn dispatch_map(name: &str) -> SetSpec {
    SetSpec::new(name, &[DataType::Ifname]).verdict_map()
}

/// The dispatch maps' elements: every endpoint's interface → its chain.
pub fn dispatch_elements<'a>(
    endpoints: impl Iterator<Item = &'a ir::Endpoint> + Clone,
) -> (Elements, Elements) {
    let from = endpoints
        .clone()
        .map(|e| {
            (
                e.interface.clone(),
                Verdict::Goto(endpoint_chain(e, Direction::Egress)),
            )
        })
        .collect();
    let to = endpoints
        .map(|e| {
            (
                e.interface.clone(),
                Verdict::Goto(endpoint_chain(e, Direction::Ingress)),
            )
        })
        .collect();
    (Elements::IfVerdicts(from), Elements::IfVerdicts(to))
}

/// What a policy's (or profile's) rule list for one direction and family can do, as far as
/// the endpoint chain cares: whether there is anything to jump to, and whether it can pass
/// the packet on or allow it (so the endpoint chain tests marks only where they can be set).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Shape {
    pub rules: bool,
    pub pass: bool,
    pub allow: bool,
}

impl Shape {
    pub fn of(rules: &[ir::Rule]) -> Shape {
        Shape {
            rules: !rules.is_empty(),
            pass: rules.iter().any(|r| r.action == ir::Action::Pass),
            allow: rules.iter().any(|r| r.action == ir::Action::Allow),
        }
    }
}

/// What an endpoint chain may jump to: `None` for a policy or profile missing from the state
/// (replaced by a drop: fail closed).
pub trait Known {
    fn policy(&self, id: &ir::PolicyId, d: Direction, f: IpFamily) -> Option<Shape>;
    fn profile(&self, name: &str, d: Direction, f: IpFamily) -> Option<Shape>;
}

/// `filter-cali-tw-<if>` (ingress) or `filter-cali-fw-<if>` (egress) of family `f`: the tiers,
/// then the profiles. Conntrack, the marks and the tunnel drops come before, in the dispatch
/// chain ([`forward`]). A policy with no rules here is not jumped to; the pass mark is tested
/// only after a policy that can set it, the accept mark only after an egress one that can.
pub fn endpoint(e: &ir::Endpoint, d: Direction, f: IpFamily, known: &dyn Known) -> Chain {
    let mut rules = Vec::new();
    let dir = e.direction(d);
    let unless_passed = |can_pass: bool| {
        if can_pass {
            Rule::new().mark(PASS, 0)
        } else {
            Rule::new()
        }
    };
    let mut passed_before = false;
    for (t, tier) in dir.tiers.iter().enumerate() {
        if t > 0 && passed_before {
            rules.push(
                Rule::new()
                    .and_mark(!PASS)
                    .comment(&format!("Start of tier {}", tier.name)),
            );
        }
        let mut can_pass = false;
        for id in &tier.policies {
            let Some(shape) = known.policy(id, d, f) else {
                rules.push(
                    unless_passed(can_pass)
                        .counter()
                        .drop()
                        .comment(&format!("Policy {id} is not programmed")),
                );
                continue;
            };
            if !shape.rules {
                continue;
            }
            rules.push(unless_passed(can_pass).jump(&policy_chain(id, d)));
            if d == Direction::Egress && shape.allow {
                // (An ingress Allow accepts in the policy chain itself, see `rules`.)
                rules.push(
                    Rule::new()
                        .mark(ACCEPT, ACCEPT)
                        .ret()
                        .comment("Return if policy accepted"),
                );
            }
            can_pass |= shape.pass;
        }
        if tier.default_action == TierDefault::Deny {
            rules.push(unless_passed(can_pass).counter().drop().comment(&format!(
                "End of tier {}. Drop if no policies passed packet",
                tier.name
            )));
        }
        passed_before |= can_pass;
    }
    for p in &dir.profiles {
        let Some(shape) = known.profile(p, d, f) else {
            rules.push(
                Rule::new()
                    .counter()
                    .drop()
                    .comment(&format!("Profile {p} is not programmed")),
            );
            break;
        };
        if !shape.rules {
            continue;
        }
        rules.push(Rule::new().jump(&profile_chain(p, d)));
        if d == Direction::Egress && shape.allow {
            rules.push(
                Rule::new()
                    .mark(ACCEPT, ACCEPT)
                    .ret()
                    .comment("Return if profile accepted"),
            );
        }
    }
    rules.push(
        Rule::new()
            .counter()
            .drop()
            .comment("Drop if no profiles matched"),
    );
    Chain::new(ChainSpec::regular(endpoint_chain(e, d)), rules)
}

/// NAT outgoing pools of one family (docs/CALICO.md §5's NAT outgoing rule, Felix's set names).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NatPools {
    /// Pools with `natOutgoing: true`.
    pub masq: Vec<IpNet>,
    /// Every pool.
    pub all: Vec<IpNet>,
}

/// `nat-POSTROUTING`, `nat-cali-nat-outgoing` and their sets for family `f`; `tunl0`: the
/// host's own traffic down tunl0 leaves with the tunnel address (Felix's rule).
pub fn nat(f: IpFamily, pools: &NatPools, tunl0: bool) -> (Vec<Chain>, Vec<(SetSpec, Elements)>) {
    let masq = fam_name(f, "masq-ipam-pools");
    let all = fam_name(f, "all-ipam-pools");
    let fam = super::rules::family(f);
    let mut out = Vec::new();
    if !pools.masq.is_empty() {
        out.push(
            Rule::new()
                .addr_in(fam, Side::Src, &masq, false)
                .addr_in(fam, Side::Dst, &all, true)
                .counter()
                .masquerade(),
        );
    }
    let mut post = vec![Rule::new().jump("nat-cali-nat-outgoing")];
    if tunl0 && f == IpFamily::V4 {
        post.push(
            Rule::new()
                .oifname("tunl0")
                .fib_saddr_oif_local(true)
                .fib_saddr_local(false)
                .counter()
                .masquerade(),
        );
    }
    (
        vec![
            Chain::new(
                ChainSpec::base("nat-POSTROUTING", "nat", HookPoint::Postrouting, priority::SRCNAT),
                post,
            ),
            Chain::new(ChainSpec::regular("nat-cali-nat-outgoing"), out),
        ],
        vec![
            nets_set(f, &masq, &pools.masq, None),
            nets_set(f, &all, &pools.all, None),
        ],
    )
}

/// The other nodes' addresses, for the tunnel guards.
pub fn all_hosts(peers: &[IpAddr]) -> (SetSpec, Elements) {
    let nets: Vec<IpNet> = peers
        .iter()
        .filter(|a| a.is_ipv4())
        .map(|a| IpNet::from(*a))
        .collect();
    nets_set(IpFamily::V4, ALL_HOSTS, &nets, None)
}
