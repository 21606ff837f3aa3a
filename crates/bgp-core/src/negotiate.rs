//! Our OPEN, and the checks of the peer's OPEN (RFC 4271 §6.2, RFC 6793 §4, RFC 6286, RFC 5492)
//! with the NOTIFICATION each failure gets; the result of both OPENs ([`Negotiated`]).

use std::net::Ipv4Addr;

use brindle_bgp_wire::capability::{CAP_ENHANCED_ROUTE_REFRESH, CAP_MULTIPROTOCOL, CAP_ROUTE_REFRESH};
use brindle_bgp_wire::notification::{code, open_sub};
use brindle_bgp_wire::{
    AS_TRANS, Capability, Ctx, Family, GracefulRestart, GracefulRestartFamily, Notification, Open,
};

use crate::config::SessionConfig;

/// What the two OPENs agreed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Negotiated {
    pub remote_id: Ipv4Addr,
    pub remote_as: u32,
    /// min(ours, theirs); 0 = no hold timer and no keepalives.
    pub hold_time: u16,
    /// Seconds between our KEEPALIVEs (0 = none).
    pub keepalive: u16,
    pub ctx: Ctx,
    /// Families both sides announced.
    pub families: Vec<Family>,
    pub route_refresh: bool,
    pub enhanced_route_refresh: bool,
    /// The peer's graceful restart capability, if any (RFC 4724).
    pub peer_graceful_restart: Option<GracefulRestart>,
    /// Both sides advertised graceful restart: a lost session keeps the peer's routes.
    pub graceful_restart: bool,
    /// Both sides set the N bit (RFC 8538): NOTIFICATIONs other than Hard Reset keep routes,
    /// and a stop that must flush them sends Hard Reset.
    pub gr_notification: bool,
    pub remote_open: Open,
}

/// The OPEN we send.
pub fn local_open(cfg: &SessionConfig) -> Open {
    let mut caps: Vec<Capability> = cfg
        .families
        .iter()
        .map(|f| Capability::MultiProtocol(*f))
        .collect();
    // Enhanced route refresh (RFC 7313) is not advertised: answering it needs BoRR/EoRR
    // demarcation, which the speaker does not send.
    caps.push(Capability::RouteRefresh);
    if let Some(t) = cfg.graceful_restart {
        caps.push(Capability::GracefulRestart(GracefulRestart {
            restarting: cfg.restarting,
            notification: cfg.gr_notification,
            restart_time: t.min(4095),
            families: cfg
                .families
                .iter()
                .map(|f| GracefulRestartFamily {
                    family: *f,
                    forwarding_preserved: cfg.forwarding_preserved,
                })
                .collect(),
        }));
    }
    caps.push(Capability::FourOctetAs(cfg.local_as));
    Open::new(cfg.local_as, cfg.hold_time, cfg.router_id, caps)
}

fn open_error(subcode: u8, data: Vec<u8>) -> Notification {
    Notification::new(code::OPEN_MESSAGE, subcode, data)
}

/// Checks the peer's OPEN against the configuration and our OPEN.
pub fn check_open(cfg: &SessionConfig, local: &Open, remote: &Open) -> Result<Negotiated, Notification> {
    if remote.version != 4 {
        // Data: the largest version we support (RFC 4271 §6.2).
        return Err(open_error(open_sub::UNSUPPORTED_VERSION, vec![0, 4]));
    }
    // RFC 6793 §4.2: with the capability, the 2-octet field of a large AS must be AS_TRANS.
    let asn = remote.asn();
    let two_octet_ok = match remote.four_octet_as() {
        Some(a) if a > 0xffff => remote.my_as == AS_TRANS,
        Some(a) => u32::from(remote.my_as) == a,
        None => true,
    };
    if asn != cfg.remote_as || !two_octet_ok {
        return Err(open_error(open_sub::BAD_PEER_AS, Vec::new()));
    }
    let id = remote.bgp_id;
    if id.is_unspecified() || (cfg.is_ibgp() && id == cfg.router_id) {
        return Err(open_error(open_sub::BAD_BGP_IDENTIFIER, Vec::new()));
    }
    if remote.hold_time == 1 || remote.hold_time == 2 {
        return Err(open_error(open_sub::UNACCEPTABLE_HOLD_TIME, Vec::new()));
    }
    let theirs = remote.families();
    let families: Vec<Family> = local
        .families()
        .into_iter()
        .filter(|f| theirs.contains(f))
        .collect();
    if families.is_empty() {
        // RFC 5492 §3: Unsupported Capability, data = the capabilities we would need.
        let mut data = Vec::new();
        for f in local.families() {
            data.extend_from_slice(&[CAP_MULTIPROTOCOL, 4]);
            data.extend_from_slice(&f.afi.to_be_bytes());
            data.extend_from_slice(&[0, f.safi]);
        }
        return Err(open_error(open_sub::UNSUPPORTED_CAPABILITY, data));
    }
    let hold_time = local.hold_time.min(remote.hold_time);
    let keepalive = if hold_time == 0 {
        0
    } else {
        let k = cfg.keepalive.unwrap_or(hold_time / 3);
        k.clamp(1, (hold_time / 3).max(1))
    };
    Ok(Negotiated {
        remote_id: id,
        remote_as: asn,
        hold_time,
        keepalive,
        ctx: Ctx::negotiated(local, remote),
        families,
        route_refresh: local.has(CAP_ROUTE_REFRESH) && remote.has(CAP_ROUTE_REFRESH),
        enhanced_route_refresh: local.has(CAP_ENHANCED_ROUTE_REFRESH)
            && remote.has(CAP_ENHANCED_ROUTE_REFRESH),
        peer_graceful_restart: remote.graceful_restart().cloned(),
        graceful_restart: local.graceful_restart().is_some() && remote.graceful_restart().is_some(),
        gr_notification: local.graceful_restart().is_some_and(|g| g.notification)
            && remote.graceful_restart().is_some_and(|g| g.notification),
        remote_open: remote.clone(),
    })
}
