//! Egress, updates and deletions, IP blocks, protocols and port ranges.

use brindle_testkit::netpol::{Peer, Reach};

use crate::support::netpol::{delete_netpol, k8s_pod, model, namespace, netpol, pod_by_name, validate};

#[test]
fn egress_on_one_named_port() {
    let mut c = model();
    netpol(
        &mut c,
        "metadata: {name: egress-named-80, namespace: x}
spec:
  podSelector: {}
  policyTypes: [Egress]
  egress:
  - ports:
    - {port: serve-80-tcp}",
    );
    validate(&c, "egress named port 80", "tcp", 80, &Reach::default());
    let r = Reach::default().peer(Peer::ns("x"), Peer::ANY, false);
    validate(&c, "egress named port: 81 closed", "tcp", 81, &r);
}

#[test]
fn updated_policy() {
    let mut c = model();
    let named = |port: &str| {
        format!(
            "metadata: {{name: allow-named, namespace: x}}
spec:
  podSelector: {{}}
  ingress:
  - ports:
    - {{port: {port}}}"
        )
    };
    netpol(&mut c, &named("serve-81-tcp"));
    let closed = Reach::default().peer(Peer::ANY, Peer::ns("x"), false);
    validate(&c, "before update: 81 open", "tcp", 81, &Reach::default());
    validate(&c, "before update: 80 closed", "tcp", 80, &closed);
    netpol(&mut c, &named("serve-80-tcp"));
    validate(&c, "after update: 80 open", "tcp", 80, &Reach::default());
    validate(&c, "after update: 81 closed", "tcp", 81, &closed);
}

#[test]
fn updated_namespace_labels() {
    let mut c = model();
    netpol(
        &mut c,
        "metadata: {name: from-updated-ns, namespace: x}
spec:
  podSelector: {matchLabels: {pod: a}}
  ingress:
  - from:
    - namespaceSelector: {matchLabels: {ns2: updated}}",
    );
    let mut r = Reach::default().ingress("x/a", false);
    validate(&c, "before namespace label", "tcp", 80, &r);
    namespace(&mut c, "y", "    ns2: updated\n");
    r = r.peer(Peer::ns("y"), Peer::pod("x/a"), true);
    validate(&c, "after namespace label", "tcp", 80, &r);
}

#[test]
fn updated_pod_labels() {
    let mut c = model();
    netpol(
        &mut c,
        "metadata: {name: from-updated-pod, namespace: x}
spec:
  podSelector: {matchLabels: {pod: a}}
  ingress:
  - from:
    - podSelector: {matchLabels: {podname: updated}}",
    );
    let mut r = Reach::default().ingress("x/a", false);
    validate(&c, "before pod label", "tcp", 80, &r);
    k8s_pod(&mut c, "x/b", "    podname: updated\n");
    r = r.cell("x/b", "x/a", true);
    validate(&c, "after pod label", "tcp", 80, &r);
}

#[test]
fn deny_ingress_from_other_namespaces() {
    let mut c = model();
    netpol(
        &mut c,
        "metadata: {name: same-ns-only, namespace: x}
spec:
  podSelector: {}
  ingress:
  - from:
    - podSelector: {}",
    );
    let r =
        Reach::default()
            .peer(Peer::ns("y"), Peer::ns("x"), false)
            .peer(Peer::ns("z"), Peer::ns("x"), false);
    validate(&c, "deny from other namespaces", "tcp", 80, &r);
}

#[test]
fn deny_ingress_to_updated_pod() {
    let mut c = model();
    netpol(
        &mut c,
        "metadata: {name: isolate-target, namespace: x}
spec:
  podSelector: {matchLabels: {target: isolated}}
  policyTypes: [Ingress]",
    );
    validate(&c, "nothing isolated yet", "tcp", 80, &Reach::default());
    k8s_pod(&mut c, "x/a", "    target: isolated\n");
    let r = Reach::default().ingress("x/a", false);
    validate(&c, "x/a isolated", "tcp", 80, &r);
}

#[test]
fn deny_egress_by_pod_selector_and_in_a_namespace() {
    let mut c = model();
    netpol(
        &mut c,
        "metadata: {name: deny-egress-a, namespace: x}
spec:
  podSelector: {matchLabels: {pod: a}}
  policyTypes: [Egress]",
    );
    let r = Reach::default().egress("x/a", false);
    validate(&c, "deny egress x/a", "tcp", 80, &r);
    delete_netpol(&mut c, "x", "deny-egress-a");
    netpol(
        &mut c,
        "metadata: {name: deny-egress-all, namespace: x}\nspec:\n  podSelector: {}\n  policyTypes: [Egress]",
    );
    let r = Reach::default().peer(Peer::ns("x"), Peer::ANY, false);
    validate(&c, "deny egress from namespace x", "tcp", 80, &r);
}

#[test]
fn ingress_and_egress_together() {
    let mut c = model();
    netpol(
        &mut c,
        "metadata: {name: both, namespace: x}
spec:
  podSelector: {matchLabels: {pod: a}}
  policyTypes: [Ingress, Egress]
  ingress:
  - from:
    - podSelector: {matchLabels: {pod: b}}
  egress:
  - to:
    - podSelector: {matchLabels: {pod: b}}",
    );
    let r = Reach::default()
        .ingress("x/a", false)
        .egress("x/a", false)
        .cell("x/b", "x/a", true)
        .cell("x/a", "x/b", true);
    validate(&c, "ingress and egress", "tcp", 80, &r);
}

#[test]
fn egress_rules_without_the_egress_type_are_ignored() {
    let mut c = model();
    netpol(
        &mut c,
        "metadata: {name: ingress-only, namespace: x}
spec:
  podSelector: {matchLabels: {pod: a}}
  policyTypes: [Ingress]
  ingress:
  - {}
  egress:
  - to:
    - podSelector: {matchLabels: {pod: b}}",
    );
    validate(&c, "egress rules ignored", "tcp", 80, &Reach::default());
}

#[test]
fn egress_denied_on_the_client_side_even_if_the_server_allows() {
    let mut c = model();
    netpol(
        &mut c,
        "metadata: {name: a-to-y-only, namespace: x}
spec:
  podSelector: {matchLabels: {pod: a}}
  policyTypes: [Egress]
  egress:
  - to:
    - namespaceSelector: {matchLabels: {ns: y}}",
    );
    netpol(
        &mut c,
        "metadata: {name: z-from-x-a, namespace: z}
spec:
  podSelector: {}
  ingress:
  - from:
    - namespaceSelector: {matchLabels: {ns: x}}
      podSelector: {matchLabels: {pod: a}}",
    );
    let r = Reach::default()
        .egress("x/a", false)
        .peer(Peer::pod("x/a"), Peer::ns("y"), true)
        .peer(Peer::ANY, Peer::ns("z"), false);
    validate(&c, "client-side egress deny", "tcp", 80, &r);
}

#[test]
fn egress_to_a_pod_in_another_namespace() {
    let mut c = model();
    netpol(
        &mut c,
        "metadata: {name: a-to-y-a, namespace: x}
spec:
  podSelector: {matchLabels: {pod: a}}
  policyTypes: [Egress]
  egress:
  - to:
    - namespaceSelector: {matchLabels: {ns: y}}
      podSelector: {matchLabels: {pod: a}}",
    );
    let r = Reach::default().egress("x/a", false).cell("x/a", "y/a", true);
    validate(&c, "egress to y/a", "tcp", 80, &r);
}

#[test]
fn any_port_on_one_protocol() {
    let mut c = model();
    netpol(
        &mut c,
        "metadata: {name: tcp-any-port, namespace: x}
spec:
  podSelector: {matchLabels: {pod: a}}
  ingress:
  - ports:
    - {protocol: TCP}",
    );
    validate(&c, "tcp any port: 80", "tcp", 80, &Reach::default());
    validate(&c, "tcp any port: 81", "tcp", 81, &Reach::default());
    let r = Reach::default().ingress("x/a", false);
    validate(&c, "tcp any port: udp closed", "udp", 80, &r);
}

#[test]
fn allow_all_takes_precedence_over_narrower_policies() {
    let mut c = model();
    netpol(
        &mut c,
        "metadata: {name: only-80, namespace: x}
spec:
  podSelector: {matchLabels: {pod: a}}
  ingress:
  - ports:
    - {port: 80}",
    );
    let r = Reach::default().ingress("x/a", false);
    validate(&c, "only 80: 81 closed", "tcp", 81, &r);
    netpol(
        &mut c,
        "metadata: {name: allow-all-a, namespace: x}\nspec:\n  podSelector: {matchLabels: {pod: a}}\n  ingress:\n  - {}",
    );
    validate(&c, "allow-all added: 81 open", "tcp", 81, &Reach::default());

    let mut c = model();
    netpol(
        &mut c,
        "metadata: {name: egress-only-80, namespace: x}
spec:
  podSelector: {matchLabels: {pod: a}}
  policyTypes: [Egress]
  egress:
  - ports:
    - {port: 80}",
    );
    let r = Reach::default().egress("x/a", false);
    validate(&c, "egress only 80: 81 closed", "tcp", 81, &r);
    netpol(
        &mut c,
        "metadata: {name: egress-all-a, namespace: x}\nspec:\n  podSelector: {matchLabels: {pod: a}}\n  policyTypes: [Egress]\n  egress:\n  - {}",
    );
    validate(&c, "egress allow-all: 81 open", "tcp", 81, &Reach::default());
}

#[test]
fn policies_stop_after_deletion() {
    let mut c = model();
    netpol(
        &mut c,
        "metadata: {name: deny-all, namespace: x}\nspec:\n  podSelector: {}\n  policyTypes: [Ingress, Egress]",
    );
    let r = Reach::default()
        .peer(Peer::ANY, Peer::ns("x"), false)
        .peer(Peer::ns("x"), Peer::ANY, false);
    validate(&c, "deny-all", "tcp", 80, &r);
    delete_netpol(&mut c, "x", "deny-all");
    validate(&c, "deleted", "tcp", 80, &Reach::default());
}

#[test]
fn egress_to_a_cidr_block_with_except() {
    let xb = pod_by_name("x/b").ip();
    let egress_to = |name: &str, block: &str| {
        format!(
            "metadata: {{name: {name}, namespace: x}}
spec:
  podSelector: {{matchLabels: {{pod: a}}}}
  policyTypes: [Egress]
  egress:
  - to:
    - ipBlock: {block}"
        )
    };
    let mut c = model();
    netpol(&mut c, &egress_to("to-x-b", &format!("{{cidr: {xb}/32}}")));
    let r = Reach::default().egress("x/a", false).cell("x/a", "x/b", true);
    validate(&c, "egress to a /32", "tcp", 80, &r);

    // The /16 around every pod, except x/b.
    let mut c = model();
    netpol(
        &mut c,
        &egress_to("except-x-b", &format!("{{cidr: 10.1.0.0/16, except: [{xb}/32]}}")),
    );
    let r = Reach::default().cell("x/a", "x/b", false);
    validate(&c, "except", "tcp", 80, &r);
    // An overlapping allow in a second policy wins: except only stops that rule matching.
    netpol(&mut c, &egress_to("allow-x-b", &format!("{{cidr: {xb}/32}}")));
    validate(&c, "except overridden", "tcp", 80, &Reach::default());
}

#[test]
fn ingress_and_egress_controlled_independently() {
    let mut c = model();
    netpol(
        &mut c,
        "metadata: {name: a-egress-to-b, namespace: x}
spec:
  podSelector: {matchLabels: {pod: a}}
  policyTypes: [Egress]
  egress:
  - to:
    - podSelector: {matchLabels: {pod: b}}",
    );
    let mut r = Reach::default().egress("x/a", false).cell("x/a", "x/b", true);
    validate(&c, "egress allowed to x/b", "tcp", 80, &r);
    netpol(
        &mut c,
        "metadata: {name: b-deny-ingress, namespace: x}\nspec:\n  podSelector: {matchLabels: {pod: b}}\n  policyTypes: [Ingress]",
    );
    r = r.ingress("x/b", false);
    validate(&c, "x/b ingress denied", "tcp", 80, &r);
}

#[test]
fn sctp_or_udp_allow_does_not_open_tcp() {
    for proto in ["SCTP", "UDP"] {
        let mut c = model();
        netpol(
            &mut c,
            &format!(
                "metadata: {{name: only-81, namespace: x}}
spec:
  podSelector: {{matchLabels: {{pod: a}}}}
  ingress:
  - ports:
    - {{protocol: {proto}, port: 81}}"
            ),
        );
        let r = Reach::default().ingress("x/a", false);
        validate(&c, &format!("{proto} 81 only: tcp closed"), "tcp", 81, &r);
        let open = Reach::default();
        validate(
            &c,
            &format!("{proto} 81 only: open"),
            &proto.to_lowercase(),
            81,
            &open,
        );
    }
}

#[test]
fn port_range_end_port() {
    let mut c = model();
    netpol(
        &mut c,
        "metadata: {name: range, namespace: x}
spec:
  podSelector: {matchLabels: {pod: a}}
  ingress:
  - ports:
    - {protocol: TCP, port: 80, endPort: 81}",
    );
    validate(&c, "endPort 80..81: 80", "tcp", 80, &Reach::default());
    validate(&c, "endPort 80..81: 81", "tcp", 81, &Reach::default());
    let r = Reach::default().ingress("x/a", false);
    validate(&c, "endPort: udp closed", "udp", 80, &r);
}
