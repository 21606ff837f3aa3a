//! Kubernetes-style object metadata as Calico's v3 resources carry it (`metav1.ObjectMeta`,
//! `metav1.ListMeta`), the `kind`/`apiVersion` header fields, and RFC 3339 timestamps.
//!
//! Field order and omission rules follow Go's JSON encoding of the Kubernetes types, so output is
//! byte-compatible: `creationTimestamp` is written as `null` when unset (it is a struct in Go, so
//! `omitempty` does not apply), everything else is omitted when empty; maps are sorted.

use std::collections::BTreeMap;
use std::fmt;
use std::marker::PhantomData;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// The API group/version of every Calico v3 resource.
pub const API_VERSION: &str = "projectcalico.org/v3";

fn is_zero(n: &i64) -> bool {
    *n == 0
}

/// `metav1.ObjectMeta`: every field Kubernetes defines, so exported objects load unchanged.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ObjectMeta {
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub name: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub generate_name: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub namespace: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub self_link: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub uid: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub resource_version: String,
    #[serde(default, skip_serializing_if = "is_zero")]
    pub generation: i64,
    /// RFC 3339 (`2024-05-01T10:00:00Z`); `null` in JSON when unset, as Go writes it.
    #[serde(default)]
    pub creation_timestamp: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deletion_timestamp: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deletion_grace_period_seconds: Option<i64>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub labels: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub owner_references: Vec<serde_json::Value>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub finalizers: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub managed_fields: Vec<serde_json::Value>,
    /// Dropped from Kubernetes in 1.25 but present in older exports.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub cluster_name: String,
}

impl ObjectMeta {
    /// Metadata with only a name.
    pub fn named(name: impl Into<String>) -> ObjectMeta {
        ObjectMeta {
            name: name.into(),
            ..ObjectMeta::default()
        }
    }

    /// Metadata with a namespace and a name.
    pub fn namespaced(namespace: impl Into<String>, name: impl Into<String>) -> ObjectMeta {
        ObjectMeta {
            name: name.into(),
            namespace: namespace.into(),
            ..ObjectMeta::default()
        }
    }
}

/// `metav1.ListMeta`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ListMeta {
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub self_link: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub resource_version: String,
    #[serde(default, rename = "continue", skip_serializing_if = "String::is_empty")]
    pub continue_token: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub remaining_item_count: Option<i64>,
}

/// A type with a Calico kind name (`IPPool`, `BGPPeer`, …).
pub trait KindName {
    /// The kind as Calico writes it.
    const KIND: &'static str;
}

/// The `kind` field of a resource of type `T`: always written as `T::KIND`; read
/// case-insensitively (calicoctl users write `ippool` as often as `IPPool`).
pub struct KindTag<T>(PhantomData<fn() -> T>);

impl<T> KindTag<T> {
    pub const fn new() -> Self {
        KindTag(PhantomData)
    }
}

impl<T> Default for KindTag<T> {
    fn default() -> Self {
        KindTag::new()
    }
}
impl<T> Clone for KindTag<T> {
    fn clone(&self) -> Self {
        *self
    }
}
impl<T> Copy for KindTag<T> {}
impl<T> PartialEq for KindTag<T> {
    fn eq(&self, _: &Self) -> bool {
        true
    }
}
impl<T> Eq for KindTag<T> {}
impl<T: KindName> fmt::Debug for KindTag<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(T::KIND)
    }
}

impl<T: KindName> Serialize for KindTag<T> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(T::KIND)
    }
}

impl<'de, T: KindName> Deserialize<'de> for KindTag<T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        if s.eq_ignore_ascii_case(T::KIND) {
            Ok(KindTag::new())
        } else {
            Err(serde::de::Error::custom(format!(
                "kind {s:?} where {:?} was expected",
                T::KIND
            )))
        }
    }
}

/// The `apiVersion` field: always written as `projectcalico.org/v3`, and only that is accepted.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ApiVersion;

impl Serialize for ApiVersion {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(API_VERSION)
    }
}

impl<'de> Deserialize<'de> for ApiVersion {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        if s == API_VERSION {
            Ok(ApiVersion)
        } else {
            Err(serde::de::Error::custom(format!(
                "apiVersion {s:?} is not supported (expected {API_VERSION:?})"
            )))
        }
    }
}

/// Days since 1970-01-01 → (year, month, day) in the proleptic Gregorian calendar (Howard
/// Hinnant's `civil_from_days`). The one civil-date conversion Brindle's timestamps use.
pub fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (yoe + era * 400 + i64::from(month <= 2), month, day)
}

/// Formats seconds since the Unix epoch as RFC 3339 in UTC, the way Kubernetes writes
/// `metav1.Time` (`2024-05-01T10:00:00Z`, second precision).
pub fn rfc3339_utc(unix_secs: i64) -> String {
    let (year, month, day) = civil_from_days(unix_secs.div_euclid(86_400));
    let secs = unix_secs.rem_euclid(86_400);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        secs / 3600,
        secs % 3600 / 60,
        secs % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn creation_timestamp_is_null_when_unset() {
        let m = ObjectMeta::named("a");
        assert_eq!(
            serde_json::to_string(&m).unwrap(),
            r#"{"name":"a","creationTimestamp":null}"#
        );
    }

    #[test]
    fn go_field_order() {
        let mut m = ObjectMeta::namespaced("ns", "n");
        m.uid = "u".into();
        m.resource_version = "7".into();
        m.creation_timestamp = Some("2024-05-01T10:00:00Z".into());
        m.labels.insert("b".into(), "2".into());
        m.labels.insert("a".into(), "1".into());
        assert_eq!(
            serde_json::to_string(&m).unwrap(),
            r#"{"name":"n","namespace":"ns","uid":"u","resourceVersion":"7","creationTimestamp":"2024-05-01T10:00:00Z","labels":{"a":"1","b":"2"}}"#
        );
    }

    #[test]
    fn unknown_metadata_field_rejected() {
        let e = serde_json::from_str::<ObjectMeta>(r#"{"name":"a","nmae":"b"}"#).unwrap_err();
        assert!(e.to_string().contains("unknown field `nmae`"), "{e}");
    }

    #[test]
    fn timestamps() {
        assert_eq!(rfc3339_utc(0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339_utc(1_714_557_600), "2024-05-01T10:00:00Z");
        assert_eq!(rfc3339_utc(951_782_400), "2000-02-29T00:00:00Z");
        assert_eq!(rfc3339_utc(-1), "1969-12-31T23:59:59Z");
        assert_eq!(civil_from_days(-719_468), (0, 3, 1));
    }
}
