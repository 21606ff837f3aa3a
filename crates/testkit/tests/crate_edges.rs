//! The crate graph is the architecture: every workspace-internal dependency edge must be one
//! that the crates table of `docs/ARCHITECTURE.md` allows (its "may depend on" column), each
//! allowed crate must sit above the crate in that table, every workspace crate must have a row,
//! and a crate marked pure must not depend on a runtime, socket or OS crate. The table is the
//! one statement of the allowed graph; this test reads it and `cargo metadata`.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::process::Command;

/// The harness crate: any crate may have it as a dev-dependency, none as a dependency.
const TESTKIT: &str = "brindle-testkit";

/// Crates a pure crate (no tokio, no sockets, no clock reads) must not depend on.
const IMPURE: &[&str] = &[
    "tokio",
    "futures",
    "socket2",
    "nix",
    "libc",
    "netlink-sys",
    "netlink-packet-route",
    "netlink-packet-core",
    "rusqlite",
    "etcd-client",
    "tonic",
    "aya",
    "tracing-subscriber",
    "rand",
];

/// One row of the crates table.
#[derive(Debug)]
struct Row {
    name: String,
    pure: bool,
    /// `None`: every crate above it (the binary's row).
    allowed: Option<BTreeSet<String>>,
}

/// One dependency of a workspace package, as `cargo metadata` gives it.
#[derive(Debug)]
struct Dep {
    name: String,
    /// `None` (normal), `Some("dev")` or `Some("build")`.
    kind: Option<String>,
}

/// The rows of the table under `## Crates` whose header has a `may depend on` column.
fn parse_table(md: &str) -> Result<Vec<Row>, String> {
    let section = md
        .split("\n## Crates\n")
        .nth(1)
        .ok_or("docs/ARCHITECTURE.md: no \"## Crates\" section")?;
    let section = section.split("\n## ").next().unwrap_or(section);
    let mut lines = section.lines().skip_while(|l| !l.starts_with("| crate |"));
    let header: Vec<&str> = cells(lines.next().ok_or("docs/ARCHITECTURE.md: no crates table")?);
    let col = |name: &str| {
        header
            .iter()
            .position(|h| *h == name)
            .ok_or_else(|| format!("docs/ARCHITECTURE.md: crates table has no {name:?} column"))
    };
    let (pure_col, deps_col) = (col("pure")?, col("may depend on")?);
    let mut rows = Vec::new();
    for line in lines.skip(1).take_while(|l| l.starts_with('|')) {
        let c = cells(line);
        let name = backticked(c[0])
            .into_iter()
            .next()
            .ok_or_else(|| format!("docs/ARCHITECTURE.md: crates table row without a crate name: {line}"))?;
        let deps = c
            .get(deps_col)
            .ok_or_else(|| format!("docs/ARCHITECTURE.md: row {name} has no \"may depend on\" cell"))?;
        let allowed = if deps.starts_with("every crate above") {
            None
        } else {
            Some(backticked(deps).into_iter().collect())
        };
        rows.push(Row {
            name,
            pure: c.get(pure_col).is_some_and(|p| *p == "yes"),
            allowed,
        });
    }
    Ok(rows)
}

fn cells(line: &str) -> Vec<&str> {
    line.trim().trim_matches('|').split('|').map(str::trim).collect()
}

fn backticked(s: &str) -> Vec<String> {
    s.split('`').skip(1).step_by(2).map(str::to_string).collect()
}

/// Every way the workspace departs from the table, one line each.
fn violations(rows: &[Row], packages: &BTreeMap<String, Vec<Dep>>) -> Vec<String> {
    let mut out = Vec::new();
    let position: BTreeMap<&str, usize> = rows
        .iter()
        .enumerate()
        .map(|(i, r)| (r.name.as_str(), i))
        .collect();
    for r in rows {
        if !packages.contains_key(&r.name) {
            out.push(format!(
                "{}: in the crates table but not a workspace crate",
                r.name
            ));
        }
        for a in r.allowed.iter().flatten() {
            match position.get(a.as_str()) {
                Some(&i) if i < position[r.name.as_str()] => {}
                Some(_) => out.push(format!(
                    "{}: may depend on {a}, which is not above it in the table",
                    r.name
                )),
                None => out.push(format!("{}: may depend on {a}, which has no row", r.name)),
            }
        }
    }
    for (name, deps) in packages {
        let Some(&i) = position.get(name.as_str()) else {
            out.push(format!(
                "{name}: a workspace crate without a row in the crates table"
            ));
            continue;
        };
        let row = &rows[i];
        for d in deps {
            let dev = d.kind.as_deref() == Some("dev");
            if packages.contains_key(&d.name) {
                let allowed = match &row.allowed {
                    _ if d.name == TESTKIT => dev,
                    None => position.get(d.name.as_str()).is_some_and(|&j| j < i),
                    Some(a) => a.contains(&d.name),
                };
                if !allowed {
                    let kind = d.kind.as_deref().unwrap_or("normal");
                    out.push(format!(
                        "{name} -> {} ({kind}): not allowed by docs/ARCHITECTURE.md",
                        d.name
                    ));
                }
            } else if row.pure && !dev && IMPURE.contains(&d.name.as_str()) {
                out.push(format!("{name} is marked pure but depends on {}", d.name));
            }
        }
    }
    out
}

fn workspace_packages(root: &Path) -> BTreeMap<String, Vec<Dep>> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let out = Command::new(cargo)
        .args([
            "metadata",
            "--format-version",
            "1",
            "--no-deps",
            "--offline",
            "--manifest-path",
        ])
        .arg(root.join("Cargo.toml"))
        .output()
        .expect("run cargo metadata");
    assert!(
        out.status.success(),
        "cargo metadata failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let m: serde_json::Value = serde_json::from_slice(&out.stdout).expect("cargo metadata prints JSON");
    m["packages"]
        .as_array()
        .expect("packages")
        .iter()
        .map(|p| {
            let deps = p["dependencies"]
                .as_array()
                .expect("dependencies")
                .iter()
                .map(|d| Dep {
                    name: d["name"].as_str().expect("name").to_string(),
                    kind: d["kind"].as_str().map(str::to_string),
                })
                .collect();
            (p["name"].as_str().expect("name").to_string(), deps)
        })
        .collect()
}

#[test]
fn workspace_edges_are_the_architectures() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let md = std::fs::read_to_string(root.join("docs/ARCHITECTURE.md")).expect("read docs/ARCHITECTURE.md");
    let rows = parse_table(&md).unwrap();
    assert!(
        rows.len() >= 10,
        "only {} rows parsed from the crates table",
        rows.len()
    );
    let packages = workspace_packages(&root);
    let v = violations(&rows, &packages);
    assert!(
        v.is_empty(),
        "the crate graph departs from docs/ARCHITECTURE.md (fix the edge, or the table if the \
         architecture changed):\n{}",
        v.join("\n")
    );
}

#[test]
fn departures_are_reported() {
    let md = "intro\n\n## Crates\n\ntext\n\n| crate | what | pure | may depend on |\n|---|---|---|---|\n\
              | `a` | x | yes | — |\n| `b` | x | | `a`, `c` |\n| `c` | x | | `a` |\n\
              | `bin` | x | | every crate above |\n| `brindle-testkit` | x | | — |\n\n## Next\n";
    let rows = parse_table(md).unwrap();
    let dep = |name: &str, kind: Option<&str>| Dep {
        name: name.into(),
        kind: kind.map(str::to_string),
    };
    let packages = BTreeMap::from([
        (
            "a".to_string(),
            vec![
                dep("tokio", None),
                dep("nix", Some("dev")),
                dep(TESTKIT, Some("dev")),
            ],
        ),
        ("b".to_string(), vec![dep("a", None), dep("bin", Some("dev"))]),
        ("c".to_string(), vec![dep("a", Some("build")), dep(TESTKIT, None)]),
        ("bin".to_string(), vec![dep("a", None), dep("c", None)]),
        (TESTKIT.to_string(), vec![]),
        ("new".to_string(), vec![]),
    ]);
    let v = violations(&rows, &packages);
    assert_eq!(
        v,
        [
            "b: may depend on c, which is not above it in the table",
            "a is marked pure but depends on tokio",
            "b -> bin (dev): not allowed by docs/ARCHITECTURE.md",
            "c -> brindle-testkit (normal): not allowed by docs/ARCHITECTURE.md",
            "new: a workspace crate without a row in the crates table",
        ]
    );
}
