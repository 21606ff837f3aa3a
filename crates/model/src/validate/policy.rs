//! NetworkPolicy, GlobalNetworkPolicy, NetworkSet, GlobalNetworkSet, Tier and Profile
//! validation: Calico's `validateNetworkPolicy(Spec)`, `validateGlobalNetworkPolicy(Spec)`,
//! `validateNetworkSet`, `validateGlobalNetworkSet`, `validateTier` and the CEL rules on the
//! types (`libcalico-go/lib/validator/v3/validator.go`, `api/pkg/apis/projectcalico/v3`), with
//! Calico's reasons.

use std::collections::BTreeSet;

use super::Checker;
use super::rule::{GLOBAL_ONLY_IN_ENTITY_RULE, check_rule};
use crate::meta::ObjectMeta;
use crate::resources::{
    Action, BUILTIN_TIERS, GlobalNetworkPolicySpec, K8S_POLICY_PREFIX, NetworkPolicySpec, PerformanceHint,
    PolicyType, ProfileSpec, Rule, TierSpec,
};

const LABEL_NAME_REASON: &str =
    "name must consist of lower case alphanumeric characters or '-' (regex: [a-z0-9]([-a-z0-9]*[a-z0-9])?)";
const NAMESPACE_LABEL: &str = "projectcalico.org/namespace";

/// `[a-z0-9]([-a-z0-9]*[a-z0-9])?` without the 63-character bound.
fn is_label_shape(s: &str) -> bool {
    let b = s.as_bytes();
    !b.is_empty()
        && b.iter()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == b'-')
        && b[0] != b'-'
        && b[b.len() - 1] != b'-'
}

/// NetworkPolicy names: `label` or `label.label`, or `knp.default.<subdomain>` (converted
/// Kubernetes policies) or `ossg.default.<subdomain>` (OpenStack security groups).
fn is_network_policy_name(s: &str) -> bool {
    let plain = match s.split_once('.') {
        None => is_label_shape(s),
        Some((a, b)) => is_label_shape(a) && is_label_shape(b),
    };
    plain
        || [K8S_POLICY_PREFIX, "ossg.default."]
            .iter()
            .any(|p| s.strip_prefix(p).is_some_and(super::is_dns1123_subdomain))
}

/// GlobalNetworkPolicy names: `label` or `label.label`.
fn is_global_policy_name(s: &str) -> bool {
    match s.split_once('.') {
        None => is_label_shape(s),
        Some((a, b)) => is_label_shape(a) && is_label_shape(b),
    }
}

/// The policy-specific name rule, checked when the generic one passed.
fn check_policy_name(c: &mut Checker, m: &ObjectMeta, ok: fn(&str) -> bool) {
    if super::is_dns1123_subdomain(&m.name) && !ok(&m.name) {
        c.bad("Metadata.Name", &m.name, LABEL_NAME_REASON);
    }
}

/// What NetworkPolicy and GlobalNetworkPolicy share: tier, selectors, rules, types, hints.
struct PolicyParts<'a> {
    tier: &'a str,
    selector: &'a str,
    service_account_selector: &'a str,
    ingress: &'a [Rule],
    egress: &'a [Rule],
    types: &'a [PolicyType],
    hints: &'a [PerformanceHint],
    /// Reason for HTTP in an egress rule (Calico words NP and GNP differently).
    egress_http: &'static str,
}

fn check_policy(c: &mut Checker, p: &PolicyParts<'_>) {
    if !p.tier.is_empty() && !super::is_dns1123_subdomain(p.tier) {
        c.bad("Spec.Tier", p.tier, "must be a valid tier name");
    }
    c.selector("Spec.Selector", p.selector);
    c.selector("Spec.ServiceAccountSelector", p.service_account_selector);
    if p.selector.contains("global()") {
        c.bad("Spec.Selector", p.selector, GLOBAL_ONLY_IN_ENTITY_RULE);
    }
    if p.service_account_selector.contains("global()") {
        c.bad(
            "Spec.ServiceAccountSelector",
            p.service_account_selector,
            GLOBAL_ONLY_IN_ENTITY_RULE,
        );
    }
    let mut seen = BTreeSet::new();
    for t in p.types {
        if !seen.insert(*t) {
            c.bad(
                "Spec.Types",
                format!("{:?}", p.types),
                format!("'{}' type specified more than once", t.as_str()),
            );
        }
    }
    let hints: BTreeSet<_> = p.hints.iter().collect();
    if hints.len() != p.hints.len() {
        c.missing("Spec.PerformanceHints", "performance hints must be unique");
    }
    for (i, r) in p.ingress.iter().enumerate() {
        let path = format!("Spec.Ingress[{i}]");
        check_rule(c, &path, r);
        if r.destination.services.is_some() {
            c.missing(
                &format!("{path}.Destination.Services"),
                "not allowed in ingress rule destination",
            );
        }
    }
    for (i, r) in p.egress.iter().enumerate() {
        let path = format!("Spec.Egress[{i}]");
        check_rule(c, &path, r);
        if r.source.services.is_some() {
            c.missing(
                &format!("{path}.Source.Services"),
                "not allowed in egress rule source",
            );
        }
        if r.http.is_some() {
            c.missing(&format!("{path}.HTTP"), p.egress_http);
        }
    }
}

pub(super) fn check_network_policy(c: &mut Checker, m: &ObjectMeta, s: &NetworkPolicySpec) {
    check_policy_name(c, m, is_network_policy_name);
    check_policy(
        c,
        &PolicyParts {
            tier: &s.tier,
            selector: &s.selector,
            service_account_selector: &s.service_account_selector,
            ingress: &s.ingress,
            egress: &s.egress,
            types: &s.types,
            hints: &s.performance_hints,
            egress_http: "not allowed in egress rule",
        },
    );
}

pub(super) fn check_global_network_policy(c: &mut Checker, m: &ObjectMeta, s: &GlobalNetworkPolicySpec) {
    check_policy_name(c, m, is_global_policy_name);
    if s.do_not_track && s.pre_dnat {
        c.bad(
            "Spec.PreDNAT",
            s.pre_dnat,
            "PreDNAT and DoNotTrack cannot both be true, for a given PolicySpec",
        );
    }
    if s.pre_dnat && !s.egress.is_empty() {
        c.missing("Spec.Egress", "PreDNAT PolicySpec cannot have any Egress rules");
    }
    if s.pre_dnat && s.types.contains(&PolicyType::Egress) {
        c.bad(
            "Spec.Types",
            format!("{:?}", s.types),
            "PreDNAT PolicySpec cannot have 'egress' Type",
        );
    }
    if !s.apply_on_forward && (s.do_not_track || s.pre_dnat) {
        c.bad(
            "Spec.ApplyOnForward",
            s.apply_on_forward,
            "ApplyOnForward must be true if either PreDNAT or DoNotTrack is true, for a given PolicySpec",
        );
    }
    check_policy(
        c,
        &PolicyParts {
            tier: &s.tier,
            selector: &s.selector,
            service_account_selector: &s.service_account_selector,
            ingress: &s.ingress,
            egress: &s.egress,
            types: &s.types,
            hints: &s.performance_hints,
            egress_http: "not allowed in egress rules",
        },
    );
    c.selector("Spec.NamespaceSelector", &s.namespace_selector);
    if s.namespace_selector.contains("global()") {
        c.bad(
            "Spec.NamespaceSelector",
            &s.namespace_selector,
            GLOBAL_ONLY_IN_ENTITY_RULE,
        );
    }
    // A service named in a global policy needs its namespace.
    let services = s
        .egress
        .iter()
        .enumerate()
        .map(|(i, r)| (format!("Spec.Egress[{i}].Destination.Services"), &r.destination))
        .chain(
            s.ingress
                .iter()
                .enumerate()
                .map(|(i, r)| (format!("Spec.Ingress[{i}].Source.Services"), &r.source)),
        );
    for (path, e) in services {
        if e.services.as_ref().is_some_and(|sv| sv.namespace.is_empty()) {
            c.missing(&format!("{path}.Namespace"), "must specify a namespace");
        }
    }
}

/// NetworkSet and GlobalNetworkSet: addresses or CIDRs, and no namespace label (Calico adds it
/// itself to namespaced sets).
pub(super) fn check_network_set(c: &mut Checker, m: &ObjectMeta, nets: &[String]) {
    if m.labels.contains_key(NAMESPACE_LABEL) {
        c.bad(
            "Metadata.Labels (label)",
            NAMESPACE_LABEL,
            "projectcalico.org/namespace is not a valid label name",
        );
    }
    for n in nets {
        if n.parse::<ipnet::IpNet>().is_err() && n.parse::<std::net::IpAddr>().is_err() {
            c.bad("Spec.Nets", n, "invalid CIDR");
        }
    }
}

/// Tier: a DNS label name, and the built-in tiers' fixed order and default action (checked
/// against the values the client would store: order 1,000,000 and Deny when unset).
pub(super) fn check_tier(c: &mut Checker, m: &ObjectMeta, s: &TierSpec) {
    if m.name.len() > 63 {
        c.bad(
            "Metadata.Name",
            &m.name,
            format!("name is too long by {} bytes", m.name.len() - 63),
        );
    } else if super::is_dns1123_subdomain(&m.name) && !is_label_shape(&m.name) {
        c.bad("Metadata.Name", &m.name, LABEL_NAME_REASON);
    }
    if let Some(a) = s.default_action
        && a != Action::Deny
        && a != Action::Pass
    {
        c.bad("Spec.DefaultAction", a.as_str(), "must be Deny or Pass");
    }
    let order = s.order.unwrap_or(crate::resources::DEFAULT_TIER_ORDER);
    let action = s.default_action.unwrap_or(Action::Deny);
    for (name, want_order, want_action) in BUILTIN_TIERS {
        if m.name != name {
            continue;
        }
        if order != want_order {
            c.bad(
                "Spec.Order",
                crate::gofloat::format_g(order),
                format!(
                    "{name} tier order must be {}",
                    crate::gofloat::format_g(want_order)
                ),
            );
        }
        if action != want_action {
            c.bad(
                "Spec.DefaultAction",
                action.as_str(),
                format!(
                    "The '{name}' tier must have default action '{}'",
                    want_action.as_str()
                ),
            );
        }
    }
}

pub(super) fn check_profile(c: &mut Checker, s: &ProfileSpec) {
    for (i, r) in s.ingress.iter().enumerate() {
        check_rule(c, &format!("Spec.Ingress[{i}]"), r);
    }
    for (i, r) in s.egress.iter().enumerate() {
        check_rule(c, &format!("Spec.Egress[{i}]"), r);
    }
    for (k, v) in &s.labels_to_apply {
        if !super::is_label_key(k) {
            c.bad("Spec.LabelsToApply", k, "invalid label key");
        } else if !super::is_label_value(v) {
            c.bad("Spec.LabelsToApply", v, format!("invalid value for label {k}"));
        }
    }
}
