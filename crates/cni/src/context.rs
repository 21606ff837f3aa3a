//! What every verb starts from: the invocation, the decoded configuration and its version,
//! the raw stdin, where the agent's files are, and the fault hook.

use std::path::Path;
use std::sync::Arc;

use brindle_datastore::Datastore;
use brindle_netlink::NetnsFd;

use crate::error::{CniError, code};
use crate::fault::Faults;
use crate::invocation::Invocation;
use crate::netconf::NetConf;
use crate::node::HostFiles;
use crate::version::Version;

/// Reads an environment variable (the process environment in the binary).
pub type EnvFn = fn(&str) -> Option<String>;

/// The process environment.
pub fn process_env(name: &str) -> Option<String> {
    std::env::var(name).ok()
}

pub struct Context {
    pub inv: Invocation,
    pub conf: NetConf,
    pub version: Version,
    pub stdin: Vec<u8>,
    pub files: HostFiles,
    pub faults: Faults,
    pub env: EnvFn,
}

impl Context {
    /// Opens the configured datastore.
    pub fn datastore(&self) -> Result<Arc<dyn Datastore>, CniError> {
        let (cfg, origin) = crate::store::config(&self.conf, self.env)?;
        crate::store::open(&cfg, &origin)
    }

    /// Opens `CNI_NETNS`. A missing namespace is code 3 (the container is gone); the plugin's
    /// own namespace is refused (code 4): wiring it would reconfigure the node itself.
    pub fn open_netns(&self) -> Result<NetnsFd, CniError> {
        let path = self.inv.netns.as_deref().unwrap_or(Path::new(""));
        let ns = NetnsFd::open(path).map_err(|e| {
            if e.is_not_found() {
                CniError::new(
                    code::UNKNOWN_CONTAINER,
                    format!(
                        "failed to open netns {:?}: no such file or directory",
                        path.display().to_string()
                    ),
                )
            } else {
                CniError::internal(format!(
                    "failed to open netns {:?}: {e}",
                    path.display().to_string()
                ))
            }
        })?;
        if !is_nsfs(&ns) {
            return Err(CniError::invalid_env(format!(
                "CNI_NETNS {} is not a network namespace",
                path.display()
            )));
        }
        let own = NetnsFd::current().and_then(|me| Ok(me.inode()? == ns.inode()?));
        match own {
            Ok(true) => Err(CniError::invalid_env(format!(
                "CNI_NETNS {} is the plugin's own network namespace",
                path.display()
            ))),
            Ok(false) => Ok(ns),
            Err(e) => Err(CniError::internal(format!(
                "inspect netns {}: {e}",
                path.display()
            ))),
        }
    }
}

/// The file is on nsfs (`NSFS_MAGIC`), the filesystem of namespace files (`/proc/PID/ns/net`,
/// `/run/netns/*`).
fn is_nsfs(ns: &NetnsFd) -> bool {
    nix::sys::statfs::fstatfs(ns).is_ok_and(|st| st.filesystem_type() == nix::sys::statfs::NSFS_MAGIC)
}
