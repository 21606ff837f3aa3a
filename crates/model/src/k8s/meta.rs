//! The `kind`/`apiVersion` header of Kubernetes objects and the kinds Brindle reads
//! ([`K8sKind`]): `networking.k8s.io/v1 NetworkPolicy`, `v1 Namespace`, `v1 ServiceAccount`,
//! `v1 Pod`.

use std::fmt;
use std::marker::PhantomData;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A Kubernetes kind Brindle reads from manifests.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum K8sKind {
    NetworkPolicy,
    Namespace,
    ServiceAccount,
    Pod,
}

impl K8sKind {
    pub const ALL: [K8sKind; 4] = [
        K8sKind::NetworkPolicy,
        K8sKind::Namespace,
        K8sKind::ServiceAccount,
        K8sKind::Pod,
    ];

    pub const fn name(self) -> &'static str {
        match self {
            K8sKind::NetworkPolicy => "NetworkPolicy",
            K8sKind::Namespace => "Namespace",
            K8sKind::ServiceAccount => "ServiceAccount",
            K8sKind::Pod => "Pod",
        }
    }

    pub const fn api_version(self) -> &'static str {
        match self {
            K8sKind::NetworkPolicy => "networking.k8s.io/v1",
            _ => "v1",
        }
    }

    /// The kind by `apiVersion` and `kind` (`<Kind>List` sets the flag).
    pub fn from_manifest(api_version: &str, kind: &str) -> Option<(K8sKind, bool)> {
        K8sKind::ALL.into_iter().find_map(|k| {
            if api_version != k.api_version() {
                None
            } else if kind == k.name() {
                Some((k, false))
            } else if kind.strip_suffix("List") == Some(k.name()) {
                Some((k, true))
            } else {
                None
            }
        })
    }
}

impl fmt::Display for K8sKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A Kubernetes object type.
pub trait K8sObject {
    const K8S_KIND: K8sKind;
}

/// `kind` of a Kubernetes object: written as the kind, read exactly.
pub struct Kind<T>(PhantomData<fn() -> T>);

/// `apiVersion` of a Kubernetes object: written as the kind's group/version, read exactly.
pub struct ApiVersion<T>(PhantomData<fn() -> T>);

macro_rules! tag {
    ($tag:ident, $text:ident) => {
        impl<T> Default for $tag<T> {
            fn default() -> Self {
                $tag(PhantomData)
            }
        }
        impl<T> Clone for $tag<T> {
            fn clone(&self) -> Self {
                $tag(PhantomData)
            }
        }
        impl<T> PartialEq for $tag<T> {
            fn eq(&self, _: &Self) -> bool {
                true
            }
        }
        impl<T: K8sObject> fmt::Debug for $tag<T> {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(T::K8S_KIND.$text())
            }
        }
        impl<T: K8sObject> Serialize for $tag<T> {
            fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(T::K8S_KIND.$text())
            }
        }
        impl<'de, T: K8sObject> Deserialize<'de> for $tag<T> {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let s = String::deserialize(d)?;
                let want = T::K8S_KIND.$text();
                if s == want {
                    Ok($tag(PhantomData))
                } else {
                    Err(serde::de::Error::custom(format!(
                        "{s:?} where {want:?} was expected"
                    )))
                }
            }
        }
    };
}
tag!(Kind, name);
tag!(ApiVersion, api_version);
