//! [`Lab`]: a lab on this machine, built by [`Lab::up`], found again by [`Lab::open`], removed by
//! [`Lab::down`].

use std::collections::BTreeSet;
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use brindle_model::resources::{AllowedUse, IPPool, IPPoolSpec};
use brindle_model::{CalicoResource, Key, ObjectMeta};
use brindle_netlink::Handle;
use ipnet::{IpNet, Ipv4Net, Ipv6Net};

use crate::error::{Error, Result};
use crate::plan::{NodePlan, POOL_CIDR, POOL_NAME, POOL6_CIDR, POOL6_NAME, Plan};
use crate::progress::Progress;
use crate::spec::LabSpec;
use crate::state::{LabDir, LabState, agent_role, root_dir};
use crate::{cni, down, env, etcd, netns, proc, topology};

/// A lab: its directory, its recorded state and its layout.
#[derive(Debug)]
pub struct Lab {
    dir: LabDir,
    state: LabState,
    plan: Plan,
}

fn is_root() -> bool {
    nix::unistd::geteuid().is_root()
}

impl Lab {
    /// The lab named `name` under the lab root (`BRINDLE_LAB_ROOT`, default
    /// `/var/lib/brindle/labs`).
    pub fn open(name: &str) -> Result<Lab> {
        crate::spec::validate_name(name)?;
        Lab::open_in(&root_dir(), name)
    }

    pub fn open_in(root: &Path, name: &str) -> Result<Lab> {
        let dir = LabDir::new(root, name);
        let state = LabState::load(&dir)?;
        let mut plan = Plan::new(&state.spec);
        // Pods added after `lab up` (Lab::add_pod) are in the state, not in the spec's plan.
        for p in &state.pods {
            if plan.pod(&format!("{}/{}", p.namespace, p.name)).is_none() {
                plan.pods.push(crate::plan::PodPlan {
                    name: p.name.clone(),
                    namespace: p.namespace.clone(),
                    node: p.node.clone(),
                    netns: p.netns.clone(),
                    container_id: p.container_id.clone(),
                });
            }
        }
        // Labs made before the connection file existed get it now.
        if !state.spec.topology_only && !dir.connection_file().exists() && dir.dir.exists() {
            env::write_connection_file(&dir, &plan, state.spec.datastore)
                .map_err(|e| Error::io(dir.connection_file(), e))?;
        }
        Ok(Lab { dir, state, plan })
    }

    pub fn state(&self) -> &LabState {
        &self.state
    }
    pub fn plan(&self) -> &Plan {
        &self.plan
    }
    pub fn dir(&self) -> &LabDir {
        &self.dir
    }
    pub fn name(&self) -> &str {
        &self.state.spec.name
    }

    /// Builds the lab `spec` with `exe` as the agents' and CNI plugin's binary. On any failure,
    /// everything made so far is removed again and the first error is returned.
    pub fn up(spec: LabSpec, exe: &Path, progress: &dyn Progress) -> Result<Lab> {
        Lab::up_in(&root_dir(), spec, exe, progress)
    }

    pub fn up_in(root: &Path, spec: LabSpec, exe: &Path, progress: &dyn Progress) -> Result<Lab> {
        if !is_root() {
            return Err(Error::NotRoot);
        }
        spec.validate()?;
        crate::which("ip", "iproute2")?;
        crate::which("ping", "iputils-ping")?;
        if spec.datastore == crate::spec::DatastoreKind::Etcd {
            crate::which("etcd", "etcd-server")?;
        }
        let exe = exe.canonicalize().map_err(|e| Error::io(exe, e))?;
        let dir = LabDir::new(root, &spec.name);
        let plan = Plan::new(&spec);
        if dir.dir.exists() {
            return Err(Error::NameInUse {
                name: spec.name.clone(),
                detail: format!(
                    "{} exists (remove that lab with `brindle lab down --name {}`)",
                    dir.dir.display(),
                    spec.name
                ),
            });
        }
        if let Some(ns) = plan.namespaces().iter().find(|n| netns::exists(n)) {
            return Err(Error::NameInUse {
                name: spec.name.clone(),
                detail: format!("namespace {ns} exists and is not this lab's; choose another --name"),
            });
        }
        std::fs::create_dir_all(root).map_err(|e| Error::io(root, e))?;
        // create_dir (not _all) claims the name atomically against a concurrent `lab up`.
        std::fs::create_dir(&dir.dir).map_err(|e| {
            if e.kind() == std::io::ErrorKind::AlreadyExists {
                Error::NameInUse {
                    name: spec.name.clone(),
                    detail: format!("{} was just created by someone else", dir.dir.display()),
                }
            } else {
                Error::io(&dir.dir, e)
            }
        })?;
        let mut lab = Lab {
            dir,
            state: LabState::new(spec, exe),
            plan,
        };
        if let Err(e) = lab.state.save(&lab.dir) {
            let _ = std::fs::remove_dir_all(&lab.dir.dir);
            return Err(e);
        }
        match lab.build(progress) {
            Ok(()) => Ok(lab),
            Err(e) => {
                progress.step(&format!("failed: {e}; removing what was made"));
                match down::teardown(&lab.dir, &lab.state, progress) {
                    Ok(()) => Err(e),
                    Err(t) => Err(Error::step(e.to_string(), format!("and rollback failed: {t}"))),
                }
            }
        }
    }

    fn build(&mut self, progress: &dyn Progress) -> Result<()> {
        let spec = self.state.spec.clone();
        let names = self.plan.namespaces();
        progress.step(&format!(
            "lab {}: {} nodes, {} pods per node, {}encap {}{}, datastore {:?}: creating {} namespaces",
            spec.name,
            spec.nodes,
            spec.pods,
            match spec.ip_family {
                crate::spec::IpFamily::V4 => "",
                crate::spec::IpFamily::V6 => "IPv6 only, ",
                crate::spec::IpFamily::Dual => "dual stack, ",
            },
            spec.encap(),
            if spec.cross_subnet { " (cross-subnet)" } else { "" },
            spec.datastore,
            names.len()
        ));
        for ns in names {
            // Recorded before it is made: a crash right after `ip netns add` leaks nothing.
            self.state.namespaces.push(ns.clone());
            self.state.save(&self.dir)?;
            if let Err(e) = netns::add(&ns) {
                self.state.namespaces.pop();
                self.state.save(&self.dir)?;
                return Err(e);
            }
        }
        progress.step("wiring the fabric, router and nodes");
        topology::build(&self.plan, spec.ip_family)?;
        for n in &self.plan.nodes {
            let d = self.dir.node_dir(&n.name);
            std::fs::create_dir_all(&d).map_err(|e| Error::io(&d, e))?;
        }
        env::write_connection_file(&self.dir, &self.plan, spec.datastore)
            .map_err(|e| Error::io(self.dir.connection_file(), e))?;
        if spec.topology_only {
            self.state.complete = true;
            return self.state.save(&self.dir);
        }
        if let Some(e) = self.plan.etcd.clone() {
            progress.step(&format!("starting etcd at {}", e.endpoint()));
            let rec = etcd::start(&e, &spec.name, &self.dir.etcd_dir())?;
            self.state.processes.push(rec);
            self.state.save(&self.dir)?;
        }
        if spec.ip_family.has_v4() {
            progress.step(&format!("creating pool {POOL_NAME} {POOL_CIDR}"));
            self.create_pool()?;
        }
        if spec.ip_family.has_v6() {
            progress.step(&format!("creating pool {POOL6_NAME} {POOL6_CIDR}"));
            self.create_pool6()?;
        }
        progress.step(&format!("starting {} agents", spec.nodes));
        for n in self.plan.nodes.clone() {
            self.start_agent_process(&n)?;
        }
        self.wait_agents(Duration::from_secs(30 + spec.nodes as u64 / 2))?;
        // As the API server would hold them: namespace `default` and the pods' objects.
        self.store_seed_objects()?;
        if spec.pods > 0 {
            progress.step(&format!(
                "creating {} pods through the CNI plugin",
                self.plan.pods.len()
            ));
            self.create_pods()?;
            self.sync_seed_endpoints()?;
        }
        progress.step("waiting for every route and every BGP session");
        self.wait_converged(Duration::from_secs(60 + spec.nodes as u64))?;
        self.state.complete = true;
        self.state.save(&self.dir)?;
        progress.step("lab is up");
        Ok(())
    }

    /// Environment for a command on `node` (datastore, node name, its agent's socket, PATH).
    pub fn node_env(&self, node: &NodePlan) -> Vec<(String, String)> {
        env::node_env(
            &self.dir,
            &self.plan,
            self.state.spec.datastore,
            node,
            &self.state.exe,
        )
    }

    /// The plugin's environment and network config on `node` (what a runtime on it passes),
    /// for every CNI call the lab makes.
    pub(crate) fn cni_call_setup(&self, node: &NodePlan) -> (Vec<(String, String)>, serde_json::Value) {
        let env = self.node_env(node);
        let conf = cni::netconf_for(
            &env,
            &node.name,
            self.pod_mtu(),
            &self.dir.cni_log(),
            self.state.spec.ip_family,
        );
        (env, conf)
    }

    /// A node by name; the error lists the lab's nodes.
    pub fn node(&self, name: &str) -> Result<&NodePlan> {
        self.plan.node(name).ok_or_else(|| {
            let nodes: Vec<&str> = self.plan.nodes.iter().map(|n| n.name.as_str()).collect();
            Error::Invalid(format!(
                "lab {}: no node {name} (nodes: {})",
                self.name(),
                nodes.join(", ")
            ))
        })
    }

    pub(crate) fn state_mut(&mut self) -> &mut LabState {
        &mut self.state
    }

    pub(crate) fn plan_mut(&mut self) -> &mut Plan {
        &mut self.plan
    }

    /// Writes the state file.
    pub(crate) fn save(&self) -> Result<()> {
        self.state.save(&self.dir)
    }

    /// The pool of the seed (`ipipMode`/`vxlanMode` from `--encap`), created through the typed
    /// client (validation, defaults, uid) from inside the first node (the only place etcd is
    /// reachable from).
    fn create_pool(&self) -> Result<()> {
        let spec = &self.state.spec;
        let pool = IPPool::new(
            ObjectMeta::named(POOL_NAME),
            IPPoolSpec {
                cidr: POOL_CIDR.into(),
                vxlan_mode: Some(spec.vxlan_mode),
                ipip_mode: Some(spec.ipip_mode),
                nat_outgoing: true,
                block_size: u32::from(spec.block_size),
                node_selector: "all()".into(),
                allowed_uses: vec![AllowedUse::Workload, AllowedUse::Tunnel],
                ..IPPoolSpec::default()
            },
        );
        let what = format!("create pool {POOL_NAME}");
        self.with_datastore(&what, |ds| {
            brindle_datastore::Client::new(ds)
                .create(&pool.into_resource())
                .map(drop)
                .map_err(|e| e.to_string())
        })
    }

    /// The IPv6 pool of `--ip-family 6|dual`: natOutgoing (NAT66), Calico's /122 blocks, VXLAN as
    /// the IPv4 pool's `vxlanMode` (never IPIP: Calico has none for IPv6, so an IPIP lab routes
    /// its IPv6 pods natively).
    fn create_pool6(&self) -> Result<()> {
        let spec = &self.state.spec;
        let pool = IPPool::new(
            ObjectMeta::named(POOL6_NAME),
            IPPoolSpec {
                cidr: POOL6_CIDR.into(),
                vxlan_mode: Some(spec.vxlan_mode_v6()),
                ipip_mode: Some(brindle_model::resources::EncapMode::Never),
                nat_outgoing: true,
                block_size: u32::from(spec.block_size6),
                node_selector: "all()".into(),
                allowed_uses: vec![AllowedUse::Workload, AllowedUse::Tunnel],
                ..IPPoolSpec::default()
            },
        );
        let what = format!("create pool {POOL6_NAME}");
        self.with_datastore(&what, |ds| {
            brindle_datastore::Client::new(ds)
                .create(&pool.into_resource())
                .map(drop)
                .map_err(|e| e.to_string())
        })
    }

    /// Runs `f` with the lab's datastore, opened from inside the first node (the only place an
    /// etcd on the fabric is reachable from; the client's threads inherit the namespace).
    pub fn with_datastore<T: Send, E: std::fmt::Display>(
        &self,
        what: &str,
        f: impl FnOnce(std::sync::Arc<dyn brindle_datastore::Datastore>) -> std::result::Result<T, E> + Send,
    ) -> Result<T> {
        let env = self.node_env(&self.plan.nodes[0]);
        let ns = brindle_netlink::NetnsFd::named(&self.plan.nodes[0].netns)?;
        ns.run(|| -> Result<T> {
            let cfg = brindle_datastore::DatastoreConfig::resolve(&Default::default(), |k| {
                env.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone())
            })
            .map_err(|e| Error::step(what, e))?;
            let ds = brindle_datastore::open(&cfg).map_err(|e| Error::step(what, e))?;
            f(ds).map_err(|e| Error::step(what, e))
        })?
    }

    fn agent_env(&self, node: &NodePlan) -> Vec<(String, String)> {
        let mut env = self.node_env(node);
        let family = self.state.spec.ip_family;
        // Calico's node: `IP=none` is a node without IPv4; `IP6` its IPv6 address.
        let ip = if family.has_v4() {
            node.addr.to_string()
        } else {
            "none".into()
        };
        env.push(("IP".to_string(), ip));
        if family.has_v6() {
            env.push(("IP6".to_string(), node.addr6.to_string()));
        }
        env.extend([
            ("CALICO_NETWORKING_BACKEND".into(), "bird".into()),
            ("NO_DEFAULT_POOLS".into(), "true".into()),
            ("CLUSTER_TYPE".into(), "brindle-lab".into()),
        ]);
        env
    }

    fn start_agent_process(&mut self, node: &NodePlan) -> Result<()> {
        let role = agent_role(&node.name);
        let rec = proc::spawn_detached(
            &role,
            &node.netns,
            &self.state.exe,
            &["node".into(), "run".into()],
            &self.agent_env(node),
            &self.dir.agent_log(&node.name),
        )?;
        self.state.processes.retain(|p| p.role != role);
        self.state.processes.push(rec);
        self.state.save(&self.dir)
    }

    fn wait_agents(&self, timeout: Duration) -> Result<()> {
        let deadline = Instant::now() + timeout;
        for n in &self.plan.nodes {
            self.wait_agent(n, deadline)?;
        }
        Ok(())
    }

    fn wait_agent(&self, n: &NodePlan, deadline: Instant) -> Result<()> {
        let sock = self.dir.ctl_socket(&n.name);
        let rec = self
            .state
            .process(&agent_role(&n.name))
            .ok_or_else(|| Error::Invalid(format!("no agent recorded for {}", n.name)))?;
        loop {
            if UnixStream::connect(&sock).is_ok() {
                return Ok(());
            }
            if !rec.is_alive() {
                return Err(Error::step(
                    format!("agent of {}", n.name),
                    format!("exited:\n{}", tail(&self.dir.agent_log(&n.name), 15)),
                ));
            }
            if Instant::now() > deadline {
                return Err(Error::step(
                    format!("agent of {}", n.name),
                    format!(
                        "no control socket {} yet:\n{}",
                        sock.display(),
                        tail(&self.dir.agent_log(&n.name), 15)
                    ),
                ));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Kills a node's agent with `signal` (verified PID), e.g. SIGKILL to test a crash.
    pub fn signal_agent(&self, node: &str, signal: i32) -> Result<()> {
        let rec = self
            .state
            .process(&agent_role(node))
            .ok_or_else(|| Error::Invalid(format!("lab {}: no agent for {node}", self.name())))?;
        if signal == libc::SIGKILL {
            rec.kill();
        } else {
            rec.stop(Duration::from_secs(10))?;
        }
        Ok(())
    }

    /// Starts a node's agent again (after [`Lab::signal_agent`] or a crash) and waits for its
    /// control socket.
    pub fn restart_agent(&mut self, node: &str) -> Result<()> {
        let n = self.node(node)?.clone();
        if let Some(rec) = self.state.process(&agent_role(node))
            && rec.is_alive()
        {
            rec.stop(Duration::from_secs(10))?;
        }
        let _ = std::fs::remove_file(self.dir.ctl_socket(node));
        self.start_agent_process(&n)?;
        self.wait_agent(&n, Instant::now() + Duration::from_secs(30))
    }

    /// Creates the plan's pods through the CNI plugin, nodes in parallel (4 at a time), pods of a
    /// node one after the other.
    fn create_pods(&mut self) -> Result<()> {
        let nodes = self.plan.nodes.clone();
        let next = AtomicUsize::new(0);
        let results = Mutex::new(Vec::new());
        let first_error = Mutex::new(None);
        std::thread::scope(|s| {
            for _ in 0..4 {
                s.spawn(|| {
                    loop {
                        let i = next.fetch_add(1, Ordering::Relaxed);
                        let Some(n) = nodes.get(i) else { break };
                        if first_error.lock().expect("lock").is_some() {
                            break;
                        }
                        let (env, conf) = self.cni_call_setup(n);
                        for pod in self.plan.pods.iter().filter(|p| p.node == n.name) {
                            match cni::invoke(&self.state.exe, "ADD", pod, &n.netns, &env, &conf) {
                                Ok(out) => results.lock().expect("lock").push(cni::record(pod, &out)),
                                Err(e) => {
                                    first_error.lock().expect("lock").get_or_insert(e);
                                    break;
                                }
                            }
                        }
                    }
                });
            }
        });
        let mut pods = results.into_inner().expect("lock");
        pods.sort_by(|a, b| a.name.cmp(&b.name));
        self.state.pods = pods;
        self.state.save(&self.dir)?;
        match first_error.into_inner().expect("lock") {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }

    pub(crate) fn pod_mtu(&self) -> u32 {
        self.state.spec.pod_mtu()
    }

    /// Every node's confirmed IPv4 blocks, from the IPAM affinities in the datastore.
    pub fn blocks_by_node(&self) -> Result<Vec<(String, BTreeSet<Ipv4Net>)>> {
        Ok(self
            .affine_blocks()?
            .into_iter()
            .map(|(n, set)| {
                let v4 = set
                    .into_iter()
                    .filter_map(|b| match b {
                        IpNet::V4(b) => Some(b),
                        IpNet::V6(_) => None,
                    })
                    .collect();
                (n, v4)
            })
            .collect())
    }

    /// Every node's confirmed IPv6 blocks, from the IPAM affinities in the datastore.
    pub fn blocks6_by_node(&self) -> Result<Vec<(String, BTreeSet<Ipv6Net>)>> {
        Ok(self
            .affine_blocks()?
            .into_iter()
            .map(|(n, set)| {
                let v6 = set
                    .into_iter()
                    .filter_map(|b| match b {
                        IpNet::V6(b) => Some(b),
                        IpNet::V4(_) => None,
                    })
                    .collect();
                (n, v6)
            })
            .collect())
    }

    /// Every node's confirmed blocks of both families.
    fn affine_blocks(&self) -> Result<Vec<(String, BTreeSet<IpNet>)>> {
        let listing = self.with_datastore("list block affinities", |ds| {
            ds.list(brindle_model::keys::all_affinities_prefix())
        })?;
        let mut by_node: Vec<(String, BTreeSet<IpNet>)> = self
            .plan
            .nodes
            .iter()
            .map(|n| (n.name.clone(), BTreeSet::new()))
            .collect();
        for kv in listing.items {
            let Ok(Key::Affinity {
                host: node,
                cidr: block,
                ..
            }) = Key::parse(&kv.key)
            else {
                continue;
            };
            let confirmed = brindle_model::ipam::BlockAffinity::from_stored(&kv.value)
                .is_ok_and(|a| a.state == brindle_model::ipam::AffinityState::Confirmed && !a.deleted);
            if let Some((_, set)) = by_node.iter_mut().find(|(n, _)| *n == node)
                && confirmed
            {
                set.insert(block);
            }
        }
        Ok(by_node)
    }

    /// Nodes still missing a route to another node's block (or their own blackhole), of
    /// either family, with what they miss.
    pub fn missing_routes(&self) -> Result<Vec<(String, Vec<IpNet>)>> {
        let blocks = self.affine_blocks()?;
        let mut missing = Vec::new();
        for n in &self.plan.nodes {
            let mut h = Handle::open_named(&n.netns)?;
            let have: BTreeSet<IpNet> = h
                .routes(Some(brindle_netlink::TABLE_MAIN))?
                .into_iter()
                .map(|r| r.dst)
                .collect();
            let want: Vec<IpNet> = blocks
                .iter()
                .flat_map(|(_, b)| b.iter().copied())
                .filter(|b| !have.contains(b))
                .collect();
            if !want.is_empty() {
                missing.push((n.name.clone(), want));
            }
        }
        Ok(missing)
    }

    /// Nodes whose agent is not answering or has a BGP session (of either family) that is not
    /// Established, with the peers that are down.
    pub fn sessions_down(&self) -> Vec<(String, Vec<String>)> {
        let mut v = Vec::new();
        for n in &self.plan.nodes {
            match brindle_ctl::control::query_status(&self.dir.ctl_socket(&n.name)) {
                Ok(st) => {
                    let down: Vec<String> = st
                        .bgp
                        .iter()
                        .flat_map(|b| b.peers_v4.iter().chain(b.peers_v6.iter()))
                        .filter(|p| !p.established)
                        .map(|p| p.peer_address.clone())
                        .collect();
                    if !down.is_empty() {
                        v.push((n.name.clone(), down));
                    }
                }
                Err(_) => v.push((n.name.clone(), vec!["(agent not answering)".into()])),
            }
        }
        v
    }

    /// Waits until every node has every route ([`Lab::missing_routes`]) and every BGP session is
    /// Established ([`Lab::sessions_down`]).
    pub fn wait_converged(&self, timeout: Duration) -> Result<()> {
        let deadline = Instant::now() + timeout;
        loop {
            let missing = self.missing_routes()?;
            if missing.is_empty() {
                let down = self.sessions_down();
                if down.is_empty() {
                    return Ok(());
                }
                if Instant::now() > deadline {
                    let (node, peers) = &down[0];
                    return Err(Error::step(
                        "wait for BGP",
                        format!(
                            "after {timeout:?}, {} nodes have sessions down (e.g. {node}: {}); agent log: {}",
                            down.len(),
                            peers.join(", "),
                            self.dir.agent_log(node).display()
                        ),
                    ));
                }
                std::thread::sleep(Duration::from_millis(50));
                continue;
            }
            if Instant::now() > deadline {
                let (node, blocks) = &missing[0];
                return Err(Error::step(
                    "wait for routes",
                    format!(
                        "after {timeout:?}, {} nodes still miss routes (e.g. {node} has none to {}); \
                         agent log: {}",
                        missing.len(),
                        blocks
                            .iter()
                            .map(|b| b.to_string())
                            .collect::<Vec<_>>()
                            .join(", "),
                        self.dir.agent_log(node).display()
                    ),
                ));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Tears the lab down (see [`crate::down::teardown`]).
    pub fn down(self, progress: &dyn Progress) -> Result<()> {
        down::teardown(&self.dir, &self.state, progress)
    }

    /// The path of the lab's `brindle` binary.
    pub fn exe(&self) -> &PathBuf {
        &self.state.exe
    }
}

/// The last `n` lines of a log file, indented, for error messages.
pub(crate) fn tail(path: &Path, n: usize) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(n)..]
        .iter()
        .map(|l| format!("    {l}"))
        .collect::<Vec<_>>()
        .join("\n")
}
