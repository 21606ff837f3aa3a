//! Kubernetes input types: `networking.k8s.io/v1 NetworkPolicy`, `v1 Namespace`,
//! `v1 ServiceAccount` and `v1 Pod` (`k8s.io/api`), with Go's field names and order.
//!
//! NetworkPolicy, Namespace and ServiceAccount are complete and reject unknown fields. A Pod
//! types what networking uses (metadata, `nodeName`, `serviceAccountName`, `hostNetwork`,
//! containers' and init containers' ports); every other field of `PodSpec` and `Container` is
//! known by name and kept as raw JSON, so a typo is still an error and real pod manifests load.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::meta::{ApiVersion, K8sKind, K8sObject, Kind};
use crate::meta::ObjectMeta;

/// `intstr.IntOrString`: a port number or a port name. A quoted number is a string, as in
/// Kubernetes (and then not a valid port name).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(untagged)]
pub enum IntOrString {
    Int(i64),
    Str(String),
}

impl<'de> Deserialize<'de> for IntOrString {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl serde::de::Visitor<'_> for V {
            type Value = IntOrString;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a port number or a port name")
            }
            fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<IntOrString, E> {
                Ok(IntOrString::Int(v))
            }
            fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<IntOrString, E> {
                i64::try_from(v)
                    .map(IntOrString::Int)
                    .map_err(|_| E::custom(format!("port {v} is out of range")))
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<IntOrString, E> {
                Ok(IntOrString::Str(v.to_string()))
            }
        }
        d.deserialize_any(V)
    }
}

impl std::fmt::Display for IntOrString {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            IntOrString::Int(n) => write!(f, "{n}"),
            IntOrString::Str(s) => f.write_str(s),
        }
    }
}

/// `metav1.LabelSelector`. An empty selector selects everything; an absent one (`None` where
/// it is optional) selects nothing or "the default", depending on the field.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct LabelSelector {
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub match_labels: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub match_expressions: Vec<LabelSelectorRequirement>,
}

impl LabelSelector {
    pub fn is_empty(&self) -> bool {
        self.match_labels.is_empty() && self.match_expressions.is_empty()
    }
}

/// One `matchExpressions` term: `In`, `NotIn`, `Exists` or `DoesNotExist`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct LabelSelectorRequirement {
    pub key: String,
    pub operator: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub values: Vec<String>,
}

/// `networking.k8s.io/v1 NetworkPolicy`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct NetworkPolicy {
    #[serde(default)]
    pub kind: Kind<NetworkPolicy>,
    #[serde(default)]
    pub api_version: ApiVersion<NetworkPolicy>,
    #[serde(default)]
    pub metadata: ObjectMeta,
    #[serde(default)]
    pub spec: NetworkPolicySpec,
    /// Present in Kubernetes 1.24–1.26 only; ignored.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<Value>,
}

impl K8sObject for NetworkPolicy {
    const K8S_KIND: K8sKind = K8sKind::NetworkPolicy;
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct NetworkPolicySpec {
    /// The pods of the policy's namespace it applies to; `{}` selects all of them.
    #[serde(default)]
    pub pod_selector: LabelSelector,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ingress: Vec<NetworkPolicyIngressRule>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub egress: Vec<NetworkPolicyEgressRule>,
    /// `Ingress` and/or `Egress`; defaulted by the API server (see
    /// [`super::netpol::apply_k8s_defaults`]).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub policy_types: Vec<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct NetworkPolicyIngressRule {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ports: Vec<NetworkPolicyPort>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub from: Vec<NetworkPolicyPeer>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct NetworkPolicyEgressRule {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ports: Vec<NetworkPolicyPort>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub to: Vec<NetworkPolicyPeer>,
}

/// A peer: pods (of the policy's namespace unless `namespaceSelector` is set), namespaces, or
/// an IP block.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct NetworkPolicyPeer {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pod_selector: Option<LabelSelector>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace_selector: Option<LabelSelector>,
    #[serde(default, rename = "ipBlock", skip_serializing_if = "Option::is_none")]
    pub ip_block: Option<IpBlock>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct IpBlock {
    pub cidr: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub except: Vec<String>,
}

/// A port: protocol (default TCP), a number or name, and an optional range end.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct NetworkPolicyPort {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub protocol: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub port: Option<IntOrString>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub end_port: Option<i64>,
}

/// `v1 Namespace`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Namespace {
    #[serde(default)]
    pub kind: Kind<Namespace>,
    #[serde(default)]
    pub api_version: ApiVersion<Namespace>,
    #[serde(default)]
    pub metadata: ObjectMeta,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub spec: Option<NamespaceSpec>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<Value>,
}

impl K8sObject for Namespace {
    const K8S_KIND: K8sKind = K8sKind::Namespace;
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NamespaceSpec {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub finalizers: Vec<String>,
}

/// `v1 ServiceAccount`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ServiceAccount {
    #[serde(default)]
    pub kind: Kind<ServiceAccount>,
    #[serde(default)]
    pub api_version: ApiVersion<ServiceAccount>,
    #[serde(default)]
    pub metadata: ObjectMeta,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secrets: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image_pull_secrets: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub automount_service_account_token: Option<bool>,
}

impl K8sObject for ServiceAccount {
    const K8S_KIND: K8sKind = K8sKind::ServiceAccount;
}

/// `v1 Pod`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Pod {
    #[serde(default)]
    pub kind: Kind<Pod>,
    #[serde(default)]
    pub api_version: ApiVersion<Pod>,
    #[serde(default)]
    pub metadata: ObjectMeta,
    #[serde(default)]
    pub spec: PodSpec,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<Value>,
}

impl K8sObject for Pod {
    const K8S_KIND: K8sKind = K8sKind::Pod;
}

/// Declares a struct whose named fields are typed and whose other (known) fields are kept as
/// raw JSON, in one list so field order stays Go's.
macro_rules! spec_struct {
    (
        $(#[$m:meta])* pub struct $name:ident {
            typed { $( $(#[$fm:meta])* $field:ident : $ty:ty ),* $(,)? }
            raw { $( $raw:ident = $json:literal ),* $(,)? }
        }
    ) => {
        $(#[$m])*
        #[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
        #[serde(deny_unknown_fields, rename_all = "camelCase")]
        pub struct $name {
            $( $(#[$fm])* pub $field: $ty, )*
            $(
                #[serde(default, rename = $json, skip_serializing_if = "Option::is_none")]
                pub $raw: Option<Value>,
            )*
        }
    };
}

spec_struct! {
    /// `PodSpec`: the networking fields typed, the rest known and kept raw.
    pub struct PodSpec {
        typed {
            #[serde(default, skip_serializing_if = "Vec::is_empty")]
            init_containers: Vec<Container>,
            #[serde(default)]
            containers: Vec<Container>,
            /// The node the pod runs on.
            #[serde(default, skip_serializing_if = "String::is_empty")]
            node_name: String,
            /// Empty means `default` (the API server's ServiceAccount admission).
            #[serde(default, skip_serializing_if = "String::is_empty")]
            service_account_name: String,
            /// Deprecated alias of `serviceAccountName`.
            #[serde(default, skip_serializing_if = "String::is_empty")]
            service_account: String,
            /// Host-networked pods have no WorkloadEndpoint.
            #[serde(default, skip_serializing_if = "std::ops::Not::not")]
            host_network: bool,
        }
        raw {
            volumes = "volumes",
            ephemeral_containers = "ephemeralContainers",
            restart_policy = "restartPolicy",
            termination_grace_period_seconds = "terminationGracePeriodSeconds",
            active_deadline_seconds = "activeDeadlineSeconds",
            dns_policy = "dnsPolicy",
            node_selector = "nodeSelector",
            automount_service_account_token = "automountServiceAccountToken",
            host_pid = "hostPID",
            host_ipc = "hostIPC",
            share_process_namespace = "shareProcessNamespace",
            security_context = "securityContext",
            image_pull_secrets = "imagePullSecrets",
            hostname = "hostname",
            subdomain = "subdomain",
            affinity = "affinity",
            scheduler_name = "schedulerName",
            tolerations = "tolerations",
            host_aliases = "hostAliases",
            priority_class_name = "priorityClassName",
            priority = "priority",
            dns_config = "dnsConfig",
            readiness_gates = "readinessGates",
            runtime_class_name = "runtimeClassName",
            enable_service_links = "enableServiceLinks",
            preemption_policy = "preemptionPolicy",
            overhead = "overhead",
            topology_spread_constraints = "topologySpreadConstraints",
            set_hostname_as_fqdn = "setHostnameAsFQDN",
            os = "os",
            host_users = "hostUsers",
            scheduling_gates = "schedulingGates",
            resource_claims = "resourceClaims",
            resources = "resources",
            hostname_override = "hostnameOverride",
        }
    }
}

spec_struct! {
    /// A container: its name and ports typed, the rest known and kept raw.
    pub struct Container {
        typed {
            #[serde(default)]
            name: String,
            #[serde(default, skip_serializing_if = "Option::is_none")]
            image: Option<String>,
            #[serde(default, skip_serializing_if = "Option::is_none")]
            command: Option<Vec<String>>,
            #[serde(default, skip_serializing_if = "Option::is_none")]
            args: Option<Vec<String>>,
            #[serde(default, skip_serializing_if = "Vec::is_empty")]
            ports: Vec<ContainerPort>,
        }
        raw {
            working_dir = "workingDir",
            env_from = "envFrom",
            env = "env",
            resources = "resources",
            resize_policy = "resizePolicy",
            restart_policy = "restartPolicy",
            restart_policy_rules = "restartPolicyRules",
            volume_mounts = "volumeMounts",
            volume_devices = "volumeDevices",
            liveness_probe = "livenessProbe",
            readiness_probe = "readinessProbe",
            startup_probe = "startupProbe",
            lifecycle = "lifecycle",
            termination_message_path = "terminationMessagePath",
            termination_message_policy = "terminationMessagePolicy",
            image_pull_policy = "imagePullPolicy",
            security_context = "securityContext",
            stdin = "stdin",
            stdin_once = "stdinOnce",
            tty = "tty",
        }
    }
}

fn is_zero(n: &i64) -> bool {
    *n == 0
}

/// `ContainerPort`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ContainerPort {
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub name: String,
    #[serde(default, skip_serializing_if = "is_zero")]
    pub host_port: i64,
    pub container_port: i64,
    /// `TCP` (default), `UDP` or `SCTP`.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub protocol: String,
    #[serde(default, rename = "hostIP", skip_serializing_if = "String::is_empty")]
    pub host_ip: String,
}
