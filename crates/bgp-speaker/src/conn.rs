//! One TCP connection's I/O: a reader task that frames whole messages (RFC 4271 §4.1) and a
//! writer task fed by a channel, so a slow peer never blocks the session's timers.

use std::net::SocketAddr;

use brindle_bgp_wire::{Ctx, DecodeError, header};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use brindle_bgp_core::ConnId;

use crate::socket::strerror;

/// What a connection reports to its peer task.
pub(crate) enum ConnEvent {
    Connected(TcpStream),
    ConnectFailed(String),
    /// One or more whole messages, back to back.
    Frames(Vec<u8>),
    /// The stream broke framing (bad marker or length): the NOTIFICATION to send.
    Bad(DecodeError),
    /// EOF (`None`) or a socket error.
    Closed(Option<String>),
}

pub(crate) type ConnEvents = mpsc::UnboundedSender<(ConnId, ConnEvent)>;

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
        let (mut rd, mut wr) = stream.into_split();
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
        let reader = tokio::spawn(async move {
            let mut buf: Vec<u8> = Vec::with_capacity(64 * 1024);
            loop {
                if buf.capacity() - buf.len() < 4096 {
                    buf.reserve(64 * 1024);
                }
                match rd.read_buf(&mut buf).await {
                    Ok(0) => {
                        let _ = events.send((id, ConnEvent::Closed(None)));
                        return;
                    }
                    Ok(_) => {}
                    Err(e) => {
                        let _ = events.send((id, ConnEvent::Closed(Some(strerror(&e)))));
                        return;
                    }
                }
                let mut whole = 0;
                loop {
                    match header::frame_len(&buf[whole..], header::MAX_LEN) {
                        Ok(Some(n)) => whole += n,
                        Ok(None) => break,
                        Err(e) => {
                            if whole > 0 {
                                let _ = events.send((id, ConnEvent::Frames(buf[..whole].to_vec())));
                            }
                            let _ = events.send((id, ConnEvent::Bad(e)));
                            return;
                        }
                    }
                }
                if whole > 0 {
                    let rest = buf.split_off(whole);
                    let frames = std::mem::replace(&mut buf, rest);
                    if events.send((id, ConnEvent::Frames(frames))).is_err() {
                        return;
                    }
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
