//! The CNI error result (`{cniVersion, code, msg, details}`, CNI spec §5 "Error") and the
//! well-known codes. Every failure of the plugin becomes one of these, printed on stdout with a
//! non-zero exit status.

use serde::Serialize;

/// Well-known error codes (CNI spec §5; 999 is libcni's `ErrInternal`, which Calico uses for
/// every plain error).
pub mod code {
    /// Incompatible CNI version.
    pub const INCOMPATIBLE_VERSION: u32 = 1;
    /// Unsupported field in the network configuration (the message names key and value).
    pub const UNSUPPORTED_FIELD: u32 = 2;
    /// Container unknown or does not exist (no cleanup needed).
    pub const UNKNOWN_CONTAINER: u32 = 3;
    /// Invalid necessary environment variables (the message names them).
    pub const INVALID_ENV: u32 = 4;
    /// I/O failure (reading stdin, writing the result).
    pub const IO: u32 = 5;
    /// Failed to decode content (stdin JSON, `prevResult`, a version string).
    pub const DECODE: u32 = 6;
    /// Invalid network configuration.
    pub const INVALID_NETCONF: u32 = 7;
    /// A transient condition (datastore unreachable or not ready): retry later.
    pub const TRY_AGAIN_LATER: u32 = 11;
    /// STATUS: the plugin cannot service ADD requests.
    pub const NOT_AVAILABLE: u32 = 50;
    /// STATUS: not available, and existing containers may have limited connectivity.
    pub const LIMITED_CONNECTIVITY: u32 = 51;
    /// Anything else (libcni's `ErrInternal`, Calico's code for plain errors).
    pub const INTERNAL: u32 = 999;
}

/// A CNI error: a code, a short message and optional details.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{msg}{}", if details.is_empty() { String::new() } else { format!(": {details}") })]
pub struct CniError {
    pub code: u32,
    pub msg: String,
    pub details: String,
}

/// The error result as printed on stdout.
#[derive(Serialize)]
struct ErrorJson<'a> {
    #[serde(rename = "cniVersion")]
    cni_version: &'a str,
    code: u32,
    msg: &'a str,
    #[serde(skip_serializing_if = "str::is_empty")]
    details: &'a str,
}

impl CniError {
    pub fn new(code: u32, msg: impl Into<String>) -> CniError {
        CniError {
            code,
            msg: msg.into(),
            details: String::new(),
        }
    }

    pub fn with_details(mut self, details: impl Into<String>) -> CniError {
        self.details = details.into();
        self
    }

    /// Code 999 with `msg`.
    pub fn internal(msg: impl Into<String>) -> CniError {
        CniError::new(code::INTERNAL, msg)
    }

    pub fn invalid_netconf(msg: impl Into<String>) -> CniError {
        CniError::new(code::INVALID_NETCONF, msg)
    }

    pub fn decode(msg: impl Into<String>) -> CniError {
        CniError::new(code::DECODE, msg)
    }

    pub fn invalid_env(msg: impl Into<String>) -> CniError {
        CniError::new(code::INVALID_ENV, msg)
    }

    /// Prefixes the message with what was being done (`"create veth cali…: " + msg`).
    pub fn context(mut self, what: impl std::fmt::Display) -> CniError {
        self.msg = format!("{what}: {}", self.msg);
        self
    }

    /// The JSON document printed on stdout, for `cni_version` (the version of the request, or
    /// the newest supported one when the request could not be read).
    pub fn to_json(&self, cni_version: &str) -> String {
        serde_json::to_string(&ErrorJson {
            cni_version,
            code: self.code,
            msg: &self.msg,
            details: &self.details,
        })
        .expect("error JSON serialises")
    }
}

/// Result alias for CNI operations.
pub type Result<T, E = CniError> = std::result::Result<T, E>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_has_the_spec_keys_in_order() {
        let e = CniError::new(code::INVALID_NETCONF, "Invalid Configuration")
            .with_details("Network 192.168.0.0/31 too small to allocate from.");
        assert_eq!(
            e.to_json("1.1.0"),
            r#"{"cniVersion":"1.1.0","code":7,"msg":"Invalid Configuration","details":"Network 192.168.0.0/31 too small to allocate from."}"#
        );
        let e = CniError::internal("boom");
        assert_eq!(
            e.to_json("0.4.0"),
            r#"{"cniVersion":"0.4.0","code":999,"msg":"boom"}"#
        );
    }

    #[test]
    fn context_prefixes_the_message() {
        let e = CniError::internal("File exists").context("add address 10.0.0.1/32 dev eth0");
        assert_eq!(e.to_string(), "add address 10.0.0.1/32 dev eth0: File exists");
    }
}
