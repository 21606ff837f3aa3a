//! The resource kinds Brindle knows, with Calico's names, etcd plurals, scope and the aliases
//! `calicoctl get <kind>` accepts (`calicoctl/resourcemgr/*.go`).

use std::fmt;

/// One Calico v3 resource kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Kind {
    IPPool,
    BGPConfiguration,
    BGPPeer,
    BGPFilter,
    Node,
    FelixConfiguration,
    WorkloadEndpoint,
    ClusterInformation,
    IPAMConfiguration,
    Profile,
    NetworkPolicy,
    GlobalNetworkPolicy,
    NetworkSet,
    GlobalNetworkSet,
    Tier,
    KubeControllersConfiguration,
}

impl Kind {
    /// Every kind, in the order calicoctl registers them.
    pub const ALL: [Kind; 16] = [
        Kind::IPPool,
        Kind::BGPConfiguration,
        Kind::BGPPeer,
        Kind::BGPFilter,
        Kind::Node,
        Kind::FelixConfiguration,
        Kind::WorkloadEndpoint,
        Kind::ClusterInformation,
        Kind::IPAMConfiguration,
        Kind::Profile,
        Kind::NetworkPolicy,
        Kind::GlobalNetworkPolicy,
        Kind::NetworkSet,
        Kind::GlobalNetworkSet,
        Kind::Tier,
        Kind::KubeControllersConfiguration,
    ];

    /// The kind as written in `kind:` (`IPPool`).
    pub const fn name(self) -> &'static str {
        match self {
            Kind::IPPool => "IPPool",
            Kind::BGPConfiguration => "BGPConfiguration",
            Kind::BGPPeer => "BGPPeer",
            Kind::BGPFilter => "BGPFilter",
            Kind::Node => "Node",
            Kind::FelixConfiguration => "FelixConfiguration",
            Kind::WorkloadEndpoint => "WorkloadEndpoint",
            Kind::ClusterInformation => "ClusterInformation",
            Kind::IPAMConfiguration => "IPAMConfiguration",
            Kind::Profile => "Profile",
            Kind::NetworkPolicy => "NetworkPolicy",
            Kind::GlobalNetworkPolicy => "GlobalNetworkPolicy",
            Kind::NetworkSet => "NetworkSet",
            Kind::GlobalNetworkSet => "GlobalNetworkSet",
            Kind::Tier => "Tier",
            Kind::KubeControllersConfiguration => "KubeControllersConfiguration",
        }
    }

    /// The list kind (`IPPoolList`).
    pub const fn list_name(self) -> &'static str {
        match self {
            Kind::IPPool => "IPPoolList",
            Kind::BGPConfiguration => "BGPConfigurationList",
            Kind::BGPPeer => "BGPPeerList",
            Kind::BGPFilter => "BGPFilterList",
            Kind::Node => "NodeList",
            Kind::FelixConfiguration => "FelixConfigurationList",
            Kind::WorkloadEndpoint => "WorkloadEndpointList",
            Kind::ClusterInformation => "ClusterInformationList",
            Kind::IPAMConfiguration => "IPAMConfigurationList",
            Kind::Profile => "ProfileList",
            Kind::NetworkPolicy => "NetworkPolicyList",
            Kind::GlobalNetworkPolicy => "GlobalNetworkPolicyList",
            Kind::NetworkSet => "NetworkSetList",
            Kind::GlobalNetworkSet => "GlobalNetworkSetList",
            Kind::Tier => "TierList",
            Kind::KubeControllersConfiguration => "KubeControllersConfigurationList",
        }
    }

    /// The plural used in datastore keys (`/calico/resources/v3/projectcalico.org/<plural>/…`).
    pub const fn plural(self) -> &'static str {
        match self {
            Kind::IPPool => "ippools",
            Kind::BGPConfiguration => "bgpconfigurations",
            Kind::BGPPeer => "bgppeers",
            Kind::BGPFilter => "bgpfilters",
            Kind::Node => "nodes",
            Kind::FelixConfiguration => "felixconfigurations",
            Kind::WorkloadEndpoint => "workloadendpoints",
            Kind::ClusterInformation => "clusterinformations",
            Kind::IPAMConfiguration => "ipamconfigurations",
            Kind::Profile => "profiles",
            Kind::NetworkPolicy => "networkpolicies",
            Kind::GlobalNetworkPolicy => "globalnetworkpolicies",
            Kind::NetworkSet => "networksets",
            Kind::GlobalNetworkSet => "globalnetworksets",
            Kind::Tier => "tiers",
            Kind::KubeControllersConfiguration => "kubecontrollersconfigurations",
        }
    }

    /// Whether objects of this kind live in a namespace.
    pub const fn namespaced(self) -> bool {
        matches!(
            self,
            Kind::WorkloadEndpoint | Kind::NetworkPolicy | Kind::NetworkSet
        )
    }

    /// The names `calicoctl get` accepts for this kind (matched case-insensitively).
    pub const fn aliases(self) -> &'static [&'static str] {
        match self {
            Kind::IPPool => &["ippool", "ippools", "ipp", "ipps", "pool", "pools"],
            Kind::BGPConfiguration => &["bgpconfiguration", "bgpconfigurations", "bgpconfig", "bgpconfigs"],
            Kind::BGPPeer => &["bgppeer", "bgppeers", "bgpp", "bgpps", "bp", "bps"],
            // calicoctl lists "bgpfilter" twice (no plural); the plural is accepted here too.
            Kind::BGPFilter => &["bgpfilter", "bgpfilters", "bgpf", "bgpfs", "bf", "bfs"],
            Kind::Node => &["node", "nodes", "no", "nos"],
            Kind::FelixConfiguration => &[
                "felixconfiguration",
                "felixconfigurations",
                "felixconfig",
                "felixconfigs",
            ],
            Kind::WorkloadEndpoint => &["workloadendpoint", "workloadendpoints", "wep", "weps"],
            Kind::ClusterInformation => &[
                "clusterinformation",
                "clusterinformations",
                "clusterinfo",
                "clusterinfos",
            ],
            Kind::IPAMConfiguration => &[
                "ipamconfiguration",
                "ipamconfigurations",
                "ipamconfig",
                "ipamconfigs",
            ],
            Kind::Profile => &["profile", "profiles", "pro", "pros"],
            // calicoctl's list plus kubectl's `netpol`.
            Kind::NetworkPolicy => &[
                "networkpolicy",
                "networkpolicies",
                "policy",
                "np",
                "policies",
                "pol",
                "pols",
                "netpol",
                "netpols",
            ],
            Kind::GlobalNetworkPolicy => &["globalnetworkpolicy", "globalnetworkpolicies", "gnp", "gnps"],
            Kind::NetworkSet => &["networkset", "networksets", "netsets"],
            Kind::GlobalNetworkSet => &["globalnetworkset", "globalnetworksets", "gnetsets"],
            Kind::Tier => &["tier", "tiers"],
            Kind::KubeControllersConfiguration => &[
                "kubecontrollersconfiguration",
                "kubecontrollersconfigurations",
                "kcc",
            ],
        }
    }

    /// Looks up a kind by any of its CLI aliases, case-insensitively (`IPPool`, `ippools`, `ipp`).
    pub fn from_alias(s: &str) -> Option<Kind> {
        let lower = s.to_ascii_lowercase();
        Kind::ALL
            .into_iter()
            .find(|k| k.aliases().contains(&lower.as_str()))
    }

    /// Looks up the `kind:` of a manifest document, case-insensitively. The flag is true for the
    /// list kind (`IPPoolList`).
    pub fn from_manifest_kind(s: &str) -> Option<(Kind, bool)> {
        Kind::ALL.into_iter().find_map(|k| {
            if s.eq_ignore_ascii_case(k.name()) {
                Some((k, false))
            } else if s.eq_ignore_ascii_case(k.list_name()) {
                Some((k, true))
            } else {
                None
            }
        })
    }

    /// Looks up a kind by its datastore plural (`ippools`).
    pub fn from_plural(s: &str) -> Option<Kind> {
        Kind::ALL.into_iter().find(|k| k.plural() == s)
    }
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn aliases_are_case_insensitive_and_unique() {
        assert_eq!(Kind::from_alias("IPPool"), Some(Kind::IPPool));
        assert_eq!(Kind::from_alias("ipps"), Some(Kind::IPPool));
        assert_eq!(Kind::from_alias("BGPPeers"), Some(Kind::BGPPeer));
        assert_eq!(Kind::from_alias("wep"), Some(Kind::WorkloadEndpoint));
        assert_eq!(Kind::from_alias("np"), Some(Kind::NetworkPolicy));
        assert_eq!(Kind::from_alias("netpol"), Some(Kind::NetworkPolicy));
        assert_eq!(Kind::from_alias("GNP"), Some(Kind::GlobalNetworkPolicy));
        assert_eq!(Kind::from_alias("netsets"), Some(Kind::NetworkSet));
        assert_eq!(Kind::from_alias("gnetsets"), Some(Kind::GlobalNetworkSet));
        assert_eq!(Kind::from_alias("tiers"), Some(Kind::Tier));
        assert_eq!(Kind::from_alias("nosuch"), None);
        let mut all: Vec<&str> = Kind::ALL
            .iter()
            .flat_map(|k| k.aliases().iter().copied())
            .collect();
        let n = all.len();
        all.sort_unstable();
        all.dedup();
        assert_eq!(all.len(), n, "an alias names two kinds");
    }

    #[test]
    fn manifest_kinds() {
        assert_eq!(Kind::from_manifest_kind("ippool"), Some((Kind::IPPool, false)));
        assert_eq!(Kind::from_manifest_kind("IPPoolList"), Some((Kind::IPPool, true)));
        assert_eq!(Kind::from_manifest_kind("pools"), None);
        for k in Kind::ALL {
            assert_eq!(Kind::from_plural(k.plural()), Some(k));
        }
    }
}
