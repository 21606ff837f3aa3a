//! The Kubernetes network-policy e2e cases (`test/e2e/network/netpol/network_policy.go` in
//! kubernetes/kubernetes, written from the cases' descriptions) and Calico-only cases, enforced
//! for real on ONE lab brought up once: namespaces x, y, z × pods a, b, c (labels `pod=<name>`,
//! `ns=<name>` and `kubernetes.io/metadata.name`) spread over the three nodes, listeners on
//! ports 80/81 over TCP and UDP, container ports named `serve-<port>-<proto>`.
//!
//! Each case applies its policies with `brindle lab apply` (the CLI's path), probes pod IPs
//! directly (no kube-proxy) with `lab probe`'s prober over IPv4 and IPv6 (the lab is dual
//! stack; CIDRs in the cases name both families), compares each family with its expected truth table
//! (retrying as the policy reaches the agents; upstream retries once), then everything it added
//! is deleted and the model re-applied, so the next case starts from the same lab. Every case
//! runs; the test fails at the end listing each failed case with its expected and observed
//! tables. `BRINDLE_NETPOL_ONLY=<part of a name>` runs the matching cases only.
//!
//! Then, on the same lab: no open window for a pod made under a deny policy, and no spoofing
//! (`window_cases`).

#[path = "../lab_support/mod.rs"]
mod lab_support;

mod calico_cases;
mod k8s_cases;
mod model;
mod window_cases;

use std::time::Instant;

use model::Suite;

#[test]
fn netpol_cases_on_one_lab() {
    let started = Instant::now();
    let suite = Suite::up();
    let mut failures = Vec::new();
    let mut count = 0;
    // Developers may run some cases only (by a part of their names).
    let only = std::env::var("BRINDLE_NETPOL_ONLY").ok();
    for case in k8s_cases::all()
        .into_iter()
        .chain(calico_cases::all())
        .chain(window_cases::all())
        .filter(|c| only.as_deref().is_none_or(|o| c.name.contains(o)))
    {
        count += 1;
        let t = Instant::now();
        let result = suite.run(&case);
        eprintln!(
            "case {:<70} {} in {:.1}s",
            case.name,
            if result.is_ok() { "ok" } else { "FAILED" },
            t.elapsed().as_secs_f64()
        );
        if let Err(e) = result {
            failures.push(format!("=== {} ===\n{e}", case.name));
        }
        if let Err(e) = suite.reset() {
            failures.push(format!("=== reset after {} ===\n{e}", case.name));
            break;
        }
    }
    eprintln!(
        "{count} cases, {} failed, in {:.1}s (lab up included)",
        failures.len(),
        started.elapsed().as_secs_f64()
    );
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
