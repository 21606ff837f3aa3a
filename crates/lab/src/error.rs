//! What can go wrong in a lab, each naming the object involved.

use std::path::PathBuf;

/// Result alias for lab operations.
pub type Result<T> = std::result::Result<T, Error>;

/// Lab errors. Messages are lower-case and name the lab, namespace, process or file involved.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Network namespaces, veths and daemons on port 179 need root.
    #[error("brindle lab needs root (network namespaces); run it with sudo")]
    NotRoot,
    /// The lab name is already used on this machine (a state directory or a namespace exists).
    #[error("lab {name}: name in use: {detail}")]
    NameInUse { name: String, detail: String },
    /// No lab of that name (no state file).
    #[error("lab {name}: no such lab (no state file at {})", path.display())]
    NoSuchLab { name: String, path: PathBuf },
    /// A command or package the lab needs is missing.
    #[error("`{command}` not found: install it with `apt-get install -y {package}`")]
    Missing { command: String, package: String },
    /// The options make no lab (too many nodes, a bad name, …).
    #[error("invalid lab option: {0}")]
    Invalid(String),
    /// A step of building or tearing down failed.
    #[error("{what}: {detail}")]
    Step { what: String, detail: String },
    /// A file of the lab could not be read or written.
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// Netlink refused an operation in one of the lab's namespaces.
    #[error(transparent)]
    Netlink(#[from] brindle_netlink::Error),
    /// Teardown went on after failures; each is listed.
    #[error("lab {name}: teardown incomplete:\n  {}", errors.join("\n  "))]
    Teardown { name: String, errors: Vec<String> },
}

impl Error {
    pub(crate) fn step(what: impl Into<String>, detail: impl std::fmt::Display) -> Error {
        Error::Step {
            what: what.into(),
            detail: detail.to_string(),
        }
    }

    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Error {
        Error::Io {
            path: path.into(),
            source,
        }
    }
}
