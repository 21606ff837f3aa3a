//! The calculation's input forms, and the checks and normalisation Calico applies before Felix
//! sees an object (`libcalico-go` update processors, `clientv3` defaulting).

use std::collections::BTreeMap;

use brindle_model::resources::{
    Action as V3Action, BUILTIN_TIERS, GlobalNetworkPolicy, GlobalNetworkSet, NetworkPolicy, NetworkSet,
    PolicyType, Rule as V3Rule, Tier, WorkloadEndpoint,
};
use ipnet::IpNet;

use crate::error::PolicyError;
use crate::ir::{EndpointKey, PolicyId, TierDefault};
use crate::rules::{endpoint_port_protocol, parse_net};
use crate::selectors::{
    LABEL_NAMESPACE, LABEL_ORCHESTRATOR, LABEL_SERVICE_ACCOUNT, global_policy_selector,
    network_policy_selector,
};

/// Labels of an endpoint or network set.
pub type Labels = BTreeMap<String, String>;

/// A policy as the calculation takes it: Calico's backend form (`model.Policy`), which the
/// syncer makes from a NetworkPolicy or GlobalNetworkPolicy. Policies that never reach workload
/// chains (staged kinds, `doNotTrack`, `preDNAT`) are not given to the calculation at all.
#[derive(Debug, Clone, PartialEq)]
pub struct PolicyInput {
    pub id: PolicyId,
    /// The tier; empty means `default`.
    pub tier: String,
    /// Lower runs first; `None` runs after every number.
    pub order: Option<f64>,
    /// The endpoint selector after the kind's rewriting
    /// ([`crate::selectors::network_policy_selector`],
    /// [`crate::selectors::global_policy_selector`]).
    pub selector: String,
    /// The ingress rules when the policy governs ingress (its `types`), else `None`.
    pub ingress: Option<Vec<V3Rule>>,
    /// The egress rules when the policy governs egress, else `None`.
    pub egress: Option<Vec<V3Rule>>,
}

impl PolicyInput {
    /// The tier name with the default filled in.
    pub fn tier_name(&self) -> &str {
        if self.tier.is_empty() {
            "default"
        } else {
            &self.tier
        }
    }

    pub(crate) fn object(&self) -> String {
        let kind = self.id.kind.name();
        if self.id.namespace.is_empty() {
            format!("{kind} {}", self.id.name)
        } else {
            format!("{kind} {}/{}", self.id.namespace, self.id.name)
        }
    }
}

/// Which directions a policy with these `types` governs. Felix reads an empty list as both
/// (`policy_sorter.go`; the API client stores the defaulted value, so this is for old data).
pub fn governed_directions(types: &[PolicyType]) -> (bool, bool) {
    if types.is_empty() {
        return (true, true);
    }
    (
        types.contains(&PolicyType::Ingress),
        types.contains(&PolicyType::Egress),
    )
}

fn governed(rules: &[V3Rule], governs: bool) -> Option<Vec<V3Rule>> {
    governs.then(|| rules.to_vec())
}

impl PolicyInput {
    /// A NetworkPolicy (converted Kubernetes ones, `knp.default.<name>`, included), with its
    /// selector rewritten as Calico's syncer does.
    pub fn from_network_policy(np: &NetworkPolicy) -> Result<PolicyInput, PolicyError> {
        let (ns, name) = (&np.metadata.namespace, &np.metadata.name);
        let object = format!("NetworkPolicy {ns}/{name}");
        let spec = &np.spec;
        let selector = network_policy_selector(&spec.selector, ns, &spec.service_account_selector)
            .map_err(|e| PolicyError::new(&object, format!("selector: {e}")))?;
        let (ingress, egress) = governed_directions(&spec.types);
        Ok(PolicyInput {
            id: PolicyId::network(ns.clone(), name.clone()),
            tier: spec.tier.clone(),
            order: spec.order,
            selector,
            ingress: governed(&spec.ingress, ingress),
            egress: governed(&spec.egress, egress),
        })
    }

    /// A GlobalNetworkPolicy; `None` for one that only host endpoints use (`doNotTrack`,
    /// `preDNAT`: Felix never puts those in a workload's chains).
    pub fn from_global_network_policy(gnp: &GlobalNetworkPolicy) -> Result<Option<PolicyInput>, PolicyError> {
        let name = &gnp.metadata.name;
        let object = format!("GlobalNetworkPolicy {name}");
        let spec = &gnp.spec;
        if spec.do_not_track || spec.pre_dnat {
            return Ok(None);
        }
        let selector = global_policy_selector(
            &spec.selector,
            &spec.namespace_selector,
            &spec.service_account_selector,
        )
        .map_err(|e| PolicyError::new(&object, format!("selector: {e}")))?;
        let (ingress, egress) = governed_directions(&spec.types);
        Ok(Some(PolicyInput {
            id: PolicyId::global(name.clone()),
            tier: spec.tier.clone(),
            order: spec.order,
            selector,
            ingress: governed(&spec.ingress, ingress),
            egress: governed(&spec.egress, egress),
        }))
    }
}

/// A NetworkSet (namespaced) or GlobalNetworkSet (empty namespace).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NetworkSetInput {
    pub namespace: String,
    pub name: String,
    pub labels: Labels,
    pub nets: Vec<String>,
}

impl NetworkSetInput {
    pub fn from_network_set(set: &NetworkSet) -> NetworkSetInput {
        NetworkSetInput {
            namespace: set.metadata.namespace.clone(),
            name: set.metadata.name.clone(),
            labels: set.metadata.labels.clone(),
            nets: set.spec.nets.clone(),
        }
    }

    pub fn from_global_network_set(set: &GlobalNetworkSet) -> NetworkSetInput {
        NetworkSetInput {
            namespace: String::new(),
            name: set.metadata.name.clone(),
            labels: set.metadata.labels.clone(),
            nets: set.spec.nets.clone(),
        }
    }
}

/// A Tier.
#[derive(Debug, Clone, PartialEq)]
pub struct TierInput {
    pub name: String,
    /// `None` sorts after every number.
    pub order: Option<f64>,
    pub default_action: TierDefault,
}

fn tier_default(action: V3Action) -> TierDefault {
    match action {
        V3Action::Pass => TierDefault::Pass,
        _ => TierDefault::Deny,
    }
}

impl TierInput {
    /// A Tier; any default action but `Pass` is `Deny` (`tierprocessor.go`).
    pub fn from_tier(tier: &Tier) -> TierInput {
        TierInput {
            name: tier.metadata.name.clone(),
            order: tier.spec.order,
            default_action: tier_default(tier.spec.effective_default_action()),
        }
    }
}

/// The tiers every Calico cluster has (`clientv3` creates them at start): a Tier object of the
/// same name replaces the built-in values.
pub(crate) fn builtin_tier(name: &str) -> Option<(Option<f64>, TierDefault)> {
    BUILTIN_TIERS
        .iter()
        .find(|(n, _, _)| *n == name)
        .map(|(_, order, action)| (Some(*order), tier_default(*action)))
}

/// A named port of an endpoint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct NamedPort {
    pub name: String,
    pub protocol: u8,
    pub port: u16,
}

/// What the calculation keeps of an endpoint or network set.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ItemData {
    pub labels: Labels,
    pub profiles: Vec<String>,
    pub nets: Vec<IpNet>,
    pub ports: Vec<NamedPort>,
    /// Set for an endpoint on this node.
    pub local: Option<LocalEndpoint>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct LocalEndpoint {
    pub interface: String,
    pub allow_spoofed_sources: Vec<IpNet>,
}

/// The identity of a labelled item.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(crate) enum ItemKey {
    Endpoint(EndpointKey),
    NetworkSet { namespace: String, name: String },
}

fn parse_nets(object: &str, field: &str, nets: &[String]) -> Result<Vec<IpNet>, PolicyError> {
    nets.iter()
        .map(|n| {
            parse_net(n).ok_or_else(|| {
                PolicyError::new(object, format!("{field}: {n:?} is not a CIDR or an address"))
            })
        })
        .collect()
}

/// Checks a WorkloadEndpoint and takes what the calculation needs. The labels Calico's client
/// forces on every endpoint are added when missing (`projectcalico.org/namespace`, `…/
/// orchestrator`, and `…/serviceaccount` from `serviceAccountName` when it is under 63
/// characters), so endpoints written by other tools select the same way.
pub(crate) fn workload_endpoint(
    wep: &WorkloadEndpoint,
    local_node: &str,
) -> Result<(EndpointKey, ItemData), PolicyError> {
    let meta = &wep.metadata;
    let object = format!("WorkloadEndpoint {}/{}", meta.namespace, meta.name);
    if meta.name.is_empty() {
        return Err(PolicyError::new(object, "metadata.name is empty"));
    }
    let spec = &wep.spec;
    let nets = parse_nets(&object, "spec.ipNetworks", &spec.ip_networks)?;
    let allow_spoofed = parse_nets(
        &object,
        "spec.allowSpoofedSourcePrefixes",
        &spec.allow_spoofed_source_prefixes,
    )?;
    let local = if spec.node == local_node {
        if spec.interface_name.is_empty() {
            return Err(PolicyError::new(
                object,
                "spec.interfaceName is empty on a local endpoint",
            ));
        }
        Some(LocalEndpoint {
            interface: spec.interface_name.clone(),
            allow_spoofed_sources: allow_spoofed,
        })
    } else {
        None
    };
    let mut labels = meta.labels.clone();
    if !meta.namespace.is_empty() {
        labels
            .entry(LABEL_NAMESPACE.to_string())
            .or_insert_with(|| meta.namespace.clone());
    }
    if !spec.orchestrator.is_empty() {
        labels
            .entry(LABEL_ORCHESTRATOR.to_string())
            .or_insert_with(|| spec.orchestrator.clone());
    }
    if !spec.service_account_name.is_empty() && spec.service_account_name.len() < 63 {
        labels
            .entry(LABEL_SERVICE_ACCOUNT.to_string())
            .or_insert_with(|| spec.service_account_name.clone());
    }
    let ports = spec
        .ports
        .iter()
        .filter(|p| !p.name.is_empty())
        .map(|p| NamedPort {
            name: p.name.clone(),
            protocol: endpoint_port_protocol(&p.protocol),
            port: p.port,
        })
        .collect();
    Ok((
        EndpointKey::new(meta.namespace.clone(), meta.name.clone()),
        ItemData {
            labels,
            profiles: spec.profiles.clone(),
            nets,
            ports,
            local,
        },
    ))
}

/// Checks a network set. A namespaced one gets the namespace label and the `kns.<namespace>`
/// profile, so it inherits the namespace's labels (`updateprocessors/networksetprocessor.go`).
pub(crate) fn network_set(set: &NetworkSetInput) -> Result<ItemData, PolicyError> {
    let object = if set.namespace.is_empty() {
        format!("GlobalNetworkSet {}", set.name)
    } else {
        format!("NetworkSet {}/{}", set.namespace, set.name)
    };
    if set.name.is_empty() {
        return Err(PolicyError::new(object, "metadata.name is empty"));
    }
    let nets = parse_nets(&object, "spec.nets", &set.nets)?;
    let mut labels = set.labels.clone();
    let mut profiles = Vec::new();
    if !set.namespace.is_empty() {
        labels.insert(LABEL_NAMESPACE.to_string(), set.namespace.clone());
        profiles.push(format!("kns.{}", set.namespace));
    }
    Ok(ItemData {
        labels,
        profiles,
        nets,
        ports: Vec::new(),
        local: None,
    })
}
