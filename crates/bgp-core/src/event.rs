//! Inputs to and outputs of the session state machine (RFC 4271 §8.1 events, as values).

use std::time::Duration;

use brindle_bgp_wire::{DecodeError, Family, Message, OutMessage};

use crate::negotiate::Negotiated;
use crate::status::BgpState;

/// Identifies one TCP connection of a session (the driver picks them, unique per session).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ConnId(pub u64);

/// Timers the session asks the driver to run (RFC 4271 §8 and BIRD's startup delay).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Timer {
    /// Connect delay / ConnectRetryTimer: when it fires, an active session connects.
    ConnectRetry,
    /// Error wait before the session starts again (BIRD `error wait time`, RFC 4271
    /// IdleHoldTimer).
    IdleHold,
    HoldTimer(ConnId),
    Keepalive(ConnId),
}

#[derive(Debug)]
pub enum Input<'a> {
    /// ManualStart (event 1), or ManualStart_with_PassiveTcpEstablishment (event 4) when the
    /// configuration says passive.
    Start,
    /// ManualStop (event 2): Cease with this subcode (2 administrative shutdown, 3 peer
    /// de-configured, 6 other configuration change); Cease/Hard Reset carrying it when both
    /// sides support RFC 8538, so the peer drops our routes.
    Stop {
        cease_subcode: u8,
    },
    /// Stop without a NOTIFICATION: connections just close, so a peer with graceful restart
    /// keeps our routes as stale until we are back (a planned restart of this speaker).
    Abort,
    /// Our connect succeeded (event 16/17).
    Connected(ConnId),
    /// The peer connected to us (event 14/15). Refused while disabled, during the error wait
    /// and while another connection of the peer's is in progress; accepted alongside an
    /// Established one (a crossing connect loses to it on its OPEN, a restarted peer's OPEN
    /// replaces it).
    Accepted(ConnId),
    /// Our connect failed (event 18), with the OS error text (BIRD shows it after `Socket: `).
    ConnectFailed {
        conn: ConnId,
        error: String,
    },
    /// The connection closed or failed (event 18); `None` for an orderly close by the peer.
    Closed {
        conn: ConnId,
        error: Option<String>,
    },
    /// A whole message arrived on `conn`.
    Message {
        conn: ConnId,
        msg: &'a Message<'a>,
    },
    /// Bytes arrived that do not decode (header, OPEN, UPDATE errors: events 21, 22, 28).
    DecodeError {
        conn: ConnId,
        error: DecodeError,
    },
    TimerExpired(Timer),
}

// Outputs live for one `handle` call; boxing the big message variant would buy nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Clone, Debug, PartialEq)]
pub enum Output {
    /// Open a TCP connection to the peer and report `Connected`/`ConnectFailed` with this id.
    Connect(ConnId),
    Send {
        conn: ConnId,
        msg: OutMessage,
    },
    /// Close the connection after writing everything queued on it.
    Close(ConnId),
    SetTimer {
        timer: Timer,
        after: Duration,
    },
    CancelTimer(Timer),
    /// The session's (BIRD-visible) state changed.
    StateChanged {
        from: BgpState,
        to: BgpState,
    },
    /// The session reached Established on `conn`: the speaker sends its Adj-RIB-Out and
    /// End-of-RIB for each family.
    Established {
        conn: ConnId,
        negotiated: Box<Negotiated>,
    },
    /// The Established session went down: the RIB must drop the peer's routes, or with
    /// `graceful` (RFC 4724 §4.2: the TCP session failed, or the peer connected again with the
    /// Restart State bit;
    /// RFC 8538: a NOTIFICATION other than Hard Reset) keep them as stale if the peer
    /// advertised graceful restart.
    Down {
        graceful: bool,
    },
    /// The UPDATE just passed in arrived in Established and was accepted: hand it to the RIB.
    DeliverUpdate {
        conn: ConnId,
    },
    /// The peer asked for our routes again (RFC 2918).
    RouteRefresh {
        family: Family,
        subtype: u8,
    },
}
