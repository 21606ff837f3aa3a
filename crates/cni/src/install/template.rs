//! The network configuration template and its placeholders, substituted the way Calico's
//! install-cni does (`cni-plugin/pkg/install/install.go`, `writeCNIConfig`): plain string
//! replacement of `__NAME__` tokens by environment values, then a check that the result is a
//! JSON object. Pure: the caller gathers the values (environment, host name, which TLS files
//! exist) and reads files.
//!
//! Brindle adds `__NODENAME__` and `__DATASTORE_PATH__`, takes the etcd TLS placeholders from
//! `ETCD_*_FILE` when no TLS assets were copied (plain hosts keep their certificates where they
//! are), refuses a placeholder it does not know instead of writing it out, and decodes every
//! `brindle`/`calico` plugin of the result as the plugin itself will, so a configuration the
//! plugin would refuse is never installed.

use serde_json::Value;

use super::Error;
use crate::netconf::NetConf;

/// Brindle's template when neither `CNI_NETWORK_CONFIG_FILE` nor `CNI_NETWORK_CONFIG` is set:
/// the shape of Calico's etcd manifest (the plugin chained with `portmap`), with Brindle's
/// datastore fields. No `nodename`: the plugin reads the agent's nodename file, so a pod is
/// only wired once the agent has registered the node.
pub const DEFAULT_TEMPLATE: &str = r#"{
  "name": "k8s-pod-network",
  "cniVersion": "1.0.0",
  "plugins": [
    {
      "type": "brindle",
      "log_level": "__LOG_LEVEL__",
      "log_file_path": "__LOG_FILE_PATH__",
      "datastore_type": "__DATASTORE_TYPE__",
      "datastore_path": "__DATASTORE_PATH__",
      "etcd_endpoints": "__ETCD_ENDPOINTS__",
      "etcd_key_file": "__ETCD_KEY_FILE__",
      "etcd_cert_file": "__ETCD_CERT_FILE__",
      "etcd_ca_cert_file": "__ETCD_CA_CERT_FILE__",
      "mtu": __CNI_MTU__,
      "ipam": {
        "type": "brindle-ipam"
      }
    },
    {
      "type": "portmap",
      "snat": true,
      "capabilities": {"portMappings": true}
    }
  ]
}
"#;

/// Brindle's CNI log file (Calico's default is `/var/log/calico/cni/cni.log`).
pub const DEFAULT_LOG_FILE: &str = "/var/log/brindle/cni/cni.log";

/// The TLS files the conflist should name, as the host sees them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TlsPaths {
    pub ca: Option<String>,
    pub cert: Option<String>,
    pub key: Option<String>,
}

/// What the placeholders are replaced with, in Calico's order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Values {
    pairs: Vec<(&'static str, String)>,
}

/// Everything the values depend on besides the environment.
#[derive(Debug, Clone, Default)]
pub struct Inputs {
    /// The configuration directory as the host sees it (`CNI_NET_DIR`).
    pub host_conf_dir: String,
    /// The lower-cased host name (Calico's `names.Hostname()`).
    pub hostname: String,
    /// TLS files copied into the configuration directory (host paths); `None` where no asset
    /// was copied, in which case `ETCD_*_FILE` is used.
    pub copied_tls: TlsPaths,
    /// The service account token, when running in a Kubernetes pod.
    pub service_account_token: String,
}

impl Values {
    /// The substitutions for `env` (unset variables take Calico's defaults, or Brindle's where
    /// Brindle differs: the log file, and the datastore type, which Calico defaults to
    /// `kubernetes`, a datastore Brindle does not have).
    pub fn new(env: &dyn Fn(&str) -> Option<String>, inputs: &Inputs) -> Values {
        let get = |name: &str, default: &str| env(name).unwrap_or_else(|| default.to_string());
        let set = |name: &str| env(name).filter(|v| !v.is_empty());
        let node = set("KUBERNETES_NODE_NAME").unwrap_or_else(|| inputs.hostname.clone());
        let datastore_type = set("BRINDLE_DATASTORE_TYPE")
            .or_else(|| set("DATASTORE_TYPE"))
            .unwrap_or_else(|| {
                if set("ETCD_ENDPOINTS").is_some() {
                    "etcdv3".into()
                } else {
                    "sqlite".into()
                }
            });
        let tls =
            |copied: &Option<String>, var: &str| copied.clone().or_else(|| set(var)).unwrap_or_default();
        let pairs = vec![
            ("__LOG_LEVEL__", get("LOG_LEVEL", "info")),
            ("__LOG_FILE_PATH__", get("LOG_FILE_PATH", DEFAULT_LOG_FILE)),
            ("__LOG_FILE_MAX_SIZE__", get("LOG_FILE_MAX_SIZE", "100")),
            ("__LOG_FILE_MAX_AGE__", get("LOG_FILE_MAX_AGE", "30")),
            ("__LOG_FILE_MAX_COUNT__", get("LOG_FILE_MAX_COUNT", "10")),
            ("__DATASTORE_TYPE__", datastore_type),
            (
                "__DATASTORE_PATH__",
                set("BRINDLE_DATASTORE_PATH")
                    .unwrap_or_else(|| brindle_datastore::DEFAULT_SQLITE_PATH.into()),
            ),
            ("__KUBERNETES_NODE_NAME__", node.clone()),
            ("__NODENAME__", set("NODENAME").unwrap_or(node)),
            (
                "__KUBECONFIG_FILEPATH__",
                format!("{}/calico-kubeconfig", inputs.host_conf_dir),
            ),
            ("__CNI_MTU__", get("CNI_MTU", "1500")),
            ("__KUBERNETES_SERVICE_HOST__", get("KUBERNETES_SERVICE_HOST", "")),
            ("__KUBERNETES_SERVICE_PORT__", get("KUBERNETES_SERVICE_PORT", "")),
            ("__SERVICEACCOUNT_TOKEN__", inputs.service_account_token.clone()),
            (
                "__ETCD_CERT_FILE__",
                tls(&inputs.copied_tls.cert, "ETCD_CERT_FILE"),
            ),
            (
                "__ETCD_CA_CERT_FILE__",
                tls(&inputs.copied_tls.ca, "ETCD_CA_CERT_FILE"),
            ),
            ("__ETCD_KEY_FILE__", tls(&inputs.copied_tls.key, "ETCD_KEY_FILE")),
            ("__ETCD_ENDPOINTS__", get("ETCD_ENDPOINTS", "")),
            ("__ETCD_DISCOVERY_SRV__", get("ETCD_DISCOVERY_SRV", "")),
        ];
        Values { pairs }
    }

    /// The value of one placeholder (tests, diagnostics).
    pub fn get(&self, placeholder: &str) -> Option<&str> {
        self.pairs
            .iter()
            .find(|(k, _)| *k == placeholder)
            .map(|(_, v)| v.as_str())
    }
}

/// Replaces every placeholder (all occurrences, in order).
pub fn render(template: &str, values: &Values) -> String {
    let mut out = template.to_string();
    for (k, v) in &values.pairs {
        out = out.replace(k, v);
    }
    out
}

/// A rendered configuration that passed [`check`].
#[derive(Debug, Clone)]
pub struct Checked {
    pub json: Value,
    /// Its `cniVersion` (what the installed plugins must answer VERSION with).
    pub cni_version: String,
}

/// Checks a rendered configuration before anything is written: a JSON object, no placeholder
/// left, a supported `cniVersion`, and every Brindle plugin in it acceptable to the plugin
/// (fields, datastore selection). `source` names where the template came from.
pub fn check(rendered: &str, source: &str) -> Result<Checked, Error> {
    if let Some(token) = leftover_placeholder(rendered) {
        return Err(Error::Template(format!(
            "{source}: unknown placeholder {token} (known: {})",
            KNOWN.join(", ")
        )));
    }
    let json: Value = serde_json::from_str(rendered).map_err(|e| {
        Error::Template(format!(
            "{source}: the network configuration is not valid JSON after substitution: {e}"
        ))
    })?;
    let Some(obj) = json.as_object() else {
        return Err(Error::Template(format!(
            "{source}: the network configuration is not a JSON object"
        )));
    };
    let name = obj.get("name").and_then(Value::as_str).unwrap_or_default();
    let cni_version = obj
        .get("cniVersion")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string();
    crate::version::Version::of_request(&cni_version)
        .map_err(|e| Error::Template(format!("{source}: network {name:?}: {e}")))?;
    let plugins: Vec<&Value> = match obj.get("plugins") {
        Some(Value::Array(list)) => list.iter().collect(),
        Some(_) => {
            return Err(Error::Template(format!(
                "{source}: network {name:?}: plugins must be a list"
            )));
        }
        None => vec![&json],
    };
    if plugins.is_empty() {
        return Err(Error::Template(format!(
            "{source}: network {name:?}: the plugin list is empty"
        )));
    }
    for (i, plugin) in plugins.iter().enumerate() {
        let kind = plugin.get("type").and_then(Value::as_str).unwrap_or_default();
        if kind.is_empty() {
            return Err(Error::Template(format!(
                "{source}: network {name:?}: plugin {i} has no type"
            )));
        }
        if kind == "brindle" || kind == "calico" {
            check_brindle_plugin(plugin, name, &cni_version).map_err(|e| {
                Error::Template(format!("{source}: network {name:?}: plugin {i} ({kind}): {e}"))
            })?;
        }
    }
    Ok(Checked { json, cni_version })
}

/// What the plugin will do with its own section: decode it and choose its datastore (with no
/// environment: the runtime's is unknown here).
fn check_brindle_plugin(plugin: &Value, name: &str, version: &str) -> Result<(), String> {
    let mut conf = plugin.clone();
    if let Some(o) = conf.as_object_mut() {
        o.insert("name".into(), Value::String(name.into()));
        o.insert("cniVersion".into(), Value::String(version.into()));
    }
    let bytes = serde_json::to_vec(&conf).map_err(|e| e.to_string())?;
    let nc = NetConf::decode(&bytes).map_err(|e| e.to_string())?;
    nc.validate().map_err(|e| e.to_string())?;
    crate::store::config(&nc, |_| None).map_err(|e| e.to_string())?;
    Ok(())
}

/// Every placeholder [`Values`] replaces.
pub const KNOWN: [&str; 19] = [
    "__LOG_LEVEL__",
    "__LOG_FILE_PATH__",
    "__LOG_FILE_MAX_SIZE__",
    "__LOG_FILE_MAX_AGE__",
    "__LOG_FILE_MAX_COUNT__",
    "__DATASTORE_TYPE__",
    "__DATASTORE_PATH__",
    "__KUBERNETES_NODE_NAME__",
    "__NODENAME__",
    "__KUBECONFIG_FILEPATH__",
    "__CNI_MTU__",
    "__KUBERNETES_SERVICE_HOST__",
    "__KUBERNETES_SERVICE_PORT__",
    "__SERVICEACCOUNT_TOKEN__",
    "__ETCD_CERT_FILE__",
    "__ETCD_CA_CERT_FILE__",
    "__ETCD_KEY_FILE__",
    "__ETCD_ENDPOINTS__",
    "__ETCD_DISCOVERY_SRV__",
];

/// The first `__UPPER_CASE__` token still in `text`.
fn leftover_placeholder(text: &str) -> Option<String> {
    let b = text.as_bytes();
    let mut i = 0;
    while i + 4 <= b.len() {
        if b[i] == b'_' && b[i + 1] == b'_' {
            let start = i;
            let mut j = i + 2;
            while j < b.len() && (b[j].is_ascii_uppercase() || b[j].is_ascii_digit() || b[j] == b'_') {
                j += 1;
            }
            // The token is `__X…__`: at least one letter between the double underscores.
            let token = &text[start..j];
            if token.len() > 4
                && token.ends_with("__")
                && token[2..token.len() - 2].bytes().any(|c| c.is_ascii_uppercase())
            {
                return Some(token.to_string());
            }
            i = j.max(i + 1);
        } else {
            i += 1;
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env_of(pairs: &'static [(&'static str, &'static str)]) -> impl Fn(&str) -> Option<String> {
        move |k| pairs.iter().find(|(n, _)| *n == k).map(|(_, v)| v.to_string())
    }

    fn inputs() -> Inputs {
        Inputs {
            host_conf_dir: "/etc/cni/net.d".into(),
            hostname: "node-a".into(),
            ..Inputs::default()
        }
    }

    #[test]
    fn calicos_etcd_manifest_template_renders_as_calico_renders_it() {
        // The cni_network_config of Calico's calico-etcd.yaml.
        let template = r#"{"name": "k8s-pod-network", "cniVersion": "1.0.0", "plugins": [
          {"type": "calico", "log_level": "info", "log_file_path": "/var/log/calico/cni/cni.log",
           "etcd_endpoints": "__ETCD_ENDPOINTS__", "etcd_key_file": "__ETCD_KEY_FILE__",
           "etcd_cert_file": "__ETCD_CERT_FILE__", "etcd_ca_cert_file": "__ETCD_CA_CERT_FILE__",
           "mtu": __CNI_MTU__, "ipam": {"type": "calico-ipam"}, "policy": {"type": "k8s"},
           "kubernetes": {"kubeconfig": "__KUBECONFIG_FILEPATH__"}},
          {"type": "portmap", "snat": true, "capabilities": {"portMappings": true}}]}"#;
        let env = env_of(&[("ETCD_ENDPOINTS", "https://10.0.0.1:2379"), ("CNI_MTU", "0")]);
        let mut inp = inputs();
        inp.copied_tls = TlsPaths {
            ca: Some("/etc/cni/net.d/brindle-tls/etcd-ca".into()),
            cert: None,
            key: None,
        };
        let out = render(template, &Values::new(&env, &inp));
        let c = check(&out, "CNI_NETWORK_CONFIG").unwrap();
        let p = &c.json["plugins"][0];
        assert_eq!(p["etcd_endpoints"], "https://10.0.0.1:2379");
        assert_eq!(p["etcd_ca_cert_file"], "/etc/cni/net.d/brindle-tls/etcd-ca");
        assert_eq!(p["etcd_cert_file"], "");
        assert_eq!(p["mtu"], 0);
        assert_eq!(p["kubernetes"]["kubeconfig"], "/etc/cni/net.d/calico-kubeconfig");
        assert_eq!(c.cni_version, "1.0.0");
    }

    #[test]
    fn defaults_and_brindle_placeholders() {
        let v = Values::new(&env_of(&[]), &inputs());
        assert_eq!(v.get("__LOG_LEVEL__"), Some("info"));
        assert_eq!(v.get("__CNI_MTU__"), Some("1500"));
        assert_eq!(v.get("__DATASTORE_TYPE__"), Some("sqlite"));
        assert_eq!(v.get("__DATASTORE_PATH__"), Some("/var/lib/brindle/brindle.db"));
        assert_eq!(v.get("__KUBERNETES_NODE_NAME__"), Some("node-a"));
        assert_eq!(v.get("__NODENAME__"), Some("node-a"));
        let v = Values::new(
            &env_of(&[
                ("ETCD_ENDPOINTS", "http://e:2379"),
                ("NODENAME", "n7"),
                ("ETCD_CA_CERT_FILE", "/etc/brindle/pki/ca.pem"),
            ]),
            &inputs(),
        );
        assert_eq!(v.get("__DATASTORE_TYPE__"), Some("etcdv3"));
        assert_eq!(v.get("__NODENAME__"), Some("n7"));
        assert_eq!(v.get("__KUBERNETES_NODE_NAME__"), Some("node-a"));
        // Plain hosts: the certificates stay where ETCD_*_FILE says.
        assert_eq!(v.get("__ETCD_CA_CERT_FILE__"), Some("/etc/brindle/pki/ca.pem"));
        let rendered = render(DEFAULT_TEMPLATE, &v);
        let c = check(&rendered, "the default template").unwrap();
        assert_eq!(c.json["plugins"][0]["datastore_type"], "etcdv3");
        assert_eq!(c.json["plugins"][1]["type"], "portmap");
    }

    #[test]
    fn every_placeholder_of_the_default_template_is_known() {
        let out = render(DEFAULT_TEMPLATE, &Values::new(&env_of(&[]), &inputs()));
        check(&out, "default").unwrap();
        assert!(!out.contains("__"), "{out}");
    }

    #[test]
    fn bad_templates_are_refused_with_the_reason() {
        let v = Values::new(&env_of(&[("CNI_MTU", "abc")]), &inputs());
        let e = check(&render(DEFAULT_TEMPLATE, &v), "CNI_NETWORK_CONFIG").unwrap_err();
        assert!(e.to_string().contains("not valid JSON after substitution"), "{e}");

        let e = check(
            r#"{"name":"n","cniVersion":"1.0.0","type":"brindle","x":"__NOPE__"}"#,
            "t",
        )
        .unwrap_err();
        assert!(e.to_string().contains("unknown placeholder __NOPE__"), "{e}");

        let e = check(r#"{"name":"n","cniVersion":"9.9.9","type":"bridge"}"#, "t").unwrap_err();
        assert!(e.to_string().contains("9.9.9"), "{e}");

        let e = check(
            r#"{"name":"n","cniVersion":"1.0.0","plugins":[{"type":"brindle","ipam":{"type":"brindle-ipam"},"datastore_type":"kubernetes"}]}"#,
            "t",
        )
        .unwrap_err();
        assert!(
            e.to_string().contains("kubernetes datastore is not supported"),
            "{e}"
        );

        let e = check(
            r#"{"name":"n","cniVersion":"1.0.0","plugins":[{"type":"calico","ipam":{"type":"calico-ipam"},"mtu":"x"}]}"#,
            "t",
        )
        .unwrap_err();
        assert!(
            e.to_string().contains("plugin 0 (calico)") && e.to_string().contains("mtu"),
            "{e}"
        );

        let e = check("[1]", "t").unwrap_err();
        assert!(e.to_string().contains("not a JSON object"), "{e}");
    }

    #[test]
    fn placeholders_are_tokens_not_any_underscores() {
        assert_eq!(leftover_placeholder("a __init__ b"), None);
        assert_eq!(leftover_placeholder("x____y"), None);
        assert_eq!(leftover_placeholder("\"__A_B__\""), Some("__A_B__".into()));
        assert_eq!(leftover_placeholder("___CNI_MTU__"), Some("___CNI_MTU__".into()));
    }
}
