//! The agent's cache of the datastore: the model's typed resources by kind and name
//! (`namespace/name` for namespaced kinds) and the IPAM block affinities, as Felix's and confd's
//! syncers keep them. The calculation reads only this.
//!
//! Decoding is lenient ([`brindle_model::lenient`]): an object a newer Calico wrote with fields
//! this version does not know is used without them, and each such field is logged once. An
//! object that does not decode at all is logged and dropped (as a deletion, so nothing stale
//! stays), never fatal.
//!
//! Adding a kind is one line in the `cached_kinds!` list below (the model's type and a field
//! name); [`Cache::get`], [`Cache::all`] and [`Cache::apply`] then cover it.

use std::collections::{BTreeMap, HashSet};

use brindle_model::ipam::{AffinityState, BlockAffinity};
use brindle_model::keys::{AffinityType, IPAM_PREFIX, RESOURCE_PREFIX};
use brindle_model::resources::{
    BGPConfiguration, BGPFilter, BGPPeer, CalicoResource, FelixConfiguration, FelixConfigurationSpec,
    GlobalNetworkPolicy, GlobalNetworkSet, IPPool, NetworkPolicy, NetworkSet, Node, Profile, Tier,
    WorkloadEndpoint,
};
use brindle_model::{Key, Kind};
use ipnet::IpNet;

/// The objects of one kind, by name (`namespace/name` for namespaced kinds) or another key,
/// in key order.
#[derive(Debug, Clone)]
pub struct Store<T, K = String> {
    items: BTreeMap<K, T>,
}

impl<T, K> Default for Store<T, K> {
    fn default() -> Self {
        Store {
            items: BTreeMap::new(),
        }
    }
}

impl<T: PartialEq, K: Ord> Store<T, K> {
    /// Sets or removes one object; true when that changed the store.
    fn set(&mut self, key: K, value: Option<T>) -> bool {
        match value {
            Some(v) if self.items.get(&key) == Some(&v) => false,
            Some(v) => {
                self.items.insert(key, v);
                true
            }
            None => self.items.remove(&key).is_some(),
        }
    }
}

/// A kind the cache holds.
pub trait Cached: CalicoResource + PartialEq + 'static {
    fn store(c: &Cache) -> &Store<Self>;
    fn store_mut(c: &mut Cache) -> &mut Store<Self>;
}

/// Declares the cached kinds: the [`Resources`] struct with one [`Store`] per kind, the
/// [`Cached`] impls, and the decoder dispatch.
macro_rules! cached_kinds {
    ($($ty:ident => $field:ident),* $(,)?) => {
        /// One store per cached kind.
        #[derive(Debug, Clone, Default)]
        pub struct Resources {
            $(pub $field: Store<$ty>,)*
        }

        $(impl Cached for $ty {
            fn store(c: &Cache) -> &Store<Self> {
                &c.resources.$field
            }
            fn store_mut(c: &mut Cache) -> &mut Store<Self> {
                &mut c.resources.$field
            }
        })*

        /// The kinds the cache holds.
        pub const CACHED_KINDS: &[Kind] = &[$(Kind::$ty),*];

        impl Cache {
            /// Decodes and stores (or removes) one resource; `None` for kinds not cached.
            fn apply_resource(&mut self, kind: Kind, name: String, key: &str, value: Option<&[u8]>) -> Option<bool> {
                match kind {
                    $(Kind::$ty => Some(self.put::<$ty>(name, key, value)),)*
                    #[allow(unreachable_patterns)]
                    _ => None,
                }
            }
        }
    };
}

cached_kinds! {
    Node => nodes,
    IPPool => ip_pools,
    BGPConfiguration => bgp_configurations,
    BGPPeer => bgp_peers,
    BGPFilter => bgp_filters,
    FelixConfiguration => felix_configurations,
    WorkloadEndpoint => workload_endpoints,
    Profile => profiles,
    NetworkPolicy => network_policies,
    GlobalNetworkPolicy => global_network_policies,
    NetworkSet => network_sets,
    GlobalNetworkSet => global_network_sets,
    Tier => tiers,
}

/// One host block affinity (`/calico/ipam/v2/host/<host>/ipv4/block/<cidr>`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Affinity<'a> {
    pub host: &'a str,
    pub block: IpNet,
    pub value: &'a BlockAffinity,
}

impl Affinity<'_> {
    /// Confirmed and not being deleted: the block is the host's.
    pub fn confirmed(&self) -> bool {
        self.value.state == AffinityState::Confirmed && !self.value.deleted
    }
}

/// Everything the agent knows of the datastore.
#[derive(Debug, Clone, Default)]
pub struct Cache {
    pub resources: Resources,
    /// Host affinities by (host, block).
    affinities: Store<BlockAffinity, (String, IpNet)>,
    /// `Kind.field` paths already logged as unknown.
    unknown_logged: HashSet<String>,
}

/// True when the agent caches what `key` holds (the syncer forwards only these).
pub fn is_relevant(key: &str) -> bool {
    if let Some(rest) = key.strip_prefix(RESOURCE_PREFIX) {
        let plural = rest.split('/').next().unwrap_or_default();
        return CACHED_KINDS.iter().any(|k| k.plural() == plural);
    }
    key.strip_prefix(IPAM_PREFIX)
        .is_some_and(|rest| rest.starts_with("host/"))
}

/// The name an object is stored under: `name`, or `namespace/name` for namespaced kinds.
fn store_name(kind: Kind, namespace: &str, name: &str) -> String {
    if kind.namespaced() {
        format!("{namespace}/{name}")
    } else {
        name.to_string()
    }
}

impl Cache {
    /// Applies one datastore change (`None`: deleted). Returns the object's key when the cache
    /// changed, `None` when it did not (same value, or a key the agent does not cache).
    pub fn apply(&mut self, key: &str, value: Option<&[u8]>) -> Option<Key> {
        if !is_relevant(key) {
            return None;
        }
        let parsed = match Key::parse(key) {
            Ok(k) => k,
            Err(e) => {
                tracing::warn!(key, error = %e, "ignoring a key the agent cannot read");
                return None;
            }
        };
        let changed = match &parsed {
            Key::Resource {
                kind,
                namespace,
                name,
            } => self
                .apply_resource(*kind, store_name(*kind, namespace, name), key, value)
                .unwrap_or(false),
            Key::Affinity {
                affinity_type: AffinityType::Host,
                host,
                cidr,
            } => self.put_affinity(host, *cidr, key, value),
            _ => false,
        };
        changed.then_some(parsed)
    }

    /// Empties the cache (before a full listing); the unknown fields already logged stay so.
    pub fn clear(&mut self) {
        self.resources = Resources::default();
        self.affinities = Store::default();
    }

    fn put<T: Cached>(&mut self, name: String, key: &str, value: Option<&[u8]>) -> bool {
        let decoded = value.and_then(|bytes| {
            let mut unknown = Vec::new();
            let r = brindle_model::lenient::from_slice::<T>(bytes, &mut |f| unknown.push(f.to_string()));
            for f in unknown {
                if self.unknown_logged.insert(format!("{}.{f}", T::RESOURCE_KIND)) {
                    tracing::warn!(
                        kind = %T::RESOURCE_KIND,
                        key,
                        field = %f,
                        "field unknown to this version: ignored (logged once per field)"
                    );
                }
            }
            match r {
                Ok(v) => Some(v),
                Err(e) => {
                    tracing::warn!(key, error = %e, "ignoring an object the agent cannot read");
                    None
                }
            }
        });
        T::store_mut(self).set(name, decoded)
    }

    fn put_affinity(&mut self, host: &str, block: IpNet, key: &str, value: Option<&[u8]>) -> bool {
        let decoded = value.and_then(|b| match BlockAffinity::from_stored(b) {
            Ok(a) => Some(a),
            Err(e) => {
                tracing::warn!(key, error = %e, "ignoring a block affinity the agent cannot read");
                None
            }
        });
        self.affinities.set((host.to_string(), block), decoded)
    }

    /// The object of kind `T` named `name` (`namespace/name` for namespaced kinds).
    pub fn get<T: Cached>(&self, name: &str) -> Option<&T> {
        T::store(self).items.get(name)
    }

    /// Every object of kind `T`, in name order.
    pub fn all<T: Cached>(&self) -> impl Iterator<Item = &T> {
        T::store(self).items.values()
    }

    /// How many objects of kind `T` the cache holds.
    pub fn count<T: Cached>(&self) -> usize {
        T::store(self).items.len()
    }

    /// Every host block affinity (both families), by host then block.
    pub fn affinities(&self) -> impl Iterator<Item = Affinity<'_>> {
        self.affinities
            .items
            .iter()
            .map(|((host, block), value)| Affinity {
                host,
                block: *block,
                value,
            })
    }

    /// The Node named `name`.
    pub fn node(&self, name: &str) -> Option<&Node> {
        self.get::<Node>(name)
    }

    /// A FelixConfiguration key for `node` as Felix resolves it from the datastore: the node's
    /// own FelixConfiguration (`node.<name>`) first, then `default`, key by key.
    pub fn felix<T>(&self, node: &str, key: impl Fn(&FelixConfigurationSpec) -> Option<T>) -> Option<T> {
        let get = |name: &str| self.get::<FelixConfiguration>(name).and_then(|c| key(&c.spec));
        get(&format!("node.{node}")).or_else(|| get("default"))
    }

    /// `programClusterRoutes` for `node` (see [`Cache::felix`]): `Disabled` is false, any
    /// `Enabled…` value true.
    pub fn program_cluster_routes(&self, node: &str) -> Option<bool> {
        self.felix(node, |c| {
            c.program_cluster_routes.as_deref().map(|m| m != "Disabled")
        })
    }

    /// The BGPConfiguration named `name` (`default`, `node.<node>`).
    pub fn bgp_config(&self, name: &str) -> Option<&BGPConfiguration> {
        self.get::<BGPConfiguration>(name)
    }

    /// The global BGPConfiguration (`default`).
    pub fn bgp_default(&self) -> Option<&BGPConfiguration> {
        self.bgp_config("default")
    }

    /// The BGP port `node` listens on: its `node.<name>` BGPConfiguration's `listenPort`, else
    /// the global one (`None`: 179), as confd's `getNodeOrGlobalValue("listen_port")`.
    pub fn listen_port(&self, node: &str) -> Option<u16> {
        let port = |c: &BGPConfiguration| Some(c.spec.listen_port).filter(|p| *p != 0);
        self.bgp_config(&format!("node.{node}"))
            .and_then(port)
            .or_else(|| self.bgp_default().and_then(port))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const RES: &str = "/calico/resources/v3/projectcalico.org";

    #[test]
    fn calico_objects_become_typed_resources() {
        let mut c = Cache::default();
        let node = br#"{"kind":"Node","apiVersion":"projectcalico.org/v3","metadata":{"name":"bgp-master1"},
            "spec":{"bgp":{"ipv4Address":"172.20.42.80/22","ipv4IPIPTunnelAddr":"10.233.94.0"}}}"#;
        let key = format!("{RES}/nodes/bgp-master1");
        assert!(c.apply(&key, Some(node)).is_some());
        assert!(c.apply(&key, Some(node)).is_none(), "same value: no change");
        let n = c.node("bgp-master1").unwrap();
        assert_eq!(n.bgp_ipv4().unwrap().to_string(), "172.20.42.80/22");
        assert_eq!(n.ipip_tunnel_addr().unwrap().to_string(), "10.233.94.0");
        let pool = br#"{"kind":"IPPool","metadata":{"name":"default-pool"},"spec":{"cidr":"10.233.64.0/18",
            "blockSize":24,"ipipMode":"Always","vxlanMode":"Never","natOutgoing":true,"nodeSelector":"all()"}}"#;
        c.apply(&format!("{RES}/ippools/default-pool"), Some(pool));
        let p = c.all::<IPPool>().next().unwrap();
        assert_eq!(p.spec.ipip(), brindle_model::resources::EncapMode::Always);
        c.apply(
            "/calico/ipam/v2/host/bgp-master1/ipv4/block/10.233.94.0-24",
            Some(br#"{"state":"confirmed","deleted":false}"#),
        );
        let a = c.affinities().next().unwrap();
        assert!(a.confirmed());
        assert_eq!(
            (a.host, a.block.to_string().as_str()),
            ("bgp-master1", "10.233.94.0/24")
        );
        assert!(
            c.apply(
                "/calico/ipam/v2/assignment/ipv4/block/10.233.94.0-24",
                Some(b"{}")
            )
            .is_none(),
            "blocks are not cached"
        );
        assert_eq!(
            c.apply(&key, None),
            Some(Key::Resource {
                kind: Kind::Node,
                namespace: String::new(),
                name: "bgp-master1".into()
            })
        );
        assert_eq!(c.count::<Node>(), 0);
        // Garbage is skipped, not fatal.
        assert!(
            c.apply(&format!("{RES}/ippools/bad"), Some(b"{not json"))
                .is_none()
        );
    }

    #[test]
    fn workload_endpoints_of_every_node_by_namespace_and_name() {
        let mut c = Cache::default();
        let wep = |node: &str| {
            format!(
                r#"{{"kind":"WorkloadEndpoint","metadata":{{"name":"{node}-k8s-p-eth0","namespace":"ns","labels":{{"app":"a"}}}},
                "spec":{{"node":"{node}","interfaceName":"cali1","ipNetworks":["10.0.0.1/32"],"profiles":["kns.ns"],
                "serviceAccountName":"sa","ports":[{{"name":"http","protocol":"TCP","port":80}}]}}}}"#
            )
        };
        c.apply(
            &format!("{RES}/workloadendpoints/ns/n1-k8s-p-eth0"),
            Some(wep("n1").as_bytes()),
        );
        c.apply(
            &format!("{RES}/workloadendpoints/ns/n2-k8s-p-eth0"),
            Some(wep("n2").as_bytes()),
        );
        assert_eq!(c.count::<WorkloadEndpoint>(), 2);
        let w = c.get::<WorkloadEndpoint>("ns/n2-k8s-p-eth0").unwrap();
        assert_eq!(w.spec.node, "n2");
        assert_eq!(w.spec.service_account_name, "sa");
        assert_eq!(w.spec.ports[0].port, 80);
        assert_eq!(w.metadata.labels["app"], "a");
    }

    #[test]
    fn policies_by_namespace_and_name() {
        let mut c = Cache::default();
        let np = br#"{"kind":"NetworkPolicy","apiVersion":"projectcalico.org/v3",
            "metadata":{"name":"default.allow-web","namespace":"shop"},
            "spec":{"tier":"default","order":100,"selector":"app == 'web'","types":["Ingress"],
            "ingress":[{"action":"Allow","protocol":"TCP","destination":{"ports":[80]}}]}}"#;
        assert!(
            c.apply(&format!("{RES}/networkpolicies/shop/default.allow-web"), Some(np))
                .is_some()
        );
        let p = c.get::<NetworkPolicy>("shop/default.allow-web").unwrap();
        assert_eq!(p.spec.selector, "app == 'web'");
        assert_eq!(p.spec.ingress.len(), 1);
        assert_eq!(c.count::<NetworkPolicy>(), 1);
    }

    #[test]
    fn newer_fields_are_dropped_and_the_object_used() {
        let mut c = Cache::default();
        let pool =
            br#"{"kind":"IPPool","metadata":{"name":"p"},"spec":{"cidr":"10.0.0.0/16","ipipMode":"Always",
            "someFutureSetting":{"x":1}},"status":{"conditions":[]}}"#;
        assert!(c.apply(&format!("{RES}/ippools/p"), Some(pool)).is_some());
        assert_eq!(c.get::<IPPool>("p").unwrap().spec.cidr, "10.0.0.0/16");
        assert!(c.unknown_logged.contains("IPPool.spec.someFutureSetting"));
        // A later object that no longer decodes drops the earlier version.
        assert!(
            c.apply(
                &format!("{RES}/ippools/p"),
                Some(br#"{"spec":{"ipipMode":"Sometimes"}}"#)
            )
            .is_some()
        );
        assert_eq!(c.count::<IPPool>(), 0);
    }

    #[test]
    fn program_cluster_routes_node_config_wins_over_default() {
        let mut c = Cache::default();
        let key = |n: &str| format!("{RES}/felixconfigurations/{n}");
        let fc =
            |v: &str| format!(r#"{{"kind":"FelixConfiguration","spec":{{"programClusterRoutes":"{v}"}}}}"#);
        assert_eq!(c.program_cluster_routes("n1"), None);
        c.apply(&key("default"), Some(fc("Disabled").as_bytes()));
        assert_eq!(c.program_cluster_routes("n1"), Some(false));
        c.apply(&key("node.n1"), Some(fc("EnabledIPIPOnly").as_bytes()));
        assert_eq!(c.program_cluster_routes("n1"), Some(true));
        assert_eq!(c.program_cluster_routes("n2"), Some(false));
        c.apply(&key("default"), None);
        assert_eq!(c.program_cluster_routes("n2"), None);
        c.apply(
            &key("default"),
            Some(br#"{"spec":{"ipipMTU":1400,"vxlanVNI":4097,"vxlanPort":4790,"vxlanMTU":0}}"#),
        );
        assert_eq!(c.felix("n2", |f| f.ipip_mtu), Some(1400));
        assert_eq!(c.felix("n2", |f| f.vxlan_vni), Some(4097));
        assert_eq!(c.felix("n2", |f| f.vxlan_port), Some(4790));
        assert_eq!(c.felix("n2", |f| f.vxlan_mtu), Some(0));
        // n1's own config has no ipipMTU: the default's applies, key by key.
        assert_eq!(c.felix("n1", |f| f.ipip_mtu), Some(1400));
    }

    #[test]
    fn relevance() {
        assert!(is_relevant(&format!("{RES}/nodes/a")));
        assert!(is_relevant(&format!("{RES}/profiles/kns.default")));
        assert!(is_relevant(&format!("{RES}/networkpolicies/ns/default.p")));
        assert!(is_relevant(&format!("{RES}/tiers/default")));
        assert!(!is_relevant(&format!("{RES}/clusterinformations/default")));
        assert!(is_relevant("/calico/ipam/v2/host/n1/ipv4/block/10.0.0.0-26"));
        assert!(!is_relevant("/calico/ipam/v2/handle/x"));
        assert!(!is_relevant("/calico/ipam/v2/assignment/ipv4/block/10.0.0.0-26"));
    }
}
