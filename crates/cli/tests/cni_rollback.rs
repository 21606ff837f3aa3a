//! Rollback: a failure injected after each step of ADD (`BRINDLE_CNI_FAIL_AT`, the binary's
//! test hook) leaves nothing behind — no address held, no veth, no host route, no endpoint —
//! and the error JSON names the step. A real failure half-way (the pod already has the
//! interface; the host route is taken by another interface) rolls back the same way.

mod cni_support;

use cni_support::{Lab, Pod};

/// Asserts the node and datastore hold nothing of `pod`.
fn nothing_left(lab: &Lab, pod: &Pod, before_links: &[String]) {
    assert!(
        lab.held(pod).is_empty(),
        "address still held: {:?}",
        lab.held(pod)
    );
    assert!(
        lab.allocated().is_empty(),
        "allocations left: {:?}",
        lab.allocated()
    );
    assert!(
        lab.endpoints().is_empty(),
        "endpoints left: {:?}",
        lab.endpoints()
    );
    assert_eq!(lab.node_links(), before_links, "links left in the node");
    let routes = lab.node.ip(&["route"]);
    assert!(!routes.contains("10.233."), "host route left: {routes}");
}

#[test]
fn every_step_rolls_back() {
    let steps = [
        "datastore",
        "ipam",
        "veth",
        "host-config",
        "pod-config",
        "host-route",
        "endpoint",
        "result",
    ];
    let lab = Lab::new();
    let conf = lab.conf("1.0.0");
    let before = lab.node_links();
    for step in steps {
        let pod = Pod::k8s("web-1");
        let out = lab.cni("ADD", &pod, &conf, &[("BRINDLE_CNI_FAIL_AT", step)]);
        let e = out.err();
        assert_eq!(e["code"], 999, "{step}: {e}");
        assert_eq!(
            e["msg"],
            format!("injected failure after step {step} (BRINDLE_CNI_FAIL_AT)"),
            "{step}"
        );
        assert_eq!(e["cniVersion"], "1.0.0");
        nothing_left(&lab, &pod, &before);
        assert!(pod.eth0().is_empty(), "{step}: pod interface left");
        // The same pod then comes up normally, and goes away cleanly.
        lab.add(&pod, &conf);
        assert!(!pod.eth0().is_empty());
        lab.cni("DEL", &pod, &conf, &[]).ok();
        nothing_left(&lab, &pod, &before);
    }
    let e = lab
        .cni("ADD", &Pod::k8s("x"), &conf, &[("BRINDLE_CNI_FAIL_AT", "vteh")])
        .err();
    assert_eq!(e["code"], 4);
    assert!(e["msg"].as_str().unwrap().contains("unknown step"), "{e}");
}

#[test]
fn a_pod_that_already_has_eth0_is_refused_and_rolled_back() {
    let lab = Lab::new();
    let conf = lab.conf("1.0.0");
    let before = lab.node_links();
    let pod = Pod::k8s("busy");
    pod.ns
        .ip(&["link", "add", "eth0", "type", "veth", "peer", "name", "other0"]);
    let e = lab.cni("ADD", &pod, &conf, &[]).err();
    assert_eq!(e["code"], 999);
    let msg = e["msg"].as_str().unwrap();
    assert!(
        msg.contains("interface eth0 already exists in netns") && msg.contains(pod.ns.name()),
        "{e}"
    );
    nothing_left(&lab, &pod, &before);
}

#[test]
fn a_host_route_on_another_interface_is_refused_and_rolled_back() {
    let lab = Lab::new();
    let conf = lab.conf("1.0.0");
    // 10.233.64.9 is already routed through the uplink: Calico refuses, naming both.
    lab.node
        .ip(&["route", "add", "10.233.64.9/32", "dev", "up0", "scope", "link"]);
    let before = lab.node_links();
    let pod = Pod::k8s("clash");
    let args = format!("{};IP=10.233.64.9", pod.args);
    let pod = Pod { args, ..pod };
    let e = lab.cni("ADD", &pod, &conf, &[]).err();
    let msg = e["msg"].as_str().unwrap();
    assert!(
        msg.contains("10.233.64.9/32 already exists for an interface other than 'cali")
            && msg.contains("up0"),
        "{e}"
    );
    assert!(lab.held(&pod).is_empty());
    assert!(lab.endpoints().is_empty());
    assert_eq!(lab.node_links(), before);
    assert!(pod.eth0().is_empty());
}
