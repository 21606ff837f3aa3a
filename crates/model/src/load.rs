//! Loading manifests the way `calicoctl apply -f` reads them: one document, a multi-document
//! YAML stream (`---`), a document that is a list of resources, or a `…List` kind (`items`); YAML
//! or JSON (one or several concatenated JSON values). Kinds are matched case-insensitively and
//! `apiVersion` must be `projectcalico.org/v3`.
//!
//! [`load_documents_str`] also reads the Kubernetes objects Brindle understands
//! (`networking.k8s.io/v1 NetworkPolicy`, `v1 Namespace`, `v1 ServiceAccount`, `v1 Pod`, their
//! `…List` kinds and `v1 List`) as [`Document`]s; [`load_str`] takes Calico resources only.
//!
//! Input is bounded ([`Limits`]): a stream is read one document at a time ([`Loader`], an
//! iterator: `validate` of a long stream holds one document, never all), a document larger than
//! the size limit is refused without reading the rest of it, nesting deeper than the depth limit
//! is refused before the YAML parser sees it (`depth`: its cost grows with depth × size), and a
//! stream longer than the document limit is refused when the limit is passed. Each refusal
//! names the limit.
//!
//! Each document is read twice: once untyped to learn its kind(s), then straight into the typed
//! structs through a [`DeserializeSeed`], so a type error or an unknown field is reported with its
//! line in the file. Errors carry the source name, the 1-based document index and the line.
//!
//! Module map: this file (limits, the loader, parsing one document), `split` (cutting the
//! stream into documents while reading it), `depth` (flow nesting of a YAML document, bounded
//! before parsing).

mod depth;
mod split;

use std::fmt;
use std::io::BufRead;

use serde::de::{DeserializeSeed, SeqAccess, Visitor};
use serde_json::Value;

use crate::error::LoadError;
use crate::k8s::{self, K8sKind};
use crate::kind::Kind;
use crate::meta::API_VERSION;
use crate::resources::{
    BGPConfiguration, BGPFilter, BGPPeer, ClusterInformation, FelixConfiguration, GlobalNetworkPolicy,
    GlobalNetworkSet, IPAMConfiguration, IPPool, KubeControllersConfiguration, NetworkPolicy, NetworkSet,
    Node, Profile, Tier, WorkloadEndpoint,
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

/// How large and deep a manifest may be. Every limit is checked while reading, before the
/// parser sees what is over it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Nesting of mappings and sequences, flow (`{…}`, `[…]`) and block alike.
    pub max_depth: usize,
    /// Bytes of one document (one `---` section, or one top-level JSON value).
    pub max_document_bytes: usize,
    /// Documents in one stream (empty ones included).
    pub max_documents: usize,
}

/// Nesting depth: Calico's resources nest about 8 deep; serde's own parsers stop at 128.
pub const MAX_DEPTH: usize = 64;
/// Document size: etcd refuses requests over 1.5 MiB, so a larger resource could never be
/// stored; the margin is for `…List` documents of many resources.
pub const MAX_DOCUMENT_BYTES: usize = 4 << 20;
/// Stream length. Streams are read a document at a time, so this bounds time, not memory.
pub const MAX_DOCUMENTS: usize = 1_000_000;

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_depth: MAX_DEPTH,
            max_document_bytes: MAX_DOCUMENT_BYTES,
            max_documents: MAX_DOCUMENTS,
        }
    }
}

/// Reads a manifest stream document by document: each item is the objects of one document
/// (several for a list), in order; empty documents are skipped. After an error, the iterator
/// ends.
pub struct Loader<R> {
    source_name: String,
    /// Kubernetes objects are read too (else refused).
    k8s: bool,
    splitter: split::Splitter<R>,
    limits: Limits,
    /// Documents started (1-based index of the last one).
    document: usize,
    chunks: usize,
    failed: bool,
}

impl<R> Loader<R> {
    fn error(&self, document: usize, line: Option<usize>, message: String) -> LoadError {
        LoadError {
            source_name: self.source_name.clone(),
            document,
            line,
            message,
        }
    }
}

impl<R: BufRead> Loader<R> {
    /// A loader of Calico resources (Kubernetes objects are refused). `source_name` names the
    /// input in errors (a file name, or `<stdin>`).
    pub fn new(source_name: &str, reader: R, limits: Limits) -> Loader<R> {
        Loader::with_kubernetes(source_name, reader, limits, false)
    }

    /// A loader of Calico resources and the Kubernetes objects of [`Document`].
    pub fn documents(source_name: &str, reader: R, limits: Limits) -> Loader<R> {
        Loader::with_kubernetes(source_name, reader, limits, true)
    }

    fn with_kubernetes(source_name: &str, reader: R, limits: Limits, k8s: bool) -> Loader<R> {
        Loader {
            k8s,
            source_name: source_name.to_string(),
            splitter: split::Splitter::new(reader, limits),
            limits,
            document: 0,
            chunks: 0,
            failed: false,
        }
    }

    fn load_chunk(&mut self, chunk: &split::Chunk) -> Result<Vec<Document>, LoadError> {
        match self.splitter.format() {
            Some(split::Format::Json) => {
                self.document += 1;
                load_json(chunk, self.k8s).map_err(|(line, m)| self.error(self.document, line, m))
            }
            _ => {
                if let Err((offset, m)) = check_flow_depth(&chunk.text, self.limits.max_depth) {
                    let line = chunk.first_line + chunk.text[..offset].matches('\n').count() + 1;
                    return Err(self.error(self.document + 1, Some(line), m));
                }
                let (rs, docs) = load_yaml(self, chunk);
                self.document += docs;
                rs
            }
        }
    }
}

impl<R: BufRead> Iterator for Loader<R> {
    type Item = Result<Vec<Document>, LoadError>;

    fn next(&mut self) -> Option<Self::Item> {
        while !self.failed {
            let chunk = match self.splitter.next_chunk()? {
                Ok(c) => c,
                Err(e) => {
                    self.failed = true;
                    return Some(Err(self.error(self.document + 1, e.line, e.message)));
                }
            };
            self.chunks += 1;
            if self.chunks > self.limits.max_documents {
                self.failed = true;
                let line = Some(chunk.first_line + 1);
                return Some(Err(self.error(
                    self.document + 1,
                    line,
                    format!(
                        "the stream has more than the limit of {} documents",
                        self.limits.max_documents
                    ),
                )));
            }
            match self.load_chunk(&chunk) {
                Ok(rs) if rs.is_empty() => continue,
                Ok(rs) => return Some(Ok(rs)),
                Err(e) => {
                    self.failed = true;
                    return Some(Err(e));
                }
            }
        }
        None
    }
}

/// Calico resources only (a Calico loader refuses everything else while loading).
fn calico(docs: Vec<Document>) -> Vec<Resource> {
    docs.into_iter()
        .filter_map(|d| match d {
            Document::Calico(r) => Some(r),
            _ => None,
        })
        .collect()
}

/// Loads every Calico resource of a stream, in order, within `limits`; Kubernetes objects are
/// refused.
pub fn load_reader(
    source_name: &str,
    reader: impl BufRead,
    limits: Limits,
) -> Result<Vec<Resource>, LoadError> {
    let mut out = Vec::new();
    for docs in Loader::new(source_name, reader, limits) {
        out.extend(calico(docs?));
    }
    Ok(out)
}

/// Loads every Calico resource of a manifest, in order, within the default [`Limits`].
/// `source_name` names the input in errors (a file name, or `<stdin>`). Kubernetes objects are
/// refused (see [`load_documents_str`]).
pub fn load_str(source_name: &str, text: &str) -> Result<Vec<Resource>, LoadError> {
    load_reader(source_name, text.as_bytes(), Limits::default())
}

/// Like [`load_str`] for raw bytes (which must be UTF-8).
pub fn load_bytes(source_name: &str, bytes: &[u8]) -> Result<Vec<Resource>, LoadError> {
    load_reader(source_name, bytes, Limits::default())
}

/// Loads every document of a manifest, Calico resources and Kubernetes objects, in order,
/// within the default [`Limits`].
pub fn load_documents_str(source_name: &str, text: &str) -> Result<Vec<Document>, LoadError> {
    load_documents_bytes(source_name, text.as_bytes())
}

/// Like [`load_documents_str`] for raw bytes (which must be UTF-8).
pub fn load_documents_bytes(source_name: &str, bytes: &[u8]) -> Result<Vec<Document>, LoadError> {
    let mut out = Vec::new();
    for docs in Loader::documents(source_name, bytes, Limits::default()) {
        out.extend(docs?);
    }
    Ok(out)
}

/// The flow nesting of a YAML document within `limit`, or where it passes it and why.
fn check_flow_depth(text: &str, limit: usize) -> Result<(), (usize, String)> {
    match depth::yaml_flow_depth(text.as_bytes(), limit) {
        depth::Flow::Within { .. } => Ok(()),
        depth::Flow::TooDeep { offset, .. } => Err((offset, too_deep(limit))),
        depth::Flow::TooComplex { .. } => Err((
            0,
            format!(
                "too many brackets to check the nesting limit of {limit} levels within the \
                 scanning budget (brackets outside flow collections each start a check)"
            ),
        )),
    }
}

fn too_deep(limit: usize) -> String {
    format!("nesting is deeper than the limit of {limit} levels")
}

/// Nesting of a parsed value (a scalar is 0, `{a: 1}` is 1).
fn value_depth(v: &Value) -> usize {
    match v {
        Value::Array(items) => 1 + items.iter().map(value_depth).max().unwrap_or(0),
        Value::Object(m) => 1 + m.values().map(value_depth).max().unwrap_or(0),
        _ => 0,
    }
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

/// The objects of one YAML chunk (usually one document) and how many documents it held.
fn load_yaml<R>(loader: &Loader<R>, chunk: &split::Chunk) -> (Result<Vec<Document>, LoadError>, usize) {
    let base = loader.document;
    let limit = loader.limits.max_depth;
    let line_of = |e: &serde_norway::Error| e.location().map(|l| chunk.first_line + l.line());
    let message = |e: &serde_norway::Error| {
        let m = strip_location(&e.to_string());
        if m.contains("recursion limit exceeded") {
            too_deep(limit)
        } else {
            m
        }
    };
    // Pass 1: the untyped value of every document.
    let mut docs: Vec<Option<(Doc, Value)>> = Vec::new();
    for (i, de) in serde_norway::Deserializer::from_str(&chunk.text).enumerate() {
        let n = base + i + 1;
        let v: Value = match serde::Deserialize::deserialize(de) {
            Ok(v) => v,
            Err(e) => return (Err(loader.error(n, line_of(&e), message(&e))), i + 1),
        };
        if value_depth(&v) > limit {
            return (
                Err(loader.error(n, Some(chunk.first_line + 1), too_deep(limit))),
                i + 1,
            );
        }
        let shapes = match shapes(&v, loader.k8s) {
            Ok(s) => s,
            Err(m) => return (Err(loader.error(n, None, m)), i + 1),
        };
        docs.push(shapes.map(|(shapes, form)| (Doc { shapes, form }, v)));
    }
    // Pass 2: typed, with line numbers.
    let mut out = Vec::new();
    for (i, de) in serde_norway::Deserializer::from_str(&chunk.text).enumerate() {
        let Some(Some((doc, v))) = docs.get(i) else {
            continue;
        };
        match doc.deserialize(de) {
            Ok(rs) => out.extend(rs),
            Err(e) => {
                let msg = massage(message(&e));
                return (
                    Err(loader.error(base + i + 1, line_of(&e), with_name(v, msg))),
                    docs.len(),
                );
            }
        }
    }
    (Ok(out), docs.len())
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

/// The objects of one top-level JSON value; errors as (1-based line, message).
fn load_json(chunk: &split::Chunk, k8s: bool) -> Result<Vec<Document>, (Option<usize>, String)> {
    let base = chunk.first_line;
    let v: Value = serde_json::from_str(&chunk.text).map_err(|e| (Some(base + e.line()), e.to_string()))?;
    let Some((shapes, form)) = shapes(&v, k8s).map_err(|m| (None, m))? else {
        return Ok(Vec::new());
    };
    let doc = Doc { shapes, form };
    let mut de = serde_json::Deserializer::from_str(&chunk.text);
    (&doc).deserialize(&mut de).map_err(|e| {
        let msg = massage(strip_location(&e.to_string()));
        (Some(base + e.line()), with_name(&v, msg))
    })
}

#[cfg(test)]
mod tests;
