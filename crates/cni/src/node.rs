//! What the node agent tells the plugin through files (Calico's `nodename_file` and `mtu` settings,
//! `cni-plugin/pkg/types/types.go`): the node name and the MTU. Brindle's agent writes them under
//! its state directory (`/var/lib/brindle`, or `$BRINDLE_STATE_DIR`); Calico's files under
//! `/var/lib/calico` are read as a fallback so a node migrated from Calico keeps working.

use std::path::{Path, PathBuf};

use crate::error::CniError;
use crate::netconf::NetConf;

/// Brindle's state directory unless `BRINDLE_STATE_DIR` says otherwise.
pub const STATE_DIR: &str = "/var/lib/brindle";
/// Calico's state directory (read-only fallback).
pub const CALICO_STATE_DIR: &str = "/var/lib/calico";

/// Where the agent's files are.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostFiles {
    pub state_dir: PathBuf,
}

impl HostFiles {
    pub fn from_env(get: impl Fn(&str) -> Option<String>) -> HostFiles {
        HostFiles {
            state_dir: get("BRINDLE_STATE_DIR")
                .filter(|s| !s.is_empty())
                .map(PathBuf::from)
                .unwrap_or_else(|| PathBuf::from(STATE_DIR)),
        }
    }

    /// The nodename file to use: the configured one, else Brindle's if it exists, else
    /// Calico's if it exists, else Brindle's (which is then reported missing).
    pub fn nodename_file(&self, conf: &NetConf) -> PathBuf {
        if let Some(p) = &conf.nodename_file {
            return p.clone();
        }
        self.first_existing("nodename")
    }

    /// The MTU file: Brindle's if it exists, else Calico's if it exists, else Brindle's.
    pub fn mtu_file(&self) -> PathBuf {
        self.first_existing("mtu")
    }

    fn first_existing(&self, name: &str) -> PathBuf {
        let ours = self.state_dir.join(name);
        if ours.exists() {
            return ours;
        }
        let calico = Path::new(CALICO_STATE_DIR).join(name);
        if calico.exists() { calico } else { ours }
    }

    /// The node name, Calico's priority: `nodename` > the nodename file > `hostname` > the OS
    /// hostname. Unless `nodename_file_optional`, a missing nodename file is an error (the
    /// agent is not running), as in Calico.
    pub fn nodename(&self, conf: &NetConf) -> Result<String, CniError> {
        let file = self.nodename_file(conf);
        if !conf.nodename_file_optional && !file.exists() {
            return Err(CniError::internal(format!(
                "stat {}: no such file or directory: check that the brindle node agent is running and has written {}",
                file.display(),
                file.display()
            )));
        }
        if let Some(n) = conf.nodename.as_deref().filter(|n| !n.is_empty()) {
            return Ok(n.to_string());
        }
        if let Ok(s) = std::fs::read_to_string(&file) {
            let s = s.trim();
            if !s.is_empty() {
                return Ok(s.to_string());
            }
        }
        if let Some(h) = conf.hostname.as_deref().filter(|h| !h.is_empty()) {
            return Ok(h.to_string());
        }
        os_hostname()
    }

    /// The MTU for the pod interface: `mtu` from the configuration, else the agent's MTU file,
    /// else `None` (the kernel's 1500). With `require_mtu_file`, a missing file is an error.
    pub fn mtu(&self, conf: &NetConf) -> Result<Option<u32>, CniError> {
        if conf.mtu != 0 {
            return Ok(Some(conf.mtu));
        }
        let file = self.mtu_file();
        match std::fs::read_to_string(&file) {
            Ok(s) => {
                let v: u32 = s.trim().parse().map_err(|_| {
                    CniError::internal(format!(
                        "failed to read MTU file {}: {:?} is not a number",
                        file.display(),
                        s.trim()
                    ))
                })?;
                if !(68..=65535).contains(&v) {
                    return Err(CniError::internal(format!(
                        "failed to read MTU file {}: MTU {v} is out of range (68-65535)",
                        file.display()
                    )));
                }
                Ok(Some(v))
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                if conf.require_mtu_file {
                    Err(CniError::internal(format!(
                        "failed to read MTU file {}: it does not exist (require_mtu_file is set; the agent writes it)",
                        file.display()
                    )))
                } else {
                    Ok(None)
                }
            }
            Err(e) => Err(CniError::internal(format!(
                "failed to read MTU file {}: {e}",
                file.display()
            ))),
        }
    }
}

/// The OS hostname, lower-cased and trimmed (Calico's `names.Hostname`).
fn os_hostname() -> Result<String, CniError> {
    let h = nix::unistd::gethostname()
        .map_err(|e| CniError::internal(format!("cannot determine the node name: gethostname: {e}")))?;
    Ok(h.to_string_lossy().trim().to_lowercase())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn conf(json: &str) -> NetConf {
        NetConf::decode(json.as_bytes()).unwrap()
    }

    fn tmp() -> PathBuf {
        let d = std::env::temp_dir().join(format!(
            "brindle-cni-node-{}-{:?}",
            std::process::id(),
            std::thread::current().id()
        ));
        std::fs::create_dir_all(&d).unwrap();
        d
    }

    #[test]
    fn node_name_priority() {
        let dir = tmp();
        let files = HostFiles {
            state_dir: dir.clone(),
        };
        let e = files.nodename(&conf(r#"{"name":"n"}"#)).unwrap_err();
        assert!(
            e.msg.contains("check that the brindle node agent is running"),
            "{e}"
        );
        assert!(e.msg.contains(&dir.join("nodename").display().to_string()));
        std::fs::write(dir.join("nodename"), "node-from-file\n").unwrap();
        assert_eq!(
            files.nodename(&conf(r#"{"name":"n"}"#)).unwrap(),
            "node-from-file"
        );
        assert_eq!(
            files
                .nodename(&conf(r#"{"name":"n","nodename":"explicit"}"#))
                .unwrap(),
            "explicit"
        );
        std::fs::remove_file(dir.join("nodename")).unwrap();
        assert_eq!(
            files
                .nodename(&conf(
                    r#"{"name":"n","nodename_file_optional":true,"hostname":"legacy"}"#
                ))
                .unwrap(),
            "legacy"
        );
        let os = files
            .nodename(&conf(r#"{"name":"n","nodename_file_optional":true}"#))
            .unwrap();
        assert!(!os.is_empty());
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn mtu_sources() {
        let dir = tmp();
        let files = HostFiles {
            state_dir: dir.clone(),
        };
        assert_eq!(
            files.mtu(&conf(r#"{"name":"n","mtu":1440}"#)).unwrap(),
            Some(1440)
        );
        if !Path::new(CALICO_STATE_DIR).join("mtu").exists() {
            assert_eq!(files.mtu(&conf(r#"{"name":"n"}"#)).unwrap(), None);
            let e = files
                .mtu(&conf(r#"{"name":"n","require_mtu_file":true}"#))
                .unwrap_err();
            assert!(e.msg.contains("require_mtu_file"), "{e}");
        }
        std::fs::write(dir.join("mtu"), "1450\n").unwrap();
        assert_eq!(files.mtu(&conf(r#"{"name":"n"}"#)).unwrap(), Some(1450));
        std::fs::write(dir.join("mtu"), "lots").unwrap();
        assert!(
            files
                .mtu(&conf(r#"{"name":"n"}"#))
                .unwrap_err()
                .msg
                .contains("\"lots\" is not a number")
        );
        std::fs::remove_dir_all(dir).unwrap();
    }
}
