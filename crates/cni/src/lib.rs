//! Brindle's CNI plugin and IPAM plugin: Calico-compatible pod wiring (docs/CALICO.md §7), CNI
//! specification 0.3.x / 0.4.0 / 1.0.0 / 1.1.0 (containernetworking/cni `SPEC.md`).
//!
//! Module map:
//! - [`entry`]: the process entry (role by program name, env + stdin in, stdout + status out).
//! - [`add`], [`del`], [`check`], [`status`], [`gc`]: the main plugin's verbs.
//! - [`ipam_plugin`]: the `brindle-ipam` IPAM plugin's verbs.
//! - [`context`]: what every verb starts from (invocation, configuration, version, netns).
//! - [`alloc`]: addresses from Brindle IPAM in-process, or from a delegated IPAM plugin; the
//!   host-wide IPAM lock.
//! - [`wiring`]: the veth pair, addresses, routes and sysctls, step by step (netlink).
//! - [`endpoint`]: the WorkloadEndpoint and Profile in the datastore.
//! - [`pod`]: the stored Kubernetes Pod an ADD is for, so the endpoint is complete at once.
//! - [`store`]: which datastore, and the ClusterInformation readiness gate.
//! - [`error`]: the CNI error result and its well-known codes.
//! - [`version`]: supported versions, version checks, the VERSION result.
//! - [`invocation`]: the `CNI_*` environment, checked as libcni's `skel` checks it.
//! - [`cni_args`]: `CNI_ARGS` (`K8S_POD_NAMESPACE`, `K8S_POD_NAME`, `IP`).
//! - [`netconf`]: the network configuration on stdin (Calico's fields and Brindle's).
//! - [`result`]: the success result, read from any version and written in the request's.
//! - [`identity`]: orchestrator, host veth name, WorkloadEndpoint name, IPAM handles.
//! - [`node`]: the node name and MTU the agent leaves in files.
//! - [`fault`]: the `BRINDLE_CNI_FAIL_AT` test hook for rollback tests.
//! - [`log`]: the plugin's log file and stderr.
//! - each call's latency goes to the node agent for its `/metrics` (`brindle_ctl::report`).
//! - [`install`]: `brindle install-cni` (Calico's install-cni): the plugin binaries, the etcd
//!   TLS assets and the network configuration rendered from a template, installed atomically
//!   and idempotently, recorded for `--uninstall`.
//!
//! No tokio: the plugin is a short-lived synchronous program (one netlink socket per namespace,
//! the datastore's synchronous API).

pub mod add;
pub mod alloc;
pub mod check;
pub mod cni_args;
pub mod context;
pub mod del;
pub mod endpoint;
pub mod entry;
pub mod error;
pub mod fault;
pub mod gc;
pub mod identity;
pub mod install;
pub mod invocation;
pub mod ipam_plugin;
pub mod log;
pub mod netconf;
pub mod node;
pub mod pod;
pub mod result;
pub mod status;
pub mod store;
pub mod version;
pub mod wiring;

pub use entry::{Role, main, role_of};
pub use error::{CniError, Result};
