//! Pods through the CNI plugin, exactly as a runtime makes them: exec the `brindle` binary in the
//! node's namespace with the CNI environment and the network configuration on stdin.

use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};

use crate::error::{Error, Result};
use crate::plan::PodPlan;
use crate::proc::enter_netns;
use crate::spec::IpFamily;
use crate::state::PodRecord;

/// The network configuration a runtime would read from `/etc/cni/net.d` (Calico's fields, plus
/// Brindle's `datastore_path` for the SQLite file), for IPv4 pods.
pub fn netconf(env: &[(String, String)], node: &str, mtu: u32, log: &Path) -> serde_json::Value {
    netconf_for(env, node, mtu, log, IpFamily::V4)
}

/// [`netconf`] for pods of `family`: Calico's `ipam.assign_ipv4` / `assign_ipv6`.
pub fn netconf_for(
    env: &[(String, String)],
    node: &str,
    mtu: u32,
    log: &Path,
    family: IpFamily,
) -> serde_json::Value {
    let get = |k: &str| env.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone());
    let mut conf = serde_json::json!({
        "cniVersion": "1.0.0",
        "name": "k8s-pod-network",
        "type": "calico",
        "log_level": "info",
        "log_file_path": log.display().to_string(),
        "nodename": node,
        "mtu": mtu,
        "ipam": { "type": "calico-ipam" },
    });
    if family.has_v6() {
        conf["ipam"]["assign_ipv4"] = family.has_v4().to_string().into();
        conf["ipam"]["assign_ipv6"] = "true".into();
    }
    let o = conf.as_object_mut().expect("object");
    match get("BRINDLE_DATASTORE_TYPE").as_deref() {
        Some("etcdv3") => {
            o.insert("datastore_type".into(), "etcdv3".into());
            o.insert(
                "etcd_endpoints".into(),
                get("ETCD_ENDPOINTS").unwrap_or_default().into(),
            );
        }
        _ => {
            o.insert("datastore_type".into(), "sqlite".into());
            o.insert(
                "datastore_path".into(),
                get("BRINDLE_DATASTORE_PATH").unwrap_or_default().into(),
            );
        }
    }
    conf
}

/// Runs the plugin for `command` (`ADD`/`DEL`) on one pod; returns its stdout (the result).
pub fn invoke(
    exe: &Path,
    command: &str,
    pod: &PodPlan,
    node_netns: &str,
    env: &[(String, String)],
    conf: &serde_json::Value,
) -> Result<String> {
    invoke_with(exe, command, pod, node_netns, env, conf, "")
}

/// [`invoke`] with extra `CNI_ARGS` (`;IP=…`, as Calico's plugin honours).
pub fn invoke_with(
    exe: &Path,
    command: &str,
    pod: &PodPlan,
    node_netns: &str,
    env: &[(String, String)],
    conf: &serde_json::Value,
    extra_args: &str,
) -> Result<String> {
    let what = format!(
        "CNI {command} of pod {}/{} on {}",
        pod.namespace, pod.name, pod.node
    );
    let mut cmd = Command::new(exe);
    crate::env::isolate(&mut cmd);
    cmd.envs(env.iter().map(|(k, v)| (k, v)))
        .env("CNI_COMMAND", command)
        .env("CNI_CONTAINERID", &pod.container_id)
        .env("CNI_NETNS", format!("/run/netns/{}", pod.netns))
        .env("CNI_IFNAME", "eth0")
        .env(
            "CNI_PATH",
            exe.parent().map(|p| p.display().to_string()).unwrap_or_default(),
        )
        .env(
            "CNI_ARGS",
            format!(
                "IgnoreUnknown=1;K8S_POD_NAMESPACE={};K8S_POD_NAME={};\
                 K8S_POD_INFRA_CONTAINER_ID={}{extra_args}",
                pod.namespace, pod.name, pod.container_id
            ),
        )
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    enter_netns(&mut cmd, node_netns)?;
    let mut child = cmd.spawn().map_err(|e| Error::step(&what, e))?;
    child
        .stdin
        .take()
        .expect("piped")
        .write_all(conf.to_string().as_bytes())
        .map_err(|e| Error::step(&what, e))?;
    let out = child.wait_with_output().map_err(|e| Error::step(&what, e))?;
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    if !out.status.success() {
        return Err(Error::step(
            what,
            format!(
                "{} {}",
                stdout.trim(),
                String::from_utf8_lossy(&out.stderr).trim()
            ),
        ));
    }
    Ok(stdout)
}

/// Reads the pod's address and host interface from a CNI result.
pub fn record(pod: &PodPlan, result: &str) -> PodRecord {
    let v: serde_json::Value = serde_json::from_str(result).unwrap_or_default();
    // Every address, without prefix, in the result's order (Calico: IPv4 first), as
    // Kubernetes' `podIPs`; the first is `podIP`.
    let ips: Vec<String> = v["ips"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|i| i["address"].as_str())
                .map(|a| a.split('/').next().unwrap_or(a).to_string())
                .collect()
        })
        .unwrap_or_default();
    let ip = ips.first().cloned();
    let host_if = v["interfaces"].as_array().and_then(|ifs| {
        ifs.iter()
            .find(|i| i.get("sandbox").is_none_or(|s| s.as_str() == Some("")))
            .and_then(|i| i["name"].as_str().map(str::to_string))
    });
    PodRecord {
        name: pod.name.clone(),
        namespace: pod.namespace.clone(),
        labels: Default::default(),
        node: pod.node.clone(),
        netns: pod.netns.clone(),
        container_id: pod.container_id.clone(),
        ip,
        ips,
        host_if,
        listening: Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn result_gives_address_and_host_interface() {
        let pod = PodPlan {
            name: "p".into(),
            namespace: "default".into(),
            node: "n".into(),
            netns: "x-p".into(),
            container_id: "c".into(),
        };
        let r = record(
            &pod,
            r#"{"cniVersion":"1.0.0","interfaces":[{"name":"cali36dac03ac5d","mac":"ee:ee:ee:ee:ee:ee"},
               {"name":"eth0","sandbox":"/run/netns/x-p"}],"ips":[{"address":"10.233.94.1/32","interface":1}]}"#,
        );
        assert_eq!(r.ip.as_deref(), Some("10.233.94.1"));
        assert_eq!(r.ips, ["10.233.94.1"]);
        assert_eq!(r.host_if.as_deref(), Some("cali36dac03ac5d"));
        let dual = record(
            &pod,
            r#"{"cniVersion":"1.0.0","interfaces":[{"name":"cali36dac03ac5d"}],
               "ips":[{"address":"10.233.94.1/32","interface":0},{"address":"fd00:10:233::1/128","interface":0}]}"#,
        );
        assert_eq!(dual.ips, ["10.233.94.1", "fd00:10:233::1"]);
        assert_eq!(dual.ip6(), Some("fd00:10:233::1"));
        assert_eq!(dual.ip4(), Some("10.233.94.1"));
    }

    #[test]
    fn netconf_asks_for_the_lab_s_families() {
        let log = Path::new("/tmp/cni.log");
        let c = netconf(&[], "n", 1480, log);
        assert!(c["ipam"].get("assign_ipv6").is_none());
        let c = netconf_for(&[], "n", 1480, log, IpFamily::Dual);
        assert_eq!(
            (
                c["ipam"]["assign_ipv4"].as_str(),
                c["ipam"]["assign_ipv6"].as_str()
            ),
            (Some("true"), Some("true"))
        );
        let c = netconf_for(&[], "n", 1430, log, IpFamily::V6);
        assert_eq!(
            (
                c["ipam"]["assign_ipv4"].as_str(),
                c["ipam"]["assign_ipv6"].as_str()
            ),
            (Some("false"), Some("true"))
        );
    }
}
