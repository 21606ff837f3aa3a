//! tc: the `clsact` qdisc and direct-action BPF classifiers (`cls_bpf … da`).
//!
//! Filters attached this way are owned by the kernel, not by a file descriptor: they keep running
//! when the process that attached them exits or is killed, and a new process replaces them
//! atomically (same priority and handle, `NLM_F_REPLACE`), so traffic never stops.

use std::os::fd::RawFd;

use netlink_packet_core::{NLM_F_CREATE, NLM_F_EXCL, NLM_F_REPLACE};
use netlink_packet_route::RouteNetlinkMessage;
use netlink_packet_route::tc::{TcAttribute, TcBpfFlags, TcFilterBpfOption, TcHandle, TcMessage, TcOption};

use crate::error::Result;
use crate::handle::Handle;

/// Which clsact hook.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TcHook {
    Ingress,
    Egress,
}

impl TcHook {
    fn parent(self) -> TcHandle {
        TcHandle {
            major: 0xffff,
            minor: match self {
                TcHook::Ingress => TcHandle::MIN_INGRESS,
                TcHook::Egress => TcHandle::MIN_EGRESS,
            },
        }
    }

    fn name(self) -> &'static str {
        match self {
            TcHook::Ingress => "ingress",
            TcHook::Egress => "egress",
        }
    }
}

/// Where and what to attach with [`Handle::replace_bpf_filter`].
#[derive(Debug, Clone, Copy)]
pub struct BpfAttach<'a> {
    pub hook: TcHook,
    pub priority: u16,
    pub handle: u32,
    /// A loaded `BPF_PROG_TYPE_SCHED_CLS` program.
    pub prog_fd: RawFd,
    /// Shown by `tc filter show` and used to recognise Brindle's filters.
    pub name: &'a str,
}

/// A BPF classifier found on a hook.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BpfFilter {
    pub priority: u16,
    pub handle: u32,
    /// The name given at attach time (Brindle uses the ELF section/program name).
    pub name: Option<String>,
    pub prog_id: Option<u32>,
    pub direct_action: bool,
}

/// `ETH_P_ALL` in network byte order, as `tc filter … protocol all` sends it.
const ETH_P_ALL_BE: u16 = 0x0003u16.to_be();

/// The identity of a `bpf` filter: device, hook, priority and handle, protocol `all`.
fn filter_message(index: u32, hook: TcHook, priority: u16, handle: u32) -> TcMessage {
    let mut m = TcMessage::default();
    m.header.index = index as i32;
    m.header.parent = hook.parent();
    m.header.handle = TcHandle::from(handle);
    m.header.info = (u32::from(priority) << 16) | u32::from(ETH_P_ALL_BE);
    m.attributes.push(TcAttribute::Kind("bpf".into()));
    m
}

impl Handle {
    /// `tc qdisc add dev DEV clsact` (already present is fine).
    pub fn ensure_clsact(&mut self, index: u32, dev: &str) -> Result<()> {
        let mut m = TcMessage::default();
        m.header.index = index as i32;
        m.header.handle = TcHandle {
            major: 0xffff,
            minor: 0,
        };
        m.header.parent = TcHandle::CLSACT;
        m.attributes.push(TcAttribute::Kind("clsact".into()));
        match self.request(
            RouteNetlinkMessage::NewQueueDiscipline(m),
            NLM_F_CREATE | NLM_F_EXCL,
            &|| format!("add qdisc clsact dev {dev}"),
        ) {
            Err(e) if e.is_exists() => Ok(()),
            r => r,
        }
    }

    /// `tc filter replace dev DEV HOOK prio P handle H bpf da fd FD name NAME`: attaches, or
    /// atomically swaps the program of an existing filter with the same priority and handle.
    pub fn replace_bpf_filter(&mut self, index: u32, dev: &str, f: &BpfAttach<'_>) -> Result<()> {
        let BpfAttach {
            hook,
            priority,
            handle,
            prog_fd,
            name,
        } = *f;
        let mut m = filter_message(index, hook, priority, handle);
        m.attributes.push(TcAttribute::Options(vec![
            TcOption::Bpf(TcFilterBpfOption::ProgFd(prog_fd as u32)),
            TcOption::Bpf(TcFilterBpfOption::ProgName(name.to_string())),
            TcOption::Bpf(TcFilterBpfOption::Flags(TcBpfFlags::DirectAction)),
        ]));
        self.request(
            RouteNetlinkMessage::NewTrafficFilter(m),
            NLM_F_CREATE | NLM_F_REPLACE,
            &|| {
                format!(
                    "replace filter dev {dev} {} prio {priority} handle {handle} bpf da {name}",
                    hook.name()
                )
            },
        )
    }

    /// The BPF classifiers on a hook (empty if there is no clsact qdisc).
    pub fn bpf_filters(&mut self, index: u32, dev: &str, hook: TcHook) -> Result<Vec<BpfFilter>> {
        let mut req = TcMessage::default();
        req.header.index = index as i32;
        req.header.parent = hook.parent();
        let msgs = match self.dump(RouteNetlinkMessage::GetTrafficFilter(req), &|| {
            format!("list filters dev {dev} {}", hook.name())
        }) {
            Ok(m) => m,
            Err(e) if e.errno() == Some(libc::EINVAL) || e.is_not_found() => return Ok(vec![]),
            Err(e) => return Err(e),
        };
        let mut out = Vec::new();
        for msg in msgs {
            let RouteNetlinkMessage::NewTrafficFilter(m) = msg else {
                continue;
            };
            let handle: u32 = m.header.handle.into();
            let is_bpf = m
                .attributes
                .iter()
                .any(|a| matches!(a, TcAttribute::Kind(k) if k == "bpf"));
            // The first message of each priority is the chain head with handle 0.
            if !is_bpf || handle == 0 {
                continue;
            }
            let mut f = BpfFilter {
                priority: (m.header.info >> 16) as u16,
                handle,
                name: None,
                prog_id: None,
                direct_action: false,
            };
            for a in &m.attributes {
                if let TcAttribute::Options(opts) = a {
                    for o in opts {
                        match o {
                            TcOption::Bpf(TcFilterBpfOption::ProgName(n)) => f.name = Some(n.clone()),
                            TcOption::Bpf(TcFilterBpfOption::ProgId(i)) => f.prog_id = Some(*i),
                            TcOption::Bpf(TcFilterBpfOption::Flags(fl)) => {
                                f.direct_action = fl.contains(TcBpfFlags::DirectAction)
                            }
                            _ => {}
                        }
                    }
                }
            }
            out.push(f);
        }
        Ok(out)
    }

    /// `tc filter del dev DEV HOOK prio P handle H bpf`.
    pub fn delete_bpf_filter(
        &mut self,
        index: u32,
        dev: &str,
        hook: TcHook,
        priority: u16,
        handle: u32,
    ) -> Result<()> {
        let m = filter_message(index, hook, priority, handle);
        self.request(RouteNetlinkMessage::DelTrafficFilter(m), 0, &|| {
            format!(
                "delete filter dev {dev} {} prio {priority} handle {handle}",
                hook.name()
            )
        })
    }
}
