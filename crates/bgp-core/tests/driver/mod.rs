//! A session under test with its own clock, each input 10 ms after the one before: the
//! harness of the transition-table tests (FSM, graceful restart, collisions).

use std::time::{Duration, Instant};

use brindle_bgp_core::*;
use brindle_bgp_wire::*;

pub struct H {
    pub s: Session,
    pub now: Instant,
}

impl H {
    pub fn feed(&mut self, i: Input<'_>) -> Vec<Output> {
        self.now += Duration::from_millis(10);
        self.s.handle(i, self.now)
    }

    /// `bytes` (one whole message, as a peer sends it) on connection `conn`.
    pub fn msg(&mut self, conn: ConnId, bytes: &[u8]) -> Vec<Output> {
        let ctx = Ctx {
            four_octet_as: true,
            ..Ctx::default()
        };
        let m = Message::decode(bytes, &ctx).expect("test message decodes");
        self.feed(Input::Message { conn, msg: &m })
    }
}
