//! BGP speaker on tokio: listener, per-peer sessions, RIB actor, status.
//!
//! Module map: (to be written with the first module)
