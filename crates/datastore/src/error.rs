use crate::Revision;

/// Result alias for datastore operations.
pub type Result<T> = std::result::Result<T, Error>;

/// Datastore errors. Each names the store (its [`Datastore::describe`](crate::Datastore::describe)
/// text) and, where there is one, the key.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The key does not exist (get on a missing key is `Ok(None)`; this is for update/delete).
    #[error("{store}: key {key} does not exist")]
    NotFound { store: String, key: String },
    /// `create` on a key that already exists.
    #[error("{store}: key {key} already exists")]
    AlreadyExists { store: String, key: String },
    /// Compare-and-swap failed: the key's revision is not the expected one.
    #[error("{store}: update conflict on {key}: expected revision {expected}, found {actual}")]
    Conflict {
        store: String,
        key: String,
        expected: Revision,
        actual: Revision,
    },
    /// A watch asked for a revision older than the store still keeps.
    #[error("{store}: revision {requested} of {prefix} has been compacted (oldest kept: {oldest})")]
    Compacted {
        store: String,
        prefix: String,
        requested: Revision,
        oldest: Revision,
    },
    /// The store cannot be reached or opened (connection refused, timeout, permission denied).
    #[error("{store}: unavailable: {detail}")]
    Unavailable { store: String, detail: String },
    /// The store holds data it cannot read (corrupt file, value that is not what the key says).
    #[error("{store}: corrupt data{}: {detail}", key.as_deref().map(|k| format!(" at {k}")).unwrap_or_default())]
    Corrupt {
        store: String,
        key: Option<String>,
        detail: String,
    },
    /// The configuration cannot be used (unsupported datastore type, unreadable TLS file, bad
    /// endpoint URL). Nothing was contacted.
    #[error("{store}: {detail}")]
    Config { store: String, detail: String },
    /// Any other backend failure, with the key involved if any.
    #[error("{store}: {op}{}: {detail}", key.as_deref().map(|k| format!(" {k}")).unwrap_or_default())]
    Backend {
        store: String,
        op: &'static str,
        key: Option<String>,
        detail: String,
    },
}

impl Error {
    /// True for a compare-and-swap conflict or a create that lost a race: the caller should
    /// re-read and retry.
    pub fn is_conflict(&self) -> bool {
        matches!(self, Error::Conflict { .. } | Error::AlreadyExists { .. })
    }

    /// True when the key was missing.
    pub fn is_not_found(&self) -> bool {
        matches!(self, Error::NotFound { .. })
    }

    /// True when a watch asked for (or fell behind to) a compacted revision: the caller must
    /// list again and watch from the listing's revision + 1.
    pub fn is_compacted(&self) -> bool {
        matches!(self, Error::Compacted { .. })
    }

    /// True when the store could not be reached; retrying later may succeed.
    pub fn is_unavailable(&self) -> bool {
        matches!(self, Error::Unavailable { .. })
    }
}
