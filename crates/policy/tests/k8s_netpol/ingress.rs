//! Ingress: pod and namespace selectors, ports, named ports, allow-all.

use brindle_testkit::netpol::{Peer, Reach};

use crate::support::netpol::{model, netpol, validate};

#[test]
fn default_deny_ingress() {
    let mut c = model();
    netpol(
        &mut c,
        "metadata: {name: deny-ingress, namespace: x}\nspec:\n  podSelector: {}\n  policyTypes: [Ingress]",
    );
    let r = Reach::default().peer(Peer::ANY, Peer::ns("x"), false);
    validate(&c, "default-deny-ingress", "tcp", 80, &r);
    validate(&c, "default-deny-ingress", "udp", 81, &r);
}

#[test]
fn default_deny_all() {
    let mut c = model();
    netpol(
        &mut c,
        "metadata: {name: deny-all, namespace: x}\nspec:\n  podSelector: {}\n  policyTypes: [Ingress, Egress]",
    );
    let r = Reach::default()
        .peer(Peer::ANY, Peer::ns("x"), false)
        .peer(Peer::ns("x"), Peer::ANY, false);
    validate(&c, "default-deny-all", "tcp", 80, &r);
}

#[test]
fn allow_from_pods_within_namespace_by_pod_selector() {
    let mut c = model();
    netpol(
        &mut c,
        "metadata: {name: x-a-allows-x-b, namespace: x}
spec:
  podSelector: {matchLabels: {pod: a}}
  ingress:
  - from:
    - podSelector: {matchLabels: {pod: b}}",
    );
    let r = Reach::default().ingress("x/a", false).cell("x/b", "x/a", true);
    validate(&c, "podSelector", "tcp", 80, &r);
}

#[test]
fn allow_ingress_to_a_target_from_everywhere() {
    let mut c = model();
    netpol(
        &mut c,
        "metadata: {name: deny-ingress, namespace: x}\nspec:\n  podSelector: {}\n  policyTypes: [Ingress]",
    );
    netpol(
        &mut c,
        "metadata: {name: allow-all-to-a, namespace: x}
spec:
  podSelector: {matchLabels: {pod: a}}
  ingress:
  - {}",
    );
    let r = Reach::default()
        .peer(Peer::ANY, Peer::ns("x"), false)
        .ingress("x/a", true);
    validate(&c, "allow ingress for a target", "tcp", 80, &r);
}

#[test]
fn allow_ingress_from_all_namespaces() {
    let mut c = model();
    netpol(
        &mut c,
        "metadata: {name: allow-all-ns, namespace: x}
spec:
  podSelector: {matchLabels: {pod: a}}
  ingress:
  - from:
    - namespaceSelector: {}",
    );
    validate(&c, "namespaceSelector {}", "tcp", 80, &Reach::default());
}

#[test]
fn allow_only_from_another_namespace_by_namespace_selector() {
    let mut c = model();
    netpol(
        &mut c,
        "metadata: {name: allow-ns-y, namespace: x}
spec:
  podSelector: {matchLabels: {pod: a}}
  ingress:
  - from:
    - namespaceSelector: {matchLabels: {kubernetes.io/metadata.name: y}}",
    );
    let r = Reach::default()
        .peer(Peer::ns("x"), Peer::pod("x/a"), false)
        .peer(Peer::ns("z"), Peer::pod("x/a"), false);
    validate(&c, "namespaceSelector", "tcp", 80, &r);
}

#[test]
fn pod_selector_with_match_expressions() {
    let mut c = model();
    netpol(
        &mut c,
        "metadata: {name: match-expr, namespace: x}
spec:
  podSelector: {matchLabels: {pod: a}}
  ingress:
  - from:
    - podSelector: {matchExpressions: [{key: pod, operator: In, values: [b]}]}",
    );
    let r = Reach::default().ingress("x/a", false).cell("x/b", "x/a", true);
    validate(&c, "podSelector matchExpressions", "tcp", 80, &r);
}

#[test]
fn namespace_selector_with_match_expressions() {
    let mut c = model();
    netpol(
        &mut c,
        "metadata: {name: ns-expr, namespace: x}
spec:
  podSelector: {matchLabels: {pod: a}}
  ingress:
  - from:
    - namespaceSelector: {matchExpressions: [{key: ns, operator: In, values: [y]}]}",
    );
    let r = Reach::default()
        .peer(Peer::ns("x"), Peer::pod("x/a"), false)
        .peer(Peer::ns("z"), Peer::pod("x/a"), false);
    validate(&c, "namespaceSelector matchExpressions", "tcp", 80, &r);
}

#[test]
fn pod_selector_or_namespace_selector() {
    let mut c = model();
    netpol(
        &mut c,
        "metadata: {name: ns-or-pod, namespace: x}
spec:
  podSelector: {matchLabels: {pod: a}}
  ingress:
  - from:
    - namespaceSelector: {matchExpressions: [{key: ns, operator: NotIn, values: [x]}]}
    - podSelector: {matchLabels: {pod: b}}",
    );
    let r = Reach::default().cell("x/c", "x/a", false);
    validate(&c, "pod OR ns", "tcp", 80, &r);
}

#[test]
fn pod_selector_and_namespace_selector() {
    let mut c = model();
    netpol(
        &mut c,
        "metadata: {name: ns-and-pod, namespace: x}
spec:
  podSelector: {matchLabels: {pod: a}}
  ingress:
  - from:
    - namespaceSelector: {matchExpressions: [{key: ns, operator: NotIn, values: [x]}]}
      podSelector: {matchExpressions: [{key: pod, operator: In, values: [b]}]}",
    );
    let r = Reach::default()
        .ingress("x/a", false)
        .cell("y/b", "x/a", true)
        .cell("z/b", "x/a", true);
    validate(&c, "pod AND ns", "tcp", 80, &r);
}

#[test]
fn multiple_pod_selectors_and_namespace_selectors() {
    let mut c = model();
    netpol(
        &mut c,
        "metadata: {name: multi, namespace: x}
spec:
  podSelector: {matchLabels: {pod: a}}
  ingress:
  - from:
    - namespaceSelector: {matchExpressions: [{key: ns, operator: NotIn, values: [x]}]}
      podSelector: {matchExpressions: [{key: pod, operator: In, values: [b, c]}]}",
    );
    let mut r = Reach::default().ingress("x/a", false);
    for from in ["y/b", "y/c", "z/b", "z/c"] {
        r = r.cell(from, "x/a", true);
    }
    validate(&c, "multiple pod and ns selectors", "tcp", 80, &r);
}

#[test]
fn any_pod_selectors() {
    let mut c = model();
    netpol(
        &mut c,
        "metadata: {name: any-pod, namespace: x}
spec:
  podSelector: {matchLabels: {pod: a}}
  ingress:
  - from:
    - podSelector: {matchLabels: {pod: b}}
    - podSelector: {matchLabels: {pod: c}}",
    );
    let r = Reach::default()
        .ingress("x/a", false)
        .cell("x/b", "x/a", true)
        .cell("x/c", "x/a", true);
    validate(&c, "any podSelector", "tcp", 80, &r);
}

#[test]
fn only_from_a_pod_in_another_namespace() {
    for proto in ["TCP", "UDP", "SCTP"] {
        let mut c = model();
        netpol(
            &mut c,
            &format!(
                "metadata: {{name: y-a-only, namespace: x}}
spec:
  podSelector: {{matchLabels: {{pod: a}}}}
  ingress:
  - from:
    - namespaceSelector: {{matchLabels: {{kubernetes.io/metadata.name: y}}}}
      podSelector: {{matchLabels: {{pod: a}}}}
    ports:
    - {{protocol: {proto}, port: 80}}"
            ),
        );
        let r = Reach::default().ingress("x/a", false).cell("y/a", "x/a", true);
        validate(&c, "pod in another namespace", &proto.to_lowercase(), 80, &r);
    }
}

#[test]
fn ports_and_stacked_policies() {
    for proto in ["TCP", "UDP", "SCTP"] {
        let p = proto.to_lowercase();
        let allow = |port: u16| {
            format!(
                "metadata: {{name: allow-{port}-from-y, namespace: x}}
spec:
  podSelector: {{matchLabels: {{pod: a}}}}
  ingress:
  - from:
    - namespaceSelector: {{matchLabels: {{ns: y}}}}
    ports:
    - {{protocol: {proto}, port: {port}}}"
            )
        };
        let mut c = model();
        netpol(&mut c, &allow(81));
        let from_y = Reach::default()
            .peer(Peer::ns("x"), Peer::pod("x/a"), false)
            .peer(Peer::ns("z"), Peer::pod("x/a"), false);
        validate(&c, "port 81 from y", &p, 81, &from_y);
        let closed = Reach::default().ingress("x/a", false);
        validate(&c, "port 80 closed", &p, 80, &closed);
        // A second policy on the same pods opens 80 too.
        netpol(&mut c, &allow(80));
        validate(&c, "stacked: 80 from y", &p, 80, &from_y);
        validate(&c, "stacked: 81 from y", &p, 81, &from_y);
    }
}

#[test]
fn allow_all_policy() {
    let mut c = model();
    netpol(
        &mut c,
        "metadata: {name: allow-all, namespace: x}\nspec:\n  podSelector: {}\n  ingress:\n  - {}",
    );
    validate(&c, "allow-all", "tcp", 80, &Reach::default());
}

#[test]
fn ingress_on_one_named_port() {
    let mut c = model();
    netpol(
        &mut c,
        "metadata: {name: named-81, namespace: x}
spec:
  podSelector: {}
  ingress:
  - ports:
    - {port: serve-81-tcp}",
    );
    validate(&c, "named port 81", "tcp", 81, &Reach::default());
    let r = Reach::default().peer(Peer::ANY, Peer::ns("x"), false);
    validate(&c, "named port: 80 closed", "tcp", 80, &r);
    validate(&c, "named port: udp 81 closed", "udp", 81, &r);
}

#[test]
fn ingress_from_namespace_on_one_named_port() {
    let mut c = model();
    netpol(
        &mut c,
        "metadata: {name: named-80-from-y, namespace: x}
spec:
  podSelector: {}
  ingress:
  - from:
    - namespaceSelector: {matchLabels: {ns: y}}
    ports:
    - {port: serve-80-tcp, protocol: TCP}",
    );
    let r =
        Reach::default()
            .peer(Peer::ns("x"), Peer::ns("x"), false)
            .peer(Peer::ns("z"), Peer::ns("x"), false);
    validate(&c, "named port from y", "tcp", 80, &r);
    let r81 = Reach::default().peer(Peer::ANY, Peer::ns("x"), false);
    validate(&c, "named port from y: 81 closed", "tcp", 81, &r81);
}
