//! `ipam configure [--strictaffinity=<true/false>] [--max-blocks-per-host=<number>]`.

use std::fmt::Write as _;

use anyhow::{Result, bail};
use brindle_ipam::Ipam;
use clap::Args;

#[derive(Debug, Args)]
pub struct ConfigureArgs {
    /// No borrowing of other nodes' addresses when true.
    #[arg(long = "strictaffinity", value_name = "true/false")]
    pub strict_affinity: Option<String>,
    /// The most blocks one node may hold (needs strict affinity).
    #[arg(long, value_name = "number")]
    pub max_blocks_per_host: Option<String>,
}

/// Go's `strconv.ParseBool`.
fn parse_go_bool(s: &str) -> Option<bool> {
    match s {
        "1" | "t" | "T" | "TRUE" | "true" | "True" => Some(true),
        "0" | "f" | "F" | "FALSE" | "false" | "False" => Some(false),
        _ => None,
    }
}

pub fn configure(ipam: &Ipam, a: &ConfigureArgs) -> Result<String> {
    let strict = match &a.strict_affinity {
        Some(v) => match parse_go_bool(v) {
            Some(b) => Some(b),
            None => bail!("invalid value. Use true or false to set strictaffinity"),
        },
        None => None,
    };
    let max = match &a.max_blocks_per_host {
        Some(v) => match v.parse::<u32>() {
            Ok(n) => Some(n),
            Err(_) => bail!("invalid value for maxblockhost. Use a valid number"),
        },
        None => None,
    };
    if strict.is_none() && max.is_none() {
        bail!("at least one configuration option must be specified");
    }
    ipam.update_config(|c| {
        if let Some(s) = strict {
            c.strict_affinity = s;
        }
        if let Some(m) = max {
            c.max_blocks_per_host = m;
        }
    })
    .map_err(|e| anyhow::anyhow!("error: {e}"))?;
    let mut s = String::new();
    if let Some(v) = strict {
        let _ = writeln!(s, "Successfully set StrictAffinity to: {v}");
    }
    if let Some(v) = max {
        let _ = writeln!(s, "Successfully set MaxBlocksPerHost to: {v}");
    }
    Ok(s)
}
