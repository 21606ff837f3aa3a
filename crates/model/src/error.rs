//! Errors of the model crate. Each names the object it is about: the key, the resource
//! (`Kind(name)`) and field, the selector text, or the manifest document and line.

use std::fmt;

use crate::kind::Kind;
use crate::resources::identifier;

/// A datastore key that is not one of Calico's.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("bad datastore key {key}: {reason}")]
pub struct KeyError {
    pub key: String,
    pub reason: String,
}

impl KeyError {
    pub fn new(key: &str, reason: impl Into<String>) -> Self {
        KeyError {
            key: key.to_string(),
            reason: reason.into(),
        }
    }
}

/// One invalid field, in Calico's `ErroredField` form.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldError {
    /// Calico's field path, e.g. `IPPool.Spec.CIDR`.
    pub field: String,
    /// The offending value, when there is one to show.
    pub value: Option<String>,
    pub reason: String,
}

impl fmt::Display for FieldError {
    /// `IPPool.Spec.CIDR = '10.0.0.1/24' (IPPool CIDR is not strictly masked)`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.value {
            Some(v) => write!(f, "{} = '{}' ({})", self.field, v, self.reason),
            None => write!(f, "{} ({})", self.field, self.reason),
        }
    }
}

/// A resource that failed validation: which one, and every field that is wrong.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ValidationError {
    pub kind: Kind,
    pub namespace: String,
    pub name: String,
    pub fields: Vec<FieldError>,
}

impl fmt::Display for ValidationError {
    /// `IPPool(p1): error with field IPPool.Spec.CIDR = '…' (…)`, or Calico's multi-field form.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: ", identifier(self.kind, &self.namespace, &self.name))?;
        match self.fields.as_slice() {
            [] => f.write_str("unknown validation error"),
            [one] => write!(f, "error with field {one}"),
            many => {
                f.write_str("error with the following fields:")?;
                for fe in many {
                    write!(f, "\n-  {fe}")?;
                }
                Ok(())
            }
        }
    }
}

impl std::error::Error for ValidationError {}

/// A selector that does not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid selector {selector:?}: {reason}")]
pub struct SelectorError {
    pub selector: String,
    pub reason: String,
}

/// A manifest that does not load: where (source, 1-based document index, line) and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoadError {
    /// File name, or `<stdin>`.
    pub source_name: String,
    /// 1-based index of the document in a multi-document stream.
    pub document: usize,
    /// 1-based line in the whole stream, when known.
    pub line: Option<usize>,
    pub message: String,
}

impl fmt::Display for LoadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: document {}", self.source_name, self.document)?;
        if let Some(l) = self.line {
            write!(f, ", line {l}")?;
        }
        write!(f, ": {}", self.message)
    }
}

impl std::error::Error for LoadError {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn validation_error_forms() {
        let mut e = ValidationError {
            kind: Kind::IPPool,
            namespace: String::new(),
            name: "p".into(),
            fields: vec![FieldError {
                field: "IPPool.Spec.CIDR".into(),
                value: Some("10.0.0.1/24".into()),
                reason: "IPPool CIDR is not strictly masked".into(),
            }],
        };
        assert_eq!(
            e.to_string(),
            "IPPool(p): error with field IPPool.Spec.CIDR = '10.0.0.1/24' (IPPool CIDR is not strictly masked)"
        );
        e.fields.push(FieldError {
            field: "IPPool.Spec.BlockSize".into(),
            value: None,
            reason: "x".into(),
        });
        assert_eq!(
            e.to_string(),
            "IPPool(p): error with the following fields:\n-  IPPool.Spec.CIDR = '10.0.0.1/24' (IPPool CIDR is not strictly masked)\n-  IPPool.Spec.BlockSize (x)"
        );
    }
}
