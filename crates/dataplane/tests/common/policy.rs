//! Policy on the test cluster: each node's calculation (`brindle-policy`, fed the pods as the
//! CNI plugin writes their WorkloadEndpoints) drives that node's PolicyDataplane; TCP
//! listeners in every pod and connects with a timeout tell what the kernel lets through.

#![allow(dead_code)]

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::{IpAddr, SocketAddr, TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use brindle_dataplane::firewall::Written;
use brindle_dataplane::{Dataplane, PolicyConfig};
use brindle_model::ObjectMeta;
use brindle_model::numorstring::Protocol;
use brindle_model::resources::{
    Profile, ProfileSpec, Rule, WorkloadEndpoint, WorkloadEndpointPort, WorkloadEndpointSpec,
};
use brindle_policy::ir::{PolicyId, Settings};
use brindle_policy::selectors::{global_policy_selector, network_policy_selector};
use brindle_policy::{PolicyCalculator, PolicyInput};
use brindle_testkit::Netns;

use super::{Cluster, Modes};

/// Waits until the IPv6 link-local address of `dev` in `ns` has finished duplicate address
/// detection (until then it answers no neighbour solicitation, so it is no gateway yet).
pub fn wait_dad(ns: &Netns, dev: &str) {
    for _ in 0..100 {
        let out = ns.ip(&["-6", "addr", "show", "dev", dev]);
        if out.contains("fe80::") && !out.contains("tentative") {
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!("{dev}: link-local address still tentative");
}

/// A pod to make: (node, namespace, name, labels).
pub type PodSpec<'a> = (usize, &'a str, &'a str, &'a [(&'a str, &'a str)]);

/// A pod of the cluster with its Kubernetes identity.
#[derive(Clone, Debug)]
pub struct PodRef {
    pub node: usize,
    pub index: usize,
    pub namespace: String,
    pub name: String,
    pub labels: BTreeMap<String, String>,
    /// Named ports of the pod's containers: (name, protocol, port).
    pub ports: Vec<(String, String, u16)>,
    /// An IPv6 address too (see [`PolicyCluster::add_ipv6`]).
    pub ip6: Option<std::net::Ipv6Addr>,
}

impl PodRef {
    /// The pod just added to `node` of `c`.
    fn new(c: &Cluster, node: usize, ns: &str, name: &str, l: &[(&str, &str)]) -> PodRef {
        PodRef {
            node,
            index: c.nodes[node].pods.len() - 1,
            namespace: ns.to_string(),
            name: name.to_string(),
            labels: labels(l),
            ports: Vec::new(),
            ip6: None,
        }
    }
}

pub fn rules(yaml: &str) -> Vec<Rule> {
    serde_norway::from_str(yaml).unwrap_or_else(|e| panic!("rules {yaml:?}: {e}"))
}

/// A namespaced NetworkPolicy in the calculation's input form.
pub fn network_policy(
    ns: &str,
    name: &str,
    selector: &str,
    ingress: Option<&str>,
    egress: Option<&str>,
) -> PolicyInput {
    PolicyInput {
        id: PolicyId::network(ns, name),
        tier: String::new(),
        order: Some(1000.0),
        selector: network_policy_selector(selector, ns, "").unwrap(),
        ingress: ingress.map(rules),
        egress: egress.map(rules),
    }
}

/// A GlobalNetworkPolicy in the calculation's input form.
pub fn global_policy(
    name: &str,
    tier: &str,
    order: f64,
    selector: &str,
    ingress: Option<&str>,
    egress: Option<&str>,
) -> PolicyInput {
    PolicyInput {
        id: PolicyId::global(name),
        tier: tier.into(),
        order: Some(order),
        selector: global_policy_selector(selector, "", "").unwrap(),
        ingress: ingress.map(rules),
        egress: egress.map(rules),
    }
}

/// A pod's WorkloadEndpoint as the CNI plugin writes it (`policy.type: k8s`).
pub fn workload_endpoint(
    node: &str,
    ns: &str,
    name: &str,
    labels: &BTreeMap<String, String>,
    ip: impl Into<std::net::IpAddr>,
    iface: &str,
) -> WorkloadEndpoint {
    workload_endpoint_with_ports(node, ns, name, labels, ip, iface, &[])
}

/// [`workload_endpoint`] with named container ports: (name, protocol, port).
pub fn workload_endpoint_with_ports(
    node: &str,
    ns: &str,
    name: &str,
    labels: &BTreeMap<String, String>,
    ip: impl Into<std::net::IpAddr>,
    iface: &str,
    ports: &[(String, String, u16)],
) -> WorkloadEndpoint {
    let ip = ipnet::IpNet::from(ip.into());
    let mut labels = labels.clone();
    labels.insert("projectcalico.org/namespace".into(), ns.into());
    labels.insert("projectcalico.org/orchestrator".into(), "k8s".into());
    let mut meta = ObjectMeta::namespaced(ns, WorkloadEndpoint::name_for(node, "k8s", name, "eth0"));
    meta.labels = labels;
    WorkloadEndpoint::new(
        meta,
        WorkloadEndpointSpec {
            orchestrator: "k8s".into(),
            node: node.into(),
            pod: name.into(),
            endpoint: "eth0".into(),
            ip_networks: vec![ip.to_string()],
            profiles: vec![format!("kns.{ns}")],
            interface_name: iface.into(),
            ports: ports
                .iter()
                .map(|(n, p, port)| WorkloadEndpointPort {
                    name: n.clone(),
                    protocol: Protocol::Str(p.clone()),
                    port: *port,
                    host_port: 0,
                    host_ip: String::new(),
                })
                .collect(),
            ..WorkloadEndpointSpec::default()
        },
    )
}

/// Labels from pairs.
pub fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

/// `kns.<ns>` as Calico's controllers write it: allow both ways.
pub fn namespace_profile(ns: &str) -> Profile {
    Profile::new(
        ObjectMeta::named(format!("kns.{ns}")),
        ProfileSpec {
            ingress: rules("- action: Allow"),
            egress: rules("- action: Allow"),
            labels_to_apply: BTreeMap::from([
                ("pcns.projectcalico.org/name".to_string(), ns.to_string()),
                ("pcns.kubernetes.io/metadata.name".to_string(), ns.to_string()),
            ]),
        },
    )
}

/// TCP listeners on some ports of a pod, accepting until dropped.
pub struct Listeners {
    stop: Arc<AtomicBool>,
}

impl Drop for Listeners {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

pub fn listen(ns: &Netns, ports: &[u16]) -> Listeners {
    let stop = Arc::new(AtomicBool::new(false));
    for &port in ports {
        let stop = stop.clone();
        let (tx, rx) = std::sync::mpsc::channel();
        ns.spawn_in(move || {
            // Dual-stack: IPv4 connections arrive as v4-mapped addresses.
            let l = TcpListener::bind(("::", port)).expect("bind");
            l.set_nonblocking(true).unwrap();
            tx.send(()).unwrap();
            while !stop.load(Ordering::Relaxed) {
                match l.accept() {
                    Ok((mut s, _)) => {
                        // Echo one byte so a connection can be used to test it is still alive.
                        let _ = s.set_nonblocking(false);
                        std::thread::spawn(move || {
                            let mut b = [0u8; 1];
                            while let Ok(1) = s.read(&mut b) {
                                if s.write_all(&b).is_err() {
                                    break;
                                }
                            }
                        });
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(5)),
                }
            }
        });
        rx.recv().unwrap();
    }
    Listeners { stop }
}

/// A TCP connection from `ns` to `to:port`, if one is made within the timeout.
pub fn connect(ns: &Netns, to: IpAddr, port: u16, timeout: Duration) -> Option<TcpStream> {
    ns.spawn_in(move || TcpStream::connect_timeout(&SocketAddr::new(to, port), timeout).ok())
        .join()
        .unwrap()
}

/// True if a connection is made: within 1 s, or else in a second try of 2 s (as the
/// Kubernetes network-policy tests probe again before calling a pair denied, so a loaded
/// machine makes no false "denied").
pub fn reach(ns: &Netns, to: IpAddr, port: u16) -> bool {
    connect(ns, to, port, Duration::from_millis(1000)).is_some()
        || connect(ns, to, port, Duration::from_millis(2000)).is_some()
}

/// True if an existing connection still carries data both ways.
pub fn alive(s: &mut TcpStream) -> bool {
    s.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
    let mut b = [0u8; 1];
    s.write_all(b"x").is_ok() && matches!(s.read(&mut b), Ok(1))
}

/// The cluster with one calculation and one policy-enabled dataplane per node.
pub struct PolicyCluster {
    pub calcs: Vec<PolicyCalculator>,
    pub dps: Vec<Dataplane>,
    pub pods: Vec<PodRef>,
    pub listeners: Vec<Listeners>,
    pub c: Cluster,
}

impl PolicyCluster {
    /// `pods`: (node, namespace, name, labels). Every pod listens on 80 and 81.
    pub fn new(nodes: usize, modes: Modes, pods: &[PodSpec<'_>]) -> PolicyCluster {
        PolicyCluster::with(
            nodes,
            modes,
            pods,
            Settings::default(),
            PolicyConfig {
                enabled: true,
                ..PolicyConfig::default()
            },
        )
    }

    pub fn with(
        nodes: usize,
        modes: Modes,
        pods: &[PodSpec<'_>],
        settings: Settings,
        policy: PolicyConfig,
    ) -> PolicyCluster {
        let mut c = Cluster::new(nodes, false, modes);
        let mut refs = Vec::new();
        for (node, ns, name, labels) in pods {
            c.add_pod(*node);
            refs.push(PodRef::new(&c, *node, ns, name, labels));
        }
        let mut calcs: Vec<PolicyCalculator> = (0..nodes)
            .map(|i| PolicyCalculator::new(c.nodes[i].name.clone(), settings.clone()))
            .collect();
        let namespaces: std::collections::BTreeSet<&str> = pods.iter().map(|p| p.1).collect();
        for calc in &mut calcs {
            for ns in &namespaces {
                calc.upsert_profile(&namespace_profile(ns)).unwrap();
            }
        }
        let mut pc = PolicyCluster {
            calcs,
            dps: Vec::new(),
            pods: refs,
            listeners: Vec::new(),
            c,
        };
        for i in 0..pc.pods.len() {
            let wep = pc.wep(i);
            for calc in &mut pc.calcs {
                calc.upsert_workload_endpoint(&wep).unwrap();
            }
        }
        for i in 0..nodes {
            let h = brindle_netlink::Handle::open_named(pc.c.nodes[i].ns.name()).unwrap();
            let mut cfg = pc.c.config(i);
            cfg.policy = policy.clone();
            let (mut dp, report) = Dataplane::start(h, cfg, &pc.c.desired(i)).unwrap();
            assert!(report.errors.is_empty(), "node {i}: {:?}", report.errors);
            let _ = pc.calcs[i].flush();
            dp.policy().resync(pc.calcs[i].state()).unwrap();
            pc.dps.push(dp);
        }
        for p in &pc.pods {
            pc.listeners
                .push(listen(&pc.c.nodes[p.node].pods[p.index].ns, &[80, 81]));
        }
        pc
    }

    /// The WorkloadEndpoint of pod `i`, as the CNI plugin writes it.
    pub fn wep(&self, i: usize) -> WorkloadEndpoint {
        let p = &self.pods[i];
        let pod = &self.c.nodes[p.node].pods[p.index];
        let mut w = workload_endpoint_with_ports(
            &self.c.nodes[p.node].name,
            &p.namespace,
            &p.name,
            &p.labels,
            pod.ip,
            &pod.iface,
            &p.ports,
        );
        if let Some(ip6) = p.ip6 {
            w.spec.ip_networks.push(format!("{ip6}/128"));
        }
        w
    }

    /// Gives pod `i` an IPv6 address the way Calico does (a /128 on its eth0, a /128 route to
    /// its interface on the node, the host side's link-local address as its gateway) and
    /// announces it.
    pub fn add_ipv6(&mut self, i: usize, ip6: std::net::Ipv6Addr) -> Vec<Written> {
        let node = &self.c.nodes[self.pods[i].node];
        let pod = &node.pods[self.pods[i].index];
        node.ns.sysctl("net.ipv6.conf.all.forwarding", "1");
        pod.ns
            .ip(&["-6", "addr", "add", &format!("{ip6}/128"), "dev", "eth0", "nodad"]);
        node.ns
            .ip(&["-6", "route", "add", &format!("{ip6}/128"), "dev", &pod.iface]);
        wait_dad(&node.ns, &pod.iface);
        pod.ns.ip(&[
            "-6",
            "route",
            "add",
            "default",
            "via",
            "fe80::ecee:eeff:feee:eeee",
            "dev",
            "eth0",
        ]);
        self.pods[i].ip6 = Some(ip6);
        self.announce(i)
    }

    /// Applies a change to every node's calculation, then each node's delta (one transaction
    /// per node); returns what each node wrote.
    pub fn change(&mut self, f: impl Fn(&mut PolicyCalculator)) -> Vec<Written> {
        let mut out = Vec::new();
        for (calc, dp) in self.calcs.iter_mut().zip(&mut self.dps) {
            f(calc);
            let delta = calc.flush();
            out.push(dp.policy().apply(&delta).unwrap());
        }
        out
    }

    /// Makes a pod on `node` the way the CNI plugin does (veth, addresses, its route), listening
    /// on 80 and 81, without telling any calculation about it yet; returns its index.
    pub fn add_pod_unannounced(
        &mut self,
        node: usize,
        ns: &str,
        name: &str,
        labels: &[(&str, &str)],
    ) -> usize {
        self.c.add_pod(node);
        let r = self.dps[node].apply(&self.c.desired(node), Cluster::opts());
        assert!(r.errors.is_empty(), "{:?}", r.errors);
        self.pods.push(PodRef::new(&self.c, node, ns, name, labels));
        let i = self.pods.len() - 1;
        self.listeners.push(listen(self.pod_ns(i), &[80, 81]));
        i
    }

    /// Gives pod `i` named container ports and announces it.
    pub fn set_ports(&mut self, i: usize, ports: &[(&str, &str, u16)]) -> Vec<Written> {
        self.pods[i].ports = ports
            .iter()
            .map(|(n, p, port)| (n.to_string(), p.to_string(), *port))
            .collect();
        self.announce(i)
    }

    /// Upserts pod `i`'s WorkloadEndpoint everywhere (after changing its labels, say).
    pub fn announce(&mut self, i: usize) -> Vec<Written> {
        let wep = self.wep(i);
        self.change(|c| c.upsert_workload_endpoint(&wep).unwrap())
    }

    pub fn add_policy(&mut self, p: &PolicyInput) -> Vec<Written> {
        self.change(|c| c.upsert_policy(p.clone()).unwrap())
    }

    pub fn remove_policy(&mut self, id: &PolicyId) -> Vec<Written> {
        self.change(|c| c.remove_policy(id))
    }

    pub fn pod_ns(&self, i: usize) -> &Netns {
        let p = &self.pods[i];
        &self.c.nodes[p.node].pods[p.index].ns
    }

    pub fn pod_ip(&self, i: usize) -> IpAddr {
        let p = &self.pods[i];
        IpAddr::V4(self.c.nodes[p.node].pods[p.index].ip)
    }

    pub fn index(&self, ns_name: &str) -> usize {
        self.pods
            .iter()
            .position(|p| format!("{}/{}", p.namespace, p.name) == ns_name)
            .unwrap_or_else(|| panic!("no pod {ns_name}"))
    }

    /// Every pod to every pod on `port`, all probes at once: the pairs that connect, as
    /// `x/a->y/b`. A pair that does not connect is probed once more with a longer timeout (as
    /// the Kubernetes network-policy tests do), so a loaded machine makes no false "denied".
    pub fn matrix(&self, port: u16) -> Vec<String> {
        let pairs: Vec<(usize, usize)> = (0..self.pods.len())
            .flat_map(|a| (0..self.pods.len()).map(move |b| (a, b)))
            .filter(|(a, b)| a != b)
            .collect();
        let probe = |pairs: &[(usize, usize)], timeout: Duration| -> Vec<bool> {
            let threads: Vec<_> = pairs
                .iter()
                .map(|&(a, b)| {
                    let to = SocketAddr::new(self.pod_ip(b), port);
                    self.pod_ns(a)
                        .spawn_in(move || TcpStream::connect_timeout(&to, timeout).is_ok())
                })
                .collect();
            threads.into_iter().map(|t| t.join().unwrap()).collect()
        };
        let first = probe(&pairs, Duration::from_millis(1000));
        let again: Vec<(usize, usize)> = pairs
            .iter()
            .zip(&first)
            .filter(|(_, ok)| !**ok)
            .map(|(p, _)| *p)
            .collect();
        let second = probe(&again, Duration::from_millis(2500));
        let mut ok: Vec<(usize, usize)> = pairs
            .iter()
            .zip(&first)
            .filter(|(_, ok)| **ok)
            .map(|(p, _)| *p)
            .collect();
        ok.extend(again.iter().zip(&second).filter(|(_, ok)| **ok).map(|(p, _)| *p));
        ok.sort();
        ok.into_iter().map(|(a, b)| self.pair(a, b)).collect()
    }

    fn pair(&self, a: usize, b: usize) -> String {
        format!(
            "{}/{}->{}/{}",
            self.pods[a].namespace, self.pods[a].name, self.pods[b].namespace, self.pods[b].name
        )
    }

    /// What the calculation's evaluator says about the same pairs (the expected matrix).
    pub fn expected(&self, port: u16) -> Vec<String> {
        let states: Vec<brindle_policy::ir::State> = self.calcs.iter().map(|c| c.state()).collect();
        let refs: Vec<&brindle_policy::ir::State> = states.iter().collect();
        let mut out = Vec::new();
        for a in 0..self.pods.len() {
            for b in 0..self.pods.len() {
                if a == b {
                    continue;
                }
                let ka = self.wep(a);
                let kb = self.wep(b);
                let key = |w: &WorkloadEndpoint| {
                    brindle_policy::ir::EndpointKey::new(
                        w.metadata.namespace.clone(),
                        w.metadata.name.clone(),
                    )
                };
                let pkt = brindle_policy::eval::Packet::tcp(self.pod_ip(a), self.pod_ip(b), port);
                if brindle_policy::eval::workload_to_workload(&refs, &key(&ka), &key(&kb), &pkt).allowed {
                    out.push(self.pair(a, b));
                }
            }
        }
        out
    }
}
