//! The node agent: datastore watch, desired state, BGP and dataplane driving, status.
//!
//! Module map: (to be written with the first module)
