//! BGPFilter against a real peer: BIRD 2 (eBGP, one session per family) and the speaker
//! process (`brindle-bgp-testd --bgpfilter`), with import and export rules of both families
//! accepting and rejecting prefixes by each match operator, prefix length, source and
//! interface; then other filters applied live (`filters` on the control socket): routes move
//! in and out both ways while both sessions stay up.

mod common;

use std::collections::BTreeSet;
use std::time::Duration;

use brindle_testkit::TempDir;
use common::daemons::{Bird, ME, THEM};
use common::testd::Testd;
use common::*;

const T: Duration = Duration::from_secs(30);

const FILTERS: &str = "apiVersion: projectcalico.org/v3
kind: BGPFilter
metadata:
  name: import-edge
spec:
  importV4:
  - {action: Reject, matchOperator: Equal, cidr: 10.233.88.0/24}
  - {action: Accept, matchOperator: In, cidr: 10.233.0.0/16, prefixLength: {max: 24}}
  - {action: Reject, matchOperator: NotIn, cidr: 10.0.0.0/8}
  importV6:
  - {action: Reject, matchOperator: In, cidr: 'fd00:88::/32'}
  - {action: Reject, source: RemotePeers, interface: 'eth*', matchOperator: In, cidr: '2001:db8::/32'}
---
apiVersion: projectcalico.org/v3
kind: BGPFilter
metadata:
  name: export-edge
spec:
  exportV4:
  - {action: Reject, matchOperator: Equal, cidr: 10.233.95.0/24}
  - {action: Accept, matchOperator: In, cidr: 10.233.96.0/24}
  exportV6:
  - {action: Reject, matchOperator: NotEqual, cidr: 'fd00:94::/122'}
---
apiVersion: projectcalico.org/v3
kind: BGPFilter
metadata:
  name: import-v2
spec:
  importV4:
  - {action: Reject, matchOperator: In, cidr: 10.233.87.0/24}
---
apiVersion: projectcalico.org/v3
kind: BGPFilter
metadata:
  name: export-v2
spec:
  exportV4:
  - {action: Reject, matchOperator: Equal, cidr: 10.233.94.0/24}
";

fn bird_conf() -> String {
    format!(
        "router id {THEM};
protocol device {{ scan time 10; }}
protocol direct {{ ipv4; ipv6; interface \"eth0\"; }}
protocol static own4 {{ ipv4;
  route 10.233.87.0/24 blackhole; route 10.233.88.0/24 blackhole;
  route 10.233.89.0/26 blackhole; route 192.0.2.0/24 blackhole; }}
protocol static own6 {{ ipv6;
  route fd00:87::/122 blackhole; route fd00:88::/64 blackhole; route 2001:db8::/48 blackhole; }}
protocol bgp Global_172_20_42_80 {{
  local {THEM} as 65001; neighbor {ME} as 64512;
  connect delay time 1; connect retry time 1; error wait time 1, 5; hold time 9;
  ipv4 {{ import all; export where proto = \"own4\"; }};
}}
protocol bgp Global_fd80_42__80 {{
  local fd80:42::81 as 65001; neighbor fd80:42::80 as 64512;
  connect delay time 1; connect retry time 1; error wait time 1, 5; hold time 9;
  ipv6 {{ import all; export where proto = \"own6\"; }};
}}
"
    )
}

/// The prefixes BIRD holds from `protocol`.
fn bird_has(bird: &Bird, protocol: &str) -> BTreeSet<String> {
    bird.birdc(&format!("show route protocol {protocol}"))
        .lines()
        .filter_map(|l| l.split_whitespace().next())
        .filter(|w| w.contains('/'))
        .map(str::to_string)
        .collect()
}

/// The prefixes the speaker learned.
fn learned(testd: &Testd) -> BTreeSet<String> {
    testd
        .ctl("routes")
        .lines()
        .filter_map(|l| l.split_whitespace().next())
        .map(str::to_string)
        .collect()
}

fn set(list: &[&str]) -> BTreeSet<String> {
    list.iter().map(|s| s.to_string()).collect()
}

#[test]
fn bgpfilter_with_bird2_both_directions_both_families_live() {
    let fab = Fabric::new(2);
    let dir = TempDir::new("bgpfilter");
    let file = dir.join("filters.yaml");
    std::fs::write(&file, FILTERS).unwrap();
    let file = file.to_str().unwrap().to_string();
    let bird = Bird::with_config(&fab.nodes[1], &bird_conf());
    let filters = "filters=import-edge+export-edge";
    let p4 = format!("{THEM},as=65001,hold=9,fast,{filters}");
    let p6 = format!("fd80:42::81,as=65001,hold=9,fast,{filters}");
    let mut args = vec![
        "--router-id",
        ME,
        "--as",
        "64512",
        "--node-v6",
        "fd80:42::80",
        "--listen",
        "0.0.0.0:179",
        "--listen",
        "[::]:179",
        "--bgpfilter",
        &file,
        "--peer",
        &p4,
        "--peer",
        &p6,
    ];
    for p in [
        "10.233.94.0/24",
        "10.233.95.0/24",
        "10.233.96.0/24",
        "fd00:94::/122",
        "fd00:95::/122",
    ] {
        args.extend(["--originate", p]);
    }
    let testd = Testd::start(&fab.nodes[0], &args);
    let dump = || {
        format!(
            "{}\n{}\n{}",
            testd.dump(),
            bird.birdc("show protocols all"),
            bird.birdc("show route")
        )
    };
    let up = || {
        let st = testd.ctl("status");
        st.lines().filter(|l| l.contains(" up Established ")).count() == 2
    };
    wait_for("both sessions Established", T, up, dump);

    // Import: 87 by `In` with max length 24; 88 rejected by `Equal`; the /26 matches no rule
    // (too long for the second, inside 10/8 for the third) and is accepted by default;
    // 192.0.2.0/24 rejected by `NotIn`. IPv6: fd00:88::/64 rejected by `In`, 2001:db8::/48
    // by source + interface + cidr; fd00:87 accepted by default.
    let want_in = set(&["10.233.87.0/24", "10.233.89.0/26", "fd00:87::/122"]);
    wait_for("filtered imports", T, || learned(&testd) == want_in, dump);
    let status = testd.ctl("status");
    // name state bgp-state imported stale info
    for line in status.lines() {
        let f: Vec<&str> = line.split_whitespace().collect();
        let want = if f[0] == "Global_172_20_42_81" { "2" } else { "1" };
        assert_eq!(f[3], want, "{status}");
    }
    // Export: .94 by Calico's rules, .95 rejected by `Equal`, .96 accepted; fd00:95 rejected
    // by `NotEqual`, fd00:94 by Calico's rules.
    wait_for(
        "filtered exports (IPv4)",
        T,
        || bird_has(&bird, "Global_172_20_42_80") == set(&["10.233.94.0/24", "10.233.96.0/24"]),
        dump,
    );
    wait_for(
        "filtered exports (IPv6)",
        T,
        || bird_has(&bird, "Global_fd80_42__80") == set(&["fd00:94::/122"]),
        dump,
    );
    let since = bird.birdc("show protocols");

    // Other filters, live: import rejects only 87 now, export only .94.
    for peer in [THEM, "fd80:42::81"] {
        let r = testd.ctl(&format!("filters {peer} import-v2 export-v2"));
        assert_eq!(r.trim(), "ok", "{r}");
    }
    let want_in = set(&[
        "10.233.88.0/24",
        "10.233.89.0/26",
        "192.0.2.0/24",
        "2001:db8::/48",
        "fd00:87::/122",
        "fd00:88::/64",
    ]);
    wait_for(
        "imports re-filtered without the peer",
        T,
        || learned(&testd) == want_in,
        dump,
    );
    wait_for(
        "exports re-filtered (IPv4)",
        T,
        || bird_has(&bird, "Global_172_20_42_80") == set(&["10.233.95.0/24", "10.233.96.0/24"]),
        dump,
    );
    wait_for(
        "exports re-filtered (IPv6)",
        T,
        || bird_has(&bird, "Global_fd80_42__80") == set(&["fd00:94::/122", "fd00:95::/122"]),
        dump,
    );
    // No session was reset: BIRD's protocol lines (state and since) are unchanged, and the
    // speaker established each session once.
    assert_eq!(bird.birdc("show protocols"), since);
    assert_eq!(
        testd.log().matches("bgp session established").count(),
        2,
        "{}",
        testd.log()
    );
}
