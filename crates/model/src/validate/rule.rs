//! Rule and EntityRule validation, shared by NetworkPolicy, GlobalNetworkPolicy and Profile:
//! Calico's `validateRule`, `validateEntityRule`, `validateICMPFields`, `validatePort`,
//! `validateProtocol` and `validateHTTPRule` (`libcalico-go/lib/validator/v3/validator.go`),
//! with Calico's reasons. Field paths carry the rule's index (`Spec.Ingress[0].Source.Ports`).

use std::collections::BTreeSet;

use ipnet::IpNet;

use super::Checker;
use crate::numorstring::{Port, Protocol};
use crate::resources::{Action, EntityRule, HttpMatch, IcmpFields, Rule};
use crate::selector;

pub(super) const PROTOCOL_PORTS: &str = "rules that specify ports must set protocol to TCP or UDP or SCTP";
pub(super) const PROTOCOL_SINGLE_OR_RANGE_PORTS: &str =
    "rules with numeric port or port range must set protocol to TCP or UDP or SCTP";
const PROTOCOL_ICMP: &str = "rules that specify ICMP fields must set protocol to ICMP";
const PROTOCOL_AND_HTTP: &str = "rules that specify HTTP fields must set protocol to TCP or empty";
/// Calico's reason for `global()` outside a rule's `namespaceSelector`.
pub(super) const GLOBAL_ONLY_IN_ENTITY_RULE: &str =
    "global() can only be used in an EntityRule namespaceSelector";
const GLOBAL_ALONE: &str = "global() cannot be combined with other selectors";
/// Kubernetes' limit on the total size of annotations (keys and values).
pub(super) const ANNOTATIONS_MAX_BYTES: usize = 256 * 1024;
const HTTP_MAX_ITEMS: usize = 20;

/// Go's `%v` of a port list: `[80 8080:8090 http]`.
pub(super) fn go_ports(ports: &[Port]) -> String {
    let items: Vec<String> = ports.iter().map(ToString::to_string).collect();
    format!("[{}]", items.join(" "))
}

fn is_named(p: &Port) -> bool {
    matches!(p, Port::Named(_))
}

fn is_icmp(p: &Option<Protocol>, name: &str) -> bool {
    matches!(p, Some(Protocol::Str(s)) if s == name)
}

/// Kubernetes' `IsValidPortName` (IANA service name): at most 15 of `a-z0-9-`, at least one
/// letter, no leading, trailing or doubled `-`.
pub fn is_iana_svc_name(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 15
        && s.bytes()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == b'-')
        && s.bytes().any(|c| c.is_ascii_lowercase())
        && !s.contains("--")
        && !s.starts_with('-')
        && !s.ends_with('-')
}

/// Checks one rule. `path` is its field path (`Spec.Ingress[0]`).
pub(super) fn check_rule(c: &mut Checker, path: &str, r: &Rule) {
    let at = |f: &str| format!("{path}.{f}");
    if let Some(v) = r.ip_version
        && v != 4
        && v != 6
    {
        c.bad(&at("IPVersion"), v, "must be 4 or 6");
    }
    for (field, p) in [("Protocol", &r.protocol), ("NotProtocol", &r.not_protocol)] {
        match p {
            Some(Protocol::Num(0)) => c.bad(&at(field), 0, "protocol number invalid"),
            Some(Protocol::Str(s)) if Protocol::name(s).protocol_number().is_none() => {
                c.bad(&at(field), s, "protocol name invalid")
            }
            _ => {}
        }
    }
    for (field, icmp) in [("ICMP", &r.icmp), ("NotICMP", &r.not_icmp)] {
        if let Some(i) = icmp {
            check_icmp(c, &at(field), i);
        }
    }
    let sides = [("Source", &r.source), ("Destination", &r.destination)];
    for (side, e) in sides {
        for (field, ports) in [("Ports", &e.ports), ("NotPorts", &e.not_ports)] {
            let fpath = at(&format!("{side}.{field}"));
            for p in ports {
                check_port(c, &fpath, p);
            }
            if ports.is_empty() {
                continue;
            }
            match &r.protocol {
                None if !ports.iter().all(is_named) => {
                    c.bad(&fpath, go_ports(ports), PROTOCOL_SINGLE_OR_RANGE_PORTS)
                }
                Some(p) if !p.supports_ports() => c.bad(&fpath, go_ports(ports), PROTOCOL_PORTS),
                _ => {}
            }
        }
        check_entity_rule(c, &at(side), e);
    }
    if r.http.is_some()
        && let Some(p) = &r.protocol
        && *p != Protocol::name("TCP")
    {
        c.bad(&at("Protocol"), p, PROTOCOL_AND_HTTP);
    }
    if let Some(i) = &r.icmp
        && !is_icmp(&r.protocol, "ICMP")
        && !is_icmp(&r.protocol, "ICMPv6")
    {
        c.bad(&at("ICMP"), go_icmp(i), PROTOCOL_ICMP);
    }
    if (is_icmp(&r.protocol, "ICMP") || is_icmp(&r.not_protocol, "ICMP"))
        && r.ip_version.is_some_and(|v| v != 4)
    {
        c.missing(&at("IPVersion"), "must set ipversion to '4' with protocol icmp");
    }
    if (is_icmp(&r.protocol, "ICMPv6") || is_icmp(&r.not_protocol, "ICMPv6"))
        && r.ip_version.is_some_and(|v| v != 6)
    {
        c.missing(&at("IPVersion"), "must set ipversion to '6' with protocol icmpv6");
    }
    check_rule_nets(c, path, r);
    if let Some(h) = &r.http {
        check_http(c, &at("HTTP"), h);
        if r.action != Action::Allow {
            c.missing(&at("HTTP"), "only valid for Allow rules");
        }
    }
    if r.destination.services.is_some() {
        if !r.destination.ports.is_empty() {
            c.bad(
                &at("Destination.Ports"),
                go_ports(&r.destination.ports),
                "cannot specify ports with a service selector",
            );
        }
        if !r.destination.not_ports.is_empty() {
            c.bad(
                &at("Destination.NotPorts"),
                go_ports(&r.destination.not_ports),
                "cannot specify notports with a service selector",
            );
        }
    }
    if let Some(m) = &r.metadata {
        check_annotations(c, &at("Metadata.Annotations"), m.annotations.iter());
    }
}

fn go_icmp(i: &IcmpFields) -> String {
    let opt = |v: Option<u8>| v.map(|v| v.to_string()).unwrap_or_else(|| "<nil>".into());
    format!("{{type: {}, code: {}}}", opt(i.icmp_type), opt(i.code))
}

fn check_icmp(c: &mut Checker, path: &str, i: &IcmpFields) {
    if i.code.is_some() && i.icmp_type.is_none() {
        c.missing(
            &format!("{path}.Code"),
            "ICMP code specified without an ICMP type",
        );
    }
    if let Some(t) = i.icmp_type
        && t > 254
    {
        c.bad(&format!("{path}.Type"), t, "ICMP type must be between 0 and 254");
    }
}

fn check_port(c: &mut Checker, path: &str, p: &Port) {
    match p {
        Port::Range { min, max } if min > max => c.bad(path, p, "port range invalid"),
        Port::Range { min, .. } if *min < 1 => {
            c.bad(path, p, "port range invalid, port number must be between 1 and 65535")
        }
        Port::Named(n) if !is_iana_svc_name(n) => c.bad(
            path,
            n,
            "invalid port name: at most 15 characters of a-z, 0-9 and '-', with at least one letter, no leading, trailing or consecutive '-'",
        ),
        _ => {}
    }
}

/// Calico's `scanNets`: CIDRs parse and are masked, a negated catch-all is refused, the
/// families agree with each other and with `ipVersion`.
fn check_rule_nets(c: &mut Checker, path: &str, r: &Rule) {
    let (mut seen4, mut seen6) = (false, false);
    let fields = [
        ("Source.Nets", &r.source.nets, false),
        ("Source.NotNets", &r.source.not_nets, true),
        ("Destination.Nets", &r.destination.nets, false),
        ("Destination.NotNets", &r.destination.not_nets, true),
    ];
    for (field, nets, negated) in fields {
        let fpath = format!("{path}.{field}");
        let (mut v4, mut v6) = (false, false);
        for n in nets {
            let Ok(net) = n.parse::<IpNet>() else {
                c.bad(&fpath, n, "invalid CIDR");
                continue;
            };
            if net.trunc() != net {
                c.bad(&fpath, n, "CIDR is not strictly masked");
            }
            v4 |= net.addr().is_ipv4();
            v6 |= net.addr().is_ipv6();
            if negated && net.prefix_len() == 0 {
                c.bad(
                    &fpath,
                    n,
                    "catch-all CIDR in negation creates logical contradiction (matches no traffic)",
                );
            }
        }
        if let Some(v) = r.ip_version
            && ((v4 && v != 4) || (v6 && v != 6))
        {
            c.bad(
                &fpath,
                go_list(nets),
                "rule IP version doesn't match CIDR version",
            );
        }
        if (v4 && seen6) || (v6 && seen4) || (v4 && v6) {
            c.bad(&fpath, go_list(nets), "rule contains both IPv4 and IPv6 CIDRs");
        }
        seen4 |= v4;
        seen6 |= v6;
    }
}

fn go_list(items: &[String]) -> String {
    format!("[{}]", items.join(" "))
}

/// Calico's `validateEntityRule`, plus the selectors parsing.
fn check_entity_rule(c: &mut Checker, path: &str, e: &EntityRule) {
    let at = |f: &str| format!("{path}.{f}");
    c.selector(&at("Selector"), &e.selector);
    c.selector(&at("NotSelector"), &e.not_selector);
    c.selector(&at("NamespaceSelector"), &e.namespace_selector);
    if e.selector.contains("global()") {
        c.bad(&at("Selector"), &e.selector, GLOBAL_ONLY_IN_ENTITY_RULE);
    }
    if e.namespace_selector.contains("global(")
        && e.namespace_selector != "global()"
        && !selector::is_global_alone(&e.namespace_selector)
    {
        c.bad(&at("NamespaceSelector"), &e.namespace_selector, GLOBAL_ALONE);
    }
    if let Some(sa) = &e.service_accounts {
        c.selector(&at("ServiceAccounts.Selector"), &sa.selector);
    }
    if let Some(s) = &e.services {
        let spath = at("Services");
        if s.name.is_empty() {
            c.missing(&spath, "must specify a service name");
        } else if !super::is_dns1123_subdomain(&s.name) {
            c.bad(&format!("{spath}.Name"), &s.name, "must be a valid service name");
        }
        if !s.namespace.is_empty() && !super::is_dns1123_subdomain(&s.namespace) {
            c.bad(
                &format!("{spath}.Namespace"),
                &s.namespace,
                "must be a valid namespace name",
            );
        }
        if !e.namespace_selector.is_empty() {
            c.missing(
                &spath,
                "cannot specify NamespaceSelector and Services on the same rule",
            );
        }
        if !e.selector.is_empty() || !e.not_selector.is_empty() {
            c.missing(
                &spath,
                "cannot specify Selector/NotSelector and Services on the same rule",
            );
        }
        if e.service_accounts.is_some() {
            c.missing(
                &spath,
                "cannot specify ServiceAccounts and Services on the same rule",
            );
        }
        if !e.nets.is_empty() || !e.not_nets.is_empty() {
            c.missing(
                &spath,
                "cannot specify Nets/NotNets and Services on the same rule",
            );
        }
    }
}

fn check_http(c: &mut Checker, path: &str, h: &HttpMatch) {
    let unique: BTreeSet<&String> = h.methods.iter().collect();
    if unique.len() != h.methods.len() {
        c.bad(
            &format!("{path}.Methods"),
            go_list(&h.methods),
            format!("Invalid methods (duplicates): {}", go_list(&h.methods)),
        );
    }
    if h.methods.len() > HTTP_MAX_ITEMS {
        c.missing(&format!("{path}.Methods"), "must have at most 20 items");
    }
    if h.paths.len() > HTTP_MAX_ITEMS {
        c.missing(&format!("{path}.Paths"), "must have at most 20 items");
    }
    for p in &h.paths {
        let ppath = format!("{path}.Paths");
        if !p.exact.is_empty() && !p.prefix.is_empty() {
            c.missing(&ppath, "Invalid path match. Both 'exact' and 'prefix' are set");
            continue;
        }
        let v = if p.exact.is_empty() { &p.prefix } else { &p.exact };
        if v.is_empty() {
            c.missing(
                &ppath,
                "Invalid path match. Either 'exact' or 'prefix' must be set",
            );
        } else if !v.starts_with('/') || v.contains(['?', ' ', '#']) {
            c.bad(
                &ppath,
                v,
                format!("Invalid path {v}. (must start with `/` and not contain `?` or `#`"),
            );
        }
    }
}

/// Annotation keys are qualified names and all of them together stay under Kubernetes'
/// 256 KiB (`validateObjectMetaAnnotations`).
pub(super) fn check_annotations<'a>(
    c: &mut Checker,
    path: &str,
    annotations: impl Iterator<Item = (&'a String, &'a String)>,
) {
    let mut total = 0;
    for (k, v) in annotations {
        if !super::is_label_key(&k.to_lowercase()) {
            c.bad(path, k, "invalid annotation key");
        }
        total += k.len() + v.len();
    }
    if total > ANNOTATIONS_MAX_BYTES {
        c.missing(
            path,
            format!(
                "total size of annotations is too large by {} bytes",
                total - ANNOTATIONS_MAX_BYTES
            ),
        );
    }
}
