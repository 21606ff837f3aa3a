//! Secrets kept out of a diagnostics bundle: values of secret keys in configuration files (YAML
//! or JSON, line by line so comments and layout survive) and in environment variables.
//!
//! A key is secret when its name, lower-cased without `_`/`-`, holds `password`, `passwd`,
//! `secret` or `token`, or is an inline key (`etcdKey`, `etcd_key`, `key`, `privateKey`);
//! file *paths* (`etcdKeyFile`, `etcd_key_file`) stay, they help and reveal nothing.

pub const REDACTED: &str = "<redacted>";

/// Whether the value under `key` must not leave the node.
pub fn is_secret(key: &str) -> bool {
    let k: String = key
        .chars()
        .filter(|c| *c != '_' && *c != '-')
        .flat_map(char::to_lowercase)
        .collect();
    ["password", "passwd", "secret", "token"]
        .iter()
        .any(|w| k.contains(w))
        || matches!(k.as_str(), "etcdkey" | "key" | "privatekey" | "tlskey")
}

/// `text` (YAML or JSON) with the value of every secret key replaced by [`REDACTED`]; a YAML
/// block scalar (`key: |`) loses its indented lines too.
pub fn redact_config(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    // Indentation of a redacted block scalar's key: deeper lines belong to it.
    let mut skipping: Option<usize> = None;
    for line in text.split_inclusive('\n') {
        let indent = line.len() - line.trim_start().len();
        if let Some(at) = skipping {
            if line.trim().is_empty() || indent > at {
                continue;
            }
            skipping = None;
        }
        match split_key(line) {
            Some((head, key, rest)) if is_secret(key) => {
                let value = rest.trim();
                let comma = if value.ends_with(',') { "," } else { "" };
                let nl = if line.ends_with('\n') { "\n" } else { "" };
                if value.starts_with('|') || value.starts_with('>') {
                    skipping = Some(indent);
                }
                out.push_str(head);
                out.push_str(&format!(" \"{REDACTED}\"{comma}{nl}"));
            }
            _ => out.push_str(line),
        }
    }
    out
}

/// `(everything up to and including the colon, key, rest)` of a `key: value` (YAML) or
/// `"key": value` (JSON) line.
fn split_key(line: &str) -> Option<(&str, &str, &str)> {
    let mut i = line.len() - line.trim_start().len();
    if line[i..].starts_with("- ") {
        i += 2;
    }
    let quote = line[i..].chars().next().filter(|c| *c == '"' || *c == '\'');
    if quote.is_some() {
        i += 1;
    }
    let rest = &line[i..];
    let end = match quote {
        Some(q) => rest.find(q)?,
        None => rest.find(':')?,
    };
    let key = &rest[..end];
    if key.is_empty() || key.contains(char::is_whitespace) {
        return None;
    }
    let colon = i + end + usize::from(quote.is_some());
    if !line[colon..].starts_with(':') {
        return None;
    }
    Some((&line[..=colon], key, &line[colon + 1..]))
}

/// `NAME=value`, the value redacted when the variable is a secret.
pub fn env_line(name: &str, value: &str) -> String {
    if is_secret(name) {
        format!("{name}={REDACTED}")
    } else {
        format!("{name}={value}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_are_named_by_their_keys() {
        for k in [
            "etcdPassword",
            "ETCD_PASSWORD",
            "etcdKey",
            "etcd_key",
            "k8s_auth_token",
            "client-secret",
        ] {
            assert!(is_secret(k), "{k}");
        }
        for k in [
            "etcdKeyFile",
            "etcd_key_file",
            "etcdEndpoints",
            "name",
            "ETCD_USERNAME",
        ] {
            assert!(!is_secret(k), "{k}");
        }
    }

    #[test]
    fn yaml_and_json_values_go_layout_stays() {
        let yaml = "spec:\n  datastoreType: etcdv3\n  etcdPassword: hunter2 # old\n  etcdKey: |\n    -----BEGIN KEY-----\n    abc\n  etcdKeyFile: /etc/k.pem\n";
        assert_eq!(
            redact_config(yaml),
            "spec:\n  datastoreType: etcdv3\n  etcdPassword: \"<redacted>\"\n  etcdKey: \"<redacted>\"\n  etcdKeyFile: /etc/k.pem\n"
        );
        let json = "{\n  \"policy\": {\n    \"k8s_auth_token\": \"abc.def\",\n    \"type\": \"k8s\"\n  },\n  \"etcd_password\": \"x\"\n}\n";
        let r = redact_config(json);
        assert_eq!(
            r,
            "{\n  \"policy\": {\n    \"k8s_auth_token\": \"<redacted>\",\n    \"type\": \"k8s\"\n  },\n  \"etcd_password\": \"<redacted>\"\n}\n"
        );
        assert!(serde_json::from_str::<serde_json::Value>(&r).is_ok());
        assert_eq!(env_line("ETCD_PASSWORD", "p"), "ETCD_PASSWORD=<redacted>");
        assert_eq!(env_line("NODENAME", "n1"), "NODENAME=n1");
    }
}
