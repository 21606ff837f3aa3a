//! BGPFilter validation: Calico's rules and messages for each rule (the CRD's validation rules
//! and `libcalico-go/lib/validator/v3/validator.go`'s field validators).

use super::Checker;
use super::bgp::interface_pattern_ok;
use crate::resources::{BGPFilterRule, BGPFilterSpec};

pub(super) fn check(c: &mut Checker, s: &BGPFilterSpec) {
    for (list, rules, v6) in [
        ("ExportV4", &s.export_v4, false),
        ("ImportV4", &s.import_v4, false),
        ("ExportV6", &s.export_v6, true),
        ("ImportV6", &s.import_v6, true),
    ] {
        for r in rules {
            check_rule(c, list, r, v6);
        }
    }
}

fn check_rule(c: &mut Checker, list: &str, r: &BGPFilterRule, v6: bool) {
    let path = |f: &str| format!("Spec.{list}.{f}");
    let (family, max_len) = if v6 { ("IPv6", 128) } else { ("IPv4", 32) };
    if !r.cidr.is_empty() {
        // `netv4` / `netv6`: a network of the rule's family with no host bits (an address alone
        // is a full-length network).
        let ok = match r.cidr.parse::<ipnet::IpNet>() {
            Ok(n) => n.addr().is_ipv6() == v6 && n.trunc() == n,
            Err(_) => r
                .cidr
                .parse::<std::net::IpAddr>()
                .is_ok_and(|a| a.is_ipv6() == v6),
        };
        if !ok {
            c.bad(
                &path("CIDR"),
                &r.cidr,
                format!("must be a valid {family} network in CIDR notation, with no host bits set"),
            );
        }
    }
    if r.cidr.is_empty() != r.match_operator.is_none() {
        c.missing(
            &path("CIDR"),
            "cidr and matchOperator must both be set or both be empty",
        );
    }
    if let Some(pl) = r.prefix_length {
        if r.cidr.is_empty() {
            c.missing(&path("PrefixLength"), "cidr is required when prefixLength is set");
        }
        for (f, v) in [("Min", pl.min), ("Max", pl.max)] {
            if let Some(v) = v
                && !(0..=max_len).contains(&v)
            {
                c.bad(
                    &path(&format!("PrefixLength.{f}")),
                    v,
                    format!("must be between 0 and {max_len}"),
                );
            }
        }
    }
    if !r.interface.is_empty() && !interface_pattern_ok(&r.interface) {
        c.bad(
            &path("Interface"),
            &r.interface,
            "invalid interface name pattern: 1 to 15 of a-z A-Z 0-9 _ . - and the wildcard *",
        );
    }
    if r.action.is_none() {
        c.missing(&path("Action"), "action must be Accept or Reject");
    }
}

#[cfg(test)]
mod tests {
    use crate::load_str;
    use crate::validate::validate;

    fn errors(yaml: &str) -> String {
        let r = load_str("test", yaml).unwrap();
        match validate(&r[0]) {
            Ok(()) => String::new(),
            Err(e) => e.to_string(),
        }
    }

    fn filter(rules: &str) -> String {
        format!("apiVersion: projectcalico.org/v3\nkind: BGPFilter\nmetadata:\n  name: f\nspec:\n{rules}")
    }

    #[test]
    fn valid_rules_pass() {
        let y = filter(
            "  exportV4:
  - action: Accept
    matchOperator: In
    cidr: 77.0.0.0/16
  - action: Reject
    source: RemotePeers
    interface: '*.calico'
  importV6:
  - action: Reject
    matchOperator: NotIn
    cidr: fd00::/8
    prefixLength: {min: 48, max: 64}
  - action: Accept
",
        );
        assert_eq!(errors(&y), "");
    }

    #[test]
    fn calico_messages() {
        let cases = [
            (
                "  exportV4:\n  - {action: Accept, cidr: 10.0.0.0/24}\n",
                "cidr and matchOperator must both be set or both be empty",
            ),
            (
                "  exportV4:\n  - {action: Accept, matchOperator: Equal}\n",
                "cidr and matchOperator must both be set or both be empty",
            ),
            (
                "  importV4:\n  - {action: Reject, interface: ethx., prefixLength: {min: 16}}\n",
                "cidr is required when prefixLength is set",
            ),
            (
                "  importV4:\n  - {action: Reject, cidr: ffee::/64, matchOperator: In}\n",
                "BGPFilter.Spec.ImportV4.CIDR = 'ffee::/64' (must be a valid IPv4 network",
            ),
            (
                "  importV6:\n  - {action: Reject, cidr: 10.0.10.0/32, matchOperator: In}\n",
                "must be a valid IPv6 network",
            ),
            (
                "  exportV4:\n  - {action: Reject, cidr: 10.0.10.1/24, matchOperator: In}\n",
                "with no host bits set",
            ),
            (
                "  exportV4:\n  - {action: Reject, cidr: 10.0.10.0/24, matchOperator: In, prefixLength: {max: 64}}\n",
                "BGPFilter.Spec.ExportV4.PrefixLength.Max = '64' (must be between 0 and 32)",
            ),
            (
                "  exportV6:\n  - {action: Reject, cidr: 'ffff::/128', matchOperator: In, prefixLength: {min: -16}}\n",
                "must be between 0 and 128",
            ),
            (
                "  exportV4:\n  - {action: Reject, interface: 'eth&'}\n",
                "invalid interface name pattern",
            ),
            (
                "  exportV4:\n  - {cidr: 10.0.10.0/32, matchOperator: NotEqual}\n",
                "BGPFilter.Spec.ExportV4.Action (action must be Accept or Reject)",
            ),
        ];
        for (rules, want) in cases {
            let got = errors(&filter(rules));
            assert!(got.contains(want), "{rules}: {got:?} lacks {want:?}");
        }
    }

    #[test]
    fn unknown_operator_or_source_does_not_load() {
        for rules in [
            "  exportV4:\n  - {action: Accept, cidr: 10.0.0.0/8, matchOperator: fancyOperator}\n",
            "  exportV4:\n  - {action: Reject, source: xyz}\n",
            "  exportV4:\n  - {action: ActionX}\n",
            "  exportV4:\n  - {action: Accept, peerType: eBGP}\n",
        ] {
            assert!(load_str("test", &filter(rules)).is_err(), "{rules}");
        }
    }
}
