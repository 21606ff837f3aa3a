//! The agent's two listeners: the control socket (`node status`) and a small HTTP server for
//! `/liveness`, `/readiness` (Calico's probe semantics, calico.md §8) and `/metrics`
//! (Prometheus text format 0.0.4). Both ask the agent's main loop through [`Query`].

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, UnixListener};
use tokio::sync::{mpsc, oneshot};

use crate::error::{Error, Result};
use brindle_ctl::control::{Request, Response};
use brindle_ctl::status::AgentStatus;

/// A question to the main loop.
#[derive(Debug)]
pub enum Query {
    Status(oneshot::Sender<AgentStatus>),
    Metrics(oneshot::Sender<String>),
}

async fn ask<T>(tx: &mpsc::Sender<Query>, make: impl FnOnce(oneshot::Sender<T>) -> Query) -> Option<T> {
    let (otx, orx) = oneshot::channel();
    tx.send(make(otx)).await.ok()?;
    orx.await.ok()
}

/// Binds the control socket, refusing to steal it from a running agent; a stale file left by a
/// crashed agent is replaced.
pub fn bind_ctl(path: &Path) -> Result<UnixListener> {
    let err = |d: String| Error::Ctl {
        path: path.display().to_string(),
        detail: d,
    };
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(|e| Error::io(dir.display(), e))?;
    }
    if path.exists() {
        if std::os::unix::net::UnixStream::connect(path).is_ok() {
            return Err(err("another agent is running on this socket".into()));
        }
        std::fs::remove_file(path).map_err(|e| Error::io(path.display(), e))?;
    }
    UnixListener::bind(path).map_err(|e| err(e.to_string()))
}

/// Serves the control socket until the task is dropped.
pub async fn serve_ctl(listener: UnixListener, tx: mpsc::Sender<Query>) {
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            continue;
        };
        let tx = tx.clone();
        tokio::spawn(async move {
            let (r, mut w) = stream.into_split();
            let mut line = String::new();
            let mut r = BufReader::new(r);
            if r.read_line(&mut line).await.is_err() {
                return;
            }
            let resp = match serde_json::from_str::<Request>(line.trim()) {
                Ok(Request::Status) => match ask(&tx, Query::Status).await {
                    Some(st) => Response::Status(Box::new(st)),
                    None => Response::Error("agent is shutting down".into()),
                },
                Err(e) => Response::Error(format!("bad request {:?}: {e}", line.trim())),
            };
            let body = serde_json::to_vec(&resp).expect("response serialises");
            let _ = w.write_all(&body).await;
            let _ = w.shutdown().await;
        });
    }
}

/// Removes the control socket file on drop (clean shutdown).
pub struct CtlGuard(pub PathBuf);

impl Drop for CtlGuard {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

/// Binds the socket the CNI plugin reports its calls' latencies on (`brindle_ctl::report`),
/// next to the control socket. Called after [`bind_ctl`], which refused if another agent owns
/// the directory, so a file already there is a dead agent's and is replaced.
pub fn bind_cni_reports(ctl: &Path) -> Result<(tokio::net::UnixDatagram, PathBuf)> {
    let path = brindle_ctl::report::socket_for(ctl);
    let _ = std::fs::remove_file(&path);
    let s = tokio::net::UnixDatagram::bind(&path).map_err(|e| Error::io(path.display(), e))?;
    Ok((s, path))
}

/// Binds the health/metrics listener.
pub async fn bind_http(addr: SocketAddr) -> Result<TcpListener> {
    TcpListener::bind(addr)
        .await
        .map_err(|e| Error::Startup(format!("health/metrics listener {addr}: {e}")))
}

/// Calico's probe answers: 200 with the detail when fine, 503 otherwise; `/metrics` in
/// Prometheus text format.
pub async fn serve_http(listener: TcpListener, tx: mpsc::Sender<Query>) {
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            continue;
        };
        let tx = tx.clone();
        tokio::spawn(async move {
            let (r, mut w) = stream.into_split();
            let mut r = BufReader::new(r);
            let mut first = String::new();
            if r.read_line(&mut first).await.is_err() {
                return;
            }
            // Drain the headers (to the blank line), bounded.
            for _ in 0..100 {
                let mut h = String::new();
                match r.read_line(&mut h).await {
                    Ok(0) | Err(_) => break,
                    Ok(_) if h.trim().is_empty() => break,
                    Ok(_) => {}
                }
            }
            let path = first.split_whitespace().nth(1).unwrap_or("/").to_string();
            let (code, ctype, body) = match path.as_str() {
                "/liveness" | "/readiness" => match ask(&tx, Query::Status).await {
                    Some(st) => {
                        let (ok, detail) = if path == "/liveness" {
                            (
                                st.live,
                                if st.live {
                                    "live".to_string()
                                } else {
                                    "not live".to_string()
                                },
                            )
                        } else if st.ready {
                            (true, "ready".to_string())
                        } else {
                            (false, st.ready_detail.clone())
                        };
                        (if ok { 200 } else { 503 }, "text/plain", format!("{detail}\n"))
                    }
                    None => (503, "text/plain", "shutting down\n".to_string()),
                },
                "/metrics" => match ask(&tx, Query::Metrics).await {
                    Some(m) => (200, "text/plain; version=0.0.4", m),
                    None => (503, "text/plain", "shutting down\n".to_string()),
                },
                _ => (404, "text/plain", "not found\n".to_string()),
            };
            let reason = match code {
                200 => "OK",
                404 => "Not Found",
                _ => "Service Unavailable",
            };
            let resp = format!(
                "HTTP/1.1 {code} {reason}\r\nContent-Type: {ctype}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
            let _ = w.write_all(resp.as_bytes()).await;
            let _ = w.shutdown().await;
        });
    }
}
