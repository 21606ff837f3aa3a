//! The manifest loader on arbitrary bytes: it must return resources or an error, never panic;
//! whatever loads must validate (ok or error) and serialise without panicking.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(resources) = brindle_model::load_bytes("fuzz", data) {
        for mut r in resources {
            let ok = brindle_model::validate(&r).is_ok();
            if ok {
                brindle_model::apply_defaults(&mut r);
            }
            let json = serde_json::to_vec(&r).expect("resources serialise");
            let back = brindle_model::Resource::from_json(r.kind(), &json).expect("own JSON reads back");
            assert_eq!(back, r);
        }
    }
});
