//! One table case per semantic rule of Calico's policy model (the module doc of
//! `brindle_policy::ir` gives the verdict order): inputs → the verdict of probes between pods
//! on two nodes, decided by the evaluator over each node's IR (mirrored from its deltas).

mod support;

use std::net::IpAddr;

use brindle_model::ObjectMeta;
use brindle_model::resources::{Profile, ProfileSpec};
use brindle_policy::eval::{self, Decision, Packet};
use brindle_policy::ir::{EndpointToHostAction, PolicyId, Settings, TierDefault};
use brindle_policy::{NetworkSetInput, PolicyInput, TierInput};
use support::*;

const POD_XA: Pod = Pod {
    namespace: "x",
    name: "a",
    node: "n1",
    labels: &[("pod", "a"), ("app", "web")],
    ips: &["10.0.1.1", "fd00::1:1"],
    service_account: "web",
    ports: &[("http", "TCP", 80), ("dns", "UDP", 53), ("dns", "TCP", 53)],
};
const POD_XB: Pod = Pod {
    namespace: "x",
    name: "b",
    node: "n1",
    labels: &[("pod", "b")],
    ips: &["10.0.1.2", "fd00::1:2"],
    service_account: "api",
    ports: &[("http", "TCP", 8080)],
};
const POD_YA: Pod = Pod {
    namespace: "y",
    name: "a",
    node: "n2",
    labels: &[("pod", "a")],
    ips: &["10.0.2.1", "fd00::2:1"],
    service_account: "",
    ports: &[],
};
const POD_YB: Pod = Pod {
    namespace: "y",
    name: "b",
    node: "n2",
    labels: &[("pod", "b"), ("role", "db")],
    ips: &["10.0.2.2", "fd00::2:2"],
    service_account: "web",
    ports: &[],
};
const PODS: [Pod; 4] = [POD_XA, POD_XB, POD_YA, POD_YB];
/// An address outside the cluster.
const OUTSIDE: &str = "192.0.2.10";

fn world() -> Cluster {
    world_with(Settings::default())
}

fn world_with(settings: Settings) -> Cluster {
    let mut c = Cluster::with_settings(&["n1", "n2"], settings);
    c.add_profile(&namespace_profile("x", &[("team", "blue")]));
    c.add_profile(&namespace_profile("y", &[("team", "red")]));
    c.add_profile(&service_account_profile("x", "web", &[("tier", "fe")]));
    c.add_profile(&service_account_profile("x", "api", &[("tier", "be")]));
    c.add_profile(&service_account_profile("y", "web", &[("tier", "fe")]));
    for p in &PODS {
        c.add_pod(p);
    }
    c
}

fn pod(name: &str) -> &'static Pod<'static> {
    PODS.iter()
        .find(|p| format!("{}/{}", p.namespace, p.name) == name)
        .unwrap_or_else(|| panic!("no pod {name}"))
}

/// A probe: `tcp/80`, `udp/53`, `sctp/81`, `icmp/8/0`, `ipip`, each with `6` after the
/// protocol for IPv6 (`tcp6/80`, `icmp6/128/0`).
fn packet(probe: &str, src: IpAddr, dst: IpAddr) -> Packet {
    let parts: Vec<&str> = probe.split('/').collect();
    let n = |i: usize| parts[i].parse::<u16>().unwrap();
    match parts[0].trim_end_matches('6') {
        "tcp" => Packet::tcp(src, dst, n(1)),
        "udp" => Packet::udp(src, dst, n(1)),
        "sctp" => Packet::sctp(src, dst, n(1)),
        "icmp" => Packet::icmp(src, dst, n(1) as u8, n(2) as u8),
        "ipip" => Packet::other(src, dst, 4),
        other => panic!("probe {other}"),
    }
}

fn addr(who: &str, v6: bool) -> IpAddr {
    match who.parse() {
        Ok(ip) => ip,
        Err(_) if v6 => pod(who).ip6(),
        Err(_) => pod(who).ip(),
    }
}

/// Decides `probe` from `src` to `dst` (pods as `ns/name`, or an outside address).
fn decide(c: &Cluster, src: &str, dst: &str, probe: &str) -> Decision {
    let v6 = probe.split('/').next().unwrap().ends_with('6');
    let p = packet(probe, addr(src, v6), addr(dst, v6));
    let states = c.states();
    match (src.parse::<IpAddr>().is_ok(), dst.parse::<IpAddr>().is_ok()) {
        (false, false) => eval::workload_to_workload(&states, &pod(src).key(), &pod(dst).key(), &p),
        (false, true) => {
            let s = c.state(pod(src).node);
            eval::egress_verdict(s, &pod(src).key(), &p)
        }
        (true, false) => eval::ingress_verdict(c.state(pod(dst).node), &pod(dst).key(), &p),
        (true, true) => panic!("no pod in {src} -> {dst}"),
    }
}

/// Checks `(src, dst, probe, allowed)` rows.
fn expect(c: &Cluster, case: &str, rows: &[(&str, &str, &str, bool)]) {
    for (src, dst, probe, want) in rows {
        let d = decide(c, src, dst, probe);
        assert_eq!(
            d.allowed, *want,
            "{case}: {src} -> {dst} {probe}: got {} ({})",
            d.allowed, d.reason
        );
    }
}

fn tier(name: &str, order: Option<f64>, default_action: TierDefault) -> TierInput {
    TierInput {
        name: name.into(),
        order,
        default_action,
    }
}

fn in_tier(mut p: PolicyInput, tier: &str) -> PolicyInput {
    p.tier = tier.into();
    p
}

#[test]
fn no_policy_profiles_decide() {
    let c = world();
    expect(
        &c,
        "kns profiles allow all",
        &[
            ("x/a", "y/b", "tcp/80", true),
            ("y/b", "x/a", "udp/53", true),
            ("x/a", OUTSIDE, "tcp/443", true),
            (OUTSIDE, "x/b", "tcp6/22", true),
        ],
    );
}

#[test]
fn missing_profile_denies_until_it_exists() {
    let mut c = world();
    c.apply(|calc| calc.remove_profile("kns.x"));
    expect(
        &c,
        "kns.x missing",
        &[
            ("y/a", "x/a", "tcp/80", false),
            ("x/a", "y/a", "tcp/80", false),
            ("y/a", "y/b", "tcp/80", true),
        ],
    );
    c.add_profile(&namespace_profile("x", &[("team", "blue")]));
    expect(&c, "kns.x back", &[("y/a", "x/a", "tcp/80", true)]);
}

#[test]
fn profile_pass_goes_to_the_next_profile_and_no_match_drops() {
    let mut c = world();
    let pass_then = |name: &str, rules_yaml: &str| {
        Profile::new(
            ObjectMeta::named(name),
            ProfileSpec {
                ingress: rules(rules_yaml),
                egress: rules("- action: Allow"),
                ..ProfileSpec::default()
            },
        )
    };
    // kns.x passes everything: ksa.x.web (no rules) then decides nothing: dropped.
    c.add_profile(&pass_then("kns.x", "- action: Pass"));
    expect(&c, "pass, then empty profile", &[("y/a", "x/a", "tcp/80", false)]);
    // Now the service-account profile allows.
    c.add_profile(&pass_then("ksa.x.web", "- action: Allow"));
    expect(&c, "pass, then allow", &[("y/a", "x/a", "tcp/80", true)]);
}

#[test]
fn policies_select_endpoints_of_their_namespace_only() {
    let mut c = world();
    c.add_policy(&network_policy("x", "deny-all", None, "", Some("[]"), None));
    expect(
        &c,
        "np in x with an empty selector",
        &[
            ("y/a", "x/a", "tcp/80", false),
            ("y/a", "x/b", "tcp/80", false),
            ("x/a", "y/a", "tcp/80", true),
            ("y/b", "y/a", "tcp/80", true),
        ],
    );
    // Only nodes with a selected endpoint render the policy.
    let id = PolicyId::network("x", "deny-all");
    assert!(c.state("n1").policies.contains_key(&id));
    assert!(!c.state("n2").policies.contains_key(&id));
}

#[test]
fn rule_peers_stay_in_the_policy_namespace_unless_a_namespace_selector_says() {
    let mut c = world();
    c.add_policy(&network_policy(
        "x",
        "from-pod-a",
        None,
        "pod == 'b'",
        Some("- action: Allow\n  source: {selector: pod == 'a'}"),
        None,
    ));
    expect(
        &c,
        "bare selector",
        &[("x/a", "x/b", "tcp/80", true), ("y/a", "x/b", "tcp/80", false)],
    );
    c.add_policy(&network_policy(
        "x",
        "from-pod-a",
        None,
        "pod == 'b'",
        Some("- action: Allow\n  source: {selector: pod == 'a', namespaceSelector: team == 'red'}"),
        None,
    ));
    expect(
        &c,
        "namespaceSelector",
        &[("x/a", "x/b", "tcp/80", false), ("y/a", "x/b", "tcp/80", true)],
    );
    c.add_policy(&network_policy(
        "x",
        "from-pod-a",
        None,
        "pod == 'b'",
        Some("- action: Allow\n  source: {selector: pod == 'a', namespaceSelector: all()}"),
        None,
    ));
    expect(
        &c,
        "namespaceSelector all()",
        &[
            ("x/a", "x/b", "tcp/80", true),
            ("y/a", "x/b", "tcp/80", true),
            ("y/b", "x/b", "tcp/80", false),
        ],
    );
    // nets only: not limited to the namespace (nor to endpoints).
    c.add_policy(&network_policy(
        "x",
        "from-pod-a",
        None,
        "pod == 'b'",
        Some("- action: Allow\n  source: {nets: [10.0.2.0/24]}"),
        None,
    ));
    expect(
        &c,
        "nets only",
        &[("y/b", "x/b", "tcp/80", true), ("x/a", "x/b", "tcp/80", false)],
    );
}

#[test]
fn global_policies_with_namespace_and_plain_selectors() {
    let mut c = world();
    c.add_policy(&global_policy(
        "deny-blue-ingress",
        None,
        "",
        "team == 'blue'",
        Some("[]"),
        None,
    ));
    expect(
        &c,
        "gnp namespaceSelector",
        &[("y/a", "x/a", "tcp/80", false), ("x/a", "y/a", "tcp/80", true)],
    );
    c.apply(|calc| calc.remove_policy(&PolicyId::global("deny-blue-ingress")));
    c.add_policy(&global_policy(
        "deny-pod-a",
        None,
        "pod == 'a'",
        "",
        Some("[]"),
        None,
    ));
    expect(
        &c,
        "gnp plain selector, every namespace",
        &[
            ("x/b", "x/a", "tcp/80", false),
            ("x/b", "y/a", "tcp/80", false),
            ("x/a", "y/b", "tcp/80", true),
        ],
    );
}

#[test]
fn inherited_labels_own_label_wins_first_profile_wins() {
    let mut c = world();
    // A policy on the inherited namespace label.
    c.add_policy(&global_policy(
        "deny-blue",
        None,
        "pcns.team == 'blue'",
        "",
        Some("[]"),
        None,
    ));
    expect(
        &c,
        "inherited",
        &[("y/a", "x/a", "tcp/80", false), ("x/a", "y/a", "tcp/80", true)],
    );
    // The pod's own label wins over the profile's.
    let own = Pod {
        labels: &[("pod", "a"), ("pcns.team", "green")],
        ..POD_XA
    };
    c.add_pod(&own);
    expect(&c, "own label wins", &[("y/a", "x/a", "tcp/80", true)]);
    c.add_pod(&POD_XA);
    // Between profiles the first wins: ksa.x.web also says pcns.team=red, kns.x is first.
    let mut sa = service_account_profile("x", "web", &[]);
    sa.spec.labels_to_apply.insert("pcns.team".into(), "red".into());
    c.add_profile(&sa);
    expect(&c, "first profile wins", &[("y/a", "x/a", "tcp/80", false)]);
    // Namespace relabelled: the policy follows.
    c.add_profile(&namespace_profile("x", &[("team", "orange")]));
    expect(&c, "namespace relabelled", &[("y/a", "x/a", "tcp/80", true)]);
}

#[test]
fn types_govern_directions_independently() {
    let mut c = world();
    c.add_policy(&network_policy(
        "x",
        "ingress-only",
        None,
        "pod == 'a'",
        Some("[]"),
        None,
    ));
    expect(
        &c,
        "ingress-only",
        &[("y/a", "x/a", "tcp/80", false), ("x/a", "y/a", "tcp/80", true)],
    );
    c.add_policy(&network_policy(
        "x",
        "ingress-only",
        None,
        "pod == 'a'",
        None,
        Some("[]"),
    ));
    expect(
        &c,
        "egress-only",
        &[("y/a", "x/a", "tcp/80", true), ("x/a", "y/a", "tcp/80", false)],
    );
}

#[test]
fn first_matching_rule_wins() {
    let mut c = world();
    c.add_policy(&network_policy(
        "x",
        "p",
        None,
        "pod == 'a'",
        Some("- {action: Deny, protocol: TCP, destination: {ports: [80]}}\n- action: Allow"),
        None,
    ));
    expect(
        &c,
        "deny first",
        &[("y/a", "x/a", "tcp/80", false), ("y/a", "x/a", "tcp/81", true)],
    );
    c.add_policy(&network_policy(
        "x",
        "p",
        None,
        "pod == 'a'",
        Some("- action: Allow\n- {action: Deny, protocol: TCP, destination: {ports: [80]}}"),
        None,
    ));
    expect(&c, "allow first", &[("y/a", "x/a", "tcp/80", true)]);
}

#[test]
fn order_between_policies() {
    let mut c = world();
    let allow = "- action: Allow";
    let deny = "- action: Deny";
    c.add_policy(&network_policy(
        "x",
        "allow",
        Some(20.0),
        "pod == 'a'",
        Some(allow),
        None,
    ));
    c.add_policy(&network_policy(
        "x",
        "deny",
        Some(10.0),
        "pod == 'a'",
        Some(deny),
        None,
    ));
    expect(&c, "lower order first", &[("y/a", "x/a", "tcp/80", false)]);
    c.add_policy(&network_policy("x", "deny", None, "pod == 'a'", Some(deny), None));
    expect(&c, "no order runs last", &[("y/a", "x/a", "tcp/80", true)]);
    c.add_policy(&network_policy(
        "x",
        "deny",
        Some(20.0),
        "pod == 'a'",
        Some(deny),
        None,
    ));
    expect(
        &c,
        "ties by name: allow < deny",
        &[("y/a", "x/a", "tcp/80", true)],
    );
    // A GNP at order 10 that denies beats the NP at 20 (one order space, #7896), and a
    // Kubernetes policy (order 1000) runs before an unordered Calico one.
    c.add_policy(&global_policy(
        "gdeny",
        Some(10.0),
        "pod == 'a'",
        "",
        Some(deny),
        None,
    ));
    expect(&c, "gnp order 10", &[("y/a", "x/a", "tcp/80", false)]);
    c.apply(|calc| calc.remove_policy(&PolicyId::global("gdeny")));
    c.apply(|calc| calc.remove_policy(&PolicyId::network("x", "allow")));
    c.apply(|calc| calc.remove_policy(&PolicyId::network("x", "deny")));
    c.add_policy(&network_policy(
        "x",
        "knp.default.allow",
        Some(1000.0),
        "pod == 'a'",
        Some(allow),
        None,
    ));
    c.add_policy(&network_policy(
        "x",
        "calico-deny",
        None,
        "pod == 'a'",
        Some(deny),
        None,
    ));
    expect(&c, "knp before unordered", &[("y/a", "x/a", "tcp/80", true)]);
    let ep = &c.state("n1").endpoints[&POD_XA.key()];
    assert_eq!(
        ep.ingress.tiers[0].policies,
        vec![
            PolicyId::network("x", "knp.default.allow"),
            PolicyId::network("x", "calico-deny")
        ]
    );
}

#[test]
fn tiers_pass_end_of_tier_and_invalid_tiers() {
    let mut c = world();
    c.apply(|calc| calc.upsert_tier(tier("security", Some(100.0), TierDefault::Deny)));
    // A security tier that passes traffic from y and allows ICMP; default tier denies all.
    c.add_policy(&in_tier(
        global_policy(
            "sec",
            Some(1.0),
            "pod == 'a'",
            "",
            Some("- action: Pass\n  source: {namespaceSelector: team == 'red'}\n- {action: Allow, protocol: ICMP}"),
            None,
        ),
        "security",
    ));
    c.add_policy(&network_policy(
        "x",
        "allow-tcp",
        None,
        "pod == 'a'",
        Some("- {action: Allow, protocol: TCP}"),
        None,
    ));
    expect(
        &c,
        "security tier",
        &[
            ("y/a", "x/a", "tcp/80", true),   // passed, then allowed in default
            ("y/a", "x/a", "udp/53", false),  // passed, end of default tier
            ("x/b", "x/a", "tcp/80", false),  // end of security tier
            ("x/b", "x/a", "icmp/8/0", true), // allowed in security
        ],
    );
    // The tier's default Pass: unmatched traffic goes on to the default tier.
    c.apply(|calc| calc.upsert_tier(tier("security", Some(100.0), TierDefault::Pass)));
    expect(&c, "default pass", &[("x/b", "x/a", "tcp/80", true)]);
    // A policy in a tier with no Tier object is enforced last, denying at its end.
    c.apply(|calc| calc.remove_tier("security"));
    let ep = &c.state("n1").endpoints[&POD_XA.key()];
    let names: Vec<&str> = ep.ingress.tiers.iter().map(|t| t.name.as_str()).collect();
    assert_eq!(names, ["default", "security"]);
    assert_eq!(ep.ingress.tiers[1].default_action, TierDefault::Deny);
    expect(
        &c,
        "invalid tier last",
        &[("x/b", "x/a", "tcp/80", true), ("y/a", "x/a", "udp/53", false)],
    );
    // kube-admin (order 1000, Pass) comes before default without a Tier object.
    c.add_policy(&in_tier(
        global_policy(
            "admin",
            None,
            "pod == 'a'",
            "",
            Some("- action: Deny\n  protocol: TCP\n  destination: {ports: [22]}"),
            None,
        ),
        "kube-admin",
    ));
    let ep = &c.state("n1").endpoints[&POD_XA.key()];
    assert_eq!(ep.ingress.tiers[0].name, "kube-admin");
    assert_eq!(ep.ingress.tiers[0].default_action, TierDefault::Pass);
    expect(
        &c,
        "kube-admin",
        &[("x/b", "x/a", "tcp/22", false), ("x/b", "x/a", "tcp/80", true)],
    );
}

#[test]
fn log_logs_and_goes_on() {
    let mut c = world_with(Settings {
        log_prefix: "calico-drop %k %p".into(),
        ..Settings::default()
    });
    c.add_policy(&network_policy(
        "x",
        "audit",
        None,
        "pod == 'a'",
        Some("- action: Log\n- action: Allow"),
        None,
    ));
    let d = decide(&c, "y/a", "x/a", "tcp/80");
    assert!(d.allowed, "{}", d.reason);
    assert_eq!(d.logs, ["calico-drop np x/audit"]);
    // A new prefix reaches every Log rule.
    let settings = Settings {
        log_prefix: "P %n".into(),
        ..Settings::default()
    };
    c.apply(|calc| calc.set_settings(settings.clone()));
    assert_eq!(decide(&c, "y/a", "x/a", "tcp/80").logs, ["P audit"]);
}

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
    assert_eq!(rules.v4[0].src.nets, ["10.0.2.0/24".parse().unwrap()]);
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
