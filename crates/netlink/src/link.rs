//! Links: look-up, creation (veth with the peer made directly in another namespace, ifb, vxlan,
//! ipip), state, MTU, MAC, deletion.

use std::net::IpAddr;
use std::os::fd::AsRawFd;

use netlink_packet_core::{NLM_F_CREATE, NLM_F_EXCL};
use netlink_packet_route::RouteNetlinkMessage;
use netlink_packet_route::link::{
    InfoData, InfoKind, InfoVeth, InfoVxlan, LinkAttribute, LinkFlags, LinkInfo, LinkMessage,
};

use crate::error::{Error, Result};
use crate::handle::Handle;
use crate::netns::NetnsFd;

/// A MAC address.
pub type Mac = [u8; 6];

/// Formats a MAC as `ee:ee:ee:ee:ee:ee`.
pub fn mac_to_string(mac: &Mac) -> String {
    mac.iter()
        .map(|b| format!("{b:02x}"))
        .collect::<Vec<_>>()
        .join(":")
}

/// Parses `ee:ee:ee:ee:ee:ee`.
pub fn parse_mac(s: &str) -> Option<Mac> {
    let mut out = [0u8; 6];
    let mut parts = s.split(':');
    for b in &mut out {
        *b = u8::from_str_radix(parts.next()?, 16).ok()?;
    }
    parts.next().is_none().then_some(out)
}

/// A link as the kernel reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Link {
    pub index: u32,
    pub name: String,
    /// `IFLA_INFO_KIND`: `veth`, `ifb`, `vxlan`, `ipip`, … (`None` for plain devices like `lo`).
    pub kind: Option<String>,
    pub mtu: u32,
    pub mac: Option<Mac>,
    /// Administratively up (`IFF_UP`).
    pub up: bool,
    /// Carrier (`IFF_LOWER_UP`).
    pub lower_up: bool,
    /// For vxlan: the VNI, local address, UDP port and underlay device.
    pub vxlan: Option<VxlanInfo>,
    /// `IFLA_LINK`: for a veth, its peer's index (in the peer's namespace); for other kinds the
    /// lower device. Lets a caller prove two veth ends belong together.
    pub link_index: Option<u32>,
    /// `IFLA_LINK_NETNSID`: the id (in this namespace's numbering) of the namespace `link_index`
    /// lives in, when that is another namespace.
    pub link_netnsid: Option<i32>,
}

/// The vxlan parameters of a link, as far as Brindle compares them.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct VxlanInfo {
    pub vni: u32,
    pub port: u16,
    /// `IFLA_VXLAN_LOCAL` or `IFLA_VXLAN_LOCAL6`: the outer source (VXLAN over IPv4 or IPv6).
    pub local: Option<IpAddr>,
    pub dev: Option<u32>,
    pub learning: bool,
}

/// A veth pair to create. The peer can be created directly in another namespace (no later move,
/// which would cost an RCU barrier per pod). The peer is created down: the kernel cannot open a
/// veth end before its pair is linked (`ENOTCONN`), so bring it up with a handle in its namespace.
#[derive(Debug, Clone, Default)]
pub struct VethSpec<'a> {
    pub name: &'a str,
    pub mac: Option<Mac>,
    pub mtu: Option<u32>,
    pub up: bool,
    pub peer_name: &'a str,
    pub peer_mac: Option<Mac>,
    pub peer_mtu: Option<u32>,
    /// Where the peer is created (`None`: this handle's namespace).
    pub peer_netns: Option<&'a NetnsFd>,
}

/// A vxlan device to create (`ip link add NAME address MAC type vxlan id VNI dstport PORT dev DEV
/// local LOCAL nolearning`). An IPv6 `local` makes a VXLAN-over-IPv6 device (Calico's
/// `vxlan-v6.calico`).
#[derive(Debug, Clone)]
pub struct VxlanSpec<'a> {
    pub name: &'a str,
    pub vni: u32,
    pub port: u16,
    pub local: IpAddr,
    pub dev: Option<u32>,
    pub learning: bool,
    pub mac: Option<Mac>,
    pub mtu: Option<u32>,
}

/// Changes to apply to an existing link; `None` leaves a field alone.
#[derive(Debug, Clone, Default)]
pub struct LinkChange {
    pub up: Option<bool>,
    pub mtu: Option<u32>,
    pub mac: Option<Mac>,
}

pub(crate) fn parse_link(m: &LinkMessage) -> Link {
    let mut l = Link {
        index: m.header.index,
        name: String::new(),
        kind: None,
        mtu: 0,
        mac: None,
        up: m.header.flags.contains(LinkFlags::Up),
        lower_up: m.header.flags.contains(LinkFlags::LowerUp),
        vxlan: None,
        link_index: None,
        link_netnsid: None,
    };
    for a in &m.attributes {
        match a {
            LinkAttribute::IfName(n) => l.name = n.clone(),
            LinkAttribute::Link(i) => l.link_index = Some(*i),
            LinkAttribute::LinkNetNsId(id) => l.link_netnsid = Some(*id),
            LinkAttribute::Mtu(v) => l.mtu = *v,
            LinkAttribute::Address(b) if b.len() == 6 => {
                let mut mac = [0; 6];
                mac.copy_from_slice(b);
                l.mac = Some(mac);
            }
            LinkAttribute::LinkInfo(infos) => {
                for i in infos {
                    match i {
                        LinkInfo::Kind(k) => l.kind = Some(k.to_string()),
                        LinkInfo::Data(InfoData::Vxlan(v)) => l.vxlan = Some(parse_vxlan(v)),
                        _ => {}
                    }
                }
            }
            _ => {}
        }
    }
    l
}

fn parse_vxlan(attrs: &[InfoVxlan]) -> VxlanInfo {
    let mut v = VxlanInfo::default();
    for a in attrs {
        match a {
            InfoVxlan::Id(id) => v.vni = *id,
            InfoVxlan::Port(p) => v.port = *p,
            InfoVxlan::Local(ip) => v.local = Some(IpAddr::V4(*ip)),
            InfoVxlan::Local6(ip) => v.local = Some(IpAddr::V6(*ip)),
            InfoVxlan::Link(dev) => v.dev = Some(*dev),
            InfoVxlan::Learning(l) => v.learning = *l,
            _ => {}
        }
    }
    v
}

fn base_msg(name: &str, mac: Option<Mac>, mtu: Option<u32>, up: bool) -> LinkMessage {
    let mut m = LinkMessage::default();
    m.attributes.push(LinkAttribute::IfName(name.to_string()));
    if let Some(mac) = mac {
        m.attributes.push(LinkAttribute::Address(mac.to_vec()));
    }
    if let Some(mtu) = mtu {
        m.attributes.push(LinkAttribute::Mtu(mtu));
    }
    if up {
        m.header.flags = LinkFlags::Up;
        m.header.change_mask = LinkFlags::Up;
    }
    m
}

fn with_kind(mut m: LinkMessage, kind: InfoKind, data: Option<InfoData>) -> LinkMessage {
    let mut info = vec![LinkInfo::Kind(kind)];
    if let Some(d) = data {
        info.push(LinkInfo::Data(d));
    }
    m.attributes.push(LinkAttribute::LinkInfo(info));
    m
}

impl Handle {
    /// Every link of the namespace.
    pub fn links(&mut self) -> Result<Vec<Link>> {
        let msgs = self.dump(RouteNetlinkMessage::GetLink(LinkMessage::default()), &|| {
            "list links".to_string()
        })?;
        Ok(msgs
            .iter()
            .filter_map(|m| match m {
                RouteNetlinkMessage::NewLink(l) => Some(parse_link(l)),
                _ => None,
            })
            .collect())
    }

    /// The link named `name`, or `None`.
    pub fn link_by_name(&mut self, name: &str) -> Result<Option<Link>> {
        let mut m = LinkMessage::default();
        m.attributes.push(LinkAttribute::IfName(name.to_string()));
        self.get_link(m, &|| format!("get link {name}"))
    }

    /// The link with index `index`, or `None`.
    pub fn link_by_index(&mut self, index: u32) -> Result<Option<Link>> {
        let mut m = LinkMessage::default();
        m.header.index = index;
        self.get_link(m, &|| format!("get link index {index}"))
    }

    /// The link named `name`, or a [`Error::NotFound`] naming it.
    pub fn require_link(&mut self, name: &str) -> Result<Link> {
        self.link_by_name(name)?.ok_or_else(|| Error::NotFound {
            op: format!("get link {name}"),
            what: format!("device {name}"),
        })
    }

    fn get_link(&mut self, m: LinkMessage, op: &dyn Fn() -> String) -> Result<Option<Link>> {
        match self.get(RouteNetlinkMessage::GetLink(m), op) {
            Ok(Some(RouteNetlinkMessage::NewLink(l))) => Ok(Some(parse_link(&l))),
            Ok(_) => Ok(None),
            Err(e) if e.is_not_found() => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Creates a veth pair; with `peer_netns`, the peer is born in that namespace.
    pub fn add_veth(&mut self, spec: &VethSpec<'_>) -> Result<()> {
        let mut peer = base_msg(spec.peer_name, spec.peer_mac, spec.peer_mtu, false);
        if let Some(ns) = spec.peer_netns {
            peer.attributes.push(LinkAttribute::NetNsFd(ns.as_raw_fd()));
        }
        let m = with_kind(
            base_msg(spec.name, spec.mac, spec.mtu, spec.up),
            InfoKind::Veth,
            Some(InfoData::Veth(InfoVeth::Peer(peer))),
        );
        let op = || {
            let ns = spec
                .peer_netns
                .map(|n| format!(" netns {}", n.path().display()))
                .unwrap_or_default();
            format!(
                "add link {} type veth peer name {}{ns}",
                spec.name, spec.peer_name
            )
        };
        self.request(RouteNetlinkMessage::NewLink(m), NLM_F_CREATE | NLM_F_EXCL, &op)
    }

    /// Creates an IFB device (used as Brindle's BPF `tunl0`).
    pub fn add_ifb(&mut self, name: &str, mtu: Option<u32>) -> Result<()> {
        let m = with_kind(base_msg(name, None, mtu, false), InfoKind::Ifb, None);
        self.request(
            RouteNetlinkMessage::NewLink(m),
            NLM_F_CREATE | NLM_F_EXCL,
            &|| format!("add link {name} type ifb"),
        )
    }

    /// Creates an `ipip` device with no endpoints (like the kernel's fallback `tunl0`). Fails
    /// with an unsupported error ([`Error::is_unsupported`]) where the kernel lacks the module.
    pub fn add_ipip(&mut self, name: &str, mtu: Option<u32>) -> Result<()> {
        let m = with_kind(base_msg(name, None, mtu, false), InfoKind::IpIp, None);
        self.request(
            RouteNetlinkMessage::NewLink(m),
            NLM_F_CREATE | NLM_F_EXCL,
            &|| format!("add link {name} type ipip"),
        )
    }

    /// Creates a vxlan device.
    pub fn add_vxlan(&mut self, spec: &VxlanSpec<'_>) -> Result<()> {
        let mut data = vec![
            InfoVxlan::Id(spec.vni),
            InfoVxlan::Port(spec.port),
            match spec.local {
                IpAddr::V4(ip) => InfoVxlan::Local(ip),
                IpAddr::V6(ip) => InfoVxlan::Local6(ip),
            },
            InfoVxlan::Learning(spec.learning),
        ];
        if let Some(dev) = spec.dev {
            data.push(InfoVxlan::Link(dev));
        }
        let m = with_kind(
            base_msg(spec.name, spec.mac, spec.mtu, false),
            InfoKind::Vxlan,
            Some(InfoData::Vxlan(data)),
        );
        self.request(
            RouteNetlinkMessage::NewLink(m),
            NLM_F_CREATE | NLM_F_EXCL,
            &|| {
                format!(
                    "add link {} type vxlan id {} dstport {} local {}",
                    spec.name, spec.vni, spec.port, spec.local
                )
            },
        )
    }

    /// Applies `change` to the link with index `index` (`name` is for messages).
    pub fn set_link(&mut self, index: u32, name: &str, change: &LinkChange) -> Result<()> {
        let mut m = LinkMessage::default();
        m.header.index = index;
        if let Some(up) = change.up {
            m.header.change_mask = LinkFlags::Up;
            if up {
                m.header.flags = LinkFlags::Up;
            }
        }
        if let Some(mtu) = change.mtu {
            m.attributes.push(LinkAttribute::Mtu(mtu));
        }
        if let Some(mac) = change.mac {
            m.attributes.push(LinkAttribute::Address(mac.to_vec()));
        }
        self.request(RouteNetlinkMessage::SetLink(m), 0, &|| {
            let mut s = format!("set link {name}");
            if let Some(up) = change.up {
                s.push_str(if up { " up" } else { " down" });
            }
            if let Some(mtu) = change.mtu {
                s.push_str(&format!(" mtu {mtu}"));
            }
            if let Some(mac) = &change.mac {
                s.push_str(&format!(" address {}", mac_to_string(mac)));
            }
            s
        })
    }

    /// Deletes the link with index `index` (`name` is for messages).
    pub fn delete_link(&mut self, index: u32, name: &str) -> Result<()> {
        let mut m = LinkMessage::default();
        m.header.index = index;
        self.request(RouteNetlinkMessage::DelLink(m), 0, &|| {
            format!("delete link {name}")
        })
    }

    /// Deletes the link named `name`; Ok(false) if it did not exist.
    pub fn delete_link_by_name(&mut self, name: &str) -> Result<bool> {
        let mut m = LinkMessage::default();
        m.attributes.push(LinkAttribute::IfName(name.to_string()));
        match self.request(RouteNetlinkMessage::DelLink(m), 0, &|| {
            format!("delete link {name}")
        }) {
            Ok(()) => Ok(true),
            Err(e) if e.is_not_found() => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// A map from index to name, for rendering routes.
    pub fn link_names(&mut self) -> Result<std::collections::HashMap<u32, String>> {
        Ok(self.links()?.into_iter().map(|l| (l.index, l.name)).collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn macs_round_trip() {
        let m = parse_mac("ee:ee:ee:ee:ee:ee").unwrap();
        assert_eq!(m, [0xee; 6]);
        assert_eq!(mac_to_string(&[0x66, 0xee, 0, 1, 2, 0xa]), "66:ee:00:01:02:0a");
        assert!(parse_mac("ee:ee").is_none());
        assert!(parse_mac("ee:ee:ee:ee:ee:ee:ee").is_none());
        assert!(parse_mac("zz:ee:ee:ee:ee:ee").is_none());
    }
}
