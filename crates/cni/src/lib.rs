//! Brindle's CNI plugin and IPAM plugin: Calico-compatible pod wiring (calico.md §4), CNI
//! specification 0.3.x / 0.4.0 / 1.0.0 / 1.1.0 (containernetworking/cni `SPEC.md`).
//!
//! Module map:
//! - [`error`]: the CNI error result and its well-known codes.
//! - [`version`]: supported versions, version checks, the VERSION result.
//! - [`invocation`]: the `CNI_*` environment, checked as libcni's `skel` checks it.
//! - [`cni_args`]: `CNI_ARGS` (`K8S_POD_NAMESPACE`, `K8S_POD_NAME`, `IP`).
//! - [`netconf`]: the network configuration on stdin (Calico's fields and Brindle's).
//! - [`result`]: the success result, read from any version and written in the request's.
//! - [`identity`]: orchestrator, host veth name, WorkloadEndpoint name, IPAM handles.
//! - [`node`]: the node name and MTU the agent leaves in files.
//! - [`fault`]: the `BRINDLE_CNI_FAIL_AT` test hook for rollback tests.
//! - [`wiring`]: the veth pair, addresses, routes and sysctls, step by step (netlink).

pub mod cni_args;
pub mod error;
pub mod fault;
pub mod identity;
pub mod invocation;
pub mod netconf;
pub mod node;
pub mod result;
pub mod version;
pub mod wiring;

pub use error::{CniError, Result};
