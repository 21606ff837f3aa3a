//! DEL, as Calico's plugin does it (`CmdDelK8s` in `cni-plugin/pkg/k8s/k8s.go`): release the
//! addresses (the handle and Calico's legacy handle), delete the WorkloadEndpoint if it is this
//! container's, delete the pod's interface inside its namespace. Idempotent: a missing namespace,
//! interface, endpoint or allocation is success. Every step is tried even if an earlier one failed;
//! the first error is returned (the runtime retries DEL).

use crate::alloc::{Allocator, Request};
use crate::context::Context;
use crate::error::CniError;
use crate::identity::Identity;

pub fn del(ctx: &Context) -> Result<(), CniError> {
    ctx.conf.validate_common()?;
    // The nodename file is not required for DEL: a DEL after the agent went away must still
    // release what it can (the node name only matters for the endpoint's name).
    let mut lenient = ctx.conf.clone();
    lenient.nodename_file_optional = true;
    let node = ctx.files.nodename(&lenient)?;
    let id = Identity::new(&ctx.inv.args, &ctx.inv.container_id, &ctx.inv.ifname, &node);
    let mut first: Option<CniError> = None;
    let mut note = |r: Result<(), CniError>| {
        if let Err(e) = r {
            crate::log::warn(&format!("DEL {}: {e}", ctx.inv.container_id));
            first.get_or_insert(e);
        }
    };

    let ds = match ctx.datastore() {
        Ok(ds) => Some(ds),
        Err(e) => {
            note(Err(e));
            None
        }
    };
    let req = Request {
        conf: &ctx.conf,
        stdin: &ctx.stdin,
        inv: &ctx.inv,
        id: &id,
    };
    if !ctx.conf.ipam.is_brindle() || ds.is_some() {
        note(Allocator::new(&ctx.conf, &ctx.inv, ds.clone()).and_then(|a| a.release(&req)));
    }
    if let Some(ds) = &ds {
        note(crate::endpoint::delete_if_owned(&brindle_datastore::Client::new(ds.clone()), &id).map(|_| ()));
    }
    if let Some(netns) = &ctx.inv.netns {
        note(crate::wiring::remove_pod_interface(netns, &ctx.inv.ifname).map(|_| ()));
    }
    match first {
        Some(e) => Err(e),
        None => Ok(()),
    }
}
