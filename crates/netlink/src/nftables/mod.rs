//! nf_tables over netlink (`NETLINK_NETFILTER`, subsystem `NFNL_SUBSYS_NFTABLES`): what `nft`
//! does, without a process per change. One synchronous socket per namespace, like
//! [`crate::Handle`].
//!
//! Module map:
//! - [`socket`] — [`Nft`]: transactions (one `sendmsg`, all or nothing, optionally guarded by
//!   the ruleset generation), `NFT_MSG_GETGEN`, dumps of one table; refusals name the message.
//! - [`batch`] — [`Batch`]: the messages of one transaction (tables, chains, rules, sets,
//!   elements; flush and delete).
//! - [`rule`] — [`Rule`]: statements and verdicts, rendered as expressions and as nft text.
//! - [`matches`] — a rule's matches on addresses, ports, ICMP and routes.
//! - [`expr`] — [`Expr`]: the kernel's expressions and their encoding; [`expr_decode`]: the
//!   decoding of dumped ones.
//! - [`object`] — tables, chains and hooks, sets and verdict maps.
//! - [`elements`] — set elements (intervals, concatenations, interface names, verdicts), merged
//!   so interval sets never hold overlapping ranges.
//! - [`dump`] — decoding of replies and notifications (outside input; fuzzed).
//! - [`monitor`] — [`NftMonitor`]: foreign changes to one table.
//! - [`attr`] — netlink attributes.
//! - [`sys`] — the UAPI numbers.
//!
//! Kernel interfaces: `linux/netfilter/nf_tables.h`, `nfnetlink.h`; the nft user data layout
//! of libnftnl (`udata.h`) so `nft list` prints comments and keys as usual.

pub mod attr;
pub mod batch;
pub mod dump;
pub mod elements;
pub mod expr;
pub mod expr_decode;
pub mod matches;
pub mod monitor;
pub mod object;
pub mod rule;
pub mod socket;
pub(crate) mod sys;

pub use batch::Batch;
pub use dump::{ChainInfo, Generation, RuleInfo, SetInfo, TableInfo};
pub use elements::{Elem, Elements};
pub use expr::{CmpOp, Expr, Verdict};
pub use monitor::NftMonitor;
pub use object::{ChainSpec, DataType, Hook, HookPoint, SetSpec, TableFamily, priority};
pub use rule::{Family, Rule, Side, ct_state};
pub use socket::{ERESTART, Nft, TableDump};
