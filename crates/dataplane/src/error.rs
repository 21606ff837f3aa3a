//! Dataplane errors.

/// A dataplane failure, naming the object.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Netlink(#[from] brindle_netlink::Error),
    /// The kernel cannot do what the pool configuration demands (a startup error).
    #[error("unsupported: {0}")]
    Unsupported(String),
    /// An object exists in a form Brindle must not overwrite.
    #[error("{0}")]
    Conflict(String),
    /// BPF program loading or map access.
    #[error("bpf: {0}")]
    Bpf(String),
}
