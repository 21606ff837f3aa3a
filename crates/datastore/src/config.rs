//! Which datastore to use and how to reach it, from flags and environment, and [`open`].
//!
//! Environment names are Calico's where Calico has one (`DATASTORE_TYPE`, `ETCD_ENDPOINTS`,
//! `ETCD_CA_CERT_FILE`, `ETCD_CERT_FILE`, `ETCD_KEY_FILE`, `ETCD_USERNAME`, `ETCD_PASSWORD`) and
//! Brindle's otherwise (`BRINDLE_DATASTORE_TYPE`, `BRINDLE_DATASTORE_PATH`). Precedence, highest
//! first: explicit [`Overrides`] (the CLI's flags), `BRINDLE_*`, Calico's names, defaults.

use std::fmt;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use crate::origin::{Origin, Setting, Source};
use crate::{Datastore, Error, Result};

/// Where the embedded store lives unless told otherwise.
pub const DEFAULT_SQLITE_PATH: &str = "/var/lib/brindle/brindle.db";
/// calicoctl's default etcd endpoint.
pub const DEFAULT_ETCD_ENDPOINT: &str = "http://127.0.0.1:2379";

/// The store to open.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DatastoreConfig {
    /// An SQLite file shared by every process on this host (the default).
    Sqlite(SqliteConfig),
    /// An etcd v3 cluster (`DATASTORE_TYPE=etcdv3`).
    Etcd(EtcdConfig),
}

/// `fsync` policy of the SQLite store (`PRAGMA synchronous`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Synchronous {
    /// Durable against process crashes; a power loss may drop the last commits (see
    /// `sqlite/schema.rs` for why that is the right default here).
    #[default]
    Normal,
    /// `fsync` on every commit: durable against power loss, but one disk flush per commit
    /// (10–50× fewer commits per second here; see the datastore benchmark).
    Full,
}

/// Settings of the SQLite backend.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SqliteConfig {
    /// The database file (created 0600, its directory 0700, when missing).
    pub path: PathBuf,
    pub synchronous: Synchronous,
    /// How many revisions of change history are kept for watchers to resume from; a watch from
    /// an older revision gets [`Error::Compacted`].
    pub retain_events: u64,
    /// How long a write waits for other processes' transactions before giving up with
    /// [`Error::Unavailable`].
    pub busy_timeout: Duration,
    /// How often a process with watches checks for other processes' commits (one cheap
    /// check per interval per process, whatever the number of watches); changes made by
    /// another process reach watchers within about this long.
    pub watch_poll_interval: Duration,
    /// Create the file (and its directory) when missing. Off for read-only commands, so a
    /// mistyped path is an error instead of a new empty database.
    pub create: bool,
}

impl SqliteConfig {
    pub fn new(path: impl Into<PathBuf>) -> SqliteConfig {
        SqliteConfig {
            path: path.into(),
            synchronous: Synchronous::Normal,
            retain_events: 10_000,
            busy_timeout: Duration::from_secs(10),
            watch_poll_interval: Duration::from_millis(5),
            create: true,
        }
    }
}

/// Settings of the etcd v3 backend.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EtcdConfig {
    /// Client URLs, `http://host:port` or `https://host:port`.
    pub endpoints: Vec<String>,
    /// CA bundle (PEM) the server certificates are checked against.
    pub ca_file: Option<PathBuf>,
    /// Client certificate and key (PEM), for servers with `--client-cert-auth`.
    pub cert_file: Option<PathBuf>,
    pub key_file: Option<PathBuf>,
    /// User and password, for servers with authentication enabled.
    pub username: Option<String>,
    pub password: Option<Secret>,
    /// Bound on establishing a connection (also for the first contact in [`open`]).
    pub connect_timeout: Duration,
    /// Bound on each request; past it the call fails with [`Error::Unavailable`].
    pub request_timeout: Duration,
}

impl EtcdConfig {
    pub fn new<S: Into<String>>(endpoints: impl IntoIterator<Item = S>) -> EtcdConfig {
        EtcdConfig {
            endpoints: endpoints.into_iter().map(Into::into).collect(),
            ca_file: None,
            cert_file: None,
            key_file: None,
            username: None,
            password: None,
            connect_timeout: Duration::from_secs(5),
            request_timeout: Duration::from_secs(10),
        }
    }
}

/// A password; `Debug` does not show it.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(pub String);

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(***)")
    }
}

/// Values given explicitly (the CLI's flags and connection file, the CNI network
/// configuration), each with where it came from; each wins over the environment.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Overrides {
    /// `sqlite`, `etcdv3` (or `kubernetes`, which is refused).
    pub datastore_type: Option<Setting<String>>,
    pub sqlite_path: Option<Setting<PathBuf>>,
    /// Comma-separated, like `ETCD_ENDPOINTS`.
    pub etcd_endpoints: Option<Setting<String>>,
    pub etcd_ca_file: Option<Setting<PathBuf>>,
    pub etcd_cert_file: Option<Setting<PathBuf>>,
    pub etcd_key_file: Option<Setting<PathBuf>>,
    pub etcd_username: Option<Setting<String>>,
    pub etcd_password: Option<Setting<String>>,
}

/// The store name used in configuration errors (no store has been chosen yet).
const CONFIG: &str = "datastore configuration";

fn config_error(detail: String) -> Error {
    Error::Config {
        store: CONFIG.into(),
        detail,
    }
}

impl DatastoreConfig {
    /// The SQLite store at `path` with default settings.
    pub fn sqlite(path: impl Into<PathBuf>) -> DatastoreConfig {
        DatastoreConfig::Sqlite(SqliteConfig::new(path))
    }

    /// The etcd store at `endpoints`, no TLS.
    pub fn etcd<S: Into<String>>(endpoints: impl IntoIterator<Item = S>) -> DatastoreConfig {
        DatastoreConfig::Etcd(EtcdConfig::new(endpoints))
    }

    /// The configuration from the process environment alone.
    pub fn from_env() -> Result<DatastoreConfig> {
        Self::resolve(&Overrides::default(), |name| std::env::var(name).ok())
    }

    /// [`DatastoreConfig::resolve_with_origin`] without the origin.
    pub fn resolve(overrides: &Overrides, env: impl Fn(&str) -> Option<String>) -> Result<DatastoreConfig> {
        Self::resolve_with_origin(overrides, env).map(|(c, _)| c)
    }

    /// The configuration from `overrides`, then the environment as read by `env` (empty values
    /// count as unset), then defaults, and where its type and location came from. Without any
    /// type given, setting etcd endpoints selects etcd (calicoctl's default type is etcdv3);
    /// otherwise SQLite. Errors quote the bad value with its origin.
    pub fn resolve_with_origin(
        overrides: &Overrides,
        env: impl Fn(&str) -> Option<String>,
    ) -> Result<(DatastoreConfig, Origin)> {
        let env = |name: &str| -> Option<Setting<String>> {
            env(name)
                .filter(|v| !v.trim().is_empty())
                .map(|v| Setting::new(v, Source::env(name)))
        };
        let env_path = |name: &str| -> Option<Setting<PathBuf>> {
            env(name).map(|s| Setting::new(PathBuf::from(s.value), s.source))
        };
        let endpoints = overrides.etcd_endpoints.clone().or_else(|| env("ETCD_ENDPOINTS"));
        let kind = overrides
            .datastore_type
            .clone()
            .or_else(|| env("BRINDLE_DATASTORE_TYPE"))
            .or_else(|| env("DATASTORE_TYPE"));
        let (etcd, kind_source) = match &kind {
            None => (
                endpoints.is_some(),
                endpoints.as_ref().map_or(Source::Default, |e| e.source.clone()),
            ),
            Some(k) => match k.value.trim() {
                "sqlite" => (false, k.source.clone()),
                "etcdv3" => (true, k.source.clone()),
                "kubernetes" => {
                    return Err(config_error(format!(
                        "{}: the kubernetes datastore is not supported by Brindle; use etcdv3 or sqlite",
                        k.source.quote(&k.value)
                    )));
                }
                _ => {
                    return Err(config_error(format!(
                        "{}: unknown datastore type (expected sqlite or etcdv3)",
                        k.source.quote(&k.value)
                    )));
                }
            },
        };
        if !etcd {
            let path = overrides
                .sqlite_path
                .clone()
                .or_else(|| env_path("BRINDLE_DATASTORE_PATH"))
                .unwrap_or_else(|| Setting::new(PathBuf::from(DEFAULT_SQLITE_PATH), Source::Default));
            let origin = Origin {
                kind: kind_source,
                location: path.source,
            };
            return Ok((DatastoreConfig::sqlite(path.value), origin));
        }
        let endpoints = endpoints.unwrap_or_else(|| Setting::new(DEFAULT_ETCD_ENDPOINT, Source::Default));
        let list = &endpoints.value;
        let parsed: Vec<String> = list
            .split(',')
            .map(str::trim)
            .filter(|e| !e.is_empty())
            .map(str::to_string)
            .collect();
        if parsed.is_empty() {
            return Err(config_error(format!(
                "{}: no endpoint given",
                endpoints.source.quote(list)
            )));
        }
        if let Some(bad) = parsed
            .iter()
            .find(|e| !(e.starts_with("http://") || e.starts_with("https://")))
        {
            return Err(config_error(format!(
                "{}: endpoint {bad} must start with http:// or https://",
                endpoints.source.quote(list)
            )));
        }
        let path = |over: &Option<Setting<PathBuf>>, name: &str| over.clone().or_else(|| env_path(name));
        let mut cfg = EtcdConfig::new(parsed);
        let cert = path(&overrides.etcd_cert_file, "ETCD_CERT_FILE");
        let key = path(&overrides.etcd_key_file, "ETCD_KEY_FILE");
        cfg.ca_file = path(&overrides.etcd_ca_file, "ETCD_CA_CERT_FILE").map(|s| s.value);
        match (&cert, &key) {
            (Some(c), None) => {
                return Err(config_error(format!(
                    "a client certificate needs both ETCD_CERT_FILE and ETCD_KEY_FILE: the certificate comes from {}, no key is set",
                    c.source
                )));
            }
            (None, Some(k)) => {
                return Err(config_error(format!(
                    "a client certificate needs both ETCD_CERT_FILE and ETCD_KEY_FILE: the key comes from {}, no certificate is set",
                    k.source
                )));
            }
            _ => {}
        }
        cfg.cert_file = cert.map(|s| s.value);
        cfg.key_file = key.map(|s| s.value);
        cfg.username = overrides
            .etcd_username
            .clone()
            .or_else(|| env("ETCD_USERNAME"))
            .map(|s| s.value);
        let password = overrides.etcd_password.clone().or_else(|| env("ETCD_PASSWORD"));
        if let (Some(p), None) = (&password, &cfg.username) {
            return Err(config_error(format!(
                "ETCD_PASSWORD is set without ETCD_USERNAME (the password comes from {})",
                p.source
            )));
        }
        cfg.password = password.map(|s| Secret(s.value));
        let origin = Origin {
            kind: kind_source,
            location: endpoints.source,
        };
        Ok((DatastoreConfig::Etcd(cfg), origin))
    }

    /// The same store, opened without creating anything: a missing SQLite file is an error
    /// (read-only commands use this; etcd is never created by a client anyway).
    pub fn existing_only(mut self) -> DatastoreConfig {
        if let DatastoreConfig::Sqlite(c) = &mut self {
            c.create = false;
        }
        self
    }

    /// The store as [`Datastore::describe`] names it: `sqlite:<path>` or `etcdv3:<endpoints>`.
    pub fn describe(&self) -> String {
        match self {
            DatastoreConfig::Sqlite(c) => format!("sqlite:{}", c.path.display()),
            DatastoreConfig::Etcd(c) => format!("etcdv3:{}", c.endpoints.join(",")),
        }
    }
}

/// Opens the configured store. For SQLite this creates the file (and its directory) if missing
/// (unless [`SqliteConfig::create`] is off) and checks it is a Brindle database; for etcd it connects and checks the cluster answers
/// within the connect timeout.
pub fn open(config: &DatastoreConfig) -> Result<Arc<dyn Datastore>> {
    Ok(match config {
        DatastoreConfig::Sqlite(c) => Arc::new(crate::SqliteStore::open(c)?),
        DatastoreConfig::Etcd(c) => Arc::new(crate::EtcdStore::open(c)?),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn resolve(over: &Overrides, vars: &[(&str, &str)]) -> Result<DatastoreConfig> {
        let map: HashMap<String, String> = vars.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        DatastoreConfig::resolve(over, |k| map.get(k).cloned())
    }

    #[test]
    fn sqlite_is_the_default() {
        assert_eq!(
            resolve(&Overrides::default(), &[]).unwrap(),
            DatastoreConfig::sqlite(DEFAULT_SQLITE_PATH)
        );
        assert_eq!(
            resolve(&Overrides::default(), &[("BRINDLE_DATASTORE_PATH", "/tmp/x.db")]).unwrap(),
            DatastoreConfig::sqlite("/tmp/x.db")
        );
    }

    #[test]
    fn calico_environment_selects_etcd() {
        let cfg = resolve(
            &Overrides::default(),
            &[
                ("DATASTORE_TYPE", "etcdv3"),
                ("ETCD_ENDPOINTS", "https://10.0.0.1:2379, https://10.0.0.2:2379"),
                ("ETCD_CA_CERT_FILE", "/etc/ca.pem"),
                ("ETCD_CERT_FILE", "/etc/cert.pem"),
                ("ETCD_KEY_FILE", "/etc/key.pem"),
            ],
        )
        .unwrap();
        let DatastoreConfig::Etcd(e) = cfg else {
            panic!("expected etcd, got {cfg:?}")
        };
        assert_eq!(e.endpoints, ["https://10.0.0.1:2379", "https://10.0.0.2:2379"]);
        assert_eq!(e.ca_file.as_deref(), Some("/etc/ca.pem".as_ref()));
        assert_eq!(e.cert_file.as_deref(), Some("/etc/cert.pem".as_ref()));
        assert_eq!(e.key_file.as_deref(), Some("/etc/key.pem".as_ref()));
    }

    #[test]
    fn etcd_without_endpoints_uses_calicoctl_default() {
        let cfg = resolve(&Overrides::default(), &[("DATASTORE_TYPE", "etcdv3")]).unwrap();
        assert_eq!(cfg, DatastoreConfig::etcd([DEFAULT_ETCD_ENDPOINT]));
        // Endpoints alone imply etcd, as calicoctl's default type is etcdv3.
        let cfg = resolve(&Overrides::default(), &[("ETCD_ENDPOINTS", "http://e:2379")]).unwrap();
        assert_eq!(cfg, DatastoreConfig::etcd(["http://e:2379"]));
    }

    #[test]
    fn brindle_names_win_over_calico_names_and_flags_win_over_both() {
        let vars = [("DATASTORE_TYPE", "etcdv3"), ("BRINDLE_DATASTORE_TYPE", "sqlite")];
        assert!(matches!(
            resolve(&Overrides::default(), &vars).unwrap(),
            DatastoreConfig::Sqlite(_)
        ));
        let over = Overrides {
            datastore_type: Some(Setting::new("etcdv3", Source::flag("--datastore-type"))),
            etcd_endpoints: Some(Setting::new("http://flag:2379", Source::flag("--etcd-endpoints"))),
            ..Default::default()
        };
        assert_eq!(
            resolve(&over, &vars).unwrap(),
            DatastoreConfig::etcd(["http://flag:2379"])
        );
        let over = Overrides {
            sqlite_path: Some(Setting::new("/flag.db", Source::flag("--datastore-path"))),
            ..Default::default()
        };
        let (cfg, origin) = DatastoreConfig::resolve_with_origin(&over, |k| {
            (k == "BRINDLE_DATASTORE_PATH").then(|| "/env.db".to_string())
        })
        .unwrap();
        assert_eq!(cfg, DatastoreConfig::sqlite("/flag.db"));
        assert_eq!(origin.explain(true), "path from flag --datastore-path");
        let over = Overrides {
            datastore_type: Some(Setting::new(
                "redis",
                Source::file("/etc/calico/calicoctl.cfg", "spec.datastoreType"),
            )),
            ..Default::default()
        };
        assert_eq!(
            resolve(&over, &[]).unwrap_err().to_string(),
            "datastore configuration: spec.datastoreType=redis in /etc/calico/calicoctl.cfg: unknown datastore type (expected sqlite or etcdv3)"
        );
    }

    #[test]
    fn kubernetes_and_unknown_types_are_refused_by_name() {
        let err = resolve(&Overrides::default(), &[("DATASTORE_TYPE", "kubernetes")]).unwrap_err();
        assert!(matches!(err, Error::Config { .. }), "{err:?}");
        assert_eq!(
            err.to_string(),
            "datastore configuration: DATASTORE_TYPE=kubernetes: the kubernetes datastore is not \
             supported by Brindle; use etcdv3 or sqlite"
        );
        let err = resolve(&Overrides::default(), &[("BRINDLE_DATASTORE_TYPE", "redis")]).unwrap_err();
        assert!(
            err.to_string()
                .contains("BRINDLE_DATASTORE_TYPE=redis: unknown datastore type")
        );
    }

    #[test]
    fn bad_etcd_settings_are_refused() {
        let err = resolve(&Overrides::default(), &[("ETCD_ENDPOINTS", "10.0.0.1:2379")]).unwrap_err();
        assert!(
            err.to_string()
                .contains("endpoint 10.0.0.1:2379 must start with http"),
            "{err}"
        );
        let err = resolve(
            &Overrides::default(),
            &[("ETCD_ENDPOINTS", "https://e:2379"), ("ETCD_CERT_FILE", "/c.pem")],
        )
        .unwrap_err();
        assert!(err.to_string().contains("ETCD_KEY_FILE"), "{err}");
        let err = resolve(&Overrides::default(), &[("ETCD_ENDPOINTS", " , ")]).unwrap_err();
        assert!(
            err.to_string().contains("ETCD_ENDPOINTS= , : no endpoint given"),
            "{err}"
        );
        // Whitespace-only counts as unset: the default endpoint applies.
        let cfg = resolve(
            &Overrides::default(),
            &[("DATASTORE_TYPE", "etcdv3"), ("ETCD_ENDPOINTS", "  ")],
        );
        assert_eq!(cfg.unwrap(), DatastoreConfig::etcd([DEFAULT_ETCD_ENDPOINT]));
    }

    #[test]
    fn password_is_not_printed() {
        let cfg = resolve(
            &Overrides::default(),
            &[
                ("ETCD_ENDPOINTS", "http://e:2379"),
                ("ETCD_USERNAME", "root"),
                ("ETCD_PASSWORD", "hunter2"),
            ],
        )
        .unwrap();
        assert!(!format!("{cfg:?}").contains("hunter2"));
    }
}
