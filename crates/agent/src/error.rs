//! What can go wrong in the agent, each naming the object involved.

/// Result alias for the agent.
pub type Result<T> = std::result::Result<T, Error>;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A flag or environment variable has a value the agent cannot use.
    #[error("configuration: {0}")]
    Config(String),
    /// Startup could not complete (no address found, conflicting node IP, …).
    #[error("startup: {0}")]
    Startup(String),
    /// The datastore cannot be opened, read or written: retried with backoff, the agent keeps
    /// running (and reports not ready) meanwhile.
    #[error("datastore: {0}")]
    Datastore(String),
    /// The agent's control socket could not be served or reached.
    #[error("control socket {path}: {detail}")]
    Ctl { path: String, detail: String },
    #[error("{path}: {source}")]
    Io {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error(transparent)]
    Netlink(#[from] brindle_netlink::Error),
}

impl Error {
    pub(crate) fn io(path: impl std::fmt::Display, source: std::io::Error) -> Error {
        Error::Io {
            path: path.to_string(),
            source,
        }
    }
}
