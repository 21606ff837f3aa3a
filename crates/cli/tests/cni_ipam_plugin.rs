//! `brindle-ipam` as a CNI IPAM plugin on its own: its verbs called directly (the abbreviated
//! result: addresses with the block's prefix length, one route per address, no interfaces),
//! and under Debian's reference `bridge` plugin, where two pods on one bridge reach each other.
//! Also the other direction: Brindle's main plugin delegating to Debian's `host-local`.

mod cni_support;

use cni_support::{Lab, Pod};
use serde_json::json;

#[test]
fn ipam_verbs_directly() {
    let lab = Lab::new();
    let pod = Pod::k8s("ipam-only");
    let conf = lab.conf("1.0.0");
    let env = |cmd: &'static str, pod: &Pod| -> Vec<(&'static str, String)> {
        vec![
            ("CNI_COMMAND", cmd.to_string()),
            ("CNI_CONTAINERID", pod.id.clone()),
            ("CNI_NETNS", pod.netns_path()),
            ("CNI_IFNAME", "eth0".to_string()),
            ("CNI_ARGS", pod.args.clone()),
            ("CNI_PATH", "/usr/lib/cni".to_string()),
        ]
    };
    let call = |cmd, pod: &Pod, conf: &serde_json::Value| {
        let e = env(cmd, pod);
        let e: Vec<(&str, &str)> = e.iter().map(|(k, v)| (*k, v.as_str())).collect();
        lab.call_as(Some("brindle-ipam"), &e, conf.to_string().as_bytes())
    };
    let r = call("ADD", &pod, &conf).ok().json();
    assert!(r.get("interfaces").is_none(), "{r}");
    let addr = r["ips"][0]["address"].as_str().unwrap().to_string();
    assert!(addr.starts_with("10.233.") && addr.ends_with("/24"), "{r}");
    assert!(r["ips"][0].get("interface").is_none());
    let block: ipnet::IpNet = addr.parse::<ipnet::IpNet>().unwrap().trunc();
    assert_eq!(r["routes"], json!([{"dst": block.to_string()}]));
    assert_eq!(lab.held(&pod).len(), 1);
    // The IPAM plugin writes no endpoint and touches no interface.
    assert!(lab.endpoints().is_empty());
    assert!(pod.eth0().is_empty());
    let mut check = conf.clone();
    check["prevResult"] = r.clone();
    call("CHECK", &pod, &check).ok();
    let mut wrong = check.clone();
    wrong["prevResult"]["ips"][0]["address"] = json!("10.233.1.200/24");
    let e = call("CHECK", &pod, &wrong).err();
    assert!(
        e["msg"].as_str().unwrap().contains("expected [10.233.1.200]"),
        "{e}"
    );
    let mut v11 = conf.clone();
    v11["cniVersion"] = json!("1.1.0");
    call("STATUS", &pod, &v11).ok();
    call("DEL", &pod, &conf).ok();
    assert!(lab.held(&pod).is_empty());
    call("DEL", &pod, &conf).ok();
    // GC through the IPAM plugin.
    let a = Pod::k8s("a");
    let b = Pod::k8s("b");
    call("ADD", &a, &v11).ok();
    call("ADD", &b, &v11).ok();
    let mut gc = v11.clone();
    gc["cni.dev/valid-attachments"] = json!([{"containerID": b.id, "ifname": "eth0"}]);
    call("GC", &a, &gc).ok();
    assert!(lab.held(&a).is_empty());
    assert_eq!(lab.held(&b).len(), 1);
    // A specific address through CNI_ARGS IP=.
    let c = Pod {
        args: format!("{};IP=10.233.64.77", Pod::k8s("c").args),
        ..Pod::k8s("c")
    };
    let r = call("ADD", &c, &conf).ok().json();
    assert_eq!(r["ips"][0]["address"], "10.233.64.77/24");
}

#[test]
fn brindle_ipam_under_debians_bridge() {
    let lab = Lab::new();
    let bridge = brindle_testkit::names::unique("bb");
    let mut conf = lab.conf("0.4.0");
    conf["type"] = json!("bridge");
    conf["bridge"] = json!(bridge);
    conf["isGateway"] = json!(false);
    let a = Pod::k8s("bridged-a");
    let b = Pod::k8s("bridged-b");
    let ra = lab.exec("bridge", "ADD", &a, &conf).ok().json();
    let rb = lab.exec("bridge", "ADD", &b, &conf).ok().json();
    let (ip_a, ip_b) = (cni_support::ip_of(&ra), cni_support::ip_of(&rb));
    assert_ne!(ip_a, ip_b);
    assert!(a.eth0().contains(&format!("inet {ip_a}/24")), "{}", a.eth0());
    assert!(a.ns.reach(&ip_b), "pod a cannot reach pod b over the bridge");
    assert!(b.ns.reach(&ip_a), "pod b cannot reach pod a over the bridge");
    let mut del = conf.clone();
    del["prevResult"] = ra;
    lab.exec("bridge", "DEL", &a, &del).ok();
    assert!(lab.held(&a).is_empty());
    assert_eq!(lab.held(&b).len(), 1);
    lab.exec("bridge", "DEL", &b, &conf).ok();
    assert!(lab.allocated().is_empty());
    lab.node.ip(&["link", "del", &bridge]);
}

#[test]
fn brindle_main_plugin_with_host_local() {
    let lab = Lab::new();
    let mut conf = lab.conf("1.0.0");
    let data_dir = lab.dir.join("host-local");
    conf["ipam"] = json!({
        "type": "host-local",
        "subnet": "10.77.0.0/24",
        "routes": [{"dst": "0.0.0.0/0"}],
        "dataDir": data_dir,
    });
    let pod = Pod::k8s("hl");
    let r = lab.add(&pod, &conf);
    let addr = r["ips"][0]["address"].as_str().unwrap().to_string();
    assert!(addr.starts_with("10.77.0.") && addr.ends_with("/32"), "{r}");
    assert_eq!(r["routes"], json!([{"dst": "0.0.0.0/0"}]));
    let ip = addr.trim_end_matches("/32");
    assert!(lab.node.reach(ip), "node cannot reach the pod {ip}");
    assert!(
        std::fs::read_dir(data_dir.join(&lab.net)).unwrap().count() > 1,
        "host-local recorded nothing"
    );
    let mut check = conf.clone();
    check["prevResult"] = r.clone();
    lab.cni("CHECK", &pod, &check, &[]).ok();
    lab.cni("DEL", &pod, &check, &[]).ok();
    assert!(
        !std::fs::read_dir(data_dir.join(&lab.net)).unwrap().any(|e| e
            .unwrap()
            .file_name()
            .to_string_lossy()
            == ip)
    );
    // A failure after host-local allocated is rolled back through host-local DEL.
    let pod = Pod::k8s("hl2");
    lab.cni("ADD", &pod, &conf, &[("BRINDLE_CNI_FAIL_AT", "veth")])
        .err();
    let left: Vec<String> = std::fs::read_dir(data_dir.join(&lab.net))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with("10.77."))
        .collect();
    assert!(left.is_empty(), "host-local still holds {left:?}");
    // An IPAM plugin that is nowhere on CNI_PATH.
    let mut missing = conf.clone();
    missing["ipam"]["type"] = json!("no-such-ipam");
    let e = lab.cni("ADD", &Pod::k8s("x"), &missing, &[]).err();
    assert!(
        e["msg"]
            .as_str()
            .unwrap()
            .contains("failed to find plugin \"no-such-ipam\""),
        "{e}"
    );
}
