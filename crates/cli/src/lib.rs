//! The `brindle` binary's library: the calicoctl-compatible CLI and the output renderers other
//! commands (`node status`, `ipam show`, the agent's health body) reuse.
//!
//! Module map:
//! - [`args`]: the command line (clap): commands, flags, datastore selection.
//! - [`connect`]: datastore selection from flags, `/etc/calico/calicoctl.cfg` and environment.
//! - [`client`]: typed resource CRUD over the datastore with Calico's semantics and messages.
//! - [`columns`]: the `get` table columns of every kind.
//! - [`commands`]: get, apply, create, replace, delete, patch, label, validate, version; node
//!   (`node run`, the agent; `node status`; `node checksystem`), lab and install-cni.
//! - [`output`]: Go tabwriter, tablewriter box tables, go-yaml YAML, Go JSON.
//! - [`ipam`]: `ipam show|check|release|configure` over `brindle-ipam`.
//! - [`dispatch`]: what the binary does depending on how it is called.

pub mod args;
pub mod client;
pub mod columns;
pub mod commands;
pub mod connect;
pub mod dispatch;
pub mod ipam;
pub mod output;

use anyhow::Result;

use args::{Cli, Command};

/// Runs one CLI command.
pub fn run(cli: Cli) -> Result<()> {
    use commands::{get, lab, label, node, patch, version, write};
    match &cli.command {
        Command::Version(a) => version::version(&cli.datastore, a),
        Command::Node(c) => node::node(c, &cli.datastore),
        Command::Lab(c) => lab::lab(c),
        Command::Validate(a) => write::validate_file(a),
        Command::Ipam(a) => ipam::run(&cli.datastore, a),
        Command::InstallCni(a) => commands::install_cni::install_cni(a),
        Command::Completion(a) => commands::completion::completion(a),
        Command::GenerateMan(a) => commands::completion::generate_man(a),
        cmd => {
            // Only the commands that add resources may start a new store; the others need one.
            let access = match cmd {
                Command::Apply(_) | Command::Create(_) => connect::Access::ReadWrite,
                _ => connect::Access::ReadOnly,
            };
            let client = connect::open(&cli.datastore, access)?;
            match cmd {
                Command::Get(a) => get::get(&client, a),
                Command::Apply(a) => write::apply(&client, a),
                Command::Create(a) => write::create(&client, a),
                Command::Replace(a) => write::replace(&client, a),
                Command::Delete(a) => write::delete(&client, a),
                Command::Patch(a) => patch::patch(&client, a),
                Command::Label(a) => label::label(&client, a),
                Command::Version(_)
                | Command::Validate(_)
                | Command::Node(_)
                | Command::Lab(_)
                | Command::Ipam(_)
                | Command::InstallCni(_)
                | Command::Completion(_)
                | Command::GenerateMan(_) => {
                    unreachable!("handled above")
                }
            }
        }
    }
}
