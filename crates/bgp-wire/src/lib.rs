//! BGP-4 wire codec: OPEN, UPDATE, NOTIFICATION, KEEPALIVE, ROUTE-REFRESH and capabilities (pure).
//!
//! Implements the message formats of RFC 4271 (BGP-4), RFC 4760 (multiprotocol, IPv4/IPv6
//! unicast), RFC 2545 (IPv6 next hops), RFC 6793 (4-octet AS, AS_TRANS, AS4_PATH), RFC 2918 and
//! RFC 7313 (route refresh), RFC 4724 (graceful restart capability, End-of-RIB), RFC 7911
//! (ADD-PATH), RFC 8654 (extended messages), RFC 9072 (extended optional parameters, receive),
//! RFC 1997/8092 (communities, large communities), RFC 4456 (ORIGINATOR_ID, CLUSTER_LIST), RFC
//! 4486 (Cease subcodes), RFC 6608 (FSM error subcodes). Decode errors carry the NOTIFICATION of
//! RFC 4271 §6 and the RFC 7606 action.
//!
//! Module map:
//! - [`header`]: marker/length/type, stream framing ([`header::frame_len`]); a framed message
//!   decodes with [`Message::decode_framed`] without being framed again.
//! - [`message`]: [`Message`] (decoded, borrowing), [`OutMessage`] (to send), [`Ctx`] (what the
//!   session negotiated), [`RouteRefresh`].
//! - [`open`]: [`Open`]; [`capability`]: [`Capability`] and friends.
//! - [`update`]: [`Update`] (lazy NLRI), [`UpdateMsg`] (owned), [`UpdatePacker`] (bulk encode).
//! - [`detached`]: [`DetachedUpdate`], an [`Update`] as offsets into its buffer, to hand a
//!   decoded UPDATE to another task with the bytes and walk it there without decoding again.
//! - [`attrs`]: [`PathAttrs`] and the attribute codec; [`aspath`]: [`AsPath`].
//! - [`nlri`]: prefix encoding and the allocation-free [`NlriIter`].
//! - [`notification`]: [`Notification`], code/subcode constants, BIRD's error texts.
//! - [`error`]: [`DecodeError`], [`ErrorAction`]; [`family`]: [`Family`].
//!
//! Decoding never allocates per prefix: an UPDATE is checked once, then its prefixes are walked
//! over the message bytes.

#![forbid(unsafe_code)]

pub mod aspath;
pub mod attrs;
pub mod capability;
pub mod detached;
pub mod error;
pub mod family;
pub mod header;
pub mod message;
pub mod nlri;
pub mod notification;
pub mod open;
pub mod update;

pub use aspath::{AsPath, AsSegment};
pub use attrs::{MpNextHop, MpReach, MpUnreach, Origin, PathAttrs, RawAttr};
pub use capability::{AddPathMode, Capability, GracefulRestart, GracefulRestartFamily};
pub use detached::DetachedUpdate;
pub use error::{AttrRef, DecodeError, ErrorAction};
pub use family::{AddPathFamilies, Family};
pub use message::{Ctx, Message, OutMessage, RouteRefresh};
pub use nlri::{Nlri, NlriIter};
pub use notification::Notification;
pub use open::{AS_TRANS, Open};
pub use update::{OwnedMpReach, Update, UpdateMsg, UpdatePacker};
