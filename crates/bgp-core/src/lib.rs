//! BGP session state machine and RIB: sans-IO, inputs plus now to outputs (pure).
//!
//! Module map: (to be written with the first module)
