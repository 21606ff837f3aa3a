//! Errors of the control socket's client, naming the socket.

/// The agent's control socket could not be reached or answered badly.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("control socket {path}: {detail}")]
    Ctl { path: String, detail: String },
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
