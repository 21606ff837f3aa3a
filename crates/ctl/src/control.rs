//! The agent's control socket: a unix socket (one per node; `BRINDLE_CTL_SOCKET`) where a client
//! writes one request line and reads one JSON answer. `brindle node status` and `brindle lab`
//! use it as calicoctl uses BIRD's `bird.ctl`.

use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::status::AgentStatus;

/// What a client may ask.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Request {
    Status,
}

/// The answer to a request.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Response {
    Status(Box<AgentStatus>),
    Error(String),
}

fn ctl_err(path: &Path, detail: impl std::fmt::Display) -> Error {
    Error::Ctl {
        path: path.display().to_string(),
        detail: detail.to_string(),
    }
}

/// Asks the agent behind `path` for its status (5 s bound).
pub fn query_status(path: &Path) -> Result<AgentStatus> {
    let mut s = UnixStream::connect(path).map_err(|e| ctl_err(path, e))?;
    s.set_read_timeout(Some(Duration::from_secs(5)))
        .map_err(|e| ctl_err(path, e))?;
    s.set_write_timeout(Some(Duration::from_secs(5)))
        .map_err(|e| ctl_err(path, e))?;
    let mut line = serde_json::to_string(&Request::Status).expect("request serialises");
    line.push('\n');
    s.write_all(line.as_bytes()).map_err(|e| ctl_err(path, e))?;
    let mut buf = Vec::new();
    s.read_to_end(&mut buf).map_err(|e| ctl_err(path, e))?;
    match serde_json::from_slice::<Response>(&buf).map_err(|e| ctl_err(path, format!("bad answer: {e}")))? {
        Response::Status(st) => Ok(*st),
        Response::Error(e) => Err(ctl_err(path, e)),
    }
}

/// Reads one request line from a connection (the server's side).
pub fn read_request(stream: &mut impl std::io::Read) -> std::result::Result<Request, String> {
    let mut line = String::new();
    BufReader::new(stream)
        .read_line(&mut line)
        .map_err(|e| e.to_string())?;
    serde_json::from_str(line.trim()).map_err(|e| format!("bad request {:?}: {e}", line.trim()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_and_response_round_trip() {
        let r: Request = read_request(&mut "\"status\"\n".as_bytes()).unwrap();
        assert_eq!(r, Request::Status);
        assert!(read_request(&mut "\"reboot\"\n".as_bytes()).is_err());
        let st = AgentStatus {
            node: "n1".into(),
            ..Default::default()
        };
        let j = serde_json::to_string(&Response::Status(Box::new(st.clone()))).unwrap();
        match serde_json::from_str::<Response>(&j).unwrap() {
            Response::Status(s) => assert_eq!(*s, st),
            Response::Error(e) => panic!("{e}"),
        }
    }
}
