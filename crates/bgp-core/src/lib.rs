//! BGP session state machine and RIB: sans-IO, inputs plus now to outputs (pure).
//!
//! Implements the session FSM of RFC 4271 §8 (with collision detection, §6.8), the OPEN checks
//! of RFC 4271 §6.2 / RFC 6793 / RFC 6286 / RFC 5492, the decision process of RFC 4271 §9.1
//! (RFC 4456 §9 tie-breaks), Adj-RIB-Out and export rules of RFC 4271 §9.2 with Calico's export
//! policy, route reflection (RFC 4456), graceful restart in both roles (RFC 4724, RFC 8538),
//! the RFC 7606 error handling of received UPDATEs (treat-as-withdraw in the RIB), IPv6 unicast
//! (RFC 4760, RFC 2545 next hops), Calico's BGPFilter and prefix-advertisement communities
//! (RFC 1997, RFC 8092), and BIRD's status texts (what `calicoctl node status` shows).
//!
//! Module map:
//! - [`config`]: [`SessionConfig`] (Calico's timer defaults), [`PeerType`], [`mesh_passive`].
//! - [`event`]: [`Input`], [`Output`], [`Timer`], [`ConnId`].
//! - [`session`]: [`Session`], the FSM: `handle(input, now) -> Vec<Output>`.
//! - [`negotiate`]: our OPEN, checks of the peer's, [`Negotiated`].
//! - [`status`]: BIRD's protocol state and info text ([`ProtoState`], [`BgpState`]).
//! - [`rib`]: [`Rib`] (Adj-RIB-In + Loc-RIB, best-route changes); `decision` the comparison;
//!   `attr_store` interned attribute sets; `prefix_key` compact keys.
//! - [`export`]: [`ExportPolicy`], [`ExportTarget`], [`NextHopMode`], [`Exporter`],
//!   [`AdjRibOut`]: what each peer gets, route reflection included.
//! - [`graceful`]: graceful restart bookkeeping: [`Helper`] (receiving speaker, per peer) and
//!   [`Deferral`] (restarting speaker's route-selection deferral).
//! - [`filter`]: Calico's BGPFilter evaluated as BIRD runs confd's rendering ([`BgpFilter`],
//!   [`filter::evaluate`]); `filter::from_model` reads `BGPFilter` resources. Import filtering
//!   is in the RIB (`rib/import`: rejected routes kept aside, [`Rib::set_import_filters`]
//!   re-applies), export filtering in [`export`].
//! - [`communities`]: [`Community`], [`CommunitySet`], [`PrefixAdvertisements`] (Calico's
//!   `prefixAdvertisements`: which communities a prefix is announced with);
//!   [`Rib::originate_with`] originates with them ([`LocalRoute`]).
//!
//! Nothing here reads a clock, opens a socket or spawns a task: the speaker drives it.

#![forbid(unsafe_code)]

mod attr_store;
pub mod communities;
pub mod config;
mod decision;
pub mod event;
pub mod export;
pub mod filter;
pub mod graceful;
pub mod negotiate;
mod prefix_key;
pub mod rib;
pub mod session;
pub mod status;

pub use attr_store::RouteAttrs;
pub use communities::{Community, CommunitySet, PrefixAdvertisements};
pub use config::{PeerType, SessionConfig, mesh_passive};
pub use event::{ConnId, Input, Output, Timer};
pub use export::{AdjRibOut, ExportPolicy, ExportTarget, Exporter, NextHopMode, OutAttrs, export_route};
pub use filter::{BgpFilter, Direction, Verdict};
pub use graceful::{Deferral, GrAction, Helper};
pub use negotiate::Negotiated;
pub use rib::{BestRoute, LocalRoute, PeerId, PeerInfo, Rib, RouteChange, UpdateStats};
pub use session::{Session, SessionStatus};
pub use status::{BgpState, LastError, ProtoState};
