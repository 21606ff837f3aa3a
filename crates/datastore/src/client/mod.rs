//! Typed access over any [`Datastore`]: v3 resources with Calico's client semantics
//! (`libcalico-go/lib/clientv3`), and JSON objects under raw keys (IPAM) with their revisions.
//!
//! Calico's rules, kept here so every Brindle part follows them:
//! - values are stored under Calico's keys ([`brindle_model::keys`]) without `resourceVersion`;
//!   the key's store revision *is* the resource version, rendered as a decimal string on read;
//! - create validates, applies defaults, sets `uid` (a random UUID) and `creationTimestamp`;
//!   a policy's tier must exist; built-in tiers and tiers with policies cannot be deleted;
//!   [`Client::ensure_builtin_tiers`] creates the three built-in tiers;
//! - the built-in profile `projectcalico-default-allow` is served, never stored;
//! - policies are stored under their plain name with Calico v3.32's name annotation
//!   ([`brindle_model::stored`]);
//! - update and delete compare-and-swap on the stored revision, and with a `resourceVersion` in
//!   the input only succeed while the stored one is still at that version;
//! - errors read as Calico's (`resource does not exist: IPPool(p) with error: <nil>`).
//!
//! Module map: this file (resources), [`json`] (raw JSON objects, [`Versioned`]),
//! [`watch`] (typed resource watches).

pub mod json;
mod pools;
pub mod watch;

use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use brindle_model::keys::{resource_key, resource_prefix};
use brindle_model::meta::ObjectMeta;
use brindle_model::resources::{BUILTIN_TIERS, DEFAULT_ALLOW_PROFILE, Profile, Tier, identifier};
use brindle_model::stored::{from_stored, to_stored};
use brindle_model::{Kind, Resource, ValidationError, apply_defaults, validate, validate_ippool_update};

use crate::{Datastore, Revision};
pub use json::Versioned;
pub use pools::POOL_GUARD_KEY;
pub use watch::{ResourceEvent, ResourceWatch};

/// What a resource operation can fail with, worded as Calico words it.
#[derive(Debug, thiserror::Error)]
pub enum ResourceError {
    #[error("resource does not exist: {0} with error: <nil>")]
    NotFound(String),
    #[error("resource already exists: {0} with error: <nil>")]
    AlreadyExists(String),
    #[error("update conflict: {0}")]
    Conflict(String),
    #[error(
        "resource version '{given}' is out of date (latest: {latest}). Update the resource YAML/JSON in order to make changes"
    )]
    OutOfDate { given: String, latest: String },
    #[error("operation {op} is not supported on {kind}: resource is readonly")]
    ReadOnly { op: &'static str, kind: Kind },
    /// Calico's `ErrorOperationNotSupported` with a reason (deleting a built-in or non-empty
    /// tier, writing the built-in profile).
    #[error("operation {op} is not supported on {identifier}: {reason}")]
    NotSupported {
        op: &'static str,
        identifier: String,
        reason: String,
    },
    #[error(transparent)]
    Invalid(#[from] ValidationError),
    /// The stored value does not decode as what its key says (key, kind, why).
    #[error("{0}: stored value is not a valid {1}: {2}")]
    Corrupt(String, Kind, String),
    #[error(transparent)]
    Store(#[from] crate::Error),
}

impl ResourceError {
    /// A compare-and-swap lost a race: re-read and try again.
    pub fn is_conflict(&self) -> bool {
        match self {
            ResourceError::Conflict(_) => true,
            ResourceError::Store(e) => e.is_conflict(),
            _ => false,
        }
    }
}

pub type Result<T> = std::result::Result<T, ResourceError>;

/// A stored row whose value does not decode as the kind its key names (damaged, or written by
/// something else). Listings leave it out and name it here; [`Client::delete`] removes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Undecodable {
    pub key: String,
    /// `Kind(name)` or `Kind(namespace/name)`, from the key.
    pub identifier: String,
    /// Why it does not decode ([`ResourceError::Corrupt`]'s text).
    pub error: String,
}

/// What [`Client::list`] found: the resources that decode, sorted by key, the store revision of
/// the listing (watch from `revision + 1` to follow it), and each row that does not decode.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ResourceListing {
    pub items: Vec<Resource>,
    pub revision: Revision,
    pub undecodable: Vec<Undecodable>,
}

/// The typed client. Cheap to clone (it shares the store).
#[derive(Clone)]
pub struct Client {
    store: Arc<dyn Datastore>,
    /// Reads drop fields this version does not know ([`Client::lenient`]).
    lenient: bool,
}

fn now_rfc3339() -> String {
    let secs = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0);
    brindle_model::meta::rfc3339_utc(secs)
}

/// A random (version 4) UUID, as Kubernetes assigns `uid`.
pub fn new_uid() -> String {
    let mut b: [u8; 16] = rand::random();
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    let h: String = b.iter().map(|x| format!("{x:02x}")).collect();
    format!(
        "{}-{}-{}-{}-{}",
        &h[0..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..32]
    )
}

fn parse_revision(s: &str) -> Option<Revision> {
    s.parse().ok()
}

/// A stored resource value to a [`Resource`] with its `resourceVersion`.
pub(crate) fn decode(kind: Kind, key: &str, value: &[u8], revision: Revision) -> Result<Resource> {
    let mut r = Resource::from_json(kind, value)
        .map_err(|e| ResourceError::Corrupt(key.to_string(), kind, e.to_string()))?;
    from_stored(&mut r);
    r.metadata_mut().resource_version = revision.to_string();
    Ok(r)
}

/// `Kind(name)` (or `Kind(namespace/name)`) of a resource key, for naming a row that does not
/// decode; the key itself when it is not a resource key.
fn identifier_of(kind: Kind, key: &str) -> String {
    match brindle_model::keys::Key::parse(key) {
        Ok(brindle_model::keys::Key::Resource { namespace, name, .. }) => identifier(kind, &namespace, &name),
        _ => key.to_string(),
    }
}

/// The stored form: the resource without `resourceVersion`, as Calico stores it
/// ([`brindle_model::stored`]).
fn encode(r: &Resource) -> Vec<u8> {
    let mut stored = to_stored(r);
    stored.metadata_mut().resource_version.clear();
    serde_json::to_vec(&stored).expect("resources always serialise")
}

/// Revision shown for the built-in profile, which is never stored (Calico shows "1").
const DEFAULT_ALLOW_REVISION: &str = "1";

fn default_allow_profile() -> Resource {
    let mut p = Profile::default_allow();
    p.metadata.resource_version = DEFAULT_ALLOW_REVISION.to_string();
    Resource::Profile(p)
}

fn is_default_allow(kind: Kind, name: &str) -> bool {
    kind == Kind::Profile && name == DEFAULT_ALLOW_PROFILE
}

impl Client {
    pub fn new(store: Arc<dyn Datastore>) -> Client {
        Client {
            store,
            lenient: false,
        }
    }

    /// A client whose reads drop the fields this version does not know
    /// ([`brindle_model::lenient`]) instead of failing on them: for the agent, which must keep
    /// working with objects a newer Calico wrote. Writes of what it read lose those fields.
    pub fn lenient(store: Arc<dyn Datastore>) -> Client {
        Client { store, lenient: true }
    }

    fn decode(&self, kind: Kind, key: &str, value: &[u8], revision: Revision) -> Result<Resource> {
        if !self.lenient {
            return decode(kind, key, value, revision);
        }
        let mut r = Resource::from_json_lenient(kind, value, &mut |_| {})
            .map_err(|e| ResourceError::Corrupt(key.to_string(), kind, e.to_string()))?;
        r.metadata_mut().resource_version = revision.to_string();
        Ok(r)
    }

    pub fn store(&self) -> &Arc<dyn Datastore> {
        &self.store
    }

    /// One resource, or `None`.
    pub fn get(&self, kind: Kind, namespace: &str, name: &str) -> Result<Option<Resource>> {
        if is_default_allow(kind, name) {
            return Ok(Some(default_allow_profile()));
        }
        let key = resource_key(kind, namespace, name);
        match self.store.get(&key)? {
            Some(kv) => self.decode(kind, &key, &kv.value, kv.revision).map(Some),
            None => Ok(None),
        }
    }

    /// One resource that must exist.
    pub fn must_get(&self, kind: Kind, namespace: &str, name: &str) -> Result<Resource> {
        self.get(kind, namespace, name)?
            .ok_or_else(|| ResourceError::NotFound(identifier(kind, namespace, name)))
    }

    /// Every resource of a kind (in one namespace, or all with `None`), sorted by key, with the
    /// store revision of the listing (watch from `revision + 1` to follow it). Profiles end with
    /// the built-in `projectcalico-default-allow`, as Calico's etcd backend lists it. One row
    /// that does not decode does not fail the listing: it is named in
    /// [`ResourceListing::undecodable`].
    pub fn list(&self, kind: Kind, namespace: Option<&str>) -> Result<ResourceListing> {
        let listing = self.store.list(&resource_prefix(kind, namespace))?;
        let mut out = ResourceListing {
            items: Vec::with_capacity(listing.items.len() + 1),
            revision: listing.revision,
            undecodable: Vec::new(),
        };
        for kv in &listing.items {
            if kind == Kind::Profile && kv.key == resource_key(kind, "", DEFAULT_ALLOW_PROFILE) {
                continue;
            }
            match self.decode(kind, &kv.key, &kv.value, kv.revision) {
                Ok(r) => out.items.push(r),
                Err(e) => out.undecodable.push(Undecodable {
                    key: kv.key.clone(),
                    identifier: identifier_of(kind, &kv.key),
                    error: e.to_string(),
                }),
            }
        }
        if kind == Kind::Profile {
            out.items.push(default_allow_profile());
        }
        Ok(out)
    }

    /// Creates the built-in tiers that are missing (`kube-admin`, `default`, `kube-baseline`),
    /// as Calico's `EnsureInitialized` does on every write command and at calico-node's start.
    pub fn ensure_builtin_tiers(&self) -> Result<()> {
        for (name, order, action) in BUILTIN_TIERS {
            match self.create(&Resource::Tier(Tier::builtin(name, order, action))) {
                Ok(_) | Err(ResourceError::AlreadyExists(_)) => {}
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }

    /// The tier a new policy names must exist (`clientv3/networkpolicy.go` `Create`).
    fn check_policy_tier(&self, r: &Resource) -> Result<()> {
        let tier = match r {
            Resource::NetworkPolicy(p) => p.spec.tier_or_default(),
            Resource::GlobalNetworkPolicy(p) => p.spec.tier_or_default(),
            _ => return Ok(()),
        };
        self.must_get(Kind::Tier, "", tier).map(|_| ())
    }

    /// Calico's rules for deleting a tier: never a built-in one, never one a policy is in.
    fn check_tier_delete(&self, name: &str) -> Result<()> {
        if Tier::is_builtin(name) {
            return Err(ResourceError::NotSupported {
                op: "Delete",
                identifier: name.to_string(),
                reason: format!("Cannot delete {name} tier"),
            });
        }
        let in_tier = |kind: Kind| -> Result<bool> {
            Ok(self.list(kind, None)?.items.iter().any(|r| match r {
                Resource::NetworkPolicy(p) => p.spec.tier_or_default() == name,
                Resource::GlobalNetworkPolicy(p) => p.spec.tier_or_default() == name,
                _ => false,
            }))
        };
        if in_tier(Kind::NetworkPolicy)? || in_tier(Kind::GlobalNetworkPolicy)? {
            return Err(ResourceError::NotSupported {
                op: "delete",
                identifier: name.to_string(),
                reason: "Cannot delete a non-empty tier".into(),
            });
        }
        Ok(())
    }

    fn refuse_default_allow(&self, op: &'static str, kind: Kind, name: &str) -> Result<()> {
        if is_default_allow(kind, name) {
            return Err(ResourceError::NotSupported {
                op,
                identifier: identifier(kind, "", name),
                reason: "the built-in profile is not stored and cannot be changed".into(),
            });
        }
        Ok(())
    }

    /// Creates a resource: validation (and, for pools, the overlap check), defaults, `uid` and
    /// `creationTimestamp`. Returns the stored resource with its `resourceVersion`.
    pub fn create(&self, r: &Resource) -> Result<Resource> {
        if r.kind() == Kind::ClusterInformation {
            return Err(ResourceError::ReadOnly {
                op: "create or apply",
                kind: Kind::ClusterInformation,
            });
        }
        self.create_unchecked(r)
    }

    /// [`Client::create`] without the read-only rule: for Brindle's own writers of
    /// ClusterInformation (the agent at start-up), which users may not create. A pool is
    /// checked against the stored pools and written in one atomic step ([`pools`]).
    pub fn create_unchecked(&self, r: &Resource) -> Result<Resource> {
        self.refuse_default_allow("create", r.kind(), r.name())?;
        validate(r)?;
        self.check_policy_tier(r)?;
        let mut r = r.clone();
        apply_defaults(&mut r);
        let m = r.metadata_mut();
        m.uid = new_uid();
        m.creation_timestamp = Some(now_rfc3339());
        m.resource_version.clear();
        let key = resource_key(r.kind(), &r.metadata().namespace, r.name());
        let written = match &r {
            Resource::IPPool(p) => pools::create(&*self.store, p, &key, &encode(&r)),
            _ => self.store.create(&key, &encode(&r)).map_err(ResourceError::from),
        };
        match written {
            Ok(rev) => {
                r.metadata_mut().resource_version = rev.to_string();
                Ok(r)
            }
            Err(e) if e.is_conflict() && !matches!(r, Resource::IPPool(_)) => {
                Err(ResourceError::AlreadyExists(r.identifier()))
            }
            Err(e) => Err(e),
        }
    }

    /// Replaces an existing resource. With a `resourceVersion` in the input the write only
    /// succeeds if the stored one is still at that version; the stored metadata (uid, creation
    /// time) is kept, labels and annotations come from the input.
    pub fn update(&self, r: &Resource) -> Result<Resource> {
        if r.kind() == Kind::ClusterInformation {
            return Err(ResourceError::ReadOnly {
                op: "apply or replace",
                kind: Kind::ClusterInformation,
            });
        }
        self.update_unchecked(r)
    }

    /// [`Client::update`] without the read-only rule (see [`Client::create_unchecked`]).
    pub fn update_unchecked(&self, r: &Resource) -> Result<Resource> {
        self.refuse_default_allow("update", r.kind(), r.name())?;
        validate(r)?;
        let kind = r.kind();
        let (ns, name) = (r.metadata().namespace.clone(), r.name().to_string());
        let current = self.must_get(kind, &ns, &name)?;
        let given = r.metadata().resource_version.clone();
        if !given.is_empty() && given != current.metadata().resource_version {
            return Err(ResourceError::OutOfDate {
                given,
                latest: current.metadata().resource_version.clone(),
            });
        }
        if let (Resource::IPPool(old), Resource::IPPool(new)) = (&current, r) {
            validate_ippool_update(old, new)?;
        }
        let mut out = r.clone();
        let mut meta = current.metadata().clone();
        meta.labels = r.metadata().labels.clone();
        meta.annotations = r.metadata().annotations.clone();
        *out.metadata_mut() = meta;
        // After the metadata merge: defaults may set labels (a policy's tier label).
        apply_defaults(&mut out);
        let expected = parse_revision(&current.metadata().resource_version).unwrap_or_default();
        let key = resource_key(kind, &ns, &name);
        let written = if kind == Kind::IPPool {
            pools::write_at(&*self.store, &name, &key, Some(&encode(&out)), expected)?
        } else {
            match self.store.update(&key, &encode(&out), expected) {
                Ok(rev) => Ok(rev),
                Err(e) if e.is_not_found() => Err(None),
                Err(e) if e.is_conflict() => Err(Some(0)),
                Err(e) => return Err(e.into()),
            }
        };
        match written {
            Ok(rev) => {
                out.metadata_mut().resource_version = rev.to_string();
                Ok(out)
            }
            Err(None) => Err(ResourceError::NotFound(out.identifier())),
            Err(Some(_)) => Err(ResourceError::Conflict(out.identifier())),
        }
    }

    /// Creates, or replaces when it already exists (calicoctl `apply`).
    pub fn apply(&self, r: &Resource) -> Result<Resource> {
        if r.kind() == Kind::ClusterInformation {
            return Err(ResourceError::ReadOnly {
                op: "apply",
                kind: Kind::ClusterInformation,
            });
        }
        let mut fresh = r.clone();
        fresh.metadata_mut().resource_version.clear();
        match self.create(&fresh) {
            Err(ResourceError::AlreadyExists(_)) => self.update(r),
            other => other,
        }
    }

    /// Deletes a resource (only at `resource_version` when one is given); returns what was
    /// deleted.
    pub fn delete(
        &self,
        kind: Kind,
        namespace: &str,
        name: &str,
        resource_version: &str,
    ) -> Result<Resource> {
        if kind == Kind::ClusterInformation {
            return Err(ResourceError::ReadOnly { op: "delete", kind });
        }
        self.refuse_default_allow("delete", kind, name)?;
        if kind == Kind::Tier {
            self.check_tier_delete(name)?;
        }
        let key = resource_key(kind, namespace, name);
        let Some(kv) = self.store.get(&key)? else {
            return Err(ResourceError::NotFound(identifier(kind, namespace, name)));
        };
        let current = match decode(kind, &key, &kv.value, kv.revision) {
            Ok(r) => r,
            // A row that does not decode is still deleted by name; what is returned of it is its
            // name and revision.
            Err(ResourceError::Corrupt(..)) => {
                let mut meta = if kind.namespaced() {
                    ObjectMeta::namespaced(namespace, name)
                } else {
                    ObjectMeta::named(name)
                };
                meta.resource_version = kv.revision.to_string();
                Resource::with_metadata(kind, meta)
            }
            Err(e) => return Err(e),
        };
        if !resource_version.is_empty() && resource_version != current.metadata().resource_version {
            return Err(ResourceError::OutOfDate {
                given: resource_version.to_string(),
                latest: current.metadata().resource_version.clone(),
            });
        }
        let expected = Some(kv.revision);
        let deleted = match (kind, expected) {
            (Kind::IPPool, Some(rev)) => pools::write_at(&*self.store, name, &key, None, rev)?.map(drop),
            _ => match self.store.delete(&key, expected) {
                Ok(_) => Ok(()),
                Err(e) if e.is_not_found() => Err(None),
                Err(e) if e.is_conflict() => Err(Some(0)),
                Err(e) => return Err(e.into()),
            },
        };
        match deleted {
            Ok(()) => Ok(current),
            Err(None) => Err(ResourceError::NotFound(identifier(kind, namespace, name))),
            Err(Some(_)) => Err(ResourceError::Conflict(identifier(kind, namespace, name))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uids_are_v4() {
        let u = new_uid();
        assert_eq!(u.len(), 36);
        assert_eq!(&u[14..15], "4");
        assert!(matches!(&u[19..20], "8" | "9" | "a" | "b"));
        assert_ne!(u, new_uid());
    }
}
