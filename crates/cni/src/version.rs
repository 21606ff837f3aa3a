//! CNI specification versions: which ones Brindle speaks, how a request's `cniVersion` is
//! checked, and what each version allows (CHECK from 0.4.0, STATUS and GC from 1.1.0).

use std::fmt;

use crate::error::{CniError, code};
use crate::invocation::Command;

/// A CNI specification version Brindle supports.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Version {
    V0_3_0,
    V0_3_1,
    V0_4_0,
    V1_0_0,
    V1_1_0,
}

/// Every supported version, oldest first (the `supportedVersions` of VERSION).
pub const SUPPORTED: [Version; 5] = [
    Version::V0_3_0,
    Version::V0_3_1,
    Version::V0_4_0,
    Version::V1_0_0,
    Version::V1_1_0,
];

impl Version {
    /// The newest supported version (used for errors when the request's version is unknown).
    pub const LATEST: Version = Version::V1_1_0;

    pub fn as_str(self) -> &'static str {
        match self {
            Version::V0_3_0 => "0.3.0",
            Version::V0_3_1 => "0.3.1",
            Version::V0_4_0 => "0.4.0",
            Version::V1_0_0 => "1.0.0",
            Version::V1_1_0 => "1.1.0",
        }
    }

    /// Parses an exact version string (`"1.0.0"`); `None` for anything else.
    pub fn from_exact(s: &str) -> Option<Version> {
        SUPPORTED.into_iter().find(|v| v.as_str() == s)
    }

    /// The version of a request. An empty `cniVersion` means 0.1.0 (libcni's rule), which
    /// Brindle does not speak. Unknown versions give code 1 with libcni's wording.
    pub fn of_request(s: &str) -> Result<Version, CniError> {
        let shown = if s.is_empty() { "0.1.0" } else { s };
        if let Some(v) = Version::from_exact(shown) {
            return Ok(v);
        }
        if parse_semver(shown).is_none() {
            return Err(CniError::decode(format!(
                "invalid cniVersion {shown:?}: not a version of the form MAJOR.MINOR.PATCH"
            )));
        }
        Err(incompatible(shown))
    }

    /// The 0.3.x/0.4.0 result shape (`ips[].version`, no interface MTU) rather than 1.x.
    pub fn is_v0(self) -> bool {
        self < Version::V1_0_0
    }

    /// CHECK exists from 0.4.0.
    pub fn allows_check(self) -> bool {
        self >= Version::V0_4_0
    }

    /// STATUS and GC exist from 1.1.0.
    pub fn allows_status_and_gc(self) -> bool {
        self >= Version::V1_1_0
    }

    /// Refuses a verb the request's version does not have (libcni's `skel` wording): CHECK
    /// before 0.4.0, STATUS and GC before 1.1.0.
    pub fn require_for(self, command: Command) -> Result<(), CniError> {
        let (allowed, since) = match command {
            Command::Check => (self.allows_check(), "0.4.0"),
            Command::Status | Command::Gc => (self.allows_status_and_gc(), "1.1.0"),
            _ => return Ok(()),
        };
        if allowed {
            return Ok(());
        }
        Err(CniError::new(
            code::INCOMPATIBLE_VERSION,
            format!("config version does not allow {}", command.as_str()),
        )
        .with_details(format!(
            "cniVersion {self} ({} exists from {since})",
            command.as_str()
        )))
    }

    /// 1.1.0 adds `mtu`, `socketPath`, `pciID` to interfaces and `mtu`, `advmss`, `priority`,
    /// `table`, `scope` to routes.
    pub fn has_1_1_fields(self) -> bool {
        self >= Version::V1_1_0
    }
}

impl fmt::Display for Version {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Code 1 with libcni's text: `incompatible CNI versions` / `config is "X", plugin supports [...]`.
pub fn incompatible(requested: &str) -> CniError {
    let list: Vec<String> = SUPPORTED.iter().map(|v| format!("{:?}", v.as_str())).collect();
    CniError::new(code::INCOMPATIBLE_VERSION, "incompatible CNI versions").with_details(format!(
        "config is {requested:?}, plugin supports [{}]",
        list.join(" ")
    ))
}

/// `MAJOR.MINOR.PATCH` as numbers.
fn parse_semver(s: &str) -> Option<(u64, u64, u64)> {
    let mut it = s.split('.');
    let a = it.next()?.parse().ok()?;
    let b = it.next()?.parse().ok()?;
    let c = it.next()?.parse().ok()?;
    it.next().is_none().then_some((a, b, c))
}

/// The VERSION result: `{"cniVersion": …, "supportedVersions": [...]}`.
pub fn version_result(request: Option<&str>) -> String {
    let v = request.and_then(Version::from_exact).unwrap_or(Version::LATEST);
    serde_json::json!({
        "cniVersion": v.as_str(),
        "supportedVersions": SUPPORTED.iter().map(|v| v.as_str()).collect::<Vec<_>>(),
    })
    .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_versions_parse_and_order() {
        assert_eq!(Version::of_request("0.4.0").unwrap(), Version::V0_4_0);
        assert_eq!(Version::of_request("1.1.0").unwrap(), Version::V1_1_0);
        assert!(Version::V0_3_1 < Version::V1_0_0);
        assert!(Version::V0_3_1.is_v0() && !Version::V1_0_0.is_v0());
        assert!(!Version::V0_3_1.allows_check() && Version::V0_4_0.allows_check());
        assert!(!Version::V1_0_0.allows_status_and_gc() && Version::V1_1_0.allows_status_and_gc());
        let e = Version::V0_3_1.require_for(Command::Check).unwrap_err();
        assert_eq!(
            (e.code, e.msg.as_str()),
            (1, "config version does not allow CHECK")
        );
        assert!(Version::V1_0_0.require_for(Command::Gc).is_err());
        assert!(Version::V1_1_0.require_for(Command::Status).is_ok());
        assert!(Version::V0_3_0.require_for(Command::Add).is_ok());
    }

    #[test]
    fn unknown_versions_are_code_1_and_garbage_is_code_6() {
        let e = Version::of_request("1.2.0").unwrap_err();
        assert_eq!(e.code, code::INCOMPATIBLE_VERSION);
        assert_eq!(e.msg, "incompatible CNI versions");
        assert_eq!(
            e.details,
            r#"config is "1.2.0", plugin supports ["0.3.0" "0.3.1" "0.4.0" "1.0.0" "1.1.0"]"#
        );
        let e = Version::of_request("").unwrap_err();
        assert!(e.details.contains(r#"config is "0.1.0""#), "{e:?}");
        let e = Version::of_request("one").unwrap_err();
        assert_eq!(e.code, code::DECODE);
    }

    #[test]
    fn version_result_lists_everything() {
        assert_eq!(
            version_result(Some("0.4.0")),
            r#"{"cniVersion":"0.4.0","supportedVersions":["0.3.0","0.3.1","0.4.0","1.0.0","1.1.0"]}"#
        );
        assert!(version_result(None).starts_with(r#"{"cniVersion":"1.1.0""#));
    }
}
