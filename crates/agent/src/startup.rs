//! Startup, as `calico-node -startup` and `-allocate-tunnel-addrs` (calico.md §7.2, §3.4):
//! register or update the Node with its BGP address, refuse an address another node uses,
//! make sure ClusterInformation, FelixConfiguration, the built-in tiers and (when asked) the
//! default pool exist, allocate the tunnel addresses, and write the nodename file last.

use std::net::IpAddr;
use std::sync::Arc;

use brindle_datastore::Datastore;
use brindle_ipam::Ipam;
use brindle_ipam::tunnel::TunnelKind;
use ipnet::Ipv4Net;
use serde_json::{Value, json};

use crate::autodetect;
use crate::config::{AgentConfig, IpSetting};
use crate::error::{Error, Result};
use crate::nodename;
use crate::status::{rfc3339, unix_now};

const RES: &str = "/calico/resources/v3/projectcalico.org";

/// The Calico version Brindle reports in ClusterInformation.
pub fn calico_version() -> String {
    format!("v{}-brindle", env!("CARGO_PKG_VERSION"))
}

fn key(plural: &str, name: &str) -> String {
    format!("{RES}/{plural}/{name}")
}

fn ds_err(e: impl std::fmt::Display) -> Error {
    Error::Startup(e.to_string())
}

fn uid() -> String {
    std::fs::read_to_string("/proc/sys/kernel/random/uuid")
        .map(|s| s.trim().to_string())
        .unwrap_or_else(|_| format!("{:032x}", unix_now()))
}

fn new_object(kind: &str, name: &str, spec: Value) -> Value {
    json!({
        "kind": kind,
        "apiVersion": "projectcalico.org/v3",
        "metadata": { "name": name, "uid": uid(), "creationTimestamp": rfc3339(unix_now()) },
        "spec": spec,
    })
}

/// Reads `key`, lets `f` change (or create, from `None`) its JSON, and writes it back with
/// compare-and-swap, retrying on conflict. `f` returns `None` to leave the key alone.
fn upsert(
    ds: &dyn Datastore,
    key: &str,
    f: impl Fn(Option<Value>) -> Result<Option<Value>>,
) -> Result<Value> {
    for _ in 0..20 {
        let cur = ds.get(key).map_err(ds_err)?;
        let (old, rev) = match &cur {
            Some(kv) => (
                Some(
                    serde_json::from_slice::<Value>(&kv.value)
                        .map_err(|e| Error::Startup(format!("{key}: {e}")))?,
                ),
                Some(kv.revision),
            ),
            None => (None, None),
        };
        let Some(new) = f(old.clone())? else {
            return Ok(old.unwrap_or(Value::Null));
        };
        if Some(&new) == old.as_ref() {
            return Ok(new);
        }
        let bytes = serde_json::to_vec(&new).expect("json");
        let res = match rev {
            Some(r) => ds.update(key, &bytes, r),
            None => ds.create(key, &bytes),
        };
        match res {
            Ok(_) => return Ok(new),
            Err(e) if e.is_conflict() => continue,
            Err(e) => return Err(ds_err(e)),
        }
    }
    Err(Error::Startup(format!(
        "{key}: gave up after 20 conflicting updates"
    )))
}

/// What startup found and did.
#[derive(Debug, Clone)]
pub struct Started {
    pub node: String,
    pub ipv4: Option<Ipv4Net>,
    pub ipip_tunnel: Option<IpAddr>,
    pub vxlan_tunnel: Option<IpAddr>,
}

/// Runs startup against `ds` in the calling thread's network namespace (the node's).
pub fn run(cfg: &AgentConfig, ds: &Arc<dyn Datastore>) -> Result<Started> {
    let name = nodename::resolve(
        cfg.nodename.as_deref(),
        &cfg.nodename_file(),
        cfg.hostname.as_deref(),
    )?;
    let node_key = key("nodes", &name);
    let existing = ds.get(&node_key).map_err(ds_err)?;
    let existing_v4: Option<Ipv4Net> = existing.as_ref().and_then(|kv| {
        let v: Value = serde_json::from_slice(&kv.value).ok()?;
        v["spec"]["bgp"]["ipv4Address"].as_str()?.parse().ok()
    });
    let ifaces = autodetect::interfaces()?;
    let reach = match &cfg.ip_method {
        crate::config::AutodetectMethod::CanReach(dest) if cfg.ip == IpSetting::Autodetect => {
            Some(autodetect::reach(dest)?)
        }
        _ => None,
    };
    let detected = autodetect::resolve_v4(&cfg.ip, &cfg.ip_method, existing_v4, &ifaces, reach)?;
    let ipv4 = detected.or(existing_v4);
    if let Some(ip) = ipv4 {
        tracing::info!(node = %name, address = %ip, "node BGP address");
        check_conflict(ds.as_ref(), &name, ip)?;
    } else {
        tracing::warn!(node = %name, "node has no IPv4 address (IP=none): no BGP");
    }
    let as_number = cfg.as_number;
    upsert(ds.as_ref(), &node_key, |old| {
        let mut v = old.unwrap_or_else(|| new_object("Node", &name, json!({})));
        let spec = v["spec"]
            .as_object_mut()
            .ok_or_else(|| Error::Startup(format!("{node_key}: spec is not an object")))?;
        let bgp = spec.entry("bgp").or_insert_with(|| json!({}));
        if let Some(ip) = detected {
            bgp["ipv4Address"] = json!(ip.to_string());
        }
        if let Some(asn) = as_number {
            bgp["asNumber"] = json!(asn);
        }
        if bgp.as_object().is_some_and(|m| m.is_empty()) {
            spec.remove("bgp");
        }
        Ok(Some(v))
    })?;
    ensure_defaults(cfg, ds.as_ref(), &name)?;
    // The built-in tiers (kube-admin, default, kube-baseline), as calico-node's
    // EnsureInitialized creates them: policies in the default tier need it.
    brindle_datastore::Client::new(ds.clone())
        .ensure_builtin_tiers()
        .map_err(|e| Error::Startup(format!("creating the built-in tiers: {e}")))?;
    let ipam = Ipam::new(ds.clone());
    let ipip_tunnel = ipam
        .ensure_tunnel_address(&name, TunnelKind::Ipip)
        .map_err(|e| Error::Startup(format!("tunnel address of {name} (tunl0): {e}")))?;
    let vxlan_tunnel = ipam
        .ensure_tunnel_address(&name, TunnelKind::Vxlan)
        .map_err(|e| Error::Startup(format!("tunnel address of {name} (vxlan.calico): {e}")))?;
    // Last, as calico-node: the nodename file says startup is complete (bird-ready uses its mtime).
    nodename::write_file(&cfg.nodename_file(), &name)?;
    Ok(Started {
        node: name,
        ipv4,
        ipip_tunnel,
        vxlan_tunnel,
    })
}

/// Refuses an IPv4 address another Node already has (Calico's wording).
fn check_conflict(ds: &dyn Datastore, me: &str, ip: Ipv4Net) -> Result<()> {
    let list = ds.list(&format!("{RES}/nodes/")).map_err(ds_err)?;
    for kv in list.items {
        let Ok(v) = serde_json::from_slice::<Value>(&kv.value) else {
            continue;
        };
        let other = v["metadata"]["name"].as_str().unwrap_or_default();
        if other == me {
            continue;
        }
        let theirs = v["spec"]["bgp"]["ipv4Address"]
            .as_str()
            .and_then(|s| s.parse::<Ipv4Net>().ok());
        if theirs.map(|t| t.addr()) == Some(ip.addr()) {
            return Err(Error::Startup(format!(
                "Calico node '{other}' is already using the IPv4 address {}",
                ip.addr()
            )));
        }
    }
    Ok(())
}

/// ClusterInformation `default`, FelixConfiguration `default` and `node.<name>`, and the
/// default pool when configured and no IPv4 pool exists.
fn ensure_defaults(cfg: &AgentConfig, ds: &dyn Datastore, name: &str) -> Result<()> {
    let cluster_type = cfg.cluster_type.clone();
    upsert(ds, &key("clusterinformations", "default"), |old| {
        let mut v = old.unwrap_or_else(|| {
            new_object(
                "ClusterInformation",
                "default",
                json!({ "clusterGUID": uid().replace('-', "") }),
            )
        });
        let spec = &mut v["spec"];
        spec["clusterType"] = json!(cluster_type);
        spec["calicoVersion"] = json!(calico_version());
        if spec.get("datastoreReady").is_none() {
            spec["datastoreReady"] = json!(true);
        }
        Ok(Some(v))
    })?;
    upsert(ds, &key("felixconfigurations", "default"), |old| {
        Ok(match old {
            Some(_) => None,
            None => Some(new_object(
                "FelixConfiguration",
                "default",
                json!({ "logSeverityScreen": "Info", "reportingInterval": "0s" }),
            )),
        })
    })?;
    let per_node = format!("node.{name}");
    upsert(ds, &key("felixconfigurations", &per_node), |old| {
        Ok(match old {
            Some(_) => None,
            None => Some(new_object(
                "FelixConfiguration",
                &per_node,
                json!({ "defaultEndpointToHostAction": "Return" }),
            )),
        })
    })?;
    if let Some(p) = &cfg.default_pool {
        let pools = ds.list(&format!("{RES}/ippools/")).map_err(ds_err)?;
        let has_v4 = pools.items.iter().any(|kv| {
            serde_json::from_slice::<Value>(&kv.value)
                .ok()
                .and_then(|v| v["spec"]["cidr"].as_str().map(|c| !c.contains(':')))
                .unwrap_or(false)
        });
        if !has_v4 {
            tracing::info!(pool = %p.name, cidr = %p.cidr, "creating the default IPv4 pool");
            let spec = json!({
                "cidr": p.cidr.to_string(),
                "vxlanMode": p.vxlan.as_str(),
                "ipipMode": p.ipip.as_str(),
                "natOutgoing": p.nat_outgoing,
                "blockSize": p.block_size,
                "nodeSelector": p.node_selector,
                "allowedUses": ["Workload", "Tunnel"],
            });
            upsert(ds, &key("ippools", &p.name), |old| {
                Ok(old.is_none().then(|| new_object("IPPool", &p.name, spec.clone())))
            })?;
        }
    }
    Ok(())
}
