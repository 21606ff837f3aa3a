//! `brindle node run` (the agent), `node status`, `node checksystem`, `node diags` and
//! `node view`.

use anyhow::Result;
use brindle_agent::config::AgentConfig;
use brindle_ctl::status;
use clap::{Args, Subcommand};
use std::path::PathBuf;

#[derive(Debug, Subcommand)]
pub enum NodeCommand {
    /// Run the node agent (calico-node): register the node, program routes, run BGP.
    Run(RunArgs),
    /// Show the agent's BGP sessions, as `calicoctl node status`.
    Status(StatusArgs),
    /// Check this host can run Brindle (kernel features, nftables, CNI directories).
    Checksystem(crate::commands::checksystem::CheckArgs),
    /// Gather diagnostics (status, routes, nftables, sysctls, metrics, datastore resources,
    /// logs, redacted configuration) into a tarball, as `calicoctl node diags`.
    #[command(after_help = DIAGS_EXAMPLES)]
    Diags(crate::commands::node_diags::DiagsArgs),
    /// Draw this node's cluster (nodes, BGP sessions, blocks, pods) as one self-contained HTML
    /// page, from the datastore and this node's agent.
    #[command(after_help = VIEW_EXAMPLES)]
    View(crate::commands::node_view::ViewArgs),
}

const DIAGS_EXAMPLES: &str = "Examples:
  # Everything, logs from calico-node's usual directory; prints where the tarball is
  brindle node diags

  # Logs kept elsewhere
  brindle node diags --log-dir /var/log/brindle";

const VIEW_EXAMPLES: &str = "Examples:
  # Write the page and open it in a browser
  brindle node view -o cluster.html

  # Written under the temporary directory; prints where
  brindle node view";

/// Flags win over Calico's environment variables of the same meaning.
#[derive(Debug, Args)]
pub struct RunArgs {
    /// The node's name (NODENAME).
    #[arg(long)]
    pub nodename: Option<String>,
    /// autodetect | none | A.B.C.D[/N] (IP).
    #[arg(long)]
    pub ip: Option<String>,
    /// first-found | can-reach=DEST | interface=RE | skip-interface=RE | cidr=CIDR
    /// (IP_AUTODETECTION_METHOD).
    #[arg(long)]
    pub ip_autodetection_method: Option<String>,
    /// This node's AS number (AS).
    #[arg(long = "as")]
    pub as_number: Option<String>,
    /// Directory of the nodename and MTU files (BRINDLE_STATE_DIR, default /var/lib/brindle).
    #[arg(long)]
    pub state_dir: Option<PathBuf>,
    /// The control socket (BRINDLE_CTL_SOCKET, default /var/run/brindle/brindle.ctl).
    #[arg(long)]
    pub ctl_socket: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct StatusArgs {
    /// Output format: the calicoctl table (default) or json.
    #[arg(short = 'o', long = "output")]
    pub output: Option<String>,
    /// The agent's control socket (BRINDLE_CTL_SOCKET, default /var/run/brindle/brindle.ctl).
    #[arg(long, env = "BRINDLE_CTL_SOCKET")]
    pub ctl_socket: Option<PathBuf>,
}

pub fn node(cmd: &NodeCommand, ds: &crate::args::DatastoreArgs) -> Result<()> {
    match cmd {
        NodeCommand::Run(a) => run(a, ds),
        NodeCommand::Status(a) => status_cmd(a),
        NodeCommand::Checksystem(a) => crate::commands::checksystem::checksystem(a),
        NodeCommand::Diags(a) => crate::commands::node_diags::diags(a, ds),
        NodeCommand::View(a) => crate::commands::node_view::view(a, ds),
    }
}

/// The agent's log on stderr: Felix's `FELIX_LOGSEVERITYSCREEN` (Calico's level names, default
/// Info) and `BRINDLE_LOG_FORMAT` (`text`, Calico's layout, or `json`); `BRINDLE_LOG` takes a
/// `tracing` filter directive for finer control.
pub fn init_logging(severity: Option<&str>) -> Result<()> {
    let level = match severity {
        Some(s) => brindle_log::Level::parse("FELIX_LOGSEVERITYSCREEN", s)?,
        None => brindle_log::Level::Info,
    };
    let format = match std::env::var("BRINDLE_LOG_FORMAT") {
        Ok(f) => brindle_log::Format::parse("BRINDLE_LOG_FORMAT", &f)?,
        Err(_) => brindle_log::Format::Text,
    };
    brindle_log::subscriber::init(level, format, "agent", std::io::stderr);
    Ok(())
}

fn run(a: &RunArgs, ds: &crate::args::DatastoreArgs) -> Result<()> {
    let flag = |name: &str| -> Option<String> {
        match name {
            "NODENAME" => a.nodename.clone(),
            "IP" => a.ip.clone(),
            "IP_AUTODETECTION_METHOD" => a.ip_autodetection_method.clone(),
            "AS" => a.as_number.clone(),
            "BRINDLE_STATE_DIR" => a.state_dir.as_ref().map(|p| p.display().to_string()),
            "BRINDLE_CTL_SOCKET" => a.ctl_socket.as_ref().map(|p| p.display().to_string()),
            _ => None,
        }
    };
    let cfg = AgentConfig::from_env(|k| flag(k).or_else(|| std::env::var(k).ok()))?;
    init_logging(cfg.felix.log_severity.as_deref())?;
    // The global datastore flags, the calicoctl config file and the environment, as every
    // command reads them.
    let (ds_cfg, origin) = crate::connect::config(ds)?;
    let sqlite = matches!(ds_cfg, brindle_datastore::DatastoreConfig::Sqlite(_));
    tracing::info!(datastore = %ds_cfg.describe(), origin = %origin.explain(sqlite),
        version = env!("CARGO_PKG_VERSION"), "brindle node starting");
    // The agent opens the datastore itself: while it cannot, it runs not ready and retries
    // (each failure naming the store and where its settings came from).
    let store = brindle_agent::startup::DatastoreChoice {
        config: ds_cfg,
        origin: Some(origin),
    };
    brindle_agent::run::run(cfg, store)?;
    Ok(())
}

fn status_cmd(a: &StatusArgs) -> Result<()> {
    // calicoctl: root only, message on stdout.
    if !nix::unistd::geteuid().is_root() {
        // calicoctl prints this one on stdout.
        println!("Need super user privileges: Operation not permitted");
        std::process::exit(1);
    }
    let path = a
        .ctl_socket
        .clone()
        .unwrap_or_else(|| PathBuf::from(brindle_agent::config::DEFAULT_CTL_SOCKET));
    let st = match brindle_ctl::control::query_status(&path) {
        Ok(st) => st,
        // calicoctl's error, printed on stderr with exit status 1 by main.
        Err(_) => anyhow::bail!("Calico process is not running."),
    };
    match a.output.as_deref() {
        None | Some("table") => print!("{}", render_status_table(&st)),
        Some("json") => println!("{}", render_status_json(&st)),
        Some(other) => anyhow::bail!("unknown output format {other:?} for node status (expected json)"),
    }
    Ok(())
}

/// `node status`'s calicoctl table, times in local time.
pub fn render_status_table(st: &status::AgentStatus) -> String {
    let now = status::unix_now();
    let off = status::local_utc_offset(now);
    status::render_node_status(st, now, off, |h, rows| crate::output::boxtable::render(h, rows))
}

/// `node status -o json`.
pub fn render_status_json(st: &status::AgentStatus) -> String {
    let now = status::unix_now();
    let off = status::local_utc_offset(now);
    serde_json::to_string_pretty(&status::to_calico_json(st, now, off)).expect("json")
}
