//! [`Dataplane`]: one node's reconcilers behind two entry points, [`Dataplane::start`] (first
//! apply; a clear error when the kernel cannot do what the pools demand) and
//! [`Dataplane::apply`] (every later resync: periodic, or on demand after a [`Monitor`]
//! notification or a desired-state change). Errors after start are reported with their object
//! and retried by the next apply; nothing panics.
//!
//! [`Monitor`]: brindle_netlink::Monitor

use std::collections::HashSet;
use std::net::IpAddr;

use ipnet::IpNet;

use brindle_netlink::Handle;

use crate::bpf::BpfStats;
use crate::conntrack::{self, Cleanup};
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
    /// Conntrack flows deleted for local workload addresses that went away.
    pub conntrack: Cleanup,
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

/// The links holding the node's addresses, per family.
#[derive(Debug, Clone, Default)]
struct Underlays {
    v4: Option<Underlay>,
    v6: Option<vxlan::Parent>,
}

impl Underlays {
    /// The parent of the VXLAN device of a family.
    fn parent(&self, v6: bool) -> Option<vxlan::Parent> {
        if v6 {
            self.v6
        } else {
            self.v4.as_ref().map(|u| vxlan::Parent {
                index: u.index,
                local: IpAddr::V4(u.node_ip),
            })
        }
    }
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
    /// Local workload addresses, to delete the conntrack flows of those that go away.
    conntrack: conntrack::Tracker,
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
            conntrack: conntrack::Tracker::default(),
            last_errors: Vec::new(),
            expected: Default::default(),
        };
        let underlay = dp.underlay(desired)?;
        if let Some(ip) = &desired.ipip {
            let u = underlay.v4.as_ref().ok_or_else(|| {
                Error::Unsupported("pools use IPIP but the node has no IPv4 address".into())
            })?;
            let t = Tunl0::ensure(&mut dp.h, ip, u, &desired.peer_nodes, None)
                .map_err(|e| Error::Unsupported(format!("pools use IPIP but tunl0 cannot be set up: {e}")))?;
            tracing::info!(path = %t.path, "IPIP tunl0 ready");
            dp.tunl0 = Some(t);
        }
        for cfg in [&desired.vxlan, &desired.vxlan_v6].into_iter().flatten() {
            let name = vxlan::device_name(cfg);
            let parent = underlay.parent(cfg.is_v6()).ok_or_else(|| {
                Error::Unsupported(format!(
                    "pools use VXLAN but {name} has no node address of its family to send from"
                ))
            })?;
            vxlan::ensure(&mut dp.h, cfg, parent).map_err(|e| {
                Error::Unsupported(format!("pools use VXLAN but {name} cannot be set up: {e}"))
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
        let (v4_masq, v4_all) = desired.nat.v4();
        let (v6_masq, v6_all) = desired.nat.v6();
        HostFirewall {
            iface_prefixes: self.cfg.iface_prefixes.clone(),
            nat_v4: NatPools {
                masq: v4_masq.into_iter().map(IpNet::V4).collect(),
                all: v4_all.into_iter().map(IpNet::V4).collect(),
            },
            // NAT66: `ip6 brindle` gets its NAT chains once an IPv6 pool exists.
            nat_v6: (!v6_all.is_empty()).then(|| NatPools {
                masq: v6_masq.into_iter().map(IpNet::V6).collect(),
                all: v6_all.into_iter().map(IpNet::V6).collect(),
            }),
            tunl0: desired.ipip.is_some(),
            guards: TunnelGuards {
                ipip: desired.ipip.is_some(),
                vxlan_port: desired.vxlan.as_ref().map(|v| v.port),
            },
            peer_nodes: desired.peer_nodes.iter().map(|a| (*a).into()).collect(),
        }
    }

    /// The links holding the node's addresses. A node address no interface holds is an error.
    fn underlay(&mut self, desired: &DesiredState) -> Result<Underlays, Error> {
        let addrs = self.h.addresses(None)?;
        let mut find = |ip: IpAddr| -> Result<(u32, String), Error> {
            let addr = addrs
                .iter()
                .find(|a| a.net.addr() == ip)
                .ok_or_else(|| Error::Conflict(format!("no interface holds the node address {ip}")))?;
            let link = self
                .h
                .link_by_index(addr.index)?
                .ok_or_else(|| Error::Conflict(format!("interface of node address {ip} vanished")))?;
            Ok((link.index, link.name))
        };
        let mut u = Underlays::default();
        if let Some(net) = desired.node.ipv4 {
            let (index, name) = find(IpAddr::V4(net.addr()))?;
            u.v4 = Some(Underlay {
                index,
                name,
                node_ip: net.addr(),
            });
        }
        if let Some(net) = desired.node.ipv6 {
            let (index, _) = find(IpAddr::V6(net.addr()))?;
            u.v6 = Some(vxlan::Parent {
                index,
                local: IpAddr::V6(net.addr()),
            });
        }
        if u.v4.is_none() && u.v6.is_none() {
            return Err(Error::Conflict(format!(
                "node {} has neither an IPv4 nor an IPv6 address",
                desired.node.name
            )));
        }
        Ok(u)
    }

    /// Makes the kernel match `desired`. Every problem is in the report (and logged).
    pub fn apply(&mut self, desired: &DesiredState, opts: ApplyOptions) -> Report {
        let mut r = Report::default();
        let v6 = desired.ipv6_enabled();
        if let Err(e) = workload::configure_node(&self.h) {
            r.errors.push(e.to_string());
        }
        if v6 && let Err(e) = workload::configure_node_v6(&self.h) {
            r.errors.push(e.to_string());
        }
        let underlays = match self.underlay(desired) {
            Ok(u) => u,
            Err(e) => {
                r.errors.push(e.to_string());
                Underlays::default()
            }
        };
        let underlay = underlays.v4.clone();
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
        for (cfg, name, family_v6) in [
            (&desired.vxlan, routes::VXLAN_DEV, false),
            (&desired.vxlan_v6, routes::VXLAN_V6_DEV, true),
        ] {
            match (cfg, underlays.parent(family_v6)) {
                (Some(cfg), Some(parent)) => match vxlan::ensure(&mut self.h, cfg, parent) {
                    Ok(p) => r.errors.extend(p),
                    Err(e) => r.errors.push(format!("{name}: {e}")),
                },
                (Some(_), None) => r.errors.push(format!("{name}: no underlay interface")),
                (None, _) => {
                    if let Err(e) = vxlan::remove(&mut self.h, name) {
                        r.errors.push(format!("remove {name}: {e}"));
                    }
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
            underlay_v6: underlays.v6.map(|p| p.index),
        };
        if opts.full {
            self.configured_ifaces.clear();
        }
        for w in &desired.workloads {
            let spoof = desired.spoofing_ifaces.contains(&w.iface);
            if let Some(&i) = devs.by_name.get(&w.iface)
                && !self.configured_ifaces.contains(&(i, spoof))
            {
                let res = brindle_netlink::workload::configure_workload_iface_for(&self.h, &w.iface, spoof)
                    .map_err(crate::error::Error::from)
                    .and_then(|()| {
                        if v6 {
                            workload::configure_workload_iface_v6(&self.h, &w.iface)
                        } else {
                            Ok(())
                        }
                    });
                match res {
                    Ok(()) => {
                        self.configured_ifaces.retain(|(j, _)| *j != i);
                        self.configured_ifaces.insert((i, spoof));
                    }
                    Err(e) => r.errors.push(e.to_string()),
                }
            }
        }
        // Routes (an address that moved, or is wanted again, first has its old flows deleted).
        self.conntrack.before_routes(self.h.netns(), &desired.workloads);
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
        // The routes of gone workload addresses are gone now: so must their flows be.
        let (cleanup, problems) = self
            .conntrack
            .after_routes(self.h.netns(), &desired.workloads, opts.prune);
        r.conntrack = cleanup;
        r.errors.extend(problems);
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
