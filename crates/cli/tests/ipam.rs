//! `brindle ipam show|check|release|configure` run as a user runs them, against a store whose
//! addresses were handed out by the IPAM library as the agent (tunnel address) and the CNI
//! plugin (pods) do.

mod support;

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::sync::Arc;

use brindle_datastore::{Datastore, DatastoreConfig};
use brindle_ipam::{AutoAssignArgs, Ipam, TunnelKind, cidr};
use support::{Env, SEED_POOL};

const NODE: &str = "172.20.42.80";

fn node_yaml(name: &str, ip: &str) -> String {
    format!(
        "apiVersion: projectcalico.org/v3\nkind: Node\nmetadata:\n  name: {name}\nspec:\n  bgp:\n    ipv4Address: {ip}/22\n"
    )
}

fn wep_yaml(node: &str, pod: &str, ip: IpAddr) -> String {
    format!(
        "apiVersion: projectcalico.org/v3\nkind: WorkloadEndpoint\nmetadata:\n  name: {}-k8s-{pod}-eth0\n  namespace: default\nspec:\n  orchestrator: k8s\n  node: {node}\n  pod: {pod}\n  endpoint: eth0\n  interfaceName: cali{pod}\n  ipNetworks:\n  - {ip}/32\n",
        node.replace('-', "--")
    )
}

struct Cluster {
    env: Env,
    ipam: Ipam,
}

impl Cluster {
    /// The seed: pool 10.233.64.0/18 in /24 blocks, node 172.20.42.80 with its tunnel address.
    fn seed() -> Cluster {
        let env = Env::sqlite();
        env.run(&["apply", "-f", &env.write("pool.yaml", SEED_POOL)]).ok();
        env.run(&["apply", "-f", &env.write("node.yaml", &node_yaml(NODE, NODE))])
            .ok();
        let ds: Arc<dyn Datastore> =
            brindle_datastore::open(&DatastoreConfig::sqlite(env.dir.join("brindle.db"))).unwrap();
        let ipam = Ipam::new(ds);
        ipam.ensure_tunnel_address(NODE, TunnelKind::Ipip).unwrap();
        Cluster { env, ipam }
    }

    /// A pod as CNI ADD makes it: an address, then (unless `leak`) its WorkloadEndpoint.
    fn pod(&self, node: &str, pod: &str, leak: bool) -> IpAddr {
        let mut args = AutoAssignArgs::workload_v4(node, &format!("k8s-pod-network.{pod}"));
        args.attrs = BTreeMap::from([
            ("namespace".into(), "default".into()),
            ("node".into(), node.into()),
            ("pod".into(), pod.into()),
        ]);
        let ip = self.ipam.auto_assign(&args).unwrap().ipv4[0].addr();
        if !leak {
            let f = self.env.write(&format!("{pod}.yaml"), &wep_yaml(node, pod, ip));
            self.env.run(&["apply", "-f", &f]).ok();
        }
        ip
    }

    /// The node's block (its tunnel address is the block's `.0`).
    fn block(&self) -> ipnet::IpNet {
        let tun = self
            .ipam
            .addrs_by_handle(&format!("ipip-tunnel-addr-{NODE}"))
            .unwrap()[0];
        cidr::block_for(tun, 24)
    }
}

#[test]
fn ipam_show_is_calicoctls_table() {
    let c = Cluster::seed();
    let block = c.block();
    assert_eq!(
        cidr::addr_at(&block, 1),
        c.pod(NODE, "p1", false),
        "first pod gets .1"
    );
    let out = c.env.run(&["ipam", "show"]).ok().stdout;
    assert_eq!(
        out,
        "\
+----------+----------------+-----------+------------+--------------+
| GROUPING |      CIDR      | IPS TOTAL | IPS IN USE |   IPS FREE   |
+----------+----------------+-----------+------------+--------------+
| IP Pool  | 10.233.64.0/18 |     16384 | 2 (0%)     | 16382 (100%) |
+----------+----------------+-----------+------------+--------------+
"
    );
    let out = c.env.run(&["ipam", "show", "--show-blocks"]).ok().stdout;
    let row = format!(
        "| Block    | {:<14} |       256 | 2 (1%)     | 254 (99%)    |\n",
        block.to_string()
    );
    assert!(out.contains(&row), "{out}\nwanted {row}");
}

#[test]
fn ipam_show_ip_names_the_owner() {
    let c = Cluster::seed();
    let ip = c.pod(NODE, "p1", false);
    let out = c.env.run(&["ipam", "show", &format!("--ip={ip}")]).ok().stdout;
    assert_eq!(
        out,
        format!(
            "IP {ip} is in use\nHandle ID: k8s-pod-network.p1\nActive Owner Attributes:\n  namespace: default\n  node: {NODE}\n  pod: p1\n"
        )
    );
    let out = c.env.run(&["ipam", "show", "--ip", "10.233.64.200"]).ok().stdout;
    assert_eq!(out, "10.233.64.200 is not assigned\n");
    let err = c.env.run(&["ipam", "show", "--ip", "10.233.64"]).fails().stderr;
    assert!(err.contains("invalid IP address specified: 10.233.64"), "{err}");
}

#[test]
fn ipam_check_finds_a_leak_and_release_from_report_frees_it() {
    let c = Cluster::seed();
    c.pod(NODE, "p1", false);
    let leaked = c.pod(NODE, "crashed", true);
    let report = c.env.dir.join("report.json").display().to_string();
    let out = c
        .env
        .run(&["ipam", "check", "--show-problem-ips", "-o", &report])
        .ok()
        .stdout;
    assert!(
        out.starts_with(
            "Checking IPAM for inconsistencies...\n\nLoading all IPAM blocks...\nFound 1 IPAM blocks.\n"
        ),
        "{out}"
    );
    assert!(out.contains(&format!("  {leaked} leaked; attrs Main:k8s-pod-network.crashed Extra:namespace=default,node={NODE},pod=crashed\n")), "{out}");
    assert!(
        out.contains("Found 1 IPs that are allocated in IPAM but not actually in use.\n"),
        "{out}"
    );
    assert!(out.ends_with("Check complete; found 1 problems.\n"), "{out}");
    let json: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&report).unwrap()).unwrap();
    assert_eq!(json["allocations"][leaked.to_string()][0]["inUse"], false);
    assert_eq!(json["version"], format!("v{}", env!("CARGO_PKG_VERSION")));

    // The datastore is not locked: refused without --force, datastore untouched.
    let err = c
        .env
        .run(&["ipam", "release", &format!("--from-report={report}")])
        .fails()
        .stderr;
    assert!(
        err.contains("data store is not locked. Either lock the data store, or re-run with --force"),
        "{err}"
    );
    assert!(c.ipam.allocation(leaked).unwrap().is_some());

    let out = c
        .env
        .run(&["ipam", "release", &format!("--from-report={report}"), "--force"])
        .ok()
        .stdout;
    assert_eq!(
        out,
        "WARNING: Data store is not locked. Ignoring due to --force option\n\
         Releasing 1 old IPs...\n\
         Released 1 IPs successfully\n\
         Report didn't contain any handles to clean up.\n\
         You may now unlock the data store.\n"
    );
    assert!(c.ipam.allocation(leaked).unwrap().is_none());
    let out = c.env.run(&["ipam", "check"]).ok().stdout;
    assert!(out.ends_with("Check complete; found 0 problems.\n"), "{out}");
}

#[test]
fn ipam_release_ip() {
    let c = Cluster::seed();
    let ip = c.pod(NODE, "p1", true);
    let out = c
        .env
        .run(&["ipam", "release", "--ip", &ip.to_string()])
        .ok()
        .stdout;
    assert_eq!(out, format!("Successfully released IP address {ip}\n"));
    let err = c
        .env
        .run(&["ipam", "release", "--ip", &ip.to_string()])
        .fails()
        .stderr;
    assert_eq!(err, format!("IP address {ip} is not assigned\n"));
    let err = c.env.run(&["ipam", "release"]).fails().stderr;
    assert!(err.contains("give --ip=<IP> or --from-report=<REPORT>"), "{err}");
}

#[test]
fn ipam_configure_and_show_configuration() {
    let c = Cluster::seed();
    let out = c.env.run(&["ipam", "show", "--show-configuration"]).ok().stdout;
    assert_eq!(
        out,
        "\
+------------------------------+-----------+
|           PROPERTY           |   VALUE   |
+------------------------------+-----------+
| StrictAffinity               | false     |
| AutoAllocateBlocks           | true      |
| MaxBlocksPerHost             |         0 |
| KubeVirtVMAddressPersistence | \"Enabled\" |
+------------------------------+-----------+
"
    );
    let err = c
        .env
        .run(&["ipam", "configure", "--max-blocks-per-host=3"])
        .fails()
        .stderr;
    assert_eq!(
        err,
        "error: MaxBlocksPerHost requires StrictAffinity to be enabled\n"
    );
    let out = c
        .env
        .run(&[
            "ipam",
            "configure",
            "--strictaffinity=true",
            "--max-blocks-per-host=3",
        ])
        .ok()
        .stdout;
    assert_eq!(
        out,
        "Successfully set StrictAffinity to: true\nSuccessfully set MaxBlocksPerHost to: 3\n"
    );
    let cfg = c.ipam.config().unwrap();
    assert!(cfg.strict_affinity);
    assert_eq!(cfg.max_blocks_per_host, 3);
    let err = c
        .env
        .run(&["ipam", "configure", "--strictaffinity=maybe"])
        .fails()
        .stderr;
    assert_eq!(err, "invalid value. Use true or false to set strictaffinity\n");
    let err = c.env.run(&["ipam", "configure"]).fails().stderr;
    assert_eq!(err, "at least one configuration option must be specified\n");
}

#[test]
fn ipam_show_borrowed() {
    let env = Env::sqlite();
    let pool = "apiVersion: projectcalico.org/v3\nkind: IPPool\nmetadata:\n  name: tiny\nspec:\n  cidr: 10.9.0.0/30\n  blockSize: 30\n";
    env.run(&["apply", "-f", &env.write("pool.yaml", pool)]).ok();
    env.run(&[
        "apply",
        "-f",
        &env.write("n1.yaml", &node_yaml("node1", "172.20.42.81")),
    ])
    .ok();
    env.run(&[
        "apply",
        "-f",
        &env.write("n2.yaml", &node_yaml("node2", "172.20.42.82")),
    ])
    .ok();
    let ds = brindle_datastore::open(&DatastoreConfig::sqlite(env.dir.join("brindle.db"))).unwrap();
    let c = Cluster {
        env,
        ipam: Ipam::new(ds),
    };
    c.pod("node1", "a", false);
    let b = c.pod("node2", "b", false); // the only block is node1's: node2 borrows
    let out = c.env.run(&["ipam", "show", "--show-borrowed"]).ok().stdout;
    assert_eq!(
        out,
        format!(
            "\
+----------+----------------+-------------+-------------+------+--------------+
|    IP    | BORROWING-NODE |    BLOCK    | BLOCK OWNER | TYPE | ALLOCATED-TO |
+----------+----------------+-------------+-------------+------+--------------+
| {b} | node2          | 10.9.0.0/30 | node1       | pod  | default/b    |
+----------+----------------+-------------+-------------+------+--------------+
"
        )
    );
}

#[test]
fn deleting_a_node_releases_its_addresses_blocks_and_endpoints() {
    let c = Cluster::seed();
    let block = c.block();
    c.pod(NODE, "p1", false);
    let out = c.env.run(&["delete", "node", NODE]).ok().stdout;
    assert_eq!(out, "Successfully deleted 1 'Node' resource(s)\n");
    let show = c.env.run(&["ipam", "show", "--show-blocks"]).ok().stdout;
    assert!(
        show.contains("| IP Pool  | 10.233.64.0/18 |     16384 | 0 (0%)     | 16384 (100%) |"),
        "{show}"
    );
    assert!(
        !show.contains(&block.to_string()),
        "the node's block is gone: {show}"
    );
    let weps = c.env.run(&["get", "workloadendpoints", "-A"]).ok().stdout;
    assert_eq!(weps.lines().count(), 2, "header and blank line only: {weps}");
    let check = c.env.run(&["ipam", "check"]).ok().stdout;
    assert!(check.ends_with("Check complete; found 0 problems.\n"), "{check}");
}

#[test]
fn deleting_a_pool_releases_its_affinities() {
    let c = Cluster::seed();
    let block = c.block();
    c.pod(NODE, "p1", false);
    c.env.run(&["delete", "ippool", "default-pool"]).ok();
    let check = c.env.run(&["ipam", "check"]).ok().stdout;
    assert!(
        check.contains(&format!(" IPAM block {block} affinity=<none>:\n")),
        "the used block is orphaned, not deleted: {check}"
    );
    let show = c.env.run(&["ipam", "show", "--show-blocks"]).ok().stdout;
    assert!(!show.contains("IP Pool"), "{show}");
    assert!(show.contains(&format!("| Block    | {block} |")), "{show}");
}
