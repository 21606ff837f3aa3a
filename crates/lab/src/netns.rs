//! Named network namespaces (`/run/netns/NAME`), made and removed by exact name with iproute2.

use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};

use brindle_netlink::{Handle, LinkChange};

use crate::error::{Error, Result};

pub fn exists(name: &str) -> bool {
    Path::new("/run/netns").join(name).exists()
}

/// Runs a command, turning a failure into an error that shows its stderr.
pub(crate) fn run(what: &str, cmd: &mut Command) -> Result<String> {
    let out = cmd
        .output()
        .map_err(|e| Error::step(what, format!("{cmd:?}: {e}")))?;
    if !out.status.success() {
        return Err(Error::step(
            what,
            format!("{} ({})", String::from_utf8_lossy(&out.stderr).trim(), out.status),
        ));
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// `ip netns add NAME`.
pub fn add(name: &str) -> Result<()> {
    run(
        &format!("create namespace {name}"),
        Command::new("ip").args(["netns", "add", name]),
    )
    .map(drop)
}

/// Brings the namespace's loopback up: a pod needs only that (the CNI plugin makes `eth0`), one
/// netlink request.
pub fn loopback_up(name: &str) -> Result<()> {
    let mut h = Handle::open_named(name)?;
    let lo = h.require_link("lo")?;
    h.set_link(
        lo.index,
        "lo",
        &LinkChange {
            up: Some(true),
            ..Default::default()
        },
    )?;
    Ok(())
}

/// `ip netns del NAME`, only if it exists.
pub fn del(name: &str) -> Result<()> {
    if !exists(name) {
        return Ok(());
    }
    run(
        &format!("delete namespace {name}"),
        Command::new("ip").args(["netns", "del", name]),
    )
    .map(drop)
}

/// Runs `ip -n NS -batch -` with `lines` on stdin: one process per namespace however many links.
pub fn ip_batch(netns: &str, lines: &[String]) -> Result<()> {
    let what = format!("configure namespace {netns}");
    let mut child = Command::new("ip")
        .args(["-n", netns, "-batch", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| Error::step(&what, format!("ip: {e}")))?;
    let script = lines.join("\n") + "\n";
    child
        .stdin
        .take()
        .expect("piped stdin")
        .write_all(script.as_bytes())
        .map_err(|e| Error::step(&what, e))?;
    let out = child.wait_with_output().map_err(|e| Error::step(&what, e))?;
    if !out.status.success() {
        // ip reports "Command failed -:N": show that line too.
        let err = String::from_utf8_lossy(&out.stderr).trim().to_string();
        let line = err
            .rsplit_once("-:")
            .and_then(|(_, n)| n.trim().parse::<usize>().ok())
            .and_then(|n| lines.get(n.wrapping_sub(1)))
            .map(|l| format!(" (at `ip {l}`)"))
            .unwrap_or_default();
        return Err(Error::step(what, format!("{err}{line}")));
    }
    Ok(())
}
