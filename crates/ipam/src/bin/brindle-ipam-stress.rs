//! `brindle-ipam-stress`: one process playing a CNI plugin on one node, for the concurrency
//! and crash tests and the benchmark. It adds and deletes "pods" at random as CNI would:
//!
//! - ADD: auto-assign one address (handle `stress-net.<node>-<worker>-<n>`), claim the address
//!   in an ownership key `/brindle-test/owner/<ip>` (a *create*, so if IPAM ever handed one
//!   address to two live pods the second create fails and the process reports `DUPLICATE`),
//!   then write the pod's WorkloadEndpoint.
//! - DEL: delete the WorkloadEndpoint, drop the ownership key, release by handle.
//!
//! Killed at any point, it leaves at worst an allocation without an endpoint (a leak `ipam
//! check` must report) or a handle without an address — never an endpoint without its
//! allocation. The datastore comes from the environment (`BRINDLE_DATASTORE_TYPE`,
//! `BRINDLE_DATASTORE_PATH`, `ETCD_ENDPOINTS`, …). Lines on stdout: `ADD <ip> <handle>`,
//! `DEL <ip> <handle>`, then `DONE`, or `DUPLICATE …` / `ERROR …` with a non-zero exit.

use std::collections::BTreeMap;
use std::io::Write;
use std::net::IpAddr;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use brindle_datastore::{Datastore, DatastoreConfig};
use brindle_ipam::{AutoAssignArgs, Ipam};
use brindle_model::keys::resource_key;
use brindle_model::resources::{WorkloadEndpoint, WorkloadEndpointSpec};
use brindle_model::{Kind, ObjectMeta};

/// Where the ownership keys live (outside Calico's tree).
pub const OWNER_PREFIX: &str = "/brindle-test/owner/";

struct Args {
    node: String,
    worker: usize,
    ops: usize,
    hold: usize,
    seed: u64,
}

fn parse_args() -> Result<Args, String> {
    let mut a = Args {
        node: String::new(),
        worker: 0,
        ops: 20,
        hold: 10,
        seed: 1,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut val = || it.next().ok_or_else(|| format!("{flag} needs a value"));
        let num = |v: String| v.parse::<u64>().map_err(|e| format!("{flag} {v}: {e}"));
        match flag.as_str() {
            "--node" => a.node = val()?,
            "--worker" => a.worker = num(val()?)? as usize,
            "--ops" => a.ops = num(val()?)? as usize,
            "--hold" => a.hold = num(val()?)? as usize,
            "--seed" => a.seed = num(val()?)?,
            _ => return Err(format!("unknown argument {flag}")),
        }
    }
    if a.node.is_empty() {
        return Err("--node is required".into());
    }
    Ok(a)
}

/// xorshift64*: enough randomness to choose between ADD and DEL.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
}

/// The pod's endpoint: name as Calico builds it (`<node>-cni-<id>-eth0`), namespace `stress`.
fn endpoint(node: &str, id: &str, ip: Option<IpAddr>) -> (String, WorkloadEndpoint) {
    let name = WorkloadEndpoint::name_for(node, "cni", id, "eth0");
    let key = resource_key(Kind::WorkloadEndpoint, "stress", &name);
    let w = WorkloadEndpoint::new(
        ObjectMeta::namespaced("stress", name),
        WorkloadEndpointSpec {
            orchestrator: "cni".into(),
            node: node.into(),
            container_id: id.into(),
            endpoint: "eth0".into(),
            ip_networks: ip.map(|ip| vec![format!("{ip}/32")]).unwrap_or_default(),
            ..Default::default()
        },
    );
    (key, w)
}

fn run(a: &Args, ds: Arc<dyn Datastore>, out: &mut impl Write) -> Result<(), String> {
    let ipam = Ipam::new(ds.clone());
    let mut rng = Rng(a.seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1);
    let mut held: BTreeMap<String, IpAddr> = BTreeMap::new();
    for i in 0..a.ops {
        let add = held.is_empty() || (held.len() < a.hold && !rng.next().is_multiple_of(3));
        if add {
            let id = format!("{}-{}-{i}", a.node, a.worker);
            let handle = format!("stress-net.{id}");
            let mut args = AutoAssignArgs::workload_v4(&a.node, &handle);
            args.attrs = [
                ("namespace".to_string(), "stress".to_string()),
                ("node".to_string(), a.node.clone()),
                ("pod".to_string(), id.clone()),
            ]
            .into();
            let ip = ipam
                .auto_assign(&args)
                .map_err(|e| format!("ERROR add {handle}: {e}"))?
                .ipv4[0]
                .addr();
            if let Err(e) = ds.create(&format!("{OWNER_PREFIX}{ip}"), handle.as_bytes()) {
                if e.is_conflict() {
                    let other = ds
                        .get(&format!("{OWNER_PREFIX}{ip}"))
                        .ok()
                        .flatten()
                        .map(|kv| String::from_utf8_lossy(&kv.value).into_owned())
                        .unwrap_or_default();
                    let _ = writeln!(out, "DUPLICATE {ip} {handle} {other}");
                    return Err(format!("DUPLICATE {ip} given to {handle} while {other} holds it"));
                }
                return Err(format!("ERROR owner key for {ip}: {e}"));
            }
            let (key, wep) = endpoint(&a.node, &id, Some(ip));
            ds.create(&key, &serde_json::to_vec(&wep).expect("json"))
                .map_err(|e| format!("ERROR endpoint for {handle}: {e}"))?;
            let _ = writeln!(out, "ADD {ip} {handle}");
            let _ = out.flush();
            held.insert(id, ip);
        } else {
            let pick = (rng.next() % held.len() as u64) as usize;
            let id = held.keys().nth(pick).expect("non-empty").clone();
            let ip = held.remove(&id).expect("present");
            let handle = format!("stress-net.{id}");
            ds.delete(&endpoint(&a.node, &id, None).0, None)
                .map_err(|e| format!("ERROR delete endpoint of {handle}: {e}"))?;
            ds.delete(&format!("{OWNER_PREFIX}{ip}"), None)
                .map_err(|e| format!("ERROR delete owner key of {ip}: {e}"))?;
            ipam.release_by_handle(&handle)
                .map_err(|e| format!("ERROR release {handle}: {e}"))?;
            let _ = writeln!(out, "DEL {ip} {handle}");
            let _ = out.flush();
        }
    }
    Ok(())
}

/// Waits up to two minutes for a lock or a reply instead of the stores' default ten seconds.
/// These runs check correctness under contention, 80 processes at once on a 2-core machine
/// shared with other builds: there a lock holder can be starved of CPU for seconds, which a CNI
/// runtime would answer by retrying the pod, and which is not what is being tested.
fn patient(mut c: DatastoreConfig) -> DatastoreConfig {
    match &mut c {
        DatastoreConfig::Sqlite(s) => s.busy_timeout = Duration::from_secs(120),
        DatastoreConfig::Etcd(e) => e.request_timeout = Duration::from_secs(120),
    }
    c
}

fn main() -> ExitCode {
    let a = match parse_args() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("brindle-ipam-stress: {e}");
            return ExitCode::from(64);
        }
    };
    let ds = match DatastoreConfig::from_env().and_then(|c| brindle_datastore::open(&patient(c))) {
        Ok(ds) => ds,
        Err(e) => {
            println!("ERROR open datastore: {e}");
            return ExitCode::from(2);
        }
    };
    let mut out = std::io::stdout().lock();
    match run(&a, ds, &mut out) {
        Ok(()) => {
            let _ = writeln!(out, "DONE");
            ExitCode::SUCCESS
        }
        Err(e) => {
            let _ = writeln!(out, "{e}");
            ExitCode::from(if e.starts_with("DUPLICATE") { 3 } else { 2 })
        }
    }
}
