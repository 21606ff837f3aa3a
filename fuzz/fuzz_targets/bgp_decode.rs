//! BGP message decoder: any bytes from a peer must give a message or a DecodeError, never a
//! panic; whatever decodes must re-encode into something that decodes the same way.
//! Seeds: crates/bgp-wire/tests/captures (real BIRD, GoBGP, FRR, ExaBGP messages).
#![no_main]

use brindle_bgp_wire::{AddPathFamilies, Ctx, Message, OutMessage, header};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let both = AddPathFamilies {
        ipv4: true,
        ipv6: true,
    };
    for ctx in [
        Ctx {
            four_octet_as: true,
            ..Ctx::default()
        },
        Ctx::default(),
        Ctx {
            four_octet_as: true,
            add_path_rx: both,
            add_path_tx: both,
            ..Ctx::default()
        },
    ] {
        // Framing as the speaker does it, then each message.
        let mut rest = data;
        while let Ok(Some(len)) = header::frame_len(rest, ctx.max_len) {
            let msg = &rest[..len];
            rest = &rest[len..];
            let Ok(m) = Message::decode(msg, &ctx) else {
                continue;
            };
            let out = match &m {
                Message::Open(o) => OutMessage::Open(o.clone()),
                Message::Update(u) => {
                    for n in u.nlri().chain(u.withdrawn()) {
                        std::hint::black_box(n);
                    }
                    if let Some((_, _, it)) = u.mp_nlri() {
                        it.for_each(|n| {
                            std::hint::black_box(n);
                        });
                    }
                    OutMessage::Update(u.to_owned_msg())
                }
                Message::Notification(n) => OutMessage::Notification(n.clone()),
                Message::Keepalive => OutMessage::Keepalive,
                Message::RouteRefresh(r) => OutMessage::RouteRefresh(*r),
            };
            let bytes = out.to_bytes(&ctx);
            if bytes.len() <= ctx.max_len {
                let again = Message::decode(&bytes, &ctx);
                assert!(
                    again.is_ok(),
                    "re-encoded message does not decode: {m:?} -> {again:?}"
                );
            }
        }
    }
});
