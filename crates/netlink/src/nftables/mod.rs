//! nf_tables over netlink (`NETLINK_NETFILTER`, subsystem `NFNL_SUBSYS_NFTABLES`): what `nft`
//! does, without a process per change. One synchronous socket per namespace, like
//! [`crate::Handle`].
//!
//! Module map:
//! - [`socket`] — [`Nft`]: transactions (one `sendmsg`, all or nothing, optionally guarded by
//!   the ruleset generation), `NFT_MSG_GETGEN`, dumps of one table; refusals name the message.
//! - [`batch`] — [`Batch`]: the messages of one transaction (tables, chains, rules, sets,
//!   elements; flush and delete).
//! - [`rule`] — [`Rule`]: matches and statements rendered as expressions and as nft text.
//! - [`expr`] — [`Expr`]: the kernel's expressions, encoded and decoded.
//! - [`object`] — chains, hooks, sets and maps, elements (intervals, concatenations,
//!   interface names, verdicts).
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
pub mod expr;
pub mod monitor;
pub mod object;
pub mod rule;
pub mod socket;
pub(crate) mod sys;

pub use batch::Batch;
pub use dump::{ChainInfo, Generation, RuleInfo, SetInfo, TableInfo};
pub use expr::{CmpOp, Expr, Verdict};
pub use monitor::NftMonitor;
pub use object::{ChainSpec, DataType, Elem, Elements, Hook, HookPoint, SetSpec, TableFamily, priority};
pub use rule::{Family, Rule, Side, ct_state};
pub use socket::{ERESTART, Nft, TableDump};
