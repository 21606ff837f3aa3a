//! The typed resource client lives in the datastore crate, shared with the agent and the CNI
//! plugin; the CLI uses it as is.

pub use brindle_datastore::client::{Client, ResourceError, Result};
