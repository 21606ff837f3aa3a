//! Connections from addresses that are no configured peer are closed at once. Logging each one
//! let anyone fill the log (20,000 connects wrote 2 MB), so the first of a burst is logged as
//! it happens and the rest are summed up once per interval: how many, from how many distinct
//! sources, the first and the last. An interval with none ends the burst; the next refusal is
//! logged at once again. Pure: the caller passes `now` and arms the timer.

use std::collections::HashSet;
use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

/// How often a burst of refused connections is summed up in the log.
pub(crate) const SUMMARY_INTERVAL: Duration = Duration::from_secs(10);

/// Distinct sources are counted exactly up to this many per interval (memory stays bounded
/// under a flood from many addresses); beyond it the summary says "at least".
const MAX_SOURCES: usize = 4096;

/// One interval's refused connections, after the one logged at once.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Summary {
    pub count: u64,
    pub sources: usize,
    /// More distinct sources than [`MAX_SOURCES`] were seen: `sources` is a lower bound.
    pub sources_capped: bool,
    pub first: SocketAddr,
    pub last: SocketAddr,
    /// From the first to the last of them.
    pub span: Duration,
}

#[derive(Debug, Default)]
struct Window {
    count: u64,
    sources: HashSet<IpAddr>,
    capped: bool,
    first: Option<(SocketAddr, Instant)>,
    last: Option<(SocketAddr, Instant)>,
}

/// The rate limiter of the refused-connection log.
#[derive(Debug, Default)]
pub(crate) struct Refused {
    /// Open while a burst lasts (from its first refusal to an interval without any).
    window: Option<Window>,
}

impl Refused {
    /// A connection from `from` was refused. Returns when the summary is due if this one is
    /// the first of a burst: log it now and arm a timer for [`Refused::summary`]. `None`: it
    /// is counted for the summary.
    pub fn refuse(&mut self, from: SocketAddr, now: Instant) -> Option<Instant> {
        match &mut self.window {
            None => {
                self.window = Some(Window::default());
                Some(now + SUMMARY_INTERVAL)
            }
            Some(w) => {
                w.count += 1;
                if w.sources.len() < MAX_SOURCES {
                    w.sources.insert(from.ip());
                } else if !w.sources.contains(&from.ip()) {
                    w.capped = true;
                }
                w.first.get_or_insert((from, now));
                w.last = Some((from, now));
                None
            }
        }
    }

    /// The summary timer fired: what to log (nothing if the interval had no refusals, which
    /// ends the burst), and when the next summary is due (`None`: burst over).
    pub fn summary(&mut self, now: Instant) -> (Option<Summary>, Option<Instant>) {
        let Some(w) = self.window.take() else {
            return (None, None);
        };
        let (Some((first, t0)), Some((last, t1))) = (w.first, w.last) else {
            return (None, None);
        };
        let s = Summary {
            count: w.count,
            sources: w.sources.len(),
            sources_capped: w.capped,
            first,
            last,
            span: t1.duration_since(t0),
        };
        // The burst may go on: keep counting, summed up again after another interval.
        self.window = Some(Window::default());
        (Some(s), Some(now + SUMMARY_INTERVAL))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addr(last: u8, port: u16) -> SocketAddr {
        SocketAddr::from(([192, 0, 2, last], port))
    }

    #[test]
    fn first_of_a_burst_at_once_then_one_summary_per_interval() {
        let mut r = Refused::default();
        let t = Instant::now();
        let due = r.refuse(addr(1, 40000), t).expect("the first is logged at once");
        assert_eq!(due, t + SUMMARY_INTERVAL);
        // 20,000 more from 3 sources: nothing logged one by one.
        for i in 0..20_000u32 {
            let at = t + Duration::from_micros(u64::from(i) * 100);
            assert_eq!(
                r.refuse(addr(1 + (i % 3) as u8, 40001 + (i % 1000) as u16), at),
                None
            );
        }
        let (s, next) = r.summary(due);
        let s = s.expect("a summary");
        assert_eq!(s.count, 20_000);
        assert_eq!(s.sources, 3);
        assert!(!s.sources_capped);
        assert_eq!(s.first, addr(1, 40001));
        assert_eq!(
            s.last,
            addr(1 + (19_999 % 3) as u8, 40001 + (19_999 % 1000) as u16)
        );
        assert_eq!(s.span, Duration::from_micros(19_999 * 100));
        let next = next.expect("the burst may go on");
        // A quiet interval ends the burst with no line; the next refusal is logged at once.
        assert_eq!(r.summary(next), (None, None));
        assert!(r.refuse(addr(9, 1), next + Duration::from_secs(1)).is_some());
    }

    #[test]
    fn a_single_refusal_gives_no_summary() {
        let mut r = Refused::default();
        let t = Instant::now();
        let due = r.refuse(addr(1, 1), t).unwrap();
        assert_eq!(r.summary(due), (None, None));
    }

    #[test]
    fn distinct_sources_are_bounded() {
        let mut r = Refused::default();
        let t = Instant::now();
        r.refuse(addr(1, 1), t);
        for i in 0..(MAX_SOURCES as u32 + 10) {
            let ip = std::net::Ipv4Addr::from(0x0a00_0000 + i);
            r.refuse(SocketAddr::from((ip, 179)), t);
        }
        let (s, _) = r.summary(t + SUMMARY_INTERVAL);
        let s = s.unwrap();
        assert_eq!(s.sources, MAX_SOURCES);
        assert!(s.sources_capped);
        assert_eq!(s.count, MAX_SOURCES as u64 + 10);
    }
}
