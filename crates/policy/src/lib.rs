//! Calico's network-policy calculation, pure: typed resources in, the dataplane's intermediate
//! representation out. No nftables, no datastore, no clocks, no I/O.
//!
//! Module map:
//! - [`calc`]: [`PolicyCalculator`], the incremental calculation (one call per datastore change,
//!   `flush()` for the delta, `state()` for everything); `calc::inputs` holds the input forms
//!   ([`PolicyInput`], [`NetworkSetInput`], [`TierInput`]) and Calico's normalisation of them.
//! - [`ir`]: the output: IP sets, per-policy and per-profile rule lists per direction and family,
//!   per local endpoint its tiers and profiles, the [`ir::Delta`] between flushes and the full
//!   [`ir::State`]; its module doc states the verdict order a dataplane implements.
//! - [`eval`]: a packet's verdict decided from the IR alone (tests, the lab's expected tables).
//! - [`selectors`]: Calico's selector rewriting per policy kind and for rule peers.
//! - `rules`: v3 rules → IR rules per family, with the IP sets they use.
//! - `index`: the label index (selectors × labelled items, incremental); `idhash`: its hasher.
//! - [`names`]: Calico's ids and names (`s:`/`n:` set ids, length-limited chain names).
//! - [`error`]: the errors ([`PolicyError`] names the object, [`RuleError`] the rule).
//!
//! References (Calico v3.32): the policy model in Calico's docs
//! (<https://docs.tigera.io/calico/latest/reference/resources/networkpolicy>,
//! `globalnetworkpolicy`, `networkset`, `globalnetworkset`, `tier`, `profile`); the selector
//! rewriting of `libcalico-go/lib/backend/syncersv1/updateprocessors` (`rules.go`,
//! `networkpolicyprocessor.go`, `globalnetworkpolicyprocessor.go`); Felix's calculation graph
//! (`felix/calc`: `active_rules_calculator.go`, `rule_scanner.go`, `policy_sorter.go`,
//! `event_sequencer.go`), label index (`felix/labelindex`) and rule rendering (`felix/rules`:
//! `policy.go`, `endpoints.go`). No RFCs are implemented here.

#![forbid(unsafe_code)]

pub mod calc;
pub mod error;
pub mod eval;
mod idhash;
mod index;
pub mod ir;
pub mod names;
mod rules;
pub mod selectors;

pub use error::{PolicyError, RuleError};

pub use calc::inputs::{NetworkSetInput, PolicyInput, TierInput};
pub use calc::{PolicyCalculator, Stats};
