//! The node's name, chosen as calico-node's startup does (Calico's
//! `node/pkg/lifecycle/utils/utils.go`): `NODENAME` > the nodename file > `HOSTNAME`
//! (lower-cased) > the kernel's hostname (lower-cased).

use std::path::Path;

use crate::error::{Error, Result};

pub fn resolve(nodename: Option<&str>, file: &Path, hostname_env: Option<&str>) -> Result<String> {
    if let Some(n) = nodename.filter(|n| !n.is_empty()) {
        return Ok(n.to_string());
    }
    if let Ok(s) = std::fs::read_to_string(file) {
        let s = s.trim();
        if !s.is_empty() {
            return Ok(s.to_string());
        }
    }
    if let Some(h) = hostname_env.filter(|h| !h.is_empty()) {
        return Ok(h.to_lowercase());
    }
    let h = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map_err(|e| Error::io("/proc/sys/kernel/hostname", e))?;
    let h = h.trim().to_lowercase();
    if h.is_empty() {
        return Err(Error::Startup("no node name: set NODENAME".into()));
    }
    Ok(h)
}

/// Writes `contents` to `path` atomically (temporary file + rename), creating the directory.
pub fn write_file(path: &Path, contents: &str) -> Result<()> {
    if let Some(d) = path.parent() {
        std::fs::create_dir_all(d).map_err(|e| Error::io(d.display(), e))?;
    }
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, contents).map_err(|e| Error::io(tmp.display(), e))?;
    std::fs::rename(&tmp, path).map_err(|e| Error::io(path.display(), e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn priority_order() {
        let dir = std::env::temp_dir().join(format!("brindle-nodename-{}", std::process::id()));
        let file = dir.join("nodename");
        assert_eq!(resolve(Some("n1"), &file, Some("HOST")).unwrap(), "n1");
        assert_eq!(resolve(None, &file, Some("My-Host")).unwrap(), "my-host");
        write_file(&file, "from-file\n").unwrap();
        assert_eq!(resolve(None, &file, Some("My-Host")).unwrap(), "from-file");
        assert_eq!(resolve(Some("n1"), &file, None).unwrap(), "n1");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
