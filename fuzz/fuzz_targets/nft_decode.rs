//! What an nf_tables socket receives (dump replies, notifications, errors), down the path the
//! reconciler takes it: framing, then each message decoded by kind. Any bytes must give
//! messages or DecodeErrors, never a panic; every rule that decodes must re-encode into a
//! message that decodes to the same rule (so the reconciler's comparison is sound).
//! Seeds: crates/netlink/tests/fuzz-seeds/nft_decode (real kernel replies).
#![no_main]

use brindle_netlink::nftables::{Batch, TableFamily, dump};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = dump::decode_all(data);
    for m in dump::messages(data).flatten() {
        if m.control {
            continue;
        }
        if let Ok(r) = dump::decode_rule(&m) {
            let mut b = Batch::new(TableFamily::Inet, &r.table);
            b.add_rule(&r.chain, &r.rule);
            let bytes = b.buf_bytes();
            let again: Vec<_> = dump::messages(&bytes).collect();
            assert_eq!(again.len(), 1);
            let back = dump::decode_rule(again[0].as_ref().unwrap()).unwrap();
            assert_eq!(back.rule, r.rule);
        }
    }
});
