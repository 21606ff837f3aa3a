//! YAML exactly as calicoctl prints it: `sigs.k8s.io/yaml` turns the JSON into go-yaml v2
//! values and go-yaml v2 writes them. So map keys are sorted (go-yaml's natural order),
//! sequences inside maps are not indented, strings that would read back as another type
//! (`"1140"`, `"true"`, `""`, timestamps, `"32768:65535"`) are double-quoted, strings that cannot
//! be plain (`'!has(x)'`) single-quoted, and long strings fold at column 80.

use brindle_model::gofloat::format_g as go_format_float_g;
use std::cmp::Ordering;

use serde_json::Value;

const BEST_WIDTH: usize = 80;

/// Renders a JSON value as calicoctl's YAML (ends with a newline).
pub fn to_yaml(v: &Value) -> String {
    let mut out = String::new();
    match v {
        Value::Object(m) if !m.is_empty() => write_map(&mut out, v, 0),
        Value::Array(a) if !a.is_empty() => write_seq(&mut out, v, 0),
        other => {
            out.push_str(&scalar(other, 0, 0, false));
            out.push('\n');
        }
    }
    out
}

/// go-yaml v2's `keyList.Less`: letters compare as characters; a run of digits compares as a
/// number; a non-letter sorts before a letter.
pub fn go_yaml_key_cmp(a: &str, b: &str) -> Ordering {
    let ar: Vec<char> = a.chars().collect();
    let br: Vec<char> = b.chars().collect();
    let mut i = 0;
    while i < ar.len() && i < br.len() {
        if ar[i] == br[i] {
            i += 1;
            continue;
        }
        let al = ar[i].is_alphabetic();
        let bl = br[i].is_alphabetic();
        if al && bl {
            return ar[i].cmp(&br[i]);
        }
        if al || bl {
            return if bl { Ordering::Less } else { Ordering::Greater };
        }
        let mut an: i64 = 0;
        let mut bn: i64 = 0;
        if ar[i] == '0' || br[i] == '0' {
            let mut j = i;
            while j > 0 && ar[j - 1].is_ascii_digit() {
                j -= 1;
                if ar[j] != '0' {
                    an = 1;
                    bn = 1;
                    break;
                }
            }
        }
        let mut ai = i;
        while ai < ar.len() && ar[ai].is_ascii_digit() {
            an = an.wrapping_mul(10).wrapping_add(ar[ai] as i64 - '0' as i64);
            ai += 1;
        }
        let mut bi = i;
        while bi < br.len() && br[bi].is_ascii_digit() {
            bn = bn.wrapping_mul(10).wrapping_add(br[bi] as i64 - '0' as i64);
            bi += 1;
        }
        if an != bn {
            return an.cmp(&bn);
        }
        if ai != bi {
            return ai.cmp(&bi);
        }
        return ar[i].cmp(&br[i]);
    }
    ar.len().cmp(&br.len())
}

fn sorted(m: &serde_json::Map<String, Value>) -> Vec<(&String, &Value)> {
    let mut entries: Vec<(&String, &Value)> = m.iter().collect();
    entries.sort_by(|a, b| go_yaml_key_cmp(a.0, b.0));
    entries
}

fn is_block(v: &Value) -> bool {
    match v {
        Value::Object(m) => !m.is_empty(),
        Value::Array(a) => !a.is_empty(),
        _ => false,
    }
}

/// A block mapping whose keys start at column `indent`.
fn write_map(out: &mut String, v: &Value, indent: usize) {
    let Value::Object(m) = v else { return };
    for (i, (k, val)) in sorted(m).into_iter().enumerate() {
        if i > 0 {
            out.push_str(&" ".repeat(indent));
        }
        let key = scalar(&Value::String(k.clone()), indent, indent, true);
        out.push_str(&key);
        out.push(':');
        match val {
            Value::Object(_) if is_block(val) => {
                out.push('\n');
                out.push_str(&" ".repeat(indent + 2));
                write_map(out, val, indent + 2);
            }
            // go-yaml v2 writes sequences in a mapping without extra indentation.
            Value::Array(_) if is_block(val) => {
                out.push('\n');
                out.push_str(&" ".repeat(indent));
                write_seq(out, val, indent);
            }
            _ => {
                out.push(' ');
                let col = indent + key.chars().count() + 2;
                out.push_str(&scalar(val, col, indent + 2, false));
                out.push('\n');
            }
        }
    }
}

/// A block sequence whose `-` are at column `indent` (the first `-` already positioned).
fn write_seq(out: &mut String, v: &Value, indent: usize) {
    let Value::Array(items) = v else { return };
    for (i, item) in items.iter().enumerate() {
        if i > 0 {
            out.push_str(&" ".repeat(indent));
        }
        out.push_str("- ");
        match item {
            Value::Object(_) if is_block(item) => write_map(out, item, indent + 2),
            Value::Array(_) if is_block(item) => write_seq(out, item, indent + 2),
            _ => {
                out.push_str(&scalar(item, indent + 2, indent + 2, false));
                out.push('\n');
            }
        }
    }
}

/// A scalar starting at column `col`; folded lines continue at column `cont`.
fn scalar(v: &Value, col: usize, cont: usize, simple_key: bool) -> String {
    match v {
        Value::Null => "null".into(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => number(n),
        Value::String(s) => string(s, col, cont, simple_key),
        Value::Object(_) => "{}".into(),
        Value::Array(_) => "[]".into(),
    }
}

fn number(n: &serde_json::Number) -> String {
    if n.is_i64() || n.is_u64() {
        return n.to_string();
    }
    let f = n.as_f64().unwrap_or(0.0);
    go_format_float_g(f)
}

/// go-yaml v2 `resolve`: would this plain text read back as something other than a string?
fn resolves_to_non_string(s: &str) -> bool {
    const SPECIAL: &[&str] = &[
        "y", "Y", "yes", "Yes", "YES", "true", "True", "TRUE", "on", "On", "ON", "n", "N", "no", "No", "NO",
        "false", "False", "FALSE", "off", "Off", "OFF", "", "~", "null", "Null", "NULL", ".nan", ".NaN",
        ".NAN", ".inf", ".Inf", ".INF", "+.inf", "+.Inf", "+.INF", "-.inf", "-.Inf", "-.INF",
    ];
    let Some(first) = s.chars().next() else {
        return true; // "" is null
    };
    let hint = match first {
        '+' | '-' | '0'..='9' => 'D',
        'y' | 'Y' | 'n' | 'N' | 't' | 'T' | 'f' | 'F' | 'o' | 'O' | '~' => 'M',
        '.' => '.',
        _ => return false,
    };
    if SPECIAL.contains(&s) {
        return true;
    }
    match hint {
        '.' => s.parse::<f64>().is_ok() && is_yaml_float(s),
        'D' => {
            if is_timestamp(s) {
                return true;
            }
            let plain = s.replace('_', "");
            go_parse_int(&plain) || is_yaml_float(&plain) || binary_int(&plain)
        }
        _ => false,
    }
}

/// `^[-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?$`
fn is_yaml_float(s: &str) -> bool {
    let s = s.strip_prefix(['-', '+']).unwrap_or(s);
    let (mant, exp) = match s.find(['e', 'E']) {
        Some(i) => (&s[..i], Some(&s[i + 1..])),
        None => (s, None),
    };
    let digits = |t: &str| !t.is_empty() && t.bytes().all(|c| c.is_ascii_digit());
    let mant_ok = match mant.split_once('.') {
        Some(("", f)) => digits(f),
        Some((i, f)) => digits(i) && (f.is_empty() || digits(f)),
        None => digits(mant),
    };
    let exp_ok = exp.is_none_or(|e| digits(e.strip_prefix(['-', '+']).unwrap_or(e)));
    mant_ok && exp_ok
}

/// Go's `strconv.ParseInt(s, 0, 64)` or `ParseUint` succeeding.
fn go_parse_int(s: &str) -> bool {
    let body = s.strip_prefix(['-', '+']).unwrap_or(s);
    let (digits, radix) = if let Some(r) = body.strip_prefix("0x").or_else(|| body.strip_prefix("0X")) {
        (r, 16)
    } else if let Some(r) = body.strip_prefix("0o").or_else(|| body.strip_prefix("0O")) {
        (r, 8)
    } else if let Some(r) = body.strip_prefix("0b").or_else(|| body.strip_prefix("0B")) {
        (r, 2)
    } else if body.len() > 1 && body.starts_with('0') {
        (&body[1..], 8)
    } else {
        (body, 10)
    };
    !digits.is_empty() && u64::from_str_radix(digits, radix).is_ok()
}

fn binary_int(s: &str) -> bool {
    let body = s.strip_prefix('-').unwrap_or(s);
    body.strip_prefix("0b")
        .is_some_and(|r| !r.is_empty() && r.bytes().all(|c| c == b'0' || c == b'1'))
}

/// go-yaml v2 `parseTimestamp`: `2006-1-2`, `2006-1-2 15:4:5[.9]`, `2006-1-2T15:4:5[.9]Z07:00`.
fn is_timestamp(s: &str) -> bool {
    let b = s.as_bytes();
    if b.len() < 5 || !b[..4].iter().all(u8::is_ascii_digit) || b[4] != b'-' {
        return false;
    }
    let num = |t: &str, max: usize| !t.is_empty() && t.len() <= max && t.bytes().all(|c| c.is_ascii_digit());
    let (date, time) = match s.find(['T', 't', ' ']) {
        Some(i) => (&s[..i], Some((&s[i..i + 1], &s[i + 1..]))),
        None => (s, None),
    };
    let d: Vec<&str> = date.split('-').collect();
    if d.len() != 3 || !num(d[1], 2) || !num(d[2], 2) {
        return false;
    }
    let Some((sep, time)) = time else { return true };
    let (clock, zone) = if sep == " " {
        (time, "")
    } else {
        match time.find(['Z', '+', '-']) {
            Some(i) => (&time[..i], &time[i..]),
            None => return false,
        }
    };
    let (hms, frac) = match clock.split_once('.') {
        Some((h, f)) => (h, Some(f)),
        None => (clock, None),
    };
    let t: Vec<&str> = hms.split(':').collect();
    let zone_ok = zone.is_empty() && sep == " "
        || zone == "Z"
        || (zone.len() == 6 && zone.as_bytes()[3] == b':' && num(&zone[1..3], 2) && num(&zone[4..], 2));
    t.len() == 3 && t.iter().all(|p| num(p, 2)) && frac.is_none_or(|f| num(f, 9)) && zone_ok
}

/// go-yaml v2 `isBase60Float`: `^[-+]?[0-9][0-9_]*(?::[0-5]?[0-9])+(?:\.[0-9_]*)?$`.
fn is_base60_float(s: &str) -> bool {
    let s = s.strip_prefix(['-', '+']).unwrap_or(s);
    let (main, frac) = match s.split_once('.') {
        Some((m, f)) => (m, Some(f)),
        None => (s, None),
    };
    let mut parts = main.split(':');
    let head = parts.next().unwrap_or("");
    let head_ok = head.bytes().next().is_some_and(|c| c.is_ascii_digit())
        && head.bytes().all(|c| c.is_ascii_digit() || c == b'_');
    let rest: Vec<&str> = parts.collect();
    let rest_ok = !rest.is_empty()
        && rest.iter().all(|p| {
            let b = p.as_bytes();
            match b.len() {
                1 => b[0].is_ascii_digit(),
                2 => (b'0'..=b'5').contains(&b[0]) && b[1].is_ascii_digit(),
                _ => false,
            }
        });
    let frac_ok = frac.is_none_or(|f| f.bytes().all(|c| c.is_ascii_digit() || c == b'_'));
    head_ok && rest_ok && frac_ok
}

fn printable(c: char) -> bool {
    let u = c as u32;
    u == 0x0a
        || (0x20..=0x7e).contains(&u)
        || u == 0x85
        || (0xa0..=0xd7ff).contains(&u)
        || ((0xe000..=0xfffd).contains(&u) && u != 0xfeff)
        || (0x10000..=0x10ffff).contains(&u)
}

/// libyaml's `analyze_scalar`: whether the text may be written plain (block context) and
/// whether it may be single-quoted.
fn analyze(s: &str) -> (bool, bool) {
    if s.is_empty() {
        return (false, true);
    }
    let chars: Vec<char> = s.chars().collect();
    let blank = |i: usize| {
        chars
            .get(i)
            .is_none_or(|c| *c == ' ' || *c == '\t' || *c == '\n' || *c == '\r')
    };
    let mut block_ind = s.starts_with("---") || s.starts_with("...");
    let mut special = false;
    let mut line_breaks = false;
    let (mut leading_space, mut trailing_space, mut break_space, mut space_break) =
        (false, false, false, false);
    let (mut prev_space, mut prev_break) = (false, false);
    let mut preceded_ws = true;
    for (i, &c) in chars.iter().enumerate() {
        let followed_ws = blank(i + 1);
        if i == 0 {
            match c {
                '#' | ',' | '[' | ']' | '{' | '}' | '&' | '*' | '!' | '|' | '>' | '\'' | '"' | '%' | '@'
                | '`' => block_ind = true,
                '?' | ':' | '-' if followed_ws => block_ind = true,
                _ => {}
            }
        } else {
            match c {
                ':' if followed_ws => block_ind = true,
                '#' if preceded_ws => block_ind = true,
                _ => {}
            }
        }
        if !printable(c) {
            special = true;
        }
        if c == '\n' || c == '\r' {
            line_breaks = true;
        }
        if c == ' ' {
            if i == 0 {
                leading_space = true;
            }
            if i == chars.len() - 1 {
                trailing_space = true;
            }
            if prev_break {
                break_space = true;
            }
            prev_space = true;
            prev_break = false;
        } else if c == '\n' || c == '\r' {
            if prev_space {
                space_break = true;
            }
            prev_break = true;
            prev_space = false;
        } else {
            prev_space = false;
            prev_break = false;
        }
        preceded_ws = blank(i);
    }
    let mut plain = !(leading_space || trailing_space || line_breaks || block_ind);
    let mut single = true;
    if break_space {
        plain = false;
        single = false;
    }
    if space_break || special {
        plain = false;
        single = false;
    }
    (plain, single)
}

fn string(s: &str, col: usize, cont: usize, simple_key: bool) -> String {
    let quoted_double = resolves_to_non_string(s) || is_base60_float(s);
    if !quoted_double && s.contains('\n') && !simple_key {
        return literal(s, cont);
    }
    let (plain_ok, single_ok) = analyze(s);
    let allow_breaks = !simple_key;
    if !quoted_double && plain_ok {
        return folded(s, col, cont, allow_breaks, "", "");
    }
    if !quoted_double && single_ok {
        return folded(&s.replace('\'', "''"), col, cont, allow_breaks, "'", "'");
    }
    double_quoted(s, col, cont, allow_breaks)
}

/// Writes `body` between `open` and `close`, folding at spaces past column 80 the way libyaml
/// does (never at the first or last character, never before another space).
fn folded(body: &str, col: usize, cont: usize, allow_breaks: bool, open: &str, close: &str) -> String {
    let chars: Vec<char> = body.chars().collect();
    let mut out = String::from(open);
    let mut column = col + open.chars().count();
    let mut spaces = false;
    let quoted = !open.is_empty();
    for (i, &c) in chars.iter().enumerate() {
        if c == ' ' {
            let next_space = chars.get(i + 1) == Some(&' ');
            let edge_ok = !quoted || (i != 0 && i + 1 != chars.len());
            if allow_breaks && !spaces && column > BEST_WIDTH && edge_ok && !next_space {
                out.push('\n');
                out.push_str(&" ".repeat(cont));
                column = cont;
            } else {
                out.push(' ');
                column += 1;
            }
            spaces = true;
        } else {
            out.push(c);
            column += 1;
            spaces = false;
        }
    }
    out.push_str(close);
    out
}

fn double_quoted(s: &str, col: usize, cont: usize, allow_breaks: bool) -> String {
    let chars: Vec<char> = s.chars().collect();
    let mut out = String::from("\"");
    let mut column = col + 1;
    let mut spaces = false;
    for (i, &c) in chars.iter().enumerate() {
        let esc = match c {
            '\0' => Some("\\0".to_string()),
            '\u{7}' => Some("\\a".into()),
            '\u{8}' => Some("\\b".into()),
            '\t' => Some("\\t".into()),
            '\n' => Some("\\n".into()),
            '\u{b}' => Some("\\v".into()),
            '\u{c}' => Some("\\f".into()),
            '\r' => Some("\\r".into()),
            '\u{1b}' => Some("\\e".into()),
            '"' => Some("\\\"".into()),
            '\\' => Some("\\\\".into()),
            '\u{85}' => Some("\\N".into()),
            '\u{a0}' => Some("\\_".into()),
            '\u{2028}' => Some("\\L".into()),
            '\u{2029}' => Some("\\P".into()),
            c if !printable(c) || c == '\u{feff}' => Some(match c as u32 {
                u if u <= 0xff => format!("\\x{u:02X}"),
                u if u <= 0xffff => format!("\\u{u:04X}"),
                u => format!("\\U{u:08X}"),
            }),
            _ => None,
        };
        if let Some(e) = esc {
            column += e.chars().count();
            out.push_str(&e);
            spaces = false;
        } else if c == ' ' {
            if allow_breaks && !spaces && column > BEST_WIDTH && i != 0 && i + 1 != chars.len() {
                out.push('\n');
                out.push_str(&" ".repeat(cont));
                column = cont;
                if chars.get(i + 1) == Some(&' ') {
                    out.push('\\');
                    column += 1;
                }
            } else {
                out.push(' ');
                column += 1;
            }
            spaces = true;
        } else {
            out.push(c);
            column += 1;
            spaces = false;
        }
    }
    out.push('"');
    out
}

/// Literal block style for multi-line strings (`|`, `|-` without a final newline).
fn literal(s: &str, cont: usize) -> String {
    let chomp = if s.ends_with('\n') { "" } else { "-" };
    let mut out = format!("|{chomp}");
    for line in s.trim_end_matches('\n').split('\n') {
        out.push('\n');
        if !line.is_empty() {
            out.push_str(&" ".repeat(cont));
            out.push_str(line);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn calicoctl_pool_list() {
        let v = json!({
            "kind": "IPPoolList",
            "apiVersion": "projectcalico.org/v3",
            "metadata": {"resourceVersion": "1150"},
            "items": [{
                "kind": "IPPool",
                "apiVersion": "projectcalico.org/v3",
                "metadata": {"name": "default-pool", "uid": "5b0f", "resourceVersion": "1140", "creationTimestamp": "2023-03-08T12:31:29Z"},
                "spec": {"cidr": "10.233.64.0/18", "vxlanMode": "Never", "ipipMode": "Always", "natOutgoing": true,
                         "blockSize": 24, "nodeSelector": "all()", "allowedUses": ["Workload", "Tunnel"]}
            }]
        });
        assert_eq!(
            to_yaml(&v),
            "apiVersion: projectcalico.org/v3
items:
- apiVersion: projectcalico.org/v3
  kind: IPPool
  metadata:
    creationTimestamp: \"2023-03-08T12:31:29Z\"
    name: default-pool
    resourceVersion: \"1140\"
    uid: 5b0f
  spec:
    allowedUses:
    - Workload
    - Tunnel
    blockSize: 24
    cidr: 10.233.64.0/18
    ipipMode: Always
    natOutgoing: true
    nodeSelector: all()
    vxlanMode: Never
kind: IPPoolList
metadata:
  resourceVersion: \"1150\"
"
        );
    }

    #[test]
    fn quoting_rules() {
        let q = |s: &str| string(s, 0, 2, false);
        assert_eq!(q(""), "\"\"");
        assert_eq!(q("true"), "\"true\"");
        assert_eq!(q("on"), "\"on\"");
        assert_eq!(q("1140"), "\"1140\"");
        assert_eq!(q("1.10"), "\"1.10\"");
        assert_eq!(q("0755"), "\"0755\"");
        assert_eq!(q("1e3"), "\"1e3\"");
        assert_eq!(q("32768:65535"), "32768:65535");
        assert_eq!(q("1:30"), "\"1:30\"");
        assert_eq!(q("n"), "\"n\"");
        assert_eq!(q("2024-05-01"), "\"2024-05-01\"");
        assert_eq!(q("10.233.64.0/18"), "10.233.64.0/18");
        assert_eq!(q("172.20.42.80"), "172.20.42.80");
        assert_eq!(q("all()"), "all()");
        assert_eq!(q("!has(x)"), "'!has(x)'");
        assert_eq!(q("role == 'x'"), "role == 'x'");
        assert_eq!(q("'x' == role"), "'''x'' == role'");
        assert_eq!(q("a: b"), "'a: b'");
        assert_eq!(q("a #b"), "'a #b'");
        assert_eq!(q(" lead"), "' lead'");
        assert_eq!(q("tab\there"), "\"tab\\there\"");
        assert_eq!(q("Never"), "Never");
        assert_eq!(q("-"), "'-'");
        assert_eq!(q("-x"), "-x");
    }

    #[test]
    fn folding_long_strings() {
        let long = "has(a) && b == 'x' && c in {'1', '2', '3'} && d starts with 'something-quite-long-here' && e == 'f'";
        let out = to_yaml(&json!({"nodeSelector": long}));
        let lines: Vec<&str> = out.lines().collect();
        assert_eq!(lines.len(), 2, "{out}");
        assert!(lines[1].starts_with("  "), "{out}");
        assert_eq!(
            format!(
                "{} {}",
                lines[0].trim_start_matches("nodeSelector: "),
                lines[1].trim()
            ),
            long
        );
    }

    #[test]
    fn key_order_is_go_yamls() {
        let mut keys = vec![
            "b",
            "a10",
            "a9",
            "A",
            "_x",
            "ipv6Address",
            "ipv4Address",
            "ipv4IPIPTunnelAddr",
        ];
        keys.sort_by(|a, b| go_yaml_key_cmp(a, b));
        assert_eq!(
            keys,
            [
                "_x",
                "A",
                "a9",
                "a10",
                "b",
                "ipv4Address",
                "ipv4IPIPTunnelAddr",
                "ipv6Address"
            ]
        );
    }

    #[test]
    fn empty_collections_and_nesting() {
        assert_eq!(
            to_yaml(&json!({"status": {}, "items": [], "x": null})),
            "items: []\nstatus: {}\nx: null\n"
        );
        assert_eq!(
            to_yaml(&json!({"a": [[1, 2], {"b": 1}]})),
            "a:\n- - 1\n  - 2\n- b: 1\n"
        );
        assert_eq!(
            to_yaml(&json!({"f": 1.5, "g": 1500000.0})),
            "f: 1.5\ng: 1.5e+06\n"
        );
    }
}
