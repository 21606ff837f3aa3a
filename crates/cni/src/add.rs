//! ADD (docs/CALICO.md §7): readiness, address, veth, host and pod configuration, host route,
//! WorkloadEndpoint, result. Every step that changes something is recorded in [`Progress`];
//! any later failure (including one injected by `BRINDLE_CNI_FAIL_AT`) undoes them all, in
//! reverse order, before the error is reported: nothing is left half-done.

use std::net::IpAddr;

use brindle_datastore::Client;
use brindle_model::resources::WorkloadEndpoint;
use std::time::Instant;

use brindle_netlink::{Handle, NetnsFd};
use ipnet::IpNet;

use crate::alloc::{Allocator, Request};
use crate::context::Context;
use crate::endpoint::{self, Written};
use crate::error::CniError;
use crate::fault::{Faults, Step};
use crate::identity::Identity;
use crate::result::{CniResult, Interface, IpConfig};
use crate::wiring::{self, Veth};

/// What ADD has changed so far, and how long each step took.
struct Progress {
    allocated: bool,
    veth: Option<String>,
    endpoint: Option<Written>,
    steps: Steps,
}

/// Step bookkeeping: the fault hook fires after a step, and each step's time is logged (debug).
struct Steps {
    faults: Faults,
    last: Instant,
    times: Vec<(Step, f64)>,
}

impl Steps {
    fn new(faults: Faults) -> Steps {
        Steps {
            faults,
            last: Instant::now(),
            times: Vec::new(),
        }
    }

    /// Marks `step` done: records its time, then fails if the test hook points at it.
    fn done(&mut self, step: Step) -> Result<(), CniError> {
        let now = Instant::now();
        self.times.push((step, (now - self.last).as_secs_f64() * 1e3));
        self.last = now;
        self.faults.after(step)
    }

    fn summary(&self) -> String {
        let parts: Vec<String> = self.times.iter().map(|(s, ms)| format!("{s} {ms:.2}")).collect();
        format!("ADD steps (ms): {}", parts.join(", "))
    }
}

/// Everything the steps of one ADD share.
struct Attachment<'a> {
    ctx: &'a Context,
    id: &'a Identity,
    alloc: &'a Allocator,
    req: &'a Request<'a>,
    client: &'a Client,
    /// What the stored Pod says the endpoint is ([`crate::pod`]).
    template: Option<&'a WorkloadEndpoint>,
    netns: &'a NetnsFd,
    mtu: Option<u32>,
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
    let mut progress = Progress {
        allocated: false,
        veth: None,
        endpoint: None,
        steps: Steps::new(ctx.faults),
    };
    let ds = ctx.datastore()?;
    let client = Client::new(ds.clone());
    crate::store::require_ready(&client)?;
    // Read (and checked) before anything changes: a Pod that cannot be used fails the ADD.
    let template = crate::pod::endpoint_template(&client, &ctx.inv.args, &node)?;
    progress.steps.done(Step::Datastore)?;

    let alloc = Allocator::new(&ctx.conf, &ctx.inv, Some(ds))?;
    let req = Request {
        conf: &ctx.conf,
        stdin: &ctx.stdin,
        inv: &ctx.inv,
        id: &id,
    };
    let a = Attachment {
        ctx,
        id: &id,
        alloc: &alloc,
        req: &req,
        client: &client,
        template: template.as_ref(),
        netns: &netns,
        mtu,
    };
    let mut host = Handle::new().map_err(netlink)?;
    let outcome = wire(&a, &mut host, prev, &mut progress);
    crate::log::debug(&progress.steps.summary());
    outcome.inspect_err(|_| roll_back(&a, &mut host, progress))
}

fn wire(
    a: &Attachment<'_>,
    host: &mut Handle,
    prev: Option<CniResult>,
    progress: &mut Progress,
) -> Result<CniResult, CniError> {
    let ctx = a.ctx;
    // A delegated plugin that failed may still hold something: the spec asks for a DEL.
    progress.allocated = a.alloc.is_delegated();
    let ipam = a.alloc.allocate(a.req)?;
    progress.allocated = true;
    progress.steps.done(Step::Ipam)?;
    let addrs: Vec<IpAddr> = ipam.ips.iter().map(|ip| ip.address.addr()).collect();

    let mut pod = Handle::open(a.netns).map_err(netlink)?;
    let host_name = a.id.host_veth();
    let veth = wiring::create_veth(host, &mut pod, &host_name, &ctx.inv.ifname, a.mtu)?;
    progress.veth = Some(host_name.clone());
    progress.steps.done(Step::Veth)?;

    let v6 = addrs.iter().any(IpAddr::is_ipv6);
    wiring::configure_host(host, &veth, v6)?;
    progress.steps.done(Step::HostConfig)?;

    let routes = pod_routes(ctx, &ipam, &addrs);
    let forwarding = ctx.conf.container_settings.allow_ip_forwarding;
    wiring::configure_pod(&mut pod, &veth, &addrs, &routes, forwarding)?;
    progress.steps.done(Step::PodConfig)?;

    wiring::add_host_routes(host, &veth, &addrs)?;
    progress.steps.done(Step::HostRoute)?;

    match a.template {
        Some(t) => crate::pod::ensure_profiles(a.client, t)?,
        None => endpoint::ensure_profile(a.client, a.id, &ctx.conf.name)?,
    }
    let wep = endpoint::build(
        a.id,
        &ctx.conf.name,
        a.template,
        &veth.host_name,
        &veth.pod_mac_string(),
        &addrs,
    );
    progress.endpoint = Some(endpoint::write(a.client, &wep)?);
    progress.steps.done(Step::Endpoint)?;

    let result = result_of(ctx, prev, &ipam, &veth, &addrs);
    progress.steps.done(Step::Result)?;
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

/// Undoes `progress` in reverse order, best effort (each failure is logged; the error the
/// caller returns is the one that made ADD fail).
fn roll_back(a: &Attachment<'_>, host: &mut Handle, progress: Progress) {
    if let Some(w) = &progress.endpoint {
        endpoint::undo(a.client, w);
    }
    if let Some(name) = &progress.veth {
        wiring::remove_veth(host, name);
    }
    if progress.allocated
        && let Err(e) = a.alloc.release(a.req)
    {
        crate::log::warn(&format!("rollback: release addresses: {e}"));
    }
}
