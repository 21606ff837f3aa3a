//! The Calico v3 resources, one file per kind, plus [`Resource`] (any of them) and [`List`]
//! (a `…List` object).
//!
//! Every struct lists every field Calico's Go type has (including ones Brindle ignores), in Go's
//! order, with Go's omission rules, and rejects unknown fields: users' Calico YAML loads unchanged
//! and a typo is an error rather than a silently ignored setting.

pub mod bgpconfig;
pub mod bgpfilter;
pub mod bgppeer;
pub mod clusterinfo;
pub mod felixconfig;
pub mod ipamconfig;
pub mod ippool;
pub mod kubecontrollersconfig;
pub mod networkpolicy;
pub mod networkset;
pub mod node;
pub mod policy_common;
pub mod profile;
pub mod tier;
pub mod workloadendpoint;

use std::fmt;
use std::marker::PhantomData;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::kind::Kind;
use crate::meta::{ApiVersion, KindName, ListMeta, ObjectMeta};

pub use bgpconfig::*;
pub use bgpfilter::*;
pub use bgppeer::*;
pub use clusterinfo::*;
pub use felixconfig::*;
pub use ipamconfig::*;
pub use ippool::*;
pub use kubecontrollersconfig::*;
pub use networkpolicy::*;
pub use networkset::*;
pub use node::*;
pub use policy_common::*;
pub use profile::*;
pub use tier::*;
pub use workloadendpoint::*;

/// What every typed resource offers.
pub trait CalicoResource: KindName + Clone + fmt::Debug + Serialize + DeserializeOwned {
    /// The kind of this type.
    const RESOURCE_KIND: Kind;
    fn metadata(&self) -> &ObjectMeta;
    fn metadata_mut(&mut self) -> &mut ObjectMeta;
    /// Wraps the value in [`Resource`].
    fn into_resource(self) -> Resource;
    /// Unwraps a [`Resource`] of this kind.
    fn from_resource(r: Resource) -> Option<Self>;
}

/// Implements [`KindName`], [`CalicoResource`] and a constructor for a resource struct with
/// `kind`, `api_version`, `metadata` and `spec` fields.
macro_rules! resource {
    ($ty:ident, $spec:ty) => {
        impl $crate::meta::KindName for $ty {
            const KIND: &'static str = $crate::kind::Kind::$ty.name();
        }

        impl $crate::resources::CalicoResource for $ty {
            const RESOURCE_KIND: $crate::kind::Kind = $crate::kind::Kind::$ty;
            fn metadata(&self) -> &$crate::meta::ObjectMeta {
                &self.metadata
            }
            fn metadata_mut(&mut self) -> &mut $crate::meta::ObjectMeta {
                &mut self.metadata
            }
            fn into_resource(self) -> $crate::resources::Resource {
                $crate::resources::Resource::$ty(self)
            }
            fn from_resource(r: $crate::resources::Resource) -> Option<Self> {
                match r {
                    $crate::resources::Resource::$ty(v) => Some(v),
                    _ => None,
                }
            }
        }

        impl $ty {
            /// A resource with the given metadata and spec.
            pub fn new(metadata: $crate::meta::ObjectMeta, spec: $spec) -> Self {
                $ty {
                    metadata,
                    spec,
                    ..Default::default()
                }
            }
        }
    };
}
pub(crate) use resource;

/// Any Calico resource. Serialises as the resource itself (`{"kind":…,"apiVersion":…,…}`).
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(untagged)]
#[allow(clippy::large_enum_variant)]
pub enum Resource {
    IPPool(IPPool),
    BGPConfiguration(BGPConfiguration),
    BGPPeer(BGPPeer),
    BGPFilter(BGPFilter),
    Node(Node),
    FelixConfiguration(FelixConfiguration),
    WorkloadEndpoint(WorkloadEndpoint),
    ClusterInformation(ClusterInformation),
    IPAMConfiguration(IPAMConfiguration),
    Profile(Profile),
    NetworkPolicy(NetworkPolicy),
    GlobalNetworkPolicy(GlobalNetworkPolicy),
    NetworkSet(NetworkSet),
    GlobalNetworkSet(GlobalNetworkSet),
    Tier(Tier),
    KubeControllersConfiguration(KubeControllersConfiguration),
}

/// Runs `$body` with `$r` bound to the inner value of any [`Resource`] variant.
macro_rules! each_resource {
    ($value:expr, $r:ident => $body:expr) => {
        match $value {
            Resource::IPPool($r) => $body,
            Resource::BGPConfiguration($r) => $body,
            Resource::BGPPeer($r) => $body,
            Resource::BGPFilter($r) => $body,
            Resource::Node($r) => $body,
            Resource::FelixConfiguration($r) => $body,
            Resource::WorkloadEndpoint($r) => $body,
            Resource::ClusterInformation($r) => $body,
            Resource::IPAMConfiguration($r) => $body,
            Resource::KubeControllersConfiguration($r) => $body,
            Resource::Profile($r) => $body,
            Resource::NetworkPolicy($r) => $body,
            Resource::GlobalNetworkPolicy($r) => $body,
            Resource::NetworkSet($r) => $body,
            Resource::GlobalNetworkSet($r) => $body,
            Resource::Tier($r) => $body,
        }
    };
}
pub(crate) use each_resource;

/// Runs `$body` with `$T` bound to the typed struct of a [`Kind`].
macro_rules! for_kind {
    ($kind:expr, $T:ident => $body:expr) => {
        match $kind {
            Kind::IPPool => {
                type $T = IPPool;
                $body
            }
            Kind::BGPConfiguration => {
                type $T = BGPConfiguration;
                $body
            }
            Kind::BGPPeer => {
                type $T = BGPPeer;
                $body
            }
            Kind::BGPFilter => {
                type $T = BGPFilter;
                $body
            }
            Kind::Node => {
                type $T = Node;
                $body
            }
            Kind::FelixConfiguration => {
                type $T = FelixConfiguration;
                $body
            }
            Kind::WorkloadEndpoint => {
                type $T = WorkloadEndpoint;
                $body
            }
            Kind::ClusterInformation => {
                type $T = ClusterInformation;
                $body
            }
            Kind::IPAMConfiguration => {
                type $T = IPAMConfiguration;
                $body
            }
            Kind::Profile => {
                type $T = Profile;
                $body
            }
            Kind::NetworkPolicy => {
                type $T = NetworkPolicy;
                $body
            }
            Kind::GlobalNetworkPolicy => {
                type $T = GlobalNetworkPolicy;
                $body
            }
            Kind::NetworkSet => {
                type $T = NetworkSet;
                $body
            }
            Kind::GlobalNetworkSet => {
                type $T = GlobalNetworkSet;
                $body
            }
            Kind::Tier => {
                type $T = Tier;
                $body
            }
            Kind::KubeControllersConfiguration => {
                type $T = KubeControllersConfiguration;
                $body
            }
        }
    };
}
pub(crate) use for_kind;

impl Resource {
    pub fn kind(&self) -> Kind {
        fn k<T: CalicoResource>(_: &T) -> Kind {
            T::RESOURCE_KIND
        }
        each_resource!(self, r => k(r))
    }

    pub fn metadata(&self) -> &ObjectMeta {
        each_resource!(self, r => &r.metadata)
    }

    pub fn metadata_mut(&mut self) -> &mut ObjectMeta {
        each_resource!(self, r => &mut r.metadata)
    }

    pub fn name(&self) -> &str {
        &self.metadata().name
    }

    /// Calico's identifier for messages: `IPPool(default-pool)`, `WorkloadEndpoint(ns/name)`.
    pub fn identifier(&self) -> String {
        identifier(self.kind(), &self.metadata().namespace, &self.metadata().name)
    }

    /// A resource of `kind` with `metadata` and an empty spec: what is known of a stored row
    /// whose value does not decode (its key gives the name), e.g. to report its deletion.
    pub fn with_metadata(kind: Kind, metadata: ObjectMeta) -> Resource {
        for_kind!(kind, T => T { metadata, ..Default::default() }.into_resource())
    }

    /// Reads a resource of a known kind from JSON (as stored in the datastore), rejecting
    /// unknown fields.
    pub fn from_json(kind: Kind, json: &[u8]) -> Result<Resource, serde_json::Error> {
        for_kind!(kind, T => serde_json::from_slice::<T>(json).map(CalicoResource::into_resource))
    }

    /// Reads a resource of a known kind from JSON, dropping fields this version does not know
    /// (each one named to `unknown`; see [`crate::lenient`]).
    pub fn from_json_lenient(
        kind: Kind,
        json: &[u8],
        unknown: &mut dyn FnMut(&str),
    ) -> Result<Resource, serde_json::Error> {
        for_kind!(kind, T => crate::lenient::from_slice::<T>(json, unknown).map(CalicoResource::into_resource))
    }

    /// Reads a resource of a known kind from a JSON value.
    pub fn from_value(kind: Kind, v: serde_json::Value) -> Result<Resource, serde_json::Error> {
        for_kind!(kind, T => serde_json::from_value::<T>(v).map(CalicoResource::into_resource))
    }

    /// The JSON value, Go field order.
    pub fn to_value(&self) -> serde_json::Value {
        serde_json::to_value(self).expect("resources always serialise")
    }
}

/// `Kind(name)` or `Kind(namespace/name)`, as Calico names resources in errors.
pub fn identifier(kind: Kind, namespace: &str, name: &str) -> String {
    if namespace.is_empty() {
        format!("{kind}({name})")
    } else {
        format!("{kind}({namespace}/{name})")
    }
}

/// The `kind` of a list of `T` (`IPPoolList`).
pub struct ListKindTag<T>(PhantomData<fn() -> T>);

impl<T> Default for ListKindTag<T> {
    fn default() -> Self {
        ListKindTag(PhantomData)
    }
}
impl<T> Clone for ListKindTag<T> {
    fn clone(&self) -> Self {
        ListKindTag(PhantomData)
    }
}
impl<T> PartialEq for ListKindTag<T> {
    fn eq(&self, _: &Self) -> bool {
        true
    }
}
impl<T> fmt::Debug for ListKindTag<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ListKindTag")
    }
}
impl<T: KindName> Serialize for ListKindTag<T> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&format!("{}List", T::KIND))
    }
}
impl<'de, T: KindName> Deserialize<'de> for ListKindTag<T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        if s.eq_ignore_ascii_case(&format!("{}List", T::KIND)) {
            Ok(ListKindTag::default())
        } else {
            Err(serde::de::Error::custom(format!(
                "kind {s:?} where \"{}List\" was expected",
                T::KIND
            )))
        }
    }
}

/// A `…List` object: `{kind: IPPoolList, apiVersion, metadata: {resourceVersion}, items}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
#[serde(bound(
    serialize = "T: Serialize + KindName",
    deserialize = "T: Deserialize<'de> + KindName"
))]
pub struct List<T> {
    #[serde(default)]
    pub kind: ListKindTag<T>,
    #[serde(default)]
    pub api_version: ApiVersion,
    #[serde(default)]
    pub metadata: ListMeta,
    #[serde(default)]
    pub items: Vec<T>,
}

impl<T> List<T> {
    /// A list at a store revision (shown as `metadata.resourceVersion`).
    pub fn new(items: Vec<T>, resource_version: impl Into<String>) -> Self {
        List {
            kind: ListKindTag::default(),
            api_version: ApiVersion,
            metadata: ListMeta {
                resource_version: resource_version.into(),
                ..ListMeta::default()
            },
            items,
        }
    }
}

/// A list of resources of one kind, untyped: what `calicoctl get <kind>` prints as a `…List`
/// document. Serialises with `kind: <Kind>List`.
#[derive(Debug, Clone, PartialEq)]
pub struct ResourceList {
    pub kind: Kind,
    pub resource_version: String,
    pub items: Vec<Resource>,
}

impl Serialize for ResourceList {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeStruct;
        let mut st = s.serialize_struct("List", 4)?;
        st.serialize_field("kind", self.kind.list_name())?;
        st.serialize_field("apiVersion", &ApiVersion)?;
        st.serialize_field(
            "metadata",
            &ListMeta {
                resource_version: self.resource_version.clone(),
                ..ListMeta::default()
            },
        )?;
        st.serialize_field("items", &self.items)?;
        st.end()
    }
}

fn is_false(b: &bool) -> bool {
    !*b
}

fn is_zero_u16(n: &u16) -> bool {
    *n == 0
}

fn is_zero_u32(n: &u32) -> bool {
    *n == 0
}

fn is_zero_i64(n: &i64) -> bool {
    *n == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn list_kind_and_shape() {
        let l = List::new(
            vec![IPPool::new(ObjectMeta::named("p"), IPPoolSpec::default())],
            "12",
        );
        let v = serde_json::to_value(&l).unwrap();
        assert_eq!(v["kind"], "IPPoolList");
        assert_eq!(v["metadata"]["resourceVersion"], "12");
        assert_eq!(v["items"][0]["kind"], "IPPool");
        let back: List<IPPool> = serde_json::from_value(v).unwrap();
        assert_eq!(back, l);
    }

    #[test]
    fn resource_list_matches_typed_list() {
        let p = IPPool::new(ObjectMeta::named("p"), IPPoolSpec::default());
        let typed = serde_json::to_string(&List::new(vec![p.clone()], "3")).unwrap();
        let untyped = serde_json::to_string(&ResourceList {
            kind: Kind::IPPool,
            resource_version: "3".into(),
            items: vec![Resource::IPPool(p)],
        })
        .unwrap();
        assert_eq!(typed, untyped);
    }

    #[test]
    fn identifiers() {
        assert_eq!(identifier(Kind::IPPool, "", "a"), "IPPool(a)");
        assert_eq!(
            identifier(Kind::WorkloadEndpoint, "ns", "a"),
            "WorkloadEndpoint(ns/a)"
        );
    }
}
