//! Loud preconditions: a test that cannot run fails with what to do, it never skips silently.

use std::path::Path;

/// Panics unless the test runs as root (network namespaces, netlink writes, daemons on port 179).
pub fn root() {
    // SAFETY: geteuid has no preconditions and cannot fail.
    let euid = unsafe { libc::geteuid() };
    assert!(
        euid == 0,
        "this test needs root (network namespaces); run the suite as root, e.g. `sudo .ci/run`"
    );
}

/// Returns the full path of `cmd` found on PATH (or the absolute path given), or panics naming the
/// Debian package to install.
pub fn command(cmd: &str, package: &str) -> std::path::PathBuf {
    if cmd.contains('/') {
        let p = Path::new(cmd);
        assert!(
            p.exists(),
            "{cmd} not found: install it with `apt-get install -y {package}`"
        );
        return p.to_path_buf();
    }
    let path = std::env::var_os("PATH").unwrap_or_default();
    for dir in std::env::split_paths(&path).chain(["/usr/sbin".into(), "/sbin".into(), "/usr/lib/frr".into()])
    {
        let candidate = dir.join(cmd);
        if candidate.is_file() {
            return candidate;
        }
    }
    panic!("`{cmd}` not found on PATH: install it with `apt-get install -y {package}` (.ci/run does)");
}
