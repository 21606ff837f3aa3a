//! The crate's errors. An object that fails is rejected whole and the calculation keeps what it
//! had before (nothing half-applied).

use thiserror::Error;

/// A rule that cannot be converted.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("{direction} rule {index}: {reason}")]
pub struct RuleError {
    /// `ingress` or `egress`.
    pub direction: String,
    /// The rule's position in its list, from 0.
    pub index: usize,
    pub reason: String,
}

/// An input object the calculation cannot use, named as `<Kind> <namespace>/<name>`.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("{object}: {reason}")]
pub struct PolicyError {
    pub object: String,
    pub reason: String,
}

impl PolicyError {
    pub(crate) fn new(object: impl Into<String>, reason: impl Into<String>) -> PolicyError {
        PolicyError {
            object: object.into(),
            reason: reason.into(),
        }
    }
}
