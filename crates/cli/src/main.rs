//! The `brindle` binary. What it does depends on how it is called (see [`brindle_cli::dispatch`]):
//! the CNI plugin (`CNI_COMMAND` set), the IPAM plugin (as `brindle-ipam`), or the
//! calicoctl-compatible CLI (as `brindle` or `calicoctl`).

use std::process::ExitCode;

use brindle_cli::dispatch::{Face, face};
use clap::Parser;

fn main() -> ExitCode {
    let argv0 = std::env::args_os().next();
    match face(argv0.as_deref(), std::env::var_os("CNI_COMMAND").is_some()) {
        // CNI plugin entry points: the CNI helper replaces these two arms with calls into
        // brindle-cni (plugin and IPAM plugin main functions reading stdin/env).
        Face::CniIpam | Face::Cni => cni_not_built(),
        Face::Cli => cli(),
    }
}

/// Answers a CNI runtime with a CNI error result until the plugin is wired in.
fn cni_not_built() -> ExitCode {
    println!(r#"{{"cniVersion":"1.0.0","code":999,"msg":"CNI plugin not built yet"}}"#);
    ExitCode::FAILURE
}

fn cli() -> ExitCode {
    let cli = match brindle_cli::args::Cli::try_parse() {
        Ok(c) => c,
        Err(e) => {
            let _ = e.print();
            return if e.use_stderr() {
                ExitCode::FAILURE
            } else {
                ExitCode::SUCCESS
            };
        }
    };
    match brindle_cli::run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            // calicoctl prints the command's error to stderr and exits 1.
            eprintln!("{e:#}");
            ExitCode::FAILURE
        }
    }
}
