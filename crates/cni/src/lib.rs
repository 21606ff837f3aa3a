//! CNI plugin and IPAM plugin: Calico-compatible pod wiring, CNI 0.4/1.0/1.1.
//!
//! Module map: (to be written with the first module)
