//! The upstream suite's policy cases that make sense without Services, each as its policies and
//! its expected truth tables (names as upstream's `ginkgo.It` descriptions).

use crate::model::{Case, Peer, Reach, Step, netpol, tcp, udp};

const DENY_INGRESS_X: &str =
    "metadata: {name: deny-ingress, namespace: x}\nspec:\n  podSelector: {}\n  policyTypes: [Ingress]";

fn deny_x() -> Reach {
    Reach::default().peer(Peer::ANY, Peer::ns("x"), false)
}

fn x_a_from_b_only() -> Reach {
    Reach::default().ingress("x/a", false).cell("x/b", "x/a", true)
}

fn x_a_from_y_only() -> Reach {
    Reach::default()
        .peer(Peer::ns("x"), Peer::pod("x/a"), false)
        .peer(Peer::ns("z"), Peer::pod("x/a"), false)
}

/// A pod-label or namespace-label change, re-applied through `lab apply`.
fn relabel_pod(id: &str, labels: &str) -> Step {
    let (ns, name) = id.split_once('/').unwrap();
    // The model's pod again (same spec), with other labels.
    let model = crate::model::model_yaml();
    let doc = model
        .split("---\n")
        .find(|d| d.contains("kind: Pod") && d.contains(&format!("name: {name}\n  namespace: {ns}\n")))
        .expect("model pod");
    let model_labels = format!("  labels:\n    pod: {name}\n");
    assert!(
        doc.contains(&model_labels),
        "model pod {id} has other labels:\n{doc}"
    );
    Step::Apply(doc.replace(&model_labels, &format!("  labels: {labels}\n")))
}

fn relabel_ns(ns: &str, labels: &str) -> Step {
    Step::Apply(format!(
        "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: {ns}\n  labels: {labels}\n"
    ))
}

pub fn all() -> Vec<Case> {
    let mut v = ingress();
    v.extend(egress_and_updates());
    v
}

fn ingress() -> Vec<Case> {
    vec![
        Case::new(
            "should support a 'default-deny-ingress' policy [TCP, UDP]",
            |_| vec![netpol(DENY_INGRESS_X), tcp(80, deny_x()), udp(81, deny_x())],
        ),
        Case::new("should support a 'default-deny-all' policy", |_| {
            vec![
                netpol(
                    "metadata: {name: deny-all, namespace: x}\nspec:\n  podSelector: {}\n  policyTypes: [Ingress, Egress]",
                ),
                tcp(80, deny_x().peer(Peer::ns("x"), Peer::ANY, false)),
            ]
        }),
        Case::new(
            "should enforce policy to allow traffic from pods within server namespace based on PodSelector",
            |_| {
                vec![
                    netpol(
                        "metadata: {name: x-a-allows-x-b, namespace: x}\nspec:\n  podSelector: {matchLabels: {pod: a}}\n  ingress:\n  - from:\n    - podSelector: {matchLabels: {pod: b}}",
                    ),
                    tcp(80, x_a_from_b_only()),
                ]
            },
        ),
        Case::new(
            "should enforce policy to allow ingress traffic for a target",
            |_| {
                vec![
                    netpol(DENY_INGRESS_X),
                    netpol(
                        "metadata: {name: allow-all-to-a, namespace: x}\nspec:\n  podSelector: {matchLabels: {pod: a}}\n  ingress:\n  - {}",
                    ),
                    tcp(80, deny_x().ingress("x/a", true)),
                ]
            },
        ),
        Case::new(
            "should enforce policy to allow ingress traffic from pods in all namespaces",
            |_| {
                vec![
                    netpol(DENY_INGRESS_X),
                    netpol(
                        "metadata: {name: allow-all-ns, namespace: x}\nspec:\n  podSelector: {matchLabels: {pod: a}}\n  ingress:\n  - from:\n    - namespaceSelector: {}",
                    ),
                    tcp(80, deny_x().ingress("x/a", true)),
                ]
            },
        ),
        Case::new(
            "should enforce policy to allow traffic only from a different namespace, based on NamespaceSelector",
            |_| {
                vec![
                    netpol(
                        "metadata: {name: allow-ns-y, namespace: x}\nspec:\n  podSelector: {matchLabels: {pod: a}}\n  ingress:\n  - from:\n    - namespaceSelector: {matchLabels: {ns: y}}",
                    ),
                    tcp(80, x_a_from_y_only()),
                ]
            },
        ),
        Case::new(
            "should enforce policy to allow traffic based on NamespaceSelector with MatchLabels using default ns label",
            |_| {
                vec![
                    netpol(
                        "metadata: {name: allow-ns-y, namespace: x}\nspec:\n  podSelector: {matchLabels: {pod: a}}\n  ingress:\n  - from:\n    - namespaceSelector: {matchLabels: {kubernetes.io/metadata.name: y}}",
                    ),
                    tcp(80, x_a_from_y_only()),
                ]
            },
        ),
        Case::new(
            "should enforce policy based on PodSelector with MatchExpressions",
            |_| {
                vec![
                    netpol(
                        "metadata: {name: match-expr, namespace: x}\nspec:\n  podSelector: {matchLabels: {pod: a}}\n  ingress:\n  - from:\n    - podSelector: {matchExpressions: [{key: pod, operator: In, values: [b]}]}",
                    ),
                    tcp(80, x_a_from_b_only()),
                ]
            },
        ),
        Case::new(
            "should enforce policy based on NamespaceSelector with MatchExpressions",
            |_| {
                vec![
                    netpol(
                        "metadata: {name: ns-expr, namespace: x}\nspec:\n  podSelector: {matchLabels: {pod: a}}\n  ingress:\n  - from:\n    - namespaceSelector: {matchExpressions: [{key: ns, operator: In, values: [y]}]}",
                    ),
                    tcp(80, x_a_from_y_only()),
                ]
            },
        ),
        Case::new(
            "should enforce policy based on NamespaceSelector with MatchExpressions using default ns label",
            |_| {
                vec![
                    netpol(
                        "metadata: {name: ns-expr, namespace: x}\nspec:\n  podSelector: {matchLabels: {pod: a}}\n  ingress:\n  - from:\n    - namespaceSelector: {matchExpressions: [{key: kubernetes.io/metadata.name, operator: In, values: [y]}]}",
                    ),
                    tcp(80, x_a_from_y_only()),
                ]
            },
        ),
        Case::new(
            "should enforce policy based on PodSelector or NamespaceSelector",
            |_| {
                vec![
                    netpol(
                        "metadata: {name: ns-or-pod, namespace: x}\nspec:\n  podSelector: {matchLabels: {pod: a}}\n  ingress:\n  - from:\n    - namespaceSelector: {matchExpressions: [{key: ns, operator: NotIn, values: [x]}]}\n    - podSelector: {matchLabels: {pod: b}}",
                    ),
                    tcp(80, Reach::default().cell("x/c", "x/a", false)),
                ]
            },
        ),
        Case::new(
            "should enforce policy based on PodSelector and NamespaceSelector",
            |_| {
                vec![
                    netpol(
                        "metadata: {name: ns-and-pod, namespace: x}\nspec:\n  podSelector: {matchLabels: {pod: a}}\n  ingress:\n  - from:\n    - namespaceSelector: {matchExpressions: [{key: ns, operator: NotIn, values: [x]}]}\n      podSelector: {matchExpressions: [{key: pod, operator: In, values: [b]}]}",
                    ),
                    tcp(
                        80,
                        Reach::default()
                            .ingress("x/a", false)
                            .cell("y/b", "x/a", true)
                            .cell("z/b", "x/a", true),
                    ),
                ]
            },
        ),
        Case::new(
            "should enforce policy based on Multiple PodSelectors and NamespaceSelectors",
            |_| {
                let mut r = Reach::default().ingress("x/a", false);
                for from in ["y/b", "y/c", "z/b", "z/c"] {
                    r = r.cell(from, "x/a", true);
                }
                vec![
                    netpol(
                        "metadata: {name: multi, namespace: x}\nspec:\n  podSelector: {matchLabels: {pod: a}}\n  ingress:\n  - from:\n    - namespaceSelector: {matchExpressions: [{key: ns, operator: NotIn, values: [x]}]}\n      podSelector: {matchExpressions: [{key: pod, operator: In, values: [b, c]}]}",
                    ),
                    tcp(80, r),
                ]
            },
        ),
        Case::new("should enforce policy based on any PodSelectors", |_| {
            vec![
                netpol(
                    "metadata: {name: any-pod, namespace: x}\nspec:\n  podSelector: {matchLabels: {pod: a}}\n  ingress:\n  - from:\n    - podSelector: {matchLabels: {pod: b}}\n    - podSelector: {matchLabels: {pod: c}}",
                ),
                tcp(
                    80,
                    Reach::default()
                        .ingress("x/a", false)
                        .cell("x/b", "x/a", true)
                        .cell("x/c", "x/a", true),
                ),
            ]
        }),
        Case::new(
            "should enforce policy to allow traffic only from a pod in a different namespace based on PodSelector and NamespaceSelector [TCP, UDP]",
            |_| {
                let r = Reach::default().ingress("x/a", false).cell("y/a", "x/a", true);
                let p = |proto: &str| {
                    netpol(&format!(
                        "metadata: {{name: y-a-only-{}, namespace: x}}\nspec:\n  podSelector: {{matchLabels: {{pod: a}}}}\n  ingress:\n  - from:\n    - namespaceSelector: {{matchLabels: {{kubernetes.io/metadata.name: y}}}}\n      podSelector: {{matchLabels: {{pod: a}}}}\n    ports:\n    - {{protocol: {proto}, port: 80}}",
                        proto.to_lowercase()
                    ))
                };
                vec![
                    p("TCP"),
                    p("UDP"),
                    tcp(80, r.clone()),
                    udp(80, r.clone()),
                    tcp(81, Reach::default().ingress("x/a", false)),
                ]
            },
        ),
        Case::new(
            "should enforce policy based on Ports [TCP, UDP] and multiple, stacked policies with overlapping podSelectors",
            |_| {
                let allow = |port: u16| {
                    netpol(&format!(
                        "metadata: {{name: allow-{port}-from-y, namespace: x}}\nspec:\n  podSelector: {{matchLabels: {{pod: a}}}}\n  ingress:\n  - from:\n    - namespaceSelector: {{matchLabels: {{ns: y}}}}\n    ports:\n    - {{protocol: TCP, port: {port}}}\n    - {{protocol: UDP, port: {port}}}"
                    ))
                };
                let closed = Reach::default().ingress("x/a", false);
                vec![
                    allow(81),
                    tcp(81, x_a_from_y_only()),
                    udp(81, x_a_from_y_only()),
                    tcp(80, closed.clone()),
                    udp(80, closed),
                    allow(80),
                    tcp(80, x_a_from_y_only()),
                    tcp(81, x_a_from_y_only()),
                ]
            },
        ),
        Case::new("should support allow-all policy", |_| {
            vec![
                netpol(
                    "metadata: {name: allow-all, namespace: x}\nspec:\n  podSelector: {}\n  ingress:\n  - {}",
                ),
                tcp(80, Reach::default()),
                tcp(81, Reach::default()),
            ]
        }),
        Case::new("should allow ingress access on one named port", |_| {
            vec![
                netpol(
                    "metadata: {name: named-81, namespace: x}\nspec:\n  podSelector: {}\n  ingress:\n  - ports:\n    - {port: serve-81-tcp}",
                ),
                tcp(81, Reach::default()),
                tcp(80, deny_x()),
                udp(81, deny_x()),
            ]
        }),
        Case::new(
            "should allow ingress access from namespace on one named port",
            |_| {
                vec![
                    netpol(
                        "metadata: {name: named-80-from-y, namespace: x}\nspec:\n  podSelector: {}\n  ingress:\n  - from:\n    - namespaceSelector: {matchLabels: {ns: y}}\n    ports:\n    - {port: serve-80-tcp, protocol: TCP}",
                    ),
                    tcp(
                        80,
                        Reach::default().peer(Peer::ns("x"), Peer::ns("x"), false).peer(
                            Peer::ns("z"),
                            Peer::ns("x"),
                            false,
                        ),
                    ),
                    tcp(81, deny_x()),
                ]
            },
        ),
        Case::new("should deny ingress from pods on other namespaces", |_| {
            vec![
                netpol(
                    "metadata: {name: deny-other-ns, namespace: x}\nspec:\n  podSelector: {}\n  ingress:\n  - from:\n    - podSelector: {}",
                ),
                tcp(
                    80,
                    Reach::default().peer(Peer::ns("y"), Peer::ns("x"), false).peer(
                        Peer::ns("z"),
                        Peer::ns("x"),
                        false,
                    ),
                ),
            ]
        }),
        Case::new(
            "should enforce ingress policy allowing any port traffic to a server on a specific protocol",
            |_| {
                let closed = Reach::default().ingress("x/a", false);
                vec![
                    netpol(
                        "metadata: {name: tcp-any-port, namespace: x}\nspec:\n  podSelector: {matchLabels: {pod: a}}\n  ingress:\n  - ports:\n    - {protocol: TCP}",
                    ),
                    tcp(80, Reach::default()),
                    tcp(81, Reach::default()),
                    udp(80, closed),
                ]
            },
        ),
        Case::new(
            "should enforce multiple ingress policies with ingress allow-all policy taking precedence",
            |_| {
                vec![
                    netpol(
                        "metadata: {name: only-80, namespace: x}\nspec:\n  podSelector: {matchLabels: {pod: a}}\n  ingress:\n  - ports:\n    - {protocol: TCP, port: 80}",
                    ),
                    tcp(81, Reach::default().ingress("x/a", false)),
                    netpol(
                        "metadata: {name: allow-all, namespace: x}\nspec:\n  podSelector: {matchLabels: {pod: a}}\n  ingress:\n  - {}",
                    ),
                    tcp(81, Reach::default()),
                ]
            },
        ),
        Case::new(
            "should not mistakenly treat 'protocol: SCTP' as 'protocol: TCP', even if the plugin doesn't support SCTP",
            |_| {
                vec![
                    netpol(
                        "metadata: {name: sctp-81, namespace: x}\nspec:\n  podSelector: {matchLabels: {pod: a}}\n  ingress:\n  - ports:\n    - {protocol: SCTP, port: 81}",
                    ),
                    tcp(81, Reach::default().ingress("x/a", false)),
                ]
            },
        ),
        Case::new(
            "should not allow access by TCP when a policy specifies only UDP",
            |_| {
                vec![
                    netpol(
                        "metadata: {name: udp-81, namespace: x}\nspec:\n  podSelector: {matchLabels: {pod: a}}\n  ingress:\n  - ports:\n    - {protocol: UDP, port: 81}",
                    ),
                    tcp(81, Reach::default().ingress("x/a", false)),
                    udp(81, Reach::default()),
                ]
            },
        ),
        Case::new("should support a port range with endPort", |_| {
            vec![
                netpol(
                    "metadata: {name: range, namespace: x}\nspec:\n  podSelector: {matchLabels: {pod: a}}\n  ingress:\n  - ports:\n    - {protocol: TCP, port: 80, endPort: 81}",
                ),
                tcp(80, Reach::default()),
                tcp(81, Reach::default()),
                udp(80, Reach::default().ingress("x/a", false)),
            ]
        }),
    ]
}

fn egress_and_updates() -> Vec<Case> {
    vec![
        Case::new("should allow egress access on one named port", |_| {
            vec![
                netpol(
                    "metadata: {name: egress-named-80, namespace: x}\nspec:\n  podSelector: {}\n  policyTypes: [Egress]\n  egress:\n  - ports:\n    - {port: serve-80-tcp}",
                ),
                tcp(80, Reach::default()),
                tcp(81, Reach::default().peer(Peer::ns("x"), Peer::ANY, false)),
            ]
        }),
        Case::new("should enforce updated policy", |_| {
            let p = |port: u16| {
                netpol(&format!(
                    "metadata: {{name: allow-one-port, namespace: x}}\nspec:\n  podSelector: {{}}\n  ingress:\n  - ports:\n    - {{port: serve-{port}-tcp}}"
                ))
            };
            vec![
                p(81),
                tcp(81, Reach::default()),
                tcp(80, deny_x()),
                p(80),
                tcp(80, Reach::default()),
                tcp(81, deny_x()),
            ]
        }),
        Case::new("should allow ingress access from updated namespace", |_| {
            vec![
                netpol(
                    "metadata: {name: from-ns2-updated, namespace: x}\nspec:\n  podSelector: {matchLabels: {pod: a}}\n  ingress:\n  - from:\n    - namespaceSelector: {matchLabels: {ns2: updated}}",
                ),
                tcp(80, Reach::default().ingress("x/a", false)),
                relabel_ns("y", "{ns: y, ns2: updated}"),
                tcp(
                    80,
                    Reach::default()
                        .ingress("x/a", false)
                        .peer(Peer::ns("y"), Peer::pod("x/a"), true),
                ),
            ]
        }),
        Case::new("should allow ingress access from updated pod", |_| {
            vec![
                netpol(
                    "metadata: {name: from-pod2-updated, namespace: x}\nspec:\n  podSelector: {matchLabels: {pod: a}}\n  ingress:\n  - from:\n    - podSelector: {matchLabels: {pod2: updated}}",
                ),
                tcp(80, Reach::default().ingress("x/a", false)),
                relabel_pod("x/b", "{pod: b, pod2: updated}"),
                tcp(
                    80,
                    Reach::default().ingress("x/a", false).cell("x/b", "x/a", true),
                ),
            ]
        }),
        Case::new("should deny ingress access to updated pod", |_| {
            vec![
                netpol(
                    "metadata: {name: deny-target, namespace: x}\nspec:\n  podSelector: {matchLabels: {target: isolated}}\n  policyTypes: [Ingress]",
                ),
                tcp(80, Reach::default()),
                relabel_pod("x/a", "{pod: a, target: isolated}"),
                tcp(80, Reach::default().ingress("x/a", false)),
            ]
        }),
        Case::new("should deny egress from pods based on PodSelector", |_| {
            vec![
                netpol(
                    "metadata: {name: deny-egress-a, namespace: x}\nspec:\n  podSelector: {matchLabels: {pod: a}}\n  policyTypes: [Egress]",
                ),
                tcp(80, Reach::default().egress("x/a", false)),
            ]
        }),
        Case::new("should deny egress from all pods in a namespace", |_| {
            vec![
                netpol(
                    "metadata: {name: deny-egress-ns, namespace: x}\nspec:\n  podSelector: {}\n  policyTypes: [Egress]",
                ),
                tcp(80, Reach::default().peer(Peer::ns("x"), Peer::ANY, false)),
            ]
        }),
        Case::new("should work with Ingress, Egress specified together", |_| {
            vec![
                netpol(
                    "metadata: {name: both, namespace: x}\nspec:\n  podSelector: {matchLabels: {pod: a}}\n  policyTypes: [Ingress, Egress]\n  ingress:\n  - from:\n    - podSelector: {matchLabels: {pod: b}}\n  egress:\n  - to:\n    - podSelector: {matchLabels: {pod: b}}",
                ),
                tcp(
                    80,
                    Reach::default()
                        .ingress("x/a", false)
                        .egress("x/a", false)
                        .cell("x/b", "x/a", true)
                        .cell("x/a", "x/b", true),
                ),
            ]
        }),
        Case::new(
            "should support denying of egress traffic on the client side (even if the server explicitly allows this traffic)",
            |_| {
                vec![
                    netpol(
                        "metadata: {name: egress-to-y, namespace: x}\nspec:\n  podSelector: {matchLabels: {pod: a}}\n  policyTypes: [Egress]\n  egress:\n  - to:\n    - namespaceSelector: {matchLabels: {ns: y}}",
                    ),
                    netpol(
                        "metadata: {name: allow-from-x-a, namespace: z}\nspec:\n  podSelector: {}\n  ingress:\n  - from:\n    - namespaceSelector: {matchLabels: {ns: x}}\n      podSelector: {matchLabels: {pod: a}}",
                    ),
                    tcp(
                        80,
                        Reach::default()
                            .egress("x/a", false)
                            .peer(Peer::pod("x/a"), Peer::ns("y"), true)
                            .peer(Peer::ANY, Peer::ns("z"), false),
                    ),
                ]
            },
        ),
        Case::new(
            "should enforce egress policy allowing traffic to a server in a different namespace based on PodSelector and NamespaceSelector",
            |_| {
                vec![
                    netpol(
                        "metadata: {name: egress-y-a, namespace: x}\nspec:\n  podSelector: {matchLabels: {pod: a}}\n  policyTypes: [Egress]\n  egress:\n  - to:\n    - namespaceSelector: {matchLabels: {ns: y}}\n      podSelector: {matchLabels: {pod: a}}",
                    ),
                    tcp(80, Reach::default().egress("x/a", false).cell("x/a", "y/a", true)),
                ]
            },
        ),
        Case::new(
            "should enforce multiple egress policies with egress allow-all policy taking precedence",
            |_| {
                vec![
                    netpol(
                        "metadata: {name: egress-80, namespace: x}\nspec:\n  podSelector: {matchLabels: {pod: a}}\n  policyTypes: [Egress]\n  egress:\n  - ports:\n    - {protocol: TCP, port: 80}",
                    ),
                    tcp(81, Reach::default().egress("x/a", false)),
                    netpol(
                        "metadata: {name: egress-all, namespace: x}\nspec:\n  podSelector: {matchLabels: {pod: a}}\n  policyTypes: [Egress]\n  egress:\n  - {}",
                    ),
                    tcp(81, Reach::default()),
                ]
            },
        ),
        Case::new("should stop enforcing policies after they are deleted", |_| {
            let p = "metadata: {name: deny-all, namespace: x}\nspec:\n  podSelector: {}\n  policyTypes: [Ingress, Egress]";
            vec![
                netpol(p),
                tcp(80, deny_x().peer(Peer::ns("x"), Peer::ANY, false)),
                Step::Delete(format!(
                    "apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\n{p}"
                )),
                tcp(80, Reach::default()),
            ]
        }),
        Case::new("should allow egress access to server in CIDR block", |s| {
            vec![
                netpol(&format!(
                    "metadata: {{name: cidr, namespace: x}}\nspec:\n  podSelector: {{matchLabels: {{pod: a}}}}\n  policyTypes: [Egress]\n  egress:\n  - to:\n    - ipBlock: {{cidr: {}/32}}\n    - ipBlock: {{cidr: {}/128}}",
                    s.ip("y/b"),
                    s.ip6("y/b")
                )),
                tcp(80, Reach::default().egress("x/a", false).cell("x/a", "y/b", true)),
            ]
        }),
        Case::new(
            "should enforce except clause while egress access to server in CIDR block, and an IP in both CIDR and except is allowed by another policy",
            |s| {
                let (yb, yb6) = (s.ip("y/b"), s.ip6("y/b"));
                // Both families: the lab's pools (IPv4 10.233.64.0/18, IPv6 fd00:10:233::/112).
                vec![
                    netpol(&format!(
                        "metadata: {{name: cidr-except, namespace: x}}\nspec:\n  podSelector: {{matchLabels: {{pod: a}}}}\n  policyTypes: [Egress]\n  egress:\n  - to:\n    - ipBlock: {{cidr: 10.233.0.0/16, except: [{yb}/32]}}\n    - ipBlock: {{cidr: 'fd00:10:233::/64', except: ['{yb6}/128']}}"
                    )),
                    tcp(80, Reach::default().cell("x/a", "y/b", false)),
                    netpol(&format!(
                        "metadata: {{name: cidr-yb, namespace: x}}\nspec:\n  podSelector: {{matchLabels: {{pod: a}}}}\n  policyTypes: [Egress]\n  egress:\n  - to:\n    - ipBlock: {{cidr: {yb}/32}}\n    - ipBlock: {{cidr: '{yb6}/128'}}"
                    )),
                    tcp(80, Reach::default()),
                ]
            },
        ),
        Case::new(
            "should enforce policies to check ingress and egress policies can be controlled independently based on PodSelector",
            |_| {
                vec![
                    netpol(
                        "metadata: {name: egress-to-b, namespace: x}\nspec:\n  podSelector: {matchLabels: {pod: a}}\n  policyTypes: [Egress]\n  egress:\n  - to:\n    - podSelector: {matchLabels: {pod: b}}",
                    ),
                    tcp(80, Reach::default().egress("x/a", false).cell("x/a", "x/b", true)),
                    netpol(
                        "metadata: {name: deny-ingress-b, namespace: x}\nspec:\n  podSelector: {matchLabels: {pod: b}}\n  policyTypes: [Ingress]",
                    ),
                    tcp(80, Reach::default().egress("x/a", false).ingress("x/b", false)),
                ]
            },
        ),
        Case::new(
            "should properly isolate pods that are selected by a policy allowing SCTP, even if the plugin doesn't support SCTP",
            |_| {
                vec![
                    netpol(
                        "metadata: {name: sctp-only, namespace: x}\nspec:\n  podSelector: {matchLabels: {pod: a}}\n  ingress:\n  - ports:\n    - {protocol: SCTP, port: 80}",
                    ),
                    tcp(80, Reach::default().ingress("x/a", false)),
                    udp(80, Reach::default().ingress("x/a", false)),
                ]
            },
        ),
    ]
}
