//! The suite's lab, its model of pods, the expected truth tables and the runner of a case.

use std::io::Write as _;
use std::net::IpAddr;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use brindle_lab::probe::{PodFilter, ProbeOptions, Protocol};
use brindle_model::Kind;

use crate::lab_support::{BIN, TestLab};

use brindle_testkit::netpol::{NAMESPACES, PODS, namespace_yaml, pod_ids, pod_yaml};
pub use brindle_testkit::netpol::{Peer, Reach};

const NODES: [&str; 3] = ["bgp-master1", "bgp-node1", "bgp-node2"];
/// How long a case's expectation may take to hold after its policies are applied (the agents
/// see and program them), and how long one attempt waits for an answer.
const SETTLE: Duration = Duration::from_secs(8);
const PROBE_TIMEOUT: Duration = Duration::from_millis(700);

/// The model (`brindle_testkit::netpol`) as the lab applies it: service account `y/api` (for
/// the Calico cases' service account selectors; pod y/b runs as it), and each pod on a node so
/// that every pair of namespaces crosses nodes somewhere.
pub fn model_yaml() -> String {
    let mut y = String::new();
    for ns in NAMESPACES {
        y.push_str(&namespace_yaml(ns, ""));
        y.push_str("---\n");
    }
    y.push_str("apiVersion: v1\nkind: ServiceAccount\nmetadata: {name: api, namespace: y}\n---\n");
    for (i, ns) in NAMESPACES.iter().enumerate() {
        for (j, p) in PODS.iter().enumerate() {
            let sa = if (*ns, *p) == ("y", "b") { "api" } else { "default" };
            y.push_str(&pod_yaml(
                &format!("{ns}/{p}"),
                "",
                &format!("  nodeName: {}\n  serviceAccountName: {sa}\n", NODES[(i + j) % 3]),
            ));
            y.push_str("---\n");
        }
    }
    y
}

/// A case's own check.
pub type CheckFn = dyn Fn(&Suite) -> Result<(), String>;
/// What makes a case's steps (once the lab is up).
pub type StepsFn = dyn Fn(&Suite) -> Vec<Step>;

/// One step of a case.
pub enum Step {
    /// `brindle lab apply -f -` of these documents.
    Apply(String),
    /// `brindle lab delete -f -` of these documents.
    Delete(String),
    /// Probe every pair over a protocol and port and compare with the table.
    Expect(Protocol, u16, Reach),
    /// A check of its own (ICMP, outside addresses, logs).
    Check(Box<CheckFn>),
}

/// Shorthands for the cases.
pub fn tcp(port: u16, r: Reach) -> Step {
    Step::Expect(Protocol::Tcp, port, r)
}

pub fn udp(port: u16, r: Reach) -> Step {
    Step::Expect(Protocol::Udp, port, r)
}

/// A Kubernetes NetworkPolicy from its `metadata`/`spec` YAML.
pub fn netpol(yaml: &str) -> Step {
    Step::Apply(format!(
        "apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\n{yaml}"
    ))
}

/// A case: a name and its steps (made once the lab is up: some need the pods' addresses).
pub struct Case {
    pub name: &'static str,
    pub steps: Box<StepsFn>,
}

impl Case {
    pub fn new(name: &'static str, steps: impl Fn(&Suite) -> Vec<Step> + 'static) -> Case {
        Case {
            name,
            steps: Box::new(steps),
        }
    }
}

/// A truth table's cells: `Some(reachable)`, `None` on the diagonal.
pub type Cells = Vec<Vec<Option<bool>>>;

/// The lab with the model applied and every pod listening.
pub struct Suite {
    pub lab: TestLab,
    /// Kinds and names present after the model was applied (kept by [`Suite::reset`]).
    baseline: Vec<(Kind, String, String)>,
}

const RESET_KINDS: [Kind; 5] = [
    Kind::NetworkPolicy,
    Kind::GlobalNetworkPolicy,
    Kind::NetworkSet,
    Kind::GlobalNetworkSet,
    Kind::Tier,
];

impl Suite {
    pub fn up() -> Suite {
        // Dual stack: every case's truth table must hold over IPv4 and over IPv6 (its CIDRs
        // name both families' addresses).
        let lab = TestLab::up("np", &["--pods", "0", "--ip-family", "dual"]);
        let suite = Suite {
            lab,
            baseline: Vec::new(),
        };
        suite.lab_file("apply", &model_yaml()).expect("apply the model");
        let baseline = suite.present().expect("list the baseline");
        let suite = Suite { baseline, ..suite };
        // Starts the listeners (80/81, TCP and UDP) and checks the lab before any policy.
        let want = Reach::default();
        for (family, all) in suite.probe(Protocol::Tcp, 80).expect("first probe") {
            assert!(
                want.compare(&all).is_none(),
                "before any policy, every pod reaches every pod over IPv{family}:\n{}",
                want.table(&all)
            );
        }
        suite
    }

    /// The address of pod `ns/name`.
    pub fn ip(&self, id: &str) -> IpAddr {
        let l = self.lab.lab();
        let p = l.state().pod(id).unwrap_or_else(|| panic!("no pod {id}"));
        p.ip.as_deref()
            .expect("pod has an address")
            .parse()
            .expect("an address")
    }

    /// The IPv6 address of pod `ns/name`.
    pub fn ip6(&self, id: &str) -> IpAddr {
        let l = self.lab.lab();
        let p = l.state().pod(id).unwrap_or_else(|| panic!("no pod {id}"));
        p.ip6()
            .unwrap_or_else(|| panic!("pod {id} has no IPv6 address"))
            .parse()
            .expect("an address")
    }

    /// `brindle lab apply|delete -f -` with `yaml` on stdin.
    pub fn lab_file(&self, verb: &str, yaml: &str) -> Result<String, String> {
        let mut c = Command::new(BIN)
            .args(["lab", verb, "--name", &self.lab.name, "-f", "-"])
            .env("BRINDLE_LAB_ROOT", self.lab.root.path())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| e.to_string())?;
        c.stdin.take().unwrap().write_all(yaml.as_bytes()).unwrap();
        let o = c.wait_with_output().map_err(|e| e.to_string())?;
        if o.status.success() {
            Ok(String::from_utf8_lossy(&o.stdout).into_owned())
        } else {
            Err(format!(
                "lab {verb} failed:\n{yaml}\n{}{}",
                String::from_utf8_lossy(&o.stdout),
                String::from_utf8_lossy(&o.stderr)
            ))
        }
    }

    /// What of [`RESET_KINDS`] the datastore holds, in that order.
    fn present(&self) -> Result<Vec<(Kind, String, String)>, String> {
        let c = self.lab.lab().client().map_err(|e| e.to_string())?;
        let mut out = Vec::new();
        for kind in RESET_KINDS {
            for r in c.list(kind, None).map_err(|e| e.to_string())?.items {
                let m = r.metadata();
                out.push((kind, m.namespace.clone(), m.name.clone()));
            }
        }
        Ok(out)
    }

    /// Removes what a case added (policies, sets, tiers; pods outside the model) and applies
    /// the model again (labels a case changed go back).
    pub fn reset(&self) -> Result<(), String> {
        let c = self.lab.lab().client().map_err(|e| e.to_string())?;
        // Policies before the sets and tiers they use.
        for item in self.present()?.iter().filter(|i| !self.baseline.contains(i)) {
            let (kind, ns, name) = item;
            c.delete(*kind, ns, name, "")
                .map_err(|e| format!("delete {kind} {ns}/{name}: {e}"))?;
        }
        let model = pod_ids();
        let extra: Vec<String> = self
            .lab
            .lab()
            .state()
            .pods
            .iter()
            .map(|p| format!("{}/{}", p.namespace, p.name))
            .filter(|id| !model.contains(id))
            .collect();
        for id in extra {
            let (ns, name) = id.split_once('/').unwrap();
            self.lab_file(
                "delete",
                &format!("apiVersion: v1\nkind: Pod\nmetadata: {{name: {name}, namespace: {ns}}}\n"),
            )?;
        }
        self.lab_file("apply", &model_yaml()).map(drop)
    }

    /// One probe of every model pod to every other over `protocol`/`port`, per family (4, 6):
    /// `Some(reachable)` per cell, `None` on the diagonal.
    pub fn probe(&self, protocol: Protocol, port: u16) -> Result<Vec<(u8, Cells)>, String> {
        let mut lab = self.lab.lab();
        let filter = PodFilter::parse("projectcalico.org/namespace in {'x', 'y', 'z'}").unwrap();
        let p = lab
            .probe(&ProbeOptions {
                ports: vec![80, 81],
                protocols: vec![Protocol::Tcp, Protocol::Udp],
                from: Some(filter.clone()),
                to: Some(filter),
                timeout: PROBE_TIMEOUT,
                families: None,
            })
            .map_err(|e| e.to_string())?;
        let ids = pod_ids();
        let mut tables = Vec::new();
        for family in p.families() {
            let mut cells = vec![vec![None; ids.len()]; ids.len()];
            for (i, f) in ids.iter().enumerate() {
                for (j, t) in ids.iter().enumerate() {
                    if i != j {
                        cells[i][j] = Some(
                            p.reachable_over(family, protocol, port, f, t)
                                .ok_or_else(|| format!("no IPv{family} probe {f} -> {t}"))?,
                        );
                    }
                }
            }
            tables.push((family, cells));
        }
        if tables.len() != 2 {
            return Err(format!(
                "probed families {:?}, expected IPv4 and IPv6",
                p.families()
            ));
        }
        Ok(tables)
    }

    /// Probes until every family's table matches (the policy has reached every agent) or
    /// [`SETTLE`] passes; the error shows the expected and the first wrong family's tables.
    pub fn expect(&self, protocol: Protocol, port: u16, want: &Reach) -> Result<(), String> {
        let deadline = Instant::now() + SETTLE;
        loop {
            let tables = self.probe(protocol, port)?;
            let first_wrong = tables
                .iter()
                .find_map(|(family, got)| want.compare(got).map(|w| (*family, got, w)));
            match first_wrong {
                None => return Ok(()),
                Some((family, got, wrong)) if Instant::now() >= deadline => {
                    let shown: Vec<&str> = wrong.iter().take(6).map(String::as_str).collect();
                    return Err(format!(
                        "IPv{family} {protocol}/{port}: {} cells wrong ({}{})\nexpected:\n{}observed:\n{}",
                        wrong.len(),
                        shown.join(", "),
                        if wrong.len() > shown.len() { ", …" } else { "" },
                        want.table(&want.cells()),
                        want.table(got)
                    ));
                }
                Some(_) => std::thread::sleep(Duration::from_millis(200)),
            }
        }
    }

    /// Runs a case's steps; the first failed step ends it.
    pub fn run(&self, case: &Case) -> Result<(), String> {
        for (i, step) in (case.steps)(self).iter().enumerate() {
            match step {
                Step::Apply(y) => self.lab_file("apply", y).map(drop),
                Step::Delete(y) => self.lab_file("delete", y).map(drop),
                Step::Expect(proto, port, r) => self.expect(*proto, *port, r),
                Step::Check(f) => f(self),
            }
            .map_err(|e| format!("step {}: {e}", i + 1))?;
        }
        Ok(())
    }
}
