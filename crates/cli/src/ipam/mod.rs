//! `brindle ipam …`: calicoctl's `ipam show`, `ipam check`, `ipam release` and
//! `ipam configure`, with calicoctl's output (docs/CALICO.md §2). The work is done by
//! `brindle-ipam`; this module parses flags and prints.

mod check;
mod configure;
mod gc;
mod release;
mod show;

use anyhow::Result;
use brindle_ipam::Ipam;
use clap::{Args, Subcommand};

use crate::args::DatastoreArgs;

#[derive(Debug, Args)]
pub struct IpamArgs {
    #[command(subcommand)]
    pub command: IpamCommand,
}

#[derive(Debug, Subcommand)]
pub enum IpamCommand {
    /// Show pool and block utilization, one address, borrowed addresses or the configuration.
    Show(show::ShowArgs),
    /// Check the IPAM data against the workloads and nodes using addresses.
    Check(check::CheckArgs),
    /// Release an address, or every address a report found leaked.
    Release(release::ReleaseArgs),
    /// Change the IPAM configuration.
    Configure(configure::ConfigureArgs),
    /// Run the IPAM garbage collector in the foreground (node agents run it too, one at a time
    /// under a lease; this takes part in the same lease), until SIGTERM or SIGINT.
    Gc(gc::GcArgs),
}

/// Runs one `ipam` command.
pub fn run(ds: &DatastoreArgs, a: &IpamArgs) -> Result<()> {
    let access = match a.command {
        IpamCommand::Configure(_) | IpamCommand::Gc(_) => crate::connect::Access::ReadWrite,
        _ => crate::connect::Access::ReadOnly,
    };
    let ipam = Ipam::new(crate::connect::open(ds, access)?.store().clone());
    if let IpamCommand::Gc(g) = &a.command {
        return gc::run(&ipam, g);
    }
    let out = match &a.command {
        IpamCommand::Show(s) => show::show(&ipam, s)?,
        IpamCommand::Check(c) => check::check(&ipam, c)?,
        IpamCommand::Release(r) => release::release(&ipam, r)?,
        IpamCommand::Configure(c) => configure::configure(&ipam, c)?,
        IpamCommand::Gc(_) => unreachable!("run above"),
    };
    print!("{out}");
    Ok(())
}

/// calicoctl's `argutils.ValidateIP`.
fn parse_ip(s: &str) -> Result<std::net::IpAddr> {
    s.trim()
        .parse()
        .map_err(|_| anyhow::anyhow!("invalid IP address specified: {s}"))
}
