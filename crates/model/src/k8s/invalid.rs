//! A Kubernetes object the API server would refuse, in Kubernetes' wording
//! (`k8s.io/apimachinery/pkg/util/validation/field`): `spec.ingress[0].ports[0].port: Invalid
//! value: 0: must be between 1 and 65535, inclusive`. Brindle has no API server, so it checks
//! what one would before converting.

use std::fmt;

use super::meta::K8sKind;

/// One field error, already worded (`<field>: Invalid value: <v>: <detail>`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct K8sFieldError(pub String);

impl K8sFieldError {
    /// `Invalid value` for a string value (quoted as Go's `%q`).
    pub fn invalid_str(field: &str, value: &str, detail: &str) -> Self {
        K8sFieldError(format!("{field}: Invalid value: {value:?}: {detail}"))
    }

    /// `Invalid value` for a number.
    pub fn invalid_num(field: &str, value: i64, detail: &str) -> Self {
        K8sFieldError(format!("{field}: Invalid value: {value}: {detail}"))
    }

    /// `Required value`.
    pub fn required(field: &str, detail: &str) -> Self {
        if detail.is_empty() {
            K8sFieldError(format!("{field}: Required value"))
        } else {
            K8sFieldError(format!("{field}: Required value: {detail}"))
        }
    }

    /// `Forbidden`.
    pub fn forbidden(field: &str, detail: &str) -> Self {
        K8sFieldError(format!("{field}: Forbidden: {detail}"))
    }

    /// `Unsupported value` with the values that are.
    pub fn not_supported(field: &str, value: &str, supported: &[&str]) -> Self {
        let list: Vec<String> = supported.iter().map(|s| format!("{s:?}")).collect();
        K8sFieldError(format!(
            "{field}: Unsupported value: {value:?}: supported values: {}",
            list.join(", ")
        ))
    }
}

/// The object and everything wrong with it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct K8sInvalid {
    pub kind: K8sKind,
    pub namespace: String,
    pub name: String,
    pub errors: Vec<K8sFieldError>,
}

impl fmt::Display for K8sInvalid {
    /// kubectl's `The NetworkPolicy "web" is invalid: <err>` (several: `[<err>, <err>]`), with the
    /// namespace when there is one.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "The {} {:?}", self.kind, self.name)?;
        if !self.namespace.is_empty() {
            write!(f, " in namespace {:?}", self.namespace)?;
        }
        f.write_str(" is invalid: ")?;
        match self.errors.as_slice() {
            [one] => f.write_str(&one.0),
            many => {
                let all: Vec<&str> = many.iter().map(|e| e.0.as_str()).collect();
                write!(f, "[{}]", all.join(", "))
            }
        }
    }
}

impl std::error::Error for K8sInvalid {}
