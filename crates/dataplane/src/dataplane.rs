//! [`Dataplane`]: one node's reconcilers behind two entry points, [`Dataplane::start`] (first
//! apply; a clear error when the kernel cannot do what the pools demand) and
//! [`Dataplane::apply`] (every later resync: periodic, or on demand after a [`Monitor`]
//! notification or a desired-state change). Errors after start are reported with their object
//! and retried by the next apply; nothing panics.
//!
//! [`Monitor`]: brindle_netlink::Monitor

use std::collections::HashSet;

use brindle_netlink::Handle;

use crate::bpf::BpfStats;
use crate::echo::Expected;
use crate::error::Error;
use crate::ipip::{IpipPath, Tunl0, Underlay};
use crate::policy::{HostFirewall, NatPools, PolicyConfig, PolicyDataplane, TunnelGuards};
use crate::routes::{self, Devices, Ownership, RouteReport};
use crate::state::DesiredState;
use crate::stats::NftRun;
use crate::{vxlan, workload};

/// Static settings.
#[derive(Debug, Clone)]
pub struct DataplaneConfig {
    /// Workload interface prefixes (default `["cali"]`).
    pub iface_prefixes: Vec<String>,
    /// Workload policy in Brindle's nftables tables (off by default: the tables then hold
    /// NAT outgoing, the tunnel guards and anti-spoofing).
    pub policy: PolicyConfig,
}

impl Default for DataplaneConfig {
    fn default() -> Self {
        DataplaneConfig {
            iface_prefixes: vec!["cali".into()],
            policy: PolicyConfig::default(),
        }
    }
}

/// How an apply runs.
#[derive(Debug, Clone, Copy)]
pub struct ApplyOptions {
    /// Delete owned routes that are no longer desired. Keep it false while a restarted agent
    /// is still re-learning routes (until BGP has converged), so nothing is flushed.
    pub prune: bool,
    /// Rewrite what is normally cached (NAT table, interface sysctls): a periodic full resync.
    pub full: bool,
}

/// What an apply found and did.
#[derive(Debug, Default, Clone)]
pub struct Report {
    pub ipip: Option<IpipPath>,
    pub routes: RouteReport,
    /// The nf_tables transaction this apply made on Brindle's tables, if it wrote anything.
    pub nft: Option<NftRun>,
    /// Every problem, naming its object.
    pub errors: Vec<String>,
}

/// The status the agent can show.
#[derive(Debug, Default, Clone)]
pub struct Status {
    /// `kernel-ipip` or `bpf-ipip` when IPIP is in use.
    pub ipip: Option<IpipPath>,
    pub bpf: Option<BpfStats>,
    pub last_errors: Vec<String>,
}

/// The node's dataplane.
pub struct Dataplane {
    h: Handle,
    cfg: DataplaneConfig,
    ownership: Ownership,
    tunl0: Option<Tunl0>,
    /// The one writer of Brindle's nftables tables.
    policy: PolicyDataplane,
    /// Workload interfaces configured, with whether spoofing was allowed.
    configured_ifaces: HashSet<(u32, bool)>,
    last_errors: Vec<String>,
    expected: std::sync::Arc<Expected>,
}

impl Dataplane {
    /// Takes the node's netlink handle and applies `desired` once. Fails when tunl0 or
    /// vxlan.calico cannot be made (e.g. pools use IPIP, the kernel has no ipip module and
    /// Brindle's BPF tunl0 cannot be loaded).
    pub fn start(
        h: Handle,
        cfg: DataplaneConfig,
        desired: &DesiredState,
    ) -> Result<(Dataplane, Report), Error> {
        let mut policy = PolicyDataplane::open(h.netns(), cfg.policy.clone())?;
        if cfg.policy.enabled {
            // Workload policy cannot be enforced without nf_tables: refuse to start.
            policy
                .writer()
                .map_err(|e| Error::Unsupported(format!("workload policy needs nf_tables: {e}")))?;
        }
        let mut dp = Dataplane {
            h,
            ownership: Ownership {
                iface_prefixes: cfg.iface_prefixes.clone(),
            },
            cfg,
            tunl0: None,
            policy,
            configured_ifaces: HashSet::new(),
            last_errors: Vec::new(),
            expected: Default::default(),
        };
        let underlay = dp.underlay(desired)?;
        if let Some(ip) = &desired.ipip {
            let t = Tunl0::ensure(&mut dp.h, ip, &underlay, &desired.peer_nodes, None)
                .map_err(|e| Error::Unsupported(format!("pools use IPIP but tunl0 cannot be set up: {e}")))?;
            tracing::info!(path = %t.path, "IPIP tunl0 ready");
            dp.tunl0 = Some(t);
        }
        if let Some(v) = &desired.vxlan {
            vxlan::ensure(&mut dp.h, v, &underlay).map_err(|e| {
                Error::Unsupported(format!("pools use VXLAN but vxlan.calico cannot be set up: {e}"))
            })?;
        }
        let report = dp.apply(
            desired,
            ApplyOptions {
                prune: false,
                full: true,
            },
        );
        Ok((dp, report))
    }

    /// A change monitor on this dataplane's namespace: the agent's loop is
    /// `apply; monitor.drain(); if monitor.wait(period) || desired changed { apply }`, so a route
    /// deleted behind Brindle's back is repaired at once and everything else at each period.
    pub fn monitor(&self) -> Result<brindle_netlink::Monitor, Error> {
        Ok(brindle_netlink::Monitor::open(self.h.netns())?)
    }

    /// What the last apply left in the kernel: kernel notifications that agree with it are the
    /// echoes of our own writes ([`Expected::needs_repair`]).
    pub fn expected(&self) -> std::sync::Arc<Expected> {
        self.expected.clone()
    }

    /// The netlink handle (for the agent's own reads, e.g. `ip route`-style status).
    pub fn handle(&mut self) -> &mut Handle {
        &mut self.h
    }

    /// Brindle's nftables tables: workload policy ([`PolicyDataplane::resync`],
    /// [`PolicyDataplane::apply`], [`PolicyDataplane::check`]). [`Dataplane::apply`] keeps
    /// their host part (NAT outgoing, tunnel guards) in step with the desired state.
    pub fn policy(&mut self) -> &mut PolicyDataplane {
        &mut self.policy
    }

    /// The host part of the tables for `desired`.
    fn host_firewall(&self, desired: &DesiredState) -> HostFirewall {
        HostFirewall {
            iface_prefixes: self.cfg.iface_prefixes.clone(),
            nat_v4: NatPools {
                masq: desired.nat.masq_pools.iter().map(|n| (*n).into()).collect(),
                all: desired.nat.all_pools.iter().map(|n| (*n).into()).collect(),
            },
            nat_v6: None,
            tunl0: desired.ipip.is_some(),
            guards: TunnelGuards {
                ipip: desired.ipip.is_some(),
                vxlan_port: desired.vxlan.as_ref().map(|v| v.port),
            },
            peer_nodes: desired.peer_nodes.iter().map(|a| (*a).into()).collect(),
        }
    }

    fn underlay(&mut self, desired: &DesiredState) -> Result<Underlay, Error> {
        let ip = desired.node.ip;
        let addr = self
            .h
            .addresses(None)?
            .into_iter()
            .find(|a| a.net.addr() == std::net::IpAddr::V4(ip))
            .ok_or_else(|| Error::Conflict(format!("no interface holds the node address {ip}")))?;
        let link = self
            .h
            .link_by_index(addr.index)?
            .ok_or_else(|| Error::Conflict(format!("interface of node address {ip} vanished")))?;
        Ok(Underlay {
            index: link.index,
            name: link.name,
            node_ip: ip,
        })
    }

    /// Makes the kernel match `desired`. Every problem is in the report (and logged).
    pub fn apply(&mut self, desired: &DesiredState, opts: ApplyOptions) -> Report {
        let mut r = Report::default();
        if let Err(e) = workload::configure_node(&self.h) {
            r.errors.push(e.to_string());
        }
        let underlay = match self.underlay(desired) {
            Ok(u) => Some(u),
            Err(e) => {
                r.errors.push(e.to_string());
                None
            }
        };
        // Tunnels.
        match (&desired.ipip, &underlay) {
            (Some(cfg), Some(u)) => {
                match Tunl0::ensure(&mut self.h, cfg, u, &desired.peer_nodes, self.tunl0.take()) {
                    Ok(t) => {
                        r.ipip = Some(t.path);
                        self.tunl0 = Some(t);
                    }
                    Err(e) => r.errors.push(format!("tunl0: {e}")),
                }
            }
            (Some(_), None) => r.errors.push("tunl0: no underlay interface".into()),
            (None, _) => {
                if let Err(e) = Tunl0::remove(&mut self.h, underlay.as_ref()) {
                    r.errors.push(format!("remove tunl0: {e}"));
                }
                self.tunl0 = None;
            }
        }
        match (&desired.vxlan, &underlay) {
            (Some(cfg), Some(u)) => match vxlan::ensure(&mut self.h, cfg, u) {
                Ok(p) => r.errors.extend(p),
                Err(e) => r.errors.push(format!("{}: {e}", routes::VXLAN_DEV)),
            },
            (Some(_), None) => r
                .errors
                .push(format!("{}: no underlay interface", routes::VXLAN_DEV)),
            (None, _) => {
                if let Err(e) = vxlan::remove(&mut self.h) {
                    r.errors.push(format!("remove {}: {e}", routes::VXLAN_DEV));
                }
            }
        }
        // Devices for routes, workload sysctls.
        let links = match self.h.links() {
            Ok(l) => l,
            Err(e) => {
                r.errors.push(e.to_string());
                Vec::new()
            }
        };
        let devs = Devices {
            by_name: links.iter().map(|l| (l.name.clone(), l.index)).collect(),
            underlay: underlay.as_ref().map(|u| u.index),
        };
        if opts.full {
            self.configured_ifaces.clear();
        }
        for w in &desired.workloads {
            let spoof = desired.spoofing_ifaces.contains(&w.iface);
            if let Some(&i) = devs.by_name.get(&w.iface)
                && !self.configured_ifaces.contains(&(i, spoof))
            {
                match brindle_netlink::workload::configure_workload_iface_for(&self.h, &w.iface, spoof) {
                    Ok(()) => {
                        self.configured_ifaces.retain(|(j, _)| *j != i);
                        self.configured_ifaces.insert((i, spoof));
                    }
                    Err(e) => r.errors.push(e.to_string()),
                }
            }
        }
        // Routes.
        let (want, problems) = routes::desired_routes(desired, &devs);
        r.errors.extend(problems);
        self.expected = std::sync::Arc::new(Expected::new(&want, &devs.by_name, desired));
        match routes::reconcile(&mut self.h, &want, &self.ownership, opts.prune) {
            Ok(rep) => {
                r.errors.extend(rep.errors.iter().cloned());
                r.routes = rep;
            }
            Err(e) => r.errors.push(e.to_string()),
        }
        r.errors.extend(workload::reconcile_workload_arp(
            &mut self.h,
            &desired.workloads,
            &devs.by_name,
            &self.cfg.iface_prefixes,
        ));
        // Brindle's nftables tables: NAT outgoing, tunnel guards, anti-spoofing (and, through
        // `policy()`, workload policy). A full resync also checks them against the kernel.
        let host = self.host_firewall(desired);
        match self.policy.set_host(&host) {
            Ok(w) => r.nft = NftRun::of_write(&w, self.policy.wanted(), true),
            Err(e) => {
                r.nft = Some(NftRun::failed());
                r.errors.push(format!("nftables: {e}"));
            }
        }
        if opts.full
            && let Err(e) = self.policy.check(false)
        {
            r.errors.push(format!("nftables: {e}"));
        }
        for e in &r.errors {
            tracing::warn!("{e}");
        }
        self.last_errors = r.errors.clone();
        r
    }

    /// What the agent shows: the IPIP path and counters, the last problems.
    pub fn status(&self) -> Status {
        Status {
            ipip: self.tunl0.as_ref().map(|t| t.path),
            bpf: self
                .tunl0
                .as_ref()
                .and_then(|t| t.bpf.as_ref())
                .and_then(|b| b.stats().ok()),
            last_errors: self.last_errors.clone(),
        }
    }
}

#[cfg(test)]
mod tests {
    /// The agent moves its dataplane onto a thread of its own.
    #[test]
    fn dataplane_is_send() {
        fn send<T: Send>() {}
        send::<super::Dataplane>();
    }
}
