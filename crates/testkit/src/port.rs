//! Free TCP ports on loopback. The port is free when returned; tests start their daemon at once
//! and retry on a bind race.

use std::net::TcpListener;

/// A currently free TCP port on 127.0.0.1.
pub fn free_tcp() -> u16 {
    let l = TcpListener::bind(("127.0.0.1", 0)).expect("bind 127.0.0.1:0");
    l.local_addr().expect("local_addr").port()
}
