//! The manifest loader with small limits on, on arbitrary bytes: every document loads or is
//! refused, never a panic; the stream ends at the document limit; what loads validates and
//! serialises.
#![no_main]

use brindle_model::{Limits, Loader};
use libfuzzer_sys::fuzz_target;

const LIMITS: Limits = Limits {
    max_depth: 8,
    max_document_bytes: 2048,
    max_documents: 16,
};

fuzz_target!(|data: &[u8]| {
    let mut items = 0;
    for doc in Loader::documents("fuzz", data, LIMITS) {
        items += 1;
        assert!(items <= LIMITS.max_documents + 1, "the stream went past its limit");
        match doc {
            Ok(docs) => {
                for d in docs {
                    if let brindle_model::Document::Calico(r) = d {
                        let _ = brindle_model::validate(&r);
                        serde_json::to_vec(&r).expect("resources serialise");
                    }
                }
            }
            Err(e) => assert!(!e.message.is_empty()),
        }
    }
});
