//! Dataplane reconcilers: routes, IPIP tunl0 (kernel or BPF), VXLAN, NAT outgoing, workload interfaces.
//!
//! Module map: (to be written with the first module)
