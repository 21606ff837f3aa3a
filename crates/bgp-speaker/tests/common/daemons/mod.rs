//! Real peer daemons, each configured as a Calico node at 172.20.42.81 peering with the
//! Brindle node at 172.20.42.80 (iBGP AS 64512), announcing its block 10.233.87.0/24.
//! Configs follow `reference/lab-configs/`.

use std::path::PathBuf;
use std::process::Command;

mod bird;
mod exabgp;
mod frr;
mod gobgp;

// Each test binary uses some of them.
#[allow(unused_imports)]
pub use bird::Bird;
#[allow(unused_imports)]
pub use exabgp::Exabgp;
#[allow(unused_imports)]
pub use frr::Frr;
#[allow(unused_imports)]
pub use gobgp::Gobgp;

pub const THEIR_BLOCK: &str = "10.233.87.0/24";
pub const ME: &str = "172.20.42.80";
pub const THEM: &str = "172.20.42.81";

pub trait PeerDaemon {
    fn name(&self) -> &'static str;
    fn established(&self) -> bool;
    /// The daemon's RIB has `prefix` (learned from us).
    fn has_route(&self, prefix: &str) -> bool;
    fn withdraw_own(&mut self);
    fn announce_own(&mut self);
    /// Kill -9 and start again with the same configuration.
    fn restart(&mut self);
    fn dump(&self) -> String;
}

pub(crate) fn nscmd(ns: &str, prog: impl AsRef<std::ffi::OsStr>) -> Command {
    let mut c = Command::new("nsenter");
    c.arg(format!("--net=/run/netns/{ns}")).arg("--").arg(prog);
    c
}

pub(crate) fn output(mut c: Command) -> String {
    match c.output() {
        Ok(o) => format!(
            "{}{}",
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        ),
        Err(e) => format!("{c:?}: {e}"),
    }
}

pub(crate) fn write(path: &PathBuf, text: &str) {
    std::fs::write(path, text).unwrap_or_else(|e| panic!("write {}: {e}", path.display()));
}
