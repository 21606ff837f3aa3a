//! The network configuration a runtime streams on stdin: the CNI fields, Calico's plugin fields
//! (docs/CALICO.md §7) where they make sense for Brindle, and Brindle's own (`datastore_path`).
//! Unknown fields are tolerated (runtimes add their own; Calico's Go decoder ignores them).
//! Decoding errors are code 6 and name the field (`ipam.assign_ipv4: …`); semantic errors are
//! code 7, or code 2 for a field Brindle does not support (naming key and value, as the spec
//! asks).

use std::path::PathBuf;

use serde::{Deserialize, Deserializer};
use serde_json::Value;

use crate::error::{CniError, code};
use crate::invocation::valid_container_id;
use crate::result::Dns;
use crate::version::Version;

/// IPAM plugin types served in-process (Calico's name is accepted as an alias).
pub const BRINDLE_IPAM: &str = "brindle-ipam";
pub const CALICO_IPAM: &str = "calico-ipam";

/// `true`, `false`, `"true"` or `"false"` (Calico's `assign_ipv4` is a string).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Flag(pub bool);

impl<'de> Deserialize<'de> for Flag {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Flag, D::Error> {
        match Value::deserialize(d)? {
            Value::Bool(b) => Ok(Flag(b)),
            Value::String(s) if s.eq_ignore_ascii_case("true") => Ok(Flag(true)),
            Value::String(s) if s.eq_ignore_ascii_case("false") => Ok(Flag(false)),
            other => Err(serde::de::Error::custom(format!(
                "expected true or false, got {other}"
            ))),
        }
    }
}

/// The `ipam` section.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct IpamConf {
    #[serde(rename = "type", default)]
    pub ipam_type: String,
    #[serde(default)]
    pub assign_ipv4: Option<Flag>,
    #[serde(default)]
    pub assign_ipv6: Option<Flag>,
    /// Pools by CIDR or by IPPool name.
    #[serde(default)]
    pub ipv4_pools: Vec<String>,
    #[serde(default)]
    pub ipv6_pools: Vec<String>,
    /// host-local's subnet (only meaningful for a delegated IPAM plugin).
    #[serde(default)]
    pub subnet: Option<String>,
}

impl IpamConf {
    /// Served by Brindle's own IPAM in-process (no exec).
    pub fn is_brindle(&self) -> bool {
        self.ipam_type == BRINDLE_IPAM || self.ipam_type == CALICO_IPAM
    }

    pub fn wants_v4(&self) -> bool {
        self.assign_ipv4.is_none_or(|f| f.0)
    }

    pub fn wants_v6(&self) -> bool {
        self.assign_ipv6.is_some_and(|f| f.0)
    }
}

#[derive(Debug, Clone, Default, Deserialize)]
pub struct ContainerSettings {
    #[serde(default)]
    pub allow_ip_forwarding: bool,
}

#[derive(Debug, Clone, Default, Deserialize)]
pub struct FeatureControl {
    #[serde(default)]
    pub ip_addrs_no_ipam: bool,
    #[serde(default)]
    pub floating_ips: bool,
}

/// One still-valid attachment of a GC request.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct Attachment {
    #[serde(rename = "containerID")]
    pub container_id: String,
    #[serde(default)]
    pub ifname: String,
}

/// The network configuration of one plugin invocation.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct NetConf {
    #[serde(rename = "cniVersion", default)]
    pub cni_version: String,
    #[serde(default)]
    pub name: String,
    #[serde(rename = "type", default)]
    pub plugin_type: String,
    #[serde(default)]
    pub ipam: IpamConf,
    /// 0: the agent's MTU file, else 1500.
    #[serde(default)]
    pub mtu: u32,
    #[serde(default)]
    pub num_queues: u32,
    #[serde(default)]
    pub nodename: Option<String>,
    #[serde(default)]
    pub nodename_file: Option<PathBuf>,
    #[serde(default)]
    pub nodename_file_optional: bool,
    /// Deprecated (Calico): a node name below the nodename file in priority.
    #[serde(default)]
    pub hostname: Option<String>,
    #[serde(default)]
    pub datastore_type: Option<String>,
    /// Brindle: the SQLite file.
    #[serde(default)]
    pub datastore_path: Option<PathBuf>,
    #[serde(default)]
    pub etcd_endpoints: Option<String>,
    #[serde(default)]
    pub etcd_key_file: Option<PathBuf>,
    #[serde(default)]
    pub etcd_cert_file: Option<PathBuf>,
    #[serde(default)]
    pub etcd_ca_cert_file: Option<PathBuf>,
    #[serde(default)]
    pub etcd_username: Option<String>,
    #[serde(default)]
    pub etcd_password: Option<String>,
    #[serde(default)]
    pub etcd_discovery_srv: Option<String>,
    #[serde(default)]
    pub log_level: Option<String>,
    #[serde(default)]
    pub log_file_path: Option<PathBuf>,
    /// Calico's log rotation: the file's cap in MB (default 100), rotated files kept (default
    /// 10) and their age limit in days (default 30).
    #[serde(default)]
    pub log_file_max_size: Option<u64>,
    #[serde(default)]
    pub log_file_max_count: Option<usize>,
    #[serde(default)]
    pub log_file_max_age: Option<u64>,
    /// Brindle: `text` (Calico's layout, default) or `json`.
    #[serde(default)]
    pub log_format: Option<String>,
    #[serde(default)]
    pub container_settings: ContainerSettings,
    #[serde(default)]
    pub feature_control: FeatureControl,
    /// Keep a default route even when a delegated IPAM plugin returned routes.
    #[serde(default)]
    pub include_default_routes: bool,
    /// Host-wide lock around IPAM calls (Calico's `/var/run/calico/ipam.lock`).
    #[serde(default)]
    pub ipam_lock_file: Option<PathBuf>,
    /// Fail when `mtu` is 0 and the agent's MTU file is missing.
    #[serde(default)]
    pub require_mtu_file: bool,
    #[serde(default)]
    pub dns: Option<Dns>,
    #[serde(rename = "prevResult", default)]
    pub prev_result: Option<Value>,
    #[serde(rename = "runtimeConfig", default)]
    pub runtime_config: Option<Value>,
    #[serde(rename = "cni.dev/valid-attachments", default)]
    pub valid_attachments: Option<Vec<Attachment>>,
    /// The same list under the name an early 1.1 draft used (libcni sends both).
    #[serde(rename = "cni.dev/attachments", default)]
    pub attachments_alias: Option<Vec<Attachment>>,
}

impl NetConf {
    /// Decodes stdin. JSON and type errors are code 6 naming the field path.
    pub fn decode(bytes: &[u8]) -> Result<NetConf, CniError> {
        let de = &mut serde_json::Deserializer::from_slice(bytes);
        serde_path_to_error::deserialize(de).map_err(|e| {
            let path = e.path().to_string();
            let inner = e.into_inner();
            if path == "." || path.is_empty() {
                CniError::decode(format!("failed to load netconf: {inner}"))
            } else {
                CniError::decode(format!("failed to load netconf: {path}: {inner}"))
            }
        })
    }

    /// The request's version (code 1 when unsupported).
    pub fn version(&self) -> Result<Version, CniError> {
        Version::of_request(&self.cni_version)
    }

    /// Checks what a main-plugin invocation needs (ADD, DEL, CHECK, STATUS, GC).
    pub fn validate(&self) -> Result<(), CniError> {
        self.validate_common()?;
        if self.ipam.ipam_type.is_empty() {
            return Err(CniError::invalid_netconf(format!(
                "network {}: ipam.type is required (e.g. {BRINDLE_IPAM})",
                self.name
            )));
        }
        if self.mtu != 0 && !(68..=65535).contains(&self.mtu) {
            return Err(CniError::invalid_netconf(format!(
                "network {}: mtu {} is out of range (68-65535)",
                self.name, self.mtu
            )));
        }
        if self.num_queues > 1 {
            return Err(CniError::new(
                code::UNSUPPORTED_FIELD,
                format!(
                    "unsupported field num_queues={}: Brindle creates single-queue veths",
                    self.num_queues
                ),
            ));
        }
        if self.feature_control.ip_addrs_no_ipam {
            return Err(CniError::new(
                code::UNSUPPORTED_FIELD,
                "unsupported field feature_control.ip_addrs_no_ipam=true: Brindle has no pod annotations to read addresses from",
            ));
        }
        if self.feature_control.floating_ips {
            return Err(CniError::new(
                code::UNSUPPORTED_FIELD,
                "unsupported field feature_control.floating_ips=true: Brindle has no pod annotations to read floating IPs from",
            ));
        }
        if let Some(srv) = &self.etcd_discovery_srv {
            return Err(CniError::new(
                code::UNSUPPORTED_FIELD,
                format!("unsupported field etcd_discovery_srv={srv}: list the endpoints in etcd_endpoints"),
            ));
        }
        Ok(())
    }

    /// Checks what every invocation needs: a valid network name, a usable IPAM section.
    pub fn validate_common(&self) -> Result<(), CniError> {
        if self.name.is_empty() {
            return Err(CniError::invalid_netconf("missing network name"));
        }
        if !valid_container_id(&self.name) {
            return Err(
                CniError::invalid_netconf("invalid characters found in network name")
                    .with_details(&self.name),
            );
        }
        if !self.ipam.wants_v4() && !self.ipam.wants_v6() {
            return Err(CniError::invalid_netconf(format!(
                "network {}: ipam: assign_ipv4 and assign_ipv6 are both false, nothing to assign",
                self.name
            )));
        }
        Ok(())
    }

    /// The GC list (either spelling), empty when absent.
    pub fn valid_attachments(&self) -> &[Attachment] {
        self.valid_attachments
            .as_deref()
            .or(self.attachments_alias.as_deref())
            .unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const CALICO: &str = r#"{
      "name": "k8s-pod-network", "cniVersion": "0.3.1", "type": "calico",
      "log_level": "info", "log_file_path": "/var/log/calico/cni/cni.log",
      "datastore_type": "etcdv3", "etcd_endpoints": "https://10.0.0.1:2379",
      "etcd_key_file": "/etc/k.pem", "etcd_cert_file": "/etc/c.pem", "etcd_ca_cert_file": "/etc/ca.pem",
      "mtu": 1440, "nodename": "node1",
      "ipam": {"type": "calico-ipam", "assign_ipv4": "true", "assign_ipv6": "false", "ipv4_pools": ["10.233.64.0/18"]},
      "policy": {"type": "k8s"}, "kubernetes": {"kubeconfig": "/etc/cni/net.d/calico-kubeconfig"},
      "container_settings": {"allow_ip_forwarding": true}
    }"#;

    #[test]
    fn calicos_manifest_decodes() {
        let c = NetConf::decode(CALICO.as_bytes()).unwrap();
        c.validate().unwrap();
        assert_eq!(c.name, "k8s-pod-network");
        assert_eq!(c.version().unwrap(), Version::V0_3_1);
        assert!(c.ipam.is_brindle() && c.ipam.wants_v4() && !c.ipam.wants_v6());
        assert_eq!(c.ipam.ipv4_pools, ["10.233.64.0/18"]);
        assert_eq!(c.mtu, 1440);
        assert!(c.container_settings.allow_ip_forwarding);
        assert_eq!(c.etcd_endpoints.as_deref(), Some("https://10.0.0.1:2379"));
    }

    #[test]
    fn decode_errors_name_the_field() {
        let e = NetConf::decode(br#"{"name":"n","ipam":{"assign_ipv4":"maybe"}}"#).unwrap_err();
        assert_eq!(e.code, code::DECODE);
        assert!(
            e.msg
                .starts_with("failed to load netconf: ipam.assign_ipv4: expected true or false"),
            "{e}"
        );
        let e = NetConf::decode(br#"{"name":"n","mtu":"1500"}"#).unwrap_err();
        assert!(e.msg.contains("mtu: invalid type"), "{e}");
        let e = NetConf::decode(b"{not json").unwrap_err();
        assert_eq!(e.code, code::DECODE);
        let e = NetConf::decode(b"").unwrap_err();
        assert!(e.msg.starts_with("failed to load netconf: EOF"), "{e}");
    }

    #[test]
    fn semantic_errors() {
        let c = |s: &str| NetConf::decode(s.as_bytes()).unwrap().validate().unwrap_err();
        assert_eq!(
            c(r#"{"ipam":{"type":"brindle-ipam"}}"#).msg,
            "missing network name"
        );
        assert_eq!(
            c(r#"{"name":"a b","ipam":{"type":"brindle-ipam"}}"#).code,
            code::INVALID_NETCONF
        );
        assert!(c(r#"{"name":"n"}"#).msg.contains("ipam.type is required"));
        assert!(
            c(r#"{"name":"n","mtu":40,"ipam":{"type":"brindle-ipam"}}"#)
                .msg
                .contains("mtu 40")
        );
        let e = c(r#"{"name":"n","ipam":{"type":"brindle-ipam","assign_ipv4":false}}"#);
        assert!(e.msg.contains("nothing to assign"), "{e}");
        let e = c(r#"{"name":"n","ipam":{"type":"brindle-ipam"},"feature_control":{"floating_ips":true}}"#);
        assert_eq!(e.code, code::UNSUPPORTED_FIELD);
        assert!(e.msg.contains("floating_ips=true"));
    }

    #[test]
    fn gc_attachments_under_both_names() {
        let c = NetConf::decode(
            br#"{"name":"n","cni.dev/valid-attachments":[{"containerID":"c1","ifname":"eth0"}]}"#,
        )
        .unwrap();
        assert_eq!(c.valid_attachments()[0].container_id, "c1");
        let c = NetConf::decode(br#"{"name":"n","cni.dev/attachments":[{"containerID":"c2"}]}"#).unwrap();
        assert_eq!(c.valid_attachments()[0].container_id, "c2");
        let c = NetConf::decode(br#"{"name":"n"}"#).unwrap();
        assert!(c.valid_attachments().is_empty());
    }
}
