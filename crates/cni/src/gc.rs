//! GC (CNI 1.1): release what this network holds on this node for attachments the runtime no
//! longer knows (`cni.dev/valid-attachments`). With Brindle IPAM: every handle
//! `<network>.<containerID>` whose container is not listed and whose addresses were allocated
//! to this node (handles are cluster-wide; other nodes' pods are never touched) is released,
//! and the WorkloadEndpoints of those containers on this node are deleted. A delegated IPAM
//! plugin gets the GC forwarded. Errors do not stop the sweep; they are reported together.
//!
//! Caveat inherited from Calico's handle format: a network whose name is this network's name
//! plus `.something` has handles that look like ours with a container ID `something.<id>`.
//! Container IDs from runtimes are hex, so such handles are only touched if that prefix is
//! itself not a listed container, and only on this node.

use std::collections::BTreeSet;

use brindle_datastore::{Client, Datastore, ResourceError};
use brindle_ipam::{Ipam, IpamError};
use brindle_model::{Kind, Resource};

use crate::alloc::{self, Allocator, HostLock, ipam_error};
use crate::context::Context;
use crate::endpoint::resource_error;
use crate::error::CniError;
use crate::identity::Identity;
use crate::store::ds_error;

pub fn gc(ctx: &Context) -> Result<(), CniError> {
    ctx.conf.validate()?;
    let mut lenient = ctx.conf.clone();
    lenient.nodename_file_optional = true;
    let node = ctx.files.nodename(&lenient)?;
    let ds = ctx.datastore()?;
    let valid: BTreeSet<&str> = ctx
        .conf
        .valid_attachments()
        .iter()
        .map(|a| a.container_id.as_str())
        .collect();
    let mut errors: Vec<String> = Vec::new();
    match Allocator::new(&ctx.conf, &ctx.inv, Some(ds.clone()))? {
        Allocator::Brindle { ipam, lock_file } => {
            let _lock = HostLock::acquire(&lock_file);
            let released = sweep(&ipam, &ctx.conf.name, &node, &valid, &mut errors)?;
            delete_endpoints(&Client::new(ds.clone()), &node, &released, &mut errors);
        }
        Allocator::Delegated { plugin } => {
            let id = Identity::new(&ctx.inv.args, "", "", &node);
            let req = alloc::Request {
                conf: &ctx.conf,
                stdin: &ctx.stdin,
                inv: &ctx.inv,
                id: &id,
            };
            if let Err(e) = alloc::exec(&plugin, "GC", &req) {
                errors.push(e.to_string());
            }
        }
    }
    if errors.is_empty() {
        Ok(())
    } else {
        Err(CniError::internal(format!(
            "GC of network {}: {}",
            ctx.conf.name,
            errors.join("; ")
        )))
    }
}

/// The IPAM part of GC alone (the `brindle-ipam` plugin's GC; the caller holds the IPAM lock).
pub fn sweep_ipam(
    ds: &std::sync::Arc<dyn Datastore>,
    conf: &crate::netconf::NetConf,
    node: &str,
) -> Result<(), CniError> {
    let valid: BTreeSet<&str> = conf
        .valid_attachments()
        .iter()
        .map(|a| a.container_id.as_str())
        .collect();
    let mut errors = Vec::new();
    sweep(&Ipam::new(ds.clone()), &conf.name, node, &valid, &mut errors)?;
    if errors.is_empty() {
        Ok(())
    } else {
        Err(CniError::internal(format!(
            "GC of network {}: {}",
            conf.name,
            errors.join("; ")
        )))
    }
}

/// Releases this node's stale handles of `network`; returns the container IDs released.
fn sweep(
    ipam: &Ipam,
    network: &str,
    node: &str,
    valid: &BTreeSet<&str>,
    errors: &mut Vec<String>,
) -> Result<BTreeSet<String>, CniError> {
    let prefix = brindle_ipam::keys::handle_prefix();
    let listing = ipam.datastore().list(&prefix).map_err(ds_error)?;
    let ours = format!("{network}.");
    let mut released = BTreeSet::new();
    for kv in &listing.items {
        let Some(handle) = kv.key.strip_prefix(&prefix) else {
            continue;
        };
        let Some(container) = handle.strip_prefix(&ours) else {
            continue;
        };
        if valid.contains(container) {
            continue;
        }
        match on_this_node(ipam, handle, node) {
            Ok(true) => {}
            Ok(false) => continue,
            Err(e) => {
                errors.push(e.to_string());
                continue;
            }
        }
        match ipam.release_by_handle(handle) {
            Ok(addrs) => {
                crate::log::info(&format!(
                    "GC released {} of stale container {container} (handle {handle})",
                    addrs.iter().map(|a| a.to_string()).collect::<Vec<_>>().join(", ")
                ));
                released.insert(container.to_string());
            }
            Err(IpamError::UnknownHandle { .. }) => {}
            Err(e) => errors.push(ipam_error(&format!("release IPAM handle {handle}"), e).to_string()),
        }
    }
    Ok(released)
}

/// True when every address of `handle` was allocated for `node` (its `node` attribute).
fn on_this_node(ipam: &Ipam, handle: &str, node: &str) -> Result<bool, CniError> {
    let addrs = ipam
        .addrs_by_handle(handle)
        .map_err(|e| ipam_error(&format!("read IPAM handle {handle}"), e))?;
    if addrs.is_empty() {
        return Ok(false);
    }
    for a in addrs {
        let alloc = ipam
            .allocation(a)
            .map_err(|e| ipam_error(&format!("read allocation of {a}"), e))?;
        if alloc.and_then(|al| al.attrs.get("node").cloned()).as_deref() != Some(node) {
            return Ok(false);
        }
    }
    Ok(true)
}

/// Deletes this node's endpoints of the released containers.
fn delete_endpoints(client: &Client, node: &str, containers: &BTreeSet<String>, errors: &mut Vec<String>) {
    if containers.is_empty() {
        return;
    }
    let all = match client.list(Kind::WorkloadEndpoint, None) {
        // Rows that do not decode are not this node's endpoints as far as GC can tell.
        Ok(listed) => listed.items,
        Err(e) => {
            errors.push(resource_error("list WorkloadEndpoints", e).to_string());
            return;
        }
    };
    for r in all {
        let Resource::WorkloadEndpoint(wep) = r else {
            continue;
        };
        if wep.spec.node != node || !containers.contains(&wep.spec.container_id) {
            continue;
        }
        let m = &wep.metadata;
        match client.delete(Kind::WorkloadEndpoint, &m.namespace, &m.name, &m.resource_version) {
            Ok(_) | Err(ResourceError::NotFound(_)) | Err(ResourceError::OutOfDate { .. }) => {}
            Err(e) if e.is_conflict() => {}
            Err(e) => errors.push(
                resource_error(&format!("delete WorkloadEndpoint {}/{}", m.namespace, m.name), e).to_string(),
            ),
        }
    }
}
