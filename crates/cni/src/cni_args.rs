//! `CNI_ARGS`: `KEY=VALUE` pairs separated by `;` (CNI spec §2). Brindle reads the Kubernetes
//! keys runtimes pass (`K8S_POD_NAMESPACE`, `K8S_POD_NAME`, `K8S_POD_INFRA_CONTAINER_ID`,
//! `K8S_POD_UID`) and `IP` (a specific address, as Calico's IPAM plugin honours). Unknown keys
//! are tolerated whatever `IgnoreUnknown` says, as Calico forces `IgnoreUnknown=1`.

use std::net::IpAddr;

use crate::error::CniError;

/// The parsed `CNI_ARGS`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CniArgs {
    pub pod_namespace: Option<String>,
    pub pod_name: Option<String>,
    pub infra_container_id: Option<String>,
    pub pod_uid: Option<String>,
    /// A specific address to assign instead of auto-assigning.
    pub ip: Option<IpAddr>,
}

impl CniArgs {
    /// Parses `s` (empty is fine). A pair without `=` is an error naming it (code 4).
    pub fn parse(s: &str) -> Result<CniArgs, CniError> {
        let mut a = CniArgs::default();
        for pair in s.split(';').filter(|p| !p.trim().is_empty()) {
            let Some((k, v)) = pair.split_once('=') else {
                return Err(CniError::invalid_env(format!(
                    "invalid CNI_ARGS: pair {pair:?} is not KEY=VALUE"
                )));
            };
            let value = || (!v.is_empty()).then(|| v.to_string());
            match k.trim() {
                "K8S_POD_NAMESPACE" => a.pod_namespace = value(),
                "K8S_POD_NAME" => a.pod_name = value(),
                "K8S_POD_INFRA_CONTAINER_ID" => a.infra_container_id = value(),
                "K8S_POD_UID" => a.pod_uid = value(),
                "IP" if !v.is_empty() => {
                    a.ip = Some(v.parse().map_err(|_| {
                        CniError::invalid_env(format!("invalid CNI_ARGS: IP={v} is not an IP address"))
                    })?);
                }
                _ => {}
            }
        }
        Ok(a)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn podman_and_kubelet_args() {
        let a = CniArgs::parse("IgnoreUnknown=1;K8S_POD_NAME=web").unwrap();
        assert_eq!(a.pod_name.as_deref(), Some("web"));
        assert_eq!(a.pod_namespace, None);
        let a = CniArgs::parse(
            "IgnoreUnknown=1;K8S_POD_NAMESPACE=kube-system;K8S_POD_NAME=coredns-1;K8S_POD_INFRA_CONTAINER_ID=abc;K8S_POD_UID=u1",
        )
        .unwrap();
        assert_eq!(a.pod_namespace.as_deref(), Some("kube-system"));
        assert_eq!(a.infra_container_id.as_deref(), Some("abc"));
        assert_eq!(a.pod_uid.as_deref(), Some("u1"));
        assert_eq!(CniArgs::parse("").unwrap(), CniArgs::default());
        assert_eq!(CniArgs::parse("FOO=bar;;").unwrap(), CniArgs::default());
    }

    #[test]
    fn ip_and_errors() {
        let a = CniArgs::parse("IP=10.233.94.7").unwrap();
        assert_eq!(a.ip, Some("10.233.94.7".parse().unwrap()));
        let e = CniArgs::parse("IP=nope").unwrap_err();
        assert_eq!(e.code, crate::error::code::INVALID_ENV);
        assert!(e.msg.contains("IP=nope"));
        let e = CniArgs::parse("K8S_POD_NAME").unwrap_err();
        assert!(e.msg.contains("\"K8S_POD_NAME\""), "{e}");
    }
}
