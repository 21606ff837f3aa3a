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

/// The mandatory attributes except the one with type `code` (so a test's own is not a
/// duplicate).
fn base_without(code: u8) -> Vec<u8> {
    [&ORIGIN_IGP[..], &EMPTY_PATH, &NH]
        .into_iter()
        .filter(|a| a[1] != code)
        .flatten()
        .copied()
        .collect()
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

/// Decodes an UPDATE that RFC 7606 lets through; returns it with its handled errors.
fn lenient<'a>(bytes: &'a [u8], ctx: &Ctx) -> Update<'a> {
    match Message::decode(bytes, ctx) {
        Ok(Message::Update(u)) => u,
        other => panic!("must decode as an UPDATE: {other:?}"),
    }
}

fn ebgp() -> Ctx {
    Ctx { ebgp: true, ..ctx() }
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
        let bytes = update(&attrs, &NLRI);
        let u = lenient(&bytes, &ctx());
        // RFC 7606 §3 (d): treat-as-withdraw, with the NOTIFICATION RFC 4271 would have sent.
        assert!(u.treat_as_withdraw());
        assert_eq!(u.errors.len(), 1);
        check(&u.errors[0], 3, 3, &[code]);
        assert_eq!(u.errors[0].attribute.map(|a| a.type_code), Some(code));
    }
    // Withdrawal-only UPDATEs need no attributes.
    assert!(Message::decode(&msg(2, &[0, 4, 24, 10, 1, 2, 0, 0]), &ctx()).is_ok());
}

#[test]
fn attribute_errors_carry_the_attribute() {
    // (attribute, NOTIFICATION subcode, RFC 7606 approach)
    let cases: Vec<(Vec<u8>, u8, ErrorAction)> = vec![
        // ORIGIN with the optional bit → flags error, treat-as-withdraw (§3 c)
        (vec![0xc0, 1, 1, 0], 4, ErrorAction::TreatAsWithdraw),
        // ORIGIN length 2 / value 3 (§7.1)
        (vec![0x40, 1, 2, 0, 0], 5, ErrorAction::TreatAsWithdraw),
        (vec![0x40, 1, 1, 3], 6, ErrorAction::TreatAsWithdraw),
        // NEXT_HOP length 3 (§7.3), and a martian next hop (RFC 4271 §6.3: Invalid NEXT_HOP)
        (vec![0x40, 3, 3, 1, 2, 3], 5, ErrorAction::TreatAsWithdraw),
        (vec![0x40, 3, 4, 224, 0, 0, 1], 8, ErrorAction::TreatAsWithdraw),
        (vec![0x40, 3, 4, 0, 0, 0, 0], 8, ErrorAction::TreatAsWithdraw),
        // MED length 2 (§7.4), LOCAL_PREF length 3 on iBGP (§7.5)
        (vec![0x80, 4, 2, 0, 0], 5, ErrorAction::TreatAsWithdraw),
        (vec![0x40, 5, 3, 0, 0, 1], 5, ErrorAction::TreatAsWithdraw),
        // ATOMIC_AGGREGATE length 1 → discard (§7.6)
        (vec![0x40, 6, 1, 0], 5, ErrorAction::AttributeDiscard),
        // AGGREGATOR length 6 on a 4-octet session → discard (§7.7); AS 0 → discard (RFC 7607)
        (
            vec![0xc0, 7, 6, 0, 1, 1, 2, 3, 4],
            5,
            ErrorAction::AttributeDiscard,
        ),
        (
            vec![0xc0, 7, 8, 0, 0, 0, 0, 1, 2, 3, 4],
            9,
            ErrorAction::AttributeDiscard,
        ),
        // AGGREGATOR marked well-known → flags error, discard (its own rule, §3 c)
        (
            vec![0x40, 7, 8, 0, 0, 0, 1, 1, 2, 3, 4],
            4,
            ErrorAction::AttributeDiscard,
        ),
        // COMMUNITIES length 3 and 0 (§7.8)
        (vec![0xc0, 8, 3, 0, 0, 0], 5, ErrorAction::TreatAsWithdraw),
        (vec![0xc0, 8, 0], 5, ErrorAction::TreatAsWithdraw),
        // ORIGINATOR_ID length 3, CLUSTER_LIST length 5 and 0 (§7.9, §7.10)
        (vec![0x80, 9, 3, 1, 2, 3], 5, ErrorAction::TreatAsWithdraw),
        (vec![0x80, 10, 5, 1, 2, 3, 4, 5], 5, ErrorAction::TreatAsWithdraw),
        (vec![0x80, 10, 0], 5, ErrorAction::TreatAsWithdraw),
        // LARGE_COMMUNITY length 11 (RFC 8092 §5)
        (
            [&[0xc0u8, 32, 11][..], &[0; 11]].concat(),
            5,
            ErrorAction::TreatAsWithdraw,
        ),
        // AS4_PATH malformed, AS4_AGGREGATOR length 6 → discard (RFC 6793 §6)
        (vec![0xc0, 17, 2, 2, 1], 9, ErrorAction::AttributeDiscard),
        (
            vec![0xc0, 18, 6, 0, 1, 1, 2, 3, 4],
            9,
            ErrorAction::AttributeDiscard,
        ),
    ];
    for (attr, sub, action) in cases {
        let bytes = update(&[&attr[..], &base_without(attr[1])].concat(), &NLRI);
        let u = lenient(&bytes, &ctx());
        assert_eq!(u.errors.len(), 1, "{attr:?}: {:?}", u.errors);
        let e = &u.errors[0];
        check(e, 3, sub, &attr);
        assert_eq!(e.action, action, "{attr:?} {e}");
        let at = e.attribute.expect("names the attribute");
        assert_eq!(
            (at.type_code, at.flags, at.length),
            (attr[1], attr[0], attr[2] as usize)
        );
        assert_eq!(u.treat_as_withdraw(), action == ErrorAction::TreatAsWithdraw);
        if action == ErrorAction::AttributeDiscard {
            // The rest of the UPDATE stands.
            assert_eq!(u.attrs.next_hop, Some("10.0.0.1".parse().unwrap()));
            assert_eq!(u.nlri().count(), 1);
        }
    }
    // What still resets the session: an unrecognized well-known attribute (RFC 4271 §6.3), and
    // a malformed MP_REACH_NLRI (RFC 7606 §7.11: its NLRI cannot be located).
    for (attr, sub) in [
        (vec![0x40, 99, 1, 0], 2),
        (vec![0x80, 14, 10, 0, 2, 1, 5, 1, 2, 3, 4, 5, 0], 9),
        // MP_REACH marked transitive (RFC 4760 says optional non-transitive)
        (vec![0xc0, 14, 11, 0, 1, 1, 4, 10, 0, 0, 1, 0, 8, 10], 4),
    ] {
        let e = err(&update(&[&attr[..], &base_attrs()].concat(), &NLRI));
        check(&e, 3, sub, &attr);
        assert_eq!(e.action, ErrorAction::SessionReset, "{e}");
        assert_eq!(e.attribute.map(|a| a.type_code), Some(attr[1]));
    }
}

#[test]
fn strongest_action_wins() {
    // Discard + treat-as-withdraw → treat-as-withdraw (§3 h); both logged.
    let attrs = [&[0x40u8, 6, 1, 0][..], &[0xc0, 8, 3, 0, 0, 0], &base_attrs()].concat();
    let bytes = update(&attrs, &NLRI);
    let u = lenient(&bytes, &ctx());
    let actions: Vec<ErrorAction> = u.errors.iter().map(|e| e.action).collect();
    assert_eq!(
        actions,
        [ErrorAction::AttributeDiscard, ErrorAction::TreatAsWithdraw]
    );
    assert!(u.treat_as_withdraw());
    // Treat-as-withdraw + a malformed MP_REACH → session reset.
    let mp = [0x80u8, 14, 10, 0, 2, 1, 5, 1, 2, 3, 4, 5, 0];
    let attrs = [&[0xc0u8, 8, 3, 0, 0, 0][..], &mp, &base_attrs()].concat();
    assert_eq!(err(&update(&attrs, &NLRI)).action, ErrorAction::SessionReset);
}

#[test]
fn attribute_length_overruns() {
    // RFC 7606 §4: the last attribute overruns the field → treat-as-withdraw, the NLRI still
    // located by the Total Attribute Length.
    let attrs = [&base_attrs()[..], &[0xc0, 8, 8, 0, 0]].concat();
    let bytes = update(&attrs, &NLRI);
    let u = lenient(&bytes, &ctx());
    assert!(u.treat_as_withdraw());
    check(&u.errors[0], 3, 5, &[0xc0, 8, 8, 0, 0]);
    assert_eq!(
        u.nlri().map(|n| n.prefix.to_string()).collect::<Vec<_>>(),
        ["10.1.2.0/24"]
    );
    // Fewer than 3 octets left for a header → treat-as-withdraw (3/1).
    let attrs = [&base_attrs()[..], &[0xc0, 8]].concat();
    let bytes = update(&attrs, &NLRI);
    let u = lenient(&bytes, &ctx());
    assert!(u.treat_as_withdraw());
    check(&u.errors[0], 3, 1, &[]);
    // Extended length with 3 octets left.
    let attrs = [&base_attrs()[..], &[0xd0, 8, 0]].concat();
    assert!(lenient(&update(&attrs, &NLRI), &ctx()).treat_as_withdraw());
    // No NLRI to withdraw (an MP_REACH may be hidden past the error): reset (§5.2).
    let e = err(&update(&[0x40, 1, 5, 0], &[]));
    check(&e, 3, 5, &[0x40, 1, 5, 0]);
    assert_eq!(e.action, ErrorAction::SessionReset);
    // An overrunning MP_REACH always resets.
    let e = err(&update(&[0x80, 14, 20, 0, 2, 1, 16], &[]));
    assert_eq!(e.action, ErrorAction::SessionReset);
}

#[test]
fn no_reachable_nlri_escalates_to_reset() {
    // RFC 7606 §5.2: attributes, an error worse than discard, nothing announced → reset.
    let attrs = [&[0xc0u8, 8, 3, 0, 0, 0][..], &base_attrs()].concat();
    let e = err(&update(&attrs, &[]));
    check(&e, 3, 5, &[0xc0, 8, 3, 0, 0, 0]);
    assert_eq!(e.action, ErrorAction::SessionReset);
    // Attribute discard alone does not escalate.
    let attrs = [&[0x40u8, 6, 1, 0][..], &base_attrs()].concat();
    let bytes = update(&attrs, &[]);
    let u = lenient(&bytes, &ctx());
    assert!(!u.treat_as_withdraw());
    assert_eq!(u.errors.len(), 1);
    // A discarded attribute is not End-of-RIB.
    assert_eq!(u.end_of_rib(), None);
}

#[test]
fn malformed_as_path() {
    for path in [
        vec![0x40, 2, 2, 2, 1],
        vec![0x40, 2, 2, 9, 0],
        vec![0x40, 2, 6, 2, 2, 0, 0, 0, 1],
        // RFC 7607: AS 0 in the path
        vec![0x40, 2, 6, 2, 1, 0, 0, 0, 0],
    ] {
        let attrs = [&ORIGIN_IGP[..], &path, &NH].concat();
        let bytes = update(&attrs, &NLRI);
        let u = lenient(&bytes, &ctx());
        assert_eq!(u.errors.len(), 1, "{path:?}");
        check(&u.errors[0], 3, 11, &[]);
        assert_eq!(u.errors[0].action, ErrorAction::TreatAsWithdraw);
        assert_eq!(u.errors[0].attribute.map(|a| a.type_code), Some(AS_PATH));
    }
}

#[test]
fn duplicate_attributes() {
    // RFC 7606 §3 (g): the first instance counts, later ones are discarded.
    let attrs = [
        &base_attrs()[..],
        &[0x80, 4, 4, 0, 0, 0, 1],
        &[0x80, 4, 4, 0, 0, 0, 2],
    ]
    .concat();
    let bytes = update(&attrs, &NLRI);
    let u = lenient(&bytes, &ctx());
    assert_eq!(u.attrs.med, Some(1));
    assert_eq!(u.errors.len(), 1);
    check(&u.errors[0], 3, 1, &[]);
    assert_eq!(u.errors[0].action, ErrorAction::AttributeDiscard);
    assert!(!u.treat_as_withdraw());
    // A second MP_REACH or MP_UNREACH resets the session.
    let mp = [0x80u8, 15, 3, 0, 2, 1];
    let e = err(&update(&[&mp[..], &mp].concat(), &[]));
    check(&e, 3, 1, &[]);
    assert_eq!(e.action, ErrorAction::SessionReset);
}

#[test]
fn attributes_not_taken_from_external_peers() {
    // RFC 7606 §7.5, §7.9, §7.10: LOCAL_PREF, ORIGINATOR_ID, CLUSTER_LIST from eBGP: discard,
    // whatever their length.
    let attrs = [
        &base_attrs()[..],
        &[0x40, 5, 4, 0, 0, 0, 200],
        &[0x80, 9, 4, 1, 1, 1, 1],
        &[0x80, 10, 3, 1, 1, 1],
    ]
    .concat();
    let bytes = update(&attrs, &NLRI);
    let u = lenient(&bytes, &ebgp());
    assert_eq!(
        (
            u.attrs.local_pref,
            u.attrs.originator_id,
            u.attrs.cluster_list.len()
        ),
        (None, None, 0)
    );
    assert_eq!(u.errors.len(), 3);
    assert!(u.errors.iter().all(|e| e.action == ErrorAction::AttributeDiscard));
    assert!(!u.treat_as_withdraw());
    // The same from an internal peer is taken (and the bad CLUSTER_LIST withdraws).
    let u = lenient(&bytes, &ctx());
    assert_eq!(u.attrs.local_pref, Some(200));
    assert!(u.treat_as_withdraw());
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
