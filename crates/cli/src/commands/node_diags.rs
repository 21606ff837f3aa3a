//! `brindle node diags`: what `calicoctl node diags` gathers, for Brindle. Everything goes into
//! a fresh temporary directory and is packed into `diags-YYYYMMDD_HHMMSS.tar.gz` beside it;
//! the command prints where. Each collector is best-effort: one that fails writes
//! `<file>.error` saying why and the others go on. The exit status is non-zero only when
//! nothing could be written at all. What is gathered, by directory of the bundle:
//!
//! - `status/` — `node status` (the calicoctl table and JSON), the agent's command line.
//! - `network/` (collected by [`super::diags_network`]) — `ip addr`, `ip route`, `ip rule` (IPv4 and IPv6), `ip -d link`, neighbours,
//!   the FDB and details of the tunnel devices (tunl0, vxlan.calico, vxlan-v6.calico).
//! - `nftables/` — `nft list table` of Brindle's `ip`/`ip6` tables (noted when `nft` is not
//!   installed) and the same tables as Brindle's own nftables reader dumps them.
//! - `sysctl.txt` — forwarding, rp_filter and the workload interfaces' settings.
//! - `agent/` — the agent's `/metrics` and `/readiness`.
//! - `datastore/` — this node's Node, its WorkloadEndpoints and IPAM blocks, the IP pools, BGP
//!   configuration, peers and filters, as YAML.
//! - `logs/` — the files under `--log-dir`, the CNI plugin's log file and, on a host run by
//!   systemd, the journal of `brindle-node.service`.
//! - `config/` — the environment that matters, the CNI network configuration and the
//!   calicoctl connection file, with secrets redacted ([`super::diags_redact`]).

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context as _, Result, anyhow, bail};
use brindle_agent::config::AgentConfig;
use brindle_model::{Kind, Resource, ResourceList};
use clap::Args;

use super::diags_network::{network, nftables, run, sysctls};
use super::diags_redact::{env_line, redact_config};
use crate::output::yaml;

#[derive(Debug, Args)]
pub struct DiagsArgs {
    /// The directory holding the node's logs (copied into the bundle).
    #[arg(long, value_name = "LOG_DIR", default_value = "/var/log/calico")]
    pub log_dir: PathBuf,
    /// The CNI network configuration directory (its files are copied, secrets redacted; the
    /// plugin's log file is found there).
    #[arg(long, value_name = "DIR", default_value = "/etc/cni/net.d")]
    pub cni_net_dir: PathBuf,
    /// Accepted for calicoctl compatibility (the CLI and the agent are one binary).
    #[arg(long)]
    pub allow_version_mismatch: bool,
}

/// Where the bundle is being written and what went wrong so far.
pub(super) struct Bundle {
    root: PathBuf,
    failed: Vec<String>,
    written: usize,
}

impl Bundle {
    /// Runs `f` and writes what it returns to `rel`, or `rel.error` with its error.
    pub(super) fn collect(&mut self, what: &str, rel: &str, f: impl FnOnce() -> Result<Vec<u8>>) {
        println!("Dumping {what}");
        match f() {
            Ok(bytes) => self.write(rel, &bytes),
            Err(e) => self.fail(what, rel, &format!("{e:#}")),
        }
    }

    fn write(&mut self, rel: &str, bytes: &[u8]) {
        let path = self.root.join(rel);
        let res = path
            .parent()
            .map_or(Ok(()), std::fs::create_dir_all)
            .and_then(|()| std::fs::write(&path, bytes));
        match res {
            Ok(()) => self.written += 1,
            Err(e) => self.failed.push(format!("{rel}: write {}: {e}", path.display())),
        }
    }

    fn fail(&mut self, what: &str, rel: &str, error: &str) {
        self.failed.push(format!("{what}: {error}"));
        let _ = self.write_error(rel, error);
    }

    fn write_error(&mut self, rel: &str, error: &str) -> std::io::Result<()> {
        let path = self.root.join(format!("{rel}.error"));
        if let Some(p) = path.parent() {
            std::fs::create_dir_all(p)?;
        }
        std::fs::write(&path, format!("{error}\n"))?;
        self.written += 1;
        Ok(())
    }
}

pub fn diags(a: &DiagsArgs, ds: &crate::args::DatastoreArgs) -> Result<()> {
    println!("Collecting diagnostics");
    let now = brindle_ctl::status::unix_now();
    // `2026-12-07T20:50:00Z` → `20261207_205000`, calicoctl's bundle name.
    let stamp: String = brindle_model::meta::rfc3339_utc(now)
        .chars()
        .filter(|c| c.is_ascii_digit() || *c == 'T')
        .map(|c| if c == 'T' { '_' } else { c })
        .collect();
    let tmp = make_temp_dir()?;
    println!("Using temp dir: {}", tmp.display());
    let name = format!("diags-{stamp}");
    let mut b = Bundle {
        root: tmp.join(&name),
        failed: Vec::new(),
        written: 0,
    };
    std::fs::create_dir(&b.root).with_context(|| format!("create {}", b.root.display()))?;

    // The agent's settings as the agent reads them (defaults where the environment is bad).
    let cfg = match AgentConfig::from_env(|k| std::env::var(k).ok()) {
        Ok(c) => Some(c),
        Err(e) => {
            b.fail("agent configuration", "config/agent-env", &e.to_string());
            None
        }
    };
    let ctl = cfg.as_ref().map_or_else(
        || PathBuf::from(brindle_agent::config::DEFAULT_CTL_SOCKET),
        |c| c.ctl_socket.clone(),
    );
    let status = brindle_ctl::control::query_status(&ctl);
    let node = cfg
        .as_ref()
        .and_then(|c| brindle_agent::startup::node_name(c).ok())
        .or_else(|| status.as_ref().ok().map(|s| s.node.clone()));

    b.collect("node status", "status/node-status.txt", || match &status {
        Ok(st) => Ok(super::node::render_status_table(st).into_bytes()),
        Err(e) => Err(anyhow!("Calico process is not running ({}: {e})", ctl.display())),
    });
    if let Ok(st) = &status {
        b.collect("node status (json)", "status/node-status.json", || {
            Ok(super::node::render_status_json(st).into_bytes())
        });
        let pid = st.pid;
        b.collect("agent command line", "status/agent-cmdline.txt", || {
            let raw = std::fs::read(format!("/proc/{pid}/cmdline")).context("read the agent's cmdline")?;
            Ok(raw
                .split(|c| *c == 0)
                .map(String::from_utf8_lossy)
                .collect::<Vec<_>>()
                .join(" ")
                .into_bytes())
        });
        b.collect("agent environment", "config/agent-env.txt", || {
            let raw = std::fs::read(format!("/proc/{pid}/environ")).context("read the agent's environ")?;
            let vars = raw
                .split(|c| *c == 0)
                .filter_map(|v| std::str::from_utf8(v).ok()?.split_once('='))
                .map(|(k, v)| (k.to_string(), v.to_string()));
            Ok(env_text(vars).into_bytes())
        });
    }
    network(&mut b);
    nftables(&mut b);
    b.collect("sysctls", "sysctl.txt", || {
        let prefixes = cfg.as_ref().map_or_else(
            || vec!["cali".to_string()],
            |c| c.felix.interface_prefixes.clone(),
        );
        Ok(sysctls(&prefixes).into_bytes())
    });
    if let Some(c) = &cfg {
        for (what, rel, addr, path) in [
            (
                "felix stats (metrics)",
                "agent/metrics.txt",
                c.felix.metrics,
                "/metrics",
            ),
            ("readiness", "agent/readiness.txt", c.felix.health, "/readiness"),
        ] {
            b.collect(what, rel, || match addr {
                None => bail!("disabled in the agent's configuration"),
                Some(a) => http_get(a, path),
            });
        }
    }
    datastore(&mut b, ds, node.as_deref());
    logs(&mut b, a);
    config(&mut b, a, ds);

    let summary = if b.failed.is_empty() {
        "every collector succeeded\n".to_string()
    } else {
        format!("{} collectors failed:\n{}\n", b.failed.len(), b.failed.join("\n"))
    };
    b.write("SUMMARY.txt", summary.as_bytes());
    if b.written == 0 {
        bail!("nothing could be written under {}", b.root.display());
    }
    let tarball = tmp.join(format!("{name}.tar.gz"));
    let packed = Command::new("tar")
        .arg("-czf")
        .arg(&tarball)
        .arg("-C")
        .arg(&tmp)
        .arg(&name)
        .output();
    println!();
    match packed {
        Ok(o) if o.status.success() => {
            println!("Diags saved to {}", tarball.display());
            println!(
                "If required, you can upload the diagnostics bundle to a file sharing service \
                 (it holds no passwords, keys or tokens: they are redacted)."
            );
        }
        Ok(o) => eprintln!(
            "tar failed ({}); the diagnostics are in {}",
            String::from_utf8_lossy(&o.stderr).trim(),
            b.root.display()
        ),
        Err(e) => eprintln!("tar: {e}; the diagnostics are in {}", b.root.display()),
    }
    if !b.failed.is_empty() {
        eprintln!("{} collectors failed (see SUMMARY.txt):", b.failed.len());
        for f in &b.failed {
            eprintln!("  {f}");
        }
    }
    Ok(())
}

/// A new directory only this user can read, under `TMPDIR` (or /tmp).
fn make_temp_dir() -> Result<PathBuf> {
    use std::os::unix::fs::DirBuilderExt;
    let base = std::env::temp_dir();
    for i in 0..100u32 {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.subsec_nanos());
        let p = base.join(format!("brindle-diags-{}-{nanos:x}{i}", std::process::id()));
        match std::fs::DirBuilder::new().mode(0o700).create(&p) {
            Ok(()) => return Ok(p),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(e).with_context(|| format!("create a directory in {}", base.display())),
        }
    }
    bail!("no free directory name in {}", base.display())
}

/// `GET path` on the agent's HTTP server: the body when the answer is 200, else an error.
/// Readiness answers 503 when not ready: that answer is kept too.
fn http_get(addr: std::net::SocketAddr, path: &str) -> Result<Vec<u8>> {
    use std::io::{Read as _, Write as _};
    let t = std::time::Duration::from_secs(5);
    let mut s =
        std::net::TcpStream::connect_timeout(&addr, t).with_context(|| format!("connect to {addr}"))?;
    s.set_read_timeout(Some(t))?;
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )?;
    let mut raw = Vec::new();
    s.read_to_end(&mut raw)
        .with_context(|| format!("read http://{addr}{path}"))?;
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .ok_or_else(|| anyhow!("http://{addr}{path}: no end of headers"))?;
    let head = String::from_utf8_lossy(&raw[..split]).to_string();
    let status = head.lines().next().unwrap_or_default().to_string();
    if head.to_ascii_lowercase().contains("transfer-encoding: chunked") {
        bail!("http://{addr}{path}: chunked answer not supported");
    }
    let body = raw[split + 4..].to_vec();
    if status.split_whitespace().nth(1) == Some("200") || path == "/readiness" {
        let mut out = if path == "/readiness" {
            format!("{status}\n\n").into_bytes()
        } else {
            Vec::new()
        };
        out.extend_from_slice(&body);
        Ok(out)
    } else {
        bail!("http://{addr}{path}: {status}")
    }
}

/// This node's resources and the cluster-wide ones that shape its routing, as YAML lists.
fn datastore(b: &mut Bundle, ds: &crate::args::DatastoreArgs, node: Option<&str>) {
    println!("Dumping datastore resources");
    let client = match crate::connect::open(ds, crate::connect::Access::ReadOnly) {
        Ok(c) => c,
        Err(e) => return b.fail("datastore", "datastore/resources", &format!("{e:#}")),
    };
    let on_node = |r: &Resource| match r {
        Resource::Node(n) => Some(n.metadata.name.as_str()) == node,
        Resource::WorkloadEndpoint(w) => Some(w.spec.node.as_str()) == node,
        _ => true,
    };
    for (kind, file) in [
        (Kind::Node, "node.yaml"),
        (Kind::WorkloadEndpoint, "workloadendpoints.yaml"),
        (Kind::IPPool, "ippools.yaml"),
        (Kind::BGPConfiguration, "bgpconfigurations.yaml"),
        (Kind::BGPPeer, "bgppeers.yaml"),
        (Kind::BGPFilter, "bgpfilters.yaml"),
    ] {
        b.collect_quiet(&format!("datastore/{file}"), || {
            let l = client
                .list(kind, None)
                .with_context(|| format!("list {}", kind.name()))?;
            let list = ResourceList {
                kind,
                resource_version: l.revision.to_string(),
                items: l.items.into_iter().filter(|r| on_node(r)).collect(),
            };
            Ok(yaml::to_yaml(&serde_json::to_value(&list)?).into_bytes())
        });
    }
    b.collect_quiet("datastore/blocks.yaml", || {
        let ipam = brindle_ipam::Ipam::new(client.store().clone());
        let want = node.map(|n| format!("host:{n}"));
        let blocks: Vec<_> = ipam
            .blocks()
            .context("list IPAM blocks")?
            .into_iter()
            .map(|v| v.value)
            .filter(|blk| want.is_none() || blk.affinity == want)
            .collect();
        Ok(yaml::to_yaml(&serde_json::to_value(&blocks)?).into_bytes())
    });
}

impl Bundle {
    fn collect_quiet(&mut self, rel: &str, f: impl FnOnce() -> Result<Vec<u8>>) {
        match f() {
            Ok(bytes) => self.write(rel, &bytes),
            Err(e) => self.fail(rel, rel, &format!("{e:#}")),
        }
    }
}

/// Regular files under `--log-dir` (recursively) and the CNI plugin's log file.
fn logs(b: &mut Bundle, a: &DiagsArgs) {
    println!("Copying logs from {}", a.log_dir.display());
    let mut files = Vec::new();
    if let Err(e) = walk(&a.log_dir, &mut files) {
        b.fail(
            "logs",
            "logs/log-dir",
            &format!("read {}: {e}", a.log_dir.display()),
        );
    }
    for f in &files {
        let rel = f.strip_prefix(&a.log_dir).unwrap_or(f);
        b.collect_quiet(&format!("logs/{}", rel.display()), || {
            std::fs::read(f).with_context(|| format!("read {}", f.display()))
        });
    }
    // The systemd unit (deploy/systemd) logs to the journal, as calico-node.service does.
    if Path::new("/run/systemd/system").exists() {
        b.collect(
            "journal for brindle-node.service",
            "logs/journal-brindle-node.txt",
            || {
                run(
                    "journalctl",
                    &["-u", "brindle-node.service", "--no-pager", "-n", "20000"],
                )
            },
        );
    }
    let cni_logs: Vec<PathBuf> = cni_log_files(&a.cni_net_dir)
        .into_iter()
        .filter(|p| !p.starts_with(&a.log_dir))
        .collect();
    for (i, p) in cni_logs.iter().enumerate() {
        let base = p
            .file_name()
            .map_or("cni.log".into(), |n| n.to_string_lossy().into_owned());
        b.collect_quiet(&format!("logs/cni-plugin/{i}-{base}"), || {
            std::fs::read(p).with_context(|| format!("read the CNI plugin's log {}", p.display()))
        });
    }
}

fn walk(dir: &Path, out: &mut Vec<PathBuf>) -> std::io::Result<()> {
    for e in std::fs::read_dir(dir)? {
        let e = e?;
        let t = e.file_type()?;
        if t.is_dir() {
            walk(&e.path(), out)?;
        } else if t.is_file() {
            out.push(e.path());
        }
    }
    Ok(())
}

/// CNI configuration files: `*.conf`, `*.conflist`, `*.json`, sorted as libcni loads them.
fn cni_files(dir: &Path) -> std::io::Result<Vec<PathBuf>> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            p.is_file()
                && matches!(
                    p.extension().and_then(|e| e.to_str()),
                    Some("conf" | "conflist" | "json")
                )
        })
        .collect();
    v.sort();
    Ok(v)
}

/// The `log_file_path` of every Brindle/Calico plugin configured in `dir` (Calico's default
/// when a plugin names none).
fn cni_log_files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for f in cni_files(dir).unwrap_or_default() {
        let Ok(v) = std::fs::read_to_string(&f)
            .map_err(|_| ())
            .and_then(|t| serde_json::from_str::<serde_json::Value>(&t).map_err(|_| ()))
        else {
            continue;
        };
        let plugins = v
            .get("plugins")
            .and_then(|p| p.as_array())
            .cloned()
            .unwrap_or_else(|| vec![v.clone()]);
        for p in plugins {
            if matches!(p.get("type").and_then(|t| t.as_str()), Some("brindle" | "calico")) {
                let path = p
                    .get("log_file_path")
                    .and_then(|l| l.as_str())
                    .filter(|l| !l.is_empty())
                    .unwrap_or("/var/log/calico/cni/cni.log");
                if !out.iter().any(|o: &PathBuf| o == Path::new(path)) {
                    out.push(PathBuf::from(path));
                }
            }
        }
    }
    out
}

/// The variables that change what Brindle does (datastore, node identity, Felix's and
/// Calico's settings), sorted, secrets redacted.
fn env_text(vars: impl Iterator<Item = (String, String)>) -> String {
    const EXACT: &[&str] = &[
        "NODENAME",
        "HOSTNAME",
        "IP",
        "IP6",
        "AS",
        "IP_AUTODETECTION_METHOD",
        "IP6_AUTODETECTION_METHOD",
        "DATASTORE_TYPE",
        "KUBECONFIG",
        "NO_DEFAULT_POOLS",
        "CLUSTER_TYPE",
        "WAIT_FOR_DATASTORE",
    ];
    const PREFIXES: &[&str] = &["FELIX_", "CALICO_", "BRINDLE_", "ETCD_", "K8S_", "CNI_"];
    let mut v: Vec<String> = vars
        .filter(|(k, _)| EXACT.contains(&k.as_str()) || PREFIXES.iter().any(|p| k.starts_with(p)))
        .map(|(k, v)| env_line(&k, &v))
        .collect();
    v.sort();
    v.iter().map(|l| format!("{l}\n")).collect()
}

fn config(b: &mut Bundle, a: &DiagsArgs, ds: &crate::args::DatastoreArgs) {
    println!("Copying configuration");
    b.collect_quiet("config/env.txt", || Ok(env_text(std::env::vars()).into_bytes()));
    match cni_files(&a.cni_net_dir) {
        Err(e) => b.fail(
            "CNI configuration",
            "config/cni-net.d",
            &format!("read {}: {e}", a.cni_net_dir.display()),
        ),
        Ok(files) => {
            for f in files {
                let base = f
                    .file_name()
                    .map_or_else(String::new, |n| n.to_string_lossy().into_owned());
                b.collect_quiet(&format!("config/cni-net.d/{base}"), || {
                    let t = std::fs::read_to_string(&f).with_context(|| format!("read {}", f.display()))?;
                    Ok(redact_config(&t).into_bytes())
                });
            }
        }
    }
    let file = ds
        .config
        .clone()
        .or_else(|| {
            std::env::var_os(crate::connect::CONFIG_ENV)
                .filter(|v| !v.is_empty())
                .map(PathBuf::from)
        })
        .unwrap_or_else(|| PathBuf::from(crate::args::DEFAULT_CONFIG_PATH));
    b.collect_quiet("config/calicoctl.cfg", || {
        let t = std::fs::read_to_string(&file).with_context(|| format!("read {}", file.display()))?;
        Ok(format!("# {}\n{}", file.display(), redact_config(&t)).into_bytes())
    });
}
