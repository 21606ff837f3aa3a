//! `ipam check [--show-all-ips] [--show-problem-ips] [-o <FILE>]`.

use anyhow::{Context, Result};
use brindle_ipam::Ipam;
use clap::Args;

#[derive(Debug, Args)]
pub struct CheckArgs {
    /// Print every address checked.
    #[arg(long)]
    pub show_all_ips: bool,
    /// Print every address that is leaked or not allocated properly.
    #[arg(long)]
    pub show_problem_ips: bool,
    /// Write a report (JSON) for `ipam release --from-report`.
    #[arg(short = 'o', long = "output", value_name = "FILE")]
    pub output: Option<String>,
}

pub fn check(ipam: &Ipam, a: &CheckArgs) -> Result<String> {
    let c = ipam.check()?;
    if let Some(file) = &a.output {
        let report = c.report(&crate::commands::version::client_version());
        std::fs::write(file, report.to_json()).with_context(|| format!("writing report {file}"))?;
    }
    Ok(c.text(a.show_all_ips, a.show_problem_ips))
}
