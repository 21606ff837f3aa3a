//! Stored resource values as the agent reads them (lenient decoding, `brindle_model::lenient`)
//! on arbitrary bytes, for every kind: a value or an error, never a panic; a value that decodes
//! strictly decodes leniently to the same thing with no field dropped; whatever decodes
//! leniently serialises and reads back strictly.
#![no_main]

use brindle_model::{Kind, Resource};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    for kind in Kind::ALL {
        let mut dropped = 0;
        let lenient = Resource::from_json_lenient(kind, data, &mut |_| dropped += 1);
        if let Ok(strict) = Resource::from_json(kind, data) {
            assert_eq!(lenient.as_ref().ok(), Some(&strict));
            assert_eq!(dropped, 0);
        }
        if let Ok(r) = lenient {
            let json = serde_json::to_vec(&r).expect("resources serialise");
            let back = Resource::from_json(kind, &json).expect("own JSON reads back strictly");
            assert_eq!(back, r);
        }
    }
});
