//! Calico projectcalico.org/v3-compatible resources: types, defaults, validation, selectors (pure).
//!
//! Module map: (to be written with the first module)
