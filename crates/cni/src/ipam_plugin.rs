//! `brindle-ipam`: Brindle's IPAM as a CNI IPAM plugin (CNI spec §4), usable under any main
//! plugin (Debian's `bridge`, `ptp`, …) as Calico's `calico-ipam` is. It receives the whole
//! network configuration; ADD prints the abbreviated result (addresses with their block's
//! prefix length, one route per address, no interfaces), DEL releases the handle, CHECK
//! compares the handle's allocation with `prevResult`, STATUS checks the datastore, GC releases
//! this node's stale handles of the network.

use std::collections::BTreeSet;
use std::net::IpAddr;

use crate::alloc::{Allocator, HostLock, Request};
use crate::context::Context;
use crate::error::{CniError, code};
use crate::identity::Identity;
use crate::invocation::Command;
use crate::result::CniResult;

/// Runs one IPAM verb; `Some(result)` for ADD.
pub fn run(ctx: &Context) -> Result<Option<CniResult>, CniError> {
    ctx.conf.validate_common()?;
    // calico-ipam does not insist on the nodename file (the main plugin does).
    let mut lenient = ctx.conf.clone();
    lenient.nodename_file_optional = true;
    let node = ctx.files.nodename(&lenient)?;
    let id = Identity::new(&ctx.inv.args, &ctx.inv.container_id, &ctx.inv.ifname, &node);
    let ds = ctx.datastore()?;
    let Allocator::Brindle { ipam, lock_file } =
        Allocator::new(&brindle_conf(ctx), &ctx.inv, Some(ds.clone()))?
    else {
        unreachable!("brindle_conf names Brindle IPAM")
    };
    let alloc = Allocator::Brindle {
        ipam,
        lock_file: lock_file.clone(),
    };
    let conf = brindle_conf(ctx);
    let req = Request {
        conf: &conf,
        stdin: &ctx.stdin,
        inv: &ctx.inv,
        id: &id,
    };
    match ctx.inv.command {
        Command::Add => {
            crate::store::require_ready(&brindle_datastore::Client::new(ds.clone()))?;
            let mut r = alloc.allocate(&req)?;
            if let Some(dns) = ctx.conf.dns.clone() {
                r.dns = dns;
            }
            Ok(Some(r))
        }
        Command::Del => alloc.release(&req).map(|_| None),
        Command::Check => {
            let prev =
                ctx.conf.prev_result.as_ref().ok_or_else(|| {
                    CniError::invalid_netconf("CHECK needs prevResult (the result of the ADD)")
                })?;
            let prev = CniResult::from_value(prev)?;
            let addrs: Vec<IpAddr> = prev
                .ips
                .iter()
                .map(|ip| ip.address.addr())
                .collect::<BTreeSet<_>>()
                .into_iter()
                .collect();
            alloc.check(&req, &addrs).map(|_| None)
        }
        Command::Status => {
            crate::store::require_ready(&brindle_datastore::Client::new(ds.clone())).map_err(|e| {
                CniError::new(
                    code::NOT_AVAILABLE,
                    format!("brindle-ipam is not available: {}", e.msg),
                )
            })?;
            Ok(None)
        }
        Command::Gc => {
            let _lock = HostLock::acquire(&lock_file);
            crate::gc::sweep_ipam(&ds, &conf, &node).map(|_| None)
        }
        Command::Version => unreachable!("VERSION is answered before dispatch"),
    }
}

/// The configuration with `ipam.type` forced to Brindle's: whatever name the runtime used to
/// find this binary, it is Brindle IPAM that answers.
fn brindle_conf(ctx: &Context) -> crate::netconf::NetConf {
    let mut c = ctx.conf.clone();
    c.ipam.ipam_type = crate::netconf::BRINDLE_IPAM.into();
    c
}
