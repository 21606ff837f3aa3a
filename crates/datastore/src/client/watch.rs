//! Typed watches of one resource kind: the store's [`Watch`] with each event decoded.

use std::time::Duration;

use brindle_model::keys::{Key, resource_prefix};
use brindle_model::{Kind, Resource};

use super::{Client, ResourceError, Result, decode};
use crate::{EventKind, Revision, Watch, WatchEvent};

/// A change to a resource.
#[derive(Debug, Clone, PartialEq)]
pub enum ResourceEvent {
    /// Created or updated: the resource as stored, with its `resourceVersion`.
    Put(Box<Resource>),
    /// Deleted, at `revision`.
    Delete {
        kind: Kind,
        namespace: String,
        name: String,
        revision: Revision,
    },
}

impl ResourceEvent {
    /// The store revision of the change (resume a watch from this + 1).
    pub fn revision(&self) -> Revision {
        match self {
            ResourceEvent::Put(r) => r.metadata().resource_version.parse().unwrap_or_default(),
            ResourceEvent::Delete { revision, .. } => *revision,
        }
    }
}

/// A live watch of one kind. Items are as [`Watch`]'s: `Err` with a compacted store error means
/// "list again"; other errors are reports, the watch goes on.
pub struct ResourceWatch {
    kind: Kind,
    inner: Watch,
}

impl ResourceWatch {
    fn convert(&self, item: crate::Result<WatchEvent>) -> Result<ResourceEvent> {
        let ev = item?;
        match ev.kind {
            EventKind::Put => {
                let value = ev.value.unwrap_or_default();
                decode(self.kind, &ev.key, &value, ev.revision).map(|r| ResourceEvent::Put(Box::new(r)))
            }
            EventKind::Delete => match Key::parse(&ev.key) {
                Ok(Key::Resource {
                    kind,
                    namespace,
                    name,
                }) if kind == self.kind => Ok(ResourceEvent::Delete {
                    kind,
                    namespace,
                    name,
                    revision: ev.revision,
                }),
                Ok(other) => Err(ResourceError::Corrupt(
                    ev.key,
                    self.kind,
                    format!("the key is not a {} key ({other:?})", self.kind),
                )),
                Err(e) => Err(ResourceError::Corrupt(ev.key, self.kind, e.to_string())),
            },
        }
    }

    /// Waits for the next event. `None` when the watch has ended.
    pub fn recv(&self) -> Option<Result<ResourceEvent>> {
        self.inner.recv().map(|item| self.convert(item))
    }

    /// Waits up to `timeout`. `Ok(None)` on timeout, `Err(())` when the watch has ended.
    #[allow(clippy::result_unit_err)]
    pub fn recv_timeout(&self, timeout: Duration) -> std::result::Result<Option<Result<ResourceEvent>>, ()> {
        Ok(self.inner.recv_timeout(timeout)?.map(|item| self.convert(item)))
    }
}

impl Client {
    /// Watches every resource of `kind` (in one namespace, or all with `None`) from store
    /// revision `from` (0: from now). The usual pattern: `list`, then watch from its
    /// revision + 1.
    pub fn watch(&self, kind: Kind, namespace: Option<&str>, from: Revision) -> Result<ResourceWatch> {
        let inner = self.store.watch(&resource_prefix(kind, namespace), from)?;
        Ok(ResourceWatch { kind, inner })
    }
}
