//! etcd watches that survive the cluster going away.
//!
//! A watch is a task on the client thread. It opens an etcd watch on the prefix from the next
//! revision it owes its consumer, forwards events, and when the stream breaks (member restart,
//! network loss) reports the outage once and reopens from that same next revision with capped
//! back-off, so the consumer sees every change exactly once, in order. If etcd has compacted
//! that revision meanwhile, the consumer gets [`Error::Compacted`] and the stream ends.

use std::sync::Arc;
use std::sync::mpsc;
use std::time::Duration;

use etcd_client::{Client, EventType, WatchOptions, WatchStream};
use tokio::sync::oneshot;

use super::key_string;
use super::worker::{Worker, map_error, timed_out};
use crate::{Error, EventKind, Result, Revision, Watch, WatchEvent};

const BACKOFF_MIN: Duration = Duration::from_millis(50);
const BACKOFF_MAX: Duration = Duration::from_secs(2);

/// Dropped with the [`Watch`]: closing `_stop` ends the task; `_worker` keeps the client thread
/// alive while a watch exists, even if the store object is gone.
struct Guard {
    _stop: oneshot::Sender<()>,
    _worker: Arc<Worker>,
}

struct Task {
    store: String,
    prefix: String,
    /// The next revision owed to the consumer (0: "from now", until etcd tells the revision).
    next: Revision,
    events: mpsc::Sender<Result<WatchEvent>>,
    request_timeout: Duration,
    /// The current stream was accepted by etcd (ends an outage).
    established: bool,
}

/// Starts the watch and returns once etcd has accepted it (or failed to, within the request
/// timeout).
pub(crate) fn start(worker: &Arc<Worker>, prefix: &str, from: Revision) -> Result<Watch> {
    let (events, rx) = mpsc::channel();
    let (stop_tx, stop_rx) = oneshot::channel();
    let (created_tx, created_rx) = mpsc::sync_channel(1);
    let task = Task {
        store: worker.store.clone(),
        prefix: prefix.to_string(),
        next: from,
        events,
        request_timeout: worker.request_timeout,
        established: false,
    };
    worker.spawn(move |client| task.run(client, created_tx, stop_rx))?;
    let wait = worker.request_timeout + Duration::from_secs(1);
    match created_rx.recv_timeout(wait) {
        Ok(Ok(())) => Ok(Watch::new(
            rx,
            Box::new(Guard {
                _stop: stop_tx,
                _worker: worker.clone(),
            }),
        )),
        Ok(Err(e)) => Err(e),
        Err(_) => Err(timed_out(&worker.store, "watch", Some(prefix), wait)),
    }
}

/// How one watch stream ended.
enum End {
    /// The consumer or the store is gone, or history was compacted: stop for good.
    Stop,
    /// The stream broke: report (if not yet reported) and reconnect.
    Broken(Error),
}

impl Task {
    async fn run(
        mut self,
        mut client: Client,
        created: mpsc::SyncSender<Result<()>>,
        mut stop: oneshot::Receiver<()>,
    ) {
        let mut created = Some(created);
        let mut backoff = BACKOFF_MIN;
        let mut reported = false;
        loop {
            let end = tokio::select! {
                _ = &mut stop => return,
                end = self.session(&mut client, &mut created) => end,
            };
            let e = match end {
                End::Stop => return,
                End::Broken(e) => e,
            };
            if let Some(c) = created.take() {
                // The very first attempt failed: `watch()` itself reports it.
                let _ = c.send(Err(e));
                return;
            }
            // A stream that was established ended a healthy period: this is a new outage.
            if std::mem::take(&mut self.established) {
                reported = false;
                backoff = BACKOFF_MIN;
            }
            if !reported {
                reported = true;
                if self.events.send(Err(e)).is_err() {
                    return;
                }
            }
            tokio::select! {
                _ = &mut stop => return,
                _ = tokio::time::sleep(backoff) => {}
            }
            backoff = (backoff * 2).min(BACKOFF_MAX);
        }
    }

    /// One etcd watch stream, from `self.next`, until it ends.
    async fn session(
        &mut self,
        client: &mut Client,
        created: &mut Option<mpsc::SyncSender<Result<()>>>,
    ) -> End {
        let options = WatchOptions::new()
            .with_prefix()
            .with_start_revision(self.next)
            .with_progress_notify();
        let open = tokio::time::timeout(
            self.request_timeout,
            client.watch(self.prefix.clone(), Some(options)),
        );
        let mut stream: WatchStream = match open.await {
            Ok(Ok(s)) => s,
            Ok(Err(e)) => return End::Broken(map_error(&self.store, "watch", Some(&self.prefix), e)),
            Err(_) => {
                return End::Broken(timed_out(
                    &self.store,
                    "watch",
                    Some(&self.prefix),
                    self.request_timeout,
                ));
            }
        };
        loop {
            let resp = match stream.message().await {
                Ok(Some(r)) => r,
                Ok(None) => {
                    return End::Broken(Error::Unavailable {
                        store: self.store.clone(),
                        detail: format!("watch {}: the server closed the stream", self.prefix),
                    });
                }
                Err(e) => return End::Broken(map_error(&self.store, "watch", Some(&self.prefix), e)),
            };
            if resp.created() {
                self.established = true;
                if self.next == 0 {
                    // "From now": pin the revision so a reconnect resumes rather than skips.
                    self.next = resp.header().map(|h| h.revision()).unwrap_or_default() + 1;
                }
                if let Some(c) = created.take() {
                    let _ = c.send(Ok(()));
                }
            }
            if resp.compact_revision() > 0 {
                let _ = self.events.send(Err(Error::Compacted {
                    store: self.store.clone(),
                    prefix: self.prefix.clone(),
                    requested: self.next,
                    oldest: resp.compact_revision(),
                }));
                return End::Stop;
            }
            if resp.canceled() {
                return End::Broken(Error::Backend {
                    store: self.store.clone(),
                    op: "watch",
                    key: Some(self.prefix.clone()),
                    detail: format!("etcd cancelled the watch: {}", resp.cancel_reason()),
                });
            }
            if resp.events().is_empty() && !resp.created() {
                // A progress notification: everything up to its revision has been sent.
                if let Some(h) = resp.header() {
                    self.next = self.next.max(h.revision() + 1);
                }
                continue;
            }
            for ev in resp.events() {
                let Some(kv) = ev.kv() else { continue };
                let event = match key_string(&self.store, kv.key()) {
                    Ok(key) => Ok(WatchEvent {
                        kind: match ev.event_type() {
                            EventType::Put => EventKind::Put,
                            EventType::Delete => EventKind::Delete,
                        },
                        key,
                        value: match ev.event_type() {
                            EventType::Put => Some(kv.value().to_vec()),
                            EventType::Delete => None,
                        },
                        revision: kv.mod_revision(),
                    }),
                    Err(e) => Err(e),
                };
                self.next = self.next.max(kv.mod_revision() + 1);
                if self.events.send(event).is_err() {
                    return End::Stop;
                }
            }
        }
    }
}
