//! Every decode error answers with the NOTIFICATION RFC 4271 §6 prescribes (code, subcode and
//! data), and UPDATE errors carry the RFC 7606 action.

use brindle_bgp_wire::attrs::*;
use brindle_bgp_wire::header::frame_len;
use brindle_bgp_wire::*;

fn ctx() -> Ctx {
    Ctx {
        four_octet_as: true,
        ..Ctx::default()
    }
}

fn msg(t: u8, body: &[u8]) -> Vec<u8> {
    let mut v = vec![0xff; 16];
    v.extend_from_slice(&((19 + body.len()) as u16).to_be_bytes());
    v.push(t);
    v.extend_from_slice(body);
    v
}

/// An UPDATE body with the given attribute bytes and IPv4 NLRI bytes.
fn update(attrs: &[u8], nlri: &[u8]) -> Vec<u8> {
    let mut b = vec![0, 0];
    b.extend_from_slice(&(attrs.len() as u16).to_be_bytes());
    b.extend_from_slice(attrs);
    b.extend_from_slice(nlri);
    msg(2, &b)
}

fn err(bytes: &[u8]) -> DecodeError {
    Message::decode(bytes, &ctx()).expect_err("must not decode")
}

fn check(e: &DecodeError, code: u8, sub: u8, data: &[u8]) {
    assert_eq!(
        (
            e.notification.code,
            e.notification.subcode,
            e.notification.data.as_slice()
        ),
        (code, sub, data),
        "{e}"
    );
}

const ORIGIN_IGP: [u8; 4] = [0x40, 1, 1, 0];
const EMPTY_PATH: [u8; 3] = [0x40, 2, 0];
const NH: [u8; 7] = [0x40, 3, 4, 10, 0, 0, 1];
const NLRI: [u8; 4] = [24, 10, 1, 2];

fn base_attrs() -> Vec<u8> {
    [&ORIGIN_IGP[..], &EMPTY_PATH, &NH].concat()
}

#[test]
fn header_errors() {
    let mut bad_marker = msg(4, &[]);
    bad_marker[3] = 0;
    check(&frame_len(&bad_marker, 4096).unwrap_err(), 1, 1, &[]);
    let mut short = msg(4, &[]);
    short[16..18].copy_from_slice(&18u16.to_be_bytes());
    check(&frame_len(&short, 4096).unwrap_err(), 1, 2, &[0, 18]);
    let mut long = msg(4, &[]);
    long[16..18].copy_from_slice(&4097u16.to_be_bytes());
    check(&frame_len(&long, 4096).unwrap_err(), 1, 2, &4097u16.to_be_bytes());
    check(&err(&msg(9, &[])), 1, 3, &[9]);
    check(&err(&msg(4, &[0])), 1, 2, &[0, 20]);
    check(&err(&msg(3, &[6])), 1, 2, &[0, 20]);
    check(&err(&msg(1, &[4, 0, 1])), 1, 2, &[0, 22]);
    check(&err(&msg(2, &[0])), 1, 2, &[0, 20]);
    // RFC 7313 §5: bad ROUTE-REFRESH length → 7/1 with the whole message as data.
    let rr = msg(5, &[0, 1, 0]);
    check(&err(&rr), 7, 1, &rr);
    // Partial input is not an error.
    assert_eq!(frame_len(&msg(4, &[])[..10], 4096).unwrap(), None);
}

#[test]
fn open_errors() {
    // Optional parameter type 1 (authentication, deprecated) → 2/4.
    let body = [4, 0xfc, 0, 0, 90, 1, 2, 3, 4, 3, 1, 1, 0];
    check(&err(&msg(1, &body)), 2, 4, &[]);
    // Parameters overrunning the message → 2/0.
    let body = [4, 0xfc, 0, 0, 90, 1, 2, 3, 4, 9, 2, 6, 1, 4];
    check(&err(&msg(1, &body)), 2, 0, &[]);
}

#[test]
fn update_structure_errors() {
    // Withdrawn length overruns → 3/1.
    let e = err(&msg(2, &[0, 9, 0, 0]));
    check(&e, 3, 1, &[]);
    // Total attribute length overruns → 3/1.
    let e = err(&msg(2, &[0, 0, 0, 9, 0x40]));
    check(&e, 3, 1, &[]);
    // Bad prefix length in NLRI → 3/10, and a reset (the NLRI cannot be located).
    let e = err(&update(&base_attrs(), &[33, 1, 2, 3, 4, 5]));
    check(&e, 3, 10, &[]);
    assert_eq!(e.action, ErrorAction::SessionReset);
    // Truncated prefix in withdrawn routes → 3/10.
    check(&err(&msg(2, &[0, 2, 24, 10, 0, 0])), 3, 10, &[]);
}

#[test]
fn missing_well_known_attributes() {
    for (drop, code) in [(0usize, ORIGIN), (1, AS_PATH), (2, NEXT_HOP)] {
        let parts: [&[u8]; 3] = [&ORIGIN_IGP, &EMPTY_PATH, &NH];
        let attrs: Vec<u8> = parts
            .iter()
            .enumerate()
            .filter(|(i, _)| *i != drop)
            .flat_map(|(_, p)| p.iter().copied())
            .collect();
        let e = err(&update(&attrs, &NLRI));
        check(&e, 3, 3, &[code]);
        assert_eq!(e.action, ErrorAction::TreatAsWithdraw);
    }
    // Withdrawal-only UPDATEs need no attributes.
    assert!(Message::decode(&msg(2, &[0, 4, 24, 10, 1, 2, 0, 0]), &ctx()).is_ok());
}

#[test]
fn attribute_errors_carry_the_attribute() {
    let cases: Vec<(Vec<u8>, u8, ErrorAction)> = vec![
        // ORIGIN with the optional bit → flags error
        (vec![0xc0, 1, 1, 0], 4, ErrorAction::TreatAsWithdraw),
        // ORIGIN length 2 → length error
        (vec![0x40, 1, 2, 0, 0], 5, ErrorAction::TreatAsWithdraw),
        // ORIGIN 3 → invalid ORIGIN
        (vec![0x40, 1, 1, 3], 6, ErrorAction::TreatAsWithdraw),
        // NEXT_HOP length 3
        (vec![0x40, 3, 3, 1, 2, 3], 5, ErrorAction::TreatAsWithdraw),
        // MED length 2
        (vec![0x80, 4, 2, 0, 0], 5, ErrorAction::TreatAsWithdraw),
        // ATOMIC_AGGREGATE length 1 → discard
        (vec![0x40, 6, 1, 0], 5, ErrorAction::AttributeDiscard),
        // AGGREGATOR length 6 on a 4-octet session → discard
        (
            vec![0xc0, 7, 6, 0, 1, 1, 2, 3, 4],
            5,
            ErrorAction::AttributeDiscard,
        ),
        // COMMUNITIES length 3
        (vec![0xc0, 8, 3, 0, 0, 0], 5, ErrorAction::TreatAsWithdraw),
        // LARGE_COMMUNITY length 11
        (
            [&[0xc0u8, 32, 11][..], &[0; 11]].concat(),
            5,
            ErrorAction::TreatAsWithdraw,
        ),
        // unrecognized well-known attribute (type 99, optional bit clear) → 3/2
        (vec![0x40, 99, 1, 0], 2, ErrorAction::SessionReset),
        // MP_REACH with a 5-byte next hop → optional attribute error, reset
        (
            vec![0x80, 14, 10, 0, 2, 1, 5, 1, 2, 3, 4, 5, 0],
            9,
            ErrorAction::SessionReset,
        ),
    ];
    for (attr, sub, action) in cases {
        let e = err(&update(&[&attr[..], &base_attrs()].concat(), &NLRI));
        check(&e, 3, sub, &attr);
        assert_eq!(e.action, action, "{e}");
        assert_eq!(e.attribute, Some(attr[1]));
    }
    // An attribute whose length overruns the field: length error with what is left as data.
    let e = err(&update(&[0x40, 1, 5, 0], &[]));
    check(&e, 3, 5, &[0x40, 1, 5, 0]);
}

#[test]
fn malformed_as_path() {
    for path in [
        vec![0x40, 2, 2, 2, 1],
        vec![0x40, 2, 2, 9, 0],
        vec![0x40, 2, 6, 2, 2, 0, 0, 0, 1],
    ] {
        let attrs = [&ORIGIN_IGP[..], &path, &NH].concat();
        let e = err(&update(&attrs, &NLRI));
        check(&e, 3, 11, &[]);
        assert_eq!(e.action, ErrorAction::TreatAsWithdraw);
    }
}

#[test]
fn duplicate_attributes() {
    let attrs = [
        &base_attrs()[..],
        &[0x80, 4, 4, 0, 0, 0, 1],
        &[0x80, 4, 4, 0, 0, 0, 2],
    ]
    .concat();
    let e = err(&update(&attrs, &NLRI));
    check(&e, 3, 1, &[]);
    assert_eq!(e.action, ErrorAction::AttributeDiscard);
    let mp = [0x80u8, 15, 3, 0, 2, 1];
    let e = err(&update(&[&mp[..], &mp].concat(), &[]));
    check(&e, 3, 1, &[]);
    assert_eq!(e.action, ErrorAction::SessionReset);
}

#[test]
fn unknown_optional_attributes() {
    // Optional transitive: kept (and re-sent with Partial); optional non-transitive: dropped.
    let attrs = [&base_attrs()[..], &[0xc0, 200, 2, 7, 7], &[0x80, 201, 1, 9]].concat();
    let bytes = update(&attrs, &NLRI);
    let Message::Update(u) = Message::decode(&bytes, &ctx()).unwrap() else {
        panic!()
    };
    assert_eq!(
        u.attrs.unknown,
        vec![RawAttr {
            flags: 0xc0,
            type_code: 200,
            value: vec![7, 7]
        }]
    );
    let re = OutMessage::Update(u.to_owned_msg()).to_bytes(&ctx());
    assert!(
        re.windows(5).any(|w| w == [0xe0, 200, 2, 7, 7]),
        "partial bit set on re-send"
    );
}

#[test]
fn notification_texts_match_bird() {
    for (c, s, text) in [
        (4, 0, "Hold timer expired"),
        (6, 2, "Administrative shutdown"),
        (6, 7, "Connection collision resolution"),
        (2, 6, "Unacceptable hold time"),
        (3, 11, "Malformed AS_PATH"),
        (9, 9, "Unknown error 9.9"),
    ] {
        assert_eq!(Notification::new(c, s, vec![]).description(), text);
    }
}
