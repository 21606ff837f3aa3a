//! sysctls of one namespace. `/proc/sys/net` shows the namespace of the thread that opens the
//! file, so a handle of another namespace writes from a short-lived thread inside it.

use crate::error::{Error, Result};
use crate::handle::Handle;
use crate::netns::NetnsFd;

/// `net.ipv4.conf.cali1.proxy_arp` → `/proc/sys/net/ipv4/conf/cali1/proxy_arp`. Interface names
/// may contain dots (`vxlan.calico`): pass those keys with `/` separators instead.
fn path_of(key: &str) -> String {
    if key.contains('/') {
        format!("/proc/sys/{}", key.trim_start_matches('/'))
    } else {
        format!("/proc/sys/{}", key.replace('.', "/"))
    }
}

fn write_here(key: &str, value: &str) -> Result<()> {
    let path = path_of(key);
    std::fs::write(&path, value).map_err(|e| Error::io(format!("set sysctl {key}={value} ({path})"), e))
}

fn read_here(key: &str) -> Result<String> {
    let path = path_of(key);
    std::fs::read_to_string(&path)
        .map(|s| s.trim().to_string())
        .map_err(|e| Error::io(format!("read sysctl {key} ({path})"), e))
}

/// Writes several sysctls in `ns` (one thread, whatever the count).
pub fn set_in(ns: &NetnsFd, pairs: &[(&str, &str)]) -> Result<()> {
    let here = ns.is_current()?;
    let apply = || -> Result<()> {
        for (k, v) in pairs {
            write_here(k, v)?;
        }
        Ok(())
    };
    if here { apply() } else { ns.run(apply)? }
}

/// Reads a sysctl in `ns`.
pub fn get_in(ns: &NetnsFd, key: &str) -> Result<String> {
    if ns.is_current()? {
        read_here(key)
    } else {
        ns.run(|| read_here(key))?
    }
}

impl Handle {
    /// Sets sysctls in this handle's namespace, e.g. `[("net.ipv4.ip_forward", "1")]`.
    pub fn set_sysctls(&self, pairs: &[(&str, &str)]) -> Result<()> {
        set_in(self.netns(), pairs)
    }

    /// Reads a sysctl in this handle's namespace.
    pub fn sysctl(&self, key: &str) -> Result<String> {
        get_in(self.netns(), key)
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn keys_map_to_proc_paths() {
        assert_eq!(
            super::path_of("net.ipv4.conf.cali1.proxy_arp"),
            "/proc/sys/net/ipv4/conf/cali1/proxy_arp"
        );
        assert_eq!(
            super::path_of("net/ipv4/conf/vxlan.calico/rp_filter"),
            "/proc/sys/net/ipv4/conf/vxlan.calico/rp_filter"
        );
    }
}
