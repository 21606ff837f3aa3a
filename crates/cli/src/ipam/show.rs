//! `ipam show [--ip=<IP> | --show-blocks | --show-borrowed | --show-configuration]`.

use std::fmt::Write as _;
use std::net::IpAddr;

use anyhow::Result;
use brindle_ipam::gofmt::{f0, g5};
use brindle_ipam::usage::{Borrowed, PoolUsage};
use brindle_ipam::{Allocation, Ipam, IpamConfig};
use clap::Args;

use crate::output::boxtable;

#[derive(Debug, Args)]
#[group(multiple = false)]
pub struct ShowArgs {
    /// Show whether this address is in use, and by what.
    #[arg(long, value_name = "IP")]
    pub ip: Option<String>,
    /// Show each block of each pool too.
    #[arg(long)]
    pub show_blocks: bool,
    /// Show addresses borrowed from other nodes' blocks.
    #[arg(long)]
    pub show_borrowed: bool,
    /// Show the IPAM configuration.
    #[arg(long)]
    pub show_configuration: bool,
}

pub fn show(ipam: &Ipam, a: &ShowArgs) -> Result<String> {
    if let Some(ip) = &a.ip {
        let addr = super::parse_ip(ip)?;
        return Ok(ip_text(addr, ipam.allocation(addr)?.as_ref()));
    }
    if a.show_borrowed {
        let (rows, unclassified) = ipam.borrowed()?;
        return Ok(borrowed_table(&rows, unclassified));
    }
    if a.show_configuration {
        return Ok(config_table(&ipam.config()?));
    }
    Ok(utilization_table(&ipam.utilization()?, a.show_blocks))
}

/// One row: `%.5g` total, `%.5g (%.f%%)` in use and free (Go's formatting).
fn row(kind: &str, cidr: String, capacity: u128, in_use: u128) -> Vec<String> {
    let cap = capacity as f64;
    let pct = |n: u128| format!("{} ({}%)", g5(n as f64), f0(100.0 * n as f64 / cap));
    vec![
        kind.into(),
        cidr,
        g5(cap),
        pct(in_use),
        pct(capacity.saturating_sub(in_use)),
    ]
}

/// The default table; with `blocks`, each pool row is followed by its blocks. Blocks in no
/// pool are listed (with `blocks`) without a pool row.
pub fn utilization_table(usage: &[PoolUsage], blocks: bool) -> String {
    let mut rows = Vec::new();
    for p in usage {
        if !p.is_orphan_group() {
            rows.push(row("IP Pool", p.cidr.to_string(), p.capacity, p.in_use));
        }
        if blocks {
            for b in &p.blocks {
                rows.push(row("Block", b.cidr.to_string(), b.capacity, b.in_use));
            }
        }
    }
    boxtable::render(
        &["GROUPING", "CIDR", "IPS TOTAL", "IPS IN USE", "IPS FREE"],
        &rows,
    )
}

/// `--ip` (calicoctl v3.32's wording).
pub fn ip_text(addr: IpAddr, alloc: Option<&Allocation>) -> String {
    let Some(a) = alloc else {
        return format!("{addr} is not assigned\n");
    };
    let mut s = format!("IP {addr} is in use\n");
    let _ = writeln!(s, "Handle ID: {}", a.handle.as_deref().unwrap_or("<none>"));
    if a.attrs.is_empty() {
        s.push_str("No Active Owner attributes defined\n");
    } else {
        s.push_str("Active Owner Attributes:\n");
        for (k, v) in &a.attrs {
            let _ = writeln!(s, "  {k}: {v}");
        }
    }
    s
}

/// `--show-borrowed`.
pub fn borrowed_table(rows: &[Borrowed], unclassified: usize) -> String {
    let rows: Vec<Vec<String>> = rows
        .iter()
        .map(|b| {
            vec![
                b.addr.to_string(),
                b.borrowing_node.clone(),
                b.block.to_string(),
                b.block_owner.clone(),
                b.kind.clone(),
                b.allocated_to.clone(),
            ]
        })
        .collect();
    let mut s = boxtable::render(
        &[
            "IP",
            "BORROWING-NODE",
            "BLOCK",
            "BLOCK OWNER",
            "TYPE",
            "ALLOCATED-TO",
        ],
        &rows,
    );
    if unclassified != 0 {
        let _ = writeln!(
            s,
            "\nNote: found {unclassified} IP allocations without an explicit node association. Unable to determine if they are borrowed."
        );
    }
    s
}

/// `--show-configuration`: one row per field of calicoctl's `IPAMConfig`, values as Go's `%#v`.
pub fn config_table(c: &IpamConfig) -> String {
    let mut rows = vec![
        vec!["StrictAffinity".to_string(), c.strict_affinity.to_string()],
        vec![
            "AutoAllocateBlocks".to_string(),
            c.auto_allocate_blocks.to_string(),
        ],
        vec!["MaxBlocksPerHost".to_string(), c.max_blocks_per_host.to_string()],
    ];
    if let Some(p) = &c.kube_virt_vm_address_persistence {
        rows.push(vec!["KubeVirtVMAddressPersistence".into(), format!("{p:?}")]);
    }
    boxtable::render(&["PROPERTY", "VALUE"], &rows)
}
