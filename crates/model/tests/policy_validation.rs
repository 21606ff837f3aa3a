//! Every policy-resource validation message (NetworkPolicy, GlobalNetworkPolicy, NetworkSet,
//! GlobalNetworkSet, Tier, Profile rules), through the public API: load YAML, validate, compare.

use brindle_model::{Resource, load_str, validate};

fn one(yaml: &str) -> Resource {
    let mut rs = load_str("t.yaml", yaml).unwrap_or_else(|e| panic!("{e}\n{yaml}"));
    assert_eq!(rs.len(), 1);
    rs.remove(0)
}

fn doc(kind: &str, meta: &str, spec: &str) -> Resource {
    one(&format!(
        "apiVersion: projectcalico.org/v3\nkind: {kind}\nmetadata:\n{meta}spec:\n{spec}"
    ))
}

fn np(spec: &str) -> Resource {
    doc("NetworkPolicy", "  name: p\n  namespace: ns\n", spec)
}

fn gnp(spec: &str) -> Resource {
    doc("GlobalNetworkPolicy", "  name: g\n", spec)
}

/// An ingress rule (YAML of one list item, indented for `ingress:`).
fn ingress(rule: &str) -> Resource {
    np(&format!("  ingress:\n  - {}\n", rule.replace('\n', "\n    ")))
}

fn egress(rule: &str) -> Resource {
    np(&format!("  egress:\n  - {}\n", rule.replace('\n', "\n    ")))
}

fn error_of(r: &Resource) -> String {
    let e = validate(r).expect_err("should be invalid");
    let s = e.to_string();
    assert!(s.starts_with(&format!("{}: ", r.identifier())), "{s}");
    s
}

fn assert_ok(r: &Resource) {
    if let Err(e) = validate(r) {
        panic!("unexpected: {e}");
    }
}

const NP: &str = "NetworkPolicy(ns/p): error with field NetworkPolicy.Spec";

#[test]
fn rule_messages() {
    let cases = [
        (
            "action: Allow\nipVersion: 5",
            "Ingress[0].IPVersion = '5' (must be 4 or 6)",
        ),
        (
            "action: Allow\nprotocol: 0",
            "Ingress[0].Protocol = '0' (protocol number invalid)",
        ),
        (
            "action: Allow\nprotocol: tcp",
            "Ingress[0].Protocol = 'tcp' (protocol name invalid)",
        ),
        (
            "action: Deny\nnotProtocol: FOO",
            "Ingress[0].NotProtocol = 'FOO' (protocol name invalid)",
        ),
        (
            "action: Allow\nprotocol: ICMP\nicmp:\n  code: 1",
            "Ingress[0].ICMP.Code (ICMP code specified without an ICMP type)",
        ),
        (
            "action: Allow\nprotocol: ICMP\nnotICMP:\n  code: 1",
            "Ingress[0].NotICMP.Code (ICMP code specified without an ICMP type)",
        ),
        (
            "action: Allow\nprotocol: ICMP\nicmp:\n  type: 255",
            "Ingress[0].ICMP.Type = '255' (ICMP type must be between 0 and 254)",
        ),
        (
            "action: Allow\ndestination:\n  ports: [80]",
            "Ingress[0].Destination.Ports = '[80]' (rules with numeric port or port range must set protocol to TCP or UDP or SCTP)",
        ),
        (
            "action: Allow\nsource:\n  notPorts: [\"1000:2000\", http]",
            "Ingress[0].Source.NotPorts = '[1000:2000 http]' (rules with numeric port or port range must set protocol to TCP or UDP or SCTP)",
        ),
        (
            "action: Allow\nprotocol: ICMP\ndestination:\n  ports: [http]",
            "Ingress[0].Destination.Ports = '[http]' (rules that specify ports must set protocol to TCP or UDP or SCTP)",
        ),
        (
            "action: Allow\nprotocol: TCP\ndestination:\n  ports: [0]",
            "Ingress[0].Destination.Ports = '0' (port range invalid, port number must be between 1 and 65535)",
        ),
        (
            "action: Allow\nprotocol: TCP\ndestination:\n  ports: [Web_Port]",
            "Ingress[0].Destination.Ports = 'Web_Port' (invalid port name: at most 15 characters of a-z, 0-9 and '-', with at least one letter, no leading, trailing or consecutive '-')",
        ),
        (
            "action: Allow\nprotocol: UDP\nhttp:\n  methods: [GET]",
            "Ingress[0].Protocol = 'UDP' (rules that specify HTTP fields must set protocol to TCP or empty)",
        ),
        (
            "action: Allow\nprotocol: TCP\nicmp:\n  type: 8",
            "Ingress[0].ICMP = '{type: 8, code: <nil>}' (rules that specify ICMP fields must set protocol to ICMP)",
        ),
        (
            "action: Allow\nprotocol: ICMP\nipVersion: 6",
            "Ingress[0].IPVersion (must set ipversion to '4' with protocol icmp)",
        ),
        (
            "action: Allow\nnotProtocol: ICMPv6\nipVersion: 4",
            "Ingress[0].IPVersion (must set ipversion to '6' with protocol icmpv6)",
        ),
        (
            "action: Allow\nsource:\n  nets: [10.0.0.300/8]",
            "Ingress[0].Source.Nets = '10.0.0.300/8' (invalid CIDR)",
        ),
        (
            "action: Allow\nsource:\n  nets: [10.1.2.3]",
            "Ingress[0].Source.Nets = '10.1.2.3' (invalid CIDR)",
        ),
        (
            "action: Allow\ndestination:\n  nets: [10.1.2.3/8]",
            "Ingress[0].Destination.Nets = '10.1.2.3/8' (CIDR is not strictly masked)",
        ),
        (
            "action: Allow\nsource:\n  notNets: [0.0.0.0/0]",
            "Ingress[0].Source.NotNets = '0.0.0.0/0' (catch-all CIDR in negation creates logical contradiction (matches no traffic))",
        ),
        (
            "action: Allow\nipVersion: 6\nsource:\n  nets: [10.0.0.0/8]",
            "Ingress[0].Source.Nets = '[10.0.0.0/8]' (rule IP version doesn't match CIDR version)",
        ),
        (
            "action: Allow\nsource:\n  nets: [10.0.0.0/8]\ndestination:\n  nets: [fd00::/64]",
            "Ingress[0].Destination.Nets = '[fd00::/64]' (rule contains both IPv4 and IPv6 CIDRs)",
        ),
        (
            "action: Deny\nhttp:\n  methods: [GET]",
            "Ingress[0].HTTP (only valid for Allow rules)",
        ),
        (
            "action: Allow\nhttp:\n  methods: [GET, GET]",
            "Ingress[0].HTTP.Methods = '[GET GET]' (Invalid methods (duplicates): [GET GET])",
        ),
        (
            "action: Allow\nhttp:\n  paths:\n  - exact: /a\n    prefix: /b",
            "Ingress[0].HTTP.Paths (Invalid path match. Both 'exact' and 'prefix' are set)",
        ),
        (
            "action: Allow\nhttp:\n  paths:\n  - {}",
            "Ingress[0].HTTP.Paths (Invalid path match. Either 'exact' or 'prefix' must be set)",
        ),
        (
            "action: Allow\nhttp:\n  paths:\n  - prefix: api?x",
            "Ingress[0].HTTP.Paths = 'api?x' (Invalid path api?x. (must start with `/` and not contain `?` or `#`)",
        ),
        (
            "action: Allow\nsource:\n  selector: global()",
            "Ingress[0].Source.Selector = 'global()' (global() can only be used in an EntityRule namespaceSelector)",
        ),
        (
            "action: Allow\nsource:\n  namespaceSelector: global() && has(a)",
            "Ingress[0].Source.NamespaceSelector = 'global() && has(a)' (global() cannot be combined with other selectors)",
        ),
        (
            "action: Allow\nsource:\n  selector: a ==",
            "Ingress[0].Source.Selector = 'a ==' (invalid selector: expected a quoted string, found end of selector)",
        ),
        (
            "action: Allow\nsource:\n  serviceAccounts:\n    selector: \"(\"",
            "Ingress[0].Source.ServiceAccounts.Selector = '(' (invalid selector: unexpected end of string looking for op)",
        ),
        (
            "action: Allow\nsource:\n  services:\n    namespace: x",
            "Ingress[0].Source.Services (must specify a service name)",
        ),
        (
            "action: Allow\nsource:\n  services:\n    name: s\n  namespaceSelector: all()",
            "Ingress[0].Source.Services (cannot specify NamespaceSelector and Services on the same rule)",
        ),
        (
            "action: Allow\nsource:\n  services:\n    name: s\n  notSelector: has(a)",
            "Ingress[0].Source.Services (cannot specify Selector/NotSelector and Services on the same rule)",
        ),
        (
            "action: Allow\nsource:\n  services:\n    name: s\n  serviceAccounts:\n    names: [a]",
            "Ingress[0].Source.Services (cannot specify ServiceAccounts and Services on the same rule)",
        ),
        (
            "action: Allow\nsource:\n  services:\n    name: s\n  nets: [10.0.0.0/8]",
            "Ingress[0].Source.Services (cannot specify Nets/NotNets and Services on the same rule)",
        ),
        (
            "action: Allow\nsource:\n  services:\n    name: Bad_Name",
            "Ingress[0].Source.Services.Name = 'Bad_Name' (must be a valid service name)",
        ),
        (
            "action: Allow\nmetadata:\n  annotations:\n    \"bad key\": x",
            "Ingress[0].Metadata.Annotations = 'bad key' (invalid annotation key)",
        ),
    ];
    for (rule, want) in cases {
        assert_eq!(error_of(&ingress(rule)), format!("{NP}.{want}"), "rule:\n{rule}");
    }
}

#[test]
fn service_rules_and_ports() {
    let cases = [
        (
            "action: Allow\nprotocol: TCP\ndestination:\n  services:\n    name: s\n  ports: [80]",
            "Egress[0].Destination.Ports = '[80]' (cannot specify ports with a service selector)",
        ),
        (
            "action: Allow\nprotocol: TCP\ndestination:\n  services:\n    name: s\n  notPorts: [80]",
            "Egress[0].Destination.NotPorts = '[80]' (cannot specify notports with a service selector)",
        ),
        (
            "action: Allow\nsource:\n  services:\n    name: s",
            "Egress[0].Source.Services (not allowed in egress rule source)",
        ),
        (
            "action: Allow\nhttp:\n  methods: [GET]",
            "Egress[0].HTTP (not allowed in egress rule)",
        ),
    ];
    for (rule, want) in cases {
        assert_eq!(error_of(&egress(rule)), format!("{NP}.{want}"), "rule:\n{rule}");
    }
    assert_eq!(
        error_of(&ingress("action: Allow\ndestination:\n  services:\n    name: s")),
        format!("{NP}.Ingress[0].Destination.Services (not allowed in ingress rule destination)")
    );
    // Named ports need no protocol; service rules and a plain global() are fine.
    assert_ok(&ingress(
        "action: Allow\ndestination:\n  ports: [http, serve-80-tcp]",
    ));
    assert_ok(&egress(
        "action: Allow\ndestination:\n  services:\n    name: kube-dns\n    namespace: kube-system",
    ));
    assert_ok(&ingress(
        "action: Allow\nsource:\n  namespaceSelector: \" global() \"",
    ));
    assert_ok(&ingress(
        "action: Allow\nprotocol: ICMPv6\nipVersion: 6\nicmp:\n  type: 128\n  code: 0",
    ));
    assert_ok(&ingress(
        "action: Allow\nprotocol: 132\ndestination:\n  ports: [\"1000:2000\"]",
    ));
}

#[test]
fn port_ranges_out_of_order_are_refused_at_load() {
    let e = load_str(
        "t.yaml",
        "apiVersion: projectcalico.org/v3\nkind: NetworkPolicy\nmetadata:\n  name: p\nspec:\n  ingress:\n  - action: Allow\n    protocol: TCP\n    destination:\n      ports: [\"90:80\"]\n",
    )
    .unwrap_err();
    assert!(
        e.to_string()
            .contains("minimum port number (90) is greater than maximum port number (80) in port range"),
        "{e}"
    );
}

#[test]
fn network_policy_messages() {
    let cases = [
        (
            "  selector: a ==\n",
            "Spec.Selector = 'a ==' (invalid selector: expected a quoted string, found end of selector)",
        ),
        (
            "  selector: global()\n",
            "Spec.Selector = 'global()' (global() can only be used in an EntityRule namespaceSelector)",
        ),
        (
            "  serviceAccountSelector: global() && has(a)\n",
            "Spec.ServiceAccountSelector = 'global() && has(a)' (global() can only be used in an EntityRule namespaceSelector)",
        ),
        (
            "  types: [Ingress, Ingress]\n",
            "Spec.Types = '[Ingress, Ingress]' ('Ingress' type specified more than once)",
        ),
        (
            "  tier: Bad_Tier\n",
            "Spec.Tier = 'Bad_Tier' (must be a valid tier name)",
        ),
        (
            "  performanceHints: [AssumeNeededOnEveryNode, AssumeNeededOnEveryNode]\n",
            "Spec.PerformanceHints (performance hints must be unique)",
        ),
    ];
    for (spec, want) in cases {
        assert_eq!(
            error_of(&np(spec)),
            format!("NetworkPolicy(ns/p): error with field NetworkPolicy.{want}"),
            "spec:\n{spec}"
        );
    }
    let named = |name: &str| {
        doc(
            "NetworkPolicy",
            &format!("  name: {name}\n  namespace: ns\n"),
            "  selector: all()\n",
        )
    };
    assert_eq!(
        error_of(&named("a.b.c")),
        "NetworkPolicy(ns/a.b.c): error with field NetworkPolicy.Metadata.Name = 'a.b.c' (name must consist of lower case alphanumeric characters or '-' (regex: [a-z0-9]([-a-z0-9]*[a-z0-9])?))"
    );
    for ok in ["a", "tier1.a", "knp.default.web.v2", "ossg.default.x"] {
        assert_ok(&named(ok));
    }
}

#[test]
fn global_network_policy_messages() {
    const G: &str = "GlobalNetworkPolicy(g): error with field GlobalNetworkPolicy.Spec";
    let cases = [
        (
            "  doNotTrack: true\n  preDNAT: true\n  applyOnForward: true\n",
            "PreDNAT = 'true' (PreDNAT and DoNotTrack cannot both be true, for a given PolicySpec)",
        ),
        (
            "  preDNAT: true\n  applyOnForward: true\n  egress:\n  - action: Allow\n",
            "Egress (PreDNAT PolicySpec cannot have any Egress rules)",
        ),
        (
            "  preDNAT: true\n  applyOnForward: true\n  types: [Egress]\n",
            "Types = '[Egress]' (PreDNAT PolicySpec cannot have 'egress' Type)",
        ),
        (
            "  doNotTrack: true\n",
            "ApplyOnForward = 'false' (ApplyOnForward must be true if either PreDNAT or DoNotTrack is true, for a given PolicySpec)",
        ),
        (
            "  namespaceSelector: global()\n",
            "NamespaceSelector = 'global()' (global() can only be used in an EntityRule namespaceSelector)",
        ),
        (
            "  namespaceSelector: \"x in {\"\n",
            "NamespaceSelector = 'x in {' (invalid selector: expected '}', found end of selector)",
        ),
        (
            "  egress:\n  - action: Allow\n    destination:\n      services:\n        name: s\n",
            "Egress[0].Destination.Services.Namespace (must specify a namespace)",
        ),
        (
            "  ingress:\n  - action: Allow\n    source:\n      services:\n        name: s\n",
            "Ingress[0].Source.Services.Namespace (must specify a namespace)",
        ),
        (
            "  egress:\n  - action: Allow\n    http:\n      methods: [GET]\n",
            "Egress[0].HTTP (not allowed in egress rules)",
        ),
    ];
    for (spec, want) in cases {
        assert_eq!(error_of(&gnp(spec)), format!("{G}.{want}"), "spec:\n{spec}");
    }
    assert_ok(&gnp(
        "  doNotTrack: true\n  applyOnForward: true\n  selector: has(host)\n",
    ));
    assert_ok(&gnp(
        "  namespaceSelector: kubernetes.io/metadata.name == 'x'\n  serviceAccountSelector: has(a)\n",
    ));
    let named = doc("GlobalNetworkPolicy", "  name: a.b.c\n", "  selector: all()\n");
    assert!(
        error_of(&named)
            .contains("GlobalNetworkPolicy.Metadata.Name = 'a.b.c' (name must consist of lower case")
    );
    assert_ok(&doc(
        "GlobalNetworkPolicy",
        "  name: security.a\n",
        "  selector: all()\n",
    ));
    // Several problems are all reported.
    let e = error_of(&gnp("  doNotTrack: true\n  preDNAT: true\n"));
    assert!(
        e.starts_with("GlobalNetworkPolicy(g): error with the following fields:\n-  "),
        "{e}"
    );
    assert_eq!(e.matches("\n-  ").count(), 2, "{e}");
}

#[test]
fn network_set_messages() {
    for kind in ["NetworkSet", "GlobalNetworkSet"] {
        let meta = if kind == "NetworkSet" {
            "  name: s\n  namespace: ns\n"
        } else {
            "  name: s\n"
        };
        let id = if kind == "NetworkSet" {
            "NetworkSet(ns/s)"
        } else {
            "GlobalNetworkSet(s)"
        };
        let r = doc(
            kind,
            meta,
            "  nets: [10.0.0.0/8, 10.1.2.3, 10.9.9.9/16, 'fd00::/64', nonsense]\n",
        );
        assert_eq!(
            error_of(&r),
            format!("{id}: error with field {kind}.Spec.Nets = 'nonsense' (invalid CIDR)")
        );
        let r = doc(
            kind,
            &format!("{meta}  labels:\n    projectcalico.org/namespace: x\n"),
            "  nets: [10.0.0.0/8]\n",
        );
        assert_eq!(
            error_of(&r),
            format!(
                "{id}: error with field {kind}.Metadata.Labels (label) = 'projectcalico.org/namespace' (projectcalico.org/namespace is not a valid label name)"
            )
        );
    }
}

#[test]
fn tier_messages() {
    let tier = |name: &str, spec: &str| doc("Tier", &format!("  name: {name}\n"), spec);
    let cases = [
        (tier("a.b", "  order: 10\n"), "Tier(a.b): error with field Tier.Metadata.Name = 'a.b' (name must consist of lower case alphanumeric characters or '-' (regex: [a-z0-9]([-a-z0-9]*[a-z0-9])?))".to_string()),
        (
            tier(&"a".repeat(64), "  order: 10\n"),
            format!("Tier({0}): error with field Tier.Metadata.Name = '{0}' (name is too long by 1 bytes)", "a".repeat(64)),
        ),
        (tier("t", "  defaultAction: Allow\n"), "Tier(t): error with field Tier.Spec.DefaultAction = 'Allow' (must be Deny or Pass)".into()),
        (tier("default", "  order: 5\n"), "Tier(default): error with field Tier.Spec.Order = '5' (default tier order must be 1e+06)".into()),
        (tier("default", "  defaultAction: Pass\n"), "Tier(default): error with field Tier.Spec.DefaultAction = 'Pass' (The 'default' tier must have default action 'Deny')".into()),
        (tier("kube-admin", "  defaultAction: Pass\n"), "Tier(kube-admin): error with field Tier.Spec.Order = '1e+06' (kube-admin tier order must be 1000)".into()),
        (tier("kube-admin", "  order: 1000\n"), "Tier(kube-admin): error with field Tier.Spec.DefaultAction = 'Deny' (The 'kube-admin' tier must have default action 'Pass')".into()),
        (tier("kube-baseline", "  order: 1000\n  defaultAction: Pass\n"), "Tier(kube-baseline): error with field Tier.Spec.Order = '1000' (kube-baseline tier order must be 1e+07)".into()),
    ];
    for (r, want) in cases {
        assert_eq!(error_of(&r), want);
    }
    assert_ok(&tier("default", "  order: 1000000\n  defaultAction: Deny\n"));
    assert_ok(&tier("default", "  {}\n"));
    assert_ok(&tier("kube-admin", "  order: 1000\n  defaultAction: Pass\n"));
    assert_ok(&tier(
        "kube-baseline",
        "  order: 10000000\n  defaultAction: Pass\n",
    ));
    assert_ok(&tier("security", "  order: 100\n"));
}

#[test]
fn profile_and_endpoint_messages() {
    let r = doc(
        "Profile",
        "  name: kns.x\n",
        "  ingress:\n  - action: Allow\n  egress:\n  - action: Allow\n    protocol: UDP\n    destination:\n      ports: [53]\n    ipVersion: 7\n",
    );
    assert_eq!(
        error_of(&r),
        "Profile(kns.x): error with field Profile.Spec.Egress[0].IPVersion = '7' (must be 4 or 6)"
    );
    let r = doc(
        "Profile",
        "  name: kns.x\n",
        "  labelsToApply:\n    pcns.team: \"a b\"\n",
    );
    assert_eq!(
        error_of(&r),
        "Profile(kns.x): error with field Profile.Spec.LabelsToApply = 'a b' (invalid value for label pcns.team)"
    );
    let r = doc(
        "WorkloadEndpoint",
        "  name: n-k8s-p-eth0\n  namespace: ns\n",
        "  interfaceName: cali1\n  ports:\n  - name: Http_Port\n    protocol: TCP\n    port: 80\n",
    );
    assert_eq!(
        error_of(&r),
        "WorkloadEndpoint(ns/n-k8s-p-eth0): error with field WorkloadEndpoint.Spec.Ports.Name = 'Http_Port' (invalid port name)"
    );
}
