//! The harness itself works on this machine: namespaces come and go by name, etcd starts.

use brindle_testkit::{Etcd, Netns};

#[test]
fn netns_is_created_and_removed_by_name() {
    let name;
    {
        let a = Netns::new("tk");
        let b = Netns::new("tk");
        name = a.name().to_string();
        a.veth("v0", &b, "v1");
        a.ip(&["addr", "add", "10.200.0.1/30", "dev", "v0"]);
        b.ip(&["addr", "add", "10.200.0.2/30", "dev", "v1"]);
        a.ip(&["link", "set", "v0", "up"]);
        b.ip(&["link", "set", "v1", "up"]);
        assert!(a.ping("10.200.0.2"), "veth ping");
        assert!(std::path::Path::new(&format!("/run/netns/{name}")).exists());
    }
    assert!(!std::path::Path::new(&format!("/run/netns/{name}")).exists());
}

#[test]
fn etcd_starts_on_free_ports() {
    let etcd = Etcd::start();
    assert!(etcd.endpoint().starts_with("http://127.0.0.1:"));
}

#[test]
fn spawn_in_runs_inside_the_namespace() {
    let ns = Netns::new("tk");
    ns.ip(&["addr", "add", "10.201.0.1/32", "dev", "lo"]);
    let bound = ns
        .spawn_in(|| std::net::TcpListener::bind("10.201.0.1:0").is_ok())
        .join()
        .unwrap();
    assert!(bound, "the address exists only inside the namespace");
    assert!(std::net::TcpListener::bind("10.201.0.1:0").is_err());
}
