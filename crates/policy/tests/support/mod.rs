//! Shared fixtures for the calculation tests: resources built the way Calico's CNI plugin and
//! controllers write them, and a cluster of calculations (one per node) whose deltas are
//! applied to mirrors and checked against the full state after every change.

#![allow(dead_code)]

use std::collections::BTreeMap;
use std::net::IpAddr;

use brindle_model::ObjectMeta;
use brindle_model::numorstring::Protocol;
use brindle_model::resources::{
    Profile, ProfileSpec, Rule, WorkloadEndpoint, WorkloadEndpointPort, WorkloadEndpointSpec,
};
use brindle_policy::eval::{self, Decision, Packet};
use brindle_policy::ir::{EndpointKey, PolicyId, Settings, State};
use brindle_policy::selectors::{global_policy_selector, network_policy_selector};
use brindle_policy::{PolicyCalculator, PolicyInput};

pub mod netpol;

pub fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

/// Rules from YAML (a list of Calico v3 rules).
pub fn rules(yaml: &str) -> Vec<Rule> {
    serde_norway::from_str(yaml).unwrap_or_else(|e| panic!("rules {yaml:?}: {e}"))
}

/// A pod's endpoint as the CNI plugin writes it with `policy.type: k8s`.
pub struct Pod<'a> {
    pub namespace: &'a str,
    pub name: &'a str,
    pub node: &'a str,
    pub labels: &'a [(&'a str, &'a str)],
    pub ips: &'a [&'a str],
    pub service_account: &'a str,
    /// (name, protocol, port)
    pub ports: &'a [(&'a str, &'a str, u16)],
}

impl Pod<'_> {
    pub fn key(&self) -> EndpointKey {
        EndpointKey::new(
            self.namespace,
            WorkloadEndpoint::name_for(self.node, "k8s", self.name, "eth0"),
        )
    }

    pub fn wep(&self) -> WorkloadEndpoint {
        let mut l = labels(self.labels);
        l.insert("projectcalico.org/namespace".into(), self.namespace.into());
        l.insert("projectcalico.org/orchestrator".into(), "k8s".into());
        let mut profiles = vec![format!("kns.{}", self.namespace)];
        if !self.service_account.is_empty() {
            l.insert(
                "projectcalico.org/serviceaccount".into(),
                self.service_account.into(),
            );
            profiles.push(format!("ksa.{}.{}", self.namespace, self.service_account));
        }
        let mut meta = ObjectMeta::namespaced(self.namespace, self.key().name);
        meta.labels = l;
        WorkloadEndpoint::new(
            meta,
            WorkloadEndpointSpec {
                orchestrator: "k8s".into(),
                node: self.node.into(),
                pod: self.name.into(),
                endpoint: "eth0".into(),
                service_account_name: self.service_account.into(),
                ip_networks: self
                    .ips
                    .iter()
                    .map(|ip| {
                        if ip.contains(':') {
                            format!("{ip}/128")
                        } else {
                            format!("{ip}/32")
                        }
                    })
                    .collect(),
                profiles,
                interface_name: format!("cali{}{}", self.namespace, self.name),
                ports: self
                    .ports
                    .iter()
                    .map(|(n, p, port)| WorkloadEndpointPort {
                        name: n.to_string(),
                        protocol: Protocol::Str(p.to_string()),
                        port: *port,
                        host_port: 0,
                        host_ip: String::new(),
                    })
                    .collect(),
                ..WorkloadEndpointSpec::default()
            },
        )
    }

    pub fn ip(&self) -> IpAddr {
        self.ips[0].parse().unwrap()
    }

    pub fn ip6(&self) -> IpAddr {
        self.ips
            .iter()
            .find(|i| i.contains(':'))
            .expect("a v6 address")
            .parse()
            .unwrap()
    }
}

/// `kns.<ns>` as Calico's namespace controller writes it: allow both ways, namespace labels
/// under `pcns.`.
pub fn namespace_profile(ns: &str, ns_labels: &[(&str, &str)]) -> Profile {
    let mut to_apply: BTreeMap<String, String> = ns_labels
        .iter()
        .map(|(k, v)| (format!("pcns.{k}"), v.to_string()))
        .collect();
    to_apply.insert("pcns.projectcalico.org/name".into(), ns.into());
    to_apply.insert("pcns.kubernetes.io/metadata.name".into(), ns.into());
    Profile::new(
        ObjectMeta::named(format!("kns.{ns}")),
        ProfileSpec {
            ingress: rules("- action: Allow"),
            egress: rules("- action: Allow"),
            labels_to_apply: to_apply,
        },
    )
}

/// `ksa.<ns>.<sa>`: no rules, service-account labels under `pcsa.`.
pub fn service_account_profile(ns: &str, sa: &str, sa_labels: &[(&str, &str)]) -> Profile {
    let mut to_apply: BTreeMap<String, String> = sa_labels
        .iter()
        .map(|(k, v)| (format!("pcsa.{k}"), v.to_string()))
        .collect();
    to_apply.insert("pcsa.projectcalico.org/name".into(), sa.into());
    Profile::new(
        ObjectMeta::named(format!("ksa.{ns}.{sa}")),
        ProfileSpec {
            labels_to_apply: to_apply,
            ..ProfileSpec::default()
        },
    )
}

/// A namespaced NetworkPolicy in the calculation's input form.
pub fn network_policy(
    ns: &str,
    name: &str,
    order: Option<f64>,
    selector: &str,
    ingress: Option<&str>,
    egress: Option<&str>,
) -> PolicyInput {
    PolicyInput {
        id: PolicyId::network(ns, name),
        tier: String::new(),
        order,
        selector: network_policy_selector(selector, ns, "").unwrap(),
        ingress: ingress.map(rules),
        egress: egress.map(rules),
    }
}

/// A GlobalNetworkPolicy in the calculation's input form.
pub fn global_policy(
    name: &str,
    order: Option<f64>,
    selector: &str,
    namespace_selector: &str,
    ingress: Option<&str>,
    egress: Option<&str>,
) -> PolicyInput {
    PolicyInput {
        id: PolicyId::global(name),
        tier: String::new(),
        order,
        selector: global_policy_selector(selector, namespace_selector, "").unwrap(),
        ingress: ingress.map(rules),
        egress: egress.map(rules),
    }
}

/// One calculation per node, each fed every change; after every change each node's delta is
/// applied to a mirror that must equal the node's full state.
pub struct Cluster {
    pub nodes: Vec<(String, PolicyCalculator, State)>,
}

impl Cluster {
    pub fn new(nodes: &[&str]) -> Cluster {
        Cluster::with_settings(nodes, Settings::default())
    }

    pub fn with_settings(nodes: &[&str], settings: Settings) -> Cluster {
        let mut c = Cluster {
            nodes: nodes
                .iter()
                .map(|n| {
                    (
                        n.to_string(),
                        PolicyCalculator::new(*n, settings.clone()),
                        State::default(),
                    )
                })
                .collect(),
        };
        c.sync();
        c
    }

    /// Applies a change on every node, then flushes and checks.
    pub fn apply(&mut self, f: impl Fn(&mut PolicyCalculator)) {
        for (_, calc, _) in &mut self.nodes {
            f(calc);
        }
        self.sync();
    }

    fn sync(&mut self) {
        for (name, calc, mirror) in &mut self.nodes {
            let delta = calc.flush();
            mirror.apply(&delta);
            let full = calc.state();
            assert_eq!(*mirror, full, "node {name}: deltas diverged from the full state");
            assert!(
                calc.flush().is_empty(),
                "node {name}: a second flush is not empty"
            );
        }
    }

    pub fn add_pod(&mut self, pod: &Pod<'_>) {
        let wep = pod.wep();
        self.apply(|c| c.upsert_workload_endpoint(&wep).unwrap());
    }

    pub fn add_profile(&mut self, p: &Profile) {
        self.apply(|c| c.upsert_profile(p).unwrap());
    }

    pub fn add_policy(&mut self, p: &PolicyInput) {
        self.apply(|c| c.upsert_policy(p.clone()).unwrap());
    }

    pub fn states(&self) -> Vec<&State> {
        self.nodes.iter().map(|(_, _, s)| s).collect()
    }

    pub fn state(&self, node: &str) -> &State {
        &self.nodes.iter().find(|(n, _, _)| n == node).expect("node").2
    }

    pub fn decide(&self, src: &Pod<'_>, dst: &Pod<'_>, packet: &Packet) -> Decision {
        eval::workload_to_workload(&self.states(), &src.key(), &dst.key(), packet)
    }

    pub fn tcp(&self, src: &Pod<'_>, dst: &Pod<'_>, port: u16) -> bool {
        self.decide(src, dst, &Packet::tcp(src.ip(), dst.ip(), port))
            .allowed
    }
}
