//! Loading manifests the way `calicoctl apply -f` reads them: one document, a multi-document
//! YAML stream (`---`), a document that is a list of resources, or a `…List` kind (`items`); YAML
//! or JSON (one or several concatenated JSON values). Kinds are matched case-insensitively and
//! `apiVersion` must be `projectcalico.org/v3`.
//!
//! Each document is read twice: once untyped to learn its kind(s), then straight into the typed
//! structs through a [`DeserializeSeed`], so a type error or an unknown field is reported with its
//! line in the file. Errors carry the source name, the 1-based document index and the line.

use std::fmt;

use serde::de::{DeserializeSeed, SeqAccess, Visitor};
use serde_json::Value;

use crate::error::LoadError;
use crate::kind::Kind;
use crate::meta::API_VERSION;
use crate::resources::{
    BGPConfiguration, BGPFilter, BGPPeer, ClusterInformation, FelixConfiguration, IPAMConfiguration, IPPool,
    Node, Profile, WorkloadEndpoint,
};
use crate::resources::{CalicoResource, List, Resource, for_kind};

/// What one document (or one element of a list document) holds.
#[derive(Debug, Clone, Copy)]
struct Shape {
    kind: Kind,
    list: bool,
}

/// Loads every resource of a manifest, in order. `source_name` names the input in errors
/// (a file name, or `<stdin>`).
pub fn load_str(source_name: &str, text: &str) -> Result<Vec<Resource>, LoadError> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let first = text.trim_start().chars().next();
    if matches!(first, Some('{') | Some('[')) {
        load_json(source_name, text)
    } else {
        load_yaml(source_name, text)
    }
}

/// Like [`load_str`] for raw bytes (which must be UTF-8).
pub fn load_bytes(source_name: &str, bytes: &[u8]) -> Result<Vec<Resource>, LoadError> {
    let text = std::str::from_utf8(bytes).map_err(|e| LoadError {
        source_name: source_name.to_string(),
        document: 1,
        line: None,
        message: format!("not UTF-8 text: {e}"),
    })?;
    load_str(source_name, text)
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

/// Reads the shape of a document from its untyped value; `Ok(None)` for an empty document.
fn shapes(v: &Value) -> Result<Option<Vec<Shape>>, String> {
    match v {
        Value::Null => Ok(None),
        Value::Array(items) => items
            .iter()
            .enumerate()
            .map(|(i, item)| match item {
                Value::Object(_) => shape_of(item).map_err(|e| format!("list item {}: {e}", i + 1)),
                _ => Err(format!("list item {} is not a resource", i + 1)),
            })
            .collect::<Result<Vec<_>, _>>()
            .map(Some),
        Value::Object(_) => shape_of(v).map(|s| Some(vec![s])),
        _ => Err("document is not a resource (expected a mapping with kind and apiVersion)".into()),
    }
}

fn shape_of(v: &Value) -> Result<Shape, String> {
    let kind = match v.get("kind") {
        Some(Value::String(k)) if !k.is_empty() => k,
        Some(_) => return Err("kind must be a string".into()),
        None => return Err("resource has no kind".into()),
    };
    let (kind_enum, list) =
        Kind::from_manifest_kind(kind).ok_or_else(|| format!("unknown resource type {kind:?}"))?;
    match v.get("apiVersion") {
        Some(Value::String(a)) if a == API_VERSION => {}
        Some(Value::String(a)) => {
            return Err(format!(
                "unknown resource type ({kind}) and/or version ({a}): apiVersion must be {API_VERSION}"
            ));
        }
        _ => return Err(format!("{kind} has no apiVersion (expected {API_VERSION})")),
    }
    Ok(Shape {
        kind: kind_enum,
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

fn typed<'de, D: serde::Deserializer<'de>>(shape: Shape, d: D) -> Result<Vec<Resource>, D::Error> {
    use serde::Deserialize;
    for_kind!(shape.kind, T => {
        if shape.list {
            List::<T>::deserialize(d).map(|l| l.items.into_iter().map(CalicoResource::into_resource).collect())
        } else {
            T::deserialize(d).map(|r| vec![r.into_resource()])
        }
    })
}

/// One element of a list document.
struct OneSeed(Shape);

impl<'de> DeserializeSeed<'de> for OneSeed {
    type Value = Vec<Resource>;
    fn deserialize<D: serde::Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        typed(self.0, d)
    }
}

/// The shapes of one document: a single resource (or `…List`), or a list of resources.
struct Doc {
    shapes: Vec<Shape>,
    is_list: bool,
}

impl<'de> DeserializeSeed<'de> for &Doc {
    type Value = Vec<Resource>;

    fn deserialize<D: serde::Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        struct SeqVisitor<'a>(&'a [Shape]);
        impl<'de> Visitor<'de> for SeqVisitor<'_> {
            type Value = Vec<Resource>;
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
        if self.is_list {
            d.deserialize_seq(SeqVisitor(&self.shapes))
        } else {
            typed(self.shapes[0], d)
        }
    }
}

fn load_yaml(source: &str, text: &str) -> Result<Vec<Resource>, LoadError> {
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
        let shapes = shapes(&v).map_err(|m| err(i + 1, None, m))?;
        docs.push(shapes.map(|shapes| {
            (
                Doc {
                    shapes,
                    is_list: v.is_array(),
                },
                v,
            )
        }));
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

fn load_json(source: &str, text: &str) -> Result<Vec<Resource>, LoadError> {
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
        let Some(shapes) = shapes(&v).map_err(|m| err(index, None, m))? else {
            continue;
        };
        let doc = Doc {
            shapes,
            is_list: v.is_array(),
        };
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
