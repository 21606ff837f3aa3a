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

/// An endless source of bytes: `head` once, then `body` repeated; counts what was read.
struct Endless {
    head: Vec<u8>,
    body: Vec<u8>,
    pos: usize,
    read: std::rc::Rc<std::cell::Cell<usize>>,
}

impl std::io::Read for Endless {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let mut n = 0;
        while n < buf.len() {
            let b = if self.pos < self.head.len() {
                self.head[self.pos]
            } else {
                self.body[(self.pos - self.head.len()) % self.body.len()]
            };
            buf[n] = b;
            n += 1;
            self.pos += 1;
        }
        self.read.set(self.read.get() + n);
        Ok(n)
    }
}

fn endless(head: &str, body: &str) -> (std::io::BufReader<Endless>, std::rc::Rc<std::cell::Cell<usize>>) {
    let read = std::rc::Rc::new(std::cell::Cell::new(0));
    let src = Endless {
        head: head.as_bytes().to_vec(),
        body: body.as_bytes().to_vec(),
        pos: 0,
        read: read.clone(),
    };
    (std::io::BufReader::new(src), read)
}

#[test]
fn deep_flow_nesting_is_refused_before_parsing() {
    let text = format!(
        "apiVersion: projectcalico.org/v3\nkind: IPPool\nmetadata:\n  name: p\nspec: {}{}\n",
        "{a: ".repeat(100_000),
        "}".repeat(100_000)
    );
    let e = load_err(&text);
    assert_eq!(
        e.to_string(),
        "test.yaml: document 1, line 5: nesting is deeper than the limit of 64 levels"
    );
    // JSON, counted exactly while reading.
    let json = format!("{}{}", "[".repeat(100_000), "]".repeat(100_000));
    let e = load_err(&json);
    assert_eq!(e.message, "nesting is deeper than the limit of 64 levels");
}

#[test]
fn deep_block_nesting_is_refused() {
    let mut text =
        String::from("apiVersion: projectcalico.org/v3\nkind: IPPool\nmetadata:\n  name: p\nspec:\n");
    for i in 0..70 {
        text.push_str(&format!("{}a:\n", "  ".repeat(i + 1)));
    }
    let e = load_err(&text);
    assert_eq!(e.message, "nesting is deeper than the limit of 64 levels", "{e}");
    // Past serde's own recursion limit (128), the same words.
    let mut text = String::from("x:\n");
    for i in 0..200 {
        text.push_str(&format!("{}a:\n", " ".repeat(i + 1)));
    }
    assert_eq!(
        load_err(&text).message,
        "nesting is deeper than the limit of 64 levels"
    );
}

/// A document that never ends (a pipe) is refused once it passes the size limit, having read
/// little more than the limit.
#[test]
fn an_endless_document_is_refused_at_the_size_limit() {
    let (reader, read) = endless(
        "apiVersion: projectcalico.org/v3\nkind: IPPool\nmetadata:\n  name: p\n  annotations:\n    a: ",
        "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx",
    );
    let e = load_reader("<stdin>", reader, Limits::default()).unwrap_err();
    assert_eq!(
        e.to_string(),
        "<stdin>: document 1, line 6: document is larger than the limit of 4194304 bytes (split it, or load the rest separately)"
    );
    assert!(
        read.get() <= MAX_DOCUMENT_BYTES + 64 * 1024,
        "read {} bytes",
        read.get()
    );
    // The same as one endless line, and in JSON.
    let (reader, read) = endless("{\"a\": \"", "yyyyyyyy");
    let e = load_reader("<stdin>", reader, Limits::default()).unwrap_err();
    assert!(e.message.contains("larger than the limit"), "{e}");
    assert!(read.get() <= MAX_DOCUMENT_BYTES + 64 * 1024);
}

/// Documents come one at a time from an endless stream; the stream is refused past the limit.
#[test]
fn streams_are_read_lazily_and_bounded_in_length() {
    let doc = "---\napiVersion: projectcalico.org/v3\nkind: BGPPeer\nmetadata: {name: p}\nspec: {peerIP: 10.0.0.1}\n";
    let (reader, read) = endless("", doc);
    let mut loader = Loader::new("<stdin>", reader, Limits::default());
    for _ in 0..10 {
        assert_eq!(loader.next().unwrap().unwrap()[0].kind_name(), "BGPPeer");
    }
    assert!(read.get() < 64 * 1024, "read ahead {} bytes", read.get());
    let (reader, _) = endless("", doc);
    let limits = Limits {
        max_documents: 1000,
        ..Limits::default()
    };
    let all: Vec<_> = Loader::new("<stdin>", reader, limits).collect();
    assert_eq!(all.len(), 1001);
    let e = all.last().unwrap().as_ref().unwrap_err();
    assert_eq!(e.document, 1001);
    assert_eq!(e.message, "the stream has more than the limit of 1000 documents");
}
