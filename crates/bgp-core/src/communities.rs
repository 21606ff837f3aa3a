//! BGP communities (RFC 1997 standard `aa:nn`, RFC 8092 large `aa:nn:mm`) and Calico's
//! `BGPConfiguration.prefixAdvertisements`, which attach them to what a node announces.
//!
//! As Calico does it: for each prefix advertisement the community names are resolved against
//! the same BGPConfiguration's `communities` (a value that parses as a community is taken
//! literally, an unknown name is dropped), the list is split by family (a `:` in the cidr is
//! IPv6), and a node's `node.<name>` BGPConfiguration with prefix advertisements replaces the
//! global one's (libcalico-go's BGP syncer, `confd/pkg/backends/calico/client.go`). BIRD then
//! runs `if (net ~ <cidr>) then { bgp_community.add(...); }` for each advertisement on every
//! route leaving through Calico's export rules (`apply_communities()`): a prefix gets the
//! communities of **every advertisement whose cidr contains it or equals it**, not just an exact
//! match. BIRD sends community lists sorted and without duplicates, and so do we.

use std::fmt;
use std::str::FromStr;

use brindle_model::resources::BGPConfigurationSpec;
use ipnet::IpNet;

/// A standard or large community.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Community {
    /// `aa:nn`, as the 32-bit value on the wire (`aa << 16 | nn`).
    Standard(u32),
    /// `aa:nn:mm`.
    Large([u32; 3]),
}

/// Not `aa:nn` (16-bit parts) or `aa:nn:mm` (32-bit parts).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("community {0:?} is not aa:nn (each 0-65535) or aa:nn:mm (each 0-4294967295)")]
pub struct CommunityError(pub String);

impl FromStr for Community {
    type Err = CommunityError;

    fn from_str(s: &str) -> Result<Community, CommunityError> {
        let bad = || CommunityError(s.to_string());
        let parts: Vec<&str> = s.split(':').collect();
        // Digits only: u32's parser would take a leading `+`.
        if parts
            .iter()
            .any(|p| p.is_empty() || !p.bytes().all(|b| b.is_ascii_digit()))
        {
            return Err(bad());
        }
        match parts.as_slice() {
            [a, n] => {
                let a: u16 = a.parse().map_err(|_| bad())?;
                let n: u16 = n.parse().map_err(|_| bad())?;
                Ok(Community::Standard(u32::from(a) << 16 | u32::from(n)))
            }
            [a, n, m] => Ok(Community::Large([
                a.parse().map_err(|_| bad())?,
                n.parse().map_err(|_| bad())?,
                m.parse().map_err(|_| bad())?,
            ])),
            _ => Err(bad()),
        }
    }
}

impl fmt::Display for Community {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Community::Standard(v) => write!(f, "{}:{}", v >> 16, v & 0xffff),
            Community::Large([a, n, m]) => write!(f, "{a}:{n}:{m}"),
        }
    }
}

/// Communities to attach to a route, split as the wire carries them, each list sorted and
/// without duplicates.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct CommunitySet {
    pub standard: Vec<u32>,
    pub large: Vec<[u32; 3]>,
}

impl CommunitySet {
    pub fn is_empty(&self) -> bool {
        self.standard.is_empty() && self.large.is_empty()
    }

    /// A set of the given communities.
    pub fn of(list: impl IntoIterator<Item = Community>) -> CommunitySet {
        let mut s = CommunitySet::default();
        for c in list {
            match c {
                Community::Standard(v) => s.standard.push(v),
                Community::Large(v) => s.large.push(v),
            }
        }
        s.standard.sort_unstable();
        s.standard.dedup();
        s.large.sort_unstable();
        s.large.dedup();
        s
    }

    /// Every community, standard ones first.
    pub fn iter(&self) -> impl Iterator<Item = Community> + '_ {
        self.standard
            .iter()
            .map(|v| Community::Standard(*v))
            .chain(self.large.iter().map(|v| Community::Large(*v)))
    }
}

/// One `prefixAdvertisements` entry with its communities resolved.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PrefixAdvertisement {
    pub cidr: IpNet,
    pub communities: Vec<Community>,
}

/// A node's effective prefix advertisements.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PrefixAdvertisements(pub Vec<PrefixAdvertisement>);

impl PrefixAdvertisements {
    /// One BGPConfiguration's advertisements, names resolved against its own `communities`.
    /// Entries whose cidr does not parse are skipped (validation refuses them).
    pub fn from_spec(spec: &BGPConfigurationSpec) -> PrefixAdvertisements {
        let list = spec
            .prefix_advertisements
            .iter()
            .filter_map(|pa| {
                let cidr = pa.cidr.parse::<IpNet>().ok()?.trunc();
                let communities = pa
                    .communities
                    .iter()
                    .filter_map(|c| {
                        c.parse::<Community>().ok().or_else(|| {
                            spec.communities
                                .iter()
                                .find(|n| n.name == *c)
                                .and_then(|n| n.value.parse().ok())
                        })
                    })
                    .collect();
                Some(PrefixAdvertisement { cidr, communities })
            })
            .collect();
        PrefixAdvertisements(list)
    }

    /// What applies on a node: its `node.<name>` BGPConfiguration's advertisements if it has
    /// any, else the global (`default`) one's.
    pub fn effective(
        global: Option<&BGPConfigurationSpec>,
        node: Option<&BGPConfigurationSpec>,
    ) -> PrefixAdvertisements {
        match node.filter(|n| !n.prefix_advertisements.is_empty()).or(global) {
            Some(spec) => PrefixAdvertisements::from_spec(spec),
            None => PrefixAdvertisements::default(),
        }
    }

    /// The communities `prefix` is announced with: those of every advertisement whose cidr
    /// contains it (same family).
    pub fn for_prefix(&self, prefix: &IpNet) -> CommunitySet {
        CommunitySet::of(
            self.0
                .iter()
                .filter(|pa| pa.cidr.contains(prefix))
                .flat_map(|pa| pa.communities.iter().copied()),
        )
    }
}
