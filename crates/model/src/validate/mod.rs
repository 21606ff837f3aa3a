//! Validation with Calico's rules and, where Calico has them, Calico's messages
//! (`libcalico-go/lib/validator/v3/validator.go`, `libcalico-go/lib/clientv3/ippool.go`).
//!
//! [`validate`] checks one resource on its own (every field error is collected, not just the
//! first); [`validate_ippool_create`] adds the checks against the pools already stored, and
//! [`validate_ippool_update`] the immutability rules. Validate before applying defaults
//! ([`crate::defaults::apply_defaults`]).

mod bgp;
mod bgp_filter;
mod ippool;
mod others;
mod policy;
mod rule;

use std::net::IpAddr;

pub use ippool::{validate_ippool_create, validate_ippool_update};
pub use rule::is_iana_svc_name;

use crate::error::{FieldError, ValidationError};
use crate::kind::Kind;
use crate::meta::ObjectMeta;
use crate::resources::{Resource, each_resource};
use crate::selector::Selector;

/// Collects the field errors of one resource.
pub(crate) struct Checker {
    kind: Kind,
    fields: Vec<FieldError>,
}

impl Checker {
    pub(crate) fn new(kind: Kind) -> Self {
        Checker {
            kind,
            fields: Vec::new(),
        }
    }

    /// Records an error on `<Kind>.<path>` with the offending value.
    pub(crate) fn bad(&mut self, path: &str, value: impl ToString, reason: impl Into<String>) {
        self.fields.push(FieldError {
            field: format!("{}.{path}", self.kind),
            value: Some(value.to_string()),
            reason: reason.into(),
        });
    }

    /// Records an error on `<Kind>.<path>` without a value to show.
    pub(crate) fn missing(&mut self, path: &str, reason: impl Into<String>) {
        self.fields.push(FieldError {
            field: format!("{}.{path}", self.kind),
            value: None,
            reason: reason.into(),
        });
    }

    /// Checks a selector parses; empty is fine.
    pub(crate) fn selector(&mut self, path: &str, sel: &str) -> Option<Selector> {
        if sel.is_empty() {
            return None;
        }
        match Selector::parse(sel) {
            Ok(s) => Some(s),
            Err(e) => {
                self.bad(path, sel, format!("invalid selector: {}", e.reason));
                None
            }
        }
    }

    /// Checks an optional IP address of a family (`Some(4)`, `Some(6)` or any).
    pub(crate) fn ip(&mut self, path: &str, s: &str, family: Option<u8>) {
        if s.is_empty() {
            return;
        }
        match s.parse::<IpAddr>() {
            Ok(ip) if family.is_none_or(|f| f == family_of(&ip)) => {}
            _ => self.bad(path, s, format!("is not a valid {}address", family_name(family))),
        }
    }

    /// Checks an optional CIDR (`a.b.c.d/n`, host bits allowed) of a family.
    pub(crate) fn cidr(&mut self, path: &str, s: &str, family: Option<u8>) {
        if s.is_empty() {
            return;
        }
        match s.parse::<ipnet::IpNet>() {
            Ok(n) if family.is_none_or(|f| f == family_of(&n.addr())) => {}
            _ => self.bad(path, s, format!("is not a valid {}CIDR", family_name(family))),
        }
    }

    fn finish(self, meta: &ObjectMeta) -> Result<(), ValidationError> {
        if self.fields.is_empty() {
            Ok(())
        } else {
            Err(ValidationError {
                kind: self.kind,
                namespace: meta.namespace.clone(),
                name: meta.name.clone(),
                fields: self.fields,
            })
        }
    }
}

fn family_of(ip: &IpAddr) -> u8 {
    if ip.is_ipv4() { 4 } else { 6 }
}

fn family_name(f: Option<u8>) -> &'static str {
    match f {
        Some(4) => "IPv4 ",
        Some(6) => "IPv6 ",
        _ => "",
    }
}

/// Validates one resource on its own: metadata (name, namespace, labels) and spec.
pub fn validate(r: &Resource) -> Result<(), ValidationError> {
    let mut c = Checker::new(r.kind());
    check_metadata(&mut c, r.metadata());
    match r {
        Resource::IPPool(p) => ippool::check(&mut c, &p.spec),
        Resource::BGPConfiguration(b) => bgp::check_config(&mut c, &b.spec),
        Resource::BGPPeer(p) => bgp::check_peer(&mut c, &p.spec),
        Resource::BGPFilter(f) => bgp_filter::check(&mut c, &f.spec),
        Resource::Node(n) => others::check_node(&mut c, &n.spec),
        Resource::FelixConfiguration(f) => others::check_felix(&mut c, &f.spec),
        Resource::WorkloadEndpoint(w) => others::check_wep(&mut c, &w.spec),
        Resource::ClusterInformation(_) => {}
        Resource::IPAMConfiguration(i) => others::check_ipam_config(&mut c, &i.spec),
        Resource::Profile(p) => policy::check_profile(&mut c, &p.spec),
        Resource::NetworkPolicy(p) => policy::check_network_policy(&mut c, &p.metadata, &p.spec),
        Resource::GlobalNetworkPolicy(p) => policy::check_global_network_policy(&mut c, &p.metadata, &p.spec),
        Resource::NetworkSet(s) => policy::check_network_set(&mut c, &s.metadata, &s.spec.nets),
        Resource::GlobalNetworkSet(s) => policy::check_network_set(&mut c, &s.metadata, &s.spec.nets),
        Resource::Tier(t) => policy::check_tier(&mut c, &t.metadata, &t.spec),
        Resource::KubeControllersConfiguration(k) => others::check_kube_controllers(&mut c, k),
    }
    each_resource!(r, x => c.finish(&x.metadata))
}

/// DNS-1123 label: `[a-z0-9]([-a-z0-9]*[a-z0-9])?`, at most 63 characters.
pub fn is_dns1123_label(s: &str) -> bool {
    let b = s.as_bytes();
    !b.is_empty()
        && b.len() <= 63
        && b.iter()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == b'-')
        && b[0] != b'-'
        && b[b.len() - 1] != b'-'
}

/// DNS-1123 subdomain as Kubernetes checks it (`IsDNS1123Subdomain`, Calico's name rule):
/// dot-separated `[a-z0-9]([-a-z0-9]*[a-z0-9])?` parts, at most 253 characters in all. Unlike
/// a label, a part may be longer than 63 characters: Calico's WorkloadEndpoint names
/// (`<node>-cni-<64-hex container ID>-eth0`, long pod names) rely on it.
pub fn is_dns1123_subdomain(s: &str) -> bool {
    let part = |p: &str| {
        let b = p.as_bytes();
        !b.is_empty()
            && b.iter()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == b'-')
            && b[0] != b'-'
            && b[b.len() - 1] != b'-'
    };
    s.len() <= 253 && s.split('.').all(part)
}

/// Kubernetes qualified-name part: `([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]`, ≤ 63.
fn is_qualified_part(s: &str) -> bool {
    let b = s.as_bytes();
    !b.is_empty()
        && b.len() <= 63
        && b[0].is_ascii_alphanumeric()
        && b[b.len() - 1].is_ascii_alphanumeric()
        && b.iter()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'-' | b'_' | b'.'))
}

/// A label or annotation key: `[prefix/]name`, prefix a DNS subdomain.
pub fn is_label_key(s: &str) -> bool {
    match s.split_once('/') {
        Some((prefix, name)) => is_dns1123_subdomain(prefix) && is_qualified_part(name),
        None => is_qualified_part(s),
    }
}

/// A label value: empty, or a qualified-name part.
pub fn is_label_value(s: &str) -> bool {
    s.is_empty() || is_qualified_part(s)
}

fn check_metadata(c: &mut Checker, m: &ObjectMeta) {
    if m.name.is_empty() {
        c.missing("Metadata.Name", "name must be specified");
    } else if !is_dns1123_subdomain(&m.name) {
        c.bad(
            "Metadata.Name",
            &m.name,
            "name must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character",
        );
    }
    if c.kind.namespaced() {
        if !m.namespace.is_empty() && !is_dns1123_label(&m.namespace) {
            c.bad(
                "Metadata.Namespace",
                &m.namespace,
                "namespace must be a DNS label",
            );
        }
    } else if !m.namespace.is_empty() {
        c.bad(
            "Metadata.Namespace",
            &m.namespace,
            format!("namespace should not be specified for a non-namespaced resource. {} is not a namespaced resource", c.kind),
        );
    }
    for (k, v) in &m.labels {
        if !is_label_key(k) {
            c.bad("Metadata.Labels", k, "invalid label key");
        } else if !is_label_value(v) {
            c.bad("Metadata.Labels", v, format!("invalid value for label {k}"));
        }
    }
    for k in m.annotations.keys() {
        if !is_label_key(k) {
            c.bad("Metadata.Annotations", k, "invalid annotation key");
        }
    }
    let total: usize = m.annotations.iter().map(|(k, v)| k.len() + v.len()).sum();
    if total > MAX_ANNOTATIONS_BYTES {
        c.bad(
            "Metadata.Annotations (size)",
            total,
            format!(
                "total size of annotations is too large: the limit is {MAX_ANNOTATIONS_BYTES} bytes (256 KiB)"
            ),
        );
    }
}

/// Kubernetes' limit on the annotations of one object (`TotalAnnotationSizeLimitB`): keys and
/// values, summed.
pub const MAX_ANNOTATIONS_BYTES: usize = 256 * 1024;

/// Parses Calico's `IP`, `IP:port` or `[IPv6]:port` peer address form.
pub fn parse_ip_port(s: &str) -> Option<(IpAddr, Option<u16>)> {
    if let Ok(ip) = s.parse::<IpAddr>() {
        return Some((ip, None));
    }
    if let Some(rest) = s.strip_prefix('[') {
        let (ip, port) = rest.split_once("]:")?;
        let ip: std::net::Ipv6Addr = ip.parse().ok()?;
        return Some((IpAddr::V6(ip), Some(port.parse().ok()?)));
    }
    let (ip, port) = s.rsplit_once(':')?;
    let ip: std::net::Ipv4Addr = ip.parse().ok()?;
    Some((IpAddr::V4(ip), Some(port.parse().ok()?)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::resources::{ClusterInformation, IPPool, IPPoolSpec, WorkloadEndpoint};

    fn fields(e: ValidationError) -> Vec<String> {
        e.fields.iter().map(ToString::to_string).collect()
    }

    #[test]
    fn subdomains_allow_long_parts_but_not_long_names() {
        // Kubernetes' IsDNS1123Subdomain: only the whole name is bounded (253).
        let wep = format!("node1-cni-{}-eth0", "a".repeat(64));
        assert!(is_dns1123_subdomain(&wep));
        assert!(is_dns1123_subdomain("ip-10-0-0-1.ec2.internal-k8s-web-eth0"));
        assert!(!is_dns1123_subdomain(&"a".repeat(254)));
        assert!(!is_dns1123_subdomain("a..b"));
        assert!(!is_dns1123_subdomain("-a"));
        assert!(!is_dns1123_label(&"a".repeat(64)));
    }

    #[test]
    fn names_and_namespaces() {
        let r = Resource::ClusterInformation(ClusterInformation::default());
        assert_eq!(
            fields(validate(&r).unwrap_err()),
            ["ClusterInformation.Metadata.Name (name must be specified)"]
        );
        let mut p = IPPool::new(
            ObjectMeta::named("Bad_Name"),
            IPPoolSpec {
                cidr: "10.0.0.0/16".into(),
                ..Default::default()
            },
        );
        let e = validate(&Resource::IPPool(p.clone())).unwrap_err();
        assert_eq!(e.name, "Bad_Name");
        assert!(
            e.to_string()
                .starts_with("IPPool(Bad_Name): error with field IPPool.Metadata.Name = 'Bad_Name'"),
            "{e}"
        );
        p.metadata.name = "ok".into();
        p.metadata.namespace = "ns".into();
        let e = validate(&Resource::IPPool(p)).unwrap_err();
        assert!(
            e.to_string().contains("IPPool is not a namespaced resource"),
            "{e}"
        );
        let mut w = WorkloadEndpoint::new(ObjectMeta::namespaced("Bad NS", "w"), Default::default());
        w.spec.interface_name = "cali1".into();
        let e = validate(&Resource::WorkloadEndpoint(w)).unwrap_err();
        assert!(
            e.to_string()
                .contains("WorkloadEndpoint.Metadata.Namespace = 'Bad NS'"),
            "{e}"
        );
    }

    #[test]
    fn labels() {
        assert!(is_label_key("projectcalico.org/name"));
        assert!(is_label_key("app"));
        assert!(!is_label_key("-app"));
        assert!(!is_label_key("a/b/c"));
        assert!(is_label_value(""));
        assert!(!is_label_value("a b"));
        let mut p = IPPool::new(
            ObjectMeta::named("p"),
            IPPoolSpec {
                cidr: "10.0.0.0/16".into(),
                ..Default::default()
            },
        );
        p.metadata.labels.insert("bad key".into(), "v".into());
        let e = validate(&Resource::IPPool(p)).unwrap_err();
        assert_eq!(
            fields(e),
            ["IPPool.Metadata.Labels = 'bad key' (invalid label key)"]
        );
    }

    #[test]
    fn ip_port_forms() {
        assert_eq!(
            parse_ip_port("10.0.0.1"),
            Some(("10.0.0.1".parse().unwrap(), None))
        );
        assert_eq!(
            parse_ip_port("10.0.0.1:1790"),
            Some(("10.0.0.1".parse().unwrap(), Some(1790)))
        );
        assert_eq!(parse_ip_port("fd00::1"), Some(("fd00::1".parse().unwrap(), None)));
        assert_eq!(
            parse_ip_port("[fd00::1]:179"),
            Some(("fd00::1".parse().unwrap(), Some(179)))
        );
        assert_eq!(parse_ip_port("fd00::1:179x"), None);
        assert_eq!(parse_ip_port("10.0.0.1:99999"), None);
        assert_eq!(parse_ip_port("host:179"), None);
    }
}
