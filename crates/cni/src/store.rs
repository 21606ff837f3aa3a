//! The datastore a CNI invocation uses: chosen by the network configuration (Calico's
//! `datastore_type`, `etcd_*` fields and Brindle's `datastore_path`), then the environment
//! (`BRINDLE_DATASTORE_*`, Calico's `DATASTORE_TYPE`, `ETCD_*`), then the default SQLite file;
//! and the readiness gate every ADD passes (ClusterInformation `datastoreReady`).

use std::sync::Arc;

use brindle_datastore::{Client, Datastore, DatastoreConfig, Origin, Overrides, Setting, Source};
use brindle_model::{Kind, Resource};

use crate::error::{CniError, code};
use crate::netconf::NetConf;

/// How messages name the network configuration a setting came from.
const NETCONF: &str = "the CNI network configuration";

/// Calico's refusal text when `datastoreReady` is false (docs/CALICO.md §6).
pub const NOT_READY: &str = "Calico is currently not ready to process requests";

/// Maps a datastore failure to a CNI error: unreachable or busy stores are transient (code
/// 11, the runtime retries), bad configuration is code 7, the rest code 999.
pub fn ds_error(e: brindle_datastore::Error) -> CniError {
    use brindle_datastore::Error as E;
    match e {
        E::Unavailable { .. } => CniError::new(code::TRY_AGAIN_LATER, format!("datastore unavailable: {e}")),
        E::Config { .. } => CniError::invalid_netconf(e.to_string()),
        other => CniError::internal(other.to_string()),
    }
}

/// The datastore configuration for `conf`, reading the environment through `env`, and where it
/// came from.
pub fn config(
    conf: &NetConf,
    env: impl Fn(&str) -> Option<String>,
) -> Result<(DatastoreConfig, Origin), CniError> {
    // An empty string means "not set", as in Calico's Go decoding: its manifests render
    // `"etcd_key_file": ""` when etcd has no TLS.
    let from = |key: &str| Source::file(NETCONF, key);
    let s = |v: &Option<String>, key: &str| {
        v.clone()
            .filter(|s| !s.trim().is_empty())
            .map(|v| Setting::new(v, from(key)))
    };
    let p = |v: &Option<std::path::PathBuf>, key: &str| {
        v.clone()
            .filter(|p| !p.as_os_str().is_empty())
            .map(|v| Setting::new(v, from(key)))
    };
    let overrides = Overrides {
        datastore_type: s(&conf.datastore_type, "datastore_type"),
        sqlite_path: p(&conf.datastore_path, "datastore_path"),
        etcd_endpoints: s(&conf.etcd_endpoints, "etcd_endpoints"),
        etcd_ca_file: p(&conf.etcd_ca_cert_file, "etcd_ca_cert_file"),
        etcd_cert_file: p(&conf.etcd_cert_file, "etcd_cert_file"),
        etcd_key_file: p(&conf.etcd_key_file, "etcd_key_file"),
        etcd_username: s(&conf.etcd_username, "etcd_username"),
        etcd_password: s(&conf.etcd_password, "etcd_password"),
    };
    DatastoreConfig::resolve_with_origin(&overrides, env).map_err(ds_error)
}

/// Opens the datastore; a failure says where its settings came from.
pub fn open(cfg: &DatastoreConfig, origin: &Origin) -> Result<Arc<dyn Datastore>, CniError> {
    brindle_datastore::open(cfg).map_err(|e| {
        let mut err = ds_error(e);
        err.msg = format!(
            "{} ({})",
            err.msg,
            origin.explain(matches!(cfg, DatastoreConfig::Sqlite(_)))
        );
        err
    })
}

/// ClusterInformation `default` must exist with `datastoreReady: true`; otherwise the
/// datastore is being migrated or was never initialised by the agent (code 11: try later).
pub fn require_ready(client: &Client) -> Result<(), CniError> {
    let info = client
        .get(Kind::ClusterInformation, "", "default")
        .map_err(|e| crate::endpoint::resource_error("error getting ClusterInformation", e))?;
    let Some(Resource::ClusterInformation(info)) = info else {
        return Err(CniError::new(
            code::TRY_AGAIN_LATER,
            format!(
                "error getting ClusterInformation: ClusterInformation(default) does not exist in {}: the datastore has not been initialised (start the brindle node agent)",
                client.store().describe()
            ),
        ));
    };
    if info.spec.datastore_ready != Some(true) {
        return Err(CniError::new(code::TRY_AGAIN_LATER, NOT_READY));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_strings_are_unset_as_in_calicos_manifest() {
        let conf = NetConf::decode(
            br#"{"cniVersion":"1.0.0","name":"k8s-pod-network","type":"calico",
                 "datastore_type":"","etcd_endpoints":"","etcd_key_file":"","etcd_cert_file":"",
                 "etcd_ca_cert_file":"","datastore_path":""}"#,
        )
        .unwrap();
        let (cfg, _) = config(&conf, |_| None).unwrap();
        assert_eq!(cfg.describe(), "sqlite:/var/lib/brindle/brindle.db");
        let conf = NetConf::decode(
            br#"{"cniVersion":"1.0.0","name":"n","type":"calico","etcd_endpoints":"http://10.0.0.1:2379",
                 "etcd_key_file":"","etcd_cert_file":"","etcd_ca_cert_file":""}"#,
        )
        .unwrap();
        assert_eq!(
            config(&conf, |_| None).unwrap().0.describe(),
            "etcdv3:http://10.0.0.1:2379"
        );
    }
}
