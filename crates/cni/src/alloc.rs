//! Addresses for an attachment: Brindle's IPAM in-process when `ipam.type` is `brindle-ipam`
//! (or Calico's `calico-ipam`), which is what the `brindle-ipam` plugin does too, so the main
//! plugin saves a fork/exec; any other IPAM plugin (`host-local`, …) is executed from
//! `CNI_PATH` with the same environment and stdin (CNI spec §4, delegation).
//!
//! Brindle IPAM follows Calico's IPAM plugin (`cni-plugin/pkg/ipamplugin/ipam_plugin.go`): handle
//! `<network>.<containerID>`, attributes `node`, `timestamp` (and `pod`, `namespace` for
//! pods), the result's addresses carry their block's prefix length, one route per address
//! (to its block);
//! DEL releases the handle and the legacy handle, a missing handle being success. A host-wide
//! `flock` serialises IPAM calls of concurrent plugins on one node (Calico's `ipam_lock_file`),
//! which turns compare-and-swap retry storms into a short queue.

use std::collections::{BTreeMap, BTreeSet};
use std::fs::File;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::process::{Command as Process, Stdio};
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use brindle_datastore::Datastore;
use brindle_ipam::{AssignIpArgs, AutoAssignArgs, IntendedUse, Ipam, IpamError};
use ipnet::IpNet;

use crate::error::{CniError, code};
use crate::identity::{Identity, Orchestrator};
use crate::invocation::Invocation;
use crate::netconf::NetConf;
use crate::result::{CniResult, IpConfig, RouteEntry};
use crate::store::ds_error;

/// Brindle's default host-wide IPAM lock (Calico's is `/var/run/calico/ipam.lock`).
pub const DEFAULT_LOCK_FILE: &str = "/var/run/brindle/ipam.lock";

/// Maps an IPAM failure to a CNI error naming what was asked.
pub fn ipam_error(what: &str, e: IpamError) -> CniError {
    match e {
        IpamError::Datastore(d) => ds_error(d).context(what),
        other => CniError::internal(format!("{what}: {other}")),
    }
}

/// A held `flock` on the IPAM lock file; released on drop (closing the file).
pub struct HostLock {
    _file: Option<File>,
}

impl HostLock {
    /// Takes the lock, best effort as in Calico: if the file cannot be opened the call goes on
    /// unlocked (correctness never depended on it: every IPAM write is a compare-and-swap).
    pub fn acquire(path: &Path) -> HostLock {
        if let Some(dir) = path.parent() {
            let _ = std::fs::create_dir_all(dir);
        }
        let file = match std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(path)
        {
            Ok(f) => f,
            Err(e) => {
                crate::log::warn(&format!("IPAM lock {} not taken: {e}", path.display()));
                return HostLock { _file: None };
            }
        };
        // flock(2), exclusive: blocks until the lock is ours (a signal interrupts it: retry).
        loop {
            match file.lock() {
                Ok(()) => return HostLock { _file: Some(file) },
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => {
                    crate::log::warn(&format!("IPAM lock {} not taken: {e}", path.display()));
                    return HostLock { _file: None };
                }
            }
        }
    }
}

/// Go's `time.Now().UTC().String()`, which Calico stores as the `timestamp` attribute:
/// `2024-05-01 10:00:00.123456789 +0000 UTC` (fraction without trailing zeros).
pub fn go_utc_timestamp(t: SystemTime) -> String {
    let d = t.duration_since(UNIX_EPOCH).unwrap_or_default();
    let rfc = brindle_model::meta::rfc3339_utc(d.as_secs() as i64);
    let base = rfc.trim_end_matches('Z').replacen('T', " ", 1);
    let nanos = d.subsec_nanos();
    let frac = if nanos == 0 {
        String::new()
    } else {
        format!(".{nanos:09}").trim_end_matches('0').to_string()
    };
    format!("{base}{frac} +0000 UTC")
}

/// Where addresses come from.
pub enum Allocator {
    /// Brindle's IPAM over the datastore.
    Brindle { ipam: Ipam, lock_file: PathBuf },
    /// Another IPAM plugin, executed.
    Delegated { plugin: PathBuf },
}

/// Everything an allocation needs to know about the request.
pub struct Request<'a> {
    pub conf: &'a NetConf,
    /// The stdin bytes, passed unchanged to a delegated plugin.
    pub stdin: &'a [u8],
    pub inv: &'a Invocation,
    pub id: &'a Identity,
}

impl Allocator {
    /// The allocator `conf.ipam.type` names. `ds` is needed for Brindle IPAM.
    pub fn new(
        conf: &NetConf,
        inv: &Invocation,
        ds: Option<Arc<dyn Datastore>>,
    ) -> Result<Allocator, CniError> {
        if conf.ipam.is_brindle() {
            let ds = ds.expect("Brindle IPAM needs the datastore");
            let lock_file = conf
                .ipam_lock_file
                .clone()
                .unwrap_or_else(|| PathBuf::from(DEFAULT_LOCK_FILE));
            return Ok(Allocator::Brindle {
                ipam: Ipam::new(ds),
                lock_file,
            });
        }
        Ok(Allocator::Delegated {
            plugin: find_plugin(&conf.ipam.ipam_type, &inv.path)?,
        })
    }

    /// True for an executed IPAM plugin.
    pub fn is_delegated(&self) -> bool {
        matches!(self, Allocator::Delegated { .. })
    }

    /// ADD: the addresses (IPAM result shape: no interfaces).
    pub fn allocate(&self, req: &Request<'_>) -> Result<CniResult, CniError> {
        match self {
            Allocator::Brindle { ipam, lock_file } => {
                let _lock = HostLock::acquire(lock_file);
                brindle_allocate(ipam, req)
            }
            Allocator::Delegated { plugin } => {
                let out = exec(plugin, "ADD", req)?;
                let v: serde_json::Value = serde_json::from_slice(&out).map_err(|e| {
                    CniError::decode(format!(
                        "IPAM plugin {} printed an unreadable result: {e}",
                        plugin.display()
                    ))
                })?;
                let r = CniResult::from_value(&v)?;
                if r.ips.is_empty() {
                    return Err(CniError::internal(format!(
                        "IPAM plugin {} returned no IP addresses",
                        plugin.display()
                    )));
                }
                Ok(r)
            }
        }
    }

    /// DEL (and ADD rollback): releases everything the attachment holds. Idempotent.
    pub fn release(&self, req: &Request<'_>) -> Result<(), CniError> {
        match self {
            Allocator::Brindle { ipam, lock_file } => {
                let _lock = HostLock::acquire(lock_file);
                for handle in [req.id.handle(&req.conf.name), req.id.legacy_handle()] {
                    match ipam.release_by_handle(&handle) {
                        Ok(_) | Err(IpamError::UnknownHandle { .. }) => {}
                        Err(e) => return Err(ipam_error(&format!("release IPAM handle {handle}"), e)),
                    }
                }
                Ok(())
            }
            Allocator::Delegated { plugin } => exec(plugin, "DEL", req).map(|_| ()),
        }
    }

    /// CHECK: the allocation of the attachment exists and holds exactly `expected`.
    pub fn check(&self, req: &Request<'_>, expected: &[IpAddr]) -> Result<(), CniError> {
        match self {
            Allocator::Brindle { ipam, .. } => {
                let handle = req.id.handle(&req.conf.name);
                let held: BTreeSet<IpAddr> = ipam
                    .addrs_by_handle(&handle)
                    .map_err(|e| ipam_error(&format!("read IPAM handle {handle}"), e))?
                    .into_iter()
                    .collect();
                let want: BTreeSet<IpAddr> = expected.iter().copied().collect();
                if held.is_empty() {
                    return Err(CniError::internal(format!(
                        "IPAM handle {handle} holds no addresses, expected {}",
                        list(&want)
                    )));
                }
                if held != want {
                    return Err(CniError::internal(format!(
                        "IPAM handle {handle} holds {}, expected {}",
                        list(&held),
                        list(&want)
                    )));
                }
                Ok(())
            }
            Allocator::Delegated { plugin } => exec(plugin, "CHECK", req).map(|_| ()),
        }
    }
}

fn list(s: &BTreeSet<IpAddr>) -> String {
    format!(
        "[{}]",
        s.iter().map(|a| a.to_string()).collect::<Vec<_>>().join(" ")
    )
}

/// Pools named in the configuration, as CIDRs (a name is looked up among the IPPools).
fn resolve_pools(ds: &dyn Datastore, names: &[String]) -> Result<Vec<IpNet>, CniError> {
    if names.is_empty() {
        return Ok(Vec::new());
    }
    let mut all = None;
    let mut out = Vec::new();
    for n in names {
        if let Ok(c) = n.parse::<IpNet>() {
            out.push(c);
            continue;
        }
        if all.is_none() {
            all = Some(brindle_ipam::resources::list_pools(ds).map_err(|e| ipam_error("list IPPools", e))?);
        }
        let pool = all
            .as_ref()
            .and_then(|a| a.iter().find(|p| &p.name == n))
            .ok_or_else(|| {
                CniError::invalid_netconf(format!(
                    "ipam: the given pool ({n}) does not exist, or is not enabled"
                ))
            })?;
        out.push(pool.cidr);
    }
    Ok(out)
}

fn brindle_allocate(ipam: &Ipam, req: &Request<'_>) -> Result<CniResult, CniError> {
    let id = req.id;
    let handle = id.handle(&req.conf.name);
    let mut attrs = BTreeMap::from([
        ("node".to_string(), id.node.clone()),
        ("timestamp".to_string(), go_utc_timestamp(SystemTime::now())),
    ]);
    if id.orchestrator == Orchestrator::K8s {
        attrs.insert("namespace".into(), id.namespace.clone());
        attrs.insert("pod".into(), id.pod.clone().unwrap_or_default());
    }
    let ds = ipam.datastore();
    let nets: Vec<IpNet> = if let Some(ip) = req.inv.args.ip {
        let args = AssignIpArgs {
            ip,
            handle_id: Some(handle.clone()),
            attrs,
            hostname: id.node.clone(),
            intended_use: IntendedUse::Workload,
        };
        ipam.assign_ip(&args)
            .map_err(|e| ipam_error(&format!("failed to assign IP {ip}"), e))?;
        let pools = brindle_ipam::resources::list_pools(ds).map_err(|e| ipam_error("list IPPools", e))?;
        let prefix = pools
            .iter()
            .find(|p| p.cidr.contains(&ip))
            .map(|p| p.block_size)
            .unwrap_or(if ip.is_ipv4() { 32 } else { 128 });
        vec![IpNet::new(ip, prefix).expect("block prefix fits")]
    } else {
        let ipam_conf = &req.conf.ipam;
        let args = AutoAssignArgs {
            num4: usize::from(ipam_conf.wants_v4()),
            num6: usize::from(ipam_conf.wants_v6()),
            handle_id: Some(handle.clone()),
            attrs,
            hostname: id.node.clone(),
            ipv4_pools: resolve_pools(ds, &ipam_conf.ipv4_pools)?,
            ipv6_pools: resolve_pools(ds, &ipam_conf.ipv6_pools)?,
            max_blocks_per_host: 0,
            intended_use: IntendedUse::Workload,
        };
        let got = ipam
            .auto_assign(&args)
            .map_err(|e| ipam_error("failed to request IP addresses", e))?;
        got.ipv4.into_iter().chain(got.ipv6).collect()
    };
    Ok(CniResult {
        ips: nets
            .iter()
            .map(|n| IpConfig {
                address: *n,
                gateway: None,
                interface: None,
            })
            .collect(),
        // Calico ≥ 3.32 reports one route per address with the address itself as `dst`
        // (`10.233.94.1/24`); the kernel refuses such a destination (host bits set), which
        // breaks reference main plugins like `bridge`, so the block is reported masked.
        routes: nets.iter().map(|n| RouteEntry::to(n.trunc())).collect(),
        ..Default::default()
    })
}

/// Finds an executable named `name` in `dirs` (libcni's `FindInPath`).
pub fn find_plugin(name: &str, dirs: &[PathBuf]) -> Result<PathBuf, CniError> {
    if name.contains('/') {
        return Err(CniError::invalid_netconf(format!(
            "ipam.type {name:?} must be a plugin name, not a path"
        )));
    }
    for d in dirs {
        let p = d.join(name);
        if p.is_file() {
            return Ok(p);
        }
    }
    Err(CniError::invalid_netconf(format!(
        "failed to find plugin {name:?} in path {:?}",
        dirs.iter().map(|d| d.display().to_string()).collect::<Vec<_>>()
    )))
}

/// Runs a delegated plugin with this process's environment, `CNI_COMMAND=command`, and the
/// request's stdin. Its stderr goes to ours; its error result becomes ours, named.
pub fn exec(plugin: &Path, command: &str, req: &Request<'_>) -> Result<Vec<u8>, CniError> {
    use std::io::Write as _;
    let mut child = Process::new(plugin)
        .env("CNI_COMMAND", command)
        .env("CNI_ARGS", with_ignore_unknown(&req.inv.args_raw))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .map_err(|e| CniError::internal(format!("run IPAM plugin {}: {e}", plugin.display())))?;
    if let Some(mut stdin) = child.stdin.take() {
        stdin.write_all(req.stdin).map_err(|e| {
            CniError::new(
                code::IO,
                format!("write to IPAM plugin {}: {e}", plugin.display()),
            )
        })?;
    }
    let out = child
        .wait_with_output()
        .map_err(|e| CniError::internal(format!("run IPAM plugin {}: {e}", plugin.display())))?;
    if out.status.success() {
        return Ok(out.stdout);
    }
    let name = plugin
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let parsed: Option<serde_json::Value> = serde_json::from_slice(&out.stdout).ok();
    let code = parsed
        .as_ref()
        .and_then(|v| v.get("code"))
        .and_then(|c| c.as_u64())
        .map(|c| c as u32)
        .unwrap_or(code::INTERNAL);
    let msg = parsed
        .as_ref()
        .and_then(|v| v.get("msg"))
        .and_then(|m| m.as_str())
        .map(str::to_string)
        .unwrap_or_else(|| String::from_utf8_lossy(&out.stdout).trim().to_string());
    let details = parsed
        .as_ref()
        .and_then(|v| v.get("details"))
        .and_then(|m| m.as_str())
        .unwrap_or_default()
        .to_string();
    Err(CniError::new(code, format!("IPAM plugin {name} {command} failed: {msg}")).with_details(details))
}

/// `CNI_ARGS` with `IgnoreUnknown=1` first, as Calico passes them to IPAM plugins (host-local
/// refuses unknown keys such as `K8S_POD_NAME` otherwise).
fn with_ignore_unknown(args: &str) -> String {
    if args
        .split(';')
        .any(|p| p.trim() == "IgnoreUnknown=1" || p.trim() == "IgnoreUnknown=true")
    {
        args.to_string()
    } else if args.is_empty() {
        "IgnoreUnknown=1".to_string()
    } else {
        format!("IgnoreUnknown=1;{args}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn ignore_unknown_is_added_once() {
        assert_eq!(with_ignore_unknown(""), "IgnoreUnknown=1");
        assert_eq!(
            with_ignore_unknown("K8S_POD_NAME=a"),
            "IgnoreUnknown=1;K8S_POD_NAME=a"
        );
        assert_eq!(
            with_ignore_unknown("IgnoreUnknown=1;K8S_POD_NAME=a"),
            "IgnoreUnknown=1;K8S_POD_NAME=a"
        );
    }

    #[test]
    fn go_timestamps() {
        let t = UNIX_EPOCH + Duration::new(1_714_557_600, 123_450_000);
        assert_eq!(go_utc_timestamp(t), "2024-05-01 10:00:00.12345 +0000 UTC");
        let t = UNIX_EPOCH + Duration::new(1_714_557_600, 0);
        assert_eq!(go_utc_timestamp(t), "2024-05-01 10:00:00 +0000 UTC");
    }

    #[test]
    fn plugins_are_found_in_cni_path() {
        let dirs = [PathBuf::from("/nonexistent"), PathBuf::from("/usr/lib/cni")];
        if Path::new("/usr/lib/cni/host-local").exists() {
            assert_eq!(
                find_plugin("host-local", &dirs).unwrap(),
                PathBuf::from("/usr/lib/cni/host-local")
            );
        }
        let e = find_plugin("no-such-ipam", &dirs).unwrap_err();
        assert!(
            e.msg
                .starts_with("failed to find plugin \"no-such-ipam\" in path"),
            "{e}"
        );
        assert!(find_plugin("../x", &dirs).is_err());
    }
}
