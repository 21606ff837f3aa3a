mod support;
use support::*;

#[test]
fn smoke() {
    let a = Pod {
        namespace: "x",
        name: "a",
        node: "n1",
        labels: &[("pod", "a")],
        ips: &["10.0.1.1"],
        service_account: "",
        ports: &[],
    };
    let b = Pod {
        namespace: "x",
        name: "b",
        node: "n2",
        labels: &[("pod", "b")],
        ips: &["10.0.1.2"],
        service_account: "",
        ports: &[],
    };
    let mut c = Cluster::new(&["n1", "n2"]);
    c.add_profile(&namespace_profile("x", &[]));
    c.add_pod(&a);
    c.add_pod(&b);
    assert!(c.tcp(&a, &b, 80));
    assert!(c.tcp(&b, &a, 80));
    c.add_policy(&network_policy(
        "x",
        "deny-a",
        None,
        "pod == 'a'",
        Some("[]"),
        None,
    ));
    assert!(!c.tcp(&b, &a, 80));
    assert!(c.tcp(&a, &b, 80));
    c.add_policy(&network_policy("x", "allow-b", None, "pod == 'a'", Some("- action: Allow\n  protocol: TCP\n  source: {selector: pod == 'b'}\n  destination: {ports: [80]}"), None));
    assert!(c.tcp(&b, &a, 80));
    assert!(!c.tcp(&b, &a, 81));
    println!("{:#?}", c.state("n1"));
}
