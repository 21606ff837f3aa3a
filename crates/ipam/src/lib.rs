//! Calico's block-affinity IPAM over the Brindle datastore.
//!
//! Module map: (to be written with the first module)
