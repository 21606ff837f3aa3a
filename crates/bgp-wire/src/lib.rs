//! BGP-4 wire codec: OPEN, UPDATE, NOTIFICATION, KEEPALIVE, ROUTE-REFRESH and capabilities (pure).
//!
//! Module map: (to be written with the first module)
