//! A real etcd for `--datastore etcd`, in its own namespace on the fabric.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::time::{Duration, Instant};

use brindle_netlink::NetnsFd;

use crate::error::{Error, Result};
use crate::plan::EtcdPlan;
use crate::proc::{ProcRecord, spawn_detached};

/// Starts etcd in `plan.netns`, its data and log under `dir`, and waits until it is healthy.
pub fn start(plan: &EtcdPlan, lab: &str, dir: &Path) -> Result<ProcRecord> {
    let bin = crate::which("etcd", "etcd-server")?;
    std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
    let client = plan.endpoint();
    let args: Vec<String> = [
        "--name",
        &format!("{lab}-etcd"),
        "--data-dir",
        &dir.join("data").display().to_string(),
        "--listen-client-urls",
        &format!("{client},http://127.0.0.1:2379"),
        "--advertise-client-urls",
        &client,
        "--listen-peer-urls",
        "http://127.0.0.1:2380",
        "--initial-advertise-peer-urls",
        "http://127.0.0.1:2380",
        "--initial-cluster",
        &format!("{lab}-etcd=http://127.0.0.1:2380"),
        "--initial-cluster-state",
        "new",
        "--log-level",
        "warn",
        "--logger",
        "zap",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    let rec = spawn_detached("etcd", &plan.netns, &bin, &args, &[], &dir.join("etcd.log"))?;
    let ns = NetnsFd::named(&plan.netns)?;
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if ns.run(healthy)? {
            return Ok(rec);
        }
        if !rec.is_alive() {
            return Err(Error::step(
                "start etcd",
                format!("exited; see {}", dir.join("etcd.log").display()),
            ));
        }
        if Instant::now() > deadline {
            return Err(Error::step("start etcd", "not healthy after 20 s"));
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// `GET /health` on 127.0.0.1:2379 of the calling thread's namespace.
fn healthy() -> bool {
    let addr = "127.0.0.1:2379".parse().expect("addr");
    let Ok(mut s) = TcpStream::connect_timeout(&addr, Duration::from_millis(200)) else {
        return false;
    };
    let _ = s.set_read_timeout(Some(Duration::from_millis(500)));
    if s.write_all(b"GET /health HTTP/1.0\r\n\r\n").is_err() {
        return false;
    }
    let mut buf = String::new();
    let _ = s.read_to_string(&mut buf);
    buf.contains("\"health\":\"true\"")
}
