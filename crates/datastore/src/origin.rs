//! Where each datastore setting came from (a flag, a key of a configuration file, an
//! environment variable, or the default), so that every error about the datastore can say why
//! that store was chosen: a mistyped path or a stray `ETCD_ENDPOINTS` is then obvious.

use std::fmt;

/// The origin of one setting.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    /// A command-line flag (`--datastore-path`).
    Flag(String),
    /// A key of a configuration file: `spec.datastorePath` of calicoctl's
    /// `/etc/calico/calicoctl.cfg`, `datastore_path` of the CNI network configuration.
    File { path: String, key: String },
    /// An environment variable.
    Env(String),
    /// Nothing set it.
    Default,
}

impl Source {
    pub fn flag(name: &str) -> Source {
        Source::Flag(name.to_string())
    }

    pub fn file(path: impl fmt::Display, key: &str) -> Source {
        Source::File {
            path: path.to_string(),
            key: key.to_string(),
        }
    }

    pub fn env(name: &str) -> Source {
        Source::Env(name.to_string())
    }

    /// `NAME=value`, as an error message quotes a bad value with its origin.
    pub fn quote(&self, value: &str) -> String {
        match self {
            Source::Flag(f) => format!("{f}={value}"),
            Source::File { path, key } => format!("{key}={value} in {path}"),
            Source::Env(v) => format!("{v}={value}"),
            Source::Default => format!("{value} (the default)"),
        }
    }
}

impl fmt::Display for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Source::Flag(name) => write!(f, "flag {name}"),
            Source::File { path, key } => write!(f, "{key} in {path}"),
            Source::Env(name) => write!(f, "environment variable {name}"),
            Source::Default => f.write_str("the default"),
        }
    }
}

/// A value and where it came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Setting<T> {
    pub value: T,
    pub source: Source,
}

impl<T> Setting<T> {
    pub fn new(value: impl Into<T>, source: Source) -> Setting<T> {
        Setting {
            value: value.into(),
            source,
        }
    }
}

/// Where the chosen store came from: its type, and its location (the SQLite file or the etcd
/// endpoints).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Origin {
    pub kind: Source,
    pub location: Source,
}

impl Origin {
    /// `path from flag --datastore-path`, `endpoints from ETCD_ENDPOINTS, type from …`: what a
    /// message about the store appends.
    pub fn explain(&self, sqlite: bool) -> String {
        let what = if sqlite { "path" } else { "endpoints" };
        if self.kind == self.location || self.kind == Source::Default {
            format!("{what} from {}", self.location)
        } else {
            format!("{what} from {}, type from {}", self.location, self.kind)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn says_where_it_came_from() {
        assert_eq!(
            Source::flag("--datastore-path").to_string(),
            "flag --datastore-path"
        );
        assert_eq!(
            Source::file("/etc/calico/calicoctl.cfg", "spec.datastorePath").to_string(),
            "spec.datastorePath in /etc/calico/calicoctl.cfg"
        );
        assert_eq!(Source::env("ETCD_ENDPOINTS").quote("x"), "ETCD_ENDPOINTS=x");
        let o = Origin {
            kind: Source::env("DATASTORE_TYPE"),
            location: Source::env("ETCD_ENDPOINTS"),
        };
        assert_eq!(
            o.explain(false),
            "endpoints from environment variable ETCD_ENDPOINTS, type from environment variable DATASTORE_TYPE"
        );
        let o = Origin {
            kind: Source::Default,
            location: Source::Default,
        };
        assert_eq!(o.explain(true), "path from the default");
    }
}
