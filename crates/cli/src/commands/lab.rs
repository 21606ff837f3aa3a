//! `brindle lab up|down|status|exec|ping|restart|view|apply|delete|probe`: the seed's cluster on
//! this machine, its picture, and Kubernetes objects and policies in it.

use std::os::unix::process::CommandExt;

use anyhow::{Context, Result};
use brindle_lab::progress::Stderr;
use brindle_lab::spec::DEFAULT_NAME;
use brindle_lab::spec::IpFamily;
use brindle_lab::{DatastoreKind, Lab, LabSpec, encap_modes};
use clap::{Args, Subcommand};

#[derive(Debug, Subcommand)]
pub enum LabCommand {
    /// Build a cluster: nodes in network namespaces, agents, pods through the CNI plugin.
    Up(UpArgs),
    /// Remove everything a lab made (by the names in its state file).
    Down(NameArg),
    /// Nodes, BGP peers (per family) and pods of a lab (`-o json`: the same as one object).
    Status(StatusArgs),
    /// Run a command inside a node's or a pod's namespace, with the node's environment
    /// (datastore, agent socket): `brindle lab exec bgp-master1 -- brindle node status`.
    Exec(ExecArgs),
    /// Ping every pod from every pod; exits non-zero if any pair fails.
    Ping(NameArg),
    /// Restart a node's agent (`--kill`: SIGKILL it first, as a crash would).
    Restart(RestartArgs),
    /// The picture of the lab (nodes, BGP sessions, blocks and pods) as one HTML file that
    /// needs nothing else: `brindle lab view -o lab.html`, then open it in a browser.
    View(ViewArgs),
    /// Apply Kubernetes Namespaces, ServiceAccounts and Pods (pods made through the CNI
    /// plugin) and anything `brindle apply` takes, in the lab.
    Apply(LabFileArgs),
    /// Delete what a file names from the lab (pods through the CNI plugin's DEL).
    Delete(LabFileArgs),
    /// Connect every pod to every pod on ports and protocols and print what is reachable, as
    /// the Kubernetes network-policy tests' truth tables.
    Probe(super::lab_probe::ProbeArgs),
    /// The listener `lab probe` runs in each pod.
    #[command(hide = true)]
    Serve(super::lab_probe::ServeArgs),
}

#[derive(Debug, Args)]
pub struct ViewArgs {
    #[command(flatten)]
    pub name: NameArg,
    /// The file to write (replaced whole); without it, the page goes to stdout.
    #[arg(short = 'o', long = "output", value_name = "FILE")]
    pub output: Option<std::path::PathBuf>,
}

#[derive(Debug, Args)]
pub struct StatusArgs {
    #[command(flatten)]
    pub name: NameArg,
    /// table or json.
    #[arg(short, long, default_value = "table")]
    pub output: String,
}

#[derive(Debug, Args)]
pub struct LabFileArgs {
    #[command(flatten)]
    pub name: NameArg,
    /// File to read, or - for stdin.
    #[arg(short, long, required = true)]
    pub filename: String,
}

#[derive(Debug, Args)]
pub struct NameArg {
    /// The lab's name (prefix of its namespaces; several labs can run side by side).
    #[arg(long, default_value = DEFAULT_NAME)]
    pub name: String,
}

#[derive(Debug, Args)]
pub struct UpArgs {
    #[command(flatten)]
    pub name: NameArg,
    /// Number of nodes (bgp-master1..N).
    #[arg(long, default_value_t = 3)]
    pub nodes: usize,
    /// Pods per node.
    #[arg(long, default_value_t = 2)]
    pub pods: usize,
    /// ipip | vxlan | none.
    #[arg(long, default_value = "ipip")]
    pub encap: String,
    /// Split the nodes over two subnets behind the router (encapsulate only between subnets).
    #[arg(long)]
    pub cross_subnet: bool,
    /// sqlite | etcd (a real etcd in its own namespace).
    #[arg(long, default_value = "sqlite")]
    pub datastore: String,
    /// The IPv4 pool's blockSize (20–31).
    #[arg(long, default_value_t = 24)]
    pub block_size: u8,
    /// Address families of nodes and pods: 4 (the seed), 6 (IPv6 only) or dual (both, with an
    /// IPv6 pool fd00:10:233::/112 next to the IPv4 one; IPv6 is never IPIP, as in Calico).
    #[arg(long, default_value = "4", value_name = "4|6|dual")]
    pub ip_family: String,
    /// Only the namespaces and links (no datastore, agents or pods).
    #[arg(long, hide = true)]
    pub topology_only: bool,
}

#[derive(Debug, Args)]
pub struct ExecArgs {
    #[command(flatten)]
    pub name: NameArg,
    /// A node (bgp-master1) or a pod (NAMESPACE/POD, or POD when its name is unique).
    pub target: String,
    /// The command and its arguments (after `--`).
    #[arg(last = true, required = true)]
    pub command: Vec<String>,
}

#[derive(Debug, Args)]
pub struct RestartArgs {
    #[command(flatten)]
    pub name: NameArg,
    pub node: String,
    /// SIGKILL the agent first instead of a clean SIGTERM.
    #[arg(long)]
    pub kill: bool,
}

pub fn lab(cmd: &LabCommand) -> Result<()> {
    match cmd {
        LabCommand::Up(a) => up(a),
        LabCommand::Down(a) => {
            let lab = Lab::open(&a.name)?;
            lab.down(&Stderr::default())?;
            eprintln!("lab {} removed", a.name);
            Ok(())
        }
        LabCommand::Status(a) => {
            let lab = Lab::open(&a.name.name)?;
            match a.output.as_str() {
                "table" => print!("{}", status(&lab)),
                "json" => println!("{}", serde_json::to_string_pretty(&status_json(&lab))?),
                other => anyhow::bail!("-o {other}: expected table or json"),
            }
            Ok(())
        }
        LabCommand::Exec(a) => {
            let lab = Lab::open(&a.name.name)?;
            let mut cmd = lab.command(&a.target, &a.command)?;
            let err = cmd.exec();
            anyhow::bail!("exec {}: {err}", a.command[0])
        }
        LabCommand::Ping(a) => {
            let lab = Lab::open(&a.name)?;
            let matrices = lab.ping_every_family()?;
            let titled = matrices.len() > 1 || matrices.iter().any(|m| m.family == 6);
            let mut failed = Vec::new();
            for (i, m) in matrices.iter().enumerate() {
                if titled {
                    let tool = if m.family == 6 { "ping6" } else { "ping" };
                    let sep = if i > 0 { "\n" } else { "" };
                    println!("{sep}IPv{} ({tool})\n", m.family);
                }
                print!("{}", m.render());
                let f = m.failures().len();
                if f > 0 {
                    failed.push(format!("{f} of {} IPv{} pod pairs", m.pairs(), m.family));
                }
            }
            if !failed.is_empty() {
                anyhow::bail!("{} cannot reach each other", failed.join(" and "));
            }
            Ok(())
        }
        LabCommand::Apply(a) => super::lab_apply::apply(&a.name.name, &a.filename),
        LabCommand::Delete(a) => super::lab_apply::delete(&a.name.name, &a.filename),
        LabCommand::Probe(a) => super::lab_probe::probe(a),
        LabCommand::Serve(a) => super::lab_probe::serve(a),
        LabCommand::Restart(a) => {
            let mut lab = Lab::open(&a.name.name)?;
            if a.kill {
                lab.signal_agent(&a.node, libc::SIGKILL)?;
            }
            lab.restart_agent(&a.node)?;
            eprintln!("agent of {} restarted", a.node);
            Ok(())
        }
        LabCommand::View(a) => view(a),
    }
}

/// `lab view`: the datastore's state (read from inside the first node) and every agent's own
/// answer (a node whose agent does not answer is drawn as such), through the agent's
/// `view::collect`, embedded in the page.
fn view(a: &ViewArgs) -> Result<()> {
    let lab = Lab::open(&a.name.name)?;
    let statuses: std::collections::BTreeMap<String, Option<brindle_ctl::status::AgentStatus>> = lab
        .plan()
        .nodes
        .iter()
        .map(|n| {
            let st = brindle_ctl::control::query_status(&lab.dir().ctl_socket(&n.name)).ok();
            (n.name.clone(), st)
        })
        .collect();
    let title = format!("lab {}", lab.name());
    let now = brindle_ctl::status::unix_now();
    let state = lab.with_datastore("read the lab's state", |ds| {
        brindle_agent::view::collect(&ds, &title, &statuses, now)
    })?;
    let html = brindle_agent::view::page(Some(&state));
    match &a.output {
        None => print!("{html}"),
        Some(path) => {
            super::node_view::write_whole(path, html.as_bytes())?;
            eprintln!(
                "{}: lab {} ({} nodes, {} sessions) drawn",
                path.display(),
                lab.name(),
                state.nodes.len(),
                state.sessions.len()
            );
        }
    }
    Ok(())
}

fn up(a: &UpArgs) -> Result<()> {
    let (ipip_mode, vxlan_mode) = encap_modes(&a.encap, a.cross_subnet)?;
    let spec = LabSpec {
        name: a.name.name.clone(),
        nodes: a.nodes,
        pods: a.pods,
        ipip_mode,
        vxlan_mode,
        cross_subnet: a.cross_subnet,
        datastore: a.datastore.parse::<DatastoreKind>()?,
        block_size: a.block_size,
        topology_only: a.topology_only,
        ip_family: a.ip_family.parse::<IpFamily>()?,
        ..LabSpec::default()
    };
    let exe = std::env::current_exe().context("find the brindle binary")?;
    let lab = Lab::up(spec, &exe, &Stderr::default())?;
    if !lab.state().spec.topology_only {
        print!("{}", seed_outputs(&lab));
    }
    let name = lab.name();
    eprintln!(
        "\nlab {name} is up. Try:\n  brindle lab exec{n} bgp-master1 -- brindle node status\n  \
         brindle lab ping{n}\n  brindle lab down{n}",
        n = if name == DEFAULT_NAME {
            String::new()
        } else {
            format!(" --name {name}")
        }
    );
    Ok(())
}

/// The seed's three outputs, from the first node: `node status`, `get ippool -o wide`, `ip route`
/// (and `ip -6 route` in a lab with IPv6).
pub fn seed_outputs(lab: &Lab) -> String {
    let node = &lab.plan().nodes[0];
    let mut out = String::new();
    let family = lab.state().spec.ip_family;
    let mut commands = vec![
        vec!["brindle", "node", "status"],
        vec!["brindle", "get", "ippool", "-o", "wide"],
    ];
    if family.has_v4() {
        commands.push(vec!["ip", "route"]);
    }
    if family.has_v6() {
        commands.push(vec!["ip", "-6", "route"]);
    }
    for argv in commands {
        let argv: Vec<String> = argv.iter().map(|s| s.to_string()).collect();
        let mut full = argv.clone();
        if full[0] == "brindle" {
            full[0] = lab.exe().display().to_string();
        }
        out.push_str(&format!("[root@{} ~]# {}\n", node.name, argv.join(" ")));
        match lab.command(&node.name, &full).and_then(|mut c| {
            c.output().map_err(|e| brindle_lab::Error::Step {
                what: argv.join(" "),
                detail: e.to_string(),
            })
        }) {
            Ok(o) => {
                out.push_str(&String::from_utf8_lossy(&o.stdout));
                out.push_str(&String::from_utf8_lossy(&o.stderr));
            }
            Err(e) => out.push_str(&format!("{e}\n")),
        }
    }
    out
}

/// `lab status -o json`: the lab's options, every node (addresses of both families, agent,
/// sessions per family, readiness) and every pod (all its addresses, as Kubernetes' `podIPs`).
pub fn status_json(lab: &Lab) -> serde_json::Value {
    use serde_json::json;
    let spec = &lab.state().spec;
    let family = spec.ip_family;
    let peers = |p: &[brindle_ctl::status::PeerStatus]| {
        json!({
            "established": p.iter().filter(|p| p.established).count(),
            "total": p.len(),
        })
    };
    let nodes: Vec<serde_json::Value> = lab
        .plan()
        .nodes
        .iter()
        .map(|n| {
            let rec = lab.state().process(&brindle_lab::state::agent_role(&n.name));
            let st = brindle_ctl::control::query_status(&lab.dir().ctl_socket(&n.name)).ok();
            let bgp = st.as_ref().and_then(|s| s.bgp.as_ref());
            json!({
                "name": n.name,
                "ipv4Address": family.has_v4().then(|| n.addr.to_string()),
                "ipv6Address": family.has_v6().then(|| n.addr6.to_string()),
                "agentPid": rec.filter(|r| r.is_alive()).map(|r| r.pid),
                "peersV4": bgp.map(|b| peers(&b.peers_v4)),
                "peersV6": bgp.map(|b| peers(&b.peers_v6)),
                "ready": st.as_ref().is_some_and(|s| s.ready),
            })
        })
        .collect();
    let pods: Vec<serde_json::Value> = lab
        .state()
        .pods
        .iter()
        .map(|p| {
            json!({
                "namespace": p.namespace,
                "name": p.name,
                "node": p.node,
                "ips": p.addresses(),
                "interface": p.host_if,
            })
        })
        .collect();
    json!({
        "name": lab.name(),
        "ipFamily": family.as_str(),
        "encap": spec.encap(),
        "crossSubnet": spec.cross_subnet,
        "datastore": spec.datastore,
        "nodes": nodes,
        "pods": pods,
    })
}

/// `lab status`: nodes with their agent and BGP sessions, then pods with their addresses; with
/// IPv6 (`--ip-family 6|dual`) each node's IPv6 address and IPv6 sessions, each pod's IPv6
/// address, in columns of their own (an IPv4 lab's table is the seed's, unchanged).
pub fn status(lab: &Lab) -> String {
    let family = lab.state().spec.ip_family;
    let mut out = format!(
        "lab {}: {} nodes, {}encap {}{}, datastore {:?}\n\n",
        lab.name(),
        lab.plan().nodes.len(),
        match family {
            IpFamily::V4 => "",
            IpFamily::V6 => "IPv6 only, ",
            IpFamily::Dual => "dual stack, ",
        },
        lab.state().spec.encap(),
        if lab.state().spec.cross_subnet {
            " cross-subnet"
        } else {
            ""
        },
        lab.state().spec.datastore,
    );
    let mut header = String::from("NODE                 ");
    if family.has_v4() {
        header.push_str("ADDRESS            ");
    }
    if family.has_v6() {
        header.push_str("IPV6 ADDRESS              ");
    }
    header.push_str("AGENT          ");
    if family.has_v4() {
        header.push_str("PEERS UP   ");
    }
    if family.has_v6() {
        header.push_str("V6 PEERS UP   ");
    }
    header.push_str("READY\n");
    out.push_str(&header);
    let count = |p: &[brindle_ctl::status::PeerStatus]| {
        format!("{}/{}", p.iter().filter(|p| p.established).count(), p.len())
    };
    for n in &lab.plan().nodes {
        let rec = lab.state().process(&brindle_lab::state::agent_role(&n.name));
        let agent = match rec {
            Some(r) if r.is_alive() => format!("pid {}", r.pid),
            Some(_) => "dead".into(),
            None => "-".into(),
        };
        let (peers, peers6, ready) = match brindle_ctl::control::query_status(&lab.dir().ctl_socket(&n.name))
        {
            Ok(st) => {
                let v4 = st.bgp.as_ref().map(|b| b.peers_v4.as_slice()).unwrap_or(&[]);
                let v6 = st.bgp.as_ref().map(|b| b.peers_v6.as_slice()).unwrap_or(&[]);
                (
                    count(v4),
                    count(v6),
                    if st.ready {
                        "yes".to_string()
                    } else {
                        format!("no ({})", st.ready_detail)
                    },
                )
            }
            Err(_) => ("-".into(), "-".into(), "no agent".into()),
        };
        let mut line = format!("{:<20} ", n.name);
        if family.has_v4() {
            line.push_str(&format!("{:<18} ", n.addr.to_string()));
        }
        if family.has_v6() {
            line.push_str(&format!("{:<25} ", n.addr6.to_string()));
        }
        line.push_str(&format!("{agent:<14} "));
        if family.has_v4() {
            line.push_str(&format!("{peers:<10} "));
        }
        if family.has_v6() {
            line.push_str(&format!("{peers6:<13} "));
        }
        line.push_str(&ready);
        out.push_str(&line);
        out.push('\n');
    }
    let mut pods: Vec<&brindle_lab::state::PodRecord> = lab.state().pods.iter().collect();
    pods.sort_by(|a, b| (&a.namespace, &a.name).cmp(&(&b.namespace, &b.name)));
    let w = pods.iter().map(|p| p.name.len()).max().unwrap_or(0).max(25);
    let nw = pods.iter().map(|p| p.namespace.len()).max().unwrap_or(0).max(9);
    let (ip_head, ip_w) = match family {
        IpFamily::V4 => ("IP", 16),
        IpFamily::V6 => ("IPV6", 24),
        IpFamily::Dual => ("IP", 16),
    };
    let v6_col = family == IpFamily::Dual;
    out.push_str(&format!(
        "\n{:<nw$} {:<w$} {:<20} {:<ip_w$} {}INTERFACE\n",
        "NAMESPACE",
        "POD",
        "NODE",
        ip_head,
        if v6_col {
            format!("{:<24} ", "IPV6")
        } else {
            String::new()
        }
    ));
    for p in pods {
        let first = if family == IpFamily::V6 {
            p.ip6()
        } else {
            p.ip4().or(p.ip.as_deref())
        };
        out.push_str(&format!(
            "{:<nw$} {:<w$} {:<20} {:<ip_w$} {}{}\n",
            p.namespace,
            p.name,
            p.node,
            first.unwrap_or("-"),
            if v6_col {
                format!("{:<24} ", p.ip6().unwrap_or("-"))
            } else {
                String::new()
            },
            p.host_if.as_deref().unwrap_or("-")
        ));
    }
    out
}
