//! The policy calculation at the scale: 1000 policies × 10 rules, 1000 endpoints on five
//! nodes (200 on this one), 20 namespaces. Criterion times the full calculation (every resource
//! in, first flush out), one policy change, one label change and one new pod, each to its
//! flushed delta; then a report prints p50/p99 of single changes over many runs, the heap the
//! calculation holds (counting allocator) and the process RSS, next to the budgets of the
//! whole pipeline (datastore write → kernel: 0.20 s for the full set, p99 < 50 ms for one
//! change, agent RSS < 60 MiB).

use std::hint::black_box;
use std::time::{Duration, Instant};

use brindle_model::numorstring::{Port, Protocol};
use brindle_model::resources::{
    Action, EntityRule, GlobalNetworkPolicy, GlobalNetworkPolicySpec, IcmpFields, NetworkPolicy,
    NetworkPolicySpec, PolicyType, Profile, ProfileSpec, Rule, ServiceAccountMatch, WorkloadEndpoint,
    WorkloadEndpointPort, WorkloadEndpointSpec,
};
use brindle_model::{ObjectMeta, Resource};
use brindle_policy::PolicyCalculator;
use brindle_policy::ir::Settings;
use brindle_testkit::alloc::{Counting, live_bytes};
use criterion::{BatchSize, Criterion};

#[global_allocator]
static A: Counting = Counting;

const LOCAL: &str = "node-0";
const ENDPOINTS: usize = 1000;
const NODES: usize = 5;
const NAMESPACES: usize = 20;
const APPS: usize = 50;
const POLICIES: usize = 1000;

fn ns(i: usize) -> String {
    format!("ns-{}", i % NAMESPACES)
}

/// Endpoint `i`: the first 200 are on this node and cover every (namespace, app) pair the
/// policies select, so all 1000 policies are active here.
fn endpoint(i: usize, app: usize) -> WorkloadEndpoint {
    let node = format!("node-{}", (i / (ENDPOINTS / NODES)) % NODES);
    let pod = format!("pod-{i}");
    let mut meta = ObjectMeta::namespaced(ns(i), WorkloadEndpoint::name_for(&node, "k8s", &pod, "eth0"));
    meta.labels = [
        ("app", format!("app-{app}")),
        ("tier", ["fe", "be", "db"][i % 3].to_string()),
        ("version", format!("v{}", i % 4)),
        (
            "pod-template-hash",
            format!("{:08x}", i * 2_654_435_761 % 0xffff_ffff),
        ),
        ("projectcalico.org/namespace", ns(i)),
        ("projectcalico.org/orchestrator", "k8s".to_string()),
        ("projectcalico.org/serviceaccount", format!("sa-{}", i % 10)),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect();
    let port = |name: &str, proto: &str, port: u16| WorkloadEndpointPort {
        name: name.into(),
        protocol: Protocol::Str(proto.into()),
        port,
        host_port: 0,
        host_ip: String::new(),
    };
    WorkloadEndpoint::new(
        meta,
        WorkloadEndpointSpec {
            orchestrator: "k8s".into(),
            node,
            pod,
            endpoint: "eth0".into(),
            ip_networks: vec![
                format!("10.{}.{}.{}/32", 64 + i / 65536, (i / 256) % 256, i % 256),
                format!("fd00:10::{i:x}/128"),
            ],
            profiles: vec![format!("kns.{}", ns(i)), format!("ksa.{}.sa-{}", ns(i), i % 10)],
            interface_name: format!("cali{i:011x}"),
            ports: vec![
                port("http", "TCP", 8080),
                port("metrics", "TCP", 9090),
                port("dns", "UDP", 53),
            ],
            service_account_name: format!("sa-{}", i % 10),
            ..WorkloadEndpointSpec::default()
        },
    )
}

fn profiles() -> Vec<Profile> {
    let mut out = Vec::new();
    for n in 0..NAMESPACES {
        let name = format!("ns-{n}");
        out.push(Profile::new(
            ObjectMeta::named(format!("kns.{name}")),
            ProfileSpec {
                ingress: vec![Rule::action(Action::Allow)],
                egress: vec![Rule::action(Action::Allow)],
                labels_to_apply: [
                    ("pcns.projectcalico.org/name".to_string(), name.clone()),
                    ("pcns.kubernetes.io/metadata.name".to_string(), name.clone()),
                    ("pcns.team".to_string(), format!("team-{}", n % 5)),
                ]
                .into(),
            },
        ));
        for sa in 0..10 {
            out.push(Profile::new(
                ObjectMeta::named(format!("ksa.{name}.sa-{sa}")),
                ProfileSpec {
                    labels_to_apply: [("pcsa.projectcalico.org/name".to_string(), format!("sa-{sa}"))].into(),
                    ..ProfileSpec::default()
                },
            ));
        }
    }
    out
}

fn rule(action: Action, protocol: Option<&str>, source: EntityRule, destination: EntityRule) -> Rule {
    Rule {
        protocol: protocol.map(|p| Protocol::Str(p.into())),
        source,
        destination,
        ..Rule::action(action)
    }
}

fn sel(s: String) -> EntityRule {
    EntityRule {
        selector: s,
        ..EntityRule::default()
    }
}

/// Ten rules of the kinds real policies use; `variant` changes one port (for the change
/// benchmark).
fn rules(j: usize, variant: u16) -> (Vec<Rule>, Vec<Rule>) {
    let ports = |ps: &[&str]| ps.iter().map(|p| p.parse::<Port>().unwrap()).collect::<Vec<_>>();
    let dst_ports = |ps: &[&str]| EntityRule {
        ports: ports(ps),
        ..EntityRule::default()
    };
    let ingress = vec![
        rule(
            Action::Allow,
            Some("TCP"),
            sel(format!(
                "app == 'app-{}' && version == 'v{}'",
                (j * 7 + 1) % APPS,
                j % 4
            )),
            dst_ports(&["8080", &(8000 + variant).to_string()]),
        ),
        rule(
            Action::Allow,
            Some("TCP"),
            EntityRule {
                namespace_selector: format!("team == 'team-{}'", j % 5),
                selector: "tier == 'fe'".into(),
                ..EntityRule::default()
            },
            dst_ports(&["http"]),
        ),
        rule(
            Action::Allow,
            Some("UDP"),
            EntityRule::default(),
            dst_ports(&["dns"]),
        ),
        rule(
            Action::Deny,
            None,
            EntityRule {
                nets: vec![format!("192.168.{}.0/24", j % 256)],
                ..EntityRule::default()
            },
            EntityRule::default(),
        ),
        rule(
            Action::Allow,
            Some("TCP"),
            EntityRule {
                nets: vec![format!("10.{}.0.0/16", 64 + j % 4)],
                not_nets: vec![format!("10.{}.{}.0/24", 64 + j % 4, j % 250)],
                ..EntityRule::default()
            },
            dst_ports(&["9000:9100"]),
        ),
        Rule {
            icmp: Some(IcmpFields {
                icmp_type: Some(8),
                code: None,
            }),
            ..rule(
                Action::Allow,
                Some("ICMP"),
                EntityRule::default(),
                EntityRule::default(),
            )
        },
    ];
    let egress = vec![
        rule(Action::Log, None, EntityRule::default(), EntityRule::default()),
        rule(
            Action::Allow,
            Some("TCP"),
            EntityRule::default(),
            EntityRule {
                selector: format!("version == 'v{}'", j % 4),
                ports: ports(&["metrics"]),
                ..EntityRule::default()
            },
        ),
        rule(
            Action::Allow,
            None,
            EntityRule::default(),
            EntityRule {
                service_accounts: Some(Box::new(ServiceAccountMatch {
                    names: vec![format!("sa-{}", j % 10)],
                    selector: String::new(),
                })),
                ..EntityRule::default()
            },
        ),
        rule(
            Action::Deny,
            Some("TCP"),
            EntityRule::default(),
            EntityRule {
                not_ports: ports(&["22"]),
                nets: vec!["0.0.0.0/0".into(), "::/0".into()],
                ..EntityRule::default()
            },
        ),
    ];
    (ingress, egress)
}

/// Policy `j`: four in five namespaced, one in five global.
fn policy(j: usize, variant: u16) -> Resource {
    let (ingress, egress) = rules(j, variant);
    let order = (!j.is_multiple_of(3)).then_some((j % 100) as f64);
    let types = vec![PolicyType::Ingress, PolicyType::Egress];
    if j.is_multiple_of(5) {
        Resource::GlobalNetworkPolicy(GlobalNetworkPolicy::new(
            ObjectMeta::named(format!("gnp-{j}")),
            GlobalNetworkPolicySpec {
                order,
                selector: format!(
                    "tier == '{}' && version == 'v{}'",
                    ["fe", "be", "db"][j % 3],
                    j % 4
                ),
                types,
                ingress,
                egress,
                ..GlobalNetworkPolicySpec::default()
            },
        ))
    } else {
        Resource::NetworkPolicy(NetworkPolicy::new(
            ObjectMeta::namespaced(ns(j), format!("np-{j}")),
            NetworkPolicySpec {
                order,
                selector: format!("app == 'app-{}'", j % APPS),
                types,
                ingress,
                egress,
                ..NetworkPolicySpec::default()
            },
        ))
    }
}

fn resources() -> Vec<Resource> {
    let mut out: Vec<Resource> = profiles().into_iter().map(Resource::Profile).collect();
    out.extend((0..POLICIES).map(|j| policy(j, 0)));
    out.extend((0..ENDPOINTS).map(|i| Resource::WorkloadEndpoint(endpoint(i, i % APPS))));
    out
}

fn full(resources: &[Resource]) -> PolicyCalculator {
    let mut c = PolicyCalculator::new(LOCAL, Settings::default());
    for r in resources {
        c.upsert_resource(r).unwrap();
    }
    black_box(c.flush());
    c
}

/// One change as the agent would make it: apply, flush.
fn change(c: &mut PolicyCalculator, r: &Resource) {
    c.upsert_resource(r).unwrap();
    black_box(c.flush());
}

/// CPU time this thread has run, from the scheduler (`/proc/thread-self/schedstat`, ns): on
/// a shared machine wall time also counts other people's work.
fn cpu_time() -> Duration {
    let s = std::fs::read_to_string("/proc/thread-self/schedstat").unwrap_or_default();
    Duration::from_nanos(
        s.split_whitespace()
            .next()
            .and_then(|n| n.parse().ok())
            .unwrap_or(0),
    )
}

fn percentile(mut v: Vec<Duration>, p: f64) -> Duration {
    v.sort();
    v[((v.len() as f64 - 1.0) * p).round() as usize]
}

/// The `i`th change of one kind.
type MakeChange = Box<dyn Fn(usize) -> Resource>;

fn report(resources: &[Resource]) {
    let rss = || brindle_testkit::process::rss_kib(std::process::id());
    let (heap0, rss0) = (live_bytes(), rss());
    let (t, cpu0) = (Instant::now(), cpu_time());
    let mut c = full(resources);
    let (full_time, full_cpu) = (t.elapsed(), cpu_time() - cpu0);
    let heap = live_bytes() - heap0;
    let rss1 = rss();
    // Heap by input kind: profiles, then policies (not yet active), then endpoints.
    let mut phases = PolicyCalculator::new(LOCAL, Settings::default());
    let mut last = live_bytes();
    let mut phase_heap = Vec::new();
    for (name, range) in [
        ("profiles", 0..resources.len() - POLICIES - ENDPOINTS),
        (
            "policies",
            resources.len() - POLICIES - ENDPOINTS..resources.len() - ENDPOINTS,
        ),
        (
            "endpoints (policies activate)",
            resources.len() - ENDPOINTS..resources.len(),
        ),
    ] {
        for r in &resources[range] {
            phases.upsert_resource(r).unwrap();
        }
        if name.starts_with("endpoints") {
            black_box(phases.flush());
        }
        let now = live_bytes();
        phase_heap.push(format!("{name} {:.1} MiB", (now - last) as f64 / 1048576.0));
        last = now;
    }
    drop(phases);
    let s = c.stats();
    let st = c.state();
    let rules: usize = st
        .policies
        .values()
        .map(|p| p.ingress.v4.len() + p.ingress.v6.len() + p.egress.v4.len() + p.egress.v6.len())
        .sum();
    println!("\n== policy calculation at scale ==");
    println!(
        "inputs: {} policies x 10 rules, {} endpoints ({} local), {} profiles",
        POLICIES,
        ENDPOINTS,
        s.local_endpoints,
        resources.len() - POLICIES - ENDPOINTS
    );
    println!(
        "output: {} active policies ({} IR rules over both families), {} profiles, {} set ids ({} dataplane sets, {} members)",
        s.active_policies,
        rules,
        s.active_profiles,
        s.sets,
        st.sets.len(),
        s.members
    );
    let pct = |d: Duration, budget: f64| 100.0 * d.as_secs_f64() / budget;
    println!(
        "full calculation: {:.1} ms wall, {:.1} ms CPU = {:.1}% of the pipeline's 0.20 s budget",
        full_time.as_secs_f64() * 1e3,
        full_cpu.as_secs_f64() * 1e3,
        pct(full_cpu, 0.20)
    );
    let cases: [(&str, MakeChange); 3] = [
        ("one policy change", Box::new(|i| policy(7, 1 + (i % 2) as u16))),
        (
            "one label change (local pod)",
            Box::new(|i| Resource::WorkloadEndpoint(endpoint(5, if i % 2 == 0 { 7 } else { 5 }))),
        ),
        (
            "one new pod (local)",
            Box::new(|i| Resource::WorkloadEndpoint(endpoint(ENDPOINTS + 5 * i, i % APPS))),
        ),
    ];
    for (name, make) in cases {
        let times: Vec<Duration> = (0..1000)
            .map(|i| {
                let r = make(i);
                let t = Instant::now();
                change(&mut c, &r);
                t.elapsed()
            })
            .collect();
        let (p50, p99) = (percentile(times.clone(), 0.5), percentile(times, 0.99));
        println!(
            "{name}: p50 {:.3} ms, p99 {:.3} ms = {:.2}% of the 50 ms budget",
            p50.as_secs_f64() * 1e3,
            p99.as_secs_f64() * 1e3,
            pct(p99, 0.050)
        );
    }
    println!("heap by phase: {}", phase_heap.join(", "));
    // A node without IPv6 calculates IPv4 rule lists only.
    let before_v4 = live_bytes();
    let mut v4 = PolicyCalculator::with_ipv6(LOCAL, Settings::default(), false);
    for r in resources {
        v4.upsert_resource(r).unwrap();
    }
    black_box(v4.flush());
    let heap_v4 = live_bytes() - before_v4;
    drop(v4);
    println!(
        "memory: calculation heap {:.1} MiB ({:.1} MiB on a node without IPv6); process RSS {:.1} MiB -> {:.1} MiB (+{:.1} MiB; agent budget 60 MiB)",
        heap as f64 / 1048576.0,
        heap_v4 as f64 / 1048576.0,
        rss0 as f64 / 1024.0,
        rss1 as f64 / 1024.0,
        (rss1.saturating_sub(rss0)) as f64 / 1024.0
    );
    drop(c);
}

fn main() {
    let resources = resources();
    // First, while the process is small, so the RSS growth is the calculation's.
    report(&resources);
    let mut crit = Criterion::default().sample_size(10).configure_from_args();
    crit.bench_function(
        "full calculation (1000 policies x 10 rules, 200/1000 endpoints)",
        |b| b.iter(|| full(&resources)),
    );
    let mut c = full(&resources);
    let mut n = 0u16;
    crit.bench_function("one policy change", |b| {
        b.iter_batched(
            || {
                n = n.wrapping_add(1);
                policy(7, 1 + n % 2)
            },
            |r| change(&mut c, &r),
            BatchSize::SmallInput,
        )
    });
    let mut flip = false;
    crit.bench_function("one label change", |b| {
        b.iter_batched(
            || {
                flip = !flip;
                Resource::WorkloadEndpoint(endpoint(5, if flip { 7 } else { 5 }))
            },
            |r| change(&mut c, &r),
            BatchSize::SmallInput,
        )
    });
    drop(c);
    crit.final_summary();
}
