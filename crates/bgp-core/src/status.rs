//! Per-peer status as BIRD shows it in `show protocols` (what calicoctl's `commands/node/status.go`
//! parses): protocol state (`down`/`start`/`up`), the time of its last change, and the info text
//! (`bgp_get_status`): `"%-14s%s%s"` of the session state description, the last error's class and
//! message.

use std::fmt;

use brindle_bgp_wire::Notification;

/// RFC 4271 §8.2.2 session states.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum BgpState {
    Idle,
    Connect,
    Active,
    OpenSent,
    OpenConfirm,
    Established,
}

impl BgpState {
    pub fn name(self) -> &'static str {
        match self {
            BgpState::Idle => "Idle",
            BgpState::Connect => "Connect",
            BgpState::Active => "Active",
            BgpState::OpenSent => "OpenSent",
            BgpState::OpenConfirm => "OpenConfirm",
            BgpState::Established => "Established",
        }
    }
}

/// BIRD's protocol state (`proto_state_name`), what `calicoctl node status` prints in STATE.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ProtoState {
    /// Disabled (stopped or not yet started).
    Down,
    /// Enabled, session not (yet) Established.
    Start,
    /// Established.
    Up,
}

impl fmt::Display for ProtoState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ProtoState::Down => "down",
            ProtoState::Start => "start",
            ProtoState::Up => "up",
        })
    }
}

/// The last error, classed as BIRD classes it (`bgp_err_classes`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum LastError {
    /// `Error: ` (BIRD's BE_MISC), e.g. `Error: Neighbor lost`.
    Misc(String),
    /// `Socket: ` plus strerror text or `Connection closed`.
    Socket(String),
    /// `Received: ` a NOTIFICATION from the peer.
    Received(Notification),
    /// `BGP Error: ` a NOTIFICATION we sent because of a protocol error.
    Sent(Notification),
    /// `Automatic shutdown: ` (e.g. route limit).
    AutoDown(String),
}

impl LastError {
    fn class(&self) -> &'static str {
        match self {
            LastError::Misc(_) => "Error: ",
            LastError::Socket(_) => "Socket: ",
            LastError::Received(_) => "Received: ",
            LastError::Sent(_) => "BGP Error: ",
            LastError::AutoDown(_) => "Automatic shutdown: ",
        }
    }

    fn message(&self) -> String {
        match self {
            LastError::Misc(s) | LastError::Socket(s) | LastError::AutoDown(s) => s.clone(),
            LastError::Received(n) | LastError::Sent(n) => n.description(),
        }
    }
}

impl fmt::Display for LastError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}{}", self.class(), self.message())
    }
}

/// BIRD's info column for a BGP protocol. `passive_idle` is BIRD's "Passive" case: an idle
/// passive session that is ready to accept.
pub fn info_text(proto: ProtoState, state: BgpState, passive_idle: bool, err: Option<&LastError>) -> String {
    let err = err.map(ToString::to_string).unwrap_or_default();
    if proto == ProtoState::Down {
        return err;
    }
    let dsc = if passive_idle { "Passive" } else { state.name() };
    // BIRD pads the description to 14 columns; trailing spaces of an error-less line are
    // dropped (calicoctl trims them too).
    format!("{dsc:<14}{err}").trim_end().to_string()
}

/// BIRD's `since` column (BIRD's `timeformat protocol`, "iso short"): `HH:MM:SS` when the change
/// was less than 20 hours before `now`, else `YYYY-MM-DD`. Rendered in UTC, as BIRD in a
/// calico-node container prints it.
pub fn format_since(since: std::time::SystemTime, now: std::time::SystemTime) -> String {
    let secs = since
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let recent = now
        .duration_since(since)
        .map_or(true, |d| d.as_secs() < 20 * 3600);
    let (days, rem) = (secs / 86_400, secs % 86_400);
    if recent {
        return format!("{:02}:{:02}:{:02}", rem / 3600, rem % 3600 / 60, rem % 60);
    }
    let (y, m, d) = civil_from_days(days as i64);
    format!("{y:04}-{m:02}-{d:02}")
}

/// Days since 1970-01-01 to a proleptic Gregorian date (Howard Hinnant's algorithm).
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (yoe + era * 400 + i64::from(m <= 2), m, d)
}
