//! Each installed plugin name is run as a runtime runs it, before it is renamed into place.

use std::io::Write as _;
use std::os::unix::process::CommandExt as _;
use std::path::Path;
use std::process::{Command, Stdio};

use super::Error;

/// Runs `path` as `name` (argv[0]) with `CNI_COMMAND=VERSION`, as a runtime would, and checks
/// it is Brindle's plugin speaking `cni_version`.
pub fn answers_version(path: &Path, name: &str, cni_version: &str) -> Result<(), Error> {
    let mut child = Command::new(path)
        .arg0(name)
        .env_clear()
        .env("CNI_COMMAND", "VERSION")
        .env("PATH", "/usr/sbin:/usr/bin:/sbin:/bin")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| {
            Error::Verify(format!(
                "{} cannot be run as the {name} plugin: {e}",
                path.display()
            ))
        })?;
    if let Some(mut stdin) = child.stdin.take() {
        let _ = stdin.write_all(format!("{{\"cniVersion\":\"{cni_version}\"}}").as_bytes());
    }
    let out = child
        .wait_with_output()
        .map_err(|e| Error::Verify(format!("{} as {name}: {e}", path.display())))?;
    let stdout = String::from_utf8_lossy(&out.stdout);
    let supported = serde_json::from_str::<serde_json::Value>(&stdout)
        .ok()
        .and_then(|v| v.get("supportedVersions").cloned())
        .and_then(|v| v.as_array().cloned())
        .unwrap_or_default();
    if !out.status.success() || !supported.iter().any(|v| v == cni_version) {
        return Err(Error::Verify(format!(
            "{} as {name}: CNI VERSION answered {} with {:?} (expected supportedVersions with {cni_version})",
            path.display(),
            out.status,
            stdout.trim()
        )));
    }
    Ok(())
}
