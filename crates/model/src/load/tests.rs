use super::*;
use crate::resources::EncapMode;

const SEED_POOL: &str = "\
apiVersion: projectcalico.org/v3
kind: IPPool
metadata:
  name: default-pool
spec:
  cidr: 10.233.64.0/18
  blockSize: 24
  ipipMode: Always
  natOutgoing: true
";

fn load(text: &str) -> Vec<Resource> {
    load_str("test.yaml", text).unwrap_or_else(|e| panic!("{e}"))
}

fn load_err(text: &str) -> LoadError {
    load_str("test.yaml", text).expect_err("should not load")
}

#[test]
fn single_document() {
    let rs = load(SEED_POOL);
    assert_eq!(rs.len(), 1);
    let Resource::IPPool(p) = &rs[0] else {
        panic!("{rs:?}")
    };
    assert_eq!(p.metadata.name, "default-pool");
    assert_eq!(p.spec.cidr, "10.233.64.0/18");
    assert_eq!(p.spec.block_size, 24);
    assert_eq!(p.spec.ipip_mode, Some(EncapMode::Always));
    assert!(p.spec.nat_outgoing);
}

#[test]
fn multi_document_stream_with_empty_documents() {
    let text = format!(
        "---\n{SEED_POOL}---\n# only a comment\n---\napiVersion: projectcalico.org/v3\nkind: BGPPeer\nmetadata:\n  name: rr1\nspec:\n  peerIP: 192.0.2.1\n  asNumber: 64513\n---\napiVersion: projectcalico.org/v3\nkind: BGPConfiguration\nmetadata:\n  name: default\nspec:\n  nodeToNodeMeshEnabled: false\n  asNumber: \"1.10\"\n"
    );
    let rs = load(&text);
    let kinds: Vec<Kind> = rs.iter().map(Resource::kind).collect();
    assert_eq!(kinds, [Kind::IPPool, Kind::BGPPeer, Kind::BGPConfiguration]);
    let Resource::BGPConfiguration(b) = &rs[2] else {
        panic!()
    };
    assert_eq!(b.spec.as_number.unwrap().0, 65546);
    assert_eq!(b.spec.node_to_node_mesh_enabled, Some(false));
}

#[test]
fn list_kinds_and_case_insensitive_kinds() {
    let text = "\
apiVersion: projectcalico.org/v3
kind: IPPoolList
metadata:
  resourceVersion: \"1150\"
items:
- apiVersion: projectcalico.org/v3
  kind: IPPool
  metadata:
    name: a
  spec:
    cidr: 10.0.0.0/16
- apiVersion: projectcalico.org/v3
  kind: ippool
  metadata:
    name: b
  spec:
    cidr: 10.1.0.0/16
";
    let rs = load(text);
    assert_eq!(
        rs.iter().map(|r| r.name().to_string()).collect::<Vec<_>>(),
        ["a", "b"]
    );
    let rs = load(
        "apiVersion: projectcalico.org/v3\nkind: bgppeer\nmetadata: {name: x}\nspec: {peerIP: 10.0.0.1}\n",
    );
    assert_eq!(rs[0].kind(), Kind::BGPPeer);
}

#[test]
fn document_that_is_a_list_of_mixed_kinds() {
    let text = "\
- apiVersion: projectcalico.org/v3
  kind: IPPool
  metadata: {name: a}
  spec: {cidr: 10.0.0.0/16}
- apiVersion: projectcalico.org/v3
  kind: BGPPeer
  metadata: {name: p}
  spec: {peerIP: 10.0.0.1, asNumber: 65000}
";
    let rs = load(text);
    assert_eq!(
        rs.iter().map(Resource::kind).collect::<Vec<_>>(),
        [Kind::IPPool, Kind::BGPPeer]
    );
}

#[test]
fn json_single_list_and_concatenated() {
    let one = r#"{"kind":"IPPool","apiVersion":"projectcalico.org/v3","metadata":{"name":"a"},"spec":{"cidr":"10.0.0.0/16","natOutgoing":true}}"#;
    assert_eq!(load(one).len(), 1);
    let arr = format!("[{one}, {one}]");
    assert_eq!(load(&arr).len(), 2);
    let two = format!("{one}\n{one}\n");
    assert_eq!(load(&two).len(), 2);
    let e = load_err(
        "{\"kind\":\"IPPool\",\"apiVersion\":\"projectcalico.org/v3\",\n\"metadata\":{\"name\":\"a\"},\n\"spec\":{\"cidr\":\"10.0.0.0/16\",\"nat\":true}}",
    );
    assert_eq!(e.line, Some(3), "{e}");
    assert!(
        e.message
            .contains("not recognized or is in the wrong location: nat"),
        "{e}"
    );
}

#[test]
fn unknown_field_names_document_line_and_resource() {
    let text = format!(
        "{SEED_POOL}---\napiVersion: projectcalico.org/v3\nkind: IPPool\nmetadata:\n  name: p2\nspec:\n  cidr: 10.0.0.0/16\n  ipipmode: Always\n"
    );
    let e = load_err(&text);
    assert_eq!(e.document, 2);
    assert_eq!(e.line, Some(17), "{e}");
    assert_eq!(
        e.to_string(),
        "test.yaml: document 2, line 17: IPPool(p2): field in document is not recognized or is in the wrong location: ipipmode (in spec)"
    );
}

#[test]
fn type_errors_have_lines() {
    let e = load_err(
        "apiVersion: projectcalico.org/v3\nkind: IPPool\nmetadata:\n  name: p\nspec:\n  cidr: 10.0.0.0/16\n  blockSize: big\n",
    );
    assert_eq!(e.line, Some(7), "{e}");
    assert!(
        e.message.starts_with("IPPool(p): spec.blockSize: invalid type"),
        "{e}"
    );
    let e = load_err(
        "apiVersion: projectcalico.org/v3\nkind: IPPool\nmetadata:\n  name: p\nspec:\n  cidr: 10.0.0.0/16\n  ipipMode: Sometimes\n",
    );
    assert!(e.message.contains("unknown variant `Sometimes`"), "{e}");
    let e = load_err(
        "apiVersion: projectcalico.org/v3\nkind: BGPPeer\nmetadata:\n  name: p\nspec:\n  asNumber: \"1.99999\"\n",
    );
    assert!(e.message.contains("invalid AS Number format (1.99999)"), "{e}");
}

#[test]
fn yaml_syntax_error_has_document_and_line() {
    let text = format!(
        "{SEED_POOL}---\napiVersion: projectcalico.org/v3\nkind: IPPool\nmetadata:\n  name: [unclosed\n"
    );
    let e = load_err(&text);
    assert_eq!(e.document, 2);
    assert!(e.line.is_some_and(|l| l >= 14), "{e}");
}

#[test]
fn kinds_and_versions_are_checked() {
    let e = load_err("apiVersion: projectcalico.org/v3\nkind: Pod\nmetadata: {name: a}\n");
    assert_eq!(e.message, "unknown resource type \"Pod\"");
    let e = load_err("kind: IPPool\nmetadata: {name: a}\n");
    assert_eq!(
        e.message,
        "IPPool has no apiVersion (expected projectcalico.org/v3)"
    );
    let e = load_err("apiVersion: crd.projectcalico.org/v1\nkind: IPPool\nmetadata: {name: a}\n");
    assert!(
        e.message
            .contains("unknown resource type (IPPool) and/or version (crd.projectcalico.org/v1)"),
        "{e}"
    );
    let e = load_err("apiVersion: projectcalico.org/v3\nmetadata: {name: a}\n");
    assert_eq!(e.message, "resource has no kind");
    let e = load_err("just a string\n");
    assert!(e.message.starts_with("document is not a resource"), "{e}");
    let e = load_err("- 1\n");
    assert_eq!(e.message, "list item 1 is not a resource");
}

#[test]
fn empty_input_loads_nothing() {
    assert!(load("").is_empty());
    assert!(load("---\n---\n").is_empty());
    assert!(load("# nothing\n").is_empty());
}

#[test]
fn bytes_must_be_utf8() {
    let e = load_bytes("f", &[0xff, 0xfe]).unwrap_err();
    assert!(e.message.starts_with("not UTF-8 text"), "{e}");
}
