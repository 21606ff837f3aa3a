//! `tunl0`: the kernel's ipip device where the kernel has it, else Brindle's BPF tunl0 (an IFB
//! device with the tc programs of [`crate::bpf`]). Either way `tunl0` carries the tunnel address
//! as a /32, the configured MTU, and Calico's routes `… via <node> dev tunl0 proto bird onlink`;
//! the wire format is standard IPIP, so nodes of both kinds interoperate.

use std::net::Ipv4Addr;

use brindle_netlink::{Handle, Link, LinkChange};
use ipnet::{IpNet, Ipv4Net};

use crate::bpf::{self, BpfIpip, BpfIpipParams};
use crate::error::Error;
use crate::routes::TUNL0;
use crate::state::IpipConfig;

/// Which tunl0 is active.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IpipPath {
    /// The kernel's ipip device.
    Kernel,
    /// An IFB device with Brindle's tc BPF encap/decap.
    Bpf,
}

impl std::fmt::Display for IpipPath {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            IpipPath::Kernel => "kernel-ipip",
            IpipPath::Bpf => "bpf-ipip",
        })
    }
}

/// The underlay: the link holding the node address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Underlay {
    pub index: u32,
    pub name: String,
    pub node_ip: Ipv4Addr,
}

/// The live tunl0.
pub struct Tunl0 {
    pub path: IpipPath,
    pub bpf: Option<BpfIpip>,
}

/// Finds or makes tunl0: an existing ipip device is used as is; an IFB tunl0 is Brindle's BPF
/// one; otherwise Brindle asks the kernel for an ipip device (which loads the module where one
/// exists and creates the fallback tunl0) and falls back to an IFB when the kernel has none.
fn find_or_create(h: &mut Handle, mtu: u32) -> Result<(Link, IpipPath), Error> {
    if let Some(l) = h.link_by_name(TUNL0)? {
        return match l.kind.as_deref() {
            Some("ipip") => Ok((l, IpipPath::Kernel)),
            Some("ifb") => Ok((l, IpipPath::Bpf)),
            other => Err(Error::Conflict(format!(
                "device {TUNL0} exists as a {} device, not ipip (or Brindle's ifb): remove it",
                other.unwrap_or("plain")
            ))),
        };
    }
    match h.add_ipip(TUNL0, Some(mtu)) {
        Ok(()) => {}
        Err(e) if e.is_exists() => {}
        Err(e) if e.is_unsupported() => {
            tracing::info!("kernel has no ipip support ({e}); using Brindle's BPF tunl0 (ifb + tc)");
            h.add_ifb(TUNL0, Some(mtu))?;
            let l = h.require_link(TUNL0)?;
            return Ok((l, IpipPath::Bpf));
        }
        Err(e) => return Err(e.into()),
    }
    let l = h.require_link(TUNL0)?;
    match l.kind.as_deref() {
        Some("ipip") => Ok((l, IpipPath::Kernel)),
        _ => Err(Error::Conflict(format!(
            "device {TUNL0} appeared but is not ipip"
        ))),
    }
}

impl Tunl0 {
    /// Brings tunl0 to `cfg`: device, MTU, the tunnel address (only it), up; on the BPF path the
    /// programs are loaded/attached (or repaired if someone removed them) and the node allow-list
    /// is set to `peers`. `current` is the previous state, kept when nothing changed.
    pub fn ensure(
        h: &mut Handle,
        cfg: &IpipConfig,
        underlay: &Underlay,
        peers: &[Ipv4Addr],
        current: Option<Tunl0>,
    ) -> Result<Tunl0, Error> {
        let (link, path) = find_or_create(h, cfg.mtu)?;
        if link.mtu != cfg.mtu || !link.up {
            h.set_link(
                link.index,
                TUNL0,
                &LinkChange {
                    up: Some(true),
                    mtu: Some(cfg.mtu),
                    mac: None,
                },
            )?;
        }
        let want: Option<IpNet> = cfg
            .tunnel_addr
            .map(|a| IpNet::V4(Ipv4Net::new(a, 32).expect("/32")));
        let have = h.addresses(Some(link.index))?;
        for a in &have {
            if Some(a.net) != want && a.net.addr().is_ipv4() {
                h.delete_address(link.index, TUNL0, a.net)?;
            }
        }
        if let Some(w) = want
            && !have.iter().any(|a| a.net == w)
        {
            h.add_address(link.index, TUNL0, w)?;
        }
        let mut bpf = current.and_then(|c| c.bpf);
        if path == IpipPath::Bpf {
            let params = BpfIpipParams {
                node_ip: underlay.node_ip,
                underlay_index: underlay.index,
                underlay_name: underlay.name.clone(),
                tunl_index: link.index,
                tunl_mac: link.mac.unwrap_or_default(),
            };
            bpf = match bpf {
                Some(mut b) if *b.params() == params => {
                    b.set_nodes(peers)?;
                    if !b.is_attached(h)? {
                        tracing::warn!("BPF tunl0 filters were removed behind Brindle's back; reattaching");
                        b.attach(h)?;
                    }
                    Some(b)
                }
                _ => {
                    let b = BpfIpip::load_and_attach(h, params, peers)?;
                    tracing::info!(
                        underlay = %underlay.name,
                        "bpf-ipip active: tunl0 is an ifb with tc encap (egress) and decap on the underlay"
                    );
                    Some(b)
                }
            };
        }
        Ok(Tunl0 { path, bpf })
    }

    /// Undoes [`Tunl0::ensure`] when no pool uses IPIP: the BPF tunl0 is removed; the kernel's
    /// (fallback) tunl0 loses its addresses and goes down, as Felix does.
    pub fn remove(h: &mut Handle, underlay: Option<&Underlay>) -> Result<(), Error> {
        let Some(l) = h.link_by_name(TUNL0)? else {
            return Ok(());
        };
        match l.kind.as_deref() {
            Some("ifb") => {
                bpf::detach(h, None, underlay.map(|u| (u.index, u.name.as_str())));
                h.delete_link(l.index, TUNL0)?;
            }
            Some("ipip") => {
                for a in h.addresses(Some(l.index))? {
                    if a.net.addr().is_ipv4() {
                        h.delete_address(l.index, TUNL0, a.net)?;
                    }
                }
                h.set_link(
                    l.index,
                    TUNL0,
                    &LinkChange {
                        up: Some(false),
                        ..Default::default()
                    },
                )?;
            }
            _ => {}
        }
        Ok(())
    }
}
