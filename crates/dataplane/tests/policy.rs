//! Workload policy enforced by Brindle's tables, with real traffic between pods in network
//! namespaces: each node's policy calculation drives its PolicyDataplane, and TCP connects
//! between pods must match what the calculation's evaluator expects.

mod common;

use brindle_dataplane::EncapMode;
use common::Modes;
use common::policy::{PolicyCluster, network_policy};

const NONE: Modes = Modes {
    ipip: EncapMode::Never,
    vxlan: EncapMode::Never,
};
const VXLAN: Modes = Modes {
    ipip: EncapMode::Never,
    vxlan: EncapMode::Always,
};
const IPIP: Modes = Modes {
    ipip: EncapMode::Always,
    vxlan: EncapMode::Never,
};

#[test]
fn pod_to_pod_across_nodes_is_filtered_in_every_encapsulation() {
    for (mode, modes) in [("none", NONE), ("vxlan", VXLAN), ("ipip", IPIP)] {
        let mut pc = PolicyCluster::new(
            2,
            modes,
            &[
                (0, "x", "a", &[("app", "a")]),
                (1, "x", "b", &[("app", "b")]),
                (1, "y", "c", &[("app", "c")]),
            ],
        );
        let all = [
            "x/a->x/b", "x/a->y/c", "x/b->x/a", "x/b->y/c", "y/c->x/a", "y/c->x/b",
        ];
        assert_eq!(pc.matrix(80), all, "{mode}: profiles allow everything");
        // x/b: ingress only from app=a (same namespace), TCP 80.
        pc.add_policy(&network_policy(
            "x",
            "b-from-a",
            "app == 'b'",
            Some("- action: Allow\n  protocol: TCP\n  source:\n    selector: app == 'a'\n  destination:\n    ports: [80]\n"),
            None,
        ));
        let (m80, m81) = (pc.matrix(80), pc.matrix(81));
        assert_eq!(m80, pc.expected(80), "{mode}: port 80");
        assert_eq!(m81, pc.expected(81), "{mode}: port 81");
        assert!(m80.contains(&"x/a->x/b".to_string()), "{mode}: {m80:?}");
        assert!(!m80.contains(&"y/c->x/b".to_string()), "{mode}: {m80:?}");
        assert!(!m81.contains(&"x/a->x/b".to_string()), "{mode}: {m81:?}");
        eprintln!("{mode}: port 80 {m80:?}, port 81 {m81:?}");
    }
}
