//! The Kubernetes network-policy e2e cases (`test/e2e/network/netpol/network_policy.go` in
//! kubernetes/kubernetes), each as its policy and its expected truth table, written from the
//! cases' descriptions. Policies are `networking.k8s.io/v1` documents converted to
//! `knp.default.<name>` by the model as Calico's controllers do, and reach the calculation
//! through the datastore path (`upsert_resource`); the matrix is decided over every node's IR.

#[path = "../support/mod.rs"]
mod support;

mod egress;
mod ingress;
