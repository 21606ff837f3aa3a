//! `ipam release [--ip=<IP>] [--from-report=<REPORT>]... [--force]`.

use std::fmt::Write as _;

use anyhow::{Context, Result, bail};
use brindle_ipam::check::Report;
use brindle_ipam::report_release::HandleFate;
use brindle_ipam::{Ipam, IpamError, ReleaseRequest};
use clap::Args;

#[derive(Debug, Args)]
pub struct ReleaseArgs {
    /// The address to release.
    #[arg(long, value_name = "IP")]
    pub ip: Option<String>,
    /// Release the addresses this report (every one of these reports) found leaked.
    #[arg(long = "from-report", value_name = "REPORT")]
    pub from_report: Vec<String>,
    /// Release even if the datastore is not locked or the report is from another version.
    #[arg(long)]
    pub force: bool,
}

pub fn release(ipam: &Ipam, a: &ReleaseArgs) -> Result<String> {
    if !a.from_report.is_empty() {
        return from_reports(ipam, a);
    }
    let Some(ip) = &a.ip else {
        bail!("nothing to release: give --ip=<IP> or --from-report=<REPORT>");
    };
    let addr = super::parse_ip(ip)?;
    match ipam.release_ip(&ReleaseRequest {
        addr,
        handle: None,
        sequence: None,
    }) {
        Ok(()) => Ok(format!("Successfully released IP address {addr}\n")),
        Err(e @ IpamError::NotAssigned { .. }) => Err(e.into()),
        Err(e) => bail!("error: {e}"),
    }
}

fn from_reports(ipam: &Ipam, a: &ReleaseArgs) -> Result<String> {
    let mut reports = Vec::new();
    for file in &a.from_report {
        let text = std::fs::read_to_string(file).with_context(|| format!("reading report {file}"))?;
        let r: Report = serde_json::from_str(&text)
            .with_context(|| format!("report {file} is not an ipam check report"))?;
        reports.push((file.clone(), r));
    }
    let out = ipam.release_from_reports(&reports, &crate::commands::version::client_version(), a.force)?;
    let mut s = String::new();
    for w in &out.warnings {
        let _ = writeln!(s, "{w}");
    }
    match &out.ips {
        None => s.push_str("Report didn't contain any leaked IPs to clean up.\n"),
        Some(ips) => {
            let _ = writeln!(s, "Releasing {} old IPs...", out.to_release);
            match ips.failed.first() {
                Some((_, e)) => {
                    let _ = writeln!(
                        s,
                        "An error occurred while releasing some IPs: {e}.  Problems are often caused by an out-of-date IPAM report.  Try regenerating the IPAM report and retry."
                    );
                }
                None => {
                    let _ = writeln!(
                        s,
                        "Released {} IPs successfully",
                        out.to_release - ips.unallocated.len()
                    );
                }
            }
            if !ips.unallocated.is_empty() {
                let _ = writeln!(
                    s,
                    "{} addresses marked as leaked in the report had already been cleaned up.",
                    ips.unallocated.len()
                );
            }
        }
    }
    if out.handles.is_empty() {
        s.push_str("Report didn't contain any handles to clean up.\n");
    } else {
        let _ = writeln!(s, "Deleting {} handles...", out.handles.len());
        s.push_str("Key: '.' = Deleted OK; 'x' = skip, handle missing/changed.\n");
        let (mut ok, mut skipped, mut errors) = (0, 0, 0);
        for (id, fate) in &out.handles {
            match fate {
                HandleFate::Deleted => {
                    ok += 1;
                    s.push('.');
                }
                HandleFate::Skipped => {
                    skipped += 1;
                    s.push('x');
                }
                HandleFate::Failed(e) => {
                    errors += 1;
                    let _ = write!(s, "\nDeleting handle {id} failed: {e}.\n");
                }
            }
        }
        let _ = writeln!(s, "\nReleased {ok} handles; {skipped} skipped; {errors} errors.");
    }
    s.push_str("You may now unlock the data store.\n");
    Ok(s)
}
