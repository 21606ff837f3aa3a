//! Interface addresses.

use std::net::IpAddr;

use ipnet::IpNet;
use netlink_packet_core::{NLM_F_CREATE, NLM_F_EXCL, NLM_F_REPLACE};
use netlink_packet_route::address::{AddressAttribute, AddressMessage};
use netlink_packet_route::{AddressFamily, RouteNetlinkMessage};

use crate::error::Result;
use crate::handle::Handle;

/// An address on a link.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Address {
    pub index: u32,
    pub net: IpNet,
}

fn message(index: u32, net: IpNet) -> AddressMessage {
    let mut m = AddressMessage::default();
    m.header.family = match net {
        IpNet::V4(_) => AddressFamily::Inet,
        IpNet::V6(_) => AddressFamily::Inet6,
    };
    m.header.prefix_len = net.prefix_len();
    m.header.index = index;
    m.attributes.push(AddressAttribute::Local(net.addr()));
    m.attributes.push(AddressAttribute::Address(net.addr()));
    m
}

impl Handle {
    /// Addresses of one link (`Some(index)`) or of every link.
    pub fn addresses(&mut self, index: Option<u32>) -> Result<Vec<Address>> {
        let msgs = self.dump(
            RouteNetlinkMessage::GetAddress(AddressMessage::default()),
            &|| "list addresses".to_string(),
        )?;
        Ok(msgs
            .iter()
            .filter_map(|m| match m {
                RouteNetlinkMessage::NewAddress(a) => {
                    let ip = a.attributes.iter().find_map(|x| match x {
                        AddressAttribute::Local(ip) => Some(*ip),
                        _ => None,
                    });
                    let ip: IpAddr = ip.or_else(|| {
                        a.attributes.iter().find_map(|x| match x {
                            AddressAttribute::Address(ip) => Some(*ip),
                            _ => None,
                        })
                    })?;
                    Some(Address {
                        index: a.header.index,
                        net: IpNet::new(ip, a.header.prefix_len).ok()?,
                    })
                }
                _ => None,
            })
            .filter(|a| index.is_none_or(|i| a.index == i))
            .collect())
    }

    /// Adds `net` to link `index` (`dev` is for messages); fails with `EEXIST` if present.
    pub fn add_address(&mut self, index: u32, dev: &str, net: IpNet) -> Result<()> {
        self.request(
            RouteNetlinkMessage::NewAddress(message(index, net)),
            NLM_F_CREATE | NLM_F_EXCL,
            &|| format!("add address {net} dev {dev}"),
        )
    }

    /// Adds `net` to link `index`, or refreshes it if present.
    pub fn replace_address(&mut self, index: u32, dev: &str, net: IpNet) -> Result<()> {
        self.request(
            RouteNetlinkMessage::NewAddress(message(index, net)),
            NLM_F_CREATE | NLM_F_REPLACE,
            &|| format!("add address {net} dev {dev}"),
        )
    }

    /// Removes `net` from link `index`.
    pub fn delete_address(&mut self, index: u32, dev: &str, net: IpNet) -> Result<()> {
        self.request(RouteNetlinkMessage::DelAddress(message(index, net)), 0, &|| {
            format!("delete address {net} dev {dev}")
        })
    }
}
