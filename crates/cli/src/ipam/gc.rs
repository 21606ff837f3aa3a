//! `brindle ipam gc`: the IPAM garbage collector in the foreground, for a host that runs no
//! agent (Calico runs kube-controllers apart from the nodes) and for tests. It takes part in
//! the agents' lease, so it collects only while no one else does.

use anyhow::{Result, anyhow};
use brindle_ipam::Ipam;
use brindle_ipam::gc::{self, GcSettings};
use clap::Args;
use nix::sys::signal::{SigSet, Signal};

#[derive(Debug, Args)]
pub struct GcArgs {
    /// The name written into the lease (with a random suffix); the host name by default.
    #[arg(long)]
    pub identity: Option<String>,
}

pub fn run(ipam: &Ipam, a: &GcArgs) -> Result<()> {
    crate::commands::node::init_logging(None)?;
    let name = match &a.identity {
        Some(n) => n.clone(),
        None => nix::unistd::gethostname()
            .map(|h| h.to_string_lossy().into_owned())
            .unwrap_or_else(|_| "brindle".into()),
    };
    let settings = GcSettings::for_node(&name).map_err(|e| anyhow!(e))?;
    // SIGTERM/SIGINT are waited for here, blocked everywhere else (threads inherit the mask).
    let mut signals = SigSet::empty();
    signals.add(Signal::SIGTERM);
    signals.add(Signal::SIGINT);
    signals.thread_block()?;
    let handle = gc::spawn(ipam.datastore_arc(), settings)?;
    let sig = signals.wait()?;
    tracing::info!(signal = %sig, "stopping the IPAM garbage collector");
    handle.stop();
    Ok(())
}
