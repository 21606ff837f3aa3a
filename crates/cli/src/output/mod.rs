//! Output renderers shared by every command that prints what calicoctl prints:
//! - [`tabwriter`]: Go `text/tabwriter` (the `get` tables, `-o ps|wide`);
//! - [`boxtable`]: tablewriter v0.0.5 box tables (`node status`, `ipam show`);
//! - [`yaml`]: go-yaml v2 via `sigs.k8s.io/yaml` (`-o yaml`);
//! - [`json`]: Go `json.MarshalIndent` (`-o json`).

pub mod boxtable;
pub mod json;
pub mod tabwriter;
pub mod yaml;
