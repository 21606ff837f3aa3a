//! The policy calculation on whatever the manifest loader accepts: every resource goes in (an
//! object the calculation refuses is an error, never a panic), a third come out again, with
//! flushes in between; the deltas applied to a mirror must give the full state.
#![no_main]

use brindle_policy::PolicyCalculator;
use brindle_policy::ir::{Settings, State};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(resources) = brindle_model::load_bytes("fuzz", data) else {
        return;
    };
    let mut calc = PolicyCalculator::new("node-1", Settings::default());
    let mut mirror = State::default();
    for (i, r) in resources.iter().enumerate() {
        let _ = calc.upsert_resource(r);
        if i % 2 == 1 {
            mirror.apply(&calc.flush());
        }
    }
    for r in resources.iter().step_by(3) {
        let m = r.metadata();
        calc.remove_resource(r.kind(), &m.namespace, &m.name);
    }
    mirror.apply(&calc.flush());
    assert_eq!(mirror, calc.state());
});
