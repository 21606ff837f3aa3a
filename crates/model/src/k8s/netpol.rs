//! Kubernetes NetworkPolicy → Calico NetworkPolicy, as Calico's kube-controllers stores them
//! on an etcd datastore (`libcalico-go/lib/backend/k8s/conversion/conversion.go`
//! `K8sNetworkPolicyToCalico`, `kube-controllers/pkg/converter/networkpolicy_converter.go`):
//!
//! - name `knp.default.<name>` in the same namespace, metadata otherwise empty (the client adds
//!   uid, creation time and the tier label); tier `default`, order 1000;
//! - `types` from `policyTypes` (Ingress first); egress rules without `Egress` in it are kept
//!   but govern nothing;
//! - selectors: `projectcalico.org/orchestrator == 'k8s'` then the pod selector's terms
//!   (`k == 'v'` for sorted `matchLabels`, `k in { 'a', 'b' }`, `k not in { … }`, `has(k)`,
//!   `! has(k)`), joined by ` && `; a present but empty namespace selector is `all()`;
//! - one Allow rule per (protocol, peer): protocols in string order (`""` < `SCTP` < `TCP` <
//!   `UDP`), peers in order; a port without a number opens the whole protocol; numeric ports
//!   of a protocol are merged into ranges (`SimplifyPorts`); `endPort` gives `port:endPort`;
//!   `ipBlock` gives `nets`/`notNets` (masked); ingress peers go to `source` and ports to
//!   `destination.ports`, egress puts both in `destination`.
//!
//! Before converting, what Kubernetes' API server does is done here too: its validation
//! ([`validate_network_policy`], `pkg/apis/networking/validation`) and defaulting
//! ([`apply_k8s_defaults`]: `policyTypes` `[Ingress]`, plus `Egress` when there are egress
//! rules; a port's protocol `TCP`).

use std::collections::BTreeMap;

use ipnet::IpNet;

use super::invalid::{K8sFieldError, K8sInvalid};
use super::meta::K8sKind;
use super::types::{IntOrString, LabelSelector, NetworkPolicy, NetworkPolicyPeer, NetworkPolicyPort};
use crate::meta::ObjectMeta;
use crate::numorstring::{Port, Protocol};
use crate::resources::{
    Action, DEFAULT_TIER, EntityRule, K8S_POLICY_PREFIX, NetworkPolicy as CalicoNetworkPolicy,
    NetworkPolicySpec as CalicoSpec, PolicyType, Rule,
};
use crate::validate::{is_dns1123_label, is_dns1123_subdomain, is_label_key, is_label_value};

/// The order every converted Kubernetes policy gets.
pub const K8S_POLICY_ORDER: f64 = 1000.0;
/// The label selecting Kubernetes pods' endpoints.
const ORCHESTRATOR_CLAUSE: &str = "projectcalico.org/orchestrator == 'k8s'";
const PROTOCOLS: [&str; 3] = ["SCTP", "TCP", "UDP"];

/// The Calico name of a Kubernetes NetworkPolicy (`knp.default.<name>`).
pub fn calico_name(k8s_name: &str) -> String {
    format!("{K8S_POLICY_PREFIX}{k8s_name}")
}

/// The API server's defaults: `policyTypes` and ports' protocol.
pub fn apply_k8s_defaults(np: &mut NetworkPolicy) {
    let s = &mut np.spec;
    if s.policy_types.is_empty() {
        s.policy_types.push("Ingress".into());
        if !s.egress.is_empty() {
            s.policy_types.push("Egress".into());
        }
    }
    let ports = s
        .ingress
        .iter_mut()
        .flat_map(|r| r.ports.iter_mut())
        .chain(s.egress.iter_mut().flat_map(|r| r.ports.iter_mut()));
    for p in ports {
        p.protocol.get_or_insert_with(|| "TCP".into());
    }
}

/// Kubernetes' `IsValidPortName` messages.
fn port_name_errors(s: &str) -> Vec<&'static str> {
    let mut errs = Vec::new();
    if s.len() > 15 {
        errs.push("must be no more than 15 characters");
    }
    if !s
        .bytes()
        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == b'-')
        || s.is_empty()
    {
        errs.push("must contain only alpha-numeric characters (a-z, 0-9), and hyphens (-)");
    } else if !s.bytes().any(|c| c.is_ascii_lowercase()) {
        errs.push("must contain at least one letter (a-z)");
    }
    if s.contains("--") {
        errs.push("must not contain consecutive hyphens");
    }
    if s.starts_with('-') || s.ends_with('-') {
        errs.push("must not begin or end with a hyphen");
    }
    errs
}

fn check_selector(errs: &mut Vec<K8sFieldError>, path: &str, sel: &LabelSelector) {
    for (k, v) in &sel.match_labels {
        if !is_label_key(k) {
            errs.push(K8sFieldError::invalid_str(
                &format!("{path}.matchLabels"),
                k,
                "must be a valid label key",
            ));
        }
        if !is_label_value(v) {
            errs.push(K8sFieldError::invalid_str(
                &format!("{path}.matchLabels"),
                v,
                "a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character",
            ));
        }
    }
    for (i, e) in sel.match_expressions.iter().enumerate() {
        let at = format!("{path}.matchExpressions[{i}]");
        match e.operator.as_str() {
            "In" | "NotIn" if e.values.is_empty() => errs.push(K8sFieldError::required(
                &format!("{at}.values"),
                "must be specified when `operator` is 'In' or 'NotIn'",
            )),
            "Exists" | "DoesNotExist" if !e.values.is_empty() => errs.push(K8sFieldError::forbidden(
                &format!("{at}.values"),
                "may not be specified when `operator` is 'Exists' or 'DoesNotExist'",
            )),
            "In" | "NotIn" | "Exists" | "DoesNotExist" => {}
            op => errs.push(K8sFieldError::invalid_str(
                &format!("{at}.operator"),
                op,
                "not a valid selector operator",
            )),
        }
        if !is_label_key(&e.key) {
            errs.push(K8sFieldError::invalid_str(
                &format!("{at}.key"),
                &e.key,
                "must be a valid label key",
            ));
        }
        for (j, v) in e.values.iter().enumerate() {
            if !is_label_value(v) {
                errs.push(K8sFieldError::invalid_str(
                    &format!("{at}.values[{j}]"),
                    v,
                    "must be a valid label value",
                ));
            }
        }
    }
}

fn check_port(errs: &mut Vec<K8sFieldError>, path: &str, p: &NetworkPolicyPort) {
    if let Some(proto) = &p.protocol
        && !PROTOCOLS.contains(&proto.as_str())
    {
        errs.push(K8sFieldError::not_supported(
            &format!("{path}.protocol"),
            proto,
            &PROTOCOLS,
        ));
    }
    let port_range = "must be between 1 and 65535, inclusive";
    match (&p.port, p.end_port) {
        (Some(IntOrString::Int(n)), end) => {
            if !(1..=65535).contains(n) {
                errs.push(K8sFieldError::invalid_num(
                    &format!("{path}.port"),
                    *n,
                    port_range,
                ));
            }
            if let Some(end) = end {
                if end < *n {
                    errs.push(K8sFieldError::invalid_num(
                        &format!("{path}.endPort"),
                        *n,
                        "must be greater than or equal to `port`",
                    ));
                }
                if !(1..=65535).contains(&end) {
                    errs.push(K8sFieldError::invalid_num(
                        &format!("{path}.endPort"),
                        end,
                        port_range,
                    ));
                }
            }
        }
        (Some(IntOrString::Str(name)), end) => {
            if let Some(end) = end {
                errs.push(K8sFieldError::invalid_num(
                    &format!("{path}.endPort"),
                    end,
                    "may not be specified when `port` is non-numeric",
                ));
            }
            for msg in port_name_errors(name) {
                errs.push(K8sFieldError::invalid_str(&format!("{path}.port"), name, msg));
            }
        }
        (None, Some(end)) => errs.push(K8sFieldError::invalid_num(
            &format!("{path}.endPort"),
            end,
            "may not be specified when `port` is not specified",
        )),
        (None, None) => {}
    }
}

fn parse_cidr(s: &str) -> Option<IpNet> {
    s.parse().ok()
}

fn check_peer(errs: &mut Vec<K8sFieldError>, path: &str, peer: &NetworkPolicyPeer) {
    let mut n = 0;
    if let Some(s) = &peer.pod_selector {
        n += 1;
        check_selector(errs, &format!("{path}.podSelector"), s);
    }
    if let Some(s) = &peer.namespace_selector {
        n += 1;
        check_selector(errs, &format!("{path}.namespaceSelector"), s);
    }
    if let Some(b) = &peer.ip_block {
        n += 1;
        let at = format!("{path}.ipBlock");
        let valid_cidr = "must be a valid CIDR value, (e.g. 10.9.8.0/24 or 2001:db8::/64)";
        if b.cidr.is_empty() {
            errs.push(K8sFieldError::required(&format!("{at}.cidr"), ""));
        } else if let Some(cidr) = parse_cidr(&b.cidr) {
            for (i, e) in b.except.iter().enumerate() {
                let epath = format!("{at}.except[{i}]");
                match parse_cidr(e) {
                    None => errs.push(K8sFieldError::invalid_str(&epath, e, valid_cidr)),
                    Some(ex) => {
                        let same_family = ex.addr().is_ipv4() == cidr.addr().is_ipv4();
                        if !same_family || !cidr.contains(&ex.addr()) || cidr.prefix_len() >= ex.prefix_len()
                        {
                            errs.push(K8sFieldError::invalid_str(
                                &epath,
                                e,
                                "must be a strict subset of `cidr`",
                            ));
                        }
                    }
                }
            }
        } else {
            errs.push(K8sFieldError::invalid_str(
                &format!("{at}.cidr"),
                &b.cidr,
                valid_cidr,
            ));
        }
    }
    if n == 0 {
        errs.push(K8sFieldError::required(path, "must specify a peer"));
    } else if n > 1 && peer.ip_block.is_some() {
        errs.push(K8sFieldError::forbidden(
            path,
            "may not specify both ipBlock and another peer",
        ));
    }
}

/// What Kubernetes' API server checks (`ValidateNetworkPolicy`).
pub fn validate_network_policy(np: &NetworkPolicy) -> Result<(), K8sInvalid> {
    let mut errs = Vec::new();
    check_object_meta(&mut errs, &np.metadata, true);
    let s = &np.spec;
    check_selector(&mut errs, "spec.podSelector", &s.pod_selector);
    let rules = s
        .ingress
        .iter()
        .enumerate()
        .map(|(i, r)| (format!("spec.ingress[{i}]"), &r.ports, &r.from, "from"))
        .chain(
            s.egress
                .iter()
                .enumerate()
                .map(|(i, r)| (format!("spec.egress[{i}]"), &r.ports, &r.to, "to")),
        );
    for (path, ports, peers, peer_field) in rules {
        for (j, p) in ports.iter().enumerate() {
            check_port(&mut errs, &format!("{path}.ports[{j}]"), p);
        }
        for (j, p) in peers.iter().enumerate() {
            check_peer(&mut errs, &format!("{path}.{peer_field}[{j}]"), p);
        }
    }
    if s.policy_types.len() > 2 {
        errs.push(K8sFieldError(format!(
            "spec.policyTypes: Invalid value: {:?}: may not specify more than two policyTypes",
            s.policy_types
        )));
    } else {
        for (i, t) in s.policy_types.iter().enumerate() {
            if t != "Ingress" && t != "Egress" {
                errs.push(K8sFieldError::not_supported(
                    &format!("spec.policyTypes[{i}]"),
                    t,
                    &["Ingress", "Egress"],
                ));
            }
        }
    }
    if errs.is_empty() {
        Ok(())
    } else {
        Err(K8sInvalid {
            kind: K8sKind::NetworkPolicy,
            namespace: np.metadata.namespace.clone(),
            name: np.metadata.name.clone(),
            errors: errs,
        })
    }
}

/// Name, namespace (when the kind has one) and labels, as the API server checks them.
pub(super) fn check_object_meta(errs: &mut Vec<K8sFieldError>, m: &ObjectMeta, namespaced: bool) {
    if m.name.is_empty() {
        errs.push(K8sFieldError::required(
            "metadata.name",
            "name or generateName is required",
        ));
    } else if !is_dns1123_subdomain(&m.name) {
        errs.push(K8sFieldError::invalid_str(
            "metadata.name",
            &m.name,
            "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character",
        ));
    }
    if namespaced && !m.namespace.is_empty() && !is_dns1123_label(&m.namespace) {
        errs.push(K8sFieldError::invalid_str(
            "metadata.namespace",
            &m.namespace,
            "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character",
        ));
    }
    if !namespaced && !m.namespace.is_empty() {
        errs.push(K8sFieldError::forbidden(
            "metadata.namespace",
            "not allowed on this type",
        ));
    }
    for (k, v) in &m.labels {
        if !is_label_key(k) {
            errs.push(K8sFieldError::invalid_str(
                "metadata.labels",
                k,
                "must be a valid label key",
            ));
        } else if !is_label_value(v) {
            errs.push(K8sFieldError::invalid_str(
                "metadata.labels",
                v,
                "must be a valid label value",
            ));
        }
    }
}

/// Calico's text for a Kubernetes label selector (`k8sSelectorToCalico`). Pod selectors start
/// with the orchestrator clause; a namespace selector that is present but empty is `all()`.
pub fn selector_to_calico(sel: Option<&LabelSelector>, pod: bool) -> String {
    let mut terms: Vec<String> = Vec::new();
    if pod {
        terms.push(ORCHESTRATOR_CLAUSE.to_string());
    }
    let Some(s) = sel else {
        return terms.join(" && ");
    };
    if !pod && s.is_empty() {
        return "all()".into();
    }
    for (k, v) in &s.match_labels {
        terms.push(format!("{k} == '{v}'"));
    }
    for e in &s.match_expressions {
        let values = e.values.join("', '");
        match e.operator.as_str() {
            "In" => terms.push(format!("{} in {{ '{values}' }}", e.key)),
            "NotIn" => terms.push(format!("{} not in {{ '{values}' }}", e.key)),
            "Exists" => terms.push(format!("has({})", e.key)),
            "DoesNotExist" => terms.push(format!("! has({})", e.key)),
            _ => {}
        }
    }
    terms.join(" && ")
}

/// Calico's `SimplifyPorts`: named ports first as they come, then the numeric ports merged
/// into the fewest ranges, ascending. Lists of one port (or one numeric port) are unchanged.
pub fn simplify_ports(ports: &[Port]) -> Vec<Port> {
    if ports.len() <= 1 {
        return ports.to_vec();
    }
    let mut out = Vec::new();
    let mut numbers: Vec<u32> = Vec::new();
    for p in ports {
        match p {
            Port::Named(_) => out.push(p.clone()),
            Port::Range { min, max } => numbers.extend(u32::from(*min)..=u32::from(*max)),
        }
    }
    if numbers.len() <= 1 {
        return ports.to_vec();
    }
    numbers.sort_unstable();
    let mut i = 0;
    while i < numbers.len() {
        let first = numbers[i];
        let mut last = first;
        i += 1;
        while i < numbers.len() && numbers[i] <= last + 1 {
            last = numbers[i];
            i += 1;
        }
        // Both came from u16 ports.
        out.push(Port::Range {
            min: first as u16,
            max: last as u16,
        });
    }
    out
}

/// The Calico port of a Kubernetes port entry (`port` or `port:endPort`); `None` without a
/// port (the whole protocol).
fn calico_port(p: &NetworkPolicyPort) -> Option<Port> {
    match (&p.port, p.end_port) {
        (Some(IntOrString::Int(n)), Some(end)) => Some(Port::Range {
            min: *n as u16,
            max: end as u16,
        }),
        (Some(IntOrString::Int(n)), None) => Some(Port::single(*n as u16)),
        (Some(IntOrString::Str(name)), _) => Some(Port::Named(name.clone())),
        (None, _) => None,
    }
}

/// The Calico fields of a peer: (selector, namespaceSelector, nets, notNets).
fn peer_fields(peer: Option<&NetworkPolicyPeer>) -> (String, String, Vec<String>, Vec<String>) {
    let Some(peer) = peer else {
        return Default::default();
    };
    if let Some(b) = &peer.ip_block {
        let mask = |s: &String| {
            s.parse::<IpNet>()
                .map(|n| n.trunc().to_string())
                .unwrap_or_else(|_| s.clone())
        };
        return (
            String::new(),
            String::new(),
            vec![mask(&b.cidr)],
            b.except.iter().map(mask).collect(),
        );
    }
    (
        selector_to_calico(peer.pod_selector.as_ref(), true),
        selector_to_calico(peer.namespace_selector.as_ref(), false),
        Vec::new(),
        Vec::new(),
    )
}

/// One Kubernetes rule → Calico rules (`k8sRuleToCalico`).
fn rule_to_calico(peers: &[NetworkPolicyPeer], ports: &[NetworkPolicyPort], ingress: bool) -> Vec<Rule> {
    // Protocol ("" for "no ports given") → ports (None: every port of it).
    let mut by_protocol: BTreeMap<String, Option<Vec<Port>>> = BTreeMap::new();
    if ports.is_empty() {
        by_protocol.insert(String::new(), None);
    }
    for p in ports {
        let proto = p.protocol.clone().unwrap_or_else(|| "TCP".into());
        match calico_port(p) {
            None => {
                by_protocol.insert(proto, None);
            }
            Some(port) => {
                if let Some(list) = by_protocol.entry(proto).or_insert_with(|| Some(Vec::new())) {
                    list.push(port);
                }
            }
        }
    }
    let peers: Vec<Option<&NetworkPolicyPeer>> = if peers.is_empty() {
        vec![None]
    } else {
        peers.iter().map(Some).collect()
    };
    let mut rules = Vec::new();
    for (proto, ports) in &by_protocol {
        let ports = ports.as_deref().map(simplify_ports).unwrap_or_default();
        let protocol = (!proto.is_empty()).then(|| Protocol::name(proto));
        for peer in &peers {
            let (selector, namespace_selector, nets, not_nets) = peer_fields(*peer);
            let side = EntityRule {
                nets,
                selector,
                namespace_selector,
                not_nets,
                ..Default::default()
            };
            let mut rule = Rule {
                action: Action::Allow,
                protocol: protocol.clone(),
                ..Default::default()
            };
            if ingress {
                rule.source = side;
                rule.destination.ports = ports.clone();
            } else {
                rule.destination = EntityRule {
                    ports: ports.clone(),
                    ..side
                };
            }
            rules.push(rule);
        }
    }
    rules
}

/// Converts a Kubernetes NetworkPolicy to the Calico NetworkPolicy Calico's controllers store:
/// validated and defaulted as the API server would, then converted. The result still goes
/// through Calico's client (uid, creation time, tier label).
pub fn network_policy_to_calico(np: &NetworkPolicy) -> Result<CalicoNetworkPolicy, K8sInvalid> {
    validate_network_policy(np)?;
    let mut np = np.clone();
    apply_k8s_defaults(&mut np);
    let s = &np.spec;
    let ingress: Vec<Rule> = s
        .ingress
        .iter()
        .flat_map(|r| rule_to_calico(&r.from, &r.ports, true))
        .collect();
    let has = |t: &str| s.policy_types.iter().any(|p| p == t);
    let mut types = Vec::new();
    if has("Ingress") {
        types.push(PolicyType::Ingress);
    }
    if has("Egress") {
        types.push(PolicyType::Egress);
    }
    // Egress rules of a policy whose types leave egress out are kept, as Calico keeps them;
    // Felix ignores them.
    let egress: Vec<Rule> = s
        .egress
        .iter()
        .flat_map(|r| rule_to_calico(&r.to, &r.ports, false))
        .collect();
    if types.is_empty() {
        types.push(PolicyType::Ingress);
    }
    Ok(CalicoNetworkPolicy::new(
        ObjectMeta::namespaced(&np.metadata.namespace, calico_name(&np.metadata.name)),
        CalicoSpec {
            tier: DEFAULT_TIER.to_string(),
            order: Some(K8S_POLICY_ORDER),
            ingress,
            egress,
            selector: selector_to_calico(Some(&s.pod_selector), true),
            types,
            ..Default::default()
        },
    ))
}
