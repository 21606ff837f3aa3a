//! One TCP connection's I/O: a reader task that frames whole messages (RFC 4271 §4.1) and a
//! writer task fed by a channel, so a slow peer never blocks the session's timers.

use std::net::SocketAddr;

use brindle_bgp_wire::{Ctx, DecodeError, header};
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use brindle_bgp_core::ConnId;

use crate::peer::PeerCmd;
use crate::socket::strerror;

/// What a connection reports to its peer task.
pub(crate) enum ConnEvent {
    Connected(TcpStream),
    ConnectFailed(String),
    /// One or more whole messages, back to back, framed once here (walk them with
    /// [`brindle_bgp_wire::header::framed`], which only reads their lengths).
    Frames(Vec<u8>),
    /// The stream broke framing (bad marker or length): the NOTIFICATION to send. (Boxed: a
    /// peer's queue allocates its slots for the largest message.)
    Bad(Box<DecodeError>),
    /// EOF (`None`) or a socket error.
    Closed(Option<String>),
}

/// Connection events go to the peer task's one queue (a queue per peer is memory per peer).
pub(crate) type ConnEvents = mpsc::UnboundedSender<PeerCmd>;

/// Bytes taken from the socket per read (on the stack).
const READ_CHUNK: usize = 32 * 1024;

/// A live connection (or a connect in progress, with no I/O yet).
pub(crate) struct Conn {
    pub writer: Option<mpsc::UnboundedSender<Vec<u8>>>,
    reader: Option<JoinHandle<()>>,
    pub local: Option<SocketAddr>,
    pub ctx: Ctx,
}

impl Conn {
    pub fn pending() -> Conn {
        Conn {
            writer: None,
            reader: None,
            local: None,
            ctx: Ctx::default(),
        }
    }

    /// Starts the reader and writer tasks for `stream`.
    pub fn start(id: ConnId, stream: TcpStream, events: ConnEvents) -> Conn {
        let local = stream.local_addr().ok();
        let (rd, mut wr) = stream.into_split();
        let (tx, mut rx) = mpsc::unbounded_channel::<Vec<u8>>();
        tokio::spawn(async move {
            while let Some(b) = rx.recv().await {
                if wr.write_all(&b).await.is_err() {
                    return;
                }
            }
            // Everything queued (e.g. a NOTIFICATION) is written: now close.
            let _ = wr.shutdown().await;
        });
        let send = move |ev| events.send(PeerCmd::Conn(id, ev)).is_ok();
        let reader = tokio::spawn(async move {
            // Reads go into a buffer on the thread's stack; whole messages are copied out at
            // their exact size, and only a partial message is kept between reads. A quiet
            // session (a mesh of 1000 holds 1000) thus holds no buffer, and no read leaves a
            // large mostly empty allocation behind.
            let mut partial: Vec<u8> = Vec::new();
            loop {
                if let Err(e) = rd.readable().await {
                    send(ConnEvent::Closed(Some(strerror(&e))));
                    return;
                }
                let mut chunk = [0u8; READ_CHUNK];
                loop {
                    let n = match rd.try_read(&mut chunk) {
                        Ok(0) => {
                            send(ConnEvent::Closed(None));
                            return;
                        }
                        Ok(n) => n,
                        Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => break,
                        Err(e) => {
                            send(ConnEvent::Closed(Some(strerror(&e))));
                            return;
                        }
                    };
                    let data: &[u8] = if partial.is_empty() {
                        &chunk[..n]
                    } else {
                        partial.extend_from_slice(&chunk[..n]);
                        &partial
                    };
                    let mut whole = 0;
                    let bad = loop {
                        match header::frame_len(&data[whole..], header::MAX_LEN) {
                            Ok(Some(len)) => whole += len,
                            Ok(None) => break None,
                            Err(e) => break Some(e),
                        }
                    };
                    if whole > 0 && !send(ConnEvent::Frames(data[..whole].to_vec())) {
                        return;
                    }
                    if let Some(e) = bad {
                        send(ConnEvent::Bad(Box::new(e)));
                        return;
                    }
                    partial = data[whole..].to_vec();
                }
            }
        });
        Conn {
            writer: Some(tx),
            reader: Some(reader),
            local,
            ctx: Ctx::default(),
        }
    }

    pub fn send(&self, bytes: Vec<u8>) {
        if let Some(w) = &self.writer {
            let _ = w.send(bytes);
        }
    }
}

impl Drop for Conn {
    /// Stops reading at once; the writer finishes what is queued, then shuts the socket down.
    fn drop(&mut self) {
        if let Some(r) = self.reader.take() {
            r.abort();
        }
    }
}
