//! The Kubernetes network-policy e2e model (`test/e2e/network/netpol` in kubernetes/kubernetes):
//! namespaces x, y, z × pods a, b, c on three nodes, ports 80/81 over TCP, UDP and SCTP with
//! container ports named `serve-<port>-<proto>`, and a reachability matrix (default true)
//! compared with what the evaluator decides over each node's IR.

use std::fmt::Write as _;

use brindle_model::load_str;
use brindle_policy::eval::{self, Packet};

use super::{Cluster, Pod, namespace_profile};

pub const NAMESPACES: [&str; 3] = ["x", "y", "z"];
pub const POD_NAMES: [&str; 3] = ["a", "b", "c"];
const PORTS: [(&str, &str, u16); 6] = [
    ("serve-80-tcp", "TCP", 80),
    ("serve-81-tcp", "TCP", 81),
    ("serve-80-udp", "UDP", 80),
    ("serve-81-udp", "UDP", 81),
    ("serve-80-sctp", "SCTP", 80),
    ("serve-81-sctp", "SCTP", 81),
];
const IPS: [[&str; 3]; 3] = [
    ["10.1.0.1", "10.1.0.2", "10.1.0.3"],
    ["10.1.1.1", "10.1.1.2", "10.1.1.3"],
    ["10.1.2.1", "10.1.2.2", "10.1.2.3"],
];
const NODES: [&str; 3] = ["node-1", "node-2", "node-3"];
/// Calico's clause at the start of every converted Kubernetes pod selector.
pub const K8S: &str = "projectcalico.org/orchestrator == 'k8s'";

/// A pod of the model: `x/a` is on node-1, `x/b` on node-2, … so every pair crosses nodes
/// somewhere.
pub fn pod(ns: usize, p: usize) -> Pod<'static> {
    static LABELS: [[(&str, &str); 1]; 3] = [[("pod", "a")], [("pod", "b")], [("pod", "c")]];
    Pod {
        namespace: NAMESPACES[ns],
        name: POD_NAMES[p],
        node: NODES[(ns + p) % 3],
        labels: &LABELS[p],
        ips: std::slice::from_ref(&IPS[ns][p]),
        service_account: "",
        ports: &PORTS,
    }
}

pub fn pod_by_name(name: &str) -> Pod<'static> {
    let (ns, p) = name.split_once('/').expect("ns/pod");
    pod(
        NAMESPACES.iter().position(|n| *n == ns).expect("namespace"),
        POD_NAMES.iter().position(|n| *n == p).expect("pod"),
    )
}

pub fn all_pods() -> Vec<Pod<'static>> {
    (0..3).flat_map(|ns| (0..3).map(move |p| pod(ns, p))).collect()
}

/// The cluster with the model's namespaces (labels `ns=<name>` and
/// `kubernetes.io/metadata.name`) and pods.
pub fn model() -> Cluster {
    let mut c = Cluster::new(&NODES);
    for ns in NAMESPACES {
        c.add_profile(&namespace_profile(ns, &[("ns", ns)]));
    }
    for p in all_pods() {
        c.add_pod(&p);
    }
    c
}

/// Applies Calico YAML documents (`$K` stands for the orchestrator clause) to every node.
pub fn apply_yaml(c: &mut Cluster, yaml: &str) {
    let yaml = yaml.replace("$K", K8S);
    let docs = load_str("test", &yaml).unwrap_or_else(|e| panic!("{e}\n{yaml}"));
    c.apply(|calc| {
        for d in &docs {
            calc.upsert_resource(d).unwrap();
        }
    });
}

/// A converted Kubernetes NetworkPolicy (`knp.default.<name>`, order 1000, tier default) in
/// namespace `ns`: `selector` is the pod selector's terms (empty for `{}`), `body` the
/// `types`/`ingress`/`egress` YAML lines (indented two spaces).
pub fn knp(ns: &str, name: &str, selector: &str, body: &str) -> String {
    let sel = if selector.is_empty() {
        K8S.to_string()
    } else {
        format!("{K8S} && {selector}")
    };
    format!(
        "apiVersion: projectcalico.org/v3\nkind: NetworkPolicy\nmetadata:\n  name: knp.default.{name}\n  namespace: {ns}\nspec:\n  tier: default\n  order: 1000\n  selector: \"{sel}\"\n{body}\n---\n"
    )
}

/// A peer of the reachability matrix; `None` is a wildcard.
#[derive(Clone, Copy)]
pub struct Peer<'a> {
    pub ns: Option<&'a str>,
    pub pod: Option<&'a str>,
}

impl<'a> Peer<'a> {
    pub const ANY: Peer<'static> = Peer { ns: None, pod: None };

    pub fn ns(ns: &'a str) -> Peer<'a> {
        Peer {
            ns: Some(ns),
            pod: None,
        }
    }

    /// `ns/pod`.
    pub fn pod(name: &'a str) -> Peer<'a> {
        let (ns, pod) = name.split_once('/').expect("ns/pod");
        Peer {
            ns: Some(ns),
            pod: Some(pod),
        }
    }

    fn matches(&self, p: &Pod<'_>) -> bool {
        self.ns.is_none_or(|n| n == p.namespace) && self.pod.is_none_or(|n| n == p.name)
    }
}

/// The expected truth table (`reachability.go`): every pair true until told otherwise.
pub struct Reachability {
    pods: Vec<Pod<'static>>,
    expected: Vec<Vec<bool>>,
}

impl Default for Reachability {
    fn default() -> Self {
        let pods = all_pods();
        let n = pods.len();
        Reachability {
            pods,
            expected: vec![vec![true; n]; n],
        }
    }
}

impl Reachability {
    pub fn expect_peer(&mut self, from: Peer<'_>, to: Peer<'_>, allowed: bool) -> &mut Self {
        for (i, f) in self.pods.iter().enumerate() {
            for (j, t) in self.pods.iter().enumerate() {
                if from.matches(f) && to.matches(t) {
                    self.expected[i][j] = allowed;
                }
            }
        }
        self
    }

    /// Sets one cell.
    pub fn expect(&mut self, from: &str, to: &str, allowed: bool) -> &mut Self {
        self.expect_peer(Peer::pod(from), Peer::pod(to), allowed)
    }

    /// Sets the column of `pod`: everything to it.
    pub fn expect_all_ingress(&mut self, pod: &str, allowed: bool) -> &mut Self {
        self.expect_peer(Peer::ANY, Peer::pod(pod), allowed)
    }

    /// Sets the row of `pod`: everything from it.
    pub fn expect_all_egress(&mut self, pod: &str, allowed: bool) -> &mut Self {
        self.expect_peer(Peer::pod(pod), Peer::ANY, allowed)
    }
}

fn table(pods: &[Pod<'_>], cells: &[Vec<bool>]) -> String {
    let mut s = String::from("-  ");
    for p in pods {
        let _ = write!(s, " {}/{}", p.namespace, p.name);
    }
    s.push('\n');
    for (i, p) in pods.iter().enumerate() {
        let _ = write!(s, "{}/{}", p.namespace, p.name);
        for (j, cell) in cells[i].iter().enumerate() {
            let mark = if i == j {
                "#"
            } else if *cell {
                "."
            } else {
                "X"
            };
            let _ = write!(s, "   {mark}");
        }
        s.push('\n');
    }
    s
}

/// Probes every pair but a pod to itself (`ignoreLoopback`) over `protocol` (`tcp`, `udp`,
/// `sctp`) to `port` and compares with `want`; on a difference, prints both tables and why.
pub fn validate(c: &Cluster, case: &str, protocol: &str, port: u16, want: &Reachability) {
    let states = c.states();
    let pods = &want.pods;
    let n = pods.len();
    let mut observed = vec![vec![true; n]; n];
    let mut wrong = Vec::new();
    for (i, from) in pods.iter().enumerate() {
        for (j, to) in pods.iter().enumerate() {
            if i == j {
                continue;
            }
            let packet = match protocol {
                "tcp" => Packet::tcp(from.ip(), to.ip(), port),
                "udp" => Packet::udp(from.ip(), to.ip(), port),
                "sctp" => Packet::sctp(from.ip(), to.ip(), port),
                other => panic!("protocol {other}"),
            };
            let d = eval::workload_to_workload(&states, &from.key(), &to.key(), &packet);
            observed[i][j] = d.allowed;
            if d.allowed != want.expected[i][j] {
                wrong.push(format!(
                    "  {}/{} -> {}/{}: expected {}, got {} ({})",
                    from.namespace,
                    from.name,
                    to.namespace,
                    to.name,
                    want.expected[i][j],
                    d.allowed,
                    d.reason
                ));
            }
        }
    }
    assert!(
        wrong.is_empty(),
        "{case} ({protocol}/{port}): {} wrong\nexpected:\n{}observed:\n{}{}",
        wrong.len(),
        table(pods, &want.expected),
        table(pods, &observed),
        wrong.join("\n")
    );
}
