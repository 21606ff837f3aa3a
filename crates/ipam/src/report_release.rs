//! `ipam release --from-report` (calicoctl's `ReleaseFromReports`): releases the addresses
//! every given report marks as leaked, each proven by its handle and sequence number so an
//! address re-allocated since the report was written is left alone, then deletes the leaked
//! handles whose revision is unchanged.

use std::collections::BTreeMap;
use std::net::IpAddr;

use crate::block::ReleaseRequest;
use crate::check::{HandleInfo, Report};
use crate::error::{IpamError, Result};
use crate::ipam::Ipam;
use crate::release::ReleaseOutcome;
use crate::resources;
use brindle_model::keys;

/// What happened to one leaked handle.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HandleFate {
    Deleted,
    /// Gone or changed since the report: left alone.
    Skipped,
    Failed(String),
}

/// What [`Ipam::release_from_reports`] did, for the caller to print.
#[derive(Debug, Default)]
pub struct FromReports {
    /// `WARNING: …` lines (checks overridden by `force`).
    pub warnings: Vec<String>,
    /// Addresses leaked in every report.
    pub to_release: usize,
    pub ips: Option<ReleaseOutcome>,
    pub handles: Vec<(String, HandleFate)>,
}

impl Ipam {
    /// Releases what `reports` (named by their file, for messages) agree is leaked.
    /// `version` is this program's version (reports from another version are refused unless
    /// `force`); the datastore must be locked (ClusterInformation `datastoreReady: false`)
    /// unless `force`. A report from another cluster is always refused.
    pub fn release_from_reports(
        &self,
        reports: &[(String, Report)],
        version: &str,
        force: bool,
    ) -> Result<FromReports> {
        let cluster = resources::cluster_info(&*self.ds)?;
        let mut out = FromReports::default();
        let mut found_current = false;
        for (file, r) in reports {
            if r.cluster_guid != cluster.guid {
                return Err(IpamError::Invalid(format!(
                    "cluster does not match the provided report ({file}): mismatched cluster GUID. Refusing to release"
                )));
            }
            if r.version != version {
                if !force {
                    return Err(IpamError::Invalid(format!(
                        "the provided report ({file}) was produced using a different version ({}) of brindle. Refusing to release",
                        r.version
                    )));
                }
                out.warnings.push(
                    "WARNING: Report was produced using a different version of brindle. Ignoring due to --force option".into(),
                );
            }
            if r.cluster_information_revision == cluster.revision {
                found_current = true;
            }
        }
        if !found_current {
            return Err(IpamError::Invalid(
                "the provided reports are all stale - at least one should be up-to-date. Please generate a new report while the data store is locked and try again".into(),
            ));
        }
        if cluster.datastore_ready != Some(false) {
            if !force {
                return Err(IpamError::Invalid(
                    "data store is not locked. Either lock the data store, or re-run with --force".into(),
                ));
            }
            out.warnings
                .push("WARNING: Data store is not locked. Ignoring due to --force option".into());
        }
        let (ips, handles) = merge(reports.iter().map(|(_, r)| r));
        out.to_release = ips.len();
        if !ips.is_empty() {
            out.ips = Some(self.release_ips(&ips.into_values().collect::<Vec<_>>())?);
        }
        for h in handles.into_values() {
            let fate = self.delete_handle_at(&h);
            out.handles.push((h.id, fate));
        }
        Ok(out)
    }

    fn delete_handle_at(&self, h: &HandleInfo) -> HandleFate {
        let Ok(rev) = h.revision.parse() else {
            return HandleFate::Failed(format!("bad revision {:?} in the report", h.revision));
        };
        match self.ds.delete(&keys::handle_key(&h.id), Some(rev)) {
            Ok(_) => HandleFate::Deleted,
            Err(e) if e.is_conflict() || e.is_not_found() => HandleFate::Skipped,
            Err(e) => HandleFate::Failed(e.to_string()),
        }
    }
}

/// The addresses leaked in every report (with the proofs of the last report, as calicoctl
/// keeps them), and the leaked handles with the same revision in all.
fn merge<'r>(
    reports: impl Iterator<Item = &'r Report>,
) -> (BTreeMap<IpAddr, ReleaseRequest>, BTreeMap<String, HandleInfo>) {
    let mut ips: Option<BTreeMap<IpAddr, ReleaseRequest>> = None;
    let mut handles: Option<BTreeMap<String, HandleInfo>> = None;
    for r in reports {
        let mut merged = BTreeMap::new();
        for a in r.leaked() {
            let Ok(addr) = a.ip.parse::<IpAddr>() else {
                continue;
            };
            if ips.as_ref().is_some_and(|prev| !prev.contains_key(&addr)) {
                continue;
            }
            merged.insert(
                addr,
                ReleaseRequest {
                    addr,
                    handle: Some(a.handle.clone()).filter(|h| !h.is_empty()),
                    sequence: a.sequence_number,
                },
            );
        }
        ips = Some(merged);
        let mut mh = BTreeMap::new();
        for h in &r.leaked_handles {
            match &handles {
                None => {
                    mh.insert(h.id.clone(), h.clone());
                }
                Some(prev) if prev.get(&h.id).is_some_and(|p| p.revision == h.revision) => {
                    mh.insert(h.id.clone(), h.clone());
                }
                Some(_) => {}
            }
        }
        handles = Some(mh);
    }
    (ips.unwrap_or_default(), handles.unwrap_or_default())
}
