//! Brindle's own nftables tables (`ip brindle`, `ip6 brindle`), kept as Brindle wants them:
//! the wanted content and what the kernel holds are values ([`content`]), a pure [`plan`]
//! turns one into the other touching only what differs, and the [`writer`] commits each plan
//! as one transaction over netlink, checks the kernel against what it wrote and repairs it.

pub mod content;
pub mod plan;
pub mod writer;

pub use content::{Chain, Content, Key, Set, TableContent};
pub use plan::{Changes, Scope, plan};
pub use writer::{TableWriter, Timings, Written};
