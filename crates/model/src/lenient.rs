//! Lenient decoding: the model's types read as a newer Calico wrote them.
//!
//! The types reject unknown fields (a typo in a user's YAML is an error, not a silently ignored
//! setting), which is what the CLI wants. A long-running reader of the datastore (the agent)
//! must instead keep working when a newer Calico, or a newer Brindle, stored a field this
//! version does not know: [`from_slice`] drops each unknown field, names it to the caller (who
//! logs it), and decodes the rest with the same types and the same rules. Every other error
//! (a wrong type, an unknown enum value, bad JSON) still fails, naming where it is.
//!
//! The strict decode is tried first, so objects with only known fields (nearly all of them)
//! cost exactly what strict decoding costs.

use serde::de::DeserializeOwned;
use serde_json::Value;
use serde_path_to_error::Segment;

/// Most unknown fields dropped from one object before giving up (a bound on the re-decodes an
/// object full of unknown fields can cost).
pub const MAX_UNKNOWN_FIELDS: usize = 64;

/// Decodes `T` from JSON, dropping fields `T` does not know. `unknown` is called with the path
/// of each dropped field (`spec.newField`, `spec.ports[].extra`: list indexes are left out so
/// one field reads the same in every element).
pub fn from_slice<T: DeserializeOwned>(json: &[u8], unknown: &mut dyn FnMut(&str)) -> serde_json::Result<T> {
    let first = match serde_json::from_slice::<T>(json) {
        Ok(v) => return Ok(v),
        Err(e) => e,
    };
    if !is_unknown_field(&first) {
        return Err(first);
    }
    let mut value: Value = serde_json::from_slice(json)?;
    for _ in 0..MAX_UNKNOWN_FIELDS {
        let err = match serde_path_to_error::deserialize::<_, T>(&value) {
            Ok(v) => return Ok(v),
            Err(e) => e,
        };
        let segments: Vec<&Segment> = err.path().iter().collect();
        let removed = is_unknown_field(err.inner()) && remove(&mut value, &segments);
        if !removed {
            return Err(err.into_inner());
        }
        unknown(&field_path(&segments));
    }
    Err(first)
}

fn is_unknown_field(e: &serde_json::Error) -> bool {
    e.is_data() && e.to_string().starts_with("unknown field `")
}

/// Removes the value at `path` (its last segment a map key); false if it is not there.
fn remove(v: &mut Value, path: &[&Segment]) -> bool {
    let Some((Segment::Map { key }, parents)) = path.split_last() else {
        return false;
    };
    let mut cur = v;
    for seg in parents {
        cur = match (seg, cur) {
            (Segment::Map { key }, Value::Object(m)) => match m.get_mut(key) {
                Some(next) => next,
                None => return false,
            },
            (Segment::Seq { index }, Value::Array(a)) => match a.get_mut(*index) {
                Some(next) => next,
                None => return false,
            },
            _ => return false,
        };
    }
    match cur {
        Value::Object(m) => m.remove(key).is_some(),
        _ => false,
    }
}

/// `spec.ports[].name` for a path through `spec`, the third port, `name`.
fn field_path(path: &[&Segment]) -> String {
    let mut out = String::new();
    for seg in path {
        match seg {
            Segment::Map { key } => {
                if !out.is_empty() {
                    out.push('.');
                }
                out.push_str(key);
            }
            Segment::Seq { .. } => out.push_str("[]"),
            Segment::Enum { variant } => {
                out.push('.');
                out.push_str(variant);
            }
            Segment::Unknown => out.push_str(".?"),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::resources::{IPPool, WorkloadEndpoint};

    fn lenient<T: DeserializeOwned>(json: &str) -> (serde_json::Result<T>, Vec<String>) {
        let mut seen = Vec::new();
        let r = from_slice::<T>(json.as_bytes(), &mut |f| seen.push(f.to_string()));
        (r, seen)
    }

    #[test]
    fn known_fields_decode_as_strictly() {
        let (p, seen) = lenient::<IPPool>(
            r#"{"kind":"IPPool","apiVersion":"projectcalico.org/v3","metadata":{"name":"p"},"spec":{"cidr":"10.0.0.0/16","ipipMode":"Always"}}"#,
        );
        assert_eq!(p.unwrap().spec.cidr, "10.0.0.0/16");
        assert!(seen.is_empty());
    }

    #[test]
    fn unknown_fields_are_dropped_and_named() {
        let (p, seen) = lenient::<IPPool>(
            r#"{"kind":"IPPool","metadata":{"name":"p","newMeta":1},"spec":{"cidr":"10.0.0.0/16","futureMode":{"a":[1]},"natOutgoing":true},"extra":true}"#,
        );
        let p = p.unwrap();
        assert!(p.spec.nat_outgoing);
        assert_eq!(p.metadata.name, "p");
        assert_eq!(seen, ["metadata.newMeta", "spec.futureMode", "extra"]);
        // Strict decoding still refuses it.
        assert!(serde_json::from_str::<IPPool>(r#"{"spec":{"futureMode":1}}"#).is_err());
    }

    #[test]
    fn unknown_fields_inside_lists() {
        let (w, seen) = lenient::<WorkloadEndpoint>(
            r#"{"kind":"WorkloadEndpoint","metadata":{"name":"w","namespace":"ns"},"spec":{"node":"n1",
                "ports":[{"name":"a","protocol":"TCP","port":80},{"name":"b","protocol":"UDP","port":53,"newOne":1}]}}"#,
        );
        assert_eq!(w.unwrap().spec.ports.len(), 2);
        assert_eq!(seen, ["spec.ports[].newOne"]);
    }

    #[test]
    fn other_errors_still_fail() {
        let (r, seen) = lenient::<IPPool>(r#"{"spec":{"newField":1,"ipipMode":"Sometimes"}}"#);
        assert!(r.is_err(), "an unknown enum value is not an unknown field");
        assert_eq!(seen, ["spec.newField"]);
        let (r, _) = lenient::<IPPool>(r#"{"spec":{"cidr":7}}"#);
        assert!(r.unwrap_err().to_string().contains("invalid type"));
        let (r, _) = lenient::<IPPool>("{not json");
        assert!(r.is_err());
    }

    #[test]
    fn bounded_work_on_many_unknown_fields() {
        let fields: Vec<String> = (0..200).map(|i| format!(r#""f{i}":{i}"#)).collect();
        let json = format!(r#"{{"spec":{{{}}}}}"#, fields.join(","));
        let (r, seen) = lenient::<IPPool>(&json);
        assert!(r.is_err());
        assert_eq!(seen.len(), MAX_UNKNOWN_FIELDS);
    }
}
