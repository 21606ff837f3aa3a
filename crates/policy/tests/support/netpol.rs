//! The Kubernetes network-policy e2e model (`test/e2e/network/netpol` in kubernetes/kubernetes):
//! namespaces x, y, z × pods a, b, c on three nodes, ports 80/81 over TCP, UDP and SCTP with
//! container ports named `serve-<port>-<proto>`, and a reachability matrix (default true)
//! compared with what the evaluator decides over each node's IR. Namespaces, pods and
//! policies are Kubernetes documents, turned into Calico's resources by the model's converters
//! (`brindle_model::k8s`), as Calico's controllers and CNI plugin would.

use std::fmt::Write as _;

use brindle_model::k8s::{self, namespace_to_profile, network_policy_to_calico, pod_to_workload_endpoint};
use brindle_model::load::{Document, load_documents_str};
use brindle_model::resources::WorkloadEndpoint;
use brindle_model::{Kind, Resource};
use brindle_policy::eval;

use super::{Cluster, Pod};

pub const NAMESPACES: [&str; 3] = ["x", "y", "z"];
pub const POD_NAMES: [&str; 3] = ["a", "b", "c"];
const IPS: [[&str; 3]; 3] = [
    ["10.1.0.1", "10.1.0.2", "10.1.0.3"],
    ["10.1.1.1", "10.1.1.2", "10.1.1.3"],
    ["10.1.2.1", "10.1.2.2", "10.1.2.3"],
];
const NODES: [&str; 3] = ["node-1", "node-2", "node-3"];

/// A pod of the model, for keys and addresses: `x/a` is on node-1, `x/b` on node-2, … so
/// every pair crosses nodes somewhere.
pub fn pod(ns: usize, p: usize) -> Pod<'static> {
    Pod {
        namespace: NAMESPACES[ns],
        name: POD_NAMES[p],
        node: NODES[(ns + p) % 3],
        labels: &[],
        ips: std::slice::from_ref(&IPS[ns][p]),
        service_account: "",
        ports: &[],
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

fn documents(yaml: &str) -> Vec<Document> {
    load_documents_str("test", yaml).unwrap_or_else(|e| panic!("{e}\n{yaml}"))
}

/// A namespace with labels `ns=<name>` (and, from the API server, `kubernetes.io/metadata.name`)
/// plus `extra` YAML label lines.
pub fn namespace(c: &mut Cluster, ns: &str, extra: &str) {
    let yaml =
        format!("apiVersion: v1\nkind: Namespace\nmetadata:\n  name: {ns}\n  labels:\n    ns: {ns}\n{extra}");
    apply_documents(c, &yaml);
}

/// The model's pod `ns/name`, labelled `pod=<name>` plus `extra` labels (`key: value` lines),
/// with one container per port and protocol, as the e2e framework makes them.
pub fn k8s_pod(c: &mut Cluster, name: &str, extra: &str) {
    let (ns, p) = name.split_once('/').expect("ns/pod");
    let mut yaml = format!(
        "apiVersion: v1\nkind: Pod\nmetadata:\n  name: {p}\n  namespace: {ns}\n  labels:\n    pod: {p}\n{extra}spec:\n  containers:\n"
    );
    for port in [80, 81] {
        for proto in ["TCP", "UDP", "SCTP"] {
            let lower = proto.to_lowercase();
            let _ = write!(
                yaml,
                "  - name: cont-{port}-{lower}\n    image: agnhost\n    ports:\n    - {{name: serve-{port}-{lower}, containerPort: {port}, protocol: {proto}}}\n"
            );
        }
    }
    apply_documents(c, &yaml);
}

/// Applies documents to every node: Kubernetes ones converted as Calico's controllers and CNI
/// plugin would (a Pod gets the address and interface the CNI plugin would give it), Calico
/// ones as they are.
pub fn apply_documents(c: &mut Cluster, yaml: &str) {
    let mut resources: Vec<Resource> = Vec::new();
    for d in documents(yaml) {
        match d {
            Document::Calico(r) => resources.push(r),
            Document::Namespace(ns) => resources.push(Resource::Profile(namespace_to_profile(&ns))),
            Document::NetworkPolicy(np) => resources.push(Resource::NetworkPolicy(
                network_policy_to_calico(&np).unwrap_or_else(|e| panic!("{e}")),
            )),
            Document::Pod(p) => resources.push(Resource::WorkloadEndpoint(workload(&p))),
            Document::ServiceAccount(sa) => {
                resources.push(Resource::Profile(k8s::service_account_to_profile(&sa)))
            }
        }
    }
    c.apply(|calc| {
        for r in &resources {
            calc.upsert_resource(r).unwrap();
        }
    });
}

fn workload(p: &k8s::Pod) -> WorkloadEndpoint {
    let model = pod_by_name(&format!("{}/{}", p.metadata.namespace, p.metadata.name));
    let mut wep = pod_to_workload_endpoint(p, model.node).unwrap_or_else(|e| panic!("{e}"));
    wep.spec.ip_networks = vec![format!("{}/32", model.ips[0])];
    wep.spec.interface_name = format!("cali{}{}", model.namespace, model.name);
    wep
}

/// The cluster with the model's namespaces and pods.
pub fn model() -> Cluster {
    let mut c = Cluster::new(&NODES);
    for ns in NAMESPACES {
        namespace(&mut c, ns, "");
    }
    for p in all_pods() {
        k8s_pod(&mut c, &format!("{}/{}", p.namespace, p.name), "");
    }
    c
}

/// Applies a `networking.k8s.io/v1` NetworkPolicy given by its `metadata`/`spec` YAML.
pub fn netpol(c: &mut Cluster, yaml: &str) {
    apply_documents(
        c,
        &format!("apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\n{yaml}"),
    );
}

/// Deletes Kubernetes NetworkPolicy `name` (stored as `knp.default.<name>`).
pub fn delete_netpol(c: &mut Cluster, ns: &str, name: &str) {
    let name = k8s::netpol::calico_name(name);
    c.apply(|calc| {
        calc.remove_resource(Kind::NetworkPolicy, ns, &name);
    });
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
    let protocol_number = match protocol {
        "tcp" => 6,
        "udp" => 17,
        "sctp" => 132,
        other => panic!("protocol {other}"),
    };
    let workloads: Vec<_> = pods.iter().map(|p| (p.key(), p.ip())).collect();
    let decided = eval::reachability(&states, &workloads, protocol_number, port);
    let mut observed = vec![vec![true; pods.len()]; pods.len()];
    let mut wrong = Vec::new();
    for (i, from) in pods.iter().enumerate() {
        for (j, to) in pods.iter().enumerate() {
            if i == j {
                continue;
            }
            let d = &decided[i][j];
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
