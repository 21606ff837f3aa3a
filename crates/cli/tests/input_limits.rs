//! Hostile input to `-f`: each limit refused fast with the limit named, nothing written, and
//! long streams validated in the memory of one document.

mod support;

use std::io::Write as _;
use std::process::{Command, Stdio};

use support::{Env, SEED_POOL};

/// Peak resident memory of a running process, KiB (`VmHWM`).
fn peak_rss_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// Runs `brindle ARGS -f -` with `feed` writing its stdin until it returns or the pipe closes;
/// returns (exit code, stderr, bytes written, peak RSS in KiB seen while feeding).
fn feed(
    env: &Env,
    args: &[&str],
    mut feed: impl FnMut(&mut dyn FnMut(&[u8]) -> bool),
) -> (i32, String, usize, u64) {
    let mut child = Command::new(&env.binary)
        .args(args)
        .args(["-f", "-"])
        .args(&env.extra_args)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run brindle");
    let pid = child.id();
    let mut stdin = child.stdin.take().unwrap();
    let (mut written, mut peak, mut writes) = (0usize, 0u64, 0u64);
    feed(&mut |bytes: &[u8]| {
        if stdin.write_all(bytes).is_err() {
            return false;
        }
        written += bytes.len();
        writes += 1;
        if writes % 256 == 0 {
            peak = peak.max(peak_rss_kib(pid).unwrap_or(0));
        }
        true
    });
    peak = peak.max(peak_rss_kib(pid).unwrap_or(0));
    drop(stdin);
    let out = child.wait_with_output().unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stderr).into_owned(),
        written,
        peak,
    )
}

#[test]
fn a_deeply_nested_document_is_refused_and_nothing_is_written() {
    let env = Env::sqlite();
    let deep = format!(
        "{SEED_POOL}---\napiVersion: projectcalico.org/v3\nkind: IPPool\nmetadata:\n  name: deep\nspec: {}{}\n",
        "{a: ".repeat(100_000),
        "}".repeat(100_000)
    );
    let r = env.run(&["apply", "-f", &env.write("deep.yaml", &deep)]).fails();
    assert!(
        r.stderr
            .ends_with("deep.yaml: document 2, line 15: nesting is deeper than the limit of 64 levels\n"),
        "{r:?}"
    );
    let r = env.run(&["get", "ippool"]).ok();
    assert!(
        !r.stdout.contains("default-pool"),
        "the first document was written: {r:?}"
    );
}

/// A pipe that never ends is refused once its document passes the size limit, having been read
/// not much past it (the 50 MB the issue stored is never read).
#[test]
fn an_endless_document_is_refused_at_the_size_limit() {
    let env = Env::sqlite();
    let (code, stderr, written, _) = feed(&env, &["apply"], |write| {
        if !write(
            b"apiVersion: projectcalico.org/v3\nkind: IPPool\nmetadata:\n  name: p\n  annotations:\n    a: ",
        ) {
            return;
        }
        let chunk = [b'x'; 64 * 1024];
        // 50 MB at most: the test fails (below) if the command read it all.
        for _ in 0..800 {
            if !write(&chunk) {
                return;
            }
        }
    });
    assert_eq!(code, 1, "{stderr}");
    assert!(
        stderr.contains("<stdin>: document 1, line 6: document is larger than the limit of 4194304 bytes"),
        "{stderr}"
    );
    // Read: the limit, plus what sat in the pipe (64 KiB) and the reader's buffer (8 KiB).
    assert!(written < (4 << 20) + 256 * 1024, "{written} bytes were taken");
}

/// Annotations over Kubernetes' 256 KiB are refused by validation (under the document limit).
#[test]
fn large_annotations_are_refused() {
    let env = Env::sqlite();
    let text = format!(
        "apiVersion: projectcalico.org/v3\nkind: IPPool\nmetadata:\n  name: p\n  annotations:\n    a: {}\nspec:\n  cidr: 10.1.0.0/16\n",
        "x".repeat(300 * 1024)
    );
    let r = env.run(&["create", "-f", &env.write("big.yaml", &text)]).fails();
    assert!(
        r.stderr
            .contains("total size of annotations is too large: the limit is 262144 bytes (256 KiB)"),
        "{r:?}"
    );
}

/// 50,000 documents through `validate`: the memory of one document, not of the stream (holding
/// them all took 2.4 GB for 413k documents).
#[test]
fn a_long_stream_is_validated_in_bounded_memory() {
    let env = Env::sqlite();
    const DOCS: usize = 50_000;
    let (code, stderr, written, peak) = feed(&env, &["validate"], |write| {
        let mut batch = String::new();
        for i in 0..DOCS {
            batch.push_str(&format!(
                "---\napiVersion: projectcalico.org/v3\nkind: BGPPeer\nmetadata:\n  name: peer-{i}\n  labels: {{rack: r{}}}\nspec:\n  peerIP: 10.{}.{}.{}\n  asNumber: 65001\n",
                i % 40,
                i / 65536,
                (i / 256) % 256,
                i % 256
            ));
            if batch.len() > 16 * 1024 {
                if !write(batch.as_bytes()) {
                    return;
                }
                batch.clear();
            }
        }
        write(batch.as_bytes());
    });
    assert_eq!(code, 0, "{stderr}");
    assert!(written > 6 << 20, "the stream was only {written} bytes");
    println!("validated {DOCS} documents, {written} bytes, peak RSS {peak} KiB");
    // The binary alone is ~10 MiB resident; holding 50,000 resources was ~300 MiB.
    assert!(peak > 0 && peak < 48 * 1024, "peak RSS {peak} KiB");
}
