//! Neighbours (permanent ARP entries) and bridge FDB entries (`bridge fdb … self permanent`).

use std::net::IpAddr;

use netlink_packet_core::{NLM_F_CREATE, NLM_F_REPLACE};
use netlink_packet_route::neighbour::{
    NeighbourAddress, NeighbourAttribute, NeighbourFlags, NeighbourMessage, NeighbourState,
};
use netlink_packet_route::{AddressFamily, RouteNetlinkMessage};

use crate::error::Result;
use crate::handle::Handle;
use crate::link::{Mac, mac_to_string};

/// A neighbour (ARP/NDP) entry, or an FDB entry (then `ip` is the remote VTEP, `dst`).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Neighbour {
    pub index: u32,
    pub ip: Option<IpAddr>,
    pub mac: Option<Mac>,
    pub permanent: bool,
}

fn neigh_addr(ip: IpAddr) -> NeighbourAddress {
    match ip {
        IpAddr::V4(v) => NeighbourAddress::Inet(v),
        IpAddr::V6(v) => NeighbourAddress::Inet6(v),
    }
}

fn family(ip: IpAddr) -> AddressFamily {
    match ip {
        IpAddr::V4(_) => AddressFamily::Inet,
        IpAddr::V6(_) => AddressFamily::Inet6,
    }
}

pub(crate) fn parse(m: &NeighbourMessage) -> Neighbour {
    let mut n = Neighbour {
        index: m.header.ifindex,
        ip: None,
        mac: None,
        permanent: m.header.state == NeighbourState::Permanent,
    };
    for a in &m.attributes {
        match a {
            NeighbourAttribute::Destination(NeighbourAddress::Inet(v)) => n.ip = Some(IpAddr::V4(*v)),
            NeighbourAttribute::Destination(NeighbourAddress::Inet6(v)) => n.ip = Some(IpAddr::V6(*v)),
            // FDB entries (AF_BRIDGE) carry the VTEP address undecoded: 4 bytes for VXLAN over
            // IPv4, 16 over IPv6.
            NeighbourAttribute::Destination(NeighbourAddress::Other(b)) => {
                if let Ok(v4) = <[u8; 4]>::try_from(b.as_slice()) {
                    n.ip = Some(IpAddr::from(v4));
                } else if let Ok(v6) = <[u8; 16]>::try_from(b.as_slice()) {
                    n.ip = Some(IpAddr::from(v6));
                }
            }
            NeighbourAttribute::LinkLayerAddress(b) if b.len() == 6 => {
                let mut mac = [0; 6];
                mac.copy_from_slice(b);
                n.mac = Some(mac);
            }
            _ => {}
        }
    }
    n
}

impl Handle {
    /// Neighbour entries (ARP/NDP) of link `index`, or of every link.
    pub fn neighbours(&mut self, index: Option<u32>) -> Result<Vec<Neighbour>> {
        let mut req = NeighbourMessage::default();
        req.header.family = AddressFamily::Unspec;
        let msgs = self.dump(RouteNetlinkMessage::GetNeighbour(req), &|| {
            "list neighbours".to_string()
        })?;
        Ok(msgs
            .iter()
            .filter_map(|m| match m {
                RouteNetlinkMessage::NewNeighbour(n) if n.header.family != AddressFamily::Bridge => {
                    Some(parse(n))
                }
                _ => None,
            })
            .filter(|n| index.is_none_or(|i| n.index == i))
            .collect())
    }

    /// `ip neigh replace IP lladdr MAC dev DEV nud permanent`.
    pub fn replace_neighbour(&mut self, index: u32, dev: &str, ip: IpAddr, mac: Mac) -> Result<()> {
        let mut m = NeighbourMessage::default();
        m.header.family = family(ip);
        m.header.ifindex = index;
        m.header.state = NeighbourState::Permanent;
        m.attributes.push(NeighbourAttribute::Destination(neigh_addr(ip)));
        m.attributes
            .push(NeighbourAttribute::LinkLayerAddress(mac.to_vec()));
        self.request(
            RouteNetlinkMessage::NewNeighbour(m),
            NLM_F_CREATE | NLM_F_REPLACE,
            &|| {
                format!(
                    "replace neighbour {ip} lladdr {} dev {dev} nud permanent",
                    mac_to_string(&mac)
                )
            },
        )
    }

    /// `ip neigh del IP dev DEV`.
    pub fn delete_neighbour(&mut self, index: u32, dev: &str, ip: IpAddr) -> Result<()> {
        let mut m = NeighbourMessage::default();
        m.header.family = family(ip);
        m.header.ifindex = index;
        m.attributes.push(NeighbourAttribute::Destination(neigh_addr(ip)));
        self.request(RouteNetlinkMessage::DelNeighbour(m), 0, &|| {
            format!("delete neighbour {ip} dev {dev}")
        })
    }

    /// FDB entries of link `index` (`bridge fdb show dev DEV`).
    pub fn fdb(&mut self, index: u32) -> Result<Vec<Neighbour>> {
        let mut req = NeighbourMessage::default();
        req.header.family = AddressFamily::Bridge;
        let msgs = self.dump(RouteNetlinkMessage::GetNeighbour(req), &|| {
            "list fdb entries".to_string()
        })?;
        Ok(msgs
            .iter()
            .filter_map(|m| match m {
                RouteNetlinkMessage::NewNeighbour(n) if n.header.family == AddressFamily::Bridge => {
                    Some(parse(n))
                }
                _ => None,
            })
            .filter(|n| n.index == index)
            .collect())
    }

    fn fdb_message(index: u32, mac: Mac, dst: Option<IpAddr>) -> NeighbourMessage {
        let mut m = NeighbourMessage::default();
        m.header.family = AddressFamily::Bridge;
        m.header.ifindex = index;
        m.header.state = NeighbourState::Permanent;
        m.header.flags = NeighbourFlags::Own;
        m.attributes
            .push(NeighbourAttribute::LinkLayerAddress(mac.to_vec()));
        if let Some(dst) = dst {
            m.attributes
                .push(NeighbourAttribute::Destination(neigh_addr(dst)));
        }
        m
    }

    /// `bridge fdb replace MAC dev DEV dst DST self permanent`.
    pub fn replace_fdb(&mut self, index: u32, dev: &str, mac: Mac, dst: IpAddr) -> Result<()> {
        self.request(
            RouteNetlinkMessage::NewNeighbour(Self::fdb_message(index, mac, Some(dst))),
            NLM_F_CREATE | NLM_F_REPLACE,
            &|| {
                format!(
                    "replace fdb {} dev {dev} dst {dst} self permanent",
                    mac_to_string(&mac)
                )
            },
        )
    }

    /// `bridge fdb del MAC dev DEV dst DST self`.
    pub fn delete_fdb(&mut self, index: u32, dev: &str, mac: Mac, dst: Option<IpAddr>) -> Result<()> {
        self.request(
            RouteNetlinkMessage::DelNeighbour(Self::fdb_message(index, mac, dst)),
            0,
            &|| format!("delete fdb {} dev {dev}", mac_to_string(&mac)),
        )
    }
}
