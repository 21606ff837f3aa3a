//! Clusters of Brindle nodes in network namespaces on one machine.
//!
//! Module map: (to be written with the first module)
