//! Interim node-selector evaluation (`all()`, `has(k)`, `!has(k)`, `k == 'v'`, `k != 'v'`,
//! joined by `&&`) until the model crate's full Calico selector lands; then this module goes.

use std::collections::BTreeMap;

pub fn matches(selector: &str, labels: &BTreeMap<String, String>) -> Result<bool, String> {
    let s = selector.trim();
    if s.is_empty() || s == "all()" {
        return Ok(true);
    }
    for term in s.split("&&") {
        let t = term.trim();
        let ok = if let Some(k) = t.strip_prefix("has(").and_then(|r| r.strip_suffix(')')) {
            labels.contains_key(k.trim())
        } else if let Some(k) = t.strip_prefix("!has(").and_then(|r| r.strip_suffix(')')) {
            !labels.contains_key(k.trim())
        } else if let Some((k, v)) = t.split_once("==") {
            labels.get(k.trim()).map(String::as_str) == Some(unquote(v)?)
        } else if let Some((k, v)) = t.split_once("!=") {
            labels.get(k.trim()).map(String::as_str) != Some(unquote(v)?)
        } else if t == "all()" {
            true
        } else {
            return Err(format!("unsupported selector term {t:?}"));
        };
        if !ok {
            return Ok(false);
        }
    }
    Ok(true)
}

fn unquote(v: &str) -> Result<&str, String> {
    let v = v.trim();
    v.strip_prefix('\'')
        .and_then(|r| r.strip_suffix('\''))
        .or_else(|| v.strip_prefix('"').and_then(|r| r.strip_suffix('"')))
        .ok_or_else(|| format!("value {v} is not quoted"))
}
