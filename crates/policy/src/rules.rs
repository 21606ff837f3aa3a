//! One v3 rule list → IR rules per family plus the IP sets they use: Calico's
//! `RuleAPIV3ToBackend` (`updateprocessors/rules.go`), Felix's rule scanner
//! (`felix/calc/rule_scanner.go` `ruleToParsedRule`: selectors and named ports become set ids)
//! and the per-family filtering of `felix/rules/policy.go` (`FilterRuleToIPVersion`,
//! `filterNets`).

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use brindle_model::numorstring::{PROTOCOL_NAMES, Port, Protocol};
use brindle_model::resources::{Action as V3Action, IcmpFields, Rule as V3Rule};
use brindle_model::selector::Selector;
use ipnet::IpNet;

use crate::error::RuleError;
use crate::ir::{Action, FamilyRules, Icmp, IpFamily, PeerMatch, PortRange, Rule, SetId};
use crate::names::{named_port_set_id, selector_set_id};
use crate::selectors::{combine_positive_and_negated, entity_selector};

/// The protocol a named-port set is for: the rule's protocol, or any when it has none
/// (`felix/labelindex/ipsetmember` `Protocol`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(crate) enum NamedPortProtocol {
    Tcp,
    Udp,
    Sctp,
    Any,
}

impl NamedPortProtocol {
    fn for_rule(protocol: Option<&Protocol>) -> NamedPortProtocol {
        match protocol.map(protocol_number) {
            None => NamedPortProtocol::Any,
            Some(Ok(17)) => NamedPortProtocol::Udp,
            Some(Ok(132)) => NamedPortProtocol::Sctp,
            Some(_) => NamedPortProtocol::Tcp,
        }
    }

    fn name(self) -> &'static str {
        match self {
            NamedPortProtocol::Tcp => "tcp",
            NamedPortProtocol::Udp => "udp",
            NamedPortProtocol::Sctp => "sctp",
            NamedPortProtocol::Any => "any",
        }
    }

    /// Whether an endpoint port of `protocol` (a number, as [`endpoint_port_protocol`] gives)
    /// belongs in a set for this protocol.
    pub(crate) fn matches(self, protocol: u8) -> bool {
        match self {
            NamedPortProtocol::Tcp => protocol == 6,
            NamedPortProtocol::Udp => protocol == 17,
            NamedPortProtocol::Sctp => protocol == 132,
            NamedPortProtocol::Any => true,
        }
    }
}

/// An endpoint port's protocol as a number: UDP and SCTP, anything else TCP (Felix's
/// `ProtocolFrom`).
pub(crate) fn endpoint_port_protocol(protocol: &Protocol) -> u8 {
    match protocol_number(protocol) {
        Ok(17) => 17,
        Ok(132) => 132,
        _ => 6,
    }
}

/// A parsed selector with its set id (`s:` + the hash of its canonical text), shared by every
/// set and rule that uses it.
#[derive(Debug)]
pub(crate) struct SelectorInfo {
    pub selector: Selector,
    pub id: SetId,
}

/// Rule selectors parsed once per distinct text: policies repeat the same peers (a namespace,
/// an app) many times over, and parsing, printing and hashing dominate converting a rule.
#[derive(Default)]
pub(crate) struct SelectorCache {
    map: HashMap<String, Arc<SelectorInfo>>,
    /// The size after the last pruning.
    kept: usize,
}

impl SelectorCache {
    fn get(&mut self, text: &str) -> Result<Arc<SelectorInfo>, String> {
        if let Some(info) = self.map.get(text) {
            return Ok(info.clone());
        }
        let selector = Selector::parse(text).map_err(|e| e.reason)?;
        let id = selector_set_id(&selector.to_string());
        let info = Arc::new(SelectorInfo { selector, id });
        self.map.insert(text.to_string(), info.clone());
        Ok(info)
    }

    /// Forgets selectors nothing uses any more, once the cache has doubled since last time.
    pub fn prune(&mut self) {
        if self.map.len() > 256 && self.map.len() > 2 * self.kept {
            self.map.retain(|_, info| Arc::strong_count(info) > 1);
            self.kept = self.map.len();
        }
    }
}

/// What an IP set holds: the addresses of what `selector` matches, or with `named_port` the
/// address · protocol · port of their ports with that name.
#[derive(Debug, Clone)]
pub(crate) struct SetDef {
    pub id: SetId,
    pub selector: Arc<SelectorInfo>,
    pub named_port: Option<(NamedPortProtocol, Arc<str>)>,
}

impl SetDef {
    fn for_selector(selector: &Arc<SelectorInfo>) -> SetDef {
        SetDef {
            id: selector.id.clone(),
            selector: selector.clone(),
            named_port: None,
        }
    }

    fn for_named_port(selector: &Arc<SelectorInfo>, protocol: NamedPortProtocol, name: &str) -> SetDef {
        SetDef {
            id: named_port_set_id(&selector.id, protocol.name(), name),
            selector: selector.clone(),
            named_port: Some((protocol, name.into())),
        }
    }

    /// The id of the selector set the set is built on.
    pub fn selector_id(&self) -> &SetId {
        &self.selector.id
    }

    /// What the set is for, in words.
    pub fn comment(&self) -> String {
        match &self.named_port {
            None => self.selector.selector.to_string(),
            Some((proto, name)) => {
                format!(
                    "named port {name} ({}) of {}",
                    proto.name(),
                    self.selector.selector
                )
            }
        }
    }
}

/// Whose rules these are: fills in a Log rule's prefix (`felix/rules/policy.go`
/// `generateLogPrefix`: `%t` tier, `%k` kind, `%n` name, `%p` namespace/name).
pub(crate) struct LogContext<'a> {
    pub prefix_format: &'a str,
    pub tier: &'a str,
    pub kind: &'a str,
    pub namespace: &'a str,
    pub name: &'a str,
}

impl LogContext<'_> {
    pub fn prefix(&self) -> String {
        let f = if self.prefix_format.is_empty() {
            "calico-packet"
        } else {
            self.prefix_format
        };
        if !f.contains('%') {
            return f.to_string();
        }
        let mut out = String::new();
        let mut chars = f.chars().peekable();
        while let Some(c) = chars.next() {
            if c != '%' {
                out.push(c);
                continue;
            }
            match chars.peek() {
                Some('t') => out.push_str(self.tier),
                Some('k') => out.push_str(self.kind),
                Some('n') => out.push_str(self.name),
                Some('p') if self.namespace.is_empty() => out.push_str(self.name),
                Some('p') => {
                    out.push_str(self.namespace);
                    out.push('/');
                    out.push_str(self.name);
                }
                _ => {
                    out.push('%');
                    continue;
                }
            }
            chars.next();
        }
        out
    }
}

/// A protocol as its number (Calico's names in any case: Felix lower-cases them).
pub(crate) fn protocol_number(p: &Protocol) -> Result<u8, String> {
    if let Some(n) = p.protocol_number() {
        return Ok(n);
    }
    let name = p.to_string();
    PROTOCOL_NAMES
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case(&name))
        .map(|(_, n)| *n)
        .ok_or_else(|| format!("unknown protocol {name:?}"))
}

/// A CIDR or a plain address (a host prefix), masked to its network (Calico's
/// `ParseCIDROrIP` then `Network()`); `None` when it is neither.
pub(crate) fn parse_net(n: &str) -> Option<IpNet> {
    n.parse::<IpNet>()
        .or_else(|_| n.parse::<std::net::IpAddr>().map(IpNet::from))
        .ok()
        .map(|net| net.trunc())
}

fn parse_nets(nets: &[String], side: &str, field: &str) -> Result<Vec<IpNet>, String> {
    nets.iter()
        .map(|n| parse_net(n).ok_or_else(|| format!("{side}.{field}: {n:?} is not a CIDR or an IP address")))
        .collect()
}

/// Felix's `filterNets`: the nets of `family`; `None` when the list had nets but none of this
/// family, or (negated) has this family's catch-all: the rule is left out of this family.
fn filter_nets(nets: &[IpNet], family: IpFamily, negated: bool) -> Option<Vec<IpNet>> {
    if nets.is_empty() {
        return Some(Vec::new());
    }
    let mut out = Vec::new();
    for n in nets {
        if IpFamily::of_net(n) != family {
            continue;
        }
        if negated && n.prefix_len() == 0 {
            return None;
        }
        out.push(*n);
    }
    (!out.is_empty()).then_some(out)
}

fn split_ports(ports: &[Port]) -> (Vec<PortRange>, Vec<String>) {
    let mut numeric = Vec::new();
    let mut named = Vec::new();
    for p in ports {
        match p {
            Port::Range { min, max } => numeric.push(PortRange {
                first: *min,
                last: *max,
            }),
            Port::Named(n) => named.push(n.clone()),
        }
    }
    (numeric, named)
}

fn icmp(fields: &Option<IcmpFields>, field: &str) -> Result<Option<Icmp>, String> {
    match fields {
        None => Ok(None),
        Some(IcmpFields {
            icmp_type: None,
            code: Some(_),
        }) => Err(format!("{field}: code needs a type")),
        Some(IcmpFields {
            icmp_type: None,
            code: None,
        }) => Ok(None),
        Some(IcmpFields {
            icmp_type: Some(t),
            code,
        }) => Ok(Some(Icmp {
            icmp_type: *t,
            code: *code,
        })),
    }
}

/// One side of a rule before splitting per family.
struct Side {
    nets: Vec<IpNet>,
    not_nets: Vec<IpNet>,
    sets: Vec<SetId>,
    not_sets: Vec<SetId>,
    ports: Vec<PortRange>,
    named_port_sets: Vec<SetId>,
    not_ports: Vec<PortRange>,
    not_named_port_sets: Vec<SetId>,
}

fn convert_side(
    rule: &V3Rule,
    source: bool,
    namespace: &str,
    named_proto: NamedPortProtocol,
    sets: &mut BTreeMap<SetId, SetDef>,
    cache: &mut SelectorCache,
) -> Result<Side, String> {
    let (er, side) = if source {
        (&rule.source, "source")
    } else {
        (&rule.destination, "destination")
    };
    let sa_selector = er.service_accounts.as_ref().map(|s| s.selector.as_str());
    let fields = [
        ("selector", er.selector.as_str()),
        ("notSelector", er.not_selector.as_str()),
        ("namespaceSelector", er.namespace_selector.as_str()),
        ("serviceAccounts.selector", sa_selector.unwrap_or("")),
    ];
    // On an error, name the user's field that is wrong rather than the rewritten text.
    let explain = |fallback: String| {
        for (field, text) in fields {
            if !text.is_empty()
                && let Err(e) = Selector::parse(text)
            {
                return format!("{side}.{field}: {}", e.reason);
            }
        }
        fallback
    };
    let positive = entity_selector(er, namespace).map_err(|e| explain(format!("{side}: {}", e.reason)))?;
    let (positive, negated) = combine_positive_and_negated(positive, &er.not_selector);
    let mut parse = |text: &str| -> Result<Option<Arc<SelectorInfo>>, String> {
        if text.is_empty() {
            return Ok(None);
        }
        cache
            .get(text)
            .map(Some)
            .map_err(|e| explain(format!("{side}: {e}")))
    };
    let positive = parse(&positive)?;
    let negated = parse(&negated)?;
    let all = parse("all()")?.expect("all() is not empty");

    let (ports, named) = split_ports(&er.ports);
    let (not_ports, not_named) = split_ports(&er.not_ports);
    let mut add = |def: SetDef| {
        let id = def.id.clone();
        sets.entry(id.clone()).or_insert(def);
        id
    };
    // Named ports become sets filtered by the positive selector (or all() without one); the
    // negated named ports too, since the rule only matches inside the positive selector anyway.
    let port_selector = positive.clone().unwrap_or(all);
    let named_port_sets = named
        .iter()
        .map(|n| add(SetDef::for_named_port(&port_selector, named_proto, n)))
        .collect::<Vec<_>>();
    let not_named_port_sets = not_named
        .iter()
        .map(|n| add(SetDef::for_named_port(&port_selector, named_proto, n)))
        .collect();
    // The selector set is needed unless named ports alone already imply it.
    let mut sel_sets = Vec::new();
    if let Some(sel) = &positive
        && (!ports.is_empty() || named.is_empty())
    {
        sel_sets.push(add(SetDef::for_selector(sel)));
    }
    let not_sets = negated.iter().map(|s| add(SetDef::for_selector(s))).collect();
    Ok(Side {
        nets: parse_nets(&er.nets, side, "nets")?,
        not_nets: parse_nets(&er.not_nets, side, "notNets")?,
        sets: sel_sets,
        not_sets,
        ports,
        named_port_sets,
        not_ports,
        not_named_port_sets,
    })
}

impl Side {
    fn for_family(&self, family: IpFamily) -> Option<PeerMatch> {
        Some(PeerMatch {
            nets: filter_nets(&self.nets, family, false)?.into(),
            not_nets: filter_nets(&self.not_nets, family, true)?.into(),
            sets: self.sets.as_slice().into(),
            not_sets: self.not_sets.as_slice().into(),
            ports: self.ports.as_slice().into(),
            named_port_sets: self.named_port_sets.as_slice().into(),
            not_ports: self.not_ports.as_slice().into(),
            not_named_port_sets: self.not_named_port_sets.as_slice().into(),
        })
    }
}

fn supports_ports(protocol: u8) -> bool {
    matches!(protocol, 6 | 17 | 132)
}

/// Converts one rule; `Ok(None)` for a rule that can never match here (a `services` match:
/// Brindle has no Kubernetes Services, so the service's address set is empty).
fn convert_rule(
    rule: &V3Rule,
    namespace: &str,
    log: &LogContext<'_>,
    sets: &mut BTreeMap<SetId, SetDef>,
    cache: &mut SelectorCache,
) -> Result<Option<ConvertedRule>, String> {
    if rule.source.services.is_some() || rule.destination.services.is_some() {
        return Ok(None);
    }
    let protocol = rule.protocol.as_ref().map(protocol_number).transpose()?;
    let not_protocol = rule.not_protocol.as_ref().map(protocol_number).transpose()?;
    let has_numeric_ports = [
        &rule.source.ports,
        &rule.source.not_ports,
        &rule.destination.ports,
        &rule.destination.not_ports,
    ]
    .iter()
    .any(|ps| ps.iter().any(|p| matches!(p, Port::Range { .. })));
    if has_numeric_ports && !protocol.is_some_and(supports_ports) {
        return Err("ports need protocol TCP, UDP or SCTP".into());
    }
    let icmp_match = icmp(&rule.icmp, "icmp")?;
    let not_icmp = icmp(&rule.not_icmp, "notICMP")?;
    if (icmp_match.is_some() || not_icmp.is_some()) && !matches!(protocol, Some(1 | 58)) {
        return Err("icmp and notICMP need protocol ICMP or ICMPv6".into());
    }
    let family = match rule.ip_version {
        Some(4) => Some(IpFamily::V4),
        Some(6) => Some(IpFamily::V6),
        Some(v) => return Err(format!("ipVersion {v} is neither 4 nor 6")),
        // Felix infers the family from a protocol named ICMP or ICMPv6.
        None => match &rule.protocol {
            Some(Protocol::Str(s)) if s.eq_ignore_ascii_case("icmp") => Some(IpFamily::V4),
            Some(Protocol::Str(s)) if s.eq_ignore_ascii_case("icmpv6") => Some(IpFamily::V6),
            _ => None,
        },
    };
    let named_proto = NamedPortProtocol::for_rule(rule.protocol.as_ref());
    let src = convert_side(rule, true, namespace, named_proto, sets, cache)?;
    let dst = convert_side(rule, false, namespace, named_proto, sets, cache)?;
    let action = match rule.action {
        V3Action::Allow => Action::Allow,
        V3Action::Deny => Action::Deny,
        V3Action::Pass => Action::Pass,
        V3Action::Log => Action::Log { prefix: log.prefix() },
    };
    let comments = rule
        .metadata
        .iter()
        .flat_map(|m| m.annotations.iter().map(|(k, v)| format!("{k}={v}")))
        .collect();
    let template = Rule {
        action,
        protocol,
        not_protocol,
        src: PeerMatch::default(),
        dst: PeerMatch::default(),
        icmp: icmp_match,
        not_icmp,
        comments,
    };
    Ok(Some(ConvertedRule {
        family,
        template,
        src,
        dst,
    }))
}

/// A rule before it is split per family.
struct ConvertedRule {
    /// Set when the rule is for one family only.
    family: Option<IpFamily>,
    /// The rule without its sides.
    template: Rule,
    src: Side,
    dst: Side,
}

/// Converts a rule list (`direction` names it in errors) into the rule lists of `families`
/// (the others stay empty) and collects the sets it uses.
pub(crate) fn convert_rules(
    rules: &[V3Rule],
    families: &[IpFamily],
    direction: &str,
    namespace: &str,
    log: &LogContext<'_>,
    sets: &mut BTreeMap<SetId, SetDef>,
    cache: &mut SelectorCache,
) -> Result<FamilyRules, RuleError> {
    let mut out = FamilyRules::default();
    for (index, rule) in rules.iter().enumerate() {
        let converted = convert_rule(rule, namespace, log, sets, cache).map_err(|reason| RuleError {
            direction: direction.to_string(),
            index,
            reason,
        })?;
        let Some(ConvertedRule {
            family,
            template,
            src,
            dst,
        }) = converted
        else {
            continue;
        };
        for &f in families {
            if family.is_some_and(|want| want != f) {
                continue;
            }
            let (Some(s), Some(d)) = (src.for_family(f), dst.for_family(f)) else {
                continue;
            };
            let rule = Rule {
                src: s,
                dst: d,
                ..template.clone()
            };
            match f {
                IpFamily::V4 => out.v4.push(rule),
                IpFamily::V6 => out.v6.push(rule),
            }
        }
    }
    out.v4.shrink_to_fit();
    out.v6.shrink_to_fit();
    Ok(out)
}

/// The rules with every Log rule's prefix replaced; `None` when there is no Log rule.
pub(crate) fn with_log_prefix(rules: &FamilyRules, prefix: &str) -> Option<FamilyRules> {
    let is_log = |r: &Rule| matches!(r.action, Action::Log { .. });
    if !rules.v4.iter().chain(&rules.v6).any(is_log) {
        return None;
    }
    let relog = |list: &[Rule]| {
        list.iter()
            .map(|r| match r.action {
                Action::Log { .. } => Rule {
                    action: Action::Log {
                        prefix: prefix.to_string(),
                    },
                    ..r.clone()
                },
                _ => r.clone(),
            })
            .collect()
    };
    Some(FamilyRules {
        v4: relog(&rules.v4),
        v6: relog(&rules.v6),
    })
}
