//! One task per peer: drives the pure [`Session`] with socket events and timers, and reports
//! to the core (Established, Down, UPDATEs to apply, route refresh requests).

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use brindle_bgp_core::{ConnId, Input, Negotiated, Output, Session, SessionConfig, SessionStatus, Timer};
use brindle_bgp_wire::{DetachedUpdate, Family, Message, Update, header};
use tokio::net::TcpStream;
use tokio::sync::{mpsc, watch};

use crate::config::{PeerConfig, SpeakerConfig};
use crate::conn::{Conn, ConnEvent};
use crate::core::CoreMsg;
use crate::socket;

/// From the core to a peer task.
pub(crate) enum PeerCmd {
    Accepted(TcpStream),
    /// Encoded UPDATEs for the Established connection.
    Send(Vec<u8>),
    /// Cease with this subcode and end the task.
    Stop(u8),
    /// Close without NOTIFICATION and end the task (graceful restart: the peer keeps our
    /// routes).
    Abort,
    /// Set or clear the Restart State bit of later OPENs.
    SetRestarting(bool),
    /// From one of the peer's connections (its reader, or a connect attempt).
    Conn(ConnId, ConnEvent),
}

/// From a peer task to the core.
pub(crate) enum PeerEvent {
    Established {
        local: Option<SocketAddr>,
        negotiated: Box<Negotiated>,
    },
    Down {
        graceful: bool,
    },
    /// UPDATEs the session accepted, decoded once here, to apply in the core.
    Updates(UpdateBatch),
    RouteRefresh(#[allow(dead_code)] Family),
}

/// UPDATEs of one read: the read's bytes (shared with the core, not copied) and each UPDATE
/// decoded and detached from them ([`DetachedUpdate::attach`] gives it back without decoding).
/// A read of many small UPDATEs goes in several batches of at most [`BATCH_UPDATES`], so
/// what is in flight to the core stays small (a detached UPDATE is a few hundred bytes, the
/// message it came from can be 50).
pub(crate) struct UpdateBatch {
    pub buf: Arc<Vec<u8>>,
    pub updates: Vec<DetachedUpdate>,
}

/// Most UPDATEs sent to the core in one batch.
const BATCH_UPDATES: usize = 64;

/// The session's status with `since` as wall-clock time.
#[derive(Clone, Debug)]
pub(crate) struct Snapshot {
    pub status: SessionStatus,
    pub since: Option<SystemTime>,
}

pub(crate) struct PeerTask {
    addr: IpAddr,
    epoch: u64,
    cfg: PeerConfig,
    source: Option<IpAddr>,
    session: Session,
    conns: HashMap<ConnId, Conn>,
    /// Armed timers (a handful: a linear scan beats hashing, and this is touched per message).
    timers: Vec<(Timer, tokio::time::Instant)>,
    /// Outputs of the session, reused across the messages of a batch.
    outs: Vec<Output>,
    /// The sending side of `cmd_rx`, for connections (weak: when the core lets go of the
    /// peer and no connection is left, the queue closes and the task ends).
    conn_tx: mpsc::WeakUnboundedSender<PeerCmd>,
    cmd_rx: mpsc::UnboundedReceiver<PeerCmd>,
    core: mpsc::Sender<CoreMsg>,
    status: watch::Sender<Snapshot>,
    since_cache: Option<(Instant, SystemTime)>,
    /// UPDATEs accepted while processing one read, sent to the core together.
    pending: Option<UpdateBatch>,
}

impl PeerTask {
    pub fn spawn(
        cfg: PeerConfig,
        spk: &SpeakerConfig,
        restarting: bool,
        epoch: u64,
        core: mpsc::Sender<CoreMsg>,
    ) -> (mpsc::UnboundedSender<PeerCmd>, watch::Receiver<Snapshot>) {
        let mut session = Session::new(SessionConfig {
            restarting,
            ..cfg.session_config(spk)
        });
        // Started here, not in the task, so the status reads `start` from the first query.
        let start = session.handle(Input::Start, Instant::now());
        let (cmd_tx, cmd_rx) = mpsc::unbounded_channel();
        let (status, status_rx) = watch::channel(Snapshot {
            status: session.status(),
            since: Some(SystemTime::now()),
        });
        let node = match cfg.address {
            IpAddr::V4(_) => spk.node_v4.map(IpAddr::V4),
            IpAddr::V6(_) => spk.node_v6.map(IpAddr::V6),
        };
        let source = cfg.source_address.or(node.filter(|_| cfg.use_node_ip));
        let task = PeerTask {
            addr: cfg.address,
            epoch,
            source,
            cfg,
            session,
            conns: HashMap::new(),
            timers: Vec::new(),
            outs: Vec::new(),
            conn_tx: cmd_tx.downgrade(),
            cmd_rx,
            core,
            status,
            since_cache: None,
            pending: None,
        };
        tokio::spawn(task.run(start));
        (cmd_tx, status_rx)
    }

    async fn run(mut self, start: Vec<Output>) {
        let mut start = start;
        Box::pin(self.apply(&mut start, tokio::time::Instant::now())).await;
        self.publish();
        loop {
            let next = self.timers.iter().map(|(_, d)| *d).min();
            tokio::select! {
                cmd = self.cmd_rx.recv() => match cmd {
                    None => return,
                    Some(PeerCmd::Stop(sub)) => {
                        self.input(Input::Stop { cease_subcode: sub }).await;
                        return;
                    }
                    Some(PeerCmd::Abort) => {
                        self.input(Input::Abort).await;
                        return;
                    }
                    Some(PeerCmd::SetRestarting(r)) => self.session.set_restarting(r),
                    // Boxed: the event handling is most of this task's state, kept off the
                    // task while it waits (memory per peer).
                    Some(PeerCmd::Conn(id, ev)) => Box::pin(self.on_conn(id, ev)).await,
                    Some(PeerCmd::Accepted(stream)) => {
                        let _ = stream.set_nodelay(true);
                        if let Some(hops) = self.cfg.ttl_security
                            && let Err(e) = socket::set_ttl_security(&stream, hops)
                        {
                            tracing::warn!(peer = %self.addr, error = %e, "GTSM socket options");
                            continue;
                        }
                        let Some(events) = self.conn_tx.upgrade() else { return };
                        let id = self.session.next_conn_id();
                        self.conns.insert(id, Conn::start(id, stream, events));
                        self.input(Input::Accepted(id)).await;
                    }
                    Some(PeerCmd::Send(bytes)) => {
                        if let Some((id, _)) = self.session.established()
                            && let Some(c) = self.conns.get(&id)
                        {
                            c.send(bytes);
                        }
                    }
                },
                _ = sleep_until(next), if next.is_some() => {
                    let now = tokio::time::Instant::now();
                    let due: Vec<Timer> = self
                        .timers
                        .iter()
                        .filter(|(_, d)| *d <= now)
                        .map(|(t, _)| *t)
                        .collect();
                    for t in due {
                        self.timers.retain(|(x, _)| *x != t);
                        self.input(Input::TimerExpired(t)).await;
                    }
                }
            }
        }
    }

    async fn on_conn(&mut self, id: ConnId, ev: ConnEvent) {
        match ev {
            ConnEvent::Connected(stream) => {
                if self.conns.contains_key(&id)
                    && let Some(events) = self.conn_tx.upgrade()
                {
                    self.conns.insert(id, Conn::start(id, stream, events));
                }
                // An unknown id is a connect we gave up on: the session closes it.
                self.input(Input::Connected(id)).await;
            }
            ConnEvent::ConnectFailed(error) => self.input(Input::ConnectFailed { conn: id, error }).await,
            ConnEvent::Closed(error) => self.input(Input::Closed { conn: id, error }).await,
            ConnEvent::Bad(error) => {
                self.input(Input::DecodeError {
                    conn: id,
                    error: *error,
                })
                .await
            }
            ConnEvent::Frames(bytes) => {
                // One clock read and one output buffer for the whole batch. Each message was
                // framed by the reader and is decoded once, here; accepted UPDATEs go to the
                // core decoded, with the batch's bytes.
                let now = Instant::now();
                let tnow = tokio::time::Instant::from_std(now);
                let buf = Arc::new(bytes);
                let mut outs = std::mem::take(&mut self.outs);
                // Messages left in this read, to size batches (a read holds 1 to ~700).
                let mut left = header::framed(&buf).count();
                for raw in header::framed(&buf) {
                    left -= 1;
                    let Some(ctx) = self.conns.get(&id).map(|c| c.ctx) else {
                        break; // closed by an earlier message of this batch
                    };
                    match Message::decode_framed(raw, &ctx) {
                        Ok(m) => {
                            if let Message::Update(u) = &m
                                && !u.errors.is_empty()
                            {
                                log_update_errors(self.addr, u);
                            }
                            let input = Input::Message { conn: id, msg: &m };
                            self.session.handle_into(input, now, &mut outs);
                            if let Message::Update(u) = m
                                && outs.iter().any(|o| matches!(o, Output::DeliverUpdate { .. }))
                            {
                                self.deliver(&buf, u, left);
                            }
                        }
                        Err(error) => {
                            tracing::warn!(peer = %self.addr, %error, "bad message");
                            let input = Input::DecodeError { conn: id, error };
                            self.session.handle_into(input, now, &mut outs);
                        }
                    }
                    self.apply(&mut outs, tnow).await;
                    if self
                        .pending
                        .as_ref()
                        .is_some_and(|b| b.updates.len() >= BATCH_UPDATES)
                    {
                        self.flush_updates().await;
                    }
                }
                self.outs = outs;
                self.flush_updates().await;
                self.publish();
            }
        }
    }

    /// Queues an UPDATE the session accepted for the core (batches are flushed when full, after
    /// each read, and before a Down or a route refresh is reported, so order is kept).
    /// `left`: messages after this one in the read.
    fn deliver(&mut self, buf: &Arc<Vec<u8>>, u: Update<'_>, left: usize) {
        let batch = self.pending.get_or_insert_with(|| UpdateBatch {
            buf: buf.clone(),
            updates: Vec::with_capacity(BATCH_UPDATES.min(left + 1)),
        });
        debug_assert!(Arc::ptr_eq(&batch.buf, buf), "a batch spans one read");
        batch.updates.push(u.detach(buf));
    }

    /// Feeds the session one input and acts on its outputs. Boxed, so the task's own state
    /// stays small while it waits (memory per peer).
    async fn input(&mut self, input: Input<'_>) {
        Box::pin(self.input_inner(input)).await
    }

    async fn input_inner(&mut self, input: Input<'_>) {
        let now = Instant::now();
        let mut outs = std::mem::take(&mut self.outs);
        self.session.handle_into(input, now, &mut outs);
        self.apply(&mut outs, tokio::time::Instant::from_std(now)).await;
        self.outs = outs;
        self.flush_updates().await;
        self.publish();
    }

    async fn report(&self, ev: PeerEvent) {
        let _ = self
            .core
            .send(CoreMsg::Peer {
                addr: self.addr,
                epoch: self.epoch,
                event: ev,
            })
            .await;
    }

    async fn flush_updates(&mut self) {
        if let Some(batch) = self.pending.take() {
            self.report(PeerEvent::Updates(batch)).await;
        }
    }

    /// Acts on the session's outputs, draining `outs`.
    async fn apply(&mut self, outs: &mut Vec<Output>, now: tokio::time::Instant) {
        for o in outs.drain(..) {
            match o {
                Output::Connect(id) => {
                    self.conns.insert(id, Conn::pending());
                    let peer = SocketAddr::new(self.addr, self.cfg.port);
                    let (src, pw) = (self.source, self.cfg.password.clone());
                    let ttl = self.cfg.ttl_security;
                    let timeout = self.cfg.timers.connect_retry.max(Duration::from_secs(1));
                    let Some(tx) = self.conn_tx.upgrade() else {
                        continue;
                    };
                    tokio::spawn(async move {
                        let ev = match socket::connect(peer, src, pw.as_deref(), ttl, timeout).await {
                            Ok(s) => ConnEvent::Connected(s),
                            Err(e) => ConnEvent::ConnectFailed(socket::strerror(&e)),
                        };
                        let _ = tx.send(PeerCmd::Conn(id, ev));
                    });
                }
                Output::Send { conn, msg } => {
                    if let Some(c) = self.conns.get(&conn) {
                        c.send(msg.to_bytes(&c.ctx));
                    }
                }
                Output::Close(id) => {
                    self.conns.remove(&id);
                }
                Output::SetTimer { timer, after } => {
                    let after = if timer == Timer::ConnectRetry {
                        jittered(after)
                    } else {
                        after
                    };
                    match self.timers.iter_mut().find(|(t, _)| *t == timer) {
                        Some(slot) => slot.1 = now + after,
                        None => self.timers.push((timer, now + after)),
                    }
                }
                Output::CancelTimer(t) => self.timers.retain(|(x, _)| *x != t),
                Output::StateChanged { from, to } => {
                    tracing::debug!(peer = %self.addr, ?from, ?to, "bgp state");
                }
                Output::Established { conn, negotiated } => {
                    let local = self.conns.get_mut(&conn).and_then(|c| {
                        c.ctx = negotiated.ctx;
                        c.local
                    });
                    tracing::info!(peer = %self.addr, "bgp session established");
                    self.report(PeerEvent::Established { local, negotiated }).await;
                }
                Output::Down { graceful } => {
                    self.flush_updates().await;
                    self.report(PeerEvent::Down { graceful }).await;
                }
                // Taken where the message was decoded (`on_conn`), which owns the UPDATE.
                Output::DeliverUpdate { .. } => {}
                Output::RouteRefresh { family, .. } => {
                    self.flush_updates().await;
                    self.report(PeerEvent::RouteRefresh(family)).await;
                }
            }
        }
    }

    fn publish(&mut self) {
        let status = self.session.status();
        let since = status.since.map(|i| match self.since_cache {
            Some((ci, w)) if ci == i => w,
            _ => {
                let w = SystemTime::now() - i.elapsed();
                self.since_cache = Some((i, w));
                w
            }
        });
        self.status.send_if_modified(|s| {
            let changed = s.status != status || s.since != since;
            if changed {
                *s = Snapshot { status, since };
            }
            changed
        });
    }
}

/// RFC 7606 §6: each error handled without a session reset is logged with the peer, the
/// offending attribute and what it did to the NLRI.
fn log_update_errors(peer: IpAddr, u: &brindle_bgp_wire::Update<'_>) {
    let announced = u.nlri().count() + u.mp_nlri().map_or(0, |(_, _, it)| it.count());
    let first = u
        .nlri()
        .next()
        .or_else(|| u.mp_nlri().and_then(|(_, _, mut it)| it.next()));
    for e in &u.errors {
        let (type_code, flags, length) = e.attribute.map_or((None, None, None), |a| {
            (Some(a.type_code), Some(a.flags), Some(a.length))
        });
        tracing::warn!(
            %peer,
            action = e.action.name(),
            attr_type = ?type_code,
            attr_flags = ?flags.map(|f| format!("{f:#04x}")),
            attr_length = ?length,
            reason = e.reason,
            error = %e.notification,
            announced,
            first_prefix = ?first.map(|n| n.prefix),
            "malformed UPDATE handled per RFC 7606"
        );
    }
}

/// RFC 4271 §10 (as BIRD does): the connect timer runs 75–100 % of its time, so two active
/// ends started together do not keep connecting at the same instant and crossing.
fn jittered(after: Duration) -> Duration {
    if after.is_zero() {
        return after;
    }
    after.mul_f64(1.0 - rand::random::<f64>() / 4.0)
}

async fn sleep_until(t: Option<tokio::time::Instant>) {
    match t {
        Some(t) => tokio::time::sleep_until(t).await,
        None => std::future::pending().await,
    }
}
