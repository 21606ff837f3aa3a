//! `patch <KIND> <NAME> --patch '{…}'`: a JSON merge patch (RFC 7386) on the stored resource,
//! then a compare-and-swap update. Calico's types declare no list merge keys, so a strategic
//! merge patch behaves the same: objects merge (labels and annotations included), lists and
//! scalars are replaced, `null` removes a field.

use anyhow::{Result, anyhow, bail};
use brindle_model::Resource;
use serde_json::Value;

use super::{namespace_for, parse_kind};
use crate::args::PatchArgs;
use crate::client::Client;

/// RFC 7386 merge.
pub fn merge_patch(target: &mut Value, patch: &Value) {
    let Value::Object(p) = patch else {
        *target = patch.clone();
        return;
    };
    if !target.is_object() {
        *target = Value::Object(Default::default());
    }
    let Value::Object(t) = target else { unreachable!() };
    for (k, v) in p {
        if v.is_null() {
            t.remove(k);
        } else {
            merge_patch(t.entry(k.clone()).or_insert(Value::Null), v);
        }
    }
}

pub fn patch(client: &Client, a: &PatchArgs) -> Result<()> {
    if !matches!(a.patch_type.as_str(), "strategic" | "json" | "merge") {
        bail!("unknown patch type {:?} (strategic, json or merge)", a.patch_type);
    }
    let kind = parse_kind(&a.kind)?;
    let ns = namespace_for(kind, "", &a.ns)?;
    super::refuse_kubernetes_policy(kind, &ns, &a.name, "apply or replace").map_err(|e| anyhow!(e))?;
    let current = client.must_get(kind, &ns, &a.name)?;
    let p: Value = serde_norway::from_str(&a.patch).map_err(|e| anyhow!("patch is not JSON or YAML: {e}"))?;
    if !p.is_object() {
        bail!("patch must be an object, e.g. '{{\"spec\":{{\"natOutgoing\":true}}}}'");
    }
    let mut v = current.to_value();
    merge_patch(&mut v, &p);
    let patched =
        Resource::from_value(kind, v).map_err(|e| anyhow!("creating resource from patched data: {e}"))?;
    if patched.name() != current.name() || patched.metadata().namespace != current.metadata().namespace {
        bail!(
            "a patch cannot change the name or namespace of {}",
            current.identifier()
        );
    }
    client.update(&patched)?;
    println!("Successfully patched 1 '{kind}' resource");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn rfc7386_examples() {
        let mut t = json!({"a": "b", "c": {"d": "e", "f": "g"}, "l": [1, 2]});
        merge_patch(&mut t, &json!({"a": "z", "c": {"f": null}, "l": [3]}));
        assert_eq!(t, json!({"a": "z", "c": {"d": "e"}, "l": [3]}));
        let mut t = json!({"metadata": {"labels": {"x": "1"}}});
        merge_patch(&mut t, &json!({"metadata": {"labels": {"y": "2"}}}));
        assert_eq!(t, json!({"metadata": {"labels": {"x": "1", "y": "2"}}}));
    }
}
