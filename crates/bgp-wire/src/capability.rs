//! Capabilities advertised in OPEN (RFC 5492): multiprotocol (RFC 4760), route refresh (RFC
//! 2918), extended message (RFC 8654), graceful restart (RFC 4724), 4-octet AS (RFC 6793),
//! ADD-PATH (RFC 7911), enhanced route refresh (RFC 7313). Unknown ones are kept verbatim.

use crate::family::Family;

pub const CAP_MULTIPROTOCOL: u8 = 1;
pub const CAP_ROUTE_REFRESH: u8 = 2;
pub const CAP_EXTENDED_MESSAGE: u8 = 6;
pub const CAP_GRACEFUL_RESTART: u8 = 64;
pub const CAP_FOUR_OCTET_AS: u8 = 65;
pub const CAP_ADD_PATH: u8 = 69;
pub const CAP_ENHANCED_ROUTE_REFRESH: u8 = 70;

/// ADD-PATH send/receive mode for one family (RFC 7911 §4).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct AddPathMode {
    pub receive: bool,
    pub send: bool,
}

/// One family in the graceful restart capability, with its forwarding-state bit (RFC 4724 §3).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct GracefulRestartFamily {
    pub family: Family,
    pub forwarding_preserved: bool,
}

/// The graceful restart capability (RFC 4724 §3; N bit from RFC 8538).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct GracefulRestart {
    /// R bit: the sender has restarted.
    pub restarting: bool,
    /// N bit (RFC 8538): graceful notification support.
    pub notification: bool,
    /// Restart time in seconds (12 bits).
    pub restart_time: u16,
    pub families: Vec<GracefulRestartFamily>,
}

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Capability {
    MultiProtocol(Family),
    RouteRefresh,
    ExtendedMessage,
    GracefulRestart(GracefulRestart),
    FourOctetAs(u32),
    AddPath(Vec<(Family, AddPathMode)>),
    EnhancedRouteRefresh,
    /// A capability this codec does not interpret, kept verbatim (RFC 5492 §3: ignore it).
    Unknown {
        code: u8,
        value: Vec<u8>,
    },
}

impl Capability {
    /// Decodes one capability value. A malformed known capability is kept as `Unknown`: RFC 5492
    /// gives no error for it, and BIRD treats it the same way.
    pub(crate) fn decode(code: u8, v: &[u8]) -> Capability {
        let unknown = || Capability::Unknown {
            code,
            value: v.to_vec(),
        };
        match code {
            CAP_MULTIPROTOCOL if v.len() == 4 => {
                Capability::MultiProtocol(Family::new(u16::from_be_bytes([v[0], v[1]]), v[3]))
            }
            CAP_ROUTE_REFRESH if v.is_empty() => Capability::RouteRefresh,
            CAP_EXTENDED_MESSAGE if v.is_empty() => Capability::ExtendedMessage,
            CAP_ENHANCED_ROUTE_REFRESH if v.is_empty() => Capability::EnhancedRouteRefresh,
            CAP_FOUR_OCTET_AS if v.len() == 4 => {
                Capability::FourOctetAs(u32::from_be_bytes([v[0], v[1], v[2], v[3]]))
            }
            CAP_GRACEFUL_RESTART if v.len() >= 2 && (v.len() - 2).is_multiple_of(4) => {
                let head = u16::from_be_bytes([v[0], v[1]]);
                let families = v[2..]
                    .chunks_exact(4)
                    .map(|c| GracefulRestartFamily {
                        family: Family::new(u16::from_be_bytes([c[0], c[1]]), c[2]),
                        forwarding_preserved: c[3] & 0x80 != 0,
                    })
                    .collect();
                Capability::GracefulRestart(GracefulRestart {
                    restarting: head & 0x8000 != 0,
                    notification: head & 0x4000 != 0,
                    restart_time: head & 0x0fff,
                    families,
                })
            }
            CAP_ADD_PATH if !v.is_empty() && v.len().is_multiple_of(4) => {
                let mut out = Vec::with_capacity(v.len() / 4);
                for c in v.chunks_exact(4) {
                    if c[3] == 0 || c[3] > 3 {
                        return unknown();
                    }
                    out.push((
                        Family::new(u16::from_be_bytes([c[0], c[1]]), c[2]),
                        AddPathMode {
                            receive: c[3] & 1 != 0,
                            send: c[3] & 2 != 0,
                        },
                    ));
                }
                Capability::AddPath(out)
            }
            _ => unknown(),
        }
    }

    pub fn code(&self) -> u8 {
        match self {
            Capability::MultiProtocol(_) => CAP_MULTIPROTOCOL,
            Capability::RouteRefresh => CAP_ROUTE_REFRESH,
            Capability::ExtendedMessage => CAP_EXTENDED_MESSAGE,
            Capability::GracefulRestart(_) => CAP_GRACEFUL_RESTART,
            Capability::FourOctetAs(_) => CAP_FOUR_OCTET_AS,
            Capability::AddPath(_) => CAP_ADD_PATH,
            Capability::EnhancedRouteRefresh => CAP_ENHANCED_ROUTE_REFRESH,
            Capability::Unknown { code, .. } => *code,
        }
    }

    /// Appends code, length and value.
    pub(crate) fn encode(&self, out: &mut Vec<u8>) {
        out.push(self.code());
        let len_at = out.len();
        out.push(0);
        match self {
            Capability::MultiProtocol(f) => {
                out.extend_from_slice(&f.afi.to_be_bytes());
                out.extend_from_slice(&[0, f.safi]);
            }
            Capability::RouteRefresh | Capability::ExtendedMessage | Capability::EnhancedRouteRefresh => {}
            Capability::GracefulRestart(gr) => {
                let mut head = gr.restart_time & 0x0fff;
                if gr.restarting {
                    head |= 0x8000;
                }
                if gr.notification {
                    head |= 0x4000;
                }
                out.extend_from_slice(&head.to_be_bytes());
                for f in &gr.families {
                    out.extend_from_slice(&f.family.afi.to_be_bytes());
                    out.push(f.family.safi);
                    out.push(if f.forwarding_preserved { 0x80 } else { 0 });
                }
            }
            Capability::FourOctetAs(asn) => out.extend_from_slice(&asn.to_be_bytes()),
            Capability::AddPath(list) => {
                for (f, m) in list {
                    out.extend_from_slice(&f.afi.to_be_bytes());
                    out.push(f.safi);
                    out.push(u8::from(m.receive) | (u8::from(m.send) << 1));
                }
            }
            Capability::Unknown { value, .. } => out.extend_from_slice(value),
        }
        out[len_at] = (out.len() - len_at - 1) as u8;
    }
}
