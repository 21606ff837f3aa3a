//! Continuous pings between the seed pods (whose routes no change touches): one `ping -i 0.2` per
//! pair, run in the source pod's namespace as `brindle lab exec` runs it, stopped with SIGINT,
//! its replies counted by sequence number so that each lost ping has a time.

use std::collections::BTreeSet;
use std::io::Read;
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use brindle_lab::Lab;

/// The interval between pings.
pub const INTERVAL: Duration = Duration::from_millis(200);

/// One running `ping`.
pub struct Pinger {
    pub from: String,
    pub to: String,
    to_ip: String,
    started: Instant,
    child: Option<Child>,
    /// Reads stdout while ping runs: a full pipe (64 KiB, ~1000 replies) would stall it.
    reader: Option<std::thread::JoinHandle<String>>,
}

/// What one `ping` saw.
pub struct PingResult {
    pub from: String,
    pub to: String,
    pub to_ip: String,
    pub sent: u64,
    /// Sequence numbers sent without a reply (the last one, in flight at SIGINT, excluded).
    pub lost: Vec<u64>,
    pub started: Instant,
}

impl PingResult {
    /// When `seq` (1-based) was sent.
    pub fn sent_at(&self, seq: u64) -> Instant {
        self.started + INTERVAL * (seq.saturating_sub(1) as u32)
    }
}

impl Pinger {
    /// Starts pinging `to_ip` from pod `from` (a pod of the lab's state).
    pub fn start(lab: &Lab, from: &str, to: &str, to_ip: &str) -> Pinger {
        let argv: Vec<String> = ["ping", "-n", "-i", "0.2", "-W", "2", to_ip]
            .iter()
            .map(|s| s.to_string())
            .collect();
        let mut cmd = lab.command(from, &argv).expect("ping command in pod");
        cmd.stdout(Stdio::piped()).stderr(Stdio::null());
        let mut child = cmd.spawn().expect("spawn ping");
        let mut out = child.stdout.take().expect("piped");
        let reader = std::thread::spawn(move || {
            let mut s = String::new();
            let _ = out.read_to_string(&mut s);
            s
        });
        Pinger {
            from: from.into(),
            to: to.into(),
            to_ip: to_ip.into(),
            started: Instant::now(),
            child: Some(child),
            reader: Some(reader),
        }
    }

    /// Stops the ping (SIGINT: it prints its summary) and counts its replies.
    pub fn stop(mut self) -> PingResult {
        let mut child = self.child.take().expect("running");
        // SAFETY: kill(2) on the pid of our own child, which has not been waited for.
        unsafe { libc::kill(child.id() as i32, libc::SIGINT) };
        let _ = child.wait();
        let text = self.reader.take().expect("reader").join().expect("ping reader");
        let (sent, lost) = parse(&text);
        PingResult {
            from: self.from.clone(),
            to: self.to.clone(),
            to_ip: self.to_ip.clone(),
            sent,
            lost,
            started: self.started,
        }
    }
}

impl Drop for Pinger {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// Parses iputils `ping` output: (packets transmitted, sequence numbers without a reply). The
/// last packet sent may have been in flight when SIGINT came: it does not count as lost.
pub fn parse(text: &str) -> (u64, Vec<u64>) {
    let mut replies = BTreeSet::new();
    let mut sent = 0;
    for line in text.lines() {
        if line.contains("bytes from") && !line.contains("DUP!") {
            if let Some(seq) = line
                .split_whitespace()
                .find_map(|w| w.strip_prefix("icmp_seq="))
                .and_then(|s| s.parse::<u64>().ok())
            {
                replies.insert(seq);
            }
        } else if let Some((n, _)) = line.split_once(" packets transmitted") {
            sent = n.trim().parse().unwrap_or(0);
        }
    }
    let lost = (1..sent).filter(|s| !replies.contains(s)).collect();
    (sent, lost)
}
