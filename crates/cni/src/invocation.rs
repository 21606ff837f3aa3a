//! The invocation parameters a runtime passes in the environment (CNI spec §2 "Parameters"):
//! `CNI_COMMAND`, `CNI_CONTAINERID`, `CNI_NETNS`, `CNI_IFNAME`, `CNI_ARGS`, `CNI_PATH`, checked
//! the way libcni's `skel` checks them (same codes: 4 for a missing or invalid variable, 3 for an
//! empty container ID).

use std::path::PathBuf;

use crate::cni_args::CniArgs;
use crate::error::{CniError, code};

/// The CNI verb.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Command {
    Add,
    Del,
    Check,
    Status,
    Gc,
    Version,
}

impl Command {
    pub fn parse(s: &str) -> Option<Command> {
        Some(match s {
            "ADD" => Command::Add,
            "DEL" => Command::Del,
            "CHECK" => Command::Check,
            "STATUS" => Command::Status,
            "GC" => Command::Gc,
            "VERSION" => Command::Version,
            _ => return None,
        })
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Command::Add => "ADD",
            Command::Del => "DEL",
            Command::Check => "CHECK",
            Command::Status => "STATUS",
            Command::Gc => "GC",
            Command::Version => "VERSION",
        }
    }

    /// Whether the verb is about one attachment (needs a container ID and an interface name).
    fn is_attachment(self) -> bool {
        matches!(self, Command::Add | Command::Del | Command::Check)
    }
}

/// Everything the environment says about this call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Invocation {
    pub command: Command,
    /// Empty for STATUS, GC and VERSION.
    pub container_id: String,
    /// `CNI_NETNS`; optional for DEL.
    pub netns: Option<PathBuf>,
    /// Empty for STATUS, GC and VERSION.
    pub ifname: String,
    pub args: CniArgs,
    /// `CNI_ARGS` as given (passed on to delegated plugins unchanged).
    pub args_raw: String,
    /// `CNI_PATH`, split on `:`.
    pub path: Vec<PathBuf>,
}

/// Container IDs: an alphanumeric first character, then alphanumerics, `_`, `.`, `-`.
pub fn valid_container_id(id: &str) -> bool {
    let mut chars = id.chars();
    chars.next().is_some_and(|c| c.is_ascii_alphanumeric())
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'))
}

/// Interface names: 1–15 bytes, not `.`/`..`, no `/`, `:` or whitespace (the kernel's rules).
pub fn check_ifname(name: &str) -> Result<(), CniError> {
    let bad = |why: &str| CniError::invalid_env(format!("CNI_IFNAME {name:?}: {why}"));
    if name.is_empty() {
        return Err(bad("interface name is empty"));
    }
    if name.len() > 15 {
        return Err(bad("interface name is too long (at most 15 characters)"));
    }
    if name == "." || name == ".." {
        return Err(bad("interface name is . or .."));
    }
    if name.chars().any(|c| c == '/' || c == ':' || c.is_whitespace()) {
        return Err(bad("interface name contains / or : or whitespace characters"));
    }
    Ok(())
}

impl Invocation {
    /// Reads the parameters through `get` (the process environment in the binary; empty values
    /// count as unset, as in `skel`).
    pub fn from_env(get: impl Fn(&str) -> Option<String>) -> Result<Invocation, CniError> {
        let get = |k: &str| get(k).filter(|v| !v.is_empty());
        let Some(cmd_text) = get("CNI_COMMAND") else {
            return Err(CniError::invalid_env(
                "required env variables [CNI_COMMAND] missing",
            ));
        };
        let command = Command::parse(&cmd_text)
            .ok_or_else(|| CniError::invalid_env(format!("unknown CNI_COMMAND: {cmd_text}")))?;
        let container_id = get("CNI_CONTAINERID");
        let netns = get("CNI_NETNS");
        let ifname = get("CNI_IFNAME");
        if command.is_attachment() {
            let mut missing = Vec::new();
            if container_id.is_none() {
                missing.push("CNI_CONTAINERID");
            }
            if netns.is_none() && command != Command::Del {
                missing.push("CNI_NETNS");
            }
            if ifname.is_none() {
                missing.push("CNI_IFNAME");
            }
            if !missing.is_empty() {
                let e =
                    CniError::invalid_env(format!("required env variables [{}] missing", missing.join(",")));
                // An empty container ID alone is libcni's "missing containerID" (code 3).
                return Err(if missing == ["CNI_CONTAINERID"] {
                    CniError::new(code::UNKNOWN_CONTAINER, "missing containerID")
                } else {
                    e
                });
            }
            let id = container_id.as_deref().unwrap_or_default();
            if !valid_container_id(id) {
                return Err(CniError::invalid_env("invalid characters in containerID").with_details(id));
            }
            check_ifname(ifname.as_deref().unwrap_or_default())?;
        }
        let args_raw = get("CNI_ARGS").unwrap_or_default();
        let args = if command.is_attachment() {
            CniArgs::parse(&args_raw)?
        } else {
            CniArgs::default()
        };
        let path = get("CNI_PATH")
            .map(|p| {
                std::env::split_paths(&p)
                    .filter(|d| !d.as_os_str().is_empty())
                    .collect()
            })
            .unwrap_or_default();
        Ok(Invocation {
            command,
            container_id: container_id.unwrap_or_default(),
            netns: netns.map(PathBuf::from),
            ifname: ifname.unwrap_or_default(),
            args,
            args_raw,
            path,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn inv(vars: &[(&str, &str)]) -> Result<Invocation, CniError> {
        let m: HashMap<String, String> = vars.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        Invocation::from_env(|k| m.get(k).cloned())
    }

    #[test]
    fn a_podman_add() {
        let i = inv(&[
            ("CNI_COMMAND", "ADD"),
            ("CNI_CONTAINERID", "3f6940ab5ab4"),
            ("CNI_NETNS", "/run/netns/netns-1"),
            ("CNI_IFNAME", "eth0"),
            ("CNI_ARGS", "IgnoreUnknown=1;K8S_POD_NAME=web"),
            ("CNI_PATH", "/tmp/bin:/usr/lib/cni"),
        ])
        .unwrap();
        assert_eq!(i.command, Command::Add);
        assert_eq!(i.args.pod_name.as_deref(), Some("web"));
        assert_eq!(i.path, [PathBuf::from("/tmp/bin"), PathBuf::from("/usr/lib/cni")]);
    }

    #[test]
    fn missing_and_invalid_variables() {
        let e = inv(&[]).unwrap_err();
        assert_eq!(
            (e.code, e.msg.as_str()),
            (4, "required env variables [CNI_COMMAND] missing")
        );
        let e = inv(&[("CNI_COMMAND", "ADD"), ("CNI_IFNAME", "eth0")]).unwrap_err();
        assert_eq!(
            e.msg,
            "required env variables [CNI_CONTAINERID,CNI_NETNS] missing"
        );
        let e = inv(&[("CNI_COMMAND", "DEL"), ("CNI_IFNAME", "eth0")]).unwrap_err();
        assert_eq!((e.code, e.msg.as_str()), (3, "missing containerID"));
        let e = inv(&[("CNI_COMMAND", "FROB")]).unwrap_err();
        assert_eq!((e.code, e.msg.as_str()), (4, "unknown CNI_COMMAND: FROB"));
        let e = inv(&[
            ("CNI_COMMAND", "DEL"),
            ("CNI_CONTAINERID", "-bad"),
            ("CNI_IFNAME", "eth0"),
        ])
        .unwrap_err();
        assert_eq!((e.code, e.msg.as_str()), (4, "invalid characters in containerID"));
        let e = inv(&[
            ("CNI_COMMAND", "DEL"),
            ("CNI_CONTAINERID", "c1"),
            ("CNI_IFNAME", "a-very-long-interface"),
        ])
        .unwrap_err();
        assert!(e.msg.contains("too long"), "{e}");
        // DEL does not need a netns; STATUS and GC need nothing but the command.
        assert!(
            inv(&[
                ("CNI_COMMAND", "DEL"),
                ("CNI_CONTAINERID", "c1"),
                ("CNI_IFNAME", "eth0")
            ])
            .is_ok()
        );
        assert!(inv(&[("CNI_COMMAND", "STATUS")]).is_ok());
        assert!(inv(&[("CNI_COMMAND", "GC")]).is_ok());
    }

    #[test]
    fn ifname_rules() {
        assert!(check_ifname("eth0").is_ok());
        assert!(check_ifname("net1.2").is_ok());
        for bad in ["", ".", "..", "a/b", "a:b", "a b", "0123456789abcdef"] {
            assert!(check_ifname(bad).is_err(), "{bad:?}");
        }
    }
}
