//! Network policy in the agent (Felix's calculation graph feeding its policy dataplane): every
//! policy-relevant object the cache holds (the WorkloadEndpoints of every node, Profiles incl.
//! the built-in `projectcalico-default-allow`, NetworkPolicies incl. `knp.default.*`,
//! GlobalNetworkPolicies, NetworkSets, GlobalNetworkSets, Tiers) goes to a
//! [`PolicyCalculator`], one call per change; each flush's [`Delta`] goes to the dataplane
//! thread, which applies it as one nftables transaction. A full listing (first sync, a broken
//! watch) rebuilds the calculation from the cache and sends its whole [`State`], which the
//! dataplane compares with the kernel's tables, changing only what differs.
//!
//! Settings follow Felix's precedence: `FELIX_*` in the environment, then the node's
//! FelixConfiguration (`node.<name>`), then `default`, key by key.

use brindle_model::resources::{FelixConfigurationSpec, Profile};
use brindle_model::{Key, Kind, Resource};
use brindle_policy::PolicyCalculator;
use brindle_policy::ir::{Delta, EndpointToHostAction, Settings, State};

use crate::cache::{Cache, Cached};
use crate::config::FelixEnv;

/// The kinds the calculation reads.
pub const POLICY_KINDS: [Kind; 7] = [
    Kind::WorkloadEndpoint,
    Kind::Profile,
    Kind::NetworkPolicy,
    Kind::GlobalNetworkPolicy,
    Kind::NetworkSet,
    Kind::GlobalNetworkSet,
    Kind::Tier,
];

/// The agent's policy calculation.
pub struct PolicyFeed {
    node: String,
    /// IPv6 rule lists are calculated only on a node with IPv6 (half the rules otherwise).
    ipv6: bool,
    calc: PolicyCalculator,
    /// Objects the calculation refused, with why (shown in the status, logged once).
    pub rejected: std::collections::BTreeMap<String, String>,
}

impl PolicyFeed {
    /// The calculation for `node`; `ipv6` as [`ipv6_enabled`] says.
    pub fn new(node: &str, ipv6: bool) -> PolicyFeed {
        PolicyFeed {
            node: node.to_string(),
            ipv6,
            calc: PolicyCalculator::with_ipv6(node, Settings::default(), ipv6),
            rejected: Default::default(),
        }
    }

    /// A fresh calculation from everything the cache holds (first sync, resync).
    pub fn rebuild(&mut self, cache: &Cache, settings: Settings) {
        self.calc = PolicyCalculator::with_ipv6(self.node.clone(), settings, self.ipv6);
        self.rejected.clear();
        // Calico's datastore lists the built-in profile with the stored ones.
        let builtin = Resource::Profile(Profile::default_allow());
        self.upsert(&builtin);
        // Tiers, sets and policies before the endpoints that use them (any order is correct;
        // this one does less work).
        each(cache, Resource::Tier, |r| self.upsert(&r));
        each(cache, Resource::GlobalNetworkSet, |r| self.upsert(&r));
        each(cache, Resource::NetworkSet, |r| self.upsert(&r));
        each(cache, Resource::Profile, |r| self.upsert(&r));
        each(cache, Resource::GlobalNetworkPolicy, |r| self.upsert(&r));
        each(cache, Resource::NetworkPolicy, |r| self.upsert(&r));
        each(cache, Resource::WorkloadEndpoint, |r| self.upsert(&r));
    }

    /// One object changed in the cache (`key` as [`Cache::apply`] returned it): the
    /// calculation takes its new value, or its removal.
    pub fn changed(&mut self, cache: &Cache, key: &Key) {
        let Key::Resource {
            kind,
            namespace,
            name,
        } = key
        else {
            return;
        };
        if !POLICY_KINDS.contains(kind) {
            return;
        }
        let at = if kind.namespaced() {
            format!("{namespace}/{name}")
        } else {
            name.clone()
        };
        let now = match kind {
            Kind::WorkloadEndpoint => get(cache, &at, Resource::WorkloadEndpoint),
            Kind::Profile => get(cache, &at, Resource::Profile),
            Kind::NetworkPolicy => get(cache, &at, Resource::NetworkPolicy),
            Kind::GlobalNetworkPolicy => get(cache, &at, Resource::GlobalNetworkPolicy),
            Kind::NetworkSet => get(cache, &at, Resource::NetworkSet),
            Kind::GlobalNetworkSet => get(cache, &at, Resource::GlobalNetworkSet),
            Kind::Tier => get(cache, &at, Resource::Tier),
            _ => None,
        };
        match now {
            Some(r) => self.upsert(&r),
            None => {
                if *kind == Kind::Profile && name == brindle_model::resources::DEFAULT_ALLOW_PROFILE {
                    return; // built in: a stored copy going away leaves it
                }
                self.rejected.remove(&format!("{kind} {at}"));
                self.calc.remove_resource(*kind, namespace, name);
            }
        }
    }

    fn upsert(&mut self, r: &Resource) {
        let id = format!("{} {}", r.kind(), object_name(r));
        match self.calc.upsert_resource(r) {
            Ok(_) => {
                self.rejected.remove(&id);
            }
            Err(e) => {
                // The previous version (if any) stays in force; a later valid one replaces it.
                if self.rejected.get(&id) != Some(&e.to_string()) {
                    tracing::warn!(object = %id, error = %e, "policy calculation refused an object");
                }
                self.rejected.insert(id, e.to_string());
            }
        }
    }

    /// New settings (takes effect at the next flush).
    pub fn set_settings(&mut self, settings: Settings) {
        self.calc.set_settings(settings);
    }

    /// What changed since the last flush.
    pub fn flush(&mut self) -> Delta {
        self.calc.flush()
    }

    /// Everything the dataplane should hold.
    pub fn state(&self) -> State {
        self.calc.state()
    }

    /// Local endpoints, for `felix_active_local_endpoints`.
    pub fn stats(&self) -> brindle_policy::Stats {
        self.calc.stats()
    }
}

fn object_name(r: &Resource) -> String {
    let m = r.metadata();
    if m.namespace.is_empty() {
        m.name.clone()
    } else {
        format!("{}/{}", m.namespace, m.name)
    }
}

fn get<T: Cached + Clone>(cache: &Cache, at: &str, wrap: fn(T) -> Resource) -> Option<Resource> {
    cache.get::<T>(at).map(|v| wrap(v.clone()))
}

fn each<T: Cached + Clone>(cache: &Cache, wrap: fn(T) -> Resource, mut f: impl FnMut(Resource)) {
    for v in cache.all::<T>() {
        f(wrap(v.clone()));
    }
}

/// Fails closed from the agent's first instant: on a node without Brindle's tables (its first
/// start), the base table is installed before anything is read from the datastore, so pods
/// that already exist are dropped, not open, until the first resync swaps in their policy
/// (`brindle_dataplane::policy::install_base`). A restart finds the previous tables and
/// writes nothing here. Call it in the node's network namespace, first thing.
pub fn fail_closed_at_start(cfg: &crate::config::AgentConfig) {
    let policy = brindle_dataplane::PolicyConfig {
        enabled: cfg.felix.policy_enabled,
        ipv6: ipv6_enabled(cfg),
        ..Default::default()
    };
    let installed = brindle_netlink::NetnsFd::current()
        .map_err(brindle_dataplane::Error::from)
        .and_then(|ns| brindle_dataplane::policy::install_base(&ns, &policy));
    match installed {
        Ok(true) => tracing::info!(
            "no Brindle tables yet: base installed, workloads dropped until policy is programmed"
        ),
        Ok(false) => {}
        // The dataplane thread reports the same error when it starts (policy needs nf_tables).
        Err(e) => tracing::warn!(error = %e, "cannot install the fail-closed base table"),
    }
}

/// Whether the node enforces IPv6 workload policy: it has IPv6 (`IP6` set). Without it the
/// dataplane forwards no IPv6 workload traffic, so no IPv6 rules are calculated either.
pub fn ipv6_enabled(cfg: &crate::config::AgentConfig) -> bool {
    !matches!(cfg.ip6, crate::config::IpSetting::None)
}

/// The policy settings for `node` by Felix's precedence (environment, `node.<name>`,
/// `default`).
pub fn settings(env: &FelixEnv, cache: &Cache, node: &str) -> Settings {
    let d = Settings::default();
    let text = |f: fn(&FelixConfigurationSpec) -> &String| {
        cache.felix(node, |c| Some(f(c).clone()).filter(|s| !s.is_empty()))
    };
    let action = env
        .default_endpoint_to_host_action
        .clone()
        .or_else(|| text(|c| &c.default_endpoint_to_host_action));
    Settings {
        default_endpoint_to_host_action: match action.as_deref().map(str::to_ascii_lowercase).as_deref() {
            Some("accept") => EndpointToHostAction::Accept,
            Some("return") => EndpointToHostAction::Return,
            _ => EndpointToHostAction::Drop,
        },
        allow_vxlan_packets_from_workloads: env
            .allow_vxlan_packets_from_workloads
            .or_else(|| cache.felix(node, |c| c.allow_vxlan_packets_from_workloads))
            .unwrap_or(d.allow_vxlan_packets_from_workloads),
        allow_ipip_packets_from_workloads: env
            .allow_ipip_packets_from_workloads
            .or_else(|| cache.felix(node, |c| c.allow_ipip_packets_from_workloads))
            .unwrap_or(d.allow_ipip_packets_from_workloads),
        vxlan_port: env
            .vxlan_port
            .or_else(|| cache.felix(node, |c| c.vxlan_port.and_then(|p| u16::try_from(p).ok())))
            .unwrap_or(d.vxlan_port),
        log_prefix: env
            .log_prefix
            .clone()
            .or_else(|| text(|c| &c.log_prefix))
            .unwrap_or(d.log_prefix),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const RES: &str = "/calico/resources/v3/projectcalico.org";

    fn wep(node: &str, pod: &str, app: &str) -> (String, String) {
        (
            format!("{RES}/workloadendpoints/prod/{node}-k8s-{pod}-eth0"),
            format!(
                r#"{{"kind":"WorkloadEndpoint","metadata":{{"name":"{node}-k8s-{pod}-eth0","namespace":"prod",
                "labels":{{"app":"{app}","projectcalico.org/namespace":"prod"}}}},
                "spec":{{"node":"{node}","pod":"{pod}","endpoint":"eth0","interfaceName":"cali{pod}",
                "ipNetworks":["10.0.0.{}/32"],"profiles":["kns.prod"]}}}}"#,
                pod.len()
            ),
        )
    }

    fn apply(c: &mut Cache, feed: &mut PolicyFeed, key: &str, value: Option<&str>) {
        if let Some(k) = c.apply(key, value.map(str::as_bytes)) {
            feed.changed(c, &k);
        }
    }

    #[test]
    fn the_cache_feeds_the_calculation_incrementally_and_on_rebuild() {
        let mut c = Cache::default();
        let mut feed = PolicyFeed::new("n1", true);
        for (k, v) in [wep("n1", "a", "server"), wep("n2", "bb", "client")] {
            c.apply(&k, Some(v.as_bytes()));
        }
        c.apply(
            &format!("{RES}/profiles/kns.prod"),
            Some(br#"{"kind":"Profile","metadata":{"name":"kns.prod"},"spec":{"ingress":[{"action":"Allow"}],"egress":[{"action":"Allow"}]}}"#),
        );
        feed.rebuild(&c, Settings::default());
        let first = feed.flush();
        let st = feed.state();
        assert_eq!(st.endpoints.len(), 1, "only the local endpoint");
        assert!(st.profiles.contains_key("kns.prod"));
        assert!(first.endpoints_updated.len() == 1);
        assert!(feed.flush().is_empty());

        // A policy selecting the local endpoint, allowing the remote one's label.
        let np = format!("{RES}/networkpolicies/prod/default.allow-client");
        apply(
            &mut c,
            &mut feed,
            &np,
            Some(
                r#"{"kind":"NetworkPolicy","metadata":{"name":"default.allow-client","namespace":"prod"},
                "spec":{"tier":"default","selector":"app == 'server'","types":["Ingress"],
                "ingress":[{"action":"Allow","source":{"selector":"app == 'client'"}}]}}"#,
            ),
        );
        let d = feed.flush();
        assert_eq!(d.policies_updated.len(), 1, "{d:?}");
        // The client set, once per family; the remote client's address in the IPv4 one.
        let members: usize = d.sets_added.iter().map(|s| s.members.len()).sum();
        assert_eq!(members, 1, "{:?}", d.sets_added);

        // The remote client goes: the set loses its member.
        let (k, _) = wep("n2", "bb", "client");
        apply(&mut c, &mut feed, &k, None);
        let d = feed.flush();
        assert_eq!(d.set_members.len(), 1, "{d:?}");
        assert_eq!(d.set_members[0].removed.len(), 1);

        // The policy goes.
        apply(&mut c, &mut feed, &np, None);
        let d = feed.flush();
        assert_eq!(d.policies_removed.len(), 1, "{d:?}");

        // An invalid policy is refused and named; the rest goes on.
        apply(
            &mut c,
            &mut feed,
            &np,
            Some(
                r#"{"kind":"NetworkPolicy","metadata":{"name":"default.allow-client","namespace":"prod"},
                "spec":{"tier":"default","selector":"app == ","types":["Ingress"]}}"#,
            ),
        );
        assert!(
            feed.rejected
                .contains_key("NetworkPolicy prod/default.allow-client"),
            "{:?}",
            feed.rejected
        );
        apply(&mut c, &mut feed, &np, None);
        assert!(feed.rejected.is_empty());
    }

    #[test]
    fn settings_follow_felix_precedence() {
        let mut c = Cache::default();
        let env = crate::config::AgentConfig::from_env(|_| None).unwrap().felix;
        assert_eq!(settings(&env, &c, "n1"), Settings::default());
        c.apply(
            &format!("{RES}/felixconfigurations/default"),
            Some(br#"{"kind":"FelixConfiguration","spec":{"defaultEndpointToHostAction":"Accept","logPrefix":"calico-drop","allowIPIPPacketsFromWorkloads":true}}"#),
        );
        c.apply(
            &format!("{RES}/felixconfigurations/node.n1"),
            Some(br#"{"kind":"FelixConfiguration","spec":{"defaultEndpointToHostAction":"Return"}}"#),
        );
        let s = settings(&env, &c, "n1");
        assert_eq!(s.default_endpoint_to_host_action, EndpointToHostAction::Return);
        assert_eq!(s.log_prefix, "calico-drop");
        assert!(s.allow_ipip_packets_from_workloads);
        assert_eq!(
            settings(&env, &c, "n2").default_endpoint_to_host_action,
            EndpointToHostAction::Accept
        );
        let env = crate::config::AgentConfig::from_env(|k| {
            (k == "FELIX_DEFAULTENDPOINTTOHOSTACTION").then(|| "DROP".to_string())
        })
        .unwrap()
        .felix;
        assert_eq!(
            settings(&env, &c, "n1").default_endpoint_to_host_action,
            EndpointToHostAction::Drop,
            "the environment wins"
        );
    }
}
