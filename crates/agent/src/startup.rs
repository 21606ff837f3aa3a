//! Startup, as `calico-node -startup` and `-allocate-tunnel-addrs` (Calico's
//! `node/pkg/lifecycle/startup/startup.go` and `node/pkg/allocateip/allocateip.go`): register
//! or update the Node with its BGP address, refuse an address another node uses, make sure
//! ClusterInformation, FelixConfiguration, the built-in tiers and (when asked) the default pool
//! exist, allocate the tunnel addresses, and write the nodename file last.
//!
//! Every write goes through the typed [`Client`] (validation, defaults, uid and creation time,
//! compare-and-swap), reading leniently. Failures of the datastore itself are
//! [`Error::Datastore`]: the caller retries them (the agent keeps running meanwhile); the
//! others (an address another node has, no address found) stop the agent.

use std::net::IpAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use brindle_datastore::{Client, Datastore, DatastoreConfig, Origin, ResourceError, retry_on_conflict};
use brindle_ipam::Ipam;
use brindle_ipam::tunnel::TunnelKind;
use brindle_model::numorstring::AsNumber;
use brindle_model::resources::{
    ClusterInformation, ClusterInformationSpec, FelixConfiguration, FelixConfigurationSpec, IPPool, Node,
    NodeBgpSpec,
};
use brindle_model::{CalicoResource, Kind, ObjectMeta, Resource};
use ipnet::{IpNet, Ipv4Net, Ipv6Net};

use crate::autodetect;
use crate::config::{AgentConfig, IpSetting};
use crate::error::{Error, Result};
use crate::nodename;

/// The Calico version Brindle reports in ClusterInformation.
pub fn calico_version() -> String {
    format!("v{}-brindle", env!("CARGO_PKG_VERSION"))
}

/// Compare-and-swap rounds before a read-modify-write gives up.
const CAS_ATTEMPTS: usize = 20;

/// A datastore failure: retried by the caller.
fn ds_err(what: &str, e: impl std::fmt::Display) -> Error {
    Error::Datastore(format!("{what}: {e}"))
}

/// A resource error: the store's own failures are retried, the rest (validation) are not.
fn res_err(what: &str, e: ResourceError) -> Error {
    match e {
        ResourceError::Invalid(v) => Error::Startup(format!("{what}: {v}")),
        e => ds_err(what, e),
    }
}

/// A lost race of a read-modify-write: a stale `resourceVersion`, or a create that found the
/// object made meanwhile. Both mean "read again".
fn lost_race(e: ResourceError) -> ResourceError {
    match e {
        ResourceError::OutOfDate { given, .. } => ResourceError::Conflict(given),
        ResourceError::AlreadyExists(id) => ResourceError::Conflict(id),
        e => e,
    }
}

/// Reads the `T` named `name`, lets `f` change it (or make it, from `None`), and writes it back
/// when it changed, under compare-and-swap, re-reading on a lost race. `f` returns `None` to
/// leave the object alone. `create` and `update` are the client's writers for `T`.
fn upsert<T: CalicoResource + PartialEq>(
    client: &Client,
    name: &str,
    unchecked: bool,
    f: impl Fn(Option<T>) -> Option<T>,
) -> std::result::Result<(), ResourceError> {
    retry_on_conflict(CAS_ATTEMPTS, || {
        let current = client.get(T::RESOURCE_KIND, "", name)?.and_then(T::from_resource);
        let Some(new) = f(current.clone()) else {
            return Ok(());
        };
        if current.as_ref() == Some(&new) {
            return Ok(());
        }
        let r = new.into_resource();
        let written = match (current.is_some(), unchecked) {
            (false, false) => client.create(&r),
            (false, true) => client.create_unchecked(&r),
            (true, false) => client.update(&r),
            (true, true) => client.update_unchecked(&r),
        };
        written.map(drop).map_err(lost_race)
    })
}

/// What startup found and did.
#[derive(Debug, Clone)]
pub struct Started {
    pub node: String,
    pub ipv4: Option<Ipv4Net>,
    pub ipv6: Option<Ipv6Net>,
    pub ipip_tunnel: Option<IpAddr>,
    pub vxlan_tunnel: Option<IpAddr>,
    pub vxlan_v6_tunnel: Option<IpAddr>,
}

/// The node's name (`NODENAME`, the nodename file, `HOSTNAME`, the hostname).
pub fn node_name(cfg: &AgentConfig) -> Result<String> {
    nodename::resolve(
        cfg.nodename.as_deref(),
        &cfg.nodename_file(),
        cfg.hostname.as_deref(),
    )
}

/// Runs startup for node `name` against `ds` in the calling thread's network namespace (the
/// node's). Safe to run again after a failure: every step checks before it writes.
pub fn run(cfg: &AgentConfig, ds: &Arc<dyn Datastore>, name: &str) -> Result<Started> {
    let client = Client::lenient(ds.clone());
    let existing = client
        .get(Kind::Node, "", name)
        .map_err(|e| res_err(&format!("read Node {name}"), e))?
        .and_then(Node::from_resource);
    let existing_v4 = existing.as_ref().and_then(Node::bgp_ipv4);
    let ifaces = autodetect::interfaces()?;
    let reach = match &cfg.ip_method {
        crate::config::AutodetectMethod::CanReach(dest) if cfg.ip == IpSetting::Autodetect => {
            Some(autodetect::reach(dest)?)
        }
        _ => None,
    };
    let detected = match autodetect::resolve_v4(&cfg.ip, &cfg.ip_method, existing_v4, &ifaces, reach) {
        // `IP` left to autodetection on a node with only IPv6: an IPv6-only node, as if
        // `IP=none` had been given (calico-node would stop; a v6-only host has nothing to find).
        Err(Error::Startup(e)) if cfg.ip6 != IpSetting::None => {
            tracing::warn!(node = %name, error = %e, "no IPv4 address: an IPv6-only node (IP=none says so)");
            None
        }
        r => r?,
    };
    let ipv4 = detected.or(existing_v4);
    let existing_v6 = existing.as_ref().and_then(Node::bgp_ipv6);
    let reach6 = match &cfg.ip6_method {
        crate::config::AutodetectMethod::CanReach(dest) if cfg.ip6 == IpSetting::Autodetect => {
            Some(autodetect::reach(dest)?)
        }
        _ => None,
    };
    let ipv6 = autodetect::resolve_v6(&cfg.ip6, &cfg.ip6_method, existing_v6, &ifaces, reach6)?;
    if ipv4.is_none() && ipv6.is_none() {
        tracing::warn!(node = %name, "node has neither an IPv4 nor an IPv6 address (IP=none, no IP6): no BGP");
    }
    if let Some(ip) = ipv4 {
        tracing::info!(node = %name, address = %ip, "node BGP address");
    }
    if let Some(ip) = ipv6 {
        tracing::info!(node = %name, address = %ip, "node BGP IPv6 address");
    }
    check_conflict(
        &client,
        name,
        ipv4.map(|n| IpAddr::V4(n.addr())),
        ipv6.map(|n| IpAddr::V6(n.addr())),
    )?;
    let as_number = cfg.as_number;
    upsert::<Node>(&client, name, false, |old| {
        let mut n = old.unwrap_or_else(|| Node::new(ObjectMeta::named(name), Default::default()));
        let mut bgp = n.spec.bgp.take().unwrap_or_default();
        if let Some(ip) = detected {
            bgp.ipv4_address = ip.to_string();
        }
        // As calico-node: the IPv6 address with its prefix length, or none.
        bgp.ipv6_address = ipv6.map(|ip| ip.to_string()).unwrap_or_default();
        if let Some(asn) = as_number {
            bgp.as_number = Some(AsNumber(asn));
        }
        n.spec.bgp = (bgp != NodeBgpSpec::default()).then_some(bgp);
        Some(n)
    })
    .map_err(|e| res_err(&format!("register Node {name}"), e))?;
    ensure_defaults(cfg, &client, name, ipv6.is_some())?;
    // The built-in tiers (kube-admin, default, kube-baseline), as calico-node's
    // EnsureInitialized creates them: policies in the default tier need it.
    client
        .ensure_builtin_tiers()
        .map_err(|e| res_err("creating the built-in tiers", e))?;
    let ipam = Ipam::new(ds.clone());
    let tunnel = |kind: TunnelKind, dev: &str| {
        ipam.ensure_tunnel_address(name, kind).map_err(|e| match e {
            brindle_ipam::IpamError::Datastore(_) | brindle_ipam::IpamError::MaxRetries { .. } => {
                ds_err(&format!("tunnel address of {name} ({dev})"), e)
            }
            e => Error::Startup(format!("tunnel address of {name} ({dev}): {e}")),
        })
    };
    // A tunnel address only for a family the node has an address of: an IPv6-only node has
    // no tunl0 nor vxlan.calico to give one to, an IPv4-only node no vxlan-v6.calico.
    let v6_only = ipv4.is_none() && ipv6.is_some();
    let (ipip_tunnel, vxlan_tunnel) = if v6_only {
        (None, None)
    } else {
        (
            tunnel(TunnelKind::Ipip, "tunl0")?,
            tunnel(TunnelKind::Vxlan, "vxlan.calico")?,
        )
    };
    let vxlan_v6_tunnel = match ipv6 {
        Some(_) => tunnel(TunnelKind::VxlanV6, "vxlan-v6.calico")?,
        None => None,
    };
    // Last, as calico-node: the nodename file says startup is complete (bird-ready uses its mtime).
    nodename::write_file(&cfg.nodename_file(), name)?;
    Ok(Started {
        node: name.to_string(),
        ipv4,
        ipv6,
        ipip_tunnel,
        vxlan_tunnel,
        vxlan_v6_tunnel,
    })
}

/// Logs the rows of a listing that do not decode (they are left out, not fatal).
fn warn_undecodable(rows: &[brindle_datastore::client::Undecodable]) {
    for u in rows {
        tracing::warn!(key = %u.key, error = %u.error, "{} does not decode; left out", u.identifier);
    }
}

/// Refuses an address (of either family) another Node already has (Calico's wording).
fn check_conflict(client: &Client, me: &str, v4: Option<IpAddr>, v6: Option<IpAddr>) -> Result<()> {
    if v4.is_none() && v6.is_none() {
        return Ok(());
    }
    let listing = client
        .list(Kind::Node, None)
        .map_err(|e| res_err("list Nodes", e))?;
    warn_undecodable(&listing.undecodable);
    for n in listing.items.into_iter().filter_map(Node::from_resource) {
        if n.metadata.name == me {
            continue;
        }
        if let Some(ip) = v4
            && n.bgp_ipv4().map(|t| IpAddr::V4(t.addr())) == Some(ip)
        {
            return Err(Error::Startup(format!(
                "Calico node '{}' is already using the IPv4 address {ip}",
                n.metadata.name
            )));
        }
        if let Some(ip) = v6
            && n.bgp_ipv6().map(|t| IpAddr::V6(t.addr())) == Some(ip)
        {
            return Err(Error::Startup(format!(
                "Calico node '{}' is already using the IPv6 address {ip}",
                n.metadata.name
            )));
        }
    }
    Ok(())
}

/// ClusterInformation `default`, FelixConfiguration `default` and `node.<name>`, and the
/// default pool when configured and no IPv4 pool exists.
fn ensure_defaults(cfg: &AgentConfig, client: &Client, name: &str, has_v6: bool) -> Result<()> {
    upsert::<ClusterInformation>(client, "default", true, |old| {
        let mut c = old.unwrap_or_else(|| {
            ClusterInformation::new(
                ObjectMeta::named("default"),
                ClusterInformationSpec {
                    cluster_guid: brindle_datastore::client::new_uid().replace('-', ""),
                    ..Default::default()
                },
            )
        });
        c.spec.cluster_type = cfg.cluster_type.clone();
        c.spec.calico_version = calico_version();
        c.spec.datastore_ready.get_or_insert(true);
        Some(c)
    })
    .map_err(|e| res_err("ClusterInformation default", e))?;
    let felix = |name: &str, spec: FelixConfigurationSpec| {
        upsert::<FelixConfiguration>(client, name, false, |old| match old {
            Some(_) => None,
            None => Some(FelixConfiguration::new(ObjectMeta::named(name), spec.clone())),
        })
        .map_err(|e| res_err(&format!("FelixConfiguration {name}"), e))
    };
    felix(
        "default",
        FelixConfigurationSpec {
            log_severity_screen: "Info".into(),
            reporting_interval: Some(brindle_model::duration::GoDuration(0)),
            ..Default::default()
        },
    )?;
    felix(
        &format!("node.{name}"),
        FelixConfigurationSpec {
            default_endpoint_to_host_action: "Return".into(),
            ..Default::default()
        },
    )?;
    let v6_pool = cfg.default_pool_v6.as_ref().filter(|_| has_v6);
    if cfg.default_pool.is_none() && v6_pool.is_none() {
        return Ok(());
    }
    let pools = client
        .list(Kind::IPPool, None)
        .map_err(|e| res_err("list IPPools", e))?;
    warn_undecodable(&pools.undecodable);
    // A pool this version cannot read may be of either family: no default pool over it.
    let has = |v4: bool| {
        !pools.undecodable.is_empty()
            || pools
                .items
                .iter()
                .filter_map(|r| match r {
                    Resource::IPPool(p) => p.spec.network(),
                    _ => None,
                })
                .any(|n| matches!(n, IpNet::V4(_)) == v4)
    };
    if let Some(pool) = v6_pool
        && !has(false)
    {
        let mut pool = pool.clone();
        if pool.spec.cidr.is_empty() {
            pool.spec.cidr = crate::pools::ula_48(random5()).to_string();
        }
        tracing::info!(pool = %pool.metadata.name, cidr = %pool.spec.cidr, "creating the default IPv6 pool");
        upsert::<IPPool>(client, &pool.metadata.name, false, |old| {
            old.is_none().then(|| pool.clone())
        })
        .map_err(|e| res_err(&format!("default IPPool {}", pool.metadata.name), e))?;
    }
    if let Some(pool) = &cfg.default_pool
        && !has(true)
    {
        tracing::info!(pool = %pool.metadata.name, cidr = %pool.spec.cidr, "creating the default IPv4 pool");
        upsert::<IPPool>(client, &pool.metadata.name, false, |old| {
            old.is_none().then(|| pool.clone())
        })
        .map_err(|e| res_err(&format!("default IPPool {}", pool.metadata.name), e))?;
    }
    Ok(())
}

/// Five random bytes (the random part of a ULA /48), from the kernel.
fn random5() -> [u8; 5] {
    use std::io::Read;
    let mut b = [0u8; 5];
    if std::fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut b))
        .is_err()
    {
        // No /dev/urandom: the time's nanoseconds still make clashes unlikely.
        let t = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0);
        b.copy_from_slice(&t.to_le_bytes()[..5]);
    }
    b
}

/// What the main loop needs once startup is done.
pub struct Ready {
    pub ds: Arc<dyn Datastore>,
    pub started: Started,
    /// The MTU of the interface holding the node's address.
    pub host_mtu: u32,
}

impl std::fmt::Debug for Ready {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Ready")
            .field("ds", &self.ds.describe())
            .field("started", &self.started)
            .field("host_mtu", &self.host_mtu)
            .finish()
    }
}

/// The datastore the agent opens, and where its settings came from (flags, calicoctl's file,
/// the environment) when the caller knows: a failure to open it then says why that store was
/// chosen (`… (path from environment variable BRINDLE_DATASTORE_PATH)`).
#[derive(Debug, Clone)]
pub struct DatastoreChoice {
    pub config: DatastoreConfig,
    pub origin: Option<Origin>,
}

impl From<DatastoreConfig> for DatastoreChoice {
    fn from(config: DatastoreConfig) -> DatastoreChoice {
        DatastoreChoice { config, origin: None }
    }
}

impl DatastoreChoice {
    /// Opens the store; the error names it and, when known, its settings' origin.
    fn open(&self) -> Result<Arc<dyn Datastore>> {
        brindle_datastore::open(&self.config).map_err(|e| match &self.origin {
            Some(o) => {
                let sqlite = matches!(self.config, DatastoreConfig::Sqlite(_));
                ds_err("open", format!("{e} ({})", o.explain(sqlite)))
            }
            None => ds_err("open", e),
        })
    }
}

/// Opens the datastore (when `ds` holds none yet) and runs startup once.
pub fn attempt(
    cfg: &AgentConfig,
    ds_cfg: &DatastoreChoice,
    ds: &mut Option<Arc<dyn Datastore>>,
    name: &str,
) -> Result<Ready> {
    let store = match ds {
        Some(s) => s.clone(),
        None => {
            let s = ds_cfg.open()?;
            *ds = Some(s.clone());
            s
        }
    };
    let started = run(cfg, &store, name)?;
    let addr = (started.ipv4.map(|n| IpAddr::V4(n.addr()))).or(started.ipv6.map(|n| IpAddr::V6(n.addr())));
    let host_mtu = host_mtu(addr)?;
    Ok(Ready {
        ds: store,
        started,
        host_mtu,
    })
}

/// The MTU of the interface holding the node's address (Felix's host MTU; 1500 without one).
fn host_mtu(ip: Option<IpAddr>) -> Result<u32> {
    let Some(ip) = ip else { return Ok(1500) };
    let mut h = brindle_netlink::Handle::new()?;
    let idx = h
        .addresses(None)?
        .into_iter()
        .find(|a| a.net.addr() == ip)
        .map(|a| a.index);
    Ok(match idx {
        Some(i) => h.link_by_index(i)?.map(|l| l.mtu).unwrap_or(1500),
        None => 1500,
    })
}

/// What the startup retry thread reports.
#[derive(Debug)]
pub enum Progress {
    /// An attempt failed on the datastore; the next one follows after a backoff.
    Retrying(String),
    /// Startup is done, or failed for good.
    Done(Box<Result<Ready>>),
}

/// First and longest wait between startup attempts.
const BACKOFF: (Duration, Duration) = (Duration::from_millis(250), Duration::from_secs(5));

/// Retries [`attempt`] on a thread of its own (the datastore is synchronous) with exponential
/// backoff while it fails on the datastore; reports each failure and the end to `tx`. Stops
/// when `tx`'s receiver is gone.
pub fn spawn_retries(
    cfg: AgentConfig,
    ds_cfg: DatastoreChoice,
    name: String,
    tx: tokio::sync::mpsc::Sender<Progress>,
) -> std::thread::JoinHandle<()> {
    std::thread::Builder::new()
        .name("startup".into())
        .spawn(move || {
            let mut ds = None;
            let mut backoff = BACKOFF.0;
            loop {
                let deadline = Instant::now() + backoff;
                while Instant::now() < deadline {
                    if tx.is_closed() {
                        return;
                    }
                    std::thread::sleep(Duration::from_millis(50).min(backoff));
                }
                backoff = (backoff * 2).min(BACKOFF.1);
                let msg = match attempt(&cfg, &ds_cfg, &mut ds, &name) {
                    Err(Error::Datastore(e)) => {
                        tracing::warn!(error = %e, retry_in = ?backoff, "startup: datastore unavailable; retrying");
                        Progress::Retrying(e)
                    }
                    done => Progress::Done(Box::new(done)),
                };
                let last = matches!(msg, Progress::Done(_));
                if tx.blocking_send(msg).is_err() || last {
                    return;
                }
            }
        })
        .expect("spawn startup thread")
}
