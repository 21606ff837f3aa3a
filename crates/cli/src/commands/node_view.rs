//! `brindle node view`: the picture `lab view` draws, for a real node: every node, block and pod
//! from the datastore, and the BGP sessions of this node's agent (asked on its control socket;
//! drawn as not answering when it does not). One self-contained page.

use std::path::{Path, PathBuf};

use anyhow::{Context as _, Result, anyhow};
use brindle_agent::config::AgentConfig;
use clap::Args;

#[derive(Debug, Args)]
pub struct ViewArgs {
    /// The file to write (replaced whole); without it, a file under the temporary directory,
    /// whose name is printed.
    #[arg(short = 'o', long = "output", value_name = "FILE")]
    pub output: Option<PathBuf>,
    /// The agent's control socket (BRINDLE_CTL_SOCKET, default /var/run/brindle/brindle.ctl).
    #[arg(long)]
    pub ctl_socket: Option<PathBuf>,
}

pub fn view(a: &ViewArgs, ds: &crate::args::DatastoreArgs) -> Result<()> {
    let cfg = AgentConfig::from_env(|k| std::env::var(k).ok())?;
    let ctl = a.ctl_socket.clone().unwrap_or_else(|| cfg.ctl_socket.clone());
    let status = brindle_ctl::control::query_status(&ctl);
    let node = match brindle_agent::startup::node_name(&cfg) {
        Ok(n) => n,
        Err(e) => match &status {
            Ok(st) => st.node.clone(),
            Err(_) => return Err(anyhow!("{e}")),
        },
    };
    if let Err(e) = &status {
        eprintln!(
            "the agent does not answer on {} ({e}): its sessions are not drawn",
            ctl.display()
        );
    }
    let statuses = std::collections::BTreeMap::from([(node.clone(), status.ok())]);
    let client = crate::connect::open(ds, crate::connect::Access::ReadOnly)?;
    let title = format!("node {node}");
    let state =
        brindle_agent::view::collect(client.store(), &title, &statuses, brindle_ctl::status::unix_now())
            .map_err(|e| anyhow!("{e}"))?;
    let html = brindle_agent::view::page(Some(&state));
    let path = a
        .output
        .clone()
        .unwrap_or_else(|| std::env::temp_dir().join(format!("brindle-view-{node}.html")));
    write_whole(&path, html.as_bytes())?;
    println!(
        "{}: {} ({} nodes, {} sessions of this node) drawn",
        path.display(),
        title,
        state.nodes.len(),
        state.sessions.len()
    );
    Ok(())
}

/// Writes beside `path` then renames: a reader never sees half a page.
pub fn write_whole(path: &Path, bytes: &[u8]) -> Result<()> {
    let tmp = path.with_extension(format!("tmp.{}", std::process::id()));
    std::fs::write(&tmp, bytes).with_context(|| format!("write {}", tmp.display()))?;
    if let Err(e) = std::fs::rename(&tmp, path) {
        let _ = std::fs::remove_file(&tmp);
        return Err(e).with_context(|| format!("write {}", path.display()));
    }
    Ok(())
}
