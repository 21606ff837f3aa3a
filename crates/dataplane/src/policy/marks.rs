//! Felix's mark bits (default `NftablesMarkMask` 0xffff0000, bits handed out in order:
//! accept, pass, drop, scratch0), so a Felix user reads Brindle's rules the same way.

/// A policy or profile allowed the packet (`meta mark & 0x00010000`).
pub const ACCEPT: u32 = 0x0001_0000;
/// A policy passed the packet to the next tier.
pub const PASS: u32 = 0x0002_0000;
/// Scratch bit, for a Log rule with several alternatives.
pub const SCRATCH: u32 = 0x0008_0000;
/// Cleared at the start of an endpoint chain.
pub const CLEAR: u32 = !(ACCEPT | PASS | SCRATCH);
