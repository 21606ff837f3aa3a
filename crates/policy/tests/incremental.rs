//! Property: after any sequence of changes, with flushes at arbitrary points, (1) the deltas
//! applied to a mirror give the calculation's full state, and (2) that state equals the one a
//! fresh calculation reaches from the final inputs alone.

mod support;

use std::collections::BTreeMap;
use std::sync::Arc;

use brindle_model::ObjectMeta;
use brindle_model::resources::{Profile, ProfileSpec};
use brindle_policy::ir::{FamilyRules, IpFamily, PolicyId, Settings, State, TierDefault};
use brindle_policy::selectors::{global_policy_selector, network_policy_selector};
use brindle_policy::{NetworkSetInput, PolicyCalculator, PolicyInput, TierInput};
use proptest::prelude::*;
use support::{Pod, labels, rules};

const NAMESPACES: [&str; 3] = ["x", "y", "z"];
const NODES: [&str; 2] = ["n1", "n2"];
const LABELS: [(&str, &str); 5] = [
    ("app", "web"),
    ("app", "db"),
    ("role", "x"),
    ("tier", "fe"),
    ("zone", "a"),
];
const IPS: [&str; 8] = [
    "10.0.0.1", "10.0.0.2", "10.0.0.3", "10.0.0.4", "10.0.0.9", "fd00::1", "fd00::2", "fd00::3",
];
const PORTS: [(&str, &str, u16); 4] = [
    ("http", "TCP", 80),
    ("http", "TCP", 8080),
    ("dns", "UDP", 53),
    ("dns", "TCP", 53),
];
const SELECTORS: [&str; 7] = [
    "",
    "app == 'web'",
    "has(role)",
    "app in {'web', 'db'}",
    "!has(app)",
    "pcns.team == 'blue'",
    "tier == 'fe' || zone == 'a'",
];
const RULES: [&str; 9] = [
    "[]",
    "- action: Allow",
    "- {action: Allow, protocol: TCP, source: {selector: app == 'web'}, destination: {ports: [80, http]}}",
    "- {action: Deny, source: {namespaceSelector: team == 'blue'}}",
    "- {action: Allow, destination: {ports: [http]}}",
    "- {action: Pass, source: {nets: [10.0.0.0/30, 'fd00::/127']}}",
    "- {action: Allow, source: {notSelector: has(role)}}",
    "- {action: Log}\n- {action: Allow, protocol: UDP, destination: {selector: zone == 'a', notPorts: [dns]}}",
    "- {action: Allow, source: {serviceAccounts: {names: [sa1]}, selector: has(tier)}}",
];

#[derive(Debug, Clone)]
enum Op {
    Pod {
        slot: usize,
        ns: usize,
        node: usize,
        labels: Vec<usize>,
        ips: Vec<usize>,
        ports: Vec<usize>,
        sa: bool,
        extra_profile: bool,
    },
    RemovePod(usize),
    Profile {
        ns: usize,
        team: usize,
        rules: usize,
    },
    RemoveProfile(usize),
    Policy {
        slot: usize,
        global: bool,
        ns: usize,
        selector: usize,
        order: Option<u8>,
        tier: usize,
        ingress: Option<usize>,
        egress: Option<usize>,
    },
    RemovePolicy(usize),
    NetSet {
        slot: usize,
        ns: Option<usize>,
        labels: Vec<usize>,
        ips: Vec<usize>,
    },
    RemoveNetSet(usize),
    Tier {
        order: Option<u8>,
        pass: bool,
    },
    RemoveTier,
    LogPrefix(bool),
    Flush,
}

fn op() -> impl Strategy<Value = Op> {
    let subset = |n: usize, max: usize| prop::collection::vec(0..n, 0..=max);
    prop_oneof![
        4 => (0..6usize, 0..3usize, 0..2usize, subset(LABELS.len(), 3), subset(IPS.len(), 2), subset(PORTS.len(), 3), any::<bool>(), any::<bool>())
            .prop_map(|(slot, ns, node, labels, ips, ports, sa, extra_profile)| Op::Pod { slot, ns, node, labels, ips, ports, sa, extra_profile }),
        1 => (0..6usize).prop_map(Op::RemovePod),
        2 => (0..3usize, 0..3usize, 0..2usize).prop_map(|(ns, team, rules)| Op::Profile { ns, team, rules }),
        1 => (0..3usize).prop_map(Op::RemoveProfile),
        4 => (0..5usize, any::<bool>(), 0..3usize, 0..SELECTORS.len(), prop::option::of(0..3u8), 0..3usize,
              prop::option::of(0..RULES.len()), prop::option::of(0..RULES.len()))
            .prop_map(|(slot, global, ns, selector, order, tier, ingress, egress)| Op::Policy { slot, global, ns, selector, order, tier, ingress, egress }),
        1 => (0..5usize).prop_map(Op::RemovePolicy),
        1 => (0..2usize, prop::option::of(0..3usize), subset(LABELS.len(), 2), subset(IPS.len(), 2))
            .prop_map(|(slot, ns, labels, ips)| Op::NetSet { slot, ns, labels, ips }),
        1 => (0..2usize).prop_map(Op::RemoveNetSet),
        1 => (prop::option::of(0..3u8), any::<bool>()).prop_map(|(order, pass)| Op::Tier { order, pass }),
        1 => Just(Op::RemoveTier),
        1 => any::<bool>().prop_map(Op::LogPrefix),
        3 => Just(Op::Flush),
    ]
}

/// The inputs as they stand, to feed a fresh calculation.
#[derive(Default)]
struct Inputs {
    pods: BTreeMap<usize, brindle_model::resources::WorkloadEndpoint>,
    profiles: BTreeMap<usize, Profile>,
    policies: BTreeMap<usize, PolicyInput>,
    netsets: BTreeMap<usize, NetworkSetInput>,
    tier: Option<TierInput>,
    settings: Settings,
}

fn pick<T: Copy>(all: &[T], idx: &[usize]) -> Vec<T> {
    let mut v: Vec<T> = Vec::new();
    let mut seen = Vec::new();
    for &i in idx {
        if !seen.contains(&i) {
            seen.push(i);
            v.push(all[i]);
        }
    }
    v
}

fn pod_name(slot: usize) -> String {
    format!("p{slot}")
}

fn apply(calc: &mut PolicyCalculator, inputs: &mut Inputs, op: &Op) {
    match op {
        Op::Pod {
            slot,
            ns,
            node,
            labels: l,
            ips,
            ports,
            sa,
            extra_profile,
        } => {
            let name = pod_name(*slot);
            let labels = pick(&LABELS, l);
            let ips = pick(&IPS, ips);
            let ports = pick(&PORTS, ports);
            let pod = Pod {
                namespace: NAMESPACES[*ns],
                name: &name,
                node: NODES[*node],
                labels: &labels,
                ips: &ips,
                service_account: if *sa { "sa1" } else { "" },
                ports: &ports,
            };
            let mut wep = pod.wep();
            // Endpoints keyed by slot whatever their namespace/node: remove the old one.
            if let Some(old) = inputs.pods.remove(slot) {
                calc.remove_workload_endpoint(&old.metadata.namespace, &old.metadata.name);
            }
            if *extra_profile {
                wep.spec.profiles.push("kns.z".into());
            }
            calc.upsert_workload_endpoint(&wep).unwrap();
            inputs.pods.insert(*slot, wep);
        }
        Op::RemovePod(slot) => {
            if let Some(old) = inputs.pods.remove(slot) {
                calc.remove_workload_endpoint(&old.metadata.namespace, &old.metadata.name);
            }
        }
        Op::Profile { ns, team, rules: r } => {
            let mut to_apply = labels(&[("pcns.team", ["blue", "red", "green"][*team])]);
            to_apply.insert("pcns.projectcalico.org/name".into(), NAMESPACES[*ns].into());
            let p = Profile::new(
                ObjectMeta::named(format!("kns.{}", NAMESPACES[*ns])),
                ProfileSpec {
                    ingress: rules(RULES[*r]),
                    egress: rules(RULES[*r]),
                    labels_to_apply: to_apply,
                },
            );
            calc.upsert_profile(&p).unwrap();
            inputs.profiles.insert(*ns, p);
        }
        Op::RemoveProfile(ns) => {
            calc.remove_profile(&format!("kns.{}", NAMESPACES[*ns]));
            inputs.profiles.remove(ns);
        }
        Op::Policy {
            slot,
            global,
            ns,
            selector,
            order,
            tier,
            ingress,
            egress,
        } => {
            let name = format!("pol{slot}");
            let sel = SELECTORS[*selector];
            let (id, selector) = if *global {
                (
                    PolicyId::global(&name),
                    global_policy_selector(sel, "", "").unwrap(),
                )
            } else {
                let ns = NAMESPACES[*ns];
                (
                    PolicyId::network(ns, &name),
                    network_policy_selector(sel, ns, "").unwrap(),
                )
            };
            let input = PolicyInput {
                id,
                tier: ["", "t1", "nowhere"][*tier].into(),
                order: order.map(|o| f64::from(o) * 10.0),
                selector,
                ingress: ingress.map(|r| rules(RULES[r])),
                egress: egress.map(|r| rules(RULES[r])),
            };
            if let Some(old) = inputs.policies.remove(slot) {
                calc.remove_policy(&old.id);
            }
            calc.upsert_policy(input.clone()).unwrap();
            inputs.policies.insert(*slot, input);
        }
        Op::RemovePolicy(slot) => {
            if let Some(old) = inputs.policies.remove(slot) {
                calc.remove_policy(&old.id);
            }
        }
        Op::NetSet {
            slot,
            ns,
            labels: l,
            ips,
        } => {
            let set = NetworkSetInput {
                namespace: ns.map(|n| NAMESPACES[n].to_string()).unwrap_or_default(),
                name: format!("set{slot}"),
                labels: labels(&pick(&LABELS, l)),
                nets: pick(&IPS, ips).iter().map(|s| s.to_string()).collect(),
            };
            if let Some(old) = inputs.netsets.remove(slot) {
                calc.remove_network_set(&old.namespace, &old.name);
            }
            calc.upsert_network_set(&set).unwrap();
            inputs.netsets.insert(*slot, set);
        }
        Op::RemoveNetSet(slot) => {
            if let Some(old) = inputs.netsets.remove(slot) {
                calc.remove_network_set(&old.namespace, &old.name);
            }
        }
        Op::Tier { order, pass } => {
            let t = TierInput {
                name: "t1".into(),
                order: order.map(|o| f64::from(o) * 1000.0),
                default_action: if *pass {
                    TierDefault::Pass
                } else {
                    TierDefault::Deny
                },
            };
            calc.upsert_tier(t.clone());
            inputs.tier = Some(t);
        }
        Op::RemoveTier => {
            calc.remove_tier("t1");
            inputs.tier = None;
        }
        Op::LogPrefix(alt) => {
            let s = Settings {
                log_prefix: if *alt {
                    "drop %p".into()
                } else {
                    "calico-packet".into()
                },
                ..Settings::default()
            };
            calc.set_settings(s.clone());
            inputs.settings = s;
        }
        Op::Flush => {}
    }
}

fn fresh(inputs: &Inputs, node: &str) -> State {
    let mut c = PolicyCalculator::new(node, inputs.settings.clone());
    if let Some(t) = &inputs.tier {
        c.upsert_tier(t.clone());
    }
    for p in inputs.policies.values() {
        c.upsert_policy(p.clone()).unwrap();
    }
    for p in inputs.profiles.values() {
        c.upsert_profile(p).unwrap();
    }
    for s in inputs.netsets.values() {
        c.upsert_network_set(s).unwrap();
    }
    for w in inputs.pods.values() {
        c.upsert_workload_endpoint(w).unwrap();
    }
    let state = c.state();
    let mut mirror = State::default();
    mirror.apply(&c.flush());
    assert_eq!(mirror, state, "a fresh calculation's first delta is its state");
    state
}

/// `state` as a node without IPv6 has it: the same, with empty IPv6 rule lists and no IPv6
/// sets.
fn without_ipv6(state: &State) -> State {
    let strip = |r: &FamilyRules| FamilyRules {
        v4: r.v4.clone(),
        v6: Vec::new(),
    };
    let mut s = state.clone();
    s.sets.retain(|k, _| k.family == IpFamily::V4);
    for p in s.policies.values_mut() {
        let mut q = (**p).clone();
        (q.ingress, q.egress) = (strip(&p.ingress), strip(&p.egress));
        *p = Arc::new(q);
    }
    for p in s.profiles.values_mut() {
        let mut q = (**p).clone();
        (q.ingress, q.egress) = (strip(&p.ingress), strip(&p.egress));
        *p = Arc::new(q);
    }
    s
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn incremental_equals_from_scratch(ops in prop::collection::vec(op(), 1..80)) {
        let node = "n1";
        let mut calc = PolicyCalculator::new(node, Settings::default());
        // The same changes on a node without IPv6.
        let mut calc4 = PolicyCalculator::with_ipv6(node, Settings::default(), false);
        let mut inputs = Inputs::default();
        let mut inputs4 = Inputs::default();
        let mut mirror = State::default();
        let mut mirror4 = State::default();
        for op in &ops {
            apply(&mut calc, &mut inputs, op);
            apply(&mut calc4, &mut inputs4, op);
            if matches!(op, Op::Flush) {
                mirror.apply(&calc.flush());
                mirror4.apply(&calc4.flush());
                prop_assert_eq!(&mirror, &calc.state(), "mirror after flush");
            }
        }
        mirror.apply(&calc.flush());
        mirror4.apply(&calc4.flush());
        let state = calc.state();
        prop_assert_eq!(&mirror, &state, "mirror at the end");
        prop_assert_eq!(&mirror4, &calc4.state(), "v4-only mirror at the end");
        prop_assert_eq!(mirror4, without_ipv6(&state), "v4-only = both families minus IPv6");
        prop_assert_eq!(state, fresh(&inputs, node), "incremental vs from scratch");
    }
}
