//! The nf_tables layer against the real kernel, checked with Debian's `nft`: a table written over
//! netlink must list (`nft -j list table`) exactly like the same table loaded from its nft text
//! with `nft -f`, in a namespace of its own.

use std::io::Write;
use std::process::Stdio;
use std::time::Duration;

use brindle_netlink::NetnsFd;
use brindle_netlink::nftables::{
    Batch, ChainSpec, DataType, Elements, Family, HookPoint, Nft, NftMonitor, Rule, SetSpec, Side,
    TableFamily, Verdict, ct_state, priority,
};
use brindle_testkit::Netns;
use serde_json::Value;

const T: &str = "brindletest";

fn nft_f(ns: &Netns, text: &str) {
    let mut c = ns.cmd("nft");
    c.args(["-f", "-"])
        .stdin(Stdio::piped())
        .stderr(Stdio::piped())
        .stdout(Stdio::piped());
    let mut child = c.spawn().expect("run nft");
    child.stdin.take().unwrap().write_all(text.as_bytes()).unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "nft -f failed: {}\n{text}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// `nft -j list table inet T` without handles (they differ between namespaces).
fn listing(ns: &Netns, family: &str) -> Value {
    let out = ns.run("nft", &["-j", "list", "table", family, T]);
    let mut v: Value = serde_json::from_str(&out).unwrap();
    strip(&mut v);
    v
}

fn strip(v: &mut Value) {
    match v {
        Value::Object(m) => {
            m.remove("handle");
            m.remove("metainfo");
            for x in m.values_mut() {
                strip(x);
            }
        }
        Value::Array(a) => {
            a.retain(|x| x.get("metainfo").is_none());
            for x in a {
                strip(x);
            }
        }
        _ => {}
    }
}

/// A table with every kind of object and rule Brindle writes.
struct Sample {
    family: TableFamily,
    sets: Vec<(SetSpec, Elements)>,
    chains: Vec<(ChainSpec, Vec<Rule>)>,
}

/// The sample for one table family: an `inet` table holds everything (rules check the family
/// first), an `ip`/`ip6` table what is of its family.
fn sample(family: TableFamily) -> Sample {
    use Family::{V4, V6};
    let fits = |f: Option<Family>| {
        matches!(
            (family, f),
            (_, None) | (TableFamily::Inet, _) | (TableFamily::Ip, Some(V4)) | (TableFamily::Ip6, Some(V6))
        )
    };
    let r = || {
        if family == TableFamily::Inet {
            Rule::inet()
        } else {
            Rule::new()
        }
    };
    let nets = |v: &[&str]| Elements::Nets(v.iter().map(|s| s.parse().unwrap()).collect());
    let all_sets = vec![
        (
            Some(V4),
            SetSpec::new("cali40s-abc", &[DataType::Ipv4Addr])
                .interval()
                .with_comment("app == 'web'"),
            nets(&[
                "10.233.64.0/18",
                "10.233.94.1/32",
                "192.168.0.0/25",
                "192.168.0.128/25",
                "172.16.0.5/32",
            ]),
        ),
        (
            Some(V6),
            SetSpec::new("cali60s-abc", &[DataType::Ipv6Addr]).interval(),
            nets(&["fd00:10::/64", "fd00:20::1/128"]),
        ),
        (
            None,
            SetSpec::new("cali-ports-1", &[DataType::InetService]).interval(),
            Elements::Ports(vec![(80, 81), (443, 443), (8000, 8080)]),
        ),
        (
            None,
            SetSpec::new("cali-port-protocols", &[DataType::InetProto]),
            Elements::Protos(vec![6, 17, 132, 136]),
        ),
        (
            Some(V4),
            SetSpec::new(
                "cali40n-xyz",
                &[DataType::Ipv4Addr, DataType::InetProto, DataType::InetService],
            )
            .interval(),
            Elements::AddrProtoPorts(vec![
                ("10.233.94.1".parse().unwrap(), 6, 80),
                ("10.233.94.2".parse().unwrap(), 17, 53),
            ]),
        ),
        (
            Some(V6),
            SetSpec::new(
                "cali60n-xyz",
                &[DataType::Ipv6Addr, DataType::InetProto, DataType::InetService],
            )
            .interval(),
            Elements::AddrProtoPorts(vec![("fd00:10::1".parse().unwrap(), 6, 8080)]),
        ),
        (
            None,
            SetSpec::new("filter-cali-to-wl-dispatch", &[DataType::Ifname]).verdict_map(),
            Elements::IfVerdicts(vec![
                ("cali1111".into(), Verdict::Goto("filter-cali-tw-cali1111".into())),
                ("cali2222".into(), Verdict::Goto("filter-cali-tw-cali2222".into())),
            ]),
        ),
    ];
    let sets = all_sets
        .into_iter()
        .filter(|(f, _, _)| fits(*f))
        .map(|(_, s, e)| (s, e))
        .collect();
    let net = |s: &str| s.parse().unwrap();
    let pol = "filter-cali-pi-np/x/web";
    let policy: Vec<(Option<Family>, Rule)> = vec![
        (
            Some(V4),
            r().l4proto(6, false)
                .addr_in(V4, Side::Src, "cali40s-abc", false)
                .port(Side::Dst, 80, 81, false)
                .set_mark_bits(0x10000)
                .ret(),
        ),
        (
            Some(V4),
            r().l4proto(17, false)
                .addr(Side::Src, &net("10.0.0.0/8"), false)
                .addr(Side::Src, &net("10.1.0.0/16"), true)
                .port_in(Side::Dst, "cali-ports-1", false)
                .drop(),
        ),
        (
            Some(V4),
            r().addr_proto_port_in(V4, Side::Dst, "cali40n-xyz", false)
                .set_mark_bits(0x20000)
                .ret(),
        ),
        (
            Some(V6),
            r().addr_proto_port_in(V6, Side::Dst, "cali60n-xyz", true)
                .addr_in(V6, Side::Src, "cali60s-abc", true)
                .drop(),
        ),
        (Some(V4), r().icmp(V4, 8, None, false).counter().accept()),
        (Some(V6), r().icmp(V6, 128, Some(0), false).accept()),
        (Some(V4), r().icmp(V4, 3, None, true).drop()),
        (
            None,
            r().l4proto(6, false)
                .port(Side::Src, 1024, 65535, true)
                .port(Side::Dst, 22, 22, true)
                .limit_per_second(10, 5)
                .log("calico-packet: ", 5),
        ),
        (
            Some(V4),
            r().addr(Side::Dst, &net("10.233.64.0/18"), false)
                .l4proto_in("cali-port-protocols")
                .accept(),
        ),
        (Some(V6), r().addr(Side::Dst, &net("fd00::/8"), true).accept()),
        (None, r().l4proto(1, true).accept()),
    ];
    let mut chains = vec![
        (
            ChainSpec::regular(pol),
            policy
                .into_iter()
                .filter(|(f, _)| fits(*f))
                .map(|(_, r)| r)
                .collect(),
        ),
        (
            ChainSpec::regular("filter-cali-tw-cali1111"),
            vec![
                r().ct_state(ct_state::ESTABLISHED | ct_state::RELATED).accept(),
                r().ct_state(ct_state::INVALID).drop(),
                r().and_mark(0xfffcffff),
                r().mark(0x20000, 0).jump(pol),
                r().mark(0x10000, 0x10000)
                    .ret()
                    .comment("Return if policy accepted"),
                r().counter().drop().comment("Drop if no profiles matched"),
            ],
        ),
        (ChainSpec::regular("filter-cali-tw-cali2222"), vec![r().drop()]),
        (
            ChainSpec::regular("filter-cali-to-wl-dispatch"),
            vec![
                r().ifname_vmap(false, "filter-cali-to-wl-dispatch"),
                r().counter().drop().comment("Unknown interface"),
            ],
        ),
        (
            ChainSpec::base("filter-FORWARD", "filter", HookPoint::Forward, priority::FILTER),
            vec![
                r().and_mark(0xffe4ffff),
                r().oifname("cali*").jump("filter-cali-to-wl-dispatch"),
                r().mark(0x10000, 0x10000).accept(),
            ],
        ),
        (
            ChainSpec::base("raw-PREROUTING", "filter", HookPoint::Prerouting, priority::RAW),
            vec![r().iifname("cali*").fib_rpf_fails().counter().drop()],
        ),
    ];
    if family != TableFamily::Ip6 {
        chains[5].1.insert(
            0,
            r().iifname("cali2222")
                .addr(Side::Src, &net("192.0.2.0/24"), false)
                .accept(),
        );
        chains.push((
            ChainSpec::base("nat-POSTROUTING", "nat", HookPoint::Postrouting, priority::SRCNAT),
            vec![
                r().addr_in(V4, Side::Src, "cali40s-abc", false)
                    .addr_in(V4, Side::Dst, "cali40s-abc", true)
                    .counter()
                    .masquerade(),
                r().oifname("tunl0")
                    .fib_saddr_oif_local(true)
                    .fib_saddr_local(false)
                    .counter()
                    .masquerade(),
            ],
        ));
        chains.push((
            ChainSpec::base("filter-INPUT", "filter", HookPoint::Input, priority::FILTER),
            vec![
                r().l4proto(17, false)
                    .port(Side::Dst, 4789, 4789, false)
                    .addr_in(V4, Side::Src, "cali40s-abc", true)
                    .fib_daddr_local(false)
                    .drop(),
            ],
        ));
    }
    Sample { family, sets, chains }
}

/// One transaction writing every sample (each into its own table).
fn batch_of(samples: &[Sample]) -> Batch {
    let mut b = Batch::new(TableFamily::Inet, T);
    for s in samples {
        b.use_table(s.family, T);
        b.add_table();
        for (spec, _) in &s.sets {
            b.add_set(spec);
        }
        for (c, _) in &s.chains {
            b.add_chain(c);
        }
        for (spec, elems) in &s.sets {
            b.add_elements(&spec.name, &elems.elems());
        }
        for (c, rules) in &s.chains {
            for r in rules {
                b.add_rule(&c.name, r);
            }
        }
    }
    b
}

fn text_of(s: &Sample) -> String {
    let mut t = format!("table {} {T} {{\n", s.family);
    for (spec, elems) in &s.sets {
        t.push('\t');
        t.push_str(&spec.to_nft(&elems.nft()));
    }
    // Chains are declared before any rule refers to them.
    for (c, _) in &s.chains {
        t.push('\t');
        t.push_str(&c.to_nft());
        t.push_str("\t}\n");
    }
    for (c, rules) in &s.chains {
        t.push('\t');
        t.push_str(&c.to_nft());
        for r in rules {
            t.push_str(&format!("\t\t{}\n", r.text));
        }
        t.push_str("\t}\n");
    }
    t.push_str("}\n");
    t
}

/// Writes `samples` over netlink into one namespace and as nft text into another; their
/// listings must be the same, and the rules and elements must read back as written.
fn same_as_nft(samples: &[Sample]) -> (Netns, Nft) {
    let a = Netns::new("nfta");
    let b = Netns::new("nftb");
    let mut nft = Nft::open(&NetnsFd::named(a.name()).unwrap()).unwrap();
    let g0 = nft.generation().unwrap().id;
    nft.commit(&batch_of(samples), Some(g0)).unwrap();
    assert_eq!(
        nft.generation().unwrap().id,
        g0 + 1,
        "one transaction, one generation"
    );
    for s in samples {
        nft_f(&b, &text_of(s));
        let fam = s.family.to_string();
        if listing(&a, &fam) != listing(&b, &fam) {
            panic!(
                "netlink table differs from nft's:\nnetlink:\n{}\nnft:\n{}",
                a.run("nft", &["list", "table", &fam, T]),
                b.run("nft", &["list", "table", &fam, T])
            );
        }
        let d = nft.list_table(s.family, T).unwrap().expect("table");
        for (c, rules) in &s.chains {
            let got: Vec<&Rule> = d
                .rules
                .iter()
                .filter(|r| r.chain == c.name)
                .map(|r| &r.rule)
                .collect();
            let want: Vec<&Rule> = rules.iter().collect();
            assert_eq!(got, want, "chain {} {}", s.family, c.name);
        }
        for (spec, elems) in &s.sets {
            let mut got = d.elements[&spec.name].clone();
            let mut want = elems.elems();
            got.sort();
            want.sort();
            assert_eq!(got, want, "set {} {}", s.family, spec.name);
        }
    }
    (a, nft)
}

#[test]
fn netlink_writes_what_nft_would_write_inet() {
    let (a, mut nft) = same_as_nft(&[sample(TableFamily::Inet)]);
    // The text users see has the pieces Felix users look for.
    let text = a.run("nft", &["list", "table", "inet", T]);
    for want in [
        "iifname \"cali*\" fib saddr . mark . iif oif 0 counter packets 0 bytes 0 drop",
        "oifname vmap @filter-cali-to-wl-dispatch",
        "\"cali1111\" : goto filter-cali-tw-cali1111",
        "comment \"Unknown interface\"",
        "ip daddr . meta l4proto . th dport @cali40n-xyz",
        "comment \"app == 'web'\"",
    ] {
        assert!(text.contains(want), "missing {want:?} in\n{text}");
    }
    assert!(nft.list_table(TableFamily::Inet, "absent").unwrap().is_none());
}

#[test]
fn netlink_writes_what_nft_would_write_ip_and_ip6_in_one_transaction() {
    let (a, _nft) = same_as_nft(&[sample(TableFamily::Ip), sample(TableFamily::Ip6)]);
    let text = a.run("nft", &["list", "table", "ip", T]);
    assert!(text.contains("ip saddr @cali40s-abc tcp dport 80-81"), "{text}");
    assert!(
        !text.contains("nfproto"),
        "no family checks in an ip table:\n{text}"
    );
}

#[test]
fn refusals_name_the_rule_and_apply_nothing() {
    let ns = Netns::new("nftr");
    let mut nft = Nft::open(&NetnsFd::named(ns.name()).unwrap()).unwrap();
    let mut b = Batch::new(TableFamily::Inet, T);
    b.add_table();
    b.add_chain(&ChainSpec::regular("a"));
    b.add_rule("a", &Rule::inet().iifname("cali*").accept());
    b.add_rule("a", &Rule::inet().jump("missing-chain"));
    b.add_rule(
        "a",
        &Rule::inet()
            .addr_in(Family::V4, Side::Src, "missing-set", false)
            .drop(),
    );
    let e = nft.commit(&b, None).unwrap_err();
    let msg = e.to_string();
    assert!(
        msg.contains("add rule inet brindletest a: jump missing-chain: No such file or directory"),
        "{msg}"
    );
    assert!(msg.contains("and 1 more refused"), "{msg}");
    let brindle_netlink::Error::Transaction { refused, .. } = &e else {
        panic!("{e:?}")
    };
    assert!(
        refused[1].what.contains("ip saddr @missing-set drop"),
        "{refused:?}"
    );
    assert!(
        nft.list_table(TableFamily::Inet, T).unwrap().is_none(),
        "nothing applied"
    );

    // A stale generation refuses the whole batch.
    let g = nft.generation().unwrap().id;
    let mut ok = Batch::new(TableFamily::Inet, T);
    ok.add_table();
    ns.run("nft", &["add", "table", "ip", "other"]);
    let e = nft.commit(&ok, Some(g)).unwrap_err();
    assert_eq!(e.errno(), Some(brindle_netlink::nftables::ERESTART), "{e}");
    assert!(e.to_string().contains("changed meanwhile"), "{e}");
    nft.commit(&ok, Some(g + 1)).unwrap();
}

#[test]
fn in_place_changes_and_a_monitor_that_sees_only_others() {
    let ns = Netns::new("nftm");
    let fd = NetnsFd::named(ns.name()).unwrap();
    let mut nft = Nft::open(&fd).unwrap();
    let mut mon = NftMonitor::open(&fd, &[TableFamily::Inet], T, &[nft.portid()]).unwrap();
    let set = SetSpec::new("s", &[DataType::Ipv4Addr]).interval();
    let mut b = Batch::new(TableFamily::Inet, T);
    b.add_table();
    b.add_set(&set);
    b.add_chain(&ChainSpec::regular("c"));
    let one = Elements::Nets(vec![
        "10.0.0.1/32".parse().unwrap(),
        "10.0.1.0/24".parse().unwrap(),
    ]);
    b.add_elements("s", &one.elems());
    for p in [80u16, 81, 82] {
        b.add_rule(
            "c",
            &Rule::inet()
                .l4proto(6, false)
                .port(Side::Dst, p, p, false)
                .accept(),
        );
    }
    nft.commit(&b, None).unwrap();
    assert!(
        !mon.wait(Duration::from_millis(200)),
        "our own change is not reported"
    );

    // Element swap and a chain rewrite, one transaction.
    let mut b = Batch::new(TableFamily::Inet, T);
    b.delete_elements("s", &Elements::Nets(vec!["10.0.0.1/32".parse().unwrap()]).elems());
    b.add_elements("s", &Elements::Nets(vec!["10.0.0.2/32".parse().unwrap()]).elems());
    b.flush_chain("c");
    b.add_rule("c", &Rule::inet().l4proto(17, false).accept());
    nft.commit(&b, None).unwrap();
    let d = nft.list_table(TableFamily::Inet, T).unwrap().unwrap();
    let text = ns.run("nft", &["list", "set", "inet", T, "s"]);
    assert!(text.contains("10.0.0.2, 10.0.1.0/24"), "{text}");
    assert_eq!(d.rules.len(), 1);
    let h = d.rules[0].handle;

    // Somebody else deletes the rule: the monitor says so.
    ns.run(
        "nft",
        &["delete", "rule", "inet", T, "c", "handle", &h.to_string()],
    );
    assert!(mon.wait(Duration::from_secs(2)), "foreign delete noticed");
    // Changes to other tables are not ours to watch.
    ns.run("nft", &["add", "table", "ip", "foreign"]);
    assert!(!mon.wait(Duration::from_millis(200)));

    // Delete by handle, then the table.
    let mut b = Batch::new(TableFamily::Inet, T);
    b.add_rule("c", &Rule::inet().accept());
    nft.commit(&b, None).unwrap();
    let h = nft.list_table(TableFamily::Inet, T).unwrap().unwrap().rules[0].handle;
    let mut b = Batch::new(TableFamily::Inet, T);
    b.delete_rule("c", h);
    b.delete_chain("c");
    b.delete_set("s");
    b.delete_table();
    nft.commit(&b, None).unwrap();
    assert!(nft.list_table(TableFamily::Inet, T).unwrap().is_none());
    // The foreign table is untouched.
    assert!(ns.run("nft", &["list", "tables"]).contains("table ip foreign"));
}

/// Regenerates the decoder's fuzz seeds from real kernel replies:
/// `cargo test -p brindle-netlink --test nftables write_fuzz_seeds -- --ignored`.
#[test]
#[ignore]
fn write_fuzz_seeds() {
    let ns = Netns::new("nfts");
    let mut nft = Nft::open(&NetnsFd::named(ns.name()).unwrap()).unwrap();
    nft.commit(&batch_of(&[sample(TableFamily::Inet)]), None).unwrap();
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fuzz-seeds/nft_decode");
    std::fs::create_dir_all(&dir).unwrap();
    let raw = nft.list_table_raw(TableFamily::Inet, T).unwrap();
    for (i, m) in raw.iter().enumerate() {
        std::fs::write(dir.join(format!("reply-{i:03}")), m).unwrap();
    }
    // One buffer with every reply, as a receive returns several.
    std::fs::write(dir.join("replies-all"), raw.concat()).unwrap();
    // The transaction itself (requests decode with the same code).
    let b = batch_of(&[sample(TableFamily::Inet)]);
    std::fs::write(dir.join("batch"), b.buf_bytes()).unwrap();
}
