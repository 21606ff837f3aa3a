//! The Kubernetes network-policy e2e model (`brindle_testkit::netpol`: namespaces x, y, z ×
//! pods a, b, c, ports 80/81 over TCP, UDP and SCTP) on three nodes, with its expected truth
//! tables compared with what the evaluator decides over each node's IR. Namespaces, pods and
//! policies are Kubernetes documents, turned into Calico's resources by the model's converters
//! (`brindle_model::k8s`), as Calico's controllers and CNI plugin would.

use brindle_model::k8s::{self, namespace_to_profile, network_policy_to_calico, pod_to_workload_endpoint};
use brindle_model::load::{Document, load_documents_str};
use brindle_model::resources::WorkloadEndpoint;
use brindle_model::{Kind, Resource};
use brindle_policy::eval;
use brindle_testkit::netpol::{NAMESPACES, PODS as POD_NAMES, Reach, namespace_yaml, pod_yaml, position};

use super::{Cluster, Pod};

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
    let (ns, p) = position(name);
    pod(ns, p)
}

pub fn all_pods() -> Vec<Pod<'static>> {
    (0..3).flat_map(|ns| (0..3).map(move |p| pod(ns, p))).collect()
}

fn documents(yaml: &str) -> Vec<Document> {
    load_documents_str("test", yaml).unwrap_or_else(|e| panic!("{e}\n{yaml}"))
}

/// A namespace of the model plus `extra` YAML label lines.
pub fn namespace(c: &mut Cluster, ns: &str, extra: &str) {
    apply_documents(c, &namespace_yaml(ns, extra));
}

/// The model's pod `ns/name` plus `extra` labels (`    key: value` lines).
pub fn k8s_pod(c: &mut Cluster, name: &str, extra: &str) {
    apply_documents(c, &pod_yaml(name, extra, ""));
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

/// Probes every pair but a pod to itself (`ignoreLoopback`) over `protocol` (`tcp`, `udp`,
/// `sctp`) to `port` and compares with `want`; on a difference, prints both tables and why.
pub fn validate(c: &Cluster, case: &str, protocol: &str, port: u16, want: &Reach) {
    let states = c.states();
    let pods: Vec<Pod<'static>> = want.pods().iter().map(|id| pod_by_name(id)).collect();
    let protocol_number = match protocol {
        "tcp" => 6,
        "udp" => 17,
        "sctp" => 132,
        other => panic!("protocol {other}"),
    };
    let workloads: Vec<_> = pods.iter().map(|p| (p.key(), p.ip())).collect();
    let decided = eval::reachability(&states, &workloads, protocol_number, port);
    let mut observed = vec![vec![None; pods.len()]; pods.len()];
    let mut why = Vec::new();
    for (i, from) in want.pods().iter().enumerate() {
        for (j, to) in want.pods().iter().enumerate() {
            if i == j {
                continue;
            }
            let d = &decided[i][j];
            observed[i][j] = Some(d.allowed);
            if d.allowed != want.allowed(i, j) {
                why.push(format!(
                    "  {from} -> {to}: expected {}, got {} ({})",
                    want.allowed(i, j),
                    d.allowed,
                    d.reason
                ));
            }
        }
    }
    assert!(
        why.is_empty(),
        "{case} ({protocol}/{port}): {} wrong\nexpected:\n{}observed:\n{}{}",
        why.len(),
        want.table(&want.cells()),
        want.table(&observed),
        why.join("\n")
    );
}
