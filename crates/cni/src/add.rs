//! ADD (calico.md §4.3): readiness, address, veth, host and pod configuration, host route,
//! WorkloadEndpoint, result. Every step that changes something is recorded in [`Progress`];
//! any later failure (including one injected by `BRINDLE_CNI_FAIL_AT`) undoes them all, in
//! reverse order, before the error is reported: nothing is left half-done.

use std::net::IpAddr;

use brindle_datastore::Client;
use brindle_netlink::Handle;
use ipnet::IpNet;

use crate::alloc::{Allocator, Request};
use crate::context::Context;
use crate::endpoint::{self, Written};
use crate::error::CniError;
use crate::fault::Step;
use crate::identity::Identity;
use crate::result::{CniResult, Interface, IpConfig};
use crate::wiring::{self, Veth};

/// What ADD has changed so far.
#[derive(Default)]
struct Progress {
    allocated: bool,
    veth: Option<String>,
    endpoint: Option<Written>,
}

fn netlink(e: brindle_netlink::Error) -> CniError {
    CniError::internal(e.to_string())
}

/// Runs ADD; on success returns the result to print.
pub fn add(ctx: &Context) -> Result<CniResult, CniError> {
    ctx.conf.validate()?;
    let prev = match &ctx.conf.prev_result {
        Some(v) => Some(CniResult::from_value(v)?),
        None => None,
    };
    let node = ctx.files.nodename(&ctx.conf)?;
    let mtu = ctx.files.mtu(&ctx.conf)?;
    let id = Identity::new(&ctx.inv.args, &ctx.inv.container_id, &ctx.inv.ifname, &node);
    let netns = ctx.open_netns()?;
    let ds = ctx.datastore()?;
    let client = Client::new(ds.clone());
    crate::store::require_ready(&client)?;
    ctx.faults.after(Step::Datastore)?;

    let alloc = Allocator::new(&ctx.conf, &ctx.inv, Some(ds.clone()))?;
    let req = Request {
        conf: &ctx.conf,
        stdin: &ctx.stdin,
        inv: &ctx.inv,
        id: &id,
    };
    let mut progress = Progress::default();
    let mut host = Handle::new().map_err(netlink)?;
    match wire(
        ctx,
        &id,
        &alloc,
        &req,
        &client,
        &mut host,
        &netns,
        mtu,
        prev,
        &mut progress,
    ) {
        Ok(r) => Ok(r),
        Err(e) => {
            roll_back(&alloc, &req, &client, &mut host, progress);
            Err(e)
        }
    }
}

#[allow(clippy::too_many_arguments)]
fn wire(
    ctx: &Context,
    id: &Identity,
    alloc: &Allocator,
    req: &Request<'_>,
    client: &Client,
    host: &mut Handle,
    netns: &brindle_netlink::NetnsFd,
    mtu: Option<u32>,
    prev: Option<CniResult>,
    progress: &mut Progress,
) -> Result<CniResult, CniError> {
    let faults = ctx.faults;
    // A delegated plugin that failed may still hold something: the spec asks for a DEL.
    progress.allocated = alloc.is_delegated();
    let ipam = alloc.allocate(req)?;
    progress.allocated = true;
    faults.after(Step::Ipam)?;
    let addrs: Vec<IpAddr> = ipam.ips.iter().map(|ip| ip.address.addr()).collect();

    let mut pod = Handle::open(netns).map_err(netlink)?;
    let host_name = id.host_veth();
    let veth = wiring::create_veth(host, &mut pod, &host_name, &ctx.inv.ifname, mtu)?;
    progress.veth = Some(host_name.clone());
    faults.after(Step::Veth)?;

    let v6 = addrs.iter().any(IpAddr::is_ipv6);
    wiring::configure_host(host, &veth, v6)?;
    faults.after(Step::HostConfig)?;

    let routes = pod_routes(ctx, &ipam, &addrs);
    wiring::configure_pod(
        &mut pod,
        &veth,
        &addrs,
        &routes,
        ctx.conf.container_settings.allow_ip_forwarding,
    )?;
    faults.after(Step::PodConfig)?;

    wiring::add_host_routes(host, &veth, &addrs)?;
    faults.after(Step::HostRoute)?;

    endpoint::ensure_profile(client, id, &ctx.conf.name)?;
    let wep = endpoint::build(
        id,
        &ctx.conf.name,
        &veth.host_name,
        &veth.pod_mac_string(),
        &addrs,
    );
    progress.endpoint = Some(endpoint::write(client, &wep)?);
    faults.after(Step::Endpoint)?;

    let result = result_of(ctx, prev, &ipam, &veth, &addrs);
    faults.after(Step::Result)?;
    Ok(result)
}

/// The routes inside the pod: Brindle IPAM's per-address routes describe the block, not the
/// pod, so the pod gets the default route(s); a delegated IPAM plugin's routes replace the
/// default unless `include_default_routes` (Calico's rule).
fn pod_routes(ctx: &Context, ipam: &CniResult, addrs: &[IpAddr]) -> Vec<IpNet> {
    let defaults = wiring::default_routes(addrs);
    if ctx.conf.ipam.is_brindle() || ipam.routes.is_empty() {
        return defaults;
    }
    let mut out = if ctx.conf.include_default_routes {
        defaults
    } else {
        Vec::new()
    };
    out.extend(ipam.routes.iter().map(|r| r.dst));
    out
}

/// The result: any previous result of the chain, then the host end and the pod end, the
/// addresses as `/32`/`/128` on the pod end (no gateway, as Calico), the IPAM routes and DNS.
fn result_of(
    ctx: &Context,
    prev: Option<CniResult>,
    ipam: &CniResult,
    veth: &Veth,
    addrs: &[IpAddr],
) -> CniResult {
    let mut r = prev.unwrap_or_default();
    r.interfaces.push(Interface {
        name: veth.host_name.clone(),
        ..Default::default()
    });
    let pod_index = r.interfaces.len();
    r.interfaces.push(Interface {
        name: veth.pod_name.clone(),
        mac: Some(veth.pod_mac_string()),
        mtu: Some(veth.mtu),
        sandbox: ctx.inv.netns.as_ref().map(|p| p.display().to_string()),
        ..Default::default()
    });
    r.ips.extend(addrs.iter().map(|a| IpConfig {
        address: wiring::host_net(*a),
        gateway: None,
        interface: Some(pod_index),
    }));
    r.routes.extend(ipam.routes.iter().cloned());
    if let Some(dns) = ctx.conf.dns.clone().filter(|d| !d.is_empty()) {
        r.dns = dns;
    } else if !ipam.dns.is_empty() {
        r.dns = ipam.dns.clone();
    }
    r
}

/// Undoes `progress` in reverse order, best effort (each failure is reported on stderr; the
/// error the caller returns is the one that made ADD fail).
fn roll_back(alloc: &Allocator, req: &Request<'_>, client: &Client, host: &mut Handle, progress: Progress) {
    if let Some(w) = &progress.endpoint {
        endpoint::undo(client, w);
    }
    if let Some(name) = &progress.veth {
        wiring::remove_veth(host, name);
    }
    if progress.allocated
        && let Err(e) = alloc.release(req)
    {
        crate::log::warn(&format!("rollback: release addresses: {e}"));
    }
}
