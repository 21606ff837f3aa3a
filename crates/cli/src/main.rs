//! The `brindle` binary. What it does depends on how it is called (see [`brindle_cli::dispatch`]):
//! the CNI plugin (`CNI_COMMAND` set), the IPAM plugin (as `brindle-ipam`), or the
//! calicoctl-compatible CLI (as `brindle` or `calicoctl`).

use std::process::ExitCode;

use brindle_cli::dispatch::{Face, face};
use clap::Parser;

fn main() -> ExitCode {
    let argv0 = std::env::args_os().next();
    match face(argv0.as_deref(), std::env::var_os("CNI_COMMAND").is_some()) {
        // The CNI plugin and the IPAM plugin: all logic in brindle-cni (it tells the two roles
        // apart by argv[0], also for Calico's names `calico` / `calico-ipam`).
        Face::CniIpam | Face::Cni => {
            let argv: Vec<std::ffi::OsString> = std::env::args_os().collect();
            ExitCode::from(u8::try_from(brindle_cni::main(&argv)).unwrap_or(1))
        }
        Face::Cli => cli(),
    }
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
