//! The selector parser on arbitrary text: parse, and for what parses, its canonical text must
//! parse again and print the same.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    if let Ok(sel) = brindle_model::Selector::parse(text) {
        let once = brindle_model::Selector::parse(&sel.to_string()).expect("canonical text parses");
        let twice = brindle_model::Selector::parse(&once.to_string()).expect("canonical text parses");
        assert_eq!(once.to_string(), twice.to_string());
    }
});
