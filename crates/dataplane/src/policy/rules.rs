//! One IR rule → nft rules (pure). The IR's conditions are ANDed; inside `nets`, `ports` +
//! `named_port_sets` the entries are alternatives. Several nets or several port ranges become
//! one lookup in a named set of Brindle's (`cali40-nets-…`, `cali-ports-…`, named after a hash
//! of their content, shared by every rule with the same list); never an anonymous set per rule,
//! which costs the kernel a set per rule. Ports and named ports are different keys, so a rule
//! with both is written once per alternative (for a Log rule, the alternatives set a scratch
//! mark and one rule logs, so a packet is logged once).
//!
//! Allow differs by direction. Egress (`cali-po-`/`cali-pro-` chains) sets Felix's accept mark
//! and returns, as Felix does: the packet may still meet the destination's ingress chain, or
//! `DefaultEndpointToHostAction`. Ingress (`cali-pi-`/`cali-pri-`) accepts at once: a packet's
//! ingress chain is the last thing Brindle's forward chain asks (egress is asked first), so
//! accepting there decides the same thing, with three expressions fewer per rule for the
//! kernel to load and the endpoint chain no mark test after each policy.

use brindle_netlink::nftables::Elements;
use brindle_netlink::nftables::{DataType, Family, Rule, SetSpec, Side};
use brindle_policy::ir::{self, Action, Direction, IpFamily, PeerMatch, PortRange, SetKey};
use ipnet::IpNet;
use sha1::{Digest, Sha1};

use super::marks::{ACCEPT, PASS, SCRATCH};

/// The static set of protocols that have ports (TCP, UDP, SCTP, UDP-Lite), for port matches of
/// rules without a protocol.
pub const PORT_PROTOCOLS: &str = "cali-port-protocols";

/// How Log rules are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LogLimit {
    /// Packets logged per second per rule (then `burst`).
    pub per_second: u64,
    pub burst: u32,
}

impl Default for LogLimit {
    fn default() -> LogLimit {
        LogLimit {
            per_second: 10,
            burst: 5,
        }
    }
}

/// What a rule list is rendered for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ctx {
    pub family: IpFamily,
    pub direction: Direction,
    pub log: LogLimit,
}

/// A set a rule needs besides the IR's: its name, spec and elements.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuxSet {
    pub name: String,
    pub spec: SetSpec,
    pub elements: Elements,
}

pub fn family(f: IpFamily) -> Family {
    match f {
        IpFamily::V4 => Family::V4,
        IpFamily::V6 => Family::V6,
    }
}

fn digest(parts: impl Iterator<Item = String>) -> String {
    let mut h = Sha1::new();
    for p in parts {
        h.update(p.as_bytes());
        h.update(b",");
    }
    h.finalize()[..8].iter().map(|b| format!("{b:02x}")).collect()
}

fn nets_set(f: IpFamily, nets: &[IpNet]) -> AuxSet {
    let mut v: Vec<IpNet> = nets.iter().map(|n| n.trunc()).collect();
    v.sort();
    v.dedup();
    let name = format!(
        "cali{}0-nets-{}",
        f.version(),
        digest(v.iter().map(|n| n.to_string()))
    );
    let key = match f {
        IpFamily::V4 => DataType::Ipv4Addr,
        IpFamily::V6 => DataType::Ipv6Addr,
    };
    AuxSet {
        spec: SetSpec::new(&name, &[key]).interval(),
        name,
        elements: Elements::Nets(v),
    }
}

fn ports_set(ranges: &[PortRange]) -> AuxSet {
    let mut v: Vec<(u16, u16)> = ranges.iter().map(|r| (r.first, r.last)).collect();
    v.sort();
    v.dedup();
    let name = format!("cali-ports-{}", digest(v.iter().map(|(a, b)| format!("{a}-{b}"))));
    AuxSet {
        spec: SetSpec::new(&name, &[DataType::InetService]).interval(),
        name,
        elements: Elements::Ports(v),
    }
}

fn set_name(id: &ir::SetId, f: IpFamily) -> String {
    SetKey {
        id: id.clone(),
        family: f,
    }
    .nft_name()
}

/// One alternative of a side's port condition.
#[derive(Clone)]
enum PortAlt<'a> {
    Ports(&'a [PortRange]),
    Named(&'a ir::SetId),
}

fn port_alts(m: &PeerMatch) -> Vec<Option<PortAlt<'_>>> {
    if m.ports.is_empty() && m.named_port_sets.is_empty() {
        return vec![None];
    }
    let mut v = Vec::new();
    if !m.ports.is_empty() {
        v.push(Some(PortAlt::Ports(&m.ports)));
    }
    v.extend(m.named_port_sets.iter().map(|s| Some(PortAlt::Named(s))));
    v
}

/// The conditions of one side that are not alternatives: nets, sets, negated ports.
fn side(mut r: Rule, f: IpFamily, s: Side, m: &PeerMatch, aux: &mut Vec<AuxSet>) -> Option<Rule> {
    let fam = family(f);
    let nets: Vec<&IpNet> = m.nets.iter().collect();
    if !nets.is_empty() && !nets.iter().any(|n| n.prefix_len() == 0) {
        if nets.len() == 1 {
            r = r.addr(s, nets[0], false);
        } else {
            let set = nets_set(f, &m.nets);
            r = r.addr_in(fam, s, &set.name, false);
            aux.push(set);
        }
    }
    if m.not_nets.iter().any(|n| n.prefix_len() == 0) {
        // Not in everything: the rule can never match.
        return None;
    }
    match m.not_nets.len() {
        0 => {}
        1 => r = r.addr(s, &m.not_nets[0], true),
        _ => {
            let set = nets_set(f, &m.not_nets);
            r = r.addr_in(fam, s, &set.name, true);
            aux.push(set);
        }
    }
    for id in &m.sets {
        r = r.addr_in(fam, s, &set_name(id, f), false);
    }
    for id in &m.not_sets {
        r = r.addr_in(fam, s, &set_name(id, f), true);
    }
    match &*m.not_ports {
        [] => {}
        [one] => r = r.port(s, one.first, one.last, true),
        many => {
            let set = ports_set(many);
            r = r.port_in(s, &set.name, true);
            aux.push(set);
        }
    }
    for id in &m.not_named_port_sets {
        r = r.addr_proto_port_in(fam, s, &set_name(id, f), true);
    }
    Some(r)
}

fn port_alt(r: Rule, f: IpFamily, s: Side, alt: &Option<PortAlt<'_>>, aux: &mut Vec<AuxSet>) -> Rule {
    match alt {
        None => r,
        Some(PortAlt::Ports([one])) => r.port(s, one.first, one.last, false),
        Some(PortAlt::Ports(many)) => {
            let set = ports_set(many);
            let r = r.port_in(s, &set.name, false);
            aux.push(set);
            r
        }
        Some(PortAlt::Named(id)) => r.addr_proto_port_in(family(f), s, &set_name(id, f), false),
    }
}

fn log_prefix(prefix: &str) -> String {
    if prefix.ends_with(' ') {
        prefix.to_string()
    } else {
        format!("{prefix}: ")
    }
}

fn act(r: Rule, action: &Action, ctx: Ctx) -> Rule {
    let log = ctx.log;
    match action {
        Action::Allow if ctx.direction == Direction::Ingress => r.accept(),
        Action::Allow => r.set_mark_bits(ACCEPT).ret(),
        Action::Deny => r.counter().drop(),
        Action::Pass => r.set_mark_bits(PASS).ret(),
        Action::Log { prefix } => r
            .limit_per_second(log.per_second, log.burst)
            .log(&log_prefix(prefix), 5),
    }
}

/// The nft rules of one IR rule, appended to `out`; sets it needs go to `aux`.
pub fn render(rule: &ir::Rule, ctx: Ctx, out: &mut Vec<Rule>, aux: &mut Vec<AuxSet>) {
    let f = ctx.family;
    let fam = family(f);
    let icmp_proto = match f {
        IpFamily::V4 => 1,
        IpFamily::V6 => 58,
    };
    let mut base = Rule::new();
    let has_icmp = rule.icmp.is_some() || rule.not_icmp.is_some();
    if let Some(p) = rule.protocol
        && !(has_icmp && p == icmp_proto)
    {
        base = base.l4proto(p, false);
    }
    if let Some(p) = rule.not_protocol {
        base = base.l4proto(p, true);
    }
    let needs_ports = [&rule.src, &rule.dst]
        .iter()
        .any(|m| !m.ports.is_empty() || !m.not_ports.is_empty());
    if needs_ports && rule.protocol.is_none() {
        base = base.l4proto_in(PORT_PROTOCOLS);
    }
    let Some(b) = side(base, f, Side::Src, &rule.src, aux) else {
        return;
    };
    let Some(mut base) = side(b, f, Side::Dst, &rule.dst, aux) else {
        return;
    };
    if let Some(i) = &rule.icmp {
        base = base.icmp(fam, i.icmp_type, i.code, false);
    }
    if let Some(i) = &rule.not_icmp {
        base = base.icmp(fam, i.icmp_type, i.code, true);
    }
    let comment = (!rule.comments.is_empty()).then(|| rule.comments.join("; "));
    let finish = |r: Rule| match &comment {
        Some(c) => r.comment(c),
        None => r,
    };
    let src_alts = port_alts(&rule.src);
    let dst_alts = port_alts(&rule.dst);
    let combos: Vec<(&Option<PortAlt<'_>>, &Option<PortAlt<'_>>)> = src_alts
        .iter()
        .flat_map(|s| dst_alts.iter().map(move |d| (s, d)))
        .collect();
    let log_once = matches!(rule.action, Action::Log { .. }) && combos.len() > 1;
    for (s, d) in &combos {
        let r = port_alt(base.clone(), f, Side::Src, s, aux);
        let r = port_alt(r, f, Side::Dst, d, aux);
        if log_once {
            out.push(finish(r.set_mark_bits(SCRATCH)));
        } else {
            out.push(finish(act(r, &rule.action, ctx)));
        }
    }
    if log_once {
        out.push(finish(act(Rule::new().mark(SCRATCH, SCRATCH), &rule.action, ctx)));
        out.push(Rule::new().and_mark(!SCRATCH));
    }
}

/// The rules of a rule list.
pub fn render_list(rules: &[ir::Rule], ctx: Ctx, aux: &mut Vec<AuxSet>) -> Vec<Rule> {
    let mut out = Vec::with_capacity(rules.len());
    for r in rules {
        render(r, ctx, &mut out, aux);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use brindle_policy::ir::{Icmp, PortRange};

    fn ctx(family: IpFamily, direction: Direction) -> Ctx {
        Ctx {
            family,
            direction,
            log: LogLimit::default(),
        }
    }

    fn text(rules: &[Rule]) -> Vec<String> {
        rules.iter().map(|r| r.text.clone()).collect()
    }

    fn net(s: &str) -> IpNet {
        s.parse().unwrap()
    }

    fn sid(s: &str) -> ir::SetId {
        brindle_policy::names::selector_set_id(s)
    }

    #[test]
    fn allow_tcp_from_a_selector_to_a_port() {
        let mut r = ir::Rule::any(Action::Allow);
        r.protocol = Some(6);
        r.src.sets = vec![sid("app == 'web'")].into();
        r.dst.ports = vec![PortRange { first: 80, last: 81 }].into();
        let mut aux = Vec::new();
        let out = render_list(&[r.clone()], ctx(IpFamily::V4, Direction::Egress), &mut aux);
        let name = set_name(&sid("app == 'web'"), IpFamily::V4);
        assert!(name.starts_with("cali40s-") && name.len() == 31, "{name}");
        assert_eq!(
            text(&out),
            [format!(
                "meta l4proto 6 ip saddr @{name} th dport 80-81 meta mark set meta mark | 0x00010000 return"
            )]
        );
        assert!(aux.is_empty());
        let out = render_list(&[r], ctx(IpFamily::V4, Direction::Ingress), &mut aux);
        assert_eq!(
            text(&out),
            [format!("meta l4proto 6 ip saddr @{name} th dport 80-81 accept")],
            "ingress accepts at once"
        );
    }

    #[test]
    fn several_nets_and_ports_go_to_shared_sets() {
        let mut r = ir::Rule::any(Action::Deny);
        r.protocol = Some(17);
        r.dst.nets = vec![net("10.0.0.0/8"), net("192.168.0.0/16")].into();
        r.dst.not_nets = vec![net("10.1.0.0/16"), net("10.2.0.0/16")].into();
        r.dst.ports = vec![
            PortRange { first: 53, last: 53 },
            PortRange {
                first: 5353,
                last: 5353,
            },
        ]
        .into();
        let mut aux = Vec::new();
        let out = render_list(&[r.clone(), r], ctx(IpFamily::V4, Direction::Ingress), &mut aux);
        assert_eq!(out.len(), 2);
        assert_eq!(out[0], out[1]);
        assert!(
            out[0].text.starts_with("meta l4proto 17 ip daddr @cali40-nets-"),
            "{}",
            out[0].text
        );
        assert!(out[0].text.contains("ip daddr != @cali40-nets-"));
        assert!(out[0].text.ends_with("counter drop"));
        // Each list's set is named by its content: the same list, the same set.
        assert_eq!(aux.len(), 6);
        assert_eq!(aux[0], aux[3]);
        assert_eq!(aux[0].elements.nft(), ["10.0.0.0/8", "192.168.0.0/16"]);
    }

    #[test]
    fn ports_or_named_ports_are_alternatives_and_log_once() {
        let mut r = ir::Rule::any(Action::Log {
            prefix: "calico-packet".into(),
        });
        r.dst.ports = vec![PortRange { first: 80, last: 80 }].into();
        r.dst.named_port_sets =
            vec![brindle_policy::names::named_port_set_id(&sid("x"), "tcp", "http")].into();
        let mut aux = Vec::new();
        let out = render_list(&[r], ctx(IpFamily::V6, Direction::Egress), &mut aux);
        let t = text(&out);
        assert_eq!(t.len(), 4, "{t:?}");
        assert!(
            t[0].starts_with("meta l4proto @cali-port-protocols th dport 80 meta mark set"),
            "{t:?}"
        );
        assert!(
            t[1].starts_with(
                "meta l4proto @cali-port-protocols ip6 daddr . meta l4proto . th dport @cali60n-"
            ),
            "{t:?}"
        );
        assert_eq!(
            t[2],
            "meta mark & 0x00080000 == 0x00080000 limit rate 10/second burst 5 packets log prefix \"calico-packet: \" level notice"
        );
        assert_eq!(t[3], "meta mark set meta mark & 0xfff7ffff");
    }

    #[test]
    fn icmp_and_impossible_rules() {
        let mut r = ir::Rule::any(Action::Pass);
        r.protocol = Some(1);
        r.icmp = Some(Icmp {
            icmp_type: 8,
            code: Some(0),
        });
        let mut never = ir::Rule::any(Action::Allow);
        never.src.not_nets = vec![net("0.0.0.0/0")].into();
        let mut aux = Vec::new();
        let out = render_list(&[r, never], ctx(IpFamily::V4, Direction::Egress), &mut aux);
        assert_eq!(
            text(&out),
            ["icmp type 8 icmp code 0 meta mark set meta mark | 0x00020000 return"]
        );
    }
}
