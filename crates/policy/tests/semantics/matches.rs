//! What rules match: protocols, ports, named ports, nets, ICMP, service accounts, network
//! sets, `notSelector`; settings; bad input.

use std::net::IpAddr;

use brindle_policy::NetworkSetInput;
use brindle_policy::eval::{self, Packet};
use brindle_policy::ir::{EndpointToHostAction, PolicyId, Settings};

use super::*;

#[test]
fn ip_version_protocol_and_not_protocol() {
    let mut c = world();
    c.add_policy(&network_policy(
        "x",
        "p",
        None,
        "pod == 'a'",
        Some("- {action: Allow, ipVersion: 6}\n- {action: Allow, notProtocol: UDP, ipVersion: 4}\n- {action: Allow, protocol: 132}"),
        None,
    ));
    expect(
        &c,
        "ipVersion, notProtocol, numeric protocol",
        &[
            ("y/a", "x/a", "udp6/53", true),
            ("y/a", "x/a", "tcp/80", true),
            ("y/a", "x/a", "udp/53", false),
            ("y/a", "x/a", "sctp/9", true),
        ],
    );
}

#[test]
fn ports_ranges_and_not_ports() {
    let mut c = world();
    c.add_policy(&network_policy(
        "x",
        "p",
        None,
        "pod == 'a'",
        Some("- {action: Allow, protocol: TCP, destination: {ports: [80, '8000:8080'], notPorts: [8005]}}\n- {action: Allow, protocol: UDP, source: {ports: [5353]}}"),
        None,
    ));
    expect(
        &c,
        "ports",
        &[
            ("y/a", "x/a", "tcp/80", true),
            ("y/a", "x/a", "tcp/8000", true),
            ("y/a", "x/a", "tcp/8080", true),
            ("y/a", "x/a", "tcp/8005", false),
            ("y/a", "x/a", "tcp/81", false),
            ("y/a", "x/a", "udp/80", false),
        ],
    );
    // Source ports: the probe's source port is 40000.
    let p = Packet::with_ports(POD_YA.ip(), POD_XA.ip(), 17, 5353, 9);
    let s = c.states();
    assert!(eval::workload_to_workload(&s, &POD_YA.key(), &POD_XA.key(), &p).allowed);
}

#[test]
fn named_ports_resolve_per_endpoint() {
    let mut c = world();
    // Ingress to x pods on the port named http: 80 on x/a, 8080 on x/b.
    c.add_policy(&network_policy(
        "x",
        "p",
        None,
        "",
        Some("- {action: Allow, protocol: TCP, destination: {ports: [http]}}"),
        None,
    ));
    expect(
        &c,
        "named port",
        &[
            ("y/a", "x/a", "tcp/80", true),
            ("y/a", "x/a", "tcp/8080", false),
            ("y/a", "x/b", "tcp/8080", true),
            ("y/a", "x/b", "tcp/80", false),
        ],
    );
    // Without a protocol the name matches each port's own protocol (dns is 53 UDP and TCP).
    c.add_policy(&network_policy(
        "x",
        "p",
        None,
        "",
        Some("- {action: Allow, destination: {ports: [dns]}}"),
        None,
    ));
    expect(
        &c,
        "named port, any protocol",
        &[
            ("y/a", "x/a", "udp/53", true),
            ("y/a", "x/a", "tcp/53", true),
            ("y/a", "x/a", "sctp/53", false),
            ("y/a", "x/b", "udp/53", false),
        ],
    );
    // Egress to a named port with a selector: only pods the selector picks.
    c.add_policy(&network_policy(
        "x",
        "p",
        None,
        "",
        None,
        Some("- {action: Allow, protocol: TCP, destination: {selector: pod == 'b', ports: [http]}}"),
    ));
    expect(
        &c,
        "egress named port filtered by selector",
        &[("x/a", "x/b", "tcp/8080", true), ("x/b", "x/a", "tcp/80", false)],
    );
    // A pod's port renamed: the set follows.
    let renamed = Pod {
        ports: &[("web", "TCP", 8080)],
        ..POD_XB
    };
    c.add_pod(&renamed);
    expect(&c, "port renamed", &[("x/a", "x/b", "tcp/8080", false)]);
    // notPorts with a name.
    c.add_pod(&POD_XB);
    c.add_policy(&network_policy(
        "x",
        "p",
        None,
        "",
        None,
        Some("- {action: Allow, protocol: TCP, destination: {notPorts: [http]}}"),
    ));
    expect(
        &c,
        "named notPorts",
        &[
            ("x/a", "x/b", "tcp/8080", false),
            ("x/a", "x/b", "tcp/80", true),
            ("x/a", "y/a", "tcp/8080", true),
        ],
    );
}

#[test]
fn nets_are_masked_per_family_and_negated_catch_all_drops_the_rule() {
    let mut c = world();
    // 10.0.2.77/24 is masked to 10.0.2.0/24; the v6 entry goes to the v6 rule.
    c.add_policy(&network_policy(
        "x",
        "p",
        None,
        "pod == 'a'",
        Some("- action: Allow\n  source: {nets: [10.0.2.77/24, 'fd00::2:0/112'], notNets: [10.0.2.2/32]}"),
        None,
    ));
    expect(
        &c,
        "nets",
        &[
            ("y/a", "x/a", "tcp/80", true),
            ("y/b", "x/a", "tcp/80", false),
            ("x/b", "x/a", "tcp/80", false),
            // notNets holds only v4 entries, so Felix leaves the rule out of IPv6 altogether.
            ("y/b", "x/a", "tcp6/80", false),
        ],
    );
    let rules = &c.state("n1").policies[&PolicyId::network("x", "p")].ingress;
    assert_eq!(*rules.v4[0].src.nets, ["10.0.2.0/24".parse().unwrap()]);
    // Only v6 nets: no v4 rule at all.
    c.add_policy(&network_policy(
        "x",
        "p",
        None,
        "pod == 'a'",
        Some("- action: Allow\n  source: {nets: ['fd00::/16']}"),
        None,
    ));
    expect(
        &c,
        "other family",
        &[("y/a", "x/a", "tcp/80", false), ("y/a", "x/a", "tcp6/80", true)],
    );
    // notNets 0.0.0.0/0 drops the v4 rule (Felix refuses the contradiction).
    c.add_policy(&network_policy(
        "x",
        "p",
        None,
        "pod == 'a'",
        Some("- action: Allow\n  source: {notNets: [0.0.0.0/0]}"),
        None,
    ));
    assert!(
        c.state("n1").policies[&PolicyId::network("x", "p")]
            .ingress
            .v4
            .is_empty()
    );
    expect(
        &c,
        "negated catch-all",
        &[("y/a", "x/a", "tcp/80", false), ("y/a", "x/a", "tcp6/80", false)],
    );
    // Egress to the outside world by net.
    c.add_policy(&network_policy(
        "x",
        "p",
        None,
        "pod == 'a'",
        None,
        Some("- action: Allow\n  destination: {nets: [192.0.2.0/24]}"),
    ));
    expect(
        &c,
        "egress nets",
        &[("x/a", OUTSIDE, "tcp/443", true), ("x/a", "y/a", "tcp/80", false)],
    );
}

#[test]
fn icmp_type_code_and_not_icmp() {
    let mut c = world();
    c.add_policy(&network_policy(
        "x",
        "p",
        None,
        "pod == 'a'",
        Some("- {action: Allow, protocol: ICMP, icmp: {type: 8, code: 0}}\n- {action: Allow, protocol: ICMPv6, notICMP: {type: 128}}"),
        None,
    ));
    expect(
        &c,
        "icmp",
        &[
            ("y/a", "x/a", "icmp/8/0", true),
            ("y/a", "x/a", "icmp/8/1", false),
            ("y/a", "x/a", "icmp/13/0", false),
            ("y/a", "x/a", "icmp6/128/0", false),
            ("y/a", "x/a", "icmp6/129/0", true),
            ("y/a", "x/a", "tcp/80", false),
        ],
    );
    // protocol ICMP implies IPv4: no v6 rule.
    let rules = &c.state("n1").policies[&PolicyId::network("x", "p")].ingress;
    assert_eq!((rules.v4.len(), rules.v6.len()), (1, 1));
}

#[test]
fn service_accounts_by_name_and_selector() {
    let mut c = world();
    c.add_policy(&network_policy(
        "x",
        "p",
        None,
        "pod == 'b'",
        Some("- action: Allow\n  source: {serviceAccounts: {names: [web]}}"),
        None,
    ));
    expect(
        &c,
        "sa names (own namespace)",
        &[
            ("x/a", "x/b", "tcp/80", true),
            ("y/b", "x/b", "tcp/80", false),
            ("y/a", "x/b", "tcp/80", false),
        ],
    );
    c.add_policy(&global_policy(
        "g",
        None,
        "pod == 'b'",
        "",
        Some("- action: Allow\n  source: {serviceAccounts: {selector: tier == 'fe'}}"),
        None,
    ));
    c.apply(|calc| calc.remove_policy(&PolicyId::network("x", "p")));
    expect(
        &c,
        "sa selector (cluster-wide in a gnp)",
        &[
            ("x/a", "y/b", "tcp/80", true),
            ("y/b", "x/b", "tcp/80", true),
            ("y/a", "x/b", "tcp/80", false),
        ],
    );
    // A policy's own serviceAccountSelector.
    let mut p = global_policy("g", None, "", "", Some("[]"), None);
    p.selector = brindle_policy::selectors::global_policy_selector("", "", "tier == 'be'").unwrap();
    c.add_policy(&p);
    expect(
        &c,
        "policy serviceAccountSelector",
        &[("y/a", "x/b", "tcp/80", false), ("y/a", "x/a", "tcp/80", true)],
    );
}

#[test]
fn network_sets_are_rule_peers_only() {
    let mut c = world();
    let outside = NetworkSetInput {
        namespace: String::new(),
        name: "outside".into(),
        labels: labels(&[("zone", "outside")]),
        nets: vec!["192.0.2.0/24".into()],
    };
    c.apply(|calc| calc.upsert_network_set(&outside).unwrap());
    // A GNP reaches a GlobalNetworkSet with a plain selector.
    c.add_policy(&global_policy(
        "g",
        None,
        "pod == 'a'",
        "",
        None,
        Some("- action: Allow\n  destination: {selector: zone == 'outside'}"),
    ));
    expect(
        &c,
        "gnp to global set",
        &[("x/a", OUTSIDE, "tcp/443", true), ("x/a", "x/b", "tcp/80", false)],
    );
    // An NP reaches it only with namespaceSelector global().
    c.apply(|calc| calc.remove_policy(&PolicyId::global("g")));
    c.add_policy(&network_policy(
        "x",
        "p",
        None,
        "pod == 'a'",
        None,
        Some("- action: Allow\n  destination: {selector: zone == 'outside'}"),
    ));
    expect(
        &c,
        "np plain selector misses it",
        &[("x/a", OUTSIDE, "tcp/443", false)],
    );
    c.add_policy(&network_policy(
        "x",
        "p",
        None,
        "pod == 'a'",
        None,
        Some("- action: Allow\n  destination: {selector: zone == 'outside', namespaceSelector: global()}"),
    ));
    expect(&c, "np global()", &[("x/a", OUTSIDE, "tcp/443", true)]);
    // A namespaced NetworkSet inherits its namespace's labels.
    let ns_set = NetworkSetInput {
        namespace: "x".into(),
        name: "partners".into(),
        labels: labels(&[("kind", "partner")]),
        nets: vec!["198.51.100.0/24".into()],
    };
    c.apply(|calc| calc.upsert_network_set(&ns_set).unwrap());
    c.add_policy(&global_policy(
        "g2",
        None,
        "pod == 'b'",
        "",
        None,
        Some("- action: Allow\n  destination: {selector: pcns.team == 'blue' && kind == 'partner'}"),
    ));
    expect(
        &c,
        "namespaced set",
        &[
            ("x/b", "198.51.100.7", "tcp/443", true),
            ("x/b", OUTSIDE, "tcp/443", false),
        ],
    );
    // Sets are never policy targets: a GNP selecting all() does not make a set "selected".
    c.apply(|calc| calc.remove_network_set("", "outside"));
    c.add_policy(&network_policy(
        "x",
        "p",
        None,
        "pod == 'a'",
        None,
        Some("- action: Allow\n  destination: {selector: zone == 'outside', namespaceSelector: global()}"),
    ));
    expect(&c, "set removed", &[("x/a", OUTSIDE, "tcp/443", false)]);
}

#[test]
fn not_selector_is_raw_and_matches_non_calico_addresses() {
    let mut c = world();
    c.add_policy(&global_policy(
        "g",
        None,
        "pod == 'a'",
        "",
        None,
        Some("- action: Allow\n  destination: {notSelector: role == 'db'}"),
    ));
    expect(
        &c,
        "notSelector",
        &[
            ("x/a", OUTSIDE, "tcp/443", true),
            ("x/a", "y/b", "tcp/80", false),
            ("x/a", "y/a", "tcp/80", true),
        ],
    );
    c.add_policy(&global_policy(
        "g",
        None,
        "pod == 'a'",
        "",
        None,
        Some("- action: Allow\n  destination: {selector: role != 'db'}"),
    ));
    expect(
        &c,
        "negative selector",
        &[
            ("x/a", OUTSIDE, "tcp/443", false),
            ("x/a", "y/b", "tcp/80", false),
            ("x/a", "y/a", "tcp/80", true),
        ],
    );
    // In a namespaced policy notSelector is not namespaced, but the positive side becomes the
    // namespace clause: only x's endpoints, minus pod b.
    c.apply(|calc| calc.remove_policy(&PolicyId::global("g")));
    c.add_policy(&network_policy(
        "x",
        "p",
        None,
        "pod == 'a'",
        None,
        Some("- action: Allow\n  destination: {notSelector: pod == 'b'}"),
    ));
    expect(
        &c,
        "namespaced notSelector",
        &[
            ("x/a", "x/b", "tcp/80", false),
            ("x/a", "y/a", "tcp/80", false),
            ("x/a", OUTSIDE, "tcp/1", false),
        ],
    );
}

#[test]
fn endpoint_to_host_action_vxlan_ipip_and_spoofing() {
    let host: IpAddr = "10.0.0.1".parse().unwrap();
    for (action, want) in [
        (EndpointToHostAction::Drop, false),
        (EndpointToHostAction::Return, true),
        (EndpointToHostAction::Accept, true),
    ] {
        let c = world_with(Settings {
            default_endpoint_to_host_action: action,
            ..Settings::default()
        });
        let p = Packet::tcp(POD_XA.ip(), host, 10250);
        assert_eq!(
            eval::to_host_verdict(c.state("n1"), &POD_XA.key(), &p).allowed,
            want,
            "{action:?}"
        );
    }
    let c = world();
    expect(
        &c,
        "encapsulated traffic from workloads",
        &[
            ("x/a", "y/a", "udp/4789", false),
            ("x/a", "y/a", "ipip", false),
            (OUTSIDE, "x/a", "udp/4789", true),
        ],
    );
    let c = world_with(Settings {
        allow_vxlan_packets_from_workloads: true,
        allow_ipip_packets_from_workloads: true,
        ..Settings::default()
    });
    expect(
        &c,
        "allowed encapsulation",
        &[("x/a", "y/a", "udp/4789", true), ("x/a", "y/a", "ipip", true)],
    );
    // A pod sending from another pod's address.
    let spoofed = Packet::tcp(POD_YA.ip(), POD_XB.ip(), 80);
    assert!(!eval::egress_verdict(c.state("n1"), &POD_XA.key(), &spoofed).allowed);
    let spoofed6 = Packet::tcp(POD_YA.ip6(), POD_XB.ip6(), 80);
    assert!(!eval::egress_verdict(c.state("n1"), &POD_XA.key(), &spoofed6).allowed);
    let ep = &c.state("n1").endpoints[&POD_XA.key()];
    assert_eq!(
        ep.addrs,
        ["10.0.1.1/32".parse().unwrap(), "fd00::1:1/128".parse().unwrap()]
    );
    assert_eq!(ep.interface, "calixa");
}

#[test]
fn unknown_endpoints_are_closed() {
    let c = world();
    let ghost = Pod {
        name: "ghost",
        ips: &["10.0.1.99"],
        ..POD_XA
    };
    let d = eval::ingress_verdict(
        c.state("n1"),
        &ghost.key(),
        &Packet::tcp(POD_YA.ip(), ghost.ip(), 80),
    );
    assert!(!d.allowed);
}

#[test]
fn invalid_objects_are_rejected_whole() {
    let mut c = world();
    c.add_policy(&network_policy("x", "p", None, "pod == 'a'", Some("[]"), None));
    let bad = [
        (
            network_policy(
                "x",
                "p",
                None,
                "pod == 'a'",
                Some("- {action: Allow, destination: {ports: [80]}}"),
                None,
            ),
            "ingress rule 0: ports need protocol TCP, UDP or SCTP",
        ),
        (
            network_policy(
                "x",
                "p",
                None,
                "pod == 'a'",
                Some("- {action: Allow, protocol: TCP, icmp: {type: 8}}"),
                None,
            ),
            "ingress rule 0: icmp and notICMP need protocol ICMP or ICMPv6",
        ),
        (
            network_policy(
                "x",
                "p",
                None,
                "pod == 'a'",
                Some("- action: Allow\n- {action: Allow, source: {nets: [10.0.0.0/33]}}"),
                None,
            ),
            "ingress rule 1: source.nets: \"10.0.0.0/33\" is not a CIDR or an IP address",
        ),
        (
            network_policy(
                "x",
                "p",
                None,
                "pod == 'a'",
                None,
                Some("- {action: Allow, destination: {selector: 'a =='}}"),
            ),
            "egress rule 0: destination.selector: expected a quoted string, found end of selector",
        ),
        (
            network_policy(
                "x",
                "p",
                None,
                "pod == 'a'",
                Some("- {action: Allow, protocol: FOO}"),
                None,
            ),
            "ingress rule 0: unknown protocol \"FOO\"",
        ),
    ];
    for (input, want) in bad {
        for (_, calc, _) in &mut c.nodes {
            let e = calc.upsert_policy(input.clone()).unwrap_err();
            assert_eq!(e.object, "NetworkPolicy x/p");
            assert_eq!(e.reason, want);
            assert!(calc.flush().is_empty(), "a rejected update changed something");
        }
        // The old version still holds.
        expect(&c, "after a rejected update", &[("y/a", "x/a", "tcp/80", false)]);
    }
}
