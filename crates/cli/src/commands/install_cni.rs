//! `brindle install-cni`: installs the CNI plugin and its network configuration on this host
//! (or, as the DaemonSet's init container, on the host whose directories are mounted), as
//! Calico's install-cni does; `--uninstall` removes what it installed. The work is in
//! [`brindle_cni::install`].

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context as _, Result};
use brindle_cni::install::{self, Action, Settings};
use clap::Args;

#[derive(Debug, Args)]
pub struct InstallCniArgs {
    /// The CNI bin directory (Debian's packages use /usr/lib/cni).
    #[arg(long, value_name = "DIR", default_value = install::DEFAULT_BIN_DIR)]
    pub bin_dir: PathBuf,
    /// The CNI configuration directory (CNI_NET_DIR names it as the host sees it, when it is
    /// mounted elsewhere).
    #[arg(long, value_name = "DIR", default_value = install::DEFAULT_CONF_DIR)]
    pub conf_dir: PathBuf,
    /// Also install every plugin in DIR (portmap, …), as Calico's image does.
    #[arg(long, value_name = "DIR", env = "BRINDLE_CNI_EXTRA_PLUGINS_DIR")]
    pub extra_plugins_dir: Option<PathBuf>,
    /// Remove exactly what an earlier install wrote (and still holds what it wrote).
    #[arg(long)]
    pub uninstall: bool,
}

/// How often `SLEEP=true` re-installs (new TLS assets from a rotated Secret, a new template).
const RESYNC: Duration = Duration::from_secs(10);

pub fn install_cni(a: &InstallCniArgs) -> Result<()> {
    let settings = Settings {
        bin_dir: a.bin_dir.clone(),
        conf_dir: a.conf_dir.clone(),
        source: std::env::current_exe().context("find the running binary")?,
        extra_plugins_dir: a.extra_plugins_dir.clone(),
    };
    let env = |k: &str| std::env::var(k).ok();
    if a.uninstall {
        for l in install::uninstall(&settings)? {
            println!("{l}");
        }
        return Ok(());
    }
    let sleep = install::sleep_requested(&env)?;
    for l in install::install(&settings, &env)? {
        println!("{l}");
    }
    if !sleep {
        return Ok(());
    }
    loop {
        std::thread::sleep(RESYNC);
        match install::install(&settings, &env) {
            Ok(lines) => {
                for l in lines.iter().filter(|l| l.action != Action::Unchanged) {
                    println!("{l}");
                }
            }
            // Keep what is installed and try again: the init container's host keeps working.
            Err(e) => eprintln!("install-cni: {e:#}"),
        }
    }
}
