//! Synchronous typed rtnetlink operations, one socket per network namespace.
//!
//! Module map: (to be written with the first module)
