//! Which policies and profiles apply, in which order, and what actions do.

use brindle_model::ObjectMeta;
use brindle_model::resources::{Profile, ProfileSpec};
use brindle_policy::ir::{PolicyId, Settings, TierDefault};

use super::*;

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
fn host_endpoint_only_policies_never_reach_workloads() {
    use brindle_model::resources::{GlobalNetworkPolicy, GlobalNetworkPolicySpec, PolicyType};
    use brindle_model::{Kind, Resource};
    let mut c = world();
    let gnp = |do_not_track: bool, pre_dnat: bool| {
        Resource::GlobalNetworkPolicy(GlobalNetworkPolicy::new(
            ObjectMeta::named("host-only"),
            GlobalNetworkPolicySpec {
                selector: "pod == 'a'".into(),
                types: vec![PolicyType::Ingress],
                do_not_track,
                pre_dnat,
                apply_on_forward: do_not_track || pre_dnat,
                ..GlobalNetworkPolicySpec::default()
            },
        ))
    };
    let id = PolicyId::global("host-only");
    // A plain GNP with no rules closes x/a...
    c.apply(|calc| assert!(calc.upsert_resource(&gnp(false, false)).unwrap()));
    assert!(c.state("n1").policies.contains_key(&id));
    expect(&c, "plain gnp", &[("y/a", "x/a", "tcp/80", false)]);
    // ...which it no longer does once it is doNotTrack or preDNAT (host endpoints only).
    for (dnt, pre) in [(true, false), (false, true)] {
        c.apply(|calc| assert!(calc.upsert_resource(&gnp(dnt, pre)).unwrap()));
        assert!(!c.state("n1").policies.contains_key(&id));
        expect(&c, "host-only gnp", &[("y/a", "x/a", "tcp/80", true)]);
    }
    // Deleting goes through the same path; kinds policy does not use are ignored.
    c.apply(|calc| assert!(calc.remove_resource(Kind::GlobalNetworkPolicy, "", "host-only")));
    c.apply(|calc| assert!(!calc.remove_resource(Kind::IPPool, "", "pool")));
}

#[test]
fn builtin_default_allow_profile() {
    let mut c = world();
    // An endpoint naming only the built-in profile (host-endpoint style): allowed both ways
    // although no watch ever delivers the profile.
    let p = Pod {
        labels: &[("pod", "a")],
        ..POD_XA
    };
    let mut wep = p.wep();
    wep.spec.profiles = vec!["projectcalico-default-allow".into()];
    c.apply(|calc| calc.upsert_workload_endpoint(&wep).unwrap());
    expect(
        &c,
        "default-allow",
        &[("y/a", "x/a", "tcp/80", true), ("x/a", "y/a", "tcp/80", true)],
    );
    // A missing profile of any other name denies.
    wep.spec.profiles = vec!["nowhere".into()];
    c.apply(|calc| calc.upsert_workload_endpoint(&wep).unwrap());
    expect(
        &c,
        "missing",
        &[("y/a", "x/a", "tcp/80", false), ("x/a", "y/a", "tcp/80", false)],
    );
}
