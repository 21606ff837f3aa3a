//! `brindle node checksystem`: what `calicoctl node checksystem` does, for what Brindle needs.
//! Calico looks for kernel modules in `/lib/modules`; Brindle instead tries each feature the
//! way the agent will use it, in a throwaway network namespace (a thread's own, gone with the
//! thread): kernel ipip, VXLAN and IFB links, the NAT-outgoing nftables rules (masquerade and
//! conntrack), and the BPF tunl0 programs through the verifier. Kernels without `/lib/modules`
//! (built-in features) or with modules that load on demand are judged by what works.
//!
//! One line per check (`OK`, `WARN` or `FAIL`, the check, the detail), then a verdict; the
//! exit status is 1 when a check failed.

use std::path::{Path, PathBuf};

use anyhow::{Result, bail};
use clap::Args;

#[derive(Debug, Args)]
pub struct CheckArgs {
    /// The CNI bin directory to check (Debian's packages use /usr/lib/cni).
    #[arg(long, value_name = "DIR", default_value = brindle_cni::install::DEFAULT_BIN_DIR)]
    pub cni_bin_dir: PathBuf,
    /// The CNI configuration directory to check.
    #[arg(long, value_name = "DIR", default_value = brindle_cni::install::DEFAULT_CONF_DIR)]
    pub cni_conf_dir: PathBuf,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    Ok,
    Warn,
    Fail,
}

/// One check's result.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Check {
    pub status: Status,
    pub name: &'static str,
    pub detail: String,
}

fn check(status: Status, name: &'static str, detail: impl Into<String>) -> Check {
    Check {
        status,
        name,
        detail: detail.into(),
    }
}

/// The line printed for a check.
pub fn render(c: &Check) -> String {
    let s = match c.status {
        Status::Ok => "OK",
        Status::Warn => "WARN",
        Status::Fail => "FAIL",
    };
    format!("{s:<5} {:<18} {}", c.name, c.detail)
        .trim_end()
        .to_string()
}

/// `(major, minor)` of a kernel release string (`6.1.0-18-amd64` → (6, 1)).
pub fn kernel_version(release: &str) -> Option<(u32, u32)> {
    let mut it = release.split(|c: char| !c.is_ascii_digit());
    Some((it.next()?.parse().ok()?, it.next()?.parse().ok()?))
}

/// The BPF tunl0 redirects with `bpf_redirect_neigh`, new in Linux 5.10.
const BPF_MIN_KERNEL: (u32, u32) = (5, 10);

pub fn checksystem(a: &CheckArgs) -> Result<()> {
    let checks = run_checks(a);
    for c in &checks {
        println!("{}", render(c));
    }
    if checks.iter().any(|c| c.status == Status::Fail) {
        bail!("System doesn't meet the requirements to run Brindle");
    }
    println!("System meets the requirements to run Brindle");
    Ok(())
}

fn run_checks(a: &CheckArgs) -> Vec<Check> {
    if !nix::unistd::geteuid().is_root() {
        return vec![check(
            Status::Fail,
            "privileges",
            "needs root: the checks create links and nftables rules in a throwaway network namespace",
        )];
    }
    let release = nix::sys::utsname::uname()
        .map(|u| u.release().to_string_lossy().into_owned())
        .unwrap_or_default();
    let version = kernel_version(&release);
    let mut out = vec![match version {
        Some(v) if v >= BPF_MIN_KERNEL => check(Status::Ok, "kernel", release.clone()),
        Some(_) => check(
            Status::Warn,
            "kernel",
            format!("{release}: older than 5.10, so no BPF tunl0 fallback (kernel ipip is needed)"),
        ),
        None => check(
            Status::Warn,
            "kernel",
            format!("unrecognised release {release:?}"),
        ),
    }];
    let probe = std::thread::spawn(probe_in_private_netns)
        .join()
        .unwrap_or_else(|_| Probe::failed("the probe thread panicked"));
    out.push(probe.nft.clone());
    out.push(probe.nat.clone());
    let bpf = bpf_fallback(version, probe.ifb.status == Status::Ok);
    out.push(match (&probe.ipip, bpf.status) {
        (Ok(()), _) => check(Status::Ok, "ipip", "kernel ipip (tunl0)"),
        (Err(e), Status::Ok) => check(
            Status::Ok,
            "ipip",
            format!("no kernel ipip ({e}): tunl0 runs as the BPF fallback"),
        ),
        (Err(e), _) => check(
            Status::Fail,
            "ipip",
            format!("no kernel ipip ({e}) and no BPF fallback: IPIP pools cannot work"),
        ),
    });
    out.push(bpf);
    out.push(probe.vxlan);
    out.push(probe.ifb);
    out.push(ip_forward());
    out.push(cni_dir(
        "cni bin dir",
        &a.cni_bin_dir,
        |d| d.join("brindle").is_file(),
        "brindle plugin",
    ));
    out.push(cni_dir(
        "cni conf dir",
        &a.cni_conf_dir,
        has_brindle_network,
        "Brindle network",
    ));
    out
}

/// What the throwaway namespace showed.
struct Probe {
    ipip: std::result::Result<(), String>,
    vxlan: Check,
    ifb: Check,
    nft: Check,
    nat: Check,
}

impl Probe {
    fn failed(why: &str) -> Probe {
        Probe {
            ipip: Err(why.into()),
            vxlan: check(Status::Fail, "vxlan", why),
            ifb: check(Status::Fail, "ifb", why),
            nft: check(Status::Fail, "nftables", why),
            nat: check(Status::Fail, "nat and conntrack", why),
        }
    }
}

/// Runs on its own thread: unshares the thread's network namespace (the process's stays),
/// tries each feature there. The namespace and everything made in it go with the thread.
fn probe_in_private_netns() -> Probe {
    if let Err(e) = nix::sched::unshare(nix::sched::CloneFlags::CLONE_NEWNET) {
        return Probe::failed(&format!("cannot create a network namespace: {e}"));
    }
    let mut h = match brindle_netlink::Handle::new() {
        Ok(h) => h,
        Err(e) => return Probe::failed(&format!("netlink: {e}")),
    };
    let ipip = h.add_ipip("brindlechk0", None).map_err(|e| e.to_string());
    let vxlan = match h.add_vxlan(&brindle_netlink::VxlanSpec {
        name: "brindlechk1",
        vni: 4096,
        port: 4789,
        local: std::net::Ipv4Addr::LOCALHOST.into(),
        dev: None,
        learning: false,
        mac: None,
        mtu: None,
    }) {
        Ok(()) => check(Status::Ok, "vxlan", "vxlan.calico can be created"),
        Err(e) => check(Status::Fail, "vxlan", format!("VXLAN pools cannot work: {e}")),
    };
    let ifb = match h.add_ifb("brindlechk2", None) {
        Ok(()) => check(Status::Ok, "ifb", "IFB devices can be created"),
        Err(e) => check(
            Status::Warn,
            "ifb",
            format!("no IFB ({e}): no BPF tunl0 fallback"),
        ),
    };
    let (nft, nat) = nftables();
    Probe {
        ipip,
        vxlan,
        ifb,
        nft,
        nat,
    }
}

/// nf_tables over netlink, and Brindle's own tables loaded in the probe's namespace the way
/// the agent writes them (NAT outgoing's masquerade, the tunnel guards, the reverse-path check,
/// conntrack and the dispatch maps of workload policy). Called on the probe thread.
fn nftables() -> (Check, Check) {
    use brindle_dataplane::policy::{HostFirewall, NatPools, TunnelGuards};
    use brindle_dataplane::{PolicyConfig, PolicyDataplane};
    let tried = (|| -> std::result::Result<usize, (bool, String)> {
        let ns = brindle_netlink::NetnsFd::current().map_err(|e| (false, e.to_string()))?;
        let cfg = PolicyConfig {
            enabled: true,
            ..PolicyConfig::default()
        };
        let mut pd = PolicyDataplane::open(&ns, cfg).map_err(|e| (false, e.to_string()))?;
        pd.writer().map_err(|e| (false, e.to_string()))?;
        let pool: ipnet::IpNet = "10.0.0.0/8".parse().expect("a CIDR");
        pd.set_host(&HostFirewall {
            nat_v4: NatPools {
                masq: vec![pool],
                all: vec![pool],
            },
            tunl0: true,
            guards: TunnelGuards {
                ipip: true,
                vxlan_port: Some(4789),
            },
            peer_nodes: vec!["192.0.2.1".parse().expect("an address")],
            ..HostFirewall::default()
        })
        .map_err(|e| (true, e.to_string()))?;
        let w = pd
            .resync(brindle_policy::ir::State::default())
            .map_err(|e| (true, e.to_string()))?;
        Ok(w.changes.chains_created)
    })();
    match tried {
        Ok(chains) => (
            check(Status::Ok, "nftables", "nf_tables over netlink"),
            check(
                Status::Ok,
                "nat and conntrack",
                format!("Brindle's tables load ({chains} chains: masquerade, ct state, fib, verdict maps)"),
            ),
        ),
        Err((false, e)) => (
            check(Status::Fail, "nftables", format!("no nf_tables: {e}")),
            check(Status::Fail, "nat and conntrack", "not tried without nf_tables"),
        ),
        Err((true, e)) => (
            check(Status::Ok, "nftables", "nf_tables over netlink"),
            check(
                Status::Fail,
                "nat and conntrack",
                format!("the kernel refused Brindle's tables: {e}"),
            ),
        ),
    }
}

/// The BPF tunl0: the programs pass this kernel's verifier (and IFB exists for tunl0).
fn bpf_fallback(version: Option<(u32, u32)>, ifb: bool) -> Check {
    let bpffs = match nix::sys::statfs::statfs("/sys/fs/bpf") {
        Ok(s) if s.filesystem_type() == nix::sys::statfs::BPF_FS_MAGIC => "bpffs mounted",
        _ => "bpffs not mounted (not needed: filters are attached over netlink)",
    };
    if version.is_some_and(|v| v < BPF_MIN_KERNEL) {
        return check(Status::Warn, "bpf tunl0", "kernel older than 5.10");
    }
    match brindle_dataplane::bpf::verify_programs() {
        Ok(()) if ifb => check(
            Status::Ok,
            "bpf tunl0",
            format!("bpf/ipip.c programs pass the verifier; {bpffs}"),
        ),
        Ok(()) => check(
            Status::Warn,
            "bpf tunl0",
            "programs load, but there is no IFB for tunl0",
        ),
        Err(e) => check(Status::Warn, "bpf tunl0", format!("unavailable: {e}")),
    }
}

fn ip_forward() -> Check {
    match std::fs::read_to_string("/proc/sys/net/ipv4/ip_forward") {
        Ok(v) if v.trim() == "1" => check(Status::Ok, "ip_forward", "1"),
        Ok(v) => check(
            Status::Ok,
            "ip_forward",
            format!("{} (the agent sets it to 1 when it starts)", v.trim()),
        ),
        Err(e) => check(
            Status::Fail,
            "ip_forward",
            format!("/proc/sys/net/ipv4/ip_forward: {e}"),
        ),
    }
}

fn has_brindle_network(dir: &Path) -> bool {
    let Ok(rd) = std::fs::read_dir(dir) else {
        return false;
    };
    rd.filter_map(|e| e.ok())
        .filter(|e| {
            let n = e.file_name().to_string_lossy().into_owned();
            n.ends_with(".conflist") || n.ends_with(".conf")
        })
        .filter_map(|e| std::fs::read_to_string(e.path()).ok())
        .any(|t| t.contains("\"brindle\"") || t.contains("\"calico\""))
}

fn cni_dir(name: &'static str, dir: &Path, installed: impl Fn(&Path) -> bool, what: &str) -> Check {
    if !dir.is_dir() {
        return check(
            Status::Warn,
            name,
            format!(
                "{} does not exist (brindle install-cni creates it)",
                dir.display()
            ),
        );
    }
    let writable = nix::unistd::access(dir, nix::unistd::AccessFlags::W_OK).is_ok();
    match (writable, installed(dir)) {
        (false, _) => check(Status::Fail, name, format!("{} is not writable", dir.display())),
        (true, true) => check(Status::Ok, name, format!("{} holds the {what}", dir.display())),
        (true, false) => check(
            Status::Warn,
            name,
            format!("{}: no {what} yet (run brindle install-cni)", dir.display()),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kernel_releases() {
        assert_eq!(kernel_version("6.1.0-18-amd64"), Some((6, 1)));
        assert_eq!(kernel_version("5.10.0"), Some((5, 10)));
        assert_eq!(kernel_version("4.19.12-fc"), Some((4, 19)));
        assert!(kernel_version("4.19.12").unwrap() < BPF_MIN_KERNEL);
        assert_eq!(kernel_version("x"), None);
    }

    #[test]
    fn lines() {
        assert_eq!(
            render(&check(Status::Warn, "ifb", "no IFB")),
            "WARN  ifb                no IFB"
        );
        assert_eq!(render(&check(Status::Ok, "vxlan", "")), "OK    vxlan");
    }
}
