//! Says what a plain `cargo test` did not run. Run as any user, `cargo test` tests the
//! workspace's default members (the pure crates and the `brindle` binary, Cargo.toml's
//! `default-members`) without brindle's suites that need root and network namespaces (the
//! `root-tests` feature): nothing is skipped silently, this target prints what was left out
//! and the command that runs it (CI's, as root). A harness-less test: its output is not
//! captured, so it shows in every `cargo test`.
//!
//! It fails when the manifests it reads do not say what it expects (a feature-gated suite
//! whose file is missing, no `default-members`) and when a suite that needs root (it calls
//! `require::root`, makes a `Netns` or uses a lab/CNI/IPv6 support module) is not gated, so the
//! list cannot go stale quietly, also in CI's root run.

use std::path::Path;

const ALL: &str = "cargo test --workspace --features brindle/root-tests";

fn main() {
    let cli = Path::new(env!("CARGO_MANIFEST_DIR"));
    let root = cli.join("../..");
    let gated = gated_suites(&read(&cli.join("Cargo.toml")));
    assert!(
        !gated.is_empty(),
        "crates/cli/Cargo.toml gates no suite on root-tests"
    );
    for (name, path) in &gated {
        assert!(
            cli.join(path).is_file(),
            "suite {name}: {path} does not exist (crates/cli/Cargo.toml)"
        );
    }
    let needs_root = [
        "require::root",
        "Netns",
        "lab_support",
        "cni_support",
        "v6_support",
    ];
    let mut ungated = Vec::new();
    for e in std::fs::read_dir(cli.join("tests"))
        .expect("read tests/")
        .flatten()
    {
        let p = e.path();
        let main = if p.is_dir() { p.join("main.rs") } else { p.clone() };
        if main.extension().is_none_or(|x| x != "rs") || !main.is_file() || main.ends_with(file!()) {
            continue;
        }
        let rel = main.strip_prefix(cli).unwrap().to_string_lossy().into_owned();
        if needs_root.iter().any(|n| read(&main).contains(n)) && !gated.iter().any(|(_, p)| *p == rel) {
            ungated.push(rel);
        }
    }
    ungated.sort();
    assert!(
        ungated.is_empty(),
        "suites that need root without required-features = [\"root-tests\"] in crates/cli/Cargo.toml: {}",
        ungated.join(", ")
    );
    let defaults = default_members(&read(&root.join("Cargo.toml")));
    assert!(!defaults.is_empty(), "Cargo.toml has no default-members");
    let mut other_crates: Vec<String> = std::fs::read_dir(root.join("crates"))
        .expect("read crates/")
        .filter_map(|e| e.ok())
        .filter(|e| e.path().join("Cargo.toml").is_file())
        .map(|e| format!("crates/{}", e.file_name().to_string_lossy()))
        .filter(|c| !defaults.contains(c))
        .collect();
    other_crates.sort();

    if cfg!(feature = "root-tests") {
        println!("suites_not_run: brindle's root suites are built (feature root-tests)");
        return;
    }
    let names: Vec<&str> = gated.iter().map(|(n, _)| n.as_str()).collect();
    println!();
    println!("NOTE: this run left out the tests that need root and network namespaces:");
    println!("  - brindle's suites {} (feature root-tests);", names.join(", "));
    println!(
        "  - unless --workspace was given, the crates outside default-members: {}.",
        other_crates.join(", ")
    );
    println!("  Run everything as root, as CI's .ci/test does: {ALL}");
    println!();
}

fn read(p: &Path) -> String {
    std::fs::read_to_string(p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

/// `(name, path)` of each `[[test]]` that requires the `root-tests` feature.
fn gated_suites(manifest: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for block in manifest.split("[[test]]").skip(1) {
        let block = block.split("\n[").next().unwrap_or(block);
        let field = |k: &str| {
            block.lines().find_map(|l| {
                let (key, v) = l.split_once('=')?;
                (key.trim() == k).then(|| v.trim().trim_matches('"').to_string())
            })
        };
        if block.contains("\"root-tests\"")
            && let (Some(name), Some(path)) = (field("name"), field("path"))
        {
            out.push((name, path));
        }
    }
    out
}

/// The workspace's `default-members` (`crates/...` paths).
fn default_members(manifest: &str) -> Vec<String> {
    let Some(rest) = manifest.split("default-members").nth(1) else {
        return Vec::new();
    };
    let list = rest
        .split('[')
        .nth(1)
        .and_then(|r| r.split(']').next())
        .unwrap_or("");
    list.split(',')
        .map(|s| s.trim().trim_matches('"').to_string())
        .filter(|s| !s.is_empty())
        .collect()
}
