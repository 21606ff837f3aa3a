//! The Kubernetes network-policy e2e cases (`test/e2e/network/netpol/network_policy.go` in
//! kubernetes/kubernetes), each as its policy and its expected truth table, written from the
//! cases' descriptions. The policies are given as Calico stores a converted Kubernetes policy
//! (`knp.default.<name>`, order 1000, the orchestrator clause on every pod selector, one rule
//! per protocol and peer, ingress peers in `source`) and go through the datastore path
//! (`upsert_resource`). The matrix is decided over every node's IR.

mod support;

use brindle_model::Kind;
use support::netpol::{Peer, Reachability, apply_yaml, knp, model, pod_by_name, validate};

fn delete_knp(c: &mut support::Cluster, ns: &str, name: &str) {
    let name = format!("knp.default.{name}");
    c.apply(|calc| {
        calc.remove_resource(Kind::NetworkPolicy, ns, &name);
    });
}

#[test]
fn default_deny_ingress() {
    let mut c = model();
    apply_yaml(&mut c, &knp("x", "deny-ingress", "", "  types: [Ingress]"));
    let mut r = Reachability::default();
    r.expect_peer(Peer::ANY, Peer::ns("x"), false);
    validate(&c, "default-deny-ingress", "tcp", 80, &r);
    validate(&c, "default-deny-ingress", "udp", 81, &r);
}

#[test]
fn default_deny_all() {
    let mut c = model();
    apply_yaml(&mut c, &knp("x", "deny-all", "", "  types: [Ingress, Egress]"));
    let mut r = Reachability::default();
    r.expect_peer(Peer::ANY, Peer::ns("x"), false)
        .expect_peer(Peer::ns("x"), Peer::ANY, false);
    validate(&c, "default-deny-all", "tcp", 80, &r);
}

#[test]
fn allow_from_pods_within_namespace_by_pod_selector() {
    let mut c = model();
    apply_yaml(
        &mut c,
        &knp(
            "x",
            "x-a-allows-x-b",
            "pod == 'a'",
            "  types: [Ingress]\n  ingress:\n  - action: Allow\n    protocol: TCP\n    source: {selector: \"$K && pod == 'b'\"}",
        ),
    );
    let mut r = Reachability::default();
    r.expect_all_ingress("x/a", false).expect("x/b", "x/a", true);
    validate(&c, "podSelector", "tcp", 80, &r);
}

#[test]
fn allow_ingress_to_a_target_from_everywhere() {
    let mut c = model();
    apply_yaml(&mut c, &knp("x", "deny-ingress", "", "  types: [Ingress]"));
    apply_yaml(
        &mut c,
        &knp(
            "x",
            "allow-all-to-a",
            "pod == 'a'",
            "  types: [Ingress]\n  ingress:\n  - action: Allow",
        ),
    );
    let mut r = Reachability::default();
    r.expect_peer(Peer::ANY, Peer::ns("x"), false)
        .expect_all_ingress("x/a", true);
    validate(&c, "allow ingress for a target", "tcp", 80, &r);
}

#[test]
fn allow_ingress_from_all_namespaces() {
    let mut c = model();
    apply_yaml(
        &mut c,
        &knp(
            "x",
            "allow-all-ns",
            "pod == 'a'",
            "  types: [Ingress]\n  ingress:\n  - action: Allow\n    protocol: TCP\n    source: {selector: \"$K\", namespaceSelector: all()}",
        ),
    );
    validate(&c, "namespaceSelector {}", "tcp", 80, &Reachability::default());
}

#[test]
fn allow_only_from_another_namespace_by_namespace_selector() {
    let mut c = model();
    apply_yaml(
        &mut c,
        &knp(
            "x",
            "allow-ns-y",
            "pod == 'a'",
            "  types: [Ingress]\n  ingress:\n  - action: Allow\n    protocol: TCP\n    source: {selector: \"$K\", namespaceSelector: \"kubernetes.io/metadata.name == 'y'\"}",
        ),
    );
    let mut r = Reachability::default();
    r.expect_peer(Peer::ns("x"), Peer::pod("x/a"), false)
        .expect_peer(Peer::ns("z"), Peer::pod("x/a"), false);
    validate(&c, "namespaceSelector", "tcp", 80, &r);
}

#[test]
fn pod_selector_with_match_expressions() {
    let mut c = model();
    apply_yaml(
        &mut c,
        &knp(
            "x",
            "match-expr",
            "pod == 'a'",
            "  types: [Ingress]\n  ingress:\n  - action: Allow\n    protocol: TCP\n    source: {selector: \"$K && pod in { 'b' }\"}",
        ),
    );
    let mut r = Reachability::default();
    r.expect_all_ingress("x/a", false).expect("x/b", "x/a", true);
    validate(&c, "podSelector matchExpressions", "tcp", 80, &r);
}

#[test]
fn namespace_selector_with_match_expressions() {
    let mut c = model();
    apply_yaml(
        &mut c,
        &knp(
            "x",
            "ns-expr",
            "pod == 'a'",
            "  types: [Ingress]\n  ingress:\n  - action: Allow\n    protocol: TCP\n    source: {selector: \"$K\", namespaceSelector: \"ns in { 'y' }\"}",
        ),
    );
    let mut r = Reachability::default();
    r.expect_peer(Peer::ns("x"), Peer::pod("x/a"), false)
        .expect_peer(Peer::ns("z"), Peer::pod("x/a"), false);
    validate(&c, "namespaceSelector matchExpressions", "tcp", 80, &r);
}

#[test]
fn pod_selector_or_namespace_selector() {
    let mut c = model();
    apply_yaml(
        &mut c,
        &knp(
            "x",
            "ns-or-pod",
            "pod == 'a'",
            "  types: [Ingress]\n  ingress:\n  - action: Allow\n    protocol: TCP\n    source: {selector: \"$K\", namespaceSelector: \"ns not in { 'x' }\"}\n  - action: Allow\n    protocol: TCP\n    source: {selector: \"$K && pod == 'b'\"}",
        ),
    );
    let mut r = Reachability::default();
    r.expect("x/c", "x/a", false);
    validate(&c, "pod OR ns", "tcp", 80, &r);
}

#[test]
fn pod_selector_and_namespace_selector() {
    let mut c = model();
    apply_yaml(
        &mut c,
        &knp(
            "x",
            "ns-and-pod",
            "pod == 'a'",
            "  types: [Ingress]\n  ingress:\n  - action: Allow\n    protocol: TCP\n    source: {selector: \"$K && pod in { 'b' }\", namespaceSelector: \"ns not in { 'x' }\"}",
        ),
    );
    let mut r = Reachability::default();
    r.expect_all_ingress("x/a", false)
        .expect("y/b", "x/a", true)
        .expect("z/b", "x/a", true);
    validate(&c, "pod AND ns", "tcp", 80, &r);
}

#[test]
fn multiple_pod_selectors_and_namespace_selectors() {
    let mut c = model();
    apply_yaml(
        &mut c,
        &knp(
            "x",
            "multi",
            "pod == 'a'",
            "  types: [Ingress]\n  ingress:\n  - action: Allow\n    protocol: TCP\n    source: {selector: \"$K && pod in { 'b', 'c' }\", namespaceSelector: \"ns not in { 'x' }\"}",
        ),
    );
    let mut r = Reachability::default();
    r.expect_all_ingress("x/a", false);
    for from in ["y/b", "y/c", "z/b", "z/c"] {
        r.expect(from, "x/a", true);
    }
    validate(&c, "multiple pod and ns selectors", "tcp", 80, &r);
}

#[test]
fn any_pod_selectors() {
    let mut c = model();
    apply_yaml(
        &mut c,
        &knp(
            "x",
            "any-pod",
            "pod == 'a'",
            "  types: [Ingress]\n  ingress:\n  - action: Allow\n    protocol: TCP\n    source: {selector: \"$K && pod == 'b'\"}\n  - action: Allow\n    protocol: TCP\n    source: {selector: \"$K && pod == 'c'\"}",
        ),
    );
    let mut r = Reachability::default();
    r.expect_all_ingress("x/a", false)
        .expect("x/b", "x/a", true)
        .expect("x/c", "x/a", true);
    validate(&c, "any podSelector", "tcp", 80, &r);
}

#[test]
fn only_from_a_pod_in_another_namespace() {
    for proto in ["tcp", "udp", "sctp"] {
        let mut c = model();
        let p = proto.to_uppercase();
        apply_yaml(
            &mut c,
            &knp(
                "x",
                "y-a-only",
                "pod == 'a'",
                &format!(
                    "  types: [Ingress]\n  ingress:\n  - action: Allow\n    protocol: {p}\n    source: {{selector: \"$K && pod == 'a'\", namespaceSelector: \"kubernetes.io/metadata.name == 'y'\"}}"
                ),
            ),
        );
        let mut r = Reachability::default();
        r.expect_all_ingress("x/a", false).expect("y/a", "x/a", true);
        validate(&c, "pod in another namespace", proto, 80, &r);
    }
}

#[test]
fn ports_and_stacked_policies() {
    for proto in ["tcp", "udp", "sctp"] {
        let mut c = model();
        let p = proto.to_uppercase();
        apply_yaml(
            &mut c,
            &knp(
                "x",
                "allow-81-from-y",
                "pod == 'a'",
                &format!(
                    "  types: [Ingress]\n  ingress:\n  - action: Allow\n    protocol: {p}\n    source: {{selector: \"$K\", namespaceSelector: \"ns == 'y'\"}}\n    destination: {{ports: [81]}}"
                ),
            ),
        );
        let mut r81 = Reachability::default();
        r81.expect_peer(Peer::ns("x"), Peer::pod("x/a"), false)
            .expect_peer(Peer::ns("z"), Peer::pod("x/a"), false);
        validate(&c, "port 81 from y", proto, 81, &r81);
        let mut r80 = Reachability::default();
        r80.expect_all_ingress("x/a", false);
        validate(&c, "port 80 closed", proto, 80, &r80);
        // A second policy on the same pods opens 80 too.
        apply_yaml(
            &mut c,
            &knp(
                "x",
                "allow-80-from-y",
                "pod == 'a'",
                &format!(
                    "  types: [Ingress]\n  ingress:\n  - action: Allow\n    protocol: {p}\n    source: {{selector: \"$K\", namespaceSelector: \"ns == 'y'\"}}\n    destination: {{ports: [80]}}"
                ),
            ),
        );
        validate(&c, "stacked: 80 from y", proto, 80, &r81);
        validate(&c, "stacked: 81 from y", proto, 81, &r81);
    }
}

#[test]
fn allow_all_policy() {
    let mut c = model();
    apply_yaml(
        &mut c,
        &knp(
            "x",
            "allow-all",
            "",
            "  types: [Ingress]\n  ingress:\n  - action: Allow",
        ),
    );
    validate(&c, "allow-all", "tcp", 80, &Reachability::default());
}

#[test]
fn ingress_on_one_named_port() {
    let mut c = model();
    apply_yaml(
        &mut c,
        &knp(
            "x",
            "named-81",
            "",
            "  types: [Ingress]\n  ingress:\n  - action: Allow\n    protocol: TCP\n    destination: {ports: [serve-81-tcp]}",
        ),
    );
    validate(&c, "named port 81", "tcp", 81, &Reachability::default());
    let mut r = Reachability::default();
    r.expect_peer(Peer::ANY, Peer::ns("x"), false);
    validate(&c, "named port: 80 closed", "tcp", 80, &r);
}

#[test]
fn ingress_from_namespace_on_one_named_port() {
    let mut c = model();
    apply_yaml(
        &mut c,
        &knp(
            "x",
            "named-80-from-y",
            "",
            "  types: [Ingress]\n  ingress:\n  - action: Allow\n    protocol: TCP\n    source: {selector: \"$K\", namespaceSelector: \"ns == 'y'\"}\n    destination: {ports: [serve-80-tcp]}",
        ),
    );
    let mut r = Reachability::default();
    r.expect_peer(Peer::ns("x"), Peer::ns("x"), false)
        .expect_peer(Peer::ns("z"), Peer::ns("x"), false);
    validate(&c, "named port from y", "tcp", 80, &r);
    let mut r81 = Reachability::default();
    r81.expect_peer(Peer::ANY, Peer::ns("x"), false);
    validate(&c, "named port from y: 81 closed", "tcp", 81, &r81);
}

#[test]
fn egress_on_one_named_port() {
    let mut c = model();
    apply_yaml(
        &mut c,
        &knp(
            "x",
            "egress-named-80",
            "",
            "  types: [Egress]\n  egress:\n  - action: Allow\n    protocol: TCP\n    destination: {ports: [serve-80-tcp]}",
        ),
    );
    validate(&c, "egress named port 80", "tcp", 80, &Reachability::default());
    let mut r = Reachability::default();
    r.expect_peer(Peer::ns("x"), Peer::ANY, false);
    validate(&c, "egress named port: 81 closed", "tcp", 81, &r);
}

#[test]
fn updated_policy() {
    let mut c = model();
    let named = |port: &str| {
        knp(
            "x",
            "allow-named",
            "",
            &format!(
                "  types: [Ingress]\n  ingress:\n  - action: Allow\n    protocol: TCP\n    destination: {{ports: [{port}]}}"
            ),
        )
    };
    apply_yaml(&mut c, &named("serve-81-tcp"));
    let mut closed = Reachability::default();
    closed.expect_peer(Peer::ANY, Peer::ns("x"), false);
    validate(&c, "before update: 81 open", "tcp", 81, &Reachability::default());
    validate(&c, "before update: 80 closed", "tcp", 80, &closed);
    apply_yaml(&mut c, &named("serve-80-tcp"));
    validate(&c, "after update: 80 open", "tcp", 80, &Reachability::default());
    validate(&c, "after update: 81 closed", "tcp", 81, &closed);
}

#[test]
fn updated_namespace_labels() {
    let mut c = model();
    apply_yaml(
        &mut c,
        &knp(
            "x",
            "from-updated-ns",
            "pod == 'a'",
            "  types: [Ingress]\n  ingress:\n  - action: Allow\n    protocol: TCP\n    source: {selector: \"$K\", namespaceSelector: \"ns2 == 'updated'\"}",
        ),
    );
    let mut r = Reachability::default();
    r.expect_all_ingress("x/a", false);
    validate(&c, "before namespace label", "tcp", 80, &r);
    c.add_profile(&support::namespace_profile(
        "y",
        &[("ns", "y"), ("ns2", "updated")],
    ));
    r.expect_peer(Peer::ns("y"), Peer::pod("x/a"), true);
    validate(&c, "after namespace label", "tcp", 80, &r);
}

#[test]
fn updated_pod_labels() {
    let mut c = model();
    apply_yaml(
        &mut c,
        &knp(
            "x",
            "from-updated-pod",
            "pod == 'a'",
            "  types: [Ingress]\n  ingress:\n  - action: Allow\n    protocol: TCP\n    source: {selector: \"$K && podname == 'updated'\"}",
        ),
    );
    let mut r = Reachability::default();
    r.expect_all_ingress("x/a", false);
    validate(&c, "before pod label", "tcp", 80, &r);
    let xb = pod_by_name("x/b");
    let relabelled = support::Pod {
        labels: &[("pod", "b"), ("podname", "updated")],
        ..xb
    };
    c.add_pod(&relabelled);
    r.expect("x/b", "x/a", true);
    validate(&c, "after pod label", "tcp", 80, &r);
}

#[test]
fn deny_ingress_from_other_namespaces() {
    let mut c = model();
    apply_yaml(
        &mut c,
        &knp(
            "x",
            "same-ns-only",
            "",
            "  types: [Ingress]\n  ingress:\n  - action: Allow\n    source: {selector: \"$K\"}",
        ),
    );
    let mut r = Reachability::default();
    r.expect_peer(Peer::ns("y"), Peer::ns("x"), false)
        .expect_peer(Peer::ns("z"), Peer::ns("x"), false);
    validate(&c, "deny from other namespaces", "tcp", 80, &r);
}

#[test]
fn deny_ingress_to_updated_pod() {
    let mut c = model();
    apply_yaml(
        &mut c,
        &knp(
            "x",
            "isolate-target",
            "target == 'isolated'",
            "  types: [Ingress]",
        ),
    );
    validate(&c, "nothing isolated yet", "tcp", 80, &Reachability::default());
    let xa = pod_by_name("x/a");
    c.add_pod(&support::Pod {
        labels: &[("pod", "a"), ("target", "isolated")],
        ..xa
    });
    let mut r = Reachability::default();
    r.expect_all_ingress("x/a", false);
    validate(&c, "x/a isolated", "tcp", 80, &r);
}

#[test]
fn deny_egress_by_pod_selector_and_in_a_namespace() {
    let mut c = model();
    apply_yaml(
        &mut c,
        &knp("x", "deny-egress-a", "pod == 'a'", "  types: [Egress]"),
    );
    let mut r = Reachability::default();
    r.expect_all_egress("x/a", false);
    validate(&c, "deny egress x/a", "tcp", 80, &r);
    delete_knp(&mut c, "x", "deny-egress-a");
    apply_yaml(&mut c, &knp("x", "deny-egress-all", "", "  types: [Egress]"));
    let mut r = Reachability::default();
    r.expect_peer(Peer::ns("x"), Peer::ANY, false);
    validate(&c, "deny egress from namespace x", "tcp", 80, &r);
}

#[test]
fn ingress_and_egress_together() {
    let mut c = model();
    apply_yaml(
        &mut c,
        &knp(
            "x",
            "both",
            "pod == 'a'",
            "  types: [Ingress, Egress]\n  ingress:\n  - action: Allow\n    protocol: TCP\n    source: {selector: \"$K && pod == 'b'\"}\n  egress:\n  - action: Allow\n    protocol: TCP\n    destination: {selector: \"$K && pod == 'b'\"}",
        ),
    );
    let mut r = Reachability::default();
    r.expect_all_ingress("x/a", false)
        .expect_all_egress("x/a", false)
        .expect("x/b", "x/a", true)
        .expect("x/a", "x/b", true);
    validate(&c, "ingress and egress", "tcp", 80, &r);
}

#[test]
fn egress_denied_on_the_client_side_even_if_the_server_allows() {
    let mut c = model();
    apply_yaml(
        &mut c,
        &knp(
            "x",
            "a-to-y-only",
            "pod == 'a'",
            "  types: [Egress]\n  egress:\n  - action: Allow\n    destination: {selector: \"$K\", namespaceSelector: \"ns == 'y'\"}",
        ),
    );
    apply_yaml(
        &mut c,
        &knp(
            "z",
            "z-from-x-a",
            "",
            "  types: [Ingress]\n  ingress:\n  - action: Allow\n    source: {selector: \"$K && pod == 'a'\", namespaceSelector: \"ns == 'x'\"}",
        ),
    );
    let mut r = Reachability::default();
    r.expect_all_egress("x/a", false)
        .expect_peer(Peer::pod("x/a"), Peer::ns("y"), true)
        .expect_peer(Peer::ANY, Peer::ns("z"), false);
    validate(&c, "client-side egress deny", "tcp", 80, &r);
}

#[test]
fn egress_to_a_pod_in_another_namespace() {
    let mut c = model();
    apply_yaml(
        &mut c,
        &knp(
            "x",
            "a-to-y-a",
            "pod == 'a'",
            "  types: [Egress]\n  egress:\n  - action: Allow\n    protocol: TCP\n    destination: {selector: \"$K && pod == 'a'\", namespaceSelector: \"ns == 'y'\"}",
        ),
    );
    let mut r = Reachability::default();
    r.expect_all_egress("x/a", false).expect("x/a", "y/a", true);
    validate(&c, "egress to y/a", "tcp", 80, &r);
}

#[test]
fn any_port_on_one_protocol() {
    let mut c = model();
    apply_yaml(
        &mut c,
        &knp(
            "x",
            "tcp-any-port",
            "pod == 'a'",
            "  types: [Ingress]\n  ingress:\n  - action: Allow\n    protocol: TCP",
        ),
    );
    validate(&c, "tcp any port: 80", "tcp", 80, &Reachability::default());
    validate(&c, "tcp any port: 81", "tcp", 81, &Reachability::default());
    let mut r = Reachability::default();
    r.expect_all_ingress("x/a", false);
    validate(&c, "tcp any port: udp closed", "udp", 80, &r);
}

#[test]
fn allow_all_takes_precedence_over_narrower_policies() {
    let mut c = model();
    apply_yaml(
        &mut c,
        &knp(
            "x",
            "only-80",
            "pod == 'a'",
            "  types: [Ingress]\n  ingress:\n  - action: Allow\n    protocol: TCP\n    destination: {ports: [80]}",
        ),
    );
    let mut r = Reachability::default();
    r.expect_all_ingress("x/a", false);
    validate(&c, "only 80: 81 closed", "tcp", 81, &r);
    apply_yaml(
        &mut c,
        &knp(
            "x",
            "allow-all-a",
            "pod == 'a'",
            "  types: [Ingress]\n  ingress:\n  - action: Allow",
        ),
    );
    validate(
        &c,
        "allow-all added: 81 open",
        "tcp",
        81,
        &Reachability::default(),
    );

    let mut c = model();
    apply_yaml(
        &mut c,
        &knp(
            "x",
            "egress-only-80",
            "pod == 'a'",
            "  types: [Egress]\n  egress:\n  - action: Allow\n    protocol: TCP\n    destination: {ports: [80]}",
        ),
    );
    let mut r = Reachability::default();
    r.expect_all_egress("x/a", false);
    validate(&c, "egress only 80: 81 closed", "tcp", 81, &r);
    apply_yaml(
        &mut c,
        &knp(
            "x",
            "egress-all-a",
            "pod == 'a'",
            "  types: [Egress]\n  egress:\n  - action: Allow",
        ),
    );
    validate(
        &c,
        "egress allow-all: 81 open",
        "tcp",
        81,
        &Reachability::default(),
    );
}

#[test]
fn policies_stop_after_deletion() {
    let mut c = model();
    apply_yaml(&mut c, &knp("x", "deny-all", "", "  types: [Ingress, Egress]"));
    let mut r = Reachability::default();
    r.expect_peer(Peer::ANY, Peer::ns("x"), false)
        .expect_peer(Peer::ns("x"), Peer::ANY, false);
    validate(&c, "deny-all", "tcp", 80, &r);
    delete_knp(&mut c, "x", "deny-all");
    validate(&c, "deleted", "tcp", 80, &Reachability::default());
}

#[test]
fn egress_to_a_cidr_block_with_except() {
    let xb = pod_by_name("x/b").ip();
    let mut c = model();
    apply_yaml(
        &mut c,
        &knp(
            "x",
            "to-x-b",
            "pod == 'a'",
            &format!("  types: [Egress]\n  egress:\n  - action: Allow\n    destination: {{nets: [{xb}/32]}}"),
        ),
    );
    let mut r = Reachability::default();
    r.expect_all_egress("x/a", false).expect("x/a", "x/b", true);
    validate(&c, "egress to a /32", "tcp", 80, &r);

    // The /16 around every pod, except x/b.
    let mut c = model();
    apply_yaml(
        &mut c,
        &knp(
            "x",
            "except-x-b",
            "pod == 'a'",
            &format!(
                "  types: [Egress]\n  egress:\n  - action: Allow\n    destination: {{nets: [10.1.0.0/16], notNets: [{xb}/32]}}"
            ),
        ),
    );
    let mut r = Reachability::default();
    r.expect("x/a", "x/b", false);
    validate(&c, "except", "tcp", 80, &r);
    // An overlapping allow in a second policy wins: except only stops that rule matching.
    apply_yaml(
        &mut c,
        &knp(
            "x",
            "allow-x-b",
            "pod == 'a'",
            &format!("  types: [Egress]\n  egress:\n  - action: Allow\n    destination: {{nets: [{xb}/32]}}"),
        ),
    );
    validate(&c, "except overridden", "tcp", 80, &Reachability::default());
}

#[test]
fn ingress_and_egress_controlled_independently() {
    let mut c = model();
    apply_yaml(
        &mut c,
        &knp(
            "x",
            "a-egress-to-b",
            "pod == 'a'",
            "  types: [Egress]\n  egress:\n  - action: Allow\n    destination: {selector: \"$K && pod == 'b'\"}",
        ),
    );
    let mut r = Reachability::default();
    r.expect_all_egress("x/a", false).expect("x/a", "x/b", true);
    validate(&c, "egress allowed to x/b", "tcp", 80, &r);
    apply_yaml(
        &mut c,
        &knp("x", "b-deny-ingress", "pod == 'b'", "  types: [Ingress]"),
    );
    r.expect_all_ingress("x/b", false);
    validate(&c, "x/b ingress denied", "tcp", 80, &r);
}

#[test]
fn sctp_or_udp_allow_does_not_open_tcp() {
    for proto in ["SCTP", "UDP"] {
        let mut c = model();
        apply_yaml(
            &mut c,
            &knp(
                "x",
                "only-81",
                "pod == 'a'",
                &format!(
                    "  types: [Ingress]\n  ingress:\n  - action: Allow\n    protocol: {proto}\n    destination: {{ports: [81]}}"
                ),
            ),
        );
        let mut r = Reachability::default();
        r.expect_all_ingress("x/a", false);
        validate(&c, &format!("{proto} 81 only: tcp closed"), "tcp", 81, &r);
        validate(
            &c,
            &format!("{proto} 81 only: open"),
            &proto.to_lowercase(),
            81,
            &Reachability::default(),
        );
    }
}

#[test]
fn port_range_end_port() {
    let mut c = model();
    apply_yaml(
        &mut c,
        &knp(
            "x",
            "range",
            "pod == 'a'",
            "  types: [Ingress]\n  ingress:\n  - action: Allow\n    protocol: TCP\n    destination: {ports: ['80:81']}",
        ),
    );
    validate(&c, "endPort 80..81: 80", "tcp", 80, &Reachability::default());
    validate(&c, "endPort 80..81: 81", "tcp", 81, &Reachability::default());
    let mut r = Reachability::default();
    r.expect_all_ingress("x/a", false);
    validate(&c, "endPort: udp closed", "udp", 80, &r);
}
