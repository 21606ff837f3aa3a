//! Namespaces, service accounts and pods → what Calico keeps for them on an etcd datastore:
//!
//! - Namespace `<ns>` → Profile `kns.<ns>`: allow both ways, `labelsToApply` = every namespace
//!   label as `pcns.<key>` plus `pcns.projectcalico.org/name: <ns>` (`NamespaceToProfile`,
//!   written by kube-controllers' namespace controller with only the name as metadata).
//! - ServiceAccount `<sa>` in `<ns>` → Profile `ksa.<ns>.<sa>`: no rules, `labelsToApply` =
//!   `pcsa.<key>` plus `pcsa.projectcalico.org/name: <sa>` (`ServiceAccountToProfile`).
//! - Pod → the WorkloadEndpoint fields Calico's CNI plugin (with `policy: k8s`) and the pod
//!   controller derive from it (`workload_endpoint_default.go`): name
//!   `<node>-k8s-<pod>-eth0`, labels = pod labels + `projectcalico.org/namespace`,
//!   `projectcalico.org/orchestrator: k8s` and (names under 63 characters)
//!   `projectcalico.org/serviceaccount`; profiles `[kns.<ns>, ksa.<ns>.<sa>]`; named ports (and
//!   ports with a host port) of containers and init containers, protocol `TCP`/`UDP`/`SCTP`;
//!   `serviceAccountName`; `allowSpoofedSourcePrefixes` from the
//!   `cni.projectcalico.org/allowedSourcePrefixes` annotation.
//!
//! What the API server adds is added here too ([`apply_namespace_defaults`],
//! [`apply_pod_defaults`]): the `kubernetes.io/metadata.name` label on every namespace and the
//! `default` service account of a pod that names none. Everything here is pure: the caller
//! (the lab, the CNI plugin) fills in addresses, interface, container ID and MAC.

use std::collections::BTreeMap;

use super::invalid::{K8sFieldError, K8sInvalid};
use super::meta::K8sKind;
use super::netpol::check_object_meta;
use super::types::{Container, Namespace, Pod, ServiceAccount};
use crate::meta::ObjectMeta;
use crate::numorstring::Protocol;
use crate::resources::{
    Action, Profile, ProfileSpec, Rule, WorkloadEndpoint, WorkloadEndpointPort, WorkloadEndpointSpec,
};

/// Prefix of namespace profiles.
pub const NAMESPACE_PROFILE_PREFIX: &str = "kns.";
/// Prefix of service-account profiles.
pub const SERVICE_ACCOUNT_PROFILE_PREFIX: &str = "ksa.";
/// Prefix of namespace labels inherited through `kns.` profiles.
pub const NAMESPACE_LABEL_PREFIX: &str = "pcns.";
/// Prefix of service-account labels inherited through `ksa.` profiles.
pub const SERVICE_ACCOUNT_LABEL_PREFIX: &str = "pcsa.";
/// The label (under a prefix) naming the namespace or service account itself.
pub const NAME_LABEL: &str = "projectcalico.org/name";
/// The label Kubernetes puts on every namespace with its name.
pub const METADATA_NAME_LABEL: &str = "kubernetes.io/metadata.name";
/// Labels Calico puts on Kubernetes endpoints.
pub const LABEL_NAMESPACE: &str = "projectcalico.org/namespace";
pub const LABEL_ORCHESTRATOR: &str = "projectcalico.org/orchestrator";
pub const LABEL_SERVICE_ACCOUNT: &str = "projectcalico.org/serviceaccount";
/// The service account of a pod that names none.
pub const DEFAULT_SERVICE_ACCOUNT: &str = "default";
/// Annotation listing the source prefixes a pod may send from besides its own addresses.
pub const ALLOWED_SOURCE_PREFIXES_ANNOTATION: &str = "cni.projectcalico.org/allowedSourcePrefixes";

/// The profile name of a namespace (`kns.<ns>`).
pub fn namespace_profile_name(namespace: &str) -> String {
    format!("{NAMESPACE_PROFILE_PREFIX}{namespace}")
}

/// The profile name of a service account (`ksa.<ns>.<sa>`; an empty namespace is `default`).
pub fn service_account_profile_name(namespace: &str, sa: &str) -> String {
    let ns = if namespace.is_empty() {
        "default"
    } else {
        namespace
    };
    format!("{SERVICE_ACCOUNT_PROFILE_PREFIX}{ns}.{sa}")
}

/// The API server's namespace default: the `kubernetes.io/metadata.name` label.
pub fn apply_namespace_defaults(ns: &mut Namespace) {
    let name = ns.metadata.name.clone();
    ns.metadata.labels.insert(METADATA_NAME_LABEL.to_string(), name);
}

/// The API server's pod default: service account `default` when none is named (the
/// ServiceAccount admission plugin), mirrored in the deprecated `serviceAccount`.
pub fn apply_pod_defaults(pod: &mut Pod) {
    let s = &mut pod.spec;
    if s.service_account_name.is_empty() {
        s.service_account_name = if s.service_account.is_empty() {
            DEFAULT_SERVICE_ACCOUNT.to_string()
        } else {
            s.service_account.clone()
        };
    }
    if s.service_account.is_empty() {
        s.service_account = s.service_account_name.clone();
    }
}

fn prefixed(prefix: &str, labels: &BTreeMap<String, String>, name: &str) -> BTreeMap<String, String> {
    let mut out: BTreeMap<String, String> = labels
        .iter()
        .map(|(k, v)| (format!("{prefix}{k}"), v.clone()))
        .collect();
    out.insert(format!("{prefix}{NAME_LABEL}"), name.to_string());
    out
}

/// Namespace → `kns.<ns>` (with the API server's `kubernetes.io/metadata.name` label).
pub fn namespace_to_profile(ns: &Namespace) -> Profile {
    let mut ns = ns.clone();
    apply_namespace_defaults(&mut ns);
    let name = &ns.metadata.name;
    Profile::new(
        ObjectMeta::named(namespace_profile_name(name)),
        ProfileSpec {
            ingress: vec![Rule::action(Action::Allow)],
            egress: vec![Rule::action(Action::Allow)],
            labels_to_apply: prefixed(NAMESPACE_LABEL_PREFIX, &ns.metadata.labels, name),
        },
    )
}

/// ServiceAccount → `ksa.<ns>.<sa>`.
pub fn service_account_to_profile(sa: &ServiceAccount) -> Profile {
    let m = &sa.metadata;
    Profile::new(
        ObjectMeta::named(service_account_profile_name(&m.namespace, &m.name)),
        ProfileSpec {
            labels_to_apply: prefixed(SERVICE_ACCOUNT_LABEL_PREFIX, &m.labels, &m.name),
            ..Default::default()
        },
    )
}

/// The service account every namespace has (`default`), for callers that create namespaces.
pub fn default_service_account(namespace: &str) -> ServiceAccount {
    ServiceAccount {
        metadata: ObjectMeta::namespaced(namespace, DEFAULT_SERVICE_ACCOUNT),
        ..Default::default()
    }
}

/// Named ports (and ports with a host port) of `containers`, as Calico keeps them.
fn endpoint_ports(containers: &[Container], out: &mut Vec<WorkloadEndpointPort>) {
    for c in containers {
        for p in &c.ports {
            if p.container_port == 0 || (p.host_port == 0 && p.name.is_empty()) {
                continue;
            }
            let protocol = match p.protocol.as_str() {
                "" | "TCP" => "TCP",
                "UDP" => "UDP",
                "SCTP" => "SCTP",
                _ => continue, // Calico skips other protocols.
            };
            out.push(WorkloadEndpointPort {
                name: p.name.clone(),
                protocol: Protocol::name(protocol),
                port: p.container_port as u16,
                host_port: p.host_port as u16,
                host_ip: p.host_ip.clone(),
            });
        }
    }
}

/// The WorkloadEndpoint Calico writes for `pod` on `node` (its `spec.nodeName`, or the node a
/// caller places it on), without what only the CNI ADD knows (addresses, interface, container
/// ID, MAC). Errors name the pod and field, in Kubernetes' words.
pub fn pod_to_workload_endpoint(pod: &Pod, node: &str) -> Result<WorkloadEndpoint, K8sInvalid> {
    validate_pod(pod)?;
    let mut pod = pod.clone();
    apply_pod_defaults(&mut pod);
    let m = &pod.metadata;
    let s = &pod.spec;
    let sa = &s.service_account_name;
    let mut labels = m.labels.clone();
    labels.insert(LABEL_NAMESPACE.to_string(), m.namespace.clone());
    labels.insert(LABEL_ORCHESTRATOR.to_string(), "k8s".to_string());
    if sa.len() < 63 {
        labels.insert(LABEL_SERVICE_ACCOUNT.to_string(), sa.clone());
    }
    let mut ports = Vec::new();
    endpoint_ports(&s.containers, &mut ports);
    endpoint_ports(&s.init_containers, &mut ports);
    let allow_spoofed = allowed_source_prefixes(&pod)?;
    let mut meta = ObjectMeta::namespaced(
        &m.namespace,
        WorkloadEndpoint::name_for(node, "k8s", &m.name, "eth0"),
    );
    meta.labels = labels;
    meta.generate_name = m.generate_name.clone();
    Ok(WorkloadEndpoint::new(
        meta,
        WorkloadEndpointSpec {
            orchestrator: "k8s".into(),
            node: node.to_string(),
            pod: m.name.clone(),
            endpoint: "eth0".into(),
            service_account_name: sa.clone(),
            profiles: vec![
                namespace_profile_name(&m.namespace),
                service_account_profile_name(&m.namespace, sa),
            ],
            ports,
            allow_spoofed_source_prefixes: allow_spoofed,
            ..Default::default()
        },
    ))
}

fn invalid(pod: &Pod, errors: Vec<K8sFieldError>) -> K8sInvalid {
    K8sInvalid {
        kind: K8sKind::Pod,
        namespace: pod.metadata.namespace.clone(),
        name: pod.metadata.name.clone(),
        errors,
    }
}

/// `cni.projectcalico.org/allowedSourcePrefixes`: a JSON list of CIDRs, masked.
fn allowed_source_prefixes(pod: &Pod) -> Result<Vec<String>, K8sInvalid> {
    let Some(a) = pod.metadata.annotations.get(ALLOWED_SOURCE_PREFIXES_ANNOTATION) else {
        return Ok(Vec::new());
    };
    if a.is_empty() {
        return Ok(Vec::new());
    }
    let field = format!("metadata.annotations[{ALLOWED_SOURCE_PREFIXES_ANNOTATION}]");
    let list: Vec<String> = serde_json::from_str(a).map_err(|e| {
        invalid(
            pod,
            vec![K8sFieldError::invalid_str(
                &field,
                a,
                &format!("not a JSON list of CIDRs: {e}"),
            )],
        )
    })?;
    list.iter()
        .map(|p| {
            p.parse::<ipnet::IpNet>()
                .map(|n| n.trunc().to_string())
                .map_err(|_| {
                    invalid(
                        pod,
                        vec![K8sFieldError::invalid_str(&field, p, "must be a valid CIDR")],
                    )
                })
        })
        .collect()
}

/// What the API server checks of the fields used here: metadata, ports, the service account.
pub fn validate_pod(pod: &Pod) -> Result<(), K8sInvalid> {
    let mut errs = Vec::new();
    check_object_meta(&mut errs, &pod.metadata, true);
    let s = &pod.spec;
    if s.containers.is_empty() {
        errs.push(K8sFieldError::required("spec.containers", ""));
    }
    for (field, list) in [
        ("spec.containers", &s.containers),
        ("spec.initContainers", &s.init_containers),
    ] {
        for (i, c) in list.iter().enumerate() {
            let at = format!("{field}[{i}]");
            if c.name.is_empty() {
                errs.push(K8sFieldError::required(&format!("{at}.name"), ""));
            }
            for (j, p) in c.ports.iter().enumerate() {
                let pp = format!("{at}.ports[{j}]");
                if !(1..=65535).contains(&p.container_port) {
                    errs.push(K8sFieldError::invalid_num(
                        &format!("{pp}.containerPort"),
                        p.container_port,
                        "must be between 1 and 65535, inclusive",
                    ));
                }
                if !(0..=65535).contains(&p.host_port) {
                    errs.push(K8sFieldError::invalid_num(
                        &format!("{pp}.hostPort"),
                        p.host_port,
                        "must be between 1 and 65535, inclusive",
                    ));
                }
                if !p.name.is_empty() && !crate::validate::is_iana_svc_name(&p.name) {
                    errs.push(K8sFieldError::invalid_str(
                        &format!("{pp}.name"),
                        &p.name,
                        "must be no more than 15 characters of a-z, 0-9 and '-', with at least one letter",
                    ));
                }
                if !["", "TCP", "UDP", "SCTP"].contains(&p.protocol.as_str()) {
                    errs.push(K8sFieldError::not_supported(
                        &format!("{pp}.protocol"),
                        &p.protocol,
                        &["SCTP", "TCP", "UDP"],
                    ));
                }
            }
        }
    }
    for (field, sa) in [
        ("spec.serviceAccountName", &s.service_account_name),
        ("spec.serviceAccount", &s.service_account),
    ] {
        if !sa.is_empty() && !crate::validate::is_dns1123_subdomain(sa) {
            errs.push(K8sFieldError::invalid_str(
                field,
                sa,
                "a lowercase RFC 1123 subdomain",
            ));
        }
    }
    if !s.node_name.is_empty() && !crate::validate::is_dns1123_subdomain(&s.node_name) {
        errs.push(K8sFieldError::invalid_str(
            "spec.nodeName",
            &s.node_name,
            "a lowercase RFC 1123 subdomain",
        ));
    }
    if errs.is_empty() {
        Ok(())
    } else {
        Err(invalid(pod, errs))
    }
}

/// What the API server checks of a Namespace (name a DNS label, labels).
pub fn validate_namespace(ns: &Namespace) -> Result<(), K8sInvalid> {
    let mut errs = Vec::new();
    check_object_meta(&mut errs, &ns.metadata, false);
    if !ns.metadata.name.is_empty() && !crate::validate::is_dns1123_label(&ns.metadata.name) {
        errs.push(K8sFieldError::invalid_str(
            "metadata.name",
            &ns.metadata.name,
            "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character",
        ));
    }
    result(K8sKind::Namespace, &ns.metadata, errs)
}

/// What the API server checks of a ServiceAccount.
pub fn validate_service_account(sa: &ServiceAccount) -> Result<(), K8sInvalid> {
    let mut errs = Vec::new();
    check_object_meta(&mut errs, &sa.metadata, true);
    result(K8sKind::ServiceAccount, &sa.metadata, errs)
}

fn result(kind: K8sKind, m: &ObjectMeta, errors: Vec<K8sFieldError>) -> Result<(), K8sInvalid> {
    if errors.is_empty() {
        Ok(())
    } else {
        Err(K8sInvalid {
            kind,
            namespace: m.namespace.clone(),
            name: m.name.clone(),
            errors,
        })
    }
}
