//! Choosing and opening the datastore: flags, then calicoctl's connection file
//! (`/etc/calico/calicoctl.cfg`, `kind: CalicoAPIConfig`, used when it exists), then the
//! environment (resolved by `brindle_datastore::DatastoreConfig::resolve`).

use std::path::{Path, PathBuf};

use anyhow::{Context as _, Result, bail};
use brindle_datastore::{DatastoreConfig, Overrides};
use serde_json::Value;

use crate::args::DatastoreArgs;
use crate::client::Client;

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
            .map(str::to_string)
    };
    Ok(Overrides {
        datastore_type: s("datastoreType"),
        sqlite_path: s("datastorePath").map(PathBuf::from),
        etcd_endpoints: s("etcdEndpoints"),
        etcd_ca_file: s("etcdCACertFile").map(PathBuf::from),
        etcd_cert_file: s("etcdCertFile").map(PathBuf::from),
        etcd_key_file: s("etcdKeyFile").map(PathBuf::from),
        etcd_username: s("etcdUsername"),
        etcd_password: s("etcdPassword"),
    })
}

/// The explicit settings: flags first, the connection file (if it exists) second.
pub fn overrides(args: &DatastoreArgs) -> Result<Overrides> {
    let file = match std::fs::read_to_string(&args.config) {
        Ok(text) => parse_config_file(&args.config, &text)?,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Overrides::default(),
        Err(e) => return Err(e).with_context(|| format!("reading {}", args.config.display())),
    };
    Ok(Overrides {
        datastore_type: args.datastore_type.clone().or(file.datastore_type),
        sqlite_path: args.datastore_path.clone().or(file.sqlite_path),
        etcd_endpoints: args.etcd_endpoints.clone().or(file.etcd_endpoints),
        etcd_ca_file: args.etcd_cafile.clone().or(file.etcd_ca_file),
        etcd_cert_file: args.etcd_certfile.clone().or(file.etcd_cert_file),
        etcd_key_file: args.etcd_keyfile.clone().or(file.etcd_key_file),
        etcd_username: file.etcd_username,
        etcd_password: file.etcd_password,
    })
}

/// The datastore configuration from flags, file and environment.
pub fn config(args: &DatastoreArgs) -> Result<DatastoreConfig> {
    let over = overrides(args)?;
    Ok(DatastoreConfig::resolve(&over, |name| std::env::var(name).ok())?)
}

/// Opens the configured datastore.
pub fn open(args: &DatastoreArgs) -> Result<Client> {
    let cfg = config(args)?;
    let store = brindle_datastore::open(&cfg)?;
    Ok(Client::new(store))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn calicoctl_cfg() {
        let text = "apiVersion: projectcalico.org/v3\nkind: CalicoAPIConfig\nmetadata: {}\nspec:\n  datastoreType: etcdv3\n  etcdEndpoints: https://10.0.0.1:2379,https://10.0.0.2:2379\n  etcdCACertFile: /etc/ca.pem\n  etcdCertFile: /etc/c.pem\n  etcdKeyFile: /etc/k.pem\n";
        let f = parse_config_file(Path::new("c.cfg"), text).unwrap();
        assert_eq!(f.datastore_type.as_deref(), Some("etcdv3"));
        assert_eq!(
            f.etcd_endpoints.as_deref(),
            Some("https://10.0.0.1:2379,https://10.0.0.2:2379")
        );
        assert_eq!(f.etcd_key_file, Some(PathBuf::from("/etc/k.pem")));
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
            config: path.clone(),
            ..DatastoreArgs::default()
        };
        let o = overrides(&args).unwrap();
        assert_eq!(o.datastore_type.as_deref(), Some("sqlite"));
        assert_eq!(o.etcd_endpoints.as_deref(), Some("http://127.0.0.1:1"));
        std::fs::remove_file(&path).unwrap();
        std::fs::remove_dir(&dir).unwrap();
        let missing = DatastoreArgs {
            config: dir.join("nope.cfg"),
            ..DatastoreArgs::default()
        };
        assert_eq!(overrides(&missing).unwrap(), Overrides::default());
    }
}
