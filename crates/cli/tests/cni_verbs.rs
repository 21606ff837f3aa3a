//! The `brindle` binary as a CNI plugin, driven exactly as a runtime drives it: ADD, CHECK,
//! DEL (twice), VERSION, STATUS and GC, for CNI 0.4.0, 1.0.0 and 1.1.0.

mod cni_support;

use cni_support::{Lab, NODE, Pod};
use serde_json::json;

#[test]
fn add_check_del_for_every_version() {
    for version in ["0.4.0", "1.0.0", "1.1.0"] {
        let lab = Lab::new();
        let pod = Pod::k8s("web-1");
        let conf = lab.conf(version);
        let result = lab.add(&pod, &conf);

        // The result: version, [host end, pod end], the /32 on the pod end, dns.
        assert_eq!(result["cniVersion"], version);
        let ifs = result["interfaces"].as_array().unwrap();
        assert_eq!(ifs.len(), 2, "{result}");
        let host = ifs[0]["name"].as_str().unwrap().to_string();
        assert!(host.starts_with("cali") && host.len() == 15, "{host}");
        assert!(ifs[0].get("sandbox").is_none());
        assert_eq!(ifs[1]["name"], "eth0");
        assert_eq!(ifs[1]["sandbox"], pod.netns_path());
        let mac = ifs[1]["mac"].as_str().unwrap().to_string();
        assert_eq!(ifs[1].get("mtu").is_some(), version == "1.1.0", "{result}");
        let ip = &result["ips"][0];
        assert_eq!(ip["interface"], 1);
        assert_eq!(ip.get("version").is_some(), version == "0.4.0", "{result}");
        let addr = ip["address"].as_str().unwrap().to_string();
        assert!(addr.starts_with("10.233.") && addr.ends_with("/32"), "{addr}");
        assert!(
            result["routes"][0]["dst"].as_str().unwrap().ends_with("/24"),
            "{result}"
        );
        assert_eq!(result["dns"], json!({}));

        // The kernel state: pod /32, host route exactly as in the seed, reachability.
        let ip_only = addr.trim_end_matches("/32");
        assert!(pod.eth0().contains(&format!("inet {addr}")), "{}", pod.eth0());
        let routes = lab.node.ip(&["route"]);
        assert!(
            routes
                .lines()
                .any(|l| l.trim() == format!("{ip_only} dev {host} scope link")),
            "{routes}"
        );
        assert!(lab.node.reach(ip_only), "node cannot reach the pod");
        assert!(pod.ns.reach("172.20.42.80"), "pod cannot reach the node");

        // The datastore: the allocation under the handle, the endpoint.
        assert_eq!(lab.held(&pod), [ip_only.parse::<std::net::IpAddr>().unwrap()]);
        let wep_key = cni_support::key("workloadendpoints", &format!("default/{NODE}-k8s-web--1-eth0"));
        let wep = lab.get(&wep_key).expect("WorkloadEndpoint written");
        assert_eq!(wep["spec"]["containerID"], pod.id.as_str());
        assert_eq!(wep["spec"]["interfaceName"], host.as_str());
        assert_eq!(wep["spec"]["mac"], mac.as_str());
        assert_eq!(wep["spec"]["ipNetworks"], json!([addr]));
        assert_eq!(wep["spec"]["profiles"], json!(["kns.default"]));

        // CHECK passes against the result.
        let mut check_conf = conf.clone();
        check_conf["prevResult"] = result.clone();
        lab.cni("CHECK", &pod, &check_conf, &[]).ok();

        // DEL removes everything; a second DEL is still success.
        let del = lab.cni("DEL", &pod, &check_conf, &[]).ok();
        assert_eq!(del.stdout, "");
        assert!(lab.held(&pod).is_empty());
        assert!(lab.get(&wep_key).is_none());
        assert!(!lab.node_links().contains(&host));
        assert!(pod.eth0().is_empty());
        lab.cni("DEL", &pod, &check_conf, &[]).ok();
    }
}

#[test]
fn check_finds_what_is_broken() {
    let lab = Lab::new();
    let conf = lab.conf("1.0.0");
    let pod = Pod::k8s("checked");
    let result = lab.add(&pod, &conf);
    let mut conf = conf.clone();
    conf["prevResult"] = result.clone();
    let host = result["interfaces"][0]["name"].as_str().unwrap().to_string();
    let addr = result["ips"][0]["address"].as_str().unwrap().to_string();
    let check = |want: &str| {
        let e = lab.cni("CHECK", &pod, &conf, &[]).err();
        assert!(e["msg"].as_str().unwrap().contains(want), "want {want:?}: {e}");
    };
    lab.cni("CHECK", &pod, &conf, &[]).ok();

    // The host route disappears.
    lab.node.ip(&["route", "del", &addr, "dev", &host]);
    check(&format!("host route {addr} dev {host} scope link is missing"));
    lab.node
        .ip(&["route", "add", &addr, "dev", &host, "scope", "link"]);
    lab.cni("CHECK", &pod, &conf, &[]).ok();

    // The pod loses its default route.
    pod.ns.ip(&["route", "del", "default"]);
    check("route 0.0.0.0/0 via 169.254.1.1 dev eth0 is missing");
    pod.ns
        .ip(&["route", "add", "default", "via", "169.254.1.1", "dev", "eth0"]);

    // Proxy ARP switched off on the host end.
    lab.node.sysctl(&format!("net.ipv4.conf.{host}.proxy_arp"), "0");
    check("proxy_arp=0");
    lab.node.sysctl(&format!("net.ipv4.conf.{host}.proxy_arp"), "1");

    // The pod end is down.
    pod.ns.ip(&["link", "set", "eth0", "down"]);
    check("interface eth0 in netns");
    pod.ns.ip(&["link", "set", "eth0", "up"]);
    pod.ns
        .ip(&["route", "add", "169.254.1.1", "dev", "eth0", "scope", "link"]);
    pod.ns
        .ip(&["route", "add", "default", "via", "169.254.1.1", "dev", "eth0"]);
    lab.cni("CHECK", &pod, &conf, &[]).ok();

    // prevResult says another MAC.
    let mut wrong = conf.clone();
    wrong["prevResult"]["interfaces"][1]["mac"] = json!("02:00:00:00:00:01");
    let e = lab.cni("CHECK", &pod, &wrong, &[]).err();
    assert!(
        e["msg"]
            .as_str()
            .unwrap()
            .contains("prevResult says 02:00:00:00:00:01"),
        "{e}"
    );

    // The allocation released behind the plugin's back.
    let handle = format!("{}.{}", lab.net, pod.id);
    brindle_ipam::Ipam::new(lab.ds.clone())
        .release_by_handle(&handle)
        .unwrap();
    check(&format!("IPAM handle {handle}"));

    // CHECK without prevResult, and CHECK on 0.3.1 (CHECK exists from 0.4.0).
    let e = lab.cni("CHECK", &pod, &lab.conf("1.0.0"), &[]).err();
    assert!(
        e["msg"].as_str().unwrap().contains("CHECK needs prevResult"),
        "{e}"
    );
    let mut old = lab.conf("0.3.1");
    old["prevResult"] = result.clone();
    let e = lab.cni("CHECK", &pod, &old, &[]).err();
    assert_eq!(
        (e["code"].as_u64(), e["msg"].as_str()),
        (Some(1), Some("config version does not allow CHECK"))
    );
    lab.cni("DEL", &pod, &conf, &[]).ok();
}

#[test]
fn del_is_idempotent() {
    let lab = Lab::new();
    let conf = lab.conf("0.4.0");
    // A container the plugin never saw.
    lab.cni("DEL", &Pod::k8s("never"), &conf, &[]).ok();
    // A pod whose namespace is gone before DEL: the address and endpoint are still released.
    let pod = Pod::k8s("vanishing");
    let result = lab.add(&pod, &conf);
    let mut del_conf = conf.clone();
    del_conf["prevResult"] = result;
    let gone = format!("/run/netns/{}-gone", pod.ns.name());
    lab.cni("DEL", &pod, &del_conf, &[("CNI_NETNS", &gone)]).ok();
    assert!(lab.held(&pod).is_empty());
    assert!(lab.endpoints().is_empty());
    // Without CNI_NETNS at all (allowed for DEL).
    lab.cni("DEL", &pod, &del_conf, &[("CNI_NETNS", "")]).ok();
    // A stale sandbox's DEL never deletes the live sandbox's endpoint (same pod name, other ID).
    let live = Pod::k8s("same-name");
    lab.add(&live, &conf);
    let stale = Pod {
        ns: brindle_testkit::Netns::new("cnp"),
        id: cni_support::container_id(),
        args: live.args.clone(),
    };
    lab.cni("DEL", &stale, &conf, &[]).ok();
    assert_eq!(lab.endpoints().len(), 1);
    assert_eq!(lab.held(&live).len(), 1);
    lab.cni("DEL", &live, &conf, &[]).ok();
    assert!(lab.endpoints().is_empty());
}

#[test]
fn plain_cni_workloads_mtu_forwarding_and_profiles() {
    let lab = Lab::new();
    // The agent's MTU file is used when the configuration says 0.
    std::fs::create_dir_all(lab.dir.join("state")).unwrap();
    std::fs::write(lab.dir.join("state/mtu"), "1440\n").unwrap();
    let mut conf = lab.conf("1.1.0");
    conf["container_settings"] = json!({"allow_ip_forwarding": true});
    let pod = Pod::plain();
    let result = lab.add(&pod, &conf);
    let host = format!("cali{}", &sha1_hex(&pod.id)[..11]);
    assert_eq!(result["interfaces"][0]["name"], host.as_str());
    assert_eq!(result["interfaces"][1]["mtu"], 1440);
    let link = lab.node.ip(&["-o", "link", "show", &host]);
    assert!(
        link.contains("mtu 1440") && link.contains("link/ether ee:ee:ee:ee:ee:ee"),
        "{link}"
    );
    assert_eq!(pod.ns.run("cat", &["/proc/sys/net/ipv4/ip_forward"]).trim(), "1");
    // A CNI workload: orchestrator cni, named after the container, profile = the network,
    // which the plugin created as Calico's does.
    let wep_key = cni_support::key(
        "workloadendpoints",
        &format!("default/{NODE}-cni-{}-eth0", pod.id),
    );
    let wep = lab.get(&wep_key).expect("endpoint");
    assert_eq!(wep["spec"]["orchestrator"], "cni");
    assert_eq!(wep["spec"]["workload"], pod.id.as_str());
    assert_eq!(wep["spec"]["profiles"], json!([lab.net]));
    let profile = lab.get(&cni_support::key("profiles", &lab.net)).expect("profile");
    assert_eq!(
        profile["spec"]["ingress"][0]["source"]["selector"],
        format!("has({})", lab.net)
    );
    assert_eq!(profile["spec"]["egress"][0]["action"], "Allow");
    assert_eq!(profile["spec"]["labelsToApply"], json!({lab.net.clone(): ""}));
    // The IPAM attributes Calico records.
    let addr: std::net::IpAddr = result["ips"][0]["address"]
        .as_str()
        .unwrap()
        .trim_end_matches("/32")
        .parse()
        .unwrap();
    let a = brindle_ipam::Ipam::new(lab.ds.clone())
        .allocation(addr)
        .unwrap()
        .unwrap();
    assert_eq!(
        a.handle.as_deref(),
        Some(format!("{}.{}", lab.net, pod.id).as_str())
    );
    assert_eq!(a.attrs["node"], NODE);
    assert!(a.attrs["timestamp"].ends_with(" +0000 UTC"), "{:?}", a.attrs);
    assert!(!a.attrs.contains_key("pod"));
    lab.cni("DEL", &pod, &conf, &[]).ok();
}

/// sha1 of `s` in hex, from coreutils (an implementation independent of the plugin's).
fn sha1_hex(s: &str) -> String {
    use std::io::Write as _;
    let mut child = std::process::Command::new("sha1sum")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(s.as_bytes()).unwrap();
    let out = child.wait_with_output().unwrap();
    String::from_utf8(out.stdout).unwrap()[..40].to_string()
}

/// containerd 1.6 passes `<namespace>-<id>` as the container ID: two containers whose IDs
/// share their first 11 characters must still get two host veths (named from a hash of the
/// whole ID), both wired and both released.
#[test]
fn container_ids_sharing_a_prefix_get_their_own_veths() {
    let lab = Lab::new();
    let conf = lab.conf("1.0.0");
    let mut a = Pod::plain();
    let mut b = Pod::plain();
    let tag = brindle_testkit::names::unique("c");
    a.id = format!("default-{tag}-a");
    b.id = format!("default-{tag}-b");
    assert_eq!(a.id[..11], b.id[..11]);
    let ra = lab.add(&a, &conf);
    let rb = lab.add(&b, &conf);
    let (ha, hb) = (
        ra["interfaces"][0]["name"].as_str().unwrap().to_string(),
        rb["interfaces"][0]["name"].as_str().unwrap().to_string(),
    );
    assert_eq!(ha, format!("cali{}", &sha1_hex(&a.id)[..11]));
    assert_eq!(hb, format!("cali{}", &sha1_hex(&b.id)[..11]));
    assert_ne!(ha, hb);
    let links = lab.node_links();
    assert!(links.contains(&ha) && links.contains(&hb), "{links:?}");
    let (ipa, ipb) = (cni_support::ip_of(&ra), cni_support::ip_of(&rb));
    assert!(a.ns.reach(&ipb) && b.ns.reach(&ipa), "{ipa} <-> {ipb}");
    lab.cni("DEL", &a, &conf, &[]).ok();
    lab.cni("DEL", &b, &conf, &[]).ok();
    assert!(lab.allocated().is_empty(), "{:?}", lab.allocated());
    let links = lab.node_links();
    assert!(!links.contains(&ha) && !links.contains(&hb), "{links:?}");
}

#[test]
fn version_status_and_gc() {
    let lab = Lab::new();
    let v = lab
        .call_as(None, &[("CNI_COMMAND", "VERSION")], br#"{"cniVersion":"1.0.0"}"#)
        .ok()
        .json();
    assert_eq!(
        v,
        json!({"cniVersion":"1.0.0","supportedVersions":["0.3.0","0.3.1","0.4.0","1.0.0","1.1.0"]})
    );
    let conf = lab.conf("1.1.0");
    lab.call_as(
        None,
        &[("CNI_COMMAND", "STATUS"), ("CNI_PATH", "/usr/lib/cni")],
        conf.to_string().as_bytes(),
    )
    .ok();
    // STATUS needs 1.1.0, and reports an unready datastore as code 50.
    let e = lab
        .call_as(
            None,
            &[("CNI_COMMAND", "STATUS")],
            lab.conf("1.0.0").to_string().as_bytes(),
        )
        .err();
    assert_eq!(e["code"], 1);
    let ci = cni_support::key("clusterinformations", "default");
    let mut info = lab.get(&ci).unwrap();
    info["spec"]["datastoreReady"] = json!(false);
    lab.put(&ci, info.clone());
    let e = lab
        .call_as(None, &[("CNI_COMMAND", "STATUS")], conf.to_string().as_bytes())
        .err();
    assert_eq!(e["code"], 50);
    assert!(e["msg"].as_str().unwrap().contains("not ready"), "{e}");
    info["spec"]["datastoreReady"] = json!(true);
    lab.put(&ci, info);

    // GC: three pods, the runtime still knows one; the other two are released (address and
    // endpoint), the known one is untouched.
    let pods: Vec<Pod> = (0..3).map(|i| Pod::k8s(&format!("gc-{i}"))).collect();
    for p in &pods {
        lab.add(p, &conf);
    }
    // Another node's pod of the same network: never touched by this node's GC.
    lab.put(
        &cni_support::key("nodes", "node2"),
        json!({"kind":"Node","apiVersion":"projectcalico.org/v3","metadata":{"name":"node2"},"spec":{}}),
    );
    let remote = Pod::k8s("remote");
    let mut remote_conf = conf.clone();
    remote_conf["nodename"] = json!("node2");
    lab.cni("ADD", &remote, &remote_conf, &[]).ok();
    let mut gc = conf.clone();
    gc["cni.dev/valid-attachments"] = json!([{"containerID": pods[1].id, "ifname": "eth0"}]);
    let out = lab
        .call_as(
            None,
            &[("CNI_COMMAND", "GC"), ("CNI_PATH", "/usr/lib/cni")],
            gc.to_string().as_bytes(),
        )
        .ok();
    assert_eq!(out.stdout, "");
    assert!(lab.held(&pods[0]).is_empty());
    assert_eq!(lab.held(&pods[1]).len(), 1);
    assert!(lab.held(&pods[2]).is_empty());
    assert_eq!(
        lab.held(&remote).len(),
        1,
        "another node's allocation was collected"
    );
    assert_eq!(lab.endpoints().len(), 2, "{:?}", lab.endpoints());
    // GC needs 1.1.0.
    let mut old = gc.clone();
    old["cniVersion"] = json!("1.0.0");
    let e = lab
        .call_as(None, &[("CNI_COMMAND", "GC")], old.to_string().as_bytes())
        .err();
    assert_eq!(
        (e["code"].as_u64(), e["msg"].as_str()),
        (Some(1), Some("config version does not allow GC"))
    );
}

#[test]
fn dual_stack_pods() {
    let lab = Lab::new();
    lab.node
        .ip(&["-6", "addr", "add", "fd00:42::80/64", "dev", "up0", "nodad"]);
    lab.node.sysctl("net.ipv6.conf.all.forwarding", "1");
    lab.put(
        &cni_support::key("ippools", "default-ipv6-ippool"),
        json!({"kind":"IPPool","apiVersion":"projectcalico.org/v3","metadata":{"name":"default-ipv6-ippool"},
               "spec":{"cidr":"fd00:233::/48","nodeSelector":"all()"}}),
    );
    let mut conf = lab.conf("1.0.0");
    conf["ipam"]["assign_ipv6"] = json!("true");
    let pod = Pod::k8s("dual");
    let r = lab.add(&pod, &conf);
    let ips: Vec<String> = r["ips"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["address"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(ips.len(), 2, "{r}");
    assert!(ips[0].starts_with("10.233.") && ips[0].ends_with("/32"), "{r}");
    assert!(ips[1].starts_with("fd00:233:") && ips[1].ends_with("/128"), "{r}");
    let v6 = ips[1].trim_end_matches("/128").to_string();
    let host = r["interfaces"][0]["name"].as_str().unwrap().to_string();
    let routes = pod.ns.ip(&["-6", "route"]);
    assert!(
        routes.contains("default via fe80::ecee:eeff:feee:eeee dev eth0"),
        "{routes}"
    );
    let host_routes = lab.node.ip(&["-6", "route", "show", "dev", &host]);
    assert!(host_routes.contains(&v6), "{host_routes}");
    assert!(lab.node.reach(&v6), "node cannot reach the pod over IPv6");
    assert!(pod.ns.reach("fd00:42::80"), "pod cannot reach the node over IPv6");
    assert!(
        pod.ns.reach("172.20.42.80"),
        "pod cannot reach the node over IPv4"
    );
    let mut check = conf.clone();
    check["prevResult"] = r;
    lab.cni("CHECK", &pod, &check, &[]).ok();
    lab.cni("DEL", &pod, &check, &[]).ok();
    assert!(lab.allocated().is_empty());
}

#[test]
fn etcd_datastore() {
    let lab = Lab::etcd();
    let conf = lab.conf("1.0.0");
    let pod = Pod::k8s("on-etcd");
    let r = lab.add(&pod, &conf);
    let ip = cni_support::ip_of(&r);
    assert!(lab.node.reach(&ip));
    assert_eq!(lab.held(&pod).len(), 1);
    assert_eq!(lab.endpoints().len(), 1);
    let mut check = conf.clone();
    check["prevResult"] = r;
    lab.cni("CHECK", &pod, &check, &[]).ok();
    lab.cni("DEL", &pod, &check, &[]).ok();
    assert!(lab.allocated().is_empty());
    assert!(lab.endpoints().is_empty());
}

#[test]
fn chained_after_another_plugin_and_legacy_handles() {
    let lab = Lab::new();
    // ADD as a later plugin of a chain: the previous result is kept, Brindle's interfaces are
    // appended and its address points at its own pod interface.
    let mut conf = lab.conf("1.0.0");
    conf["prevResult"] = json!({"cniVersion":"1.0.0",
        "interfaces":[{"name":"lo","sandbox":"/run/netns/x"}],
        "ips":[{"interface":0,"address":"127.0.0.1/8"}],"dns":{"nameservers":["10.96.0.10"]}});
    let pod = Pod::k8s("chained");
    let r = lab.add(&pod, &conf);
    assert_eq!(r["interfaces"][0]["name"], "lo");
    assert_eq!(r["interfaces"][2]["name"], "eth0");
    assert_eq!(r["ips"][0]["address"], "127.0.0.1/8");
    assert_eq!(r["ips"][1]["interface"], 2);
    lab.cni("DEL", &pod, &lab.conf("1.0.0"), &[]).ok();
    // An address held under Calico's legacy handle `<namespace>.<pod>` is released by DEL too.
    let legacy = Pod::k8s("legacy");
    let ipam = brindle_ipam::Ipam::new(lab.ds.clone());
    let mut args = brindle_ipam::AutoAssignArgs::workload_v4(NODE, "default.legacy");
    args.attrs.insert("pod".into(), "legacy".into());
    ipam.auto_assign(&args).unwrap();
    assert_eq!(lab.allocated().len(), 1);
    lab.cni("DEL", &legacy, &lab.conf("1.0.0"), &[]).ok();
    assert!(lab.allocated().is_empty(), "{:?}", lab.allocated());
}
