//! The process-level entry: which role the binary plays (main plugin, or IPAM plugin when
//! called as `brindle-ipam`/`calico-ipam`), reading the environment and stdin, dispatching the
//! verb, and turning the outcome into stdout and an exit status (0, or 1 with the error JSON).

use std::ffi::OsStr;
use std::io::Read as _;
use std::path::Path;
use std::time::Instant;

use crate::context::{Context, EnvFn, process_env};
use crate::error::{CniError, code};
use crate::fault::Faults;
use crate::invocation::{Command, Invocation};
use crate::netconf::NetConf;
use crate::node::HostFiles;
use crate::version::{self, SUPPORTED, Version};
use brindle_ctl::report;

/// Which plugin this process is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// The main (interface) plugin: `brindle`, or `calico` through a link.
    Plugin,
    /// The IPAM plugin: `brindle-ipam`, or `calico-ipam` through a link.
    Ipam,
}

/// The role for the program name the process was started as.
pub fn role_of(argv0: &OsStr) -> Role {
    let name = Path::new(argv0)
        .file_name()
        .and_then(OsStr::to_str)
        .unwrap_or_default();
    if name == crate::netconf::BRINDLE_IPAM || name == crate::netconf::CALICO_IPAM {
        Role::Ipam
    } else {
        Role::Plugin
    }
}

/// What to print and the exit status.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outcome {
    pub status: i32,
    pub stdout: String,
    pub stderr: String,
}

/// Runs the plugin as the process it is: environment, stdin, stdout, exit status.
pub fn main(argv: &[std::ffi::OsString]) -> i32 {
    let role = role_of(argv.first().map(|s| s.as_os_str()).unwrap_or_default());
    let wants_version = argv.iter().skip(1).any(|a| a == "-v" || a == "--version");
    let out = if wants_version {
        Outcome {
            status: 0,
            stdout: format!("{}\n", env!("CARGO_PKG_VERSION")),
            stderr: String::new(),
        }
    } else {
        let mut stdin = Vec::new();
        // VERSION's input (`{"cniVersion": …}`) is optional: do not wait on a terminal for it.
        let interactive = std::io::IsTerminal::is_terminal(&std::io::stdin());
        let command = process_env("CNI_COMMAND").unwrap_or_default();
        let read = if command.is_empty() || (command == "VERSION" && interactive) {
            Ok(())
        } else {
            std::io::stdin().read_to_end(&mut stdin).map(|_| ())
        };
        match read {
            Ok(()) => run(role, process_env, stdin),
            Err(e) => fail(
                Version::LATEST,
                CniError::new(code::IO, format!("error reading from stdin: {e}")),
            ),
        }
    };
    use std::io::Write as _;
    let _ = std::io::stdout().write_all(out.stdout.as_bytes());
    let _ = std::io::stdout().flush();
    if !out.stderr.is_empty() {
        let _ = std::io::stderr().write_all(out.stderr.as_bytes());
    }
    out.status
}

fn fail(v: Version, e: CniError) -> Outcome {
    crate::log::error(&e.to_string());
    Outcome {
        status: 1,
        stdout: e.to_json(v.as_str()),
        stderr: String::new(),
    }
}

fn about(role: Role) -> String {
    let list: Vec<&str> = SUPPORTED.iter().map(|v| v.as_str()).collect();
    let what = match role {
        Role::Plugin => "Brindle CNI plugin",
        Role::Ipam => "Brindle IPAM plugin",
    };
    format!(
        "{what} {}\nCNI protocol versions supported: {}\n",
        env!("CARGO_PKG_VERSION"),
        list.join(", ")
    )
}

/// Runs one invocation with the environment read through `env` and `stdin` as given.
pub fn run(role: Role, env: EnvFn, stdin: Vec<u8>) -> Outcome {
    if env("CNI_COMMAND").is_none_or(|c| c.is_empty()) {
        return Outcome {
            status: 0,
            stdout: String::new(),
            stderr: about(role),
        };
    }
    let inv = match Invocation::from_env(env) {
        Ok(i) => i,
        Err(e) => return fail(version_hint(&stdin), e),
    };
    if inv.command == Command::Version {
        let requested = serde_json::from_slice::<serde_json::Value>(&stdin)
            .ok()
            .and_then(|v| v.get("cniVersion").and_then(|s| s.as_str()).map(str::to_string));
        return Outcome {
            status: 0,
            stdout: version::version_result(requested.as_deref()),
            stderr: String::new(),
        };
    }
    let conf = match NetConf::decode(&stdin) {
        Ok(c) => c,
        Err(e) => return fail(version_hint(&stdin), e),
    };
    crate::log::init(
        &crate::log::LogSettings {
            level: conf.log_level.as_deref(),
            file: conf.log_file_path.as_deref(),
            format: conf.log_format.as_deref(),
            max_size_mb: conf.log_file_max_size,
            max_count: conf.log_file_max_count,
            max_age_days: conf.log_file_max_age,
        },
        match role {
            Role::Plugin => "cni-plugin",
            Role::Ipam => "ipam-plugin",
        },
        &inv.container_id,
    );
    let version = match conf.version() {
        Ok(v) => v,
        Err(e) => return fail(Version::LATEST, e),
    };
    if let Err(e) = version.require_for(inv.command) {
        return fail(version, e);
    }
    let faults = match Faults::from_env(env) {
        Ok(f) => f,
        Err(e) => return fail(version, e),
    };
    let ctx = Context {
        inv,
        conf,
        version,
        stdin,
        files: HostFiles::from_env(env),
        faults,
        env,
    };
    let started = Instant::now();
    let outcome = dispatch(role, &ctx);
    let elapsed = started.elapsed().as_secs_f64();
    let plugin = match role {
        Role::Plugin => "brindle",
        Role::Ipam => "brindle-ipam",
    };
    let what = format!(
        "{plugin} {} {} network {} ({:.1} ms)",
        ctx.inv.command.as_str(),
        ctx.inv.container_id,
        ctx.conf.name,
        elapsed * 1e3
    );
    let ctl = env("BRINDLE_CTL_SOCKET").unwrap_or_else(|| format!("{}/brindle.ctl", report::DEFAULT_DIR));
    report::send(
        &report::socket_for(Path::new(&ctl)),
        &report::Report {
            plugin: plugin.into(),
            command: ctx.inv.command.as_str().into(),
            seconds: elapsed,
            ok: outcome.is_ok(),
        },
    );
    match outcome {
        Ok(stdout) => {
            crate::log::info(&format!("{what}: ok"));
            Outcome {
                status: 0,
                stdout,
                stderr: String::new(),
            }
        }
        Err(e) => {
            crate::log::info(&format!("{what}: failed"));
            fail(version, e)
        }
    }
}

fn dispatch(role: Role, ctx: &Context) -> Result<String, CniError> {
    let v = ctx.version;
    match role {
        Role::Ipam => Ok(crate::ipam_plugin::run(ctx)?
            .map(|r| r.to_json(v))
            .unwrap_or_default()),
        Role::Plugin => match ctx.inv.command {
            Command::Add => Ok(crate::add::add(ctx)?.to_json(v)),
            Command::Del => crate::del::del(ctx).map(|_| String::new()),
            Command::Check => crate::check::check(ctx).map(|_| String::new()),
            Command::Status => crate::status::status(ctx).map(|_| String::new()),
            Command::Gc => crate::gc::gc(ctx).map(|_| String::new()),
            Command::Version => unreachable!("answered above"),
        },
    }
}

/// The request's version for an error printed before the configuration was understood.
fn version_hint(stdin: &[u8]) -> Version {
    serde_json::from_slice::<serde_json::Value>(stdin)
        .ok()
        .and_then(|v| {
            v.get("cniVersion")
                .and_then(|s| s.as_str())
                .and_then(Version::from_exact)
        })
        .unwrap_or(Version::LATEST)
}
