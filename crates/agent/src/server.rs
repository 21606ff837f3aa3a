//! The agent's local sockets: the control socket (`node status`) and the socket the CNI plugin
//! reports its calls on. The control socket and the HTTP server ([`crate::http`]) ask the
//! agent's main loop through [`Query`].

use std::path::{Path, PathBuf};

use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::UnixListener;
use tokio::sync::{mpsc, oneshot};

use crate::error::{Error, Result};
use brindle_ctl::control::{Request, Response};
use brindle_ctl::status::AgentStatus;

/// A question to the main loop.
#[derive(Debug)]
pub enum Query {
    Status(oneshot::Sender<AgentStatus>),
    /// The `/metrics` exposition text.
    Metrics(oneshot::Sender<String>),
    /// The cluster picture's state (`/view.json`), or why it could not be read.
    View(oneshot::Sender<std::result::Result<crate::view::ClusterView, String>>),
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
