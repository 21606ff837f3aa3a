//! deploy/grafana/brindle.json: it is a Grafana dashboard (JSON, panels with queries, unique ids)
//! and every metric it queries is one docs/METRICS.md documents (a histogram's `_bucket`,
//! `_sum`, `_count` series count as the histogram), so a renamed series breaks this test, not a
//! user's dashboard.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use serde_json::Value;

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

const PREFIXES: [&str; 5] = ["felix_", "bird_", "brindle_", "ipam_", "process_"];

fn is_metric(word: &str) -> bool {
    PREFIXES.iter().any(|p| word.starts_with(p))
}

/// The metric names in a PromQL expression: identifiers with Brindle's prefixes, outside quoted
/// label values.
fn queried(expr: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut word = String::new();
    let mut quoted = false;
    for c in expr.chars().chain(std::iter::once(' ')) {
        if c == '"' {
            quoted = !quoted;
            word.clear();
            continue;
        }
        if !quoted && (c.is_ascii_alphanumeric() || c == '_' || c == ':') {
            word.push(c);
            continue;
        }
        if is_metric(&word) {
            out.push(std::mem::take(&mut word));
        }
        word.clear();
    }
    out
}

/// Every family METRICS.md names in backticks; `_export_count` after
/// `bird_protocol_prefix_import_count` is shorthand for `bird_protocol_prefix_export_count`.
fn documented() -> BTreeSet<String> {
    let text = std::fs::read_to_string(repo().join("docs/METRICS.md")).expect("docs/METRICS.md");
    let mut names = BTreeSet::new();
    let mut previous = String::new();
    for (i, token) in text.split('`').enumerate() {
        if i % 2 == 0 || token.is_empty() || !token.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
            continue;
        }
        if is_metric(token) {
            names.insert(token.to_string());
            previous = token.to_string();
        } else if let Some(rest) = token.strip_prefix('_')
            && !previous.is_empty()
        {
            let segments = rest.split('_').count();
            let parts: Vec<&str> = previous.split('_').collect();
            let stem = parts[..parts.len().saturating_sub(segments)].join("_");
            names.insert(format!("{stem}_{rest}"));
        }
    }
    names
}

fn exprs(v: &Value, out: &mut Vec<String>) {
    match v {
        Value::Object(m) => {
            for (k, v) in m {
                match (k.as_str(), v) {
                    ("expr" | "definition", Value::String(s)) => out.push(s.clone()),
                    _ => exprs(v, out),
                }
            }
        }
        Value::Array(a) => a.iter().for_each(|v| exprs(v, out)),
        _ => {}
    }
}

fn dashboard() -> Value {
    let path = repo().join("deploy/grafana/brindle.json");
    let text = std::fs::read_to_string(&path).expect("deploy/grafana/brindle.json");
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

#[test]
fn the_parsers_of_this_test_work() {
    assert_eq!(
        queried(r#"sum by (ippool) (rate(ipam_blocks{instance=~"felix_x", le="1"}[5m])) / process_threads"#),
        ["ipam_blocks", "process_threads"]
    );
    let docs = documented();
    assert!(docs.contains("bird_protocol_prefix_export_count"), "{docs:?}");
    assert!(docs.contains("bird_protocol_prefix_filter_count"), "{docs:?}");
    assert!(docs.contains("felix_nft_rules") && docs.contains("process_open_fds"));
    assert!(!docs.contains("ip_version"));
}

#[test]
fn dashboard_queries_only_documented_metrics() {
    let d = dashboard();
    assert_eq!(d["title"], "Brindle");
    let panels = d["panels"].as_array().expect("panels");
    let ids: BTreeSet<i64> = panels
        .iter()
        .map(|p| p["id"].as_i64().expect("panel id"))
        .collect();
    assert_eq!(ids.len(), panels.len(), "panel ids are unique");
    for p in panels.iter().filter(|p| p["type"] != "row") {
        let targets = p["targets"].as_array().map(Vec::len).unwrap_or(0);
        assert!(targets > 0, "panel {} has no query", p["title"]);
    }
    let docs = documented();
    let mut all = Vec::new();
    exprs(&d, &mut all);
    let mut used = BTreeSet::new();
    for e in &all {
        for name in queried(e) {
            let known = docs.contains(&name)
                || ["_bucket", "_sum", "_count"]
                    .iter()
                    .any(|s| name.strip_suffix(s).is_some_and(|h| docs.contains(h)));
            assert!(known, "{name} (in `{e}`) is not in docs/METRICS.md");
            used.insert(name);
        }
    }
    // The groups the issue names are all drawn.
    for must in [
        "bird_protocol_up",
        "bird_protocol_prefix_import_count",
        "bird_protocol_prefix_export_count",
        "felix_active_local_endpoints",
        "felix_int_dataplane_failures",
        "ipam_allocations_in_use",
        "ipam_ippool_size",
        "process_resident_memory_bytes",
        "brindle_build_info",
    ] {
        assert!(used.contains(must), "the dashboard does not show {must}");
    }
}
