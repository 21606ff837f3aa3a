//! `completion SHELL` and the hidden `generate-man DIR`: shell completions (clap_complete) and man
//! pages (clap_mangen) generated from the clap definition in `args.rs`, so they never drift from
//! the commands and flags the binary takes.

use std::path::{Path, PathBuf};

use anyhow::{Result, anyhow};
use clap::{Args, CommandFactory, ValueEnum};

use crate::args::Cli;

/// Shells `completion` writes a script for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Shell {
    Bash,
    Zsh,
    Fish,
}

#[derive(Debug, Args)]
pub struct CompletionArgs {
    /// The shell to complete for.
    #[arg(value_enum)]
    pub shell: Shell,
}

#[derive(Debug, Args)]
pub struct GenerateManArgs {
    /// Directory to write brindle.1 and one page per subcommand (brindle-get.1, …) into.
    pub dir: PathBuf,
}

/// Prints the completion script for `a.shell` on stdout.
pub fn completion(a: &CompletionArgs) -> Result<()> {
    let shell = match a.shell {
        Shell::Bash => clap_complete::Shell::Bash,
        Shell::Zsh => clap_complete::Shell::Zsh,
        Shell::Fish => clap_complete::Shell::Fish,
    };
    let mut cmd = Cli::command();
    // Into a buffer first: clap_complete panics on a write error (a closed pipe, `| head`).
    let mut script = Vec::new();
    clap_complete::generate(shell, &mut cmd, "brindle", &mut script);
    std::io::Write::write_all(&mut std::io::stdout(), &script)
        .map_err(|e| anyhow!("write the completion script: {e}"))
}

/// Writes the man pages into `a.dir` (created if missing) and names them on stdout.
pub fn generate_man(a: &GenerateManArgs) -> Result<()> {
    write_man_pages(&a.dir)?;
    let mut pages: Vec<String> = std::fs::read_dir(&a.dir)
        .map_err(|e| anyhow!("read directory {}: {e}", a.dir.display()))?
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".1"))
        .collect();
    pages.sort();
    for p in pages {
        println!("{}", a.dir.join(p).display());
    }
    Ok(())
}

fn write_man_pages(dir: &Path) -> Result<()> {
    std::fs::create_dir_all(dir).map_err(|e| anyhow!("create directory {}: {e}", dir.display()))?;
    clap_mangen::generate_to(Cli::command(), dir)
        .map_err(|e| anyhow!("write man pages into {}: {e}", dir.display()))
}
