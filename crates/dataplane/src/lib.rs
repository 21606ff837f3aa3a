//! Brindle's dataplane: makes the kernel hold what Calico's node would (docs/CALICO.md §3 and §5),
//! driven by a desired state and reconciled against what the kernel really holds.
//!
//! Module map:
//! - [`state`] — [`DesiredState`] (local blocks, remote blocks, workloads, tunnels, NAT pools,
//!   IPv4 and IPv6) and the pure encapsulation decision (Always / CrossSubnet / Never, IPIP or
//!   VXLAN; IPv6 blocks never IPIP).
//! - [`dataplane`] — [`Dataplane`]: `start` (clear startup errors) and `apply` (every resync),
//!   status (`kernel-ipip` / `bpf-ipip`).
//! - [`echo`] — [`echo::Expected`]: what the last apply left in the kernel, to tell the
//!   dataplane's own writes from others' in kernel notifications.
//! - [`routes`] — the route reconciler: desired routes, ownership, pure planning, batched apply.
//! - [`ipip`] — tunl0: the kernel's ipip device, or Brindle's BPF tunl0 (IFB + tc programs).
//! - [`bpf`] — loader of `bpf/ipip.c` (aya 0.14), attached as cls_bpf so it outlives the agent.
//! - [`vxlan`] — `vxlan.calico` and `vxlan-v6.calico`, their neighbour and FDB entries, Felix's
//!   VTEP MAC rules.
//! - [`mtu`] — Felix's host and pod MTU rules.
//! - [`policy`] — [`PolicyDataplane`]: workload policy, anti-spoofing and NAT outgoing in
//!   Brindle's tables `ip brindle` / `ip6 brindle`, one transaction per change, reconciled.
//! - [`firewall`] — the tables as values, the pure plan between two of them, the writer that
//!   commits plans over netlink and repairs what others changed.
//! - [`stats`] — what an apply did, counted for the agent's metrics ([`stats::NftRun`]).
//! - [`conntrack`] — deleting the conntrack flows of local workload addresses that went away
//!   (Felix's conntrack cleanup), after their routes, on a worker thread.
//! - [`workload`] — IPv6 workload interface sysctls, node forwarding sysctls, static ARP
//!   entries (the IPv4 interface sysctls and the pod `/32` route are `brindle_netlink::workload`,
//!   shared with the CNI plugin).
//! - [`error`] — [`Error`].
//!
//! Standards followed: IPIP encapsulation (RFC 2003), VXLAN over IPv4 and IPv6 (RFC 7348), ECN on
//! tunnels (RFC 6040, as the kernel's `INET_ECN_encapsulate`), IPv6 neighbour discovery for the
//! pods' link-local gateway (RFC 4861, RFC 4291 §2.5.6 for the EUI-64 link-local address).

pub mod bpf;
pub mod conntrack;
pub mod dataplane;
pub mod echo;
pub mod error;
pub mod firewall;
pub mod ipip;
pub mod mtu;
pub mod policy;
pub mod routes;
pub mod state;
pub mod stats;
pub mod vxlan;
pub mod workload;

pub use dataplane::{ApplyOptions, Dataplane, DataplaneConfig, Report, Status};
pub use error::Error;
pub use ipip::IpipPath;
pub use policy::{HostFirewall, PolicyConfig, PolicyDataplane};
pub use state::{
    DesiredState, EncapMode, IpipConfig, NatOutgoing, NodeInfo, RemoteBlock, RemoteVtep, RouteEncap,
    VxlanConfig, Workload,
};
