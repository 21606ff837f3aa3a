//! The route channel from the BGP thread to the main loop: bounded, and coalescing instead of
//! dropping. Each prefix is queued at most once: a newer change of a prefix replaces the queued
//! one (the latest wins: an add then a withdrawal leaves the withdrawal), so the queue never
//! holds more than one entry per prefix of the table, however fast routes churn and however
//! long the main loop is busy, and no change is lost: the main loop always ends up with the
//! speaker's latest table. A speaker restart (`Reset`) discards what was queued before it.
//!
//! The main loop takes everything queued at once ([`RouteReceiver::recv`]) and replays it as
//! [`RouteMsg`]s in an order that keeps their meaning: `Reset` first, then the prefixes, then
//! `Converged`.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use ipnet::IpNet;
use std::net::IpAddr;
use tokio::sync::Notify;

/// What the BGP thread tells the main loop about learned routes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RouteMsg {
    /// The speaker (re)started: forget every learned route.
    Reset,
    /// A best route of either family and its next hop.
    Add(IpNet, IpAddr),
    Withdraw(IpNet),
    /// Initial convergence after a (re)start (RFC 4724 §4.1): every peer sent End-of-RIB or
    /// the selection deferral ran out, and every route of the converged table came before
    /// this message. Only now may kernel routes the speaker did not relearn be removed.
    Converged,
}

#[derive(Debug, Default)]
struct Pending {
    reset: bool,
    /// Per prefix, its latest state: `Some(next hop)` learned, `None` withdrawn.
    routes: BTreeMap<IpNet, Option<IpAddr>>,
    converged: bool,
    receiver_gone: bool,
}

struct Shared {
    pending: Mutex<Pending>,
    ready: Notify,
    senders: AtomicUsize,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, Pending> {
        // A panic elsewhere while holding the lock leaves a queue that is still consistent
        // (every operation is a single map or flag update).
        self.pending.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// The BGP side. Cloneable; never blocks.
pub struct RouteSender {
    shared: Arc<Shared>,
}

/// The main loop's side.
pub struct RouteReceiver {
    shared: Arc<Shared>,
}

/// The main loop has stopped: nobody takes routes any more.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Closed;

pub fn channel() -> (RouteSender, RouteReceiver) {
    let shared = Arc::new(Shared {
        pending: Mutex::new(Pending::default()),
        ready: Notify::new(),
        senders: AtomicUsize::new(1),
    });
    (
        RouteSender {
            shared: shared.clone(),
        },
        RouteReceiver { shared },
    )
}

impl RouteSender {
    /// Queues `m`, merged into what is queued (see the module doc).
    pub fn send(&self, m: RouteMsg) -> Result<(), Closed> {
        let mut p = self.shared.lock();
        if p.receiver_gone {
            return Err(Closed);
        }
        match m {
            RouteMsg::Reset => {
                *p = Pending {
                    reset: true,
                    ..Pending::default()
                };
            }
            RouteMsg::Add(net, nh) => {
                p.routes.insert(net, Some(nh));
            }
            RouteMsg::Withdraw(net) => {
                p.routes.insert(net, None);
            }
            RouteMsg::Converged => p.converged = true,
        }
        drop(p);
        self.shared.ready.notify_one();
        Ok(())
    }
}

impl Clone for RouteSender {
    fn clone(&self) -> RouteSender {
        self.shared.senders.fetch_add(1, Ordering::Relaxed);
        RouteSender {
            shared: self.shared.clone(),
        }
    }
}

impl Drop for RouteSender {
    fn drop(&mut self) {
        if self.shared.senders.fetch_sub(1, Ordering::AcqRel) == 1 {
            self.shared.ready.notify_one();
        }
    }
}

impl Drop for RouteReceiver {
    fn drop(&mut self) {
        self.shared.lock().receiver_gone = true;
    }
}

/// Everything queued since the last [`RouteReceiver::recv`].
#[derive(Debug, Default, PartialEq, Eq)]
pub struct RouteBatch {
    pub reset: bool,
    pub routes: Vec<(IpNet, Option<IpAddr>)>,
    pub converged: bool,
}

impl RouteReceiver {
    /// Waits for changes and takes all of them; `None` once every sender is gone and nothing
    /// is left.
    pub async fn recv(&mut self) -> Option<RouteBatch> {
        loop {
            {
                let mut p = self.shared.lock();
                if p.reset || p.converged || !p.routes.is_empty() {
                    let taken = std::mem::take(&mut *p);
                    return Some(RouteBatch {
                        reset: taken.reset,
                        routes: taken.routes.into_iter().collect(),
                        converged: taken.converged,
                    });
                }
                if self.shared.senders.load(Ordering::Acquire) == 0 {
                    return None;
                }
            }
            // A notification sent between the check and here is kept as a permit.
            self.shared.ready.notified().await;
        }
    }
}

impl IntoIterator for RouteBatch {
    type Item = RouteMsg;
    type IntoIter = std::vec::IntoIter<RouteMsg>;

    /// `Reset`, then each prefix's latest state, then `Converged`.
    fn into_iter(self) -> Self::IntoIter {
        let mut v = Vec::with_capacity(self.routes.len() + 2);
        if self.reset {
            v.push(RouteMsg::Reset);
        }
        v.extend(self.routes.into_iter().map(|(net, nh)| match nh {
            Some(nh) => RouteMsg::Add(net, nh),
            None => RouteMsg::Withdraw(net),
        }));
        if self.converged {
            v.push(RouteMsg::Converged);
        }
        v.into_iter()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn net(s: &str) -> IpNet {
        s.parse().unwrap()
    }

    fn nh(last: u8) -> IpAddr {
        std::net::Ipv4Addr::new(172, 20, 42, last).into()
    }

    fn block_on<F: std::future::Future>(f: F) -> F::Output {
        tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap()
            .block_on(f)
    }

    #[test]
    fn changes_coalesce_per_prefix_and_the_latest_wins() {
        let (tx, mut rx) = channel();
        // 100,000 changes of 10 prefixes: 10 entries queued, each at its last state.
        for i in 0..100_000u32 {
            let p = net(&format!("10.233.{}.0/24", i % 10));
            if i % 3 == 0 {
                tx.send(RouteMsg::Withdraw(p)).unwrap();
            } else {
                tx.send(RouteMsg::Add(p, nh((i % 200) as u8))).unwrap();
            }
        }
        assert_eq!(tx.shared.lock().routes.len(), 10);
        let b = block_on(rx.recv()).unwrap();
        assert!(!b.reset && !b.converged);
        assert_eq!(b.routes.len(), 10);
        for (p, state) in &b.routes {
            // The last i with this prefix.
            let IpAddr::V4(a) = p.addr() else { panic!("{p}") };
            let k = u32::from(a.octets()[2]);
            let last = (0..100_000u32).rev().find(|i| i % 10 == k).unwrap();
            let want = if last % 3 == 0 {
                None
            } else {
                Some(nh((last % 200) as u8))
            };
            assert_eq!(*state, want, "{p}");
        }
    }

    #[test]
    fn reset_drops_what_came_before_and_order_is_kept() {
        let (tx, mut rx) = channel();
        tx.send(RouteMsg::Add(net("10.233.1.0/24"), nh(81))).unwrap();
        tx.send(RouteMsg::Converged).unwrap();
        tx.send(RouteMsg::Reset).unwrap();
        tx.send(RouteMsg::Add(net("10.233.2.0/24"), nh(82))).unwrap();
        let msgs: Vec<RouteMsg> = block_on(rx.recv()).unwrap().into_iter().collect();
        assert_eq!(
            msgs,
            [RouteMsg::Reset, RouteMsg::Add(net("10.233.2.0/24"), nh(82))]
        );
        // Routes then convergence: the routes come first.
        tx.send(RouteMsg::Add(net("10.233.3.0/24"), nh(83))).unwrap();
        tx.send(RouteMsg::Converged).unwrap();
        let msgs: Vec<RouteMsg> = block_on(rx.recv()).unwrap().into_iter().collect();
        assert_eq!(
            msgs,
            [RouteMsg::Add(net("10.233.3.0/24"), nh(83)), RouteMsg::Converged]
        );
    }

    #[test]
    fn closes_when_senders_go_and_refuses_when_the_receiver_goes() {
        let (tx, mut rx) = channel();
        let tx2 = tx.clone();
        tx2.send(RouteMsg::Withdraw(net("10.233.1.0/24"))).unwrap();
        drop(tx);
        drop(tx2);
        // What was queued is still delivered, then the end.
        assert!(block_on(rx.recv()).is_some());
        assert_eq!(block_on(rx.recv()), None);
        let (tx, rx) = channel();
        drop(rx);
        assert_eq!(tx.send(RouteMsg::Reset), Err(Closed));
    }

    #[test]
    fn a_waiting_receiver_wakes_from_another_thread() {
        let (tx, mut rx) = channel();
        let t = std::thread::spawn(move || {
            std::thread::sleep(std::time::Duration::from_millis(50));
            tx.send(RouteMsg::Converged).unwrap();
        });
        let b = block_on(rx.recv()).unwrap();
        assert!(b.converged);
        t.join().unwrap();
    }
}
