//! Property tests: the manifest loader never panics on any input, and selectors print to a
//! canonical text that parses back to the same meaning.

use std::collections::BTreeMap;

use brindle_model::{Selector, load_str};
use proptest::prelude::*;

/// Lines that look like manifest pieces, so the generator reaches deep into the typed decoders.
fn manifest_line() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("---".to_string()),
        Just("apiVersion: projectcalico.org/v3".to_string()),
        prop::sample::select(vec![
            "IPPool",
            "ippool",
            "IPPoolList",
            "BGPPeer",
            "Node",
            "FelixConfiguration",
            "WorkloadEndpoint",
            "Profile",
            "X"
        ])
        .prop_map(|k| format!("kind: {k}")),
        Just("metadata:".to_string()),
        Just("  name: a".to_string()),
        Just("spec:".to_string()),
        Just("items:".to_string()),
        Just("- kind: IPPool".to_string()),
        "  [a-zA-Z]{1,12}: [a-zA-Z0-9./:'\"{}\\[\\], -]{0,20}",
        "    [a-zA-Z]{1,12}: [0-9]{0,5}",
        "[ -~]{0,30}",
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn loader_never_panics_on_manifest_like_text(lines in prop::collection::vec(manifest_line(), 0..20)) {
        let _ = load_str("fuzz.yaml", &lines.join("\n"));
    }

    #[test]
    fn loader_never_panics_on_any_text(s in "\\PC{0,200}") {
        let _ = load_str("fuzz.yaml", &s);
    }

    #[test]
    fn loader_never_panics_on_json_like_text(s in "[\\[\\]{}\",:a-z0-9 ]{0,120}") {
        let _ = load_str("fuzz.json", &format!("{{{s}"));
    }
}

fn atom() -> impl Strategy<Value = String> {
    let key = prop::sample::select(vec!["a", "b", "x.io/c"]);
    let val = prop::sample::select(vec!["1", "2", "", "say \"hi\""]);
    prop_oneof![
        Just("all()".to_string()),
        key.clone().prop_map(|k| format!("has({k})")),
        (key.clone(), val.clone()).prop_map(|(k, v)| format!("{k} == '{v}'")),
        (key.clone(), val.clone()).prop_map(|(k, v)| format!("{k} != '{v}'")),
        (key.clone(), val.clone()).prop_map(|(k, v)| format!("{k} starts with '{v}'")),
        (key.clone(), val.clone()).prop_map(|(k, v)| format!("{k} contains '{v}'")),
        (key.clone(), val.clone(), val.clone()).prop_map(|(k, v, w)| format!("{k} in {{'{v}', '{w}'}}")),
        (key, val).prop_map(|(k, v)| format!("{k} not in {{'{v}'}}")),
    ]
}

fn expr() -> impl Strategy<Value = String> {
    atom().prop_recursive(3, 16, 3, |inner| {
        prop_oneof![
            inner.clone().prop_map(|e| format!("!({e})")),
            (inner.clone(), inner.clone()).prop_map(|(a, b)| format!("{a} && {b}")),
            (inner.clone(), inner).prop_map(|(a, b)| format!("({a}) || ({b})")),
        ]
    })
}

fn labels() -> impl Strategy<Value = BTreeMap<String, String>> {
    prop::collection::btree_map(
        prop::sample::select(vec!["a".to_string(), "b".to_string(), "x.io/c".to_string()]),
        prop::sample::select(vec![
            "1".to_string(),
            "2".to_string(),
            String::new(),
            "say \"hi\"".to_string(),
        ]),
        0..3,
    )
}

proptest! {
    #[test]
    fn canonical_text_keeps_meaning(sel in expr(), l in labels()) {
        let s = Selector::parse(&sel).unwrap();
        let again = Selector::parse(&s.to_string()).unwrap();
        prop_assert_eq!(s.matches(&l), again.matches(&l));
        // Printing is idempotent once canonical (`!!x` may first collapse to `x`, as in Calico).
        let third = Selector::parse(&again.to_string()).unwrap();
        prop_assert_eq!(again.to_string(), third.to_string());
    }

    #[test]
    fn selector_parser_never_panics(s in "[ -~]{0,60}") {
        let _ = Selector::parse(&s);
    }
}
