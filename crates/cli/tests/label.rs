//! calicoctl's `label` verb on every kind that can carry labels: set, refuse to overwrite
//! without `--overwrite`, overwrite, remove, and calicoctl's messages for each failure.

mod support;

use support::Env;

const ALL_KINDS: &str = "\
apiVersion: projectcalico.org/v3
kind: IPPool
metadata: {name: pool1}
spec: {cidr: 10.233.64.0/18}
---
apiVersion: projectcalico.org/v3
kind: BGPConfiguration
metadata: {name: default}
spec: {asNumber: 64512}
---
apiVersion: projectcalico.org/v3
kind: BGPPeer
metadata: {name: tor}
spec: {peerIP: 172.20.40.1, asNumber: 65001}
---
apiVersion: projectcalico.org/v3
kind: Node
metadata: {name: node1}
spec: {bgp: {ipv4Address: 172.20.42.80/22}}
---
apiVersion: projectcalico.org/v3
kind: FelixConfiguration
metadata: {name: default}
spec: {logSeverityScreen: Info}
---
apiVersion: projectcalico.org/v3
kind: WorkloadEndpoint
metadata: {name: node1-k8s-nginx-eth0, namespace: web}
spec: {node: node1, pod: nginx, endpoint: eth0, interfaceName: cali1, ipNetworks: [10.233.94.1/32]}
---
apiVersion: projectcalico.org/v3
kind: IPAMConfiguration
metadata: {name: default}
spec: {strictAffinity: false, maxBlocksPerHost: 4, autoAllocateBlocks: true}
---
apiVersion: projectcalico.org/v3
kind: Profile
metadata: {name: kns.web}
spec: {ingress: [{action: Allow}], egress: [{action: Allow}]}
---
apiVersion: projectcalico.org/v3
kind: NetworkPolicy
metadata: {name: allow-web, namespace: web}
spec: {selector: all()}
---
apiVersion: projectcalico.org/v3
kind: GlobalNetworkPolicy
metadata: {name: deny-all}
spec: {selector: all()}
---
apiVersion: projectcalico.org/v3
kind: NetworkSet
metadata: {name: partners, namespace: web}
spec: {nets: [192.0.2.0/24]}
---
apiVersion: projectcalico.org/v3
kind: GlobalNetworkSet
metadata: {name: outside}
spec: {nets: [198.51.100.0/24]}
---
apiVersion: projectcalico.org/v3
kind: Tier
metadata: {name: security}
spec: {order: 100}
";

/// (kind as typed, name, namespace flag)
const TARGETS: &[(&str, &str, Option<&str>)] = &[
    ("ippool", "pool1", None),
    ("bgpconfig", "default", None),
    ("bgppeers", "tor", None),
    ("node", "node1", None),
    ("felixconfiguration", "default", None),
    ("workloadendpoints", "node1-k8s-nginx-eth0", Some("web")),
    ("ipamconfig", "default", None),
    ("profile", "kns.web", None),
    ("networkpolicy", "allow-web", Some("web")),
    ("GlobalNetworkPolicy", "deny-all", None),
    ("netsets", "partners", Some("web")),
    ("globalnetworkset", "outside", None),
    ("tier", "security", None),
];

#[test]
fn label_round_trips_on_every_kind() {
    let env = Env::sqlite();
    env.run(&["apply", "-f", &env.write("all.yaml", ALL_KINDS)]).ok();
    for (kind, name, ns) in TARGETS {
        let run = |extra: &[&str]| {
            let mut args = vec!["label", kind, name];
            args.extend_from_slice(extra);
            if let Some(ns) = ns {
                args.extend_from_slice(&["-n", ns]);
            }
            env.run(&args)
        };
        let get = || {
            let mut args = vec!["get", kind, name, "-o", "json"];
            if let Some(ns) = ns {
                args.extend_from_slice(&["-n", ns]);
            }
            let out = env.run(&args).ok().stdout;
            let v: serde_json::Value = serde_json::from_str(&out).unwrap();
            v["metadata"]["labels"]["team"].as_str().map(str::to_string)
        };
        assert_eq!(
            run(&["team=blue"]).ok().stdout,
            format!("Successfully set label team on {kind} {name}\n")
        );
        assert_eq!(get().as_deref(), Some("blue"), "{kind}");
        assert_eq!(
            run(&["team=red"]).fails().stderr,
            format!(
                "failed to update label of {kind} {name}, key team is already present. please use '--overwrite' to set a new value\n"
            )
        );
        assert_eq!(get().as_deref(), Some("blue"), "{kind}: unchanged");
        assert_eq!(
            run(&["team=blue"]).ok().stdout,
            format!("Successfully updated label team on {kind} {name}\n"),
            "the same value counts as an update"
        );
        assert_eq!(
            run(&["team=red", "--overwrite"]).ok().stdout,
            format!("Successfully updated label team on {kind} {name}\n")
        );
        assert_eq!(get().as_deref(), Some("red"), "{kind}");
        assert_eq!(
            run(&["team", "--remove"]).ok().stdout,
            format!("Successfully removed label team from {kind} {name}\n")
        );
        assert_eq!(get(), None, "{kind}");
        assert_eq!(
            run(&["team", "--remove"]).fails().stderr,
            format!("cannot remove label of {kind} {name}, key team does not exist\n")
        );
    }
}

#[test]
fn label_failures_in_calicoctls_words() {
    let env = Env::sqlite();
    env.run(&["apply", "-f", &env.write("all.yaml", ALL_KINDS)]).ok();
    assert_eq!(
        env.run(&["label", "wep", "nginx", "app=web"]).fails().stderr,
        "wep nginx not found\n"
    );
    assert_eq!(
        env.run(&["label", "wep", "node1-k8s-nginx-eth0", "app=web"])
            .fails()
            .stderr,
        "wep node1-k8s-nginx-eth0 not found\n",
        "namespace default unless -n"
    );
    assert_eq!(
        env.run(&["label", "ippool", "pool1", "app"]).fails().stderr,
        "invalid label app\n"
    );
    assert_eq!(
        env.run(&["label", "ippool", "pool1", "a=b=c"]).fails().stderr,
        "invalid label a=b=c\n"
    );
    assert_eq!(
        env.run(&["label", "widgets", "w", "a=b"]).fails().stderr,
        "failed to get widgets w, error resource type 'widgets' is not supported\n"
    );
    assert_eq!(
        env.run(&["label", "ippool", "pool1", "-n", "x", "a=b"])
            .fails()
            .stderr,
        "IPPool is not namespaced\n"
    );
    // The store refuses what Calico's client refuses; the reason follows calicoctl's line.
    assert_eq!(
        env.run(&["label", "ippool", "pool1", "bad key=v"]).fails().stderr,
        "failed to update ippool pool1, label not changed\nIPPool(pool1): error with field IPPool.Metadata.Labels = 'bad key' (invalid label key)\n"
    );
    assert_eq!(
        env.run(&["label", "profile", "projectcalico-default-allow", "a=b"])
            .fails()
            .stderr,
        "failed to update profile projectcalico-default-allow, label not changed\noperation update is not supported on Profile(projectcalico-default-allow): the built-in profile is not stored and cannot be changed\n"
    );
    // --overwrite and --remove exclude each other.
    let r = env.run(&["label", "ippool", "pool1", "a", "--remove", "--overwrite"]);
    assert_ne!(r.code, 0);
    assert!(r.stderr.contains("cannot be used with"), "{r:?}");
    // A converted Kubernetes policy belongs to Kubernetes.
    let knp = "apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata: {name: web, namespace: web}\nspec: {podSelector: {}}\n";
    env.run(&["apply", "-f", &env.write("k.yaml", knp)]).ok();
    assert_eq!(
        env.run(&["label", "np", "knp.default.web", "-n", "web", "a=b"])
            .fails()
            .stderr,
        "failed to update np knp.default.web, label not changed\noperation apply or replace is not supported on NetworkPolicy(web/knp.default.web): kubernetes network policies must be managed through the kubernetes API\n"
    );
}
