//! STATUS (CNI 1.1): can this node service ADD? The agent must be running (its nodename file,
//! unless optional), the datastore reachable, ClusterInformation `datastoreReady`; a delegated
//! IPAM plugin is asked too (the spec requires forwarding). Failures are code 50.

use crate::alloc::{self, Allocator};
use crate::context::Context;
use crate::error::{CniError, code};
use crate::identity::Identity;

fn unavailable(e: CniError) -> CniError {
    CniError::new(
        code::NOT_AVAILABLE,
        format!("the Brindle CNI plugin is not available: {}", e.msg),
    )
    .with_details(e.details)
}

pub fn status(ctx: &Context) -> Result<(), CniError> {
    ctx.conf.validate()?;
    let node = ctx.files.nodename(&ctx.conf).map_err(unavailable)?;
    let ds = ctx.datastore().map_err(unavailable)?;
    crate::store::require_ready(&brindle_datastore::Client::new(ds.clone())).map_err(unavailable)?;
    if !ctx.conf.ipam.is_brindle() {
        let id = Identity::new(&ctx.inv.args, "", "", &node);
        let req = alloc::Request {
            conf: &ctx.conf,
            stdin: &ctx.stdin,
            inv: &ctx.inv,
            id: &id,
        };
        let Allocator::Delegated { plugin } = Allocator::new(&ctx.conf, &ctx.inv, None)? else {
            unreachable!("not Brindle IPAM")
        };
        alloc::exec(&plugin, "STATUS", &req).map_err(unavailable)?;
    }
    Ok(())
}
