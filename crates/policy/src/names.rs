//! Calico's stable ids and length-limited names (`libcalico-go/lib/hash/unique_id.go`): ids are
//! `<prefix>:` + unpadded base64url of SHA-224(`<prefix>:<content>`); names too long for the
//! dataplane keep their prefix and get `_` + a cut base64url SHA-256 of the rest.

use sha2::{Digest, Sha224, Sha256};

use crate::ir::SetId;

const B64URL: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

/// Unpadded base64url (Go's `base64.RawURLEncoding`).
fn base64url(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            chunk.get(1).copied().unwrap_or(0),
            chunk.get(2).copied().unwrap_or(0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        let chars = chunk.len() + 1;
        for i in 0..chars {
            out.push(B64URL[((n >> (18 - 6 * i)) & 63) as usize] as char);
        }
    }
    out
}

/// `hash.MakeUniqueID(prefix, content)`.
pub fn unique_id(prefix: &str, content: &str) -> String {
    let mut h = Sha224::new();
    h.update(prefix.as_bytes());
    h.update(b":");
    h.update(content.as_bytes());
    format!("{prefix}:{}", base64url(&h.finalize()))
}

/// The id of the selector set for a canonical selector (`Selector.UniqueID`).
pub fn selector_set_id(canonical_selector: &str) -> SetId {
    SetId::new(unique_id("s", canonical_selector))
}

/// The id of a named-port set: the selector's id, the protocol (`tcp`, `udp`, `sctp`, `any`)
/// and the port name.
pub fn named_port_set_id(selector_id: &SetId, protocol: &str, port_name: &str) -> SetId {
    SetId::new(unique_id("n", &format!("{selector_id},{protocol},{port_name}")))
}

/// `hash.GetLengthLimitedID(prefix, suffix, max_len)`.
pub fn length_limited(prefix: &str, suffix: &str, max_len: usize) -> String {
    let suffix = if suffix.is_empty() { "_" } else { suffix };
    let total = prefix.len() + suffix.len();
    if total > max_len || (total == max_len && suffix.starts_with('_')) {
        let hash = base64url(&Sha256::digest(suffix.as_bytes()));
        // Felix panics when the prefix leaves no room; keep at least one hash character.
        let room = max_len.saturating_sub(prefix.len() + 1).max(1);
        format!("{prefix}_{}", &hash[..room.min(hash.len())])
    } else {
        format!("{prefix}{suffix}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64url_matches_rfc4648_vectors() {
        // RFC 4648 §10 vectors, unpadded.
        for (input, want) in [
            ("", ""),
            ("f", "Zg"),
            ("fo", "Zm8"),
            ("foo", "Zm9v"),
            ("foob", "Zm9vYg"),
            ("fooba", "Zm9vYmE"),
            ("foobar", "Zm9vYmFy"),
        ] {
            assert_eq!(base64url(input.as_bytes()), want, "{input:?}");
        }
        assert_eq!(base64url(&[0xfb, 0xff]), "-_8", "url alphabet");
    }

    #[test]
    fn ids_have_calico_shape() {
        let id = selector_set_id("all()");
        assert!(id.as_str().starts_with("s:"));
        // SHA-224 is 28 bytes: 38 base64 characters unpadded.
        assert_eq!(id.as_str().len(), 2 + 38);
        assert_eq!(id, selector_set_id("all()"), "stable");
        assert_ne!(id, selector_set_id("has(a)"));
        let np = named_port_set_id(&id, "tcp", "http");
        assert!(np.as_str().starts_with("n:") && np.is_named_port());
        assert_ne!(np, named_port_set_id(&id, "udp", "http"));
    }

    #[test]
    fn selector_ids_match_calicos() {
        // Calico's own canonicalisation vectors (libcalico-go selector parser tests).
        for (input, canonical, id) in [
            ("", "all()", "s:5y5I3VdRZfDU01O--xXAPx2yxCQQqMf0M6IWug"),
            (
                "! (has( b)||! has(a ))",
                "!(has(b) || !has(a))",
                "s:Iss0uCleLYv1GSv_pNm7hAO58kE9jAx1NKyG3Q",
            ),
            (
                r#"! (a == "b"&&! c != "d")"#,
                r#"!(a == "b" && !c != "d")"#,
                "s:lh3haoY1ikTRkd4UZu0nWSaIBknYLPJLX16d-w",
            ),
        ] {
            let sel = brindle_model::Selector::parse(input).unwrap();
            assert_eq!(sel.to_string(), canonical, "{input:?}");
            assert_eq!(selector_set_id(canonical).as_str(), id, "{input:?}");
        }
    }

    #[test]
    fn length_limited_names() {
        assert_eq!(length_limited("cali-pi-", "gnp/x", 28), "cali-pi-gnp/x");
        let long = length_limited("cali-pi-", "np/some-namespace/a-long-policy-name", 28);
        assert_eq!(long.len(), 28);
        assert!(long.starts_with("cali-pi-_"));
        // Exactly max_len but starting with the marker: hashed so it cannot clash.
        let tricky = length_limited("ab", "_cd", 5);
        assert!(tricky.starts_with("ab_") && tricky != "ab_cd");
        assert_eq!(length_limited("p-", "", 10), "p-_");
    }
}
