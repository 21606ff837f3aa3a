//! Loading manifests the way `calicoctl apply -f` reads them: one document, a multi-document
//! YAML stream (`---`), a document that is a list of resources, or a `…List` kind (`items`); YAML
//! or JSON (one or several concatenated JSON values). Kinds are matched case-insensitively and
//! `apiVersion` must be `projectcalico.org/v3`.
//!
//! [`load_documents_str`] also reads the Kubernetes objects Brindle understands
//! (`networking.k8s.io/v1 NetworkPolicy`, `v1 Namespace`, `v1 ServiceAccount`, `v1 Pod`, their
//! `…List` kinds and `v1 List`) as [`Document`]s; [`load_str`] takes Calico resources only.
//!
//! Each document is read twice: once untyped to learn its kind(s), then straight into the typed
//! structs through a [`DeserializeSeed`], so a type error or an unknown field is reported with its
//! line in the file. Errors carry the source name, the 1-based document index and the line.

use std::fmt;

use serde::de::{DeserializeSeed, SeqAccess, Visitor};
use serde_json::Value;

use crate::error::LoadError;
use crate::k8s::{self, K8sKind};
use crate::kind::Kind;
use crate::meta::API_VERSION;
use crate::resources::{
    BGPConfiguration, BGPFilter, BGPPeer, ClusterInformation, FelixConfiguration, GlobalNetworkPolicy,
    GlobalNetworkSet, IPAMConfiguration, IPPool, NetworkPolicy, NetworkSet, Node, Profile, Tier,
    WorkloadEndpoint,
};
use crate::resources::{CalicoResource, List, Resource, for_kind};

/// One object of a manifest: a Calico resource or a Kubernetes object.
#[derive(Debug, Clone, PartialEq)]
#[allow(clippy::large_enum_variant)]
pub enum Document {
    Calico(Resource),
    NetworkPolicy(k8s::NetworkPolicy),
    Namespace(k8s::Namespace),
    ServiceAccount(k8s::ServiceAccount),
    Pod(k8s::Pod),
}

impl Document {
    /// The kind as written in `kind:`.
    pub fn kind_name(&self) -> &'static str {
        match self {
            Document::Calico(r) => r.kind().name(),
            Document::NetworkPolicy(_) => K8sKind::NetworkPolicy.name(),
            Document::Namespace(_) => K8sKind::Namespace.name(),
            Document::ServiceAccount(_) => K8sKind::ServiceAccount.name(),
            Document::Pod(_) => K8sKind::Pod.name(),
        }
    }

    /// `Kind(name)` / `Kind(namespace/name)` for messages.
    pub fn identifier(&self) -> String {
        let (kind, m) = match self {
            Document::Calico(r) => return r.identifier(),
            Document::NetworkPolicy(o) => (K8sKind::NetworkPolicy, &o.metadata),
            Document::Namespace(o) => (K8sKind::Namespace, &o.metadata),
            Document::ServiceAccount(o) => (K8sKind::ServiceAccount, &o.metadata),
            Document::Pod(o) => (K8sKind::Pod, &o.metadata),
        };
        if m.namespace.is_empty() {
            format!("{kind}({})", m.name)
        } else {
            format!("{kind}({}/{})", m.namespace, m.name)
        }
    }
}

/// What one document (or one element of a list document) holds.
#[derive(Debug, Clone, Copy)]
enum DocKind {
    Calico(Kind),
    K8s(K8sKind),
}

#[derive(Debug, Clone, Copy)]
struct Shape {
    kind: DocKind,
    list: bool,
}

/// Loads every Calico resource of a manifest, in order. `source_name` names the input in
/// errors (a file name, or `<stdin>`). Kubernetes objects are refused (see
/// [`load_documents_str`]).
pub fn load_str(source_name: &str, text: &str) -> Result<Vec<Resource>, LoadError> {
    load_any(source_name, text, false).map(|docs| {
        docs.into_iter()
            .filter_map(|d| match d {
                Document::Calico(r) => Some(r),
                _ => None, // refused while loading
            })
            .collect()
    })
}

/// Loads every document of a manifest, Calico resources and Kubernetes objects, in order.
pub fn load_documents_str(source_name: &str, text: &str) -> Result<Vec<Document>, LoadError> {
    load_any(source_name, text, true)
}

fn load_any(source_name: &str, text: &str, k8s: bool) -> Result<Vec<Document>, LoadError> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let first = text.trim_start().chars().next();
    if matches!(first, Some('{') | Some('[')) {
        load_json(source_name, text, k8s)
    } else {
        load_yaml(source_name, text, k8s)
    }
}

fn utf8<'a>(source_name: &str, bytes: &'a [u8]) -> Result<&'a str, LoadError> {
    std::str::from_utf8(bytes).map_err(|e| LoadError {
        source_name: source_name.to_string(),
        document: 1,
        line: None,
        message: format!("not UTF-8 text: {e}"),
    })
}

/// Like [`load_str`] for raw bytes (which must be UTF-8).
pub fn load_bytes(source_name: &str, bytes: &[u8]) -> Result<Vec<Resource>, LoadError> {
    load_str(source_name, utf8(source_name, bytes)?)
}

/// Like [`load_documents_str`] for raw bytes (which must be UTF-8).
pub fn load_documents_bytes(source_name: &str, bytes: &[u8]) -> Result<Vec<Document>, LoadError> {
    load_documents_str(source_name, utf8(source_name, bytes)?)
}

/// Calico's wording for an unknown field (`calicoctl`'s `massageError`), instead of serde's
/// list of every expected field.
fn massage(msg: String) -> String {
    let Some(start) = msg.find("unknown field `") else {
        return msg;
    };
    let rest = &msg[start + "unknown field `".len()..];
    let field = rest.split('`').next().unwrap_or_default();
    let path = msg[..start].trim_end_matches(": ").trim();
    let location = if path.is_empty() || path == "." {
        String::new()
    } else {
        format!(" (in {path})")
    };
    format!("field in document is not recognized or is in the wrong location: {field}{location}")
}

/// How a document holds its objects.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Form {
    /// One object, or a `…List` kind.
    Single,
    /// A YAML/JSON list of objects.
    Array,
    /// Kubernetes' `v1 List`: an object whose `items` are objects of any kind.
    ListObject,
}

/// Reads the shape of a document from its untyped value; `Ok(None)` for an empty document.
fn shapes(v: &Value, k8s: bool) -> Result<Option<(Vec<Shape>, Form)>, String> {
    let items_of = |items: &[Value]| {
        items
            .iter()
            .enumerate()
            .map(|(i, item)| match item {
                Value::Object(_) => shape_of(item, k8s).map_err(|e| format!("list item {}: {e}", i + 1)),
                _ => Err(format!("list item {} is not a resource", i + 1)),
            })
            .collect::<Result<Vec<_>, _>>()
    };
    match v {
        Value::Null => Ok(None),
        Value::Array(items) => Ok(Some((items_of(items)?, Form::Array))),
        Value::Object(_) if k8s && is_v1_list(v) => {
            let items = match v.get("items") {
                Some(Value::Array(items)) => items.as_slice(),
                None | Some(Value::Null) => &[],
                Some(_) => return Err("List items must be a list".into()),
            };
            Ok(Some((items_of(items)?, Form::ListObject)))
        }
        Value::Object(_) => shape_of(v, k8s).map(|s| Some((vec![s], Form::Single))),
        _ => Err("document is not a resource (expected a mapping with kind and apiVersion)".into()),
    }
}

fn is_v1_list(v: &Value) -> bool {
    v.get("kind").and_then(Value::as_str) == Some("List")
        && v.get("apiVersion").and_then(Value::as_str) == Some("v1")
}

fn shape_of(v: &Value, k8s: bool) -> Result<Shape, String> {
    let kind = match v.get("kind") {
        Some(Value::String(k)) if !k.is_empty() => k,
        Some(_) => return Err("kind must be a string".into()),
        None => return Err("resource has no kind".into()),
    };
    let api = match v.get("apiVersion") {
        Some(Value::String(a)) => Some(a.as_str()),
        _ => None,
    };
    if let Some(a) = api
        && a != API_VERSION
        && let Some((k, list)) = K8sKind::from_manifest(a, kind)
    {
        if !k8s {
            return Err(format!(
                "{kind} ({a}) is a Kubernetes object, not a Calico resource"
            ));
        }
        return Ok(Shape {
            kind: DocKind::K8s(k),
            list,
        });
    }
    let (kind_enum, list) =
        Kind::from_manifest_kind(kind).ok_or_else(|| format!("unknown resource type {kind:?}"))?;
    match api {
        Some(API_VERSION) => {}
        Some(a) => {
            return Err(format!(
                "unknown resource type ({kind}) and/or version ({a}): apiVersion must be {API_VERSION}"
            ));
        }
        None => return Err(format!("{kind} has no apiVersion (expected {API_VERSION})")),
    }
    Ok(Shape {
        kind: DocKind::Calico(kind_enum),
        list,
    })
}

/// `Kind(name)` of the first resource of a document, for error messages.
fn describe(v: &Value) -> Option<String> {
    let first = match v {
        Value::Array(a) => a.first()?,
        other => other,
    };
    let kind = first.get("kind")?.as_str()?;
    let name = first.get("metadata")?.get("name")?.as_str()?;
    Some(format!("{kind}({name})"))
}

/// A Kubernetes `<Kind>List`: items of one kind (which may omit their own kind/apiVersion).
#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct K8sList<T> {
    #[serde(default, rename = "kind")]
    _kind: String,
    #[serde(default, rename = "apiVersion")]
    _api_version: String,
    #[serde(default, rename = "metadata")]
    _metadata: Option<Value>,
    #[serde(default = "Vec::new")]
    items: Vec<T>,
}

fn k8s_typed<'de, T, D>(list: bool, d: D, wrap: fn(T) -> Document) -> Result<Vec<Document>, D::Error>
where
    T: serde::Deserialize<'de>,
    D: serde::Deserializer<'de>,
{
    use serde::Deserialize;
    if list {
        K8sList::<T>::deserialize(d).map(|l| l.items.into_iter().map(wrap).collect())
    } else {
        T::deserialize(d).map(|o| vec![wrap(o)])
    }
}

fn typed<'de, D: serde::Deserializer<'de>>(shape: Shape, d: D) -> Result<Vec<Document>, D::Error> {
    use serde::Deserialize;
    match shape.kind {
        DocKind::Calico(kind) => for_kind!(kind, T => {
            if shape.list {
                List::<T>::deserialize(d)
                    .map(|l| l.items.into_iter().map(|r| Document::Calico(r.into_resource())).collect())
            } else {
                T::deserialize(d).map(|r| vec![Document::Calico(r.into_resource())])
            }
        }),
        DocKind::K8s(K8sKind::NetworkPolicy) => k8s_typed(shape.list, d, Document::NetworkPolicy),
        DocKind::K8s(K8sKind::Namespace) => k8s_typed(shape.list, d, Document::Namespace),
        DocKind::K8s(K8sKind::ServiceAccount) => k8s_typed(shape.list, d, Document::ServiceAccount),
        DocKind::K8s(K8sKind::Pod) => k8s_typed(shape.list, d, Document::Pod),
    }
}

/// One element of a list document.
struct OneSeed(Shape);

impl<'de> DeserializeSeed<'de> for OneSeed {
    type Value = Vec<Document>;
    fn deserialize<D: serde::Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        typed(self.0, d)
    }
}

/// The items of a list, each of its own shape.
struct SeqSeed<'a>(&'a [Shape]);

impl<'de> DeserializeSeed<'de> for SeqSeed<'_> {
    type Value = Vec<Document>;
    fn deserialize<D: serde::Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_seq(self)
    }
}

impl<'de> Visitor<'de> for SeqSeed<'_> {
    type Value = Vec<Document>;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a list of resources")
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        let mut out = Vec::new();
        for shape in self.0 {
            match seq.next_element_seed(OneSeed(*shape))? {
                Some(rs) => out.extend(rs),
                None => break,
            }
        }
        Ok(out)
    }
}

/// Kubernetes' `v1 List` object: `items` read with their shapes, the header ignored.
struct ListObject<'a>(&'a [Shape]);

impl<'de> Visitor<'de> for ListObject<'_> {
    type Value = Vec<Document>;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a List")
    }
    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut out = Vec::new();
        while let Some(key) = map.next_key::<String>()? {
            match key.as_str() {
                "items" => out = map.next_value_seed(SeqSeed(self.0))?,
                "kind" | "apiVersion" | "metadata" => {
                    map.next_value::<serde::de::IgnoredAny>()?;
                }
                other => return Err(serde::de::Error::unknown_field(other, &["items", "metadata"])),
            }
        }
        Ok(out)
    }
}

/// The shapes of one document and how it holds them.
struct Doc {
    shapes: Vec<Shape>,
    form: Form,
}

impl<'de> DeserializeSeed<'de> for &Doc {
    type Value = Vec<Document>;

    fn deserialize<D: serde::Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        match self.form {
            Form::Array => d.deserialize_seq(SeqSeed(&self.shapes)),
            Form::ListObject => d.deserialize_map(ListObject(&self.shapes)),
            Form::Single => typed(self.shapes[0], d),
        }
    }
}

fn load_yaml(source: &str, text: &str, k8s: bool) -> Result<Vec<Document>, LoadError> {
    let err = |document: usize, line: Option<usize>, message: String| LoadError {
        source_name: source.to_string(),
        document,
        line,
        message,
    };
    // Pass 1: the untyped value of every document.
    let mut docs: Vec<Option<(Doc, Value)>> = Vec::new();
    for (i, de) in serde_norway::Deserializer::from_str(text).enumerate() {
        let v = serde::Deserialize::deserialize(de).map_err(|e: serde_norway::Error| {
            err(
                i + 1,
                e.location().map(|l| l.line()),
                strip_location(&e.to_string()),
            )
        })?;
        let shapes = shapes(&v, k8s).map_err(|m| err(i + 1, None, m))?;
        docs.push(shapes.map(|(shapes, form)| (Doc { shapes, form }, v)));
    }
    // Pass 2: typed, with line numbers.
    let mut out = Vec::new();
    for (i, de) in serde_norway::Deserializer::from_str(text).enumerate() {
        let Some(Some((doc, v))) = docs.get(i) else {
            continue;
        };
        let rs = doc.deserialize(de).map_err(|e: serde_norway::Error| {
            let msg = massage(strip_location(&e.to_string()));
            err(i + 1, e.location().map(|l| l.line()), with_name(v, msg))
        })?;
        out.extend(rs);
    }
    Ok(out)
}

fn with_name(v: &Value, msg: String) -> String {
    match describe(v) {
        Some(d) => format!("{d}: {msg}"),
        None => msg,
    }
}

/// Drops serde_norway's ` at line L column C` suffix (the line is reported separately).
fn strip_location(msg: &str) -> String {
    match msg.rfind(" at line ") {
        Some(i) if msg[i..].contains(" column ") => msg[..i].to_string(),
        _ => msg.to_string(),
    }
}

fn load_json(source: &str, text: &str, k8s: bool) -> Result<Vec<Document>, LoadError> {
    let err = |document: usize, line: Option<usize>, message: String| LoadError {
        source_name: source.to_string(),
        document,
        line,
        message,
    };
    let mut out = Vec::new();
    let mut stream = serde_json::Deserializer::from_str(text).into_iter::<Value>();
    let mut start = 0;
    let mut index = 0;
    loop {
        let item = stream.next();
        let end = stream.byte_offset();
        let Some(item) = item else { break };
        index += 1;
        let v = item.map_err(|e| err(index, Some(e.line()), e.to_string()))?;
        let slice = &text[start..end];
        let line_base = text[..start].matches('\n').count();
        start = end;
        let Some((shapes, form)) = shapes(&v, k8s).map_err(|m| err(index, None, m))? else {
            continue;
        };
        let doc = Doc { shapes, form };
        let mut de = serde_json::Deserializer::from_str(slice);
        let rs = (&doc).deserialize(&mut de).map_err(|e| {
            let msg = massage(strip_location(&e.to_string()));
            err(index, Some(line_base + e.line()), with_name(&v, msg))
        })?;
        out.extend(rs);
    }
    Ok(out)
}

#[cfg(test)]
mod tests;
