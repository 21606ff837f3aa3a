//! Compare-and-swap updates of a handle's per-block address counts.

use ipnet::IpNet;

use crate::error::Result;
use crate::handle::{HandleOps, IpamHandle};
use crate::ipam::{Attempt, Ipam};
use crate::kv::Kv;

impl Ipam {
    /// Adds `num` addresses in `block` to `handle`, creating the handle if needed. Tries the
    /// create first: a workload's handle is normally new, so this saves a read.
    pub(crate) fn increment_handle(&self, kv: Kv, handle: &str, block: &IpNet, num: u64) -> Result<()> {
        let mut first = true;
        self.retry(
            || format!("incrementing handle {handle}"),
            || {
                if first {
                    first = false;
                    let mut h = IpamHandle::default();
                    h.increment(block, num);
                    match kv.create_handle(handle, &h) {
                        Ok(_) => return Ok(Attempt::Done(())),
                        Err(e) if e.is_conflict() => {}
                        Err(e) => return Err(e),
                    }
                }
                match kv.get_handle(handle)? {
                    None => {
                        let mut h = IpamHandle::default();
                        h.increment(block, num);
                        kv.create_handle(handle, &h)?;
                    }
                    Some(mut cur) => {
                        cur.value.increment(block, num);
                        kv.update_handle(handle, &cur.value, cur.rev)?;
                    }
                }
                Ok(Attempt::Done(()))
            },
        )
    }

    /// Removes `num` addresses in `block` from `handle`, deleting the handle when it holds
    /// nothing more. A missing handle is fine (nothing to count down).
    pub(crate) fn decrement_handle(&self, kv: Kv, handle: &str, block: &IpNet, num: u64) -> Result<()> {
        self.edit_handle(kv, handle, |h| h.decrement(block, num))
    }

    /// Applies `f` to a handle with compare-and-swap, deleting it if it ends up empty.
    pub(crate) fn edit_handle(&self, kv: Kv, handle: &str, f: impl Fn(&mut IpamHandle)) -> Result<()> {
        self.retry(
            || format!("updating handle {handle}"),
            || {
                let Some(mut cur) = kv.get_handle(handle)? else {
                    return Ok(Attempt::Done(()));
                };
                let before = cur.value.clone();
                f(&mut cur.value);
                if cur.value.block.is_empty() {
                    match kv.delete_handle(handle, cur.rev) {
                        Err(e) if e.is_not_found() => {}
                        r => r?,
                    }
                } else if cur.value != before {
                    kv.update_handle(handle, &cur.value, cur.rev)?;
                }
                Ok(Attempt::Done(()))
            },
        )
    }
}
