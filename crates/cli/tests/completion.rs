//! Shell completions and man pages generated from the CLI definition: the scripts name the
//! commands and resource kinds (fish, run here, offers the kinds too), each shell's script is
//! what that shell accepts, and the man pages render with man-db (`man -l`).

mod support;

use std::process::Command;

use support::Env;

#[test]
fn bash_completion_offers_commands_and_kinds() {
    let env = Env::sqlite();
    let r = env.run(&["completion", "bash"]).ok();
    for word in ["ippool", "bgppeer", "apply", "--skip-empty", "--recursive"] {
        assert!(r.stdout.contains(word), "bash completion lacks {word}");
    }
    // bash itself accepts the script and registers the completion function.
    let out = Command::new("bash")
        .args(["-c", &format!("{}\ncomplete -p brindle", r.stdout)])
        .output()
        .expect("run bash");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success() && stdout.contains("brindle"), "{out:?}");
}

#[test]
fn zsh_and_fish_scripts_name_commands_and_flags() {
    let env = Env::sqlite();
    let zsh = env.run(&["completion", "zsh"]).ok().stdout;
    assert!(zsh.starts_with("#compdef brindle"), "{zsh}");
    assert!(zsh.contains("ippool") && zsh.contains("--skip-empty"), "{zsh}");
    let fish = env.run(&["completion", "fish"]).ok().stdout;
    assert!(
        fish.contains("-l skip-empty") && fish.contains("-a \"apply\""),
        "{fish}"
    );
    let r = env.run(&["completion", "tcsh"]);
    assert_ne!(r.code, 0);
    assert!(r.stderr.contains("bash") && r.stderr.contains("fish"), "{r:?}");
}

/// fish itself (Debian's fish; .ci/deps installs it) loads the script and, asked what follows
/// `brindle get `, offers the kinds as bash and zsh do; once a kind is typed, no more kinds.
#[test]
fn fish_completes_commands_flags_and_kind_names() {
    let env = Env::sqlite();
    let script = env.dir.join("brindle.fish");
    std::fs::write(&script, env.run(&["completion", "fish"]).ok().stdout).unwrap();
    let complete = |line: &str| -> Vec<String> {
        let out = Command::new("fish")
            .args(["--no-config", "-c"])
            .arg(format!("source {}; complete -C '{line}'", script.display()))
            .output()
            .expect("run fish (install fish)");
        assert!(out.status.success(), "{out:?}");
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .map(|l| l.split('\t').next().unwrap_or_default().to_string())
            .collect()
    };
    let verbs = complete("brindle ");
    for v in ["apply", "get", "label", "node", "ipam"] {
        assert!(verbs.iter().any(|c| c == v), "brindle <TAB> lacks {v}: {verbs:?}");
    }
    for verb in ["get", "delete", "label"] {
        let kinds = complete(&format!("brindle {verb} "));
        for k in [
            "ippool",
            "bgppeer",
            "node",
            "workloadendpoint",
            "globalnetworkpolicy",
            "tier",
        ] {
            assert!(
                kinds.iter().any(|c| c == k),
                "brindle {verb} <TAB> lacks {k}: {kinds:?}"
            );
        }
    }
    let after = complete("brindle get ippool ");
    assert!(!after.iter().any(|c| c == "bgppeer"), "{after:?}");
    let flags = complete("brindle get --sk");
    assert_eq!(flags, ["--skip-empty"], "{flags:?}");
    let shells = complete("brindle completion ");
    assert_eq!(shells, ["bash", "fish", "zsh"], "{shells:?}");
}

#[test]
fn man_pages_render() {
    let env = Env::sqlite();
    let dir = env.dir.join("man");
    let dir_s = dir.display().to_string();
    let r = env.run(&["generate-man", &dir_s]).ok();
    let get = dir.join("brindle-get.1");
    assert!(r.stdout.contains("brindle.1"), "{r:?}");
    assert!(r.stdout.contains("brindle-get.1"), "{r:?}");
    let roff = std::fs::read_to_string(&get).expect("brindle-get.1 written");
    assert!(
        roff.starts_with(".ie") || roff.contains(".TH brindle-get"),
        "{roff}"
    );
    // man-db renders it (Debian's man-db and groff-base; .ci/deps installs them).
    let out = Command::new("man")
        .args(["-l", "--pager=cat"])
        .arg(&get)
        .env("MANWIDTH", "100")
        .output()
        .expect("run man (install man-db)");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{out:?}");
    assert!(text.contains("NAME") && text.contains("brindle-get"), "{text}");
    assert!(text.contains("--skip-empty") && text.contains("ippool"), "{text}");
    // The hidden command is not in the top-level help.
    let help = env.run(&["--help"]).ok();
    assert!(!help.stdout.contains("generate-man") && help.stdout.contains("completion"));
}

#[test]
fn help_of_the_main_verbs_has_examples_and_possible_values() {
    let env = Env::sqlite();
    for verb in ["get", "apply", "create", "replace", "delete", "patch", "label"] {
        let r = env.run(&[verb, "--help"]).ok();
        assert!(r.stdout.contains("Examples:\n"), "{verb} --help: {}", r.stdout);
        assert!(
            r.stdout.contains(&format!("brindle {verb} ")),
            "{verb} --help: {}",
            r.stdout
        );
    }
    let r = env.run(&["get", "--help"]).ok();
    assert!(
        r.stdout
            .contains("[possible values: ippool, bgpconfiguration, bgppeer"),
        "{}",
        r.stdout
    );
    assert!(r.stdout.contains("name, custom-columns"), "{}", r.stdout);
}
