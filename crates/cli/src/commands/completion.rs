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
    if a.shell == Shell::Fish {
        // clap_complete's fish script completes subcommands and flags only; bash's and zsh's
        // also offer a positional argument's possible values (the resource kinds).
        let mut extra = String::new();
        fish_positional_values(&cmd, &mut Vec::new(), &mut extra);
        script.extend_from_slice(extra.as_bytes());
    }
    std::io::Write::write_all(&mut std::io::stdout(), &script)
        .map_err(|e| anyhow!("write the completion script: {e}"))
}

/// One `complete` line per positional argument with possible values (`brindle get <TAB>`:
/// the kinds), offered until one of them is on the command line. The conditions use the
/// helper function clap_complete's script defines.
fn fish_positional_values(cmd: &clap::Command, path: &mut Vec<String>, out: &mut String) {
    if let Some((first, rest)) = path.split_first() {
        for arg in cmd.get_positionals().filter(|a| !a.is_hide_set()) {
            let values: Vec<String> = arg
                .get_possible_values()
                .iter()
                .filter(|v| !v.is_hide_set())
                .map(|v| v.get_name().to_string())
                .collect();
            if values.is_empty() {
                continue;
            }
            let mut cond = format!("__fish_brindle_using_subcommand {first}");
            for p in rest {
                cond.push_str(&format!("; and __fish_seen_subcommand_from {p}"));
            }
            let values = values.join(" ");
            cond.push_str(&format!("; and not __fish_seen_subcommand_from {values}"));
            out.push_str(&format!("complete -c brindle -n \"{cond}\" -f -a \"{values}\"\n"));
        }
    }
    for sub in cmd.get_subcommands().filter(|s| !s.is_hide_set()) {
        path.push(sub.get_name().to_string());
        fish_positional_values(sub, path, out);
        path.pop();
    }
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
