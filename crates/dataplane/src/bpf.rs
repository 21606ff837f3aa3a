//! Loader of Brindle's BPF tunl0 (bpf/ipip.c, built by clang in build.rs; loaded with aya 0.14).
//!
//! **Attachment: cls_bpf over netlink, not aya's links.** The programs are attached as
//! direct-action `bpf` classifiers on clsact qdiscs ([`brindle_netlink::tc`]). Such a filter
//! belongs to the kernel: it keeps the program (and its maps) alive when the agent exits or is
//! killed with SIGKILL, so pod traffic keeps flowing through a restart. The next agent loads fresh
//! programs, fills their maps and swaps them in atomically (`tc filter replace` on the same
//! priority and handle). aya's TCX links, by contrast, detach when the loader's fds close.
//! The cost: while no agent runs, the node allow-list is frozen (as Felix's ipsets would be).

use std::collections::BTreeSet;
use std::net::Ipv4Addr;
use std::os::fd::{AsFd, AsRawFd};

use aya::maps::{HashMap as BpfHashMap, PerCpuArray};
use aya::programs::SchedClassifier;
use aya::{Ebpf, EbpfLoader};
use brindle_netlink::{BpfAttach, Handle, Mac, TcHook};

use crate::error::Error;

static OBJECT: &[u8] = aya::include_bytes_aligned!(concat!(env!("OUT_DIR"), "/ipip.o"));

/// Filter priority and handle Brindle uses on both hooks (recognisable, replaceable in place).
pub const FILTER_PRIORITY: u16 = 0xb1;
pub const FILTER_HANDLE: u32 = 0xb1d1;
/// Names shown by `tc filter show` (and used to find Brindle's filters).
pub const EGRESS_NAME: &str = "brindle_tunl_egress";
pub const DECAP_NAME: &str = "brindle_eth_decap";

/// Where the BPF tunl0 runs; a change of any field needs a reload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BpfIpipParams {
    pub node_ip: Ipv4Addr,
    pub underlay_index: u32,
    pub underlay_name: String,
    pub tunl_index: u32,
    pub tunl_mac: Mac,
}

/// Packet counters of the BPF tunl0 (summed over CPUs).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct BpfStats {
    pub encap: u64,
    pub encap_no_route: u64,
    pub encap_drop: u64,
    pub decap: u64,
    pub decap_denied: u64,
    pub decap_drop: u64,
}

/// Loaded and attached programs, with their maps.
pub struct BpfIpip {
    ebpf: Ebpf,
    params: BpfIpipParams,
    nodes: BTreeSet<Ipv4Addr>,
}

fn bpf_err(what: &str, e: impl std::fmt::Display) -> Error {
    Error::Bpf(format!("{what}: {e}"))
}

/// Loads both programs into the kernel (through the verifier) and drops them, attaching
/// nothing: whether this kernel can run the BPF tunl0 (`brindle node checksystem`).
pub fn verify_programs() -> Result<(), Error> {
    let mut ebpf = EbpfLoader::new()
        .load(OBJECT)
        .map_err(|e| bpf_err("load bpf/ipip.c object", e))?;
    for name in ["tunl_egress", "eth_decap"] {
        let prog: &mut SchedClassifier = ebpf
            .program_mut(name)
            .ok_or_else(|| Error::Bpf(format!("program {name} missing from the object")))?
            .try_into()
            .map_err(|e| bpf_err(name, e))?;
        prog.load()
            .map_err(|e| bpf_err(&format!("verify/load program {name}"), e))?;
    }
    Ok(())
}

impl BpfIpip {
    /// Loads the programs for `params`, allows IPIP from `nodes`, and attaches (or atomically
    /// replaces) the filters on tunl0 egress and the underlay's ingress.
    pub fn load_and_attach(
        h: &mut Handle,
        params: BpfIpipParams,
        nodes: &[Ipv4Addr],
    ) -> Result<BpfIpip, Error> {
        let node_ip = u32::from_ne_bytes(params.node_ip.octets());
        let mut ebpf = EbpfLoader::new()
            .override_global("NODE_IP", &node_ip, true)
            .override_global("UNDERLAY_IFINDEX", &params.underlay_index, true)
            .override_global("TUNL_IFINDEX", &params.tunl_index, true)
            .override_global("TUNL_MAC", &params.tunl_mac, true)
            .load(OBJECT)
            .map_err(|e| bpf_err("load bpf/ipip.c object", e))?;
        for name in ["tunl_egress", "eth_decap"] {
            let prog: &mut SchedClassifier = ebpf
                .program_mut(name)
                .ok_or_else(|| Error::Bpf(format!("program {name} missing from the object")))?
                .try_into()
                .map_err(|e| bpf_err(name, e))?;
            prog.load()
                .map_err(|e| bpf_err(&format!("verify/load program {name}"), e))?;
        }
        let mut me = BpfIpip {
            ebpf,
            params,
            nodes: BTreeSet::new(),
        };
        me.set_nodes(nodes)?;
        me.attach(h)?;
        Ok(me)
    }

    fn prog_fd(&self, name: &str) -> Result<std::os::fd::RawFd, Error> {
        let prog: &SchedClassifier = self
            .ebpf
            .program(name)
            .ok_or_else(|| Error::Bpf(format!("program {name} missing")))?
            .try_into()
            .map_err(|e| bpf_err(name, e))?;
        let fd = prog.fd().map_err(|e| bpf_err(name, e))?;
        Ok(fd.as_fd().as_raw_fd())
    }

    /// (Re)attaches both filters; replacing in place if they exist.
    pub fn attach(&self, h: &mut Handle) -> Result<(), Error> {
        let p = &self.params;
        h.ensure_clsact(p.tunl_index, crate::routes::TUNL0)?;
        h.ensure_clsact(p.underlay_index, &p.underlay_name)?;
        // Decap first: a node that starts sending IPIP is already understood here.
        h.replace_bpf_filter(
            p.underlay_index,
            &p.underlay_name,
            &BpfAttach {
                hook: TcHook::Ingress,
                priority: FILTER_PRIORITY,
                handle: FILTER_HANDLE,
                prog_fd: self.prog_fd("eth_decap")?,
                name: DECAP_NAME,
            },
        )?;
        h.replace_bpf_filter(
            p.tunl_index,
            crate::routes::TUNL0,
            &BpfAttach {
                hook: TcHook::Egress,
                priority: FILTER_PRIORITY,
                handle: FILTER_HANDLE,
                prog_fd: self.prog_fd("tunl_egress")?,
                name: EGRESS_NAME,
            },
        )?;
        Ok(())
    }

    /// True when both filters on the kernel run this object's programs.
    pub fn is_attached(&self, h: &mut Handle) -> Result<bool, Error> {
        let p = &self.params;
        let ids = |h: &mut Handle, index: u32, dev: &str, hook: TcHook, name: &str| {
            h.bpf_filters(index, dev, hook).map(|fs| {
                fs.into_iter()
                    .filter(|f| f.priority == FILTER_PRIORITY && f.handle == FILTER_HANDLE)
                    .any(|f| f.direct_action && f.name.as_deref().is_some_and(|n| n.starts_with(name)))
            })
        };
        Ok(
            ids(h, p.tunl_index, crate::routes::TUNL0, TcHook::Egress, EGRESS_NAME)?
                && ids(h, p.underlay_index, &p.underlay_name, TcHook::Ingress, DECAP_NAME)?,
        )
    }

    pub fn params(&self) -> &BpfIpipParams {
        &self.params
    }

    /// Makes the allow-list exactly `nodes` (in place: no reload).
    pub fn set_nodes(&mut self, nodes: &[Ipv4Addr]) -> Result<(), Error> {
        let want: BTreeSet<Ipv4Addr> = nodes.iter().copied().collect();
        if want == self.nodes {
            return Ok(());
        }
        let mut map: BpfHashMap<_, u32, u8> = BpfHashMap::try_from(
            self.ebpf
                .map_mut("brindle_nodes")
                .ok_or_else(|| Error::Bpf("map brindle_nodes missing".into()))?,
        )
        .map_err(|e| bpf_err("map brindle_nodes", e))?;
        for ip in want.difference(&self.nodes) {
            map.insert(u32::from_ne_bytes(ip.octets()), 1, 0)
                .map_err(|e| bpf_err(&format!("allow IPIP from {ip}"), e))?;
        }
        for ip in self.nodes.difference(&want) {
            map.remove(&u32::from_ne_bytes(ip.octets()))
                .map_err(|e| bpf_err(&format!("disallow IPIP from {ip}"), e))?;
        }
        self.nodes = want;
        Ok(())
    }

    /// The packet counters.
    pub fn stats(&self) -> Result<BpfStats, Error> {
        let arr: PerCpuArray<_, u64> = PerCpuArray::try_from(
            self.ebpf
                .map("brindle_stats")
                .ok_or_else(|| Error::Bpf("map brindle_stats missing".into()))?,
        )
        .map_err(|e| bpf_err("map brindle_stats", e))?;
        let get = |i: u32| -> Result<u64, Error> {
            Ok(arr
                .get(&i, 0)
                .map_err(|e| bpf_err("read brindle_stats", e))?
                .iter()
                .sum())
        };
        Ok(BpfStats {
            encap: get(0)?,
            encap_no_route: get(1)?,
            encap_drop: get(2)?,
            decap: get(3)?,
            decap_denied: get(4)?,
            decap_drop: get(5)?,
        })
    }
}

/// Removes Brindle's filters from tunl0 egress and the underlay ingress (best effort: missing
/// filters are fine).
pub fn detach(h: &mut Handle, tunl: Option<u32>, underlay: Option<(u32, &str)>) {
    if let Some(t) = tunl {
        let _ = h.delete_bpf_filter(
            t,
            crate::routes::TUNL0,
            TcHook::Egress,
            FILTER_PRIORITY,
            FILTER_HANDLE,
        );
    }
    if let Some((u, name)) = underlay {
        let _ = h.delete_bpf_filter(u, name, TcHook::Ingress, FILTER_PRIORITY, FILTER_HANDLE);
    }
}
