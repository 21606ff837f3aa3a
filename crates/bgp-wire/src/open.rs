//! OPEN (RFC 4271 §4.2) with capabilities in optional parameters (RFC 5492), including the
//! extended optional parameters length of RFC 9072 on receive.

use std::net::Ipv4Addr;

use crate::capability::{AddPathMode, Capability, GracefulRestart};
use crate::error::DecodeError;
use crate::family::Family;
use crate::header;
use crate::notification::{code, open_sub};

/// AS_TRANS (RFC 6793 §9): the 2-octet stand-in for a 4-octet AS number.
pub const AS_TRANS: u16 = 23456;
const PARAM_CAPABILITIES: u8 = 2;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Open {
    pub version: u8,
    /// The 2-octet "My Autonomous System" field (AS_TRANS when the real AS needs 4 octets).
    pub my_as: u16,
    pub hold_time: u16,
    pub bgp_id: Ipv4Addr,
    pub capabilities: Vec<Capability>,
}

impl Open {
    /// An OPEN for `asn`, writing AS_TRANS in the 2-octet field when `asn` does not fit, and
    /// always advertising the 4-octet AS capability (RFC 6793 §3).
    pub fn new(asn: u32, hold_time: u16, bgp_id: Ipv4Addr, mut capabilities: Vec<Capability>) -> Open {
        if !capabilities
            .iter()
            .any(|c| matches!(c, Capability::FourOctetAs(_)))
        {
            capabilities.push(Capability::FourOctetAs(asn));
        }
        Open {
            version: 4,
            my_as: u16::try_from(asn).unwrap_or(AS_TRANS),
            hold_time,
            bgp_id,
            capabilities,
        }
    }

    /// The sender's AS: the 4-octet capability if present, else the 2-octet field.
    pub fn asn(&self) -> u32 {
        self.four_octet_as().unwrap_or(u32::from(self.my_as))
    }

    pub fn four_octet_as(&self) -> Option<u32> {
        self.capabilities.iter().find_map(|c| match c {
            Capability::FourOctetAs(a) => Some(*a),
            _ => None,
        })
    }

    /// Families from multiprotocol capabilities; a peer without any speaks IPv4 unicast only
    /// (RFC 4760 §8).
    pub fn families(&self) -> Vec<Family> {
        let fams: Vec<Family> = self
            .capabilities
            .iter()
            .filter_map(|c| match c {
                Capability::MultiProtocol(f) => Some(*f),
                _ => None,
            })
            .collect();
        if fams.is_empty() {
            vec![Family::IPV4_UNICAST]
        } else {
            fams
        }
    }

    pub fn has(&self, code: u8) -> bool {
        self.capabilities.iter().any(|c| c.code() == code)
    }

    /// The graceful restart capability; of several, the last (RFC 4724 §3).
    pub fn graceful_restart(&self) -> Option<&GracefulRestart> {
        self.capabilities.iter().rev().find_map(|c| match c {
            Capability::GracefulRestart(g) => Some(g),
            _ => None,
        })
    }

    pub fn add_path(&self, family: Family) -> Option<AddPathMode> {
        self.capabilities.iter().find_map(|c| match c {
            Capability::AddPath(list) => list.iter().find(|(f, _)| *f == family).map(|(_, m)| *m),
            _ => None,
        })
    }

    /// Decodes the body (after the header). Checks the structure only; semantic checks (version,
    /// AS, hold time, identifier) belong to the session, which knows what it expects.
    pub fn decode(body: &[u8]) -> Result<Open, DecodeError> {
        let total = (body.len() + header::HEADER_LEN) as u16;
        if body.len() < 10 {
            return Err(DecodeError::bad_length(total, "OPEN shorter than 29 bytes"));
        }
        let version = body[0];
        let my_as = u16::from_be_bytes([body[1], body[2]]);
        let hold_time = u16::from_be_bytes([body[3], body[4]]);
        let bgp_id = Ipv4Addr::new(body[5], body[6], body[7], body[8]);
        let mut params_len = body[9] as usize;
        let mut rest = &body[10..];
        // RFC 9072: a non-extended length of 255 with a first parameter type of 255 announces
        // a 2-octet length and 2-octet parameter lengths.
        let extended = params_len == 255 && rest.first() == Some(&255);
        if extended {
            if rest.len() < 3 {
                return Err(malformed_params());
            }
            params_len = u16::from_be_bytes([rest[1], rest[2]]) as usize;
            rest = &rest[3..];
        }
        if rest.len() != params_len {
            return Err(malformed_params());
        }
        let mut capabilities = Vec::new();
        while !rest.is_empty() {
            let hdr = if extended { 3 } else { 2 };
            if rest.len() < hdr {
                return Err(malformed_params());
            }
            let ptype = rest[0];
            let plen = if extended {
                u16::from_be_bytes([rest[1], rest[2]]) as usize
            } else {
                rest[1] as usize
            };
            if rest.len() < hdr + plen {
                return Err(malformed_params());
            }
            let value = &rest[hdr..hdr + plen];
            rest = &rest[hdr + plen..];
            if ptype != PARAM_CAPABILITIES {
                return Err(DecodeError::new(
                    code::OPEN_MESSAGE,
                    open_sub::UNSUPPORTED_OPTIONAL_PARAMETER,
                    Vec::new(),
                    "optional parameter other than capabilities",
                ));
            }
            let mut caps = value;
            while !caps.is_empty() {
                if caps.len() < 2 || caps.len() < 2 + caps[1] as usize {
                    return Err(malformed_params());
                }
                let (c, l) = (caps[0], caps[1] as usize);
                capabilities.push(Capability::decode(c, &caps[2..2 + l]));
                caps = &caps[2 + l..];
            }
        }
        Ok(Open {
            version,
            my_as,
            hold_time,
            bgp_id,
            capabilities,
        })
    }

    pub fn encode(&self, out: &mut Vec<u8>) {
        let start = header::begin(out, header::TYPE_OPEN);
        out.push(self.version);
        out.extend_from_slice(&self.my_as.to_be_bytes());
        out.extend_from_slice(&self.hold_time.to_be_bytes());
        out.extend_from_slice(&self.bgp_id.octets());
        let mut caps = Vec::new();
        for c in &self.capabilities {
            caps.push(PARAM_CAPABILITIES);
            let at = caps.len();
            caps.push(0);
            c.encode(&mut caps);
            caps[at] = (caps.len() - at - 1) as u8;
        }
        // One capability per parameter, as BIRD, FRR and GoBGP send them; all fit in 255 bytes
        // for the set we advertise.
        out.push(caps.len() as u8);
        out.extend_from_slice(&caps);
        header::finish(out, start);
    }
}

/// RFC 4271 §6.2 names no subcode for a malformed parameter block; BIRD and FRR send
/// "Unspecific" (subcode 0) for it, and so do we.
fn malformed_params() -> DecodeError {
    DecodeError::new(
        code::OPEN_MESSAGE,
        0,
        Vec::new(),
        "optional parameters overrun the OPEN",
    )
}
