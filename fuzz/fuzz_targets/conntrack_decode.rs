//! What a ctnetlink dump delivers for one flow (the attributes after the 20-byte nfgenmsg
//! header), as `Conntrack::for_each_flow` hands them to `decode_flow`: any bytes must give a
//! flow or a DecodeError, never a panic; a decoded flow is found by each of its tuples'
//! addresses (what the cleanup selects by), and decoding is deterministic.
#![no_main]

use brindle_netlink::conntrack::decode_flow;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(f) = decode_flow(data) {
        for addr in [f.original.src, f.original.dst, f.reply.src, f.reply.dst] {
            assert!(f.involves(addr));
        }
        assert_eq!(decode_flow(data).expect("decodes again"), f);
    }
});
