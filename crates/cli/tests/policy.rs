//! Policy resources through the real binary: Kubernetes NetworkPolicies applied and read back
//! as Calico stores them (`knp.default.<name>`), calicoctl's tables for the policy kinds, tiers,
//! and what is refused.

mod support;

use support::{Env, mask};

/// The worked example of docs/POLICY.md.
const K8S_WEB: &str = "\
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata:
  name: web
  namespace: x
spec:
  podSelector: {matchLabels: {pod: a}}
  policyTypes: [Ingress]
  ingress:
  - from:
    - {namespaceSelector: {matchLabels: {team: blue}}, podSelector: {matchLabels: {pod: b}}}
    - {ipBlock: {cidr: 10.0.0.0/8, except: [10.1.0.0/16]}}
    ports: [{port: 80}, {port: 81}, {protocol: UDP, port: 53}]
";

const WEB_YAML: &str = r#"apiVersion: projectcalico.org/v3
kind: NetworkPolicy
metadata:
  creationTimestamp: <creationTimestamp>
  labels:
    projectcalico.org/tier: default
  name: knp.default.web
  namespace: x
  resourceVersion: "4"
  uid: <uid>
spec:
  ingress:
  - action: Allow
    destination:
      ports:
      - 80:81
    protocol: TCP
    source:
      namespaceSelector: team == 'blue'
      selector: projectcalico.org/orchestrator == 'k8s' && pod == 'b'
  - action: Allow
    destination:
      ports:
      - 80:81
    protocol: TCP
    source:
      nets:
      - 10.0.0.0/8
      notNets:
      - 10.1.0.0/16
  - action: Allow
    destination:
      ports:
      - 53
    protocol: UDP
    source:
      namespaceSelector: team == 'blue'
      selector: projectcalico.org/orchestrator == 'k8s' && pod == 'b'
  - action: Allow
    destination:
      ports:
      - 53
    protocol: UDP
    source:
      nets:
      - 10.0.0.0/8
      notNets:
      - 10.1.0.0/16
  order: 1000
  selector: projectcalico.org/orchestrator == 'k8s' && pod == 'a'
  tier: default
  types:
  - Ingress
"#;

#[test]
fn kubernetes_network_policy_is_stored_as_knp_default() {
    let env = Env::sqlite();
    let f = env.write("web.yaml", K8S_WEB);
    assert_eq!(
        env.run(&["apply", "-f", &f]).ok().stdout,
        "Successfully applied 1 'NetworkPolicy' resource(s)\n"
    );
    let r = env
        .run(&["get", "networkpolicy", "knp.default.web", "-n", "x", "-o", "yaml"])
        .ok();
    assert_eq!(mask(&r.stdout), WEB_YAML);
    // Applying again replaces it in place; -f with the Kubernetes document finds it.
    env.run(&["apply", "-f", &f]).ok();
    let r = env.run(&["get", "-f", &f]).ok();
    assert_eq!(
        r.stdout,
        "NAME              TIER      \nknp.default.web   default   \n\n"
    );
    // calicoctl's own guard: a Calico NetworkPolicy may not take the knp.default. prefix, nor
    // be changed or deleted under it.
    let own = "apiVersion: projectcalico.org/v3\nkind: NetworkPolicy\nmetadata:\n  name: knp.default.web\n  namespace: x\nspec:\n  selector: all()\n";
    let r = env.run(&["apply", "-f", &env.write("own.yaml", own)]).fails();
    assert_eq!(
        r.stderr,
        "failed to apply 'NetworkPolicy' resource: [operation create or apply is not supported on NetworkPolicy(x/knp.default.web): kubernetes network policies must be managed through the kubernetes API]\n"
    );
    let r = env.run(&["replace", "-f", &env.write("own.yaml", own)]).fails();
    assert!(
        r.stderr.contains("operation apply or replace is not supported"),
        "{r:?}"
    );
    let r = env.run(&["delete", "np", "knp.default.web", "-n", "x"]).fails();
    assert_eq!(
        r.stderr,
        "Failed to delete 'NetworkPolicy' resource: operation delete is not supported on NetworkPolicy(x/knp.default.web): kubernetes network policies must be managed through the kubernetes API\n"
    );
    let r = env
        .run(&[
            "patch",
            "np",
            "knp.default.web",
            "-n",
            "x",
            "-p",
            r#"{"spec":{"order":5}}"#,
        ])
        .fails();
    assert!(
        r.stderr.contains("must be managed through the kubernetes API"),
        "{r:?}"
    );
    // The Kubernetes document deletes it.
    assert_eq!(
        env.run(&["delete", "-f", &f]).ok().stdout,
        "Successfully deleted 1 'NetworkPolicy' resource(s)\n"
    );
    assert_eq!(
        env.run(&["get", "np", "-A"]).ok().stdout,
        "NAMESPACE   NAME   TIER   \n\n"
    );
}

#[test]
fn kubernetes_objects_are_checked_and_pods_go_to_a_lab() {
    let env = Env::sqlite();
    let bad = K8S_WEB.replace("{port: 80}", "{port: 0}");
    let r = env.run(&["apply", "-f", &env.write("bad.yaml", &bad)]).fails();
    assert_eq!(
        r.stderr,
        "The NetworkPolicy \"web\" in namespace \"x\" is invalid: spec.ingress[0].ports[0].port: Invalid value: 0: must be between 1 and 65535, inclusive\n"
    );
    let pod = "apiVersion: v1\nkind: Pod\nmetadata:\n  name: a\n  namespace: x\nspec:\n  containers:\n  - name: c\n";
    let r = env.run(&["apply", "-f", &env.write("pod.yaml", pod)]).fails();
    assert_eq!(
        r.stderr,
        "Pod(x/a): Kubernetes Pod objects go to a lab (`brindle lab apply --name LAB -f FILE`); this command takes Calico resources and Kubernetes NetworkPolicies\n"
    );
    // validate takes every kind and checks each as its API server would.
    let ns = "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: x\n";
    let all = env.write("all.yaml", &format!("{K8S_WEB}---\n{ns}---\n{pod}"));
    assert_eq!(
        env.run(&["validate", "-f", &all]).ok().stdout,
        "Successfully validated 3 resource(s)\n"
    );
    let r = env.run(&["validate", "-f", &env.write("b.yaml", &bad)]).fails();
    assert!(
        r.stderr.starts_with("hit error(s): [The NetworkPolicy \"web\""),
        "{r:?}"
    );
    // A namespace on the command line applies to Kubernetes policies without one.
    let no_ns = K8S_WEB.replace("  namespace: x\n", "");
    env.run(&["apply", "-n", "y", "-f", &env.write("n.yaml", &no_ns)])
        .ok();
    assert_eq!(
        env.run(&["get", "np", "-n", "y"]).ok().stdout,
        "NAME              TIER      \nknp.default.web   default   \n\n"
    );
}

const POLICIES: &str = "\
apiVersion: projectcalico.org/v3
kind: Tier
metadata:
  name: security
spec:
  order: 100
---
apiVersion: projectcalico.org/v3
kind: NetworkPolicy
metadata:
  name: allow-web
  namespace: prod
spec:
  order: 10.5
  selector: app == 'web'
  ingress:
  - action: Allow
    protocol: TCP
    destination:
      ports: [80]
---
apiVersion: projectcalico.org/v3
kind: NetworkPolicy
metadata:
  name: security.quarantine
  namespace: dev
spec:
  tier: security
  selector: quarantine == 'true'
  egress:
  - action: Deny
---
apiVersion: projectcalico.org/v3
kind: GlobalNetworkPolicy
metadata:
  name: deny-blocked
spec:
  order: 1
  selector: all()
  namespaceSelector: has(projectcalico.org/name)
  ingress:
  - action: Deny
    source:
      selector: blocked == 'true'
      namespaceSelector: global()
---
apiVersion: projectcalico.org/v3
kind: NetworkSet
metadata:
  name: partners
  namespace: prod
  labels: {role: partner}
spec:
  nets: [198.51.100.0/24, 203.0.113.0/24]
---
apiVersion: projectcalico.org/v3
kind: GlobalNetworkSet
metadata:
  name: internet-ranges
spec:
  nets: [1.0.0.0/8, 2.0.0.0/8, 3.0.0.0/8, 4.0.0.0/8, 5.0.0.0/8, 6.0.0.0/8, 7.0.0.0/8, 8.0.0.0/8, 9.0.0.0/8]
";

#[test]
fn tables_of_the_policy_kinds() {
    let env = Env::sqlite();
    assert_eq!(
        env.run(&["apply", "-f", &env.write("p.yaml", POLICIES)])
            .ok()
            .stdout,
        "Successfully applied 6 resource(s)\n"
    );
    let table = |args: &[&str]| env.run(args).ok().stdout;
    assert_eq!(
        table(&["get", "networkpolicy", "-A"]),
        "NAMESPACE   NAME                  TIER       \n\
         dev         security.quarantine   security   \n\
         prod        allow-web             default    \n\n"
    );
    assert_eq!(
        table(&["get", "policies", "-n", "prod", "-o", "wide"]),
        "NAME        TIER      ORDER   SELECTOR       \nallow-web   default   10.5    app == 'web'   \n\n"
    );
    assert_eq!(
        table(&["get", "np", "-A", "-o", "wide"]),
        "NAMESPACE   NAME                  TIER       ORDER   SELECTOR               \n\
         dev         security.quarantine   security   <nil>   quarantine == 'true'   \n\
         prod        allow-web             default    10.5    app == 'web'           \n\n"
    );
    assert_eq!(
        table(&["get", "np"]),
        "NAME   TIER   \n\n",
        "default namespace is empty"
    );
    assert_eq!(
        table(&["get", "gnp", "-o", "wide"]),
        "NAME           TIER      ORDER   SELECTOR   \ndeny-blocked   default   1       all()      \n\n"
    );
    assert_eq!(
        table(&["get", "globalnetworkpolicies"]),
        "NAME           TIER      \ndeny-blocked   default   \n\n"
    );
    assert_eq!(
        table(&["get", "netsets", "-n", "prod", "-o", "wide"]),
        "NAME       NETS                             \npartners   198.51.100.0/24,203.0.113.0/24   \n\n"
    );
    assert_eq!(
        table(&["get", "networksets", "-A"]),
        "NAMESPACE   NAME       \nprod        partners   \n\n"
    );
    // NETS is cut at 80 characters, as calicoctl's joinAndTruncate cuts it.
    assert_eq!(
        table(&["get", "gnetsets", "-o", "wide"]),
        "NAME              NETS                                                                               \n\
         internet-ranges   1.0.0.0/8,2.0.0.0/8,3.0.0.0/8,4.0.0.0/8,5.0.0.0/8,6.0.0.0/8,7.0.0.0/8,8.0.0.0...   \n\n"
    );
    // Tiers by order (the built-in ones made on the first write), Go's %v of the order.
    assert_eq!(
        table(&["get", "tier"]),
        "NAME            ORDER   \nsecurity        100     \nkube-admin      1000    \ndefault         1e+06   \nkube-baseline   1e+07   \n\n"
    );
    assert_eq!(
        table(&["get", "tiers", "-o", "custom-columns=NAME"]),
        "NAME            \nsecurity        \nkube-admin      \ndefault         \nkube-baseline   \n\n"
    );
    // What the client filled in, as stored.
    let r = table(&["get", "np", "security.quarantine", "-n", "dev", "-o", "json"]);
    assert!(r.contains("\"projectcalico.org/tier\": \"security\""), "{r}");
    assert!(r.contains("\"types\": [\n      \"Egress\"\n    ]"), "{r}");
    // The built-in profile is listed.
    assert_eq!(
        table(&["get", "profiles"]),
        "NAME                          \nprojectcalico-default-allow   \n\n"
    );
}

#[test]
fn tiers_are_checked_like_calicos_client() {
    let env = Env::sqlite();
    let p = "apiVersion: projectcalico.org/v3\nkind: GlobalNetworkPolicy\nmetadata:\n  name: audit.log-all\nspec:\n  tier: audit\n  ingress:\n  - action: Log\n";
    let r = env.run(&["create", "-f", &env.write("p.yaml", p)]).fails();
    assert_eq!(
        r.stderr,
        "failed to create 'GlobalNetworkPolicy' resource: [resource does not exist: Tier(audit) with error: <nil>]\n"
    );
    let tier = "apiVersion: projectcalico.org/v3\nkind: Tier\nmetadata:\n  name: audit\nspec:\n  defaultAction: Pass\n";
    // In one file the tier comes first and the policy finds it.
    let both = env.write("both.yaml", &format!("{tier}---\n{p}"));
    assert_eq!(
        env.run(&["create", "-f", &both]).ok().stdout,
        "Successfully created 2 resource(s)\n"
    );
    assert_eq!(
        env.run(&["get", "tier", "audit", "-o", "yaml"])
            .ok()
            .stdout
            .lines()
            .filter(|l| l.starts_with("  ")
                && !l.starts_with("  creation")
                && !l.starts_with("  resourceVersion")
                && !l.starts_with("  uid"))
            .collect::<Vec<_>>(),
        ["  name: audit", "  defaultAction: Pass", "  order: 1000000"]
    );
    let r = env.run(&["delete", "tier", "audit"]).fails();
    assert_eq!(
        r.stderr,
        "Failed to delete 'Tier' resource: operation delete is not supported on audit: Cannot delete a non-empty tier\n"
    );
    let r = env.run(&["delete", "tier", "default"]).fails();
    assert_eq!(
        r.stderr,
        "Failed to delete 'Tier' resource: operation Delete is not supported on default: Cannot delete default tier\n"
    );
    env.run(&["delete", "gnp", "audit.log-all"]).ok();
    env.run(&["delete", "tier", "audit"]).ok();
    let bad = "apiVersion: projectcalico.org/v3\nkind: Tier\nmetadata:\n  name: kube-admin\nspec:\n  order: 5\n  defaultAction: Pass\n";
    let r = env.run(&["apply", "-f", &env.write("t.yaml", bad)]).fails();
    assert_eq!(
        r.stderr,
        "failed to apply 'Tier' resource: [Tier(kube-admin): error with field Tier.Spec.Order = '5' (kube-admin tier order must be 1000)]\n"
    );
}
