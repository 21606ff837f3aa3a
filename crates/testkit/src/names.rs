//! Unique names: `<prefix><pid base36><counter base36>`, short enough for interface names.

use std::sync::atomic::{AtomicU32, Ordering};

static COUNTER: AtomicU32 = AtomicU32::new(0);

fn base36(mut n: u64) -> String {
    const DIGITS: &[u8] = b"0123456789abcdefghijklmnopqrstuvwxyz";
    if n == 0 {
        return "0".into();
    }
    let mut out = Vec::new();
    while n > 0 {
        out.push(DIGITS[(n % 36) as usize]);
        n /= 36;
    }
    out.reverse();
    String::from_utf8(out).expect("ascii")
}

/// A name unique on this machine while this process lives: `prefix` + PID + a per-process
/// counter. With a prefix of up to 6 characters it fits an interface name (15 characters).
pub fn unique(prefix: &str) -> String {
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    format!(
        "{prefix}{}x{}",
        base36(u64::from(std::process::id())),
        base36(u64::from(n))
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_distinct_and_short() {
        let a = unique("bt");
        let b = unique("bt");
        assert_ne!(a, b);
        assert!(a.len() <= 15, "{a}");
    }
}
