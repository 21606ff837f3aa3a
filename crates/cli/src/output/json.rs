//! JSON as calicoctl prints it: Go's `json.MarshalIndent(v, "", "  ")`, so two-space indents,
//! struct field order (kind, apiVersion, metadata, spec), `<`, `>`, `&`, U+2028 and U+2029
//! escaped as `\u003c`…, and no trailing newline.

use serde::Serialize;

/// Go's indented JSON of `v` (no trailing newline).
pub fn to_json<T: Serialize + ?Sized>(v: &T) -> String {
    let s = serde_json::to_string_pretty(v).expect("values always serialise");
    // These characters can only appear inside JSON strings, where Go escapes them.
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '<' => out.push_str("\\u003c"),
            '>' => out.push_str("\\u003e"),
            '&' => out.push_str("\\u0026"),
            '\u{2028}' => out.push_str("\\u2028"),
            '\u{2029}' => out.push_str("\\u2029"),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn go_marshal_indent() {
        let v = json!({"kind": "IPPool", "spec": {"nodeSelector": "a == 'x' && b != 'y'", "allowedUses": [], "m": {}}});
        assert_eq!(
            to_json(&v),
            "{\n  \"kind\": \"IPPool\",\n  \"spec\": {\n    \"nodeSelector\": \"a == 'x' \\u0026\\u0026 b != 'y'\",\n    \"allowedUses\": [],\n    \"m\": {}\n  }\n}"
        );
    }
}
