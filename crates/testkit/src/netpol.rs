//! The Kubernetes network-policy e2e model (`test/e2e/network/netpol` in kubernetes/kubernetes),
//! shared by the policy evaluator's tests (crates/policy/tests/k8s_netpol, which decide each
//! cell over the IR) and the lab suite (crates/cli/tests/lab_netpol, which probes real pods):
//! namespaces x, y, z × pods a, b, c, containers serving ports 80/81 over TCP, UDP and SCTP
//! named `serve-<port>-<proto>`, and the expected truth table (upstream's `reachability.go`:
//! every pair reachable until told otherwise; a pod to itself is not probed).
//!
//! Pods are named `ns/pod` and kept in table order (`x/a`, `x/b`, … `z/c`).

use std::fmt::Write as _;

pub const NAMESPACES: [&str; 3] = ["x", "y", "z"];
pub const PODS: [&str; 3] = ["a", "b", "c"];

/// Every pod of the model, `x/a` … `z/c`, in table order.
pub fn pod_ids() -> Vec<String> {
    NAMESPACES
        .iter()
        .flat_map(|ns| PODS.iter().map(move |p| format!("{ns}/{p}")))
        .collect()
}

/// The index of `(namespace, pod)` in [`NAMESPACES`] and [`PODS`]; panics outside the model.
pub fn position(id: &str) -> (usize, usize) {
    let (ns, pod) = id.split_once('/').expect("ns/pod");
    (
        NAMESPACES
            .iter()
            .position(|n| *n == ns)
            .unwrap_or_else(|| panic!("namespace {ns} is not in the model")),
        PODS.iter()
            .position(|p| *p == pod)
            .unwrap_or_else(|| panic!("pod {pod} is not in the model")),
    )
}

/// A Kubernetes Namespace labelled `ns=<name>` (the API server adds
/// `kubernetes.io/metadata.name`) plus `extra_labels` (`    key: value` lines).
pub fn namespace_yaml(ns: &str, extra_labels: &str) -> String {
    format!(
        "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: {ns}\n  labels:\n    ns: {ns}\n{extra_labels}"
    )
}

/// The model's Kubernetes Pod `ns/pod`, labelled `pod=<name>` plus `extra_labels`
/// (`    key: value` lines), with `spec_extra` (`  field: value` lines) and one container per
/// port and protocol, as the e2e framework makes them.
pub fn pod_yaml(id: &str, extra_labels: &str, spec_extra: &str) -> String {
    let (ns, p) = id.split_once('/').expect("ns/pod");
    let mut y = format!(
        "apiVersion: v1\nkind: Pod\nmetadata:\n  name: {p}\n  namespace: {ns}\n  labels:\n    pod: {p}\n{extra_labels}spec:\n{spec_extra}  containers:\n"
    );
    for port in [80, 81] {
        for proto in ["TCP", "UDP", "SCTP"] {
            let l = proto.to_lowercase();
            let _ = write!(
                y,
                "  - name: cont-{port}-{l}\n    image: agnhost\n    ports:\n    - {{name: serve-{port}-{l}, containerPort: {port}, protocol: {proto}}}\n"
            );
        }
    }
    y
}

/// A peer of a truth table; `None` is a wildcard.
#[derive(Clone, Copy, Debug)]
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
    pub fn pod(id: &'a str) -> Peer<'a> {
        let (ns, pod) = id.split_once('/').expect("ns/pod");
        Peer {
            ns: Some(ns),
            pod: Some(pod),
        }
    }

    pub fn matches(&self, id: &str) -> bool {
        let (ns, pod) = id.split_once('/').expect("ns/pod");
        self.ns.is_none_or(|n| n == ns) && self.pod.is_none_or(|p| p == pod)
    }
}

/// An expected truth table: every pair reachable until told otherwise.
#[derive(Clone, Debug)]
pub struct Reach {
    pods: Vec<String>,
    cells: Vec<Vec<bool>>,
}

impl Default for Reach {
    fn default() -> Self {
        let pods = pod_ids();
        let n = pods.len();
        Reach {
            pods,
            cells: vec![vec![true; n]; n],
        }
    }
}

impl Reach {
    /// Every pair from `from` to `to`.
    pub fn peer(mut self, from: Peer<'_>, to: Peer<'_>, allowed: bool) -> Self {
        for i in 0..self.pods.len() {
            for j in 0..self.pods.len() {
                if from.matches(&self.pods[i]) && to.matches(&self.pods[j]) {
                    self.cells[i][j] = allowed;
                }
            }
        }
        self
    }

    /// One cell.
    pub fn cell(self, from: &str, to: &str, allowed: bool) -> Self {
        self.peer(Peer::pod(from), Peer::pod(to), allowed)
    }

    /// The column of `pod`: everything to it.
    pub fn ingress(self, pod: &str, allowed: bool) -> Self {
        self.peer(Peer::ANY, Peer::pod(pod), allowed)
    }

    /// The row of `pod`: everything from it.
    pub fn egress(self, pod: &str, allowed: bool) -> Self {
        self.peer(Peer::pod(pod), Peer::ANY, allowed)
    }

    /// The pods, in table order.
    pub fn pods(&self) -> &[String] {
        &self.pods
    }

    /// Whether pod `i` should reach pod `j` (indices into [`Reach::pods`]).
    pub fn allowed(&self, i: usize, j: usize) -> bool {
        self.cells[i][j]
    }

    /// The table as observed cells: `Some(allowed)`, `None` on the diagonal.
    pub fn cells(&self) -> Vec<Vec<Option<bool>>> {
        self.cells
            .iter()
            .enumerate()
            .map(|(i, r)| {
                r.iter()
                    .enumerate()
                    .map(|(j, c)| (i != j).then_some(*c))
                    .collect()
            })
            .collect()
    }

    /// The cells of `got` (same order; `None` = not probed) that differ, as
    /// `from -> to should connect|should not`; `None` when none do.
    pub fn compare(&self, got: &[Vec<Option<bool>>]) -> Option<Vec<String>> {
        let mut wrong = Vec::new();
        for (i, row) in got.iter().enumerate() {
            for (j, c) in row.iter().enumerate() {
                if let Some(c) = c
                    && *c != self.cells[i][j]
                {
                    wrong.push(format!(
                        "{} -> {} {}",
                        self.pods[i],
                        self.pods[j],
                        if self.cells[i][j] {
                            "should connect"
                        } else {
                            "should not"
                        }
                    ));
                }
            }
        }
        (!wrong.is_empty()).then_some(wrong)
    }

    /// `cells` printed as upstream prints a truth table over this table's pods.
    pub fn table(&self, cells: &[Vec<Option<bool>>]) -> String {
        table(&self.pods, cells)
    }
}

/// A truth table as upstream prints it (`.` reachable, `X` not, `#` a pod to itself or not
/// probed).
pub fn table(pods: &[String], cells: &[Vec<Option<bool>>]) -> String {
    let mut s = String::from("-  ");
    for p in pods {
        let _ = write!(s, " {p}");
    }
    s.push('\n');
    for (i, p) in pods.iter().enumerate() {
        s.push_str(p);
        for c in &cells[i] {
            let _ = write!(
                s,
                "   {}",
                match c {
                    None => "#",
                    Some(true) => ".",
                    Some(false) => "X",
                }
            );
        }
        s.push('\n');
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builder_sets_rows_columns_and_cells() {
        let r = Reach::default()
            .ingress("x/a", false)
            .cell("x/b", "x/a", true)
            .peer(Peer::ns("z"), Peer::ns("y"), false);
        let at = |f: &str, t: &str| {
            let p = r.pods();
            let i = p.iter().position(|x| x == f).unwrap();
            let j = p.iter().position(|x| x == t).unwrap();
            r.allowed(i, j)
        };
        assert!(!at("y/a", "x/a"));
        assert!(at("x/b", "x/a"));
        assert!(!at("z/c", "y/b"));
        assert!(at("y/b", "z/c"));
        let mut got = r.cells();
        assert_eq!(r.compare(&got), None);
        got[1][0] = Some(false);
        assert_eq!(r.compare(&got).unwrap(), ["x/b -> x/a should connect"]);
        assert!(r.table(&got).starts_with("-   x/a x/b"));
        assert_eq!(position("y/c"), (1, 2));
    }
}
