//! Who runs the garbage collector: the holder of a lease in the datastore, Kubernetes' leader
//! election (client-go `leaderelection`) over Brindle's compare-and-swap.
//!
//! The lease is a `coordination.k8s.io/v1` Lease object (holder, duration, acquire and renew
//! times, transitions) under [`LEASE_KEY`]. Its holder renews it every third of its duration;
//! everyone else watches its revision, and takes it over (compare-and-swap on that revision)
//! once it has not changed for a whole duration by their *own* clock, as client-go does, so
//! clocks need not agree between nodes. A holder whose renewals fail stops leading after two
//! thirds of the duration, before anyone may take over. A holder that stops cleanly gives the
//! lease up (empty holder), so the next one need not wait.

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use brindle_datastore::{Compare, Datastore, Op, Revision, TxnOutcome};
use serde::{Deserialize, Serialize};

use crate::error::Result;

/// The lease of the IPAM garbage collector (Brindle's key: Calico's etcd mode has no leases).
pub const LEASE_KEY: &str = "/calico/brindle/leases/ipam-gc";

/// The stored lease, in Kubernetes' Lease shape.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LeaseObject {
    pub api_version: String,
    pub kind: String,
    pub metadata: LeaseMeta,
    pub spec: LeaseSpec,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct LeaseMeta {
    pub name: String,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LeaseSpec {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub holder_identity: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lease_duration_seconds: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub acquire_time: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub renew_time: Option<String>,
    #[serde(default)]
    pub lease_transitions: u64,
}

/// Kubernetes' `MicroTime` text: RFC 3339 with microseconds, UTC.
fn micro_time(t: SystemTime) -> String {
    let d = t.duration_since(UNIX_EPOCH).unwrap_or_default();
    let secs = brindle_model::meta::rfc3339_utc(d.as_secs() as i64);
    format!("{}.{:06}Z", secs.trim_end_matches('Z'), d.subsec_micros())
}

/// One process's view of the lease.
#[derive(Debug)]
pub struct Elector {
    identity: String,
    duration: Duration,
    /// The lease's revision and when this process first saw it (the takeover clock).
    observed: Option<(Revision, Instant)>,
    /// When this process last renewed (or took) the lease.
    renewed: Option<Instant>,
}

/// What one step did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    /// This process holds the lease (took it now when `acquired`).
    Leading { acquired: bool },
    /// Another process holds it.
    Following,
}

impl Elector {
    pub fn new(identity: impl Into<String>, duration: Duration) -> Elector {
        Elector {
            identity: identity.into(),
            duration,
            observed: None,
            renewed: None,
        }
    }

    pub fn identity(&self) -> &str {
        &self.identity
    }

    /// How often to step: a third of the lease duration.
    pub fn period(&self) -> Duration {
        self.duration / 3
    }

    /// True while this process may act as the leader: it renewed within two thirds of the
    /// duration (others wait a whole duration without seeing a renewal before taking over).
    pub fn leading(&self, now: Instant) -> bool {
        self.renewed
            .is_some_and(|t| now.saturating_duration_since(t) < self.duration * 2 / 3)
    }

    fn record(&self, current: Option<&LeaseObject>, acquire: bool) -> LeaseObject {
        let now = micro_time(SystemTime::now());
        let mut spec = current.map(|c| c.spec.clone()).unwrap_or_default();
        if acquire {
            spec.acquire_time = Some(now.clone());
            if current.is_some() {
                spec.lease_transitions += 1;
            }
        }
        spec.holder_identity = Some(self.identity.clone());
        spec.lease_duration_seconds = Some(self.duration.as_secs().max(1));
        spec.renew_time = Some(now);
        LeaseObject {
            api_version: "coordination.k8s.io/v1".into(),
            kind: "Lease".into(),
            metadata: LeaseMeta {
                name: "brindle-ipam-gc".into(),
            },
            spec,
        }
    }

    fn write(
        &mut self,
        ds: &dyn Datastore,
        expected: Revision,
        lease: &LeaseObject,
        now: Instant,
    ) -> Result<bool> {
        let value = serde_json::to_vec(lease).expect("leases serialise");
        match ds.txn(&[Compare::new(LEASE_KEY, expected)], &[Op::put(LEASE_KEY, value)])? {
            TxnOutcome::Committed(rev) => {
                self.observed = Some((rev, now));
                self.renewed = Some(now);
                Ok(true)
            }
            TxnOutcome::Failed(_) => {
                self.renewed = None;
                Ok(false)
            }
        }
    }

    /// Reads the lease and takes, renews or watches it. Errors (datastore unavailable) leave
    /// the state as it was: a leader keeps leading until [`Elector::leading`] says otherwise.
    pub fn step(&mut self, ds: &dyn Datastore, now: Instant) -> Result<Step> {
        let current = ds.get(LEASE_KEY)?;
        let Some(kv) = current else {
            let lease = self.record(None, true);
            return Ok(match self.write(ds, 0, &lease, now)? {
                true => Step::Leading { acquired: true },
                false => Step::Following,
            });
        };
        // A lease that does not decode is treated as held by someone else; it expires like any.
        let lease: Option<LeaseObject> = serde_json::from_slice(&kv.value).ok();
        let holder = lease
            .as_ref()
            .and_then(|l| l.spec.holder_identity.clone())
            .unwrap_or_default();
        if holder == self.identity && self.renewed.is_some() {
            let renewed = self.record(lease.as_ref(), false);
            return Ok(match self.write(ds, kv.revision, &renewed, now)? {
                true => Step::Leading { acquired: false },
                false => Step::Following,
            });
        }
        self.renewed = None;
        let seen_since = match self.observed {
            Some((rev, since)) if rev == kv.revision => since,
            _ => {
                self.observed = Some((kv.revision, now));
                now
            }
        };
        let held_for = lease
            .as_ref()
            .and_then(|l| l.spec.lease_duration_seconds)
            .map(Duration::from_secs)
            .unwrap_or(self.duration);
        let expired = now.saturating_duration_since(seen_since) >= held_for;
        if holder.is_empty() || expired {
            let taken = self.record(lease.as_ref(), true);
            if self.write(ds, kv.revision, &taken, now)? {
                return Ok(Step::Leading { acquired: true });
            }
        }
        Ok(Step::Following)
    }

    /// Gives the lease up if this process holds it (a clean stop), so another process need not
    /// wait for it to expire.
    pub fn release(&mut self, ds: &dyn Datastore) -> Result<()> {
        if self.renewed.take().is_none() {
            return Ok(());
        }
        let Some(kv) = ds.get(LEASE_KEY)? else {
            return Ok(());
        };
        let Ok(mut lease) = serde_json::from_slice::<LeaseObject>(&kv.value) else {
            return Ok(());
        };
        if lease.spec.holder_identity.as_deref() != Some(self.identity.as_str()) {
            return Ok(());
        }
        lease.spec.holder_identity = None;
        lease.spec.lease_duration_seconds = Some(1);
        let value = serde_json::to_vec(&lease).expect("leases serialise");
        ds.txn(
            &[Compare::new(LEASE_KEY, kv.revision)],
            &[Op::put(LEASE_KEY, value)],
        )?;
        Ok(())
    }
}
