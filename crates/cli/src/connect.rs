//! Choosing and opening the datastore: flags, then calicoctl's connection file (`--config`,
//! `BRINDLE_CONFIG`, or `/etc/calico/calicoctl.cfg` when it exists; `kind: CalicoAPIConfig`),
//! then the environment (resolved by `brindle_datastore::DatastoreConfig::resolve_with_origin`).
//! Every setting keeps where it came from, and every error about the store says it. Read-only
//! commands open with [`Access::ReadOnly`]: a missing SQLite file is an error naming the path
//! and its origin, never a new empty database.

use std::path::{Path, PathBuf};

use anyhow::{Context as _, Result, anyhow, bail};
use brindle_datastore::{DatastoreConfig, Origin, Overrides, Setting, Source};
use serde_json::Value;

use crate::args::{DEFAULT_CONFIG_PATH, DatastoreArgs};
use crate::client::Client;

/// The variable naming the connection file when `--config` is not given.
pub const CONFIG_ENV: &str = "BRINDLE_CONFIG";

/// Whether a command may create the store.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// `get`, `ipam show`, … : the store must exist.
    ReadOnly,
    /// Commands that write create an SQLite file that is not there yet.
    ReadWrite,
}

/// Parses a `CalicoAPIConfig` document (YAML or JSON). `datastorePath` is Brindle's addition
/// for the SQLite file.
pub fn parse_config_file(path: &Path, text: &str) -> Result<Overrides> {
    let v: Value =
        serde_norway::from_str(text).with_context(|| format!("{}: not YAML/JSON", path.display()))?;
    match v.get("kind").and_then(Value::as_str) {
        Some("CalicoAPIConfig") => {}
        Some(other) => bail!("{}: kind is {other:?}, expected CalicoAPIConfig", path.display()),
        None => bail!("{}: no kind (expected CalicoAPIConfig)", path.display()),
    }
    let spec = v.get("spec").cloned().unwrap_or(Value::Null);
    let s = |k: &str| {
        spec.get(k)
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
            .map(|v| Setting::new(v, Source::file(path.display(), &format!("spec.{k}"))))
    };
    let p = |k: &str| s(k).map(|v| Setting::new(PathBuf::from(v.value), v.source));
    Ok(Overrides {
        datastore_type: s("datastoreType"),
        sqlite_path: p("datastorePath"),
        etcd_endpoints: s("etcdEndpoints"),
        etcd_ca_file: p("etcdCACertFile"),
        etcd_cert_file: p("etcdCertFile"),
        etcd_key_file: p("etcdKeyFile"),
        etcd_username: s("etcdUsername"),
        etcd_password: s("etcdPassword"),
    })
}

/// The connection file to read and where its name came from; `None` for the default path
/// when it does not exist (calicoctl then uses the environment alone).
fn config_file(args: &DatastoreArgs, env: &dyn Fn(&str) -> Option<String>) -> Option<(PathBuf, Source)> {
    if let Some(p) = &args.config {
        return Some((p.clone(), Source::flag("--config")));
    }
    if let Some(p) = env(CONFIG_ENV).filter(|p| !p.trim().is_empty()) {
        return Some((PathBuf::from(p), Source::env(CONFIG_ENV)));
    }
    let default = PathBuf::from(DEFAULT_CONFIG_PATH);
    default.exists().then_some((default, Source::Default))
}

/// The explicit settings: flags first, the connection file second.
pub fn overrides(args: &DatastoreArgs, env: &dyn Fn(&str) -> Option<String>) -> Result<Overrides> {
    let file = match config_file(args, env) {
        None => Overrides::default(),
        Some((path, source)) => match std::fs::read_to_string(&path) {
            Ok(text) => parse_config_file(&path, &text)?,
            // A named file must be there; the default one is optional.
            Err(e) if e.kind() == std::io::ErrorKind::NotFound && source == Source::Default => {
                Overrides::default()
            }
            Err(e) => bail!(
                "datastore connection file {} (from {source}): {e}",
                path.display()
            ),
        },
    };
    let flag = |v: &Option<String>, name: &str| v.clone().map(|v| Setting::new(v, Source::flag(name)));
    let flag_path = |v: &Option<PathBuf>, name: &str| v.clone().map(|v| Setting::new(v, Source::flag(name)));
    Ok(Overrides {
        datastore_type: flag(&args.datastore_type, "--datastore-type").or(file.datastore_type),
        sqlite_path: flag_path(&args.datastore_path, "--datastore-path").or(file.sqlite_path),
        etcd_endpoints: flag(&args.etcd_endpoints, "--etcd-endpoints").or(file.etcd_endpoints),
        etcd_ca_file: flag_path(&args.etcd_cafile, "--etcd-cafile").or(file.etcd_ca_file),
        etcd_cert_file: flag_path(&args.etcd_certfile, "--etcd-certfile").or(file.etcd_cert_file),
        etcd_key_file: flag_path(&args.etcd_keyfile, "--etcd-keyfile").or(file.etcd_key_file),
        etcd_username: file.etcd_username,
        etcd_password: file.etcd_password,
    })
}

/// The datastore configuration from flags, file and environment, and where it came from.
pub fn config(args: &DatastoreArgs) -> Result<(DatastoreConfig, Origin)> {
    let env = |name: &str| std::env::var(name).ok();
    let over = overrides(args, &env)?;
    Ok(DatastoreConfig::resolve_with_origin(&over, env)?)
}

/// Opens `cfg`; a failure names the store and where its settings came from.
pub fn open_config(cfg: DatastoreConfig, origin: &Origin, access: Access) -> Result<Client> {
    let sqlite = matches!(cfg, DatastoreConfig::Sqlite(_));
    let cfg = match access {
        Access::ReadOnly => cfg.existing_only(),
        Access::ReadWrite => cfg,
    };
    let store = brindle_datastore::open(&cfg).map_err(|e| anyhow!("{e} ({})", origin.explain(sqlite)))?;
    Ok(Client::new(store))
}

/// Opens the configured datastore.
pub fn open(args: &DatastoreArgs, access: Access) -> Result<Client> {
    let (cfg, origin) = config(args)?;
    open_config(cfg, &origin, access)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn calicoctl_cfg() {
        let text = "apiVersion: projectcalico.org/v3\nkind: CalicoAPIConfig\nmetadata: {}\nspec:\n  datastoreType: etcdv3\n  etcdEndpoints: https://10.0.0.1:2379,https://10.0.0.2:2379\n  etcdCACertFile: /etc/ca.pem\n  etcdCertFile: /etc/c.pem\n  etcdKeyFile: /etc/k.pem\n";
        let f = parse_config_file(Path::new("c.cfg"), text).unwrap();
        assert_eq!(f.datastore_type.unwrap().value, "etcdv3");
        assert_eq!(
            f.etcd_endpoints.unwrap().value,
            "https://10.0.0.1:2379,https://10.0.0.2:2379"
        );
        assert_eq!(f.etcd_key_file.unwrap().value, PathBuf::from("/etc/k.pem"));
        let e = parse_config_file(Path::new("c.cfg"), "kind: IPPool\n").unwrap_err();
        assert!(e.to_string().contains("expected CalicoAPIConfig"), "{e}");
    }

    #[test]
    fn flags_win_over_file() {
        let dir = std::env::temp_dir().join(format!("brindle-cfg-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("calicoctl.cfg");
        std::fs::write(
            &path,
            "kind: CalicoAPIConfig\nspec:\n  datastoreType: etcdv3\n  etcdEndpoints: http://127.0.0.1:1\n",
        )
        .unwrap();
        let args = DatastoreArgs {
            datastore_type: Some("sqlite".into()),
            config: Some(path.clone()),
            ..DatastoreArgs::default()
        };
        let no_env = |_: &str| None;
        let o = overrides(&args, &no_env).unwrap();
        assert_eq!(o.datastore_type.unwrap().source, Source::flag("--datastore-type"));
        let e = o.etcd_endpoints.unwrap();
        assert_eq!(e.value, "http://127.0.0.1:1");
        assert_eq!(
            e.source.to_string(),
            format!("spec.etcdEndpoints in {}", path.display())
        );
        // BRINDLE_CONFIG names the file when --config does not.
        let env_cfg = |k: &str| (k == CONFIG_ENV).then(|| path.display().to_string());
        let o = overrides(&DatastoreArgs::default(), &env_cfg).unwrap();
        assert_eq!(o.etcd_endpoints.unwrap().value, "http://127.0.0.1:1");
        std::fs::remove_file(&path).unwrap();
        std::fs::remove_dir(&dir).unwrap();
        // A file named by flag or variable must exist.
        let missing = DatastoreArgs {
            config: Some(dir.join("nope.cfg")),
            ..DatastoreArgs::default()
        };
        let e = overrides(&missing, &no_env).unwrap_err().to_string();
        assert!(e.contains("nope.cfg (from flag --config)"), "{e}");
    }
}
