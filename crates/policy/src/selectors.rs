//! Selector rewriting per policy kind, as Calico's syncer does before Felix sees a policy
//! (`libcalico-go/lib/backend/syncersv1/updateprocessors`: `selectors.go`,
//! `networkpolicyprocessor.go`, `globalnetworkpolicyprocessor.go`, `rules.go`), and the
//! combination of a rule side's positive and negated selectors (`felix/calc/rule_scanner.go`
//! `combineMatchesIfPossible`).
//!
//! The rewriting is textual where Calico's is (the `all()` → `has(…)` replacements run over the
//! whole text), so the canonical strings, and with them the set ids, are Calico's.

use std::collections::BTreeSet;

use brindle_model::SelectorError;
use brindle_model::resources::{EntityRule, ServiceAccountMatch};
use brindle_model::selector::{Expr, Selector};

/// The label Calico puts on namespaced endpoints and network sets.
pub const LABEL_NAMESPACE: &str = "projectcalico.org/namespace";
/// The label Calico puts on Kubernetes workload endpoints: the service account's name.
pub const LABEL_SERVICE_ACCOUNT: &str = "projectcalico.org/serviceaccount";
/// The label Calico puts on workload endpoints: the orchestrator.
pub const LABEL_ORCHESTRATOR: &str = "projectcalico.org/orchestrator";
/// Prefix of namespace labels inherited through `kns.<namespace>` profiles.
pub const NAMESPACE_LABEL_PREFIX: &str = "pcns.";
/// Prefix of service-account labels inherited through `ksa.<namespace>.<sa>` profiles.
pub const SERVICE_ACCOUNT_LABEL_PREFIX: &str = "pcsa.";

fn prefix_expr(e: &Expr, prefix: &str) -> Expr {
    let p = |k: &str| format!("{prefix}{k}");
    match e {
        Expr::All => Expr::All,
        Expr::Global => Expr::Global,
        Expr::Has(k) => Expr::Has(p(k)),
        Expr::Eq(k, v) => Expr::Eq(p(k), v.clone()),
        Expr::Ne(k, v) => Expr::Ne(p(k), v.clone()),
        Expr::Contains(k, v) => Expr::Contains(p(k), v.clone()),
        Expr::StartsWith(k, v) => Expr::StartsWith(p(k), v.clone()),
        Expr::EndsWith(k, v) => Expr::EndsWith(p(k), v.clone()),
        Expr::In(k, vs) => Expr::In(p(k), vs.clone()),
        Expr::NotIn(k, vs) => Expr::NotIn(p(k), vs.clone()),
        Expr::Not(inner) => Expr::Not(Box::new(prefix_expr(inner, prefix))),
        Expr::And(es) => Expr::And(es.iter().map(|e| prefix_expr(e, prefix)).collect()),
        Expr::Or(es) => Expr::Or(es.iter().map(|e| prefix_expr(e, prefix)).collect()),
    }
}

/// `parseSelectorAttachPrefix`: every label of the selector gets `prefix`; the canonical text.
pub fn attach_prefix(selector: &str, prefix: &str) -> Result<String, SelectorError> {
    let parsed = Selector::parse(selector)?;
    Ok(prefix_expr(parsed.expr(), prefix).to_string())
}

/// `prefixAndAppendSelector`: `(current) && <new prefixed>`.
fn prefix_and_append(current: String, new: &str, prefix: &str) -> Result<String, SelectorError> {
    if new.is_empty() {
        return Ok(current);
    }
    let prefixed = attach_prefix(new, prefix)?;
    Ok(if current.is_empty() {
        prefixed
    } else {
        format!("({current}) && {prefixed}")
    })
}

/// The endpoint selector of a namespaced NetworkPolicy: `(selector) && projectcalico.org/
/// namespace == '<ns>'`, then `&&` the `pcsa.`-prefixed `serviceAccountSelector`.
pub fn network_policy_selector(
    selector: &str,
    namespace: &str,
    service_account_selector: &str,
) -> Result<String, SelectorError> {
    let ns_clause = format!("{LABEL_NAMESPACE} == '{namespace}'");
    let sel = if selector.is_empty() {
        ns_clause
    } else {
        format!("({selector}) && {ns_clause}")
    };
    prefix_and_append(sel, service_account_selector, SERVICE_ACCOUNT_LABEL_PREFIX)
}

/// The endpoint selector of a GlobalNetworkPolicy: `selector` && `pcns.`-prefixed
/// `namespaceSelector` (then every `all()` → `has(projectcalico.org/namespace)`), && the
/// `pcsa.`-prefixed `serviceAccountSelector` (then `all()` → `has(projectcalico.org/
/// serviceaccount)`).
pub fn global_policy_selector(
    selector: &str,
    namespace_selector: &str,
    service_account_selector: &str,
) -> Result<String, SelectorError> {
    let mut sel = selector.to_string();
    if !namespace_selector.is_empty() {
        sel = prefix_and_append(sel, namespace_selector, NAMESPACE_LABEL_PREFIX)?;
        sel = sel.replace("all()", &format!("has({LABEL_NAMESPACE})"));
    }
    if !service_account_selector.is_empty() {
        sel = prefix_and_append(sel, service_account_selector, SERVICE_ACCOUNT_LABEL_PREFIX)?;
        sel = sel.replace("all()", &format!("has({LABEL_SERVICE_ACCOUNT})"));
    }
    Ok(sel)
}

/// `parseServiceAccounts`: names → `projectcalico.org/serviceaccount in {…}`, the selector
/// prefixed with `pcsa.`, the two ANDed.
fn service_accounts_selector(sam: &ServiceAccountMatch) -> Result<String, SelectorError> {
    let prefixed = if sam.selector.is_empty() {
        String::new()
    } else {
        attach_prefix(&sam.selector, SERVICE_ACCOUNT_LABEL_PREFIX)?
    };
    if sam.names.is_empty() {
        return Ok(prefixed);
    }
    let names: BTreeSet<String> = sam.names.iter().cloned().collect();
    let by_name = Expr::In(LABEL_SERVICE_ACCOUNT.to_string(), names).to_string();
    Ok(if prefixed.is_empty() {
        by_name
    } else {
        format!("({prefixed}) && ({by_name})")
    })
}

/// `GetEntityRuleSelector`: the selector of the endpoints and network sets one side of a rule
/// names, with the policy's namespace (empty for global policies and profiles) applied as
/// soon as any selector field is used. Empty when the side names none.
pub fn entity_selector(er: &EntityRule, policy_namespace: &str) -> Result<String, SelectorError> {
    let sa = match &er.service_accounts {
        Some(sam) => service_accounts_selector(sam)?,
        None => String::new(),
    };
    let ns_sel = if !er.namespace_selector.is_empty() {
        attach_prefix(&er.namespace_selector, NAMESPACE_LABEL_PREFIX)?
            .replace("all()", &format!("has({LABEL_NAMESPACE})"))
            .replace("global()", &format!("!has({LABEL_NAMESPACE})"))
    } else if !policy_namespace.is_empty() {
        format!("{LABEL_NAMESPACE} == '{policy_namespace}'")
    } else {
        String::new()
    };
    let parts: Vec<&str> = [sa.as_str(), er.selector.as_str()]
        .into_iter()
        .filter(|s| !s.is_empty())
        .collect();
    let sel = match parts.as_slice() {
        [] => String::new(),
        [one] => (*one).to_string(),
        many => format!("({})", many.join(") && (")),
    };
    let namespaced = !ns_sel.is_empty()
        && (!sel.is_empty() || !er.not_selector.is_empty() || !er.namespace_selector.is_empty());
    Ok(if !namespaced {
        sel
    } else if sel.is_empty() {
        ns_sel
    } else {
        format!("({ns_sel}) && ({sel})")
    })
}

/// `combineMatchesIfPossible`: with a positive selector, the negated one narrows it
/// (`(pos) && (!(neg))`) instead of needing a second set; without one, the negated selector
/// stays on its own (and also excludes addresses Calico does not know). Returns (positive,
/// negated), each possibly empty.
pub fn combine_positive_and_negated(positive: String, negated: &str) -> (String, String) {
    if positive.is_empty() || negated.is_empty() {
        return (positive, negated.to_string());
    }
    (format!("({positive}) && (!({negated}))"), String::new())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn canon(s: &str) -> String {
        Selector::parse(s).unwrap().to_string()
    }

    fn er(f: impl FnOnce(&mut EntityRule)) -> EntityRule {
        let mut e = EntityRule::default();
        f(&mut e);
        e
    }

    #[test]
    fn prefixing_rewrites_every_label_but_not_all_or_global() {
        assert_eq!(
            attach_prefix(
                "a == 'x' && b != 'y' && has(c) && d in {'1'} && e not in {'2'} && f contains 'z' \
                 && g starts with 'p' && h ends with 's' && !(all() || global())",
                "pcns."
            )
            .unwrap(),
            "(pcns.a == \"x\" && pcns.b != \"y\" && has(pcns.c) && pcns.d in {\"1\"} && \
             pcns.e not in {\"2\"} && pcns.f contains \"z\" && pcns.g starts with \"p\" && \
             pcns.h ends with \"s\" && !(all() || global()))"
        );
        assert!(attach_prefix("a ==", "pcns.").is_err());
    }

    #[test]
    fn network_policy_selectors() {
        // Empty selector: just the namespace clause.
        assert_eq!(
            canon(&network_policy_selector("", "x", "").unwrap()),
            "projectcalico.org/namespace == \"x\""
        );
        assert_eq!(
            canon(&network_policy_selector("pod == 'a'", "x", "").unwrap()),
            "(pod == \"a\" && projectcalico.org/namespace == \"x\")"
        );
        assert_eq!(
            canon(&network_policy_selector("pod == 'a'", "x", "role == 'db'").unwrap()),
            "((pod == \"a\" && projectcalico.org/namespace == \"x\") && pcsa.role == \"db\")"
        );
    }

    #[test]
    fn global_policy_selectors() {
        assert_eq!(global_policy_selector("has(a)", "", "").unwrap(), "has(a)");
        // namespaceSelector all(): any namespaced endpoint. The replacement is textual, so it
        // also rewrites an all() in the policy's own selector.
        assert_eq!(
            canon(&global_policy_selector("all()", "all()", "").unwrap()),
            "(has(projectcalico.org/namespace) && has(projectcalico.org/namespace))"
        );
        assert_eq!(
            canon(&global_policy_selector("", "team == 'blue'", "").unwrap()),
            "pcns.team == \"blue\""
        );
        assert_eq!(
            canon(&global_policy_selector("app == 'w'", "team == 'blue'", "all()").unwrap()),
            "((app == \"w\" && pcns.team == \"blue\") && has(projectcalico.org/serviceaccount))"
        );
    }

    #[test]
    fn rule_peer_selectors() {
        // In a namespaced policy a bare selector stays in the policy's namespace.
        let s = entity_selector(&er(|e| e.selector = "pod == 'b'".into()), "x").unwrap();
        assert_eq!(
            canon(&s),
            "(projectcalico.org/namespace == \"x\" && pod == \"b\")"
        );
        // Only nets: not limited to the namespace.
        let s = entity_selector(&er(|e| e.nets = vec!["10.0.0.0/8".into()]), "x").unwrap();
        assert_eq!(s, "");
        // notSelector alone: the positive side becomes the namespace clause.
        let s = entity_selector(&er(|e| e.not_selector = "has(a)".into()), "x").unwrap();
        assert_eq!(canon(&s), "projectcalico.org/namespace == \"x\"");
        // namespaceSelector all(), global().
        let s = entity_selector(&er(|e| e.namespace_selector = "all()".into()), "x").unwrap();
        assert_eq!(s, "has(projectcalico.org/namespace)");
        let s = entity_selector(&er(|e| e.namespace_selector = "global()".into()), "").unwrap();
        assert_eq!(s, "!has(projectcalico.org/namespace)");
        // Pod AND namespace in one peer (the k8s conversion's shape).
        let s = entity_selector(
            &er(|e| {
                e.selector = "projectcalico.org/orchestrator == 'k8s' && pod == 'b'".into();
                e.namespace_selector = "team == 'blue'".into();
            }),
            "x",
        )
        .unwrap();
        assert_eq!(
            canon(&s),
            "(pcns.team == \"blue\" && (projectcalico.org/orchestrator == \"k8s\" && pod == \"b\"))"
        );
        // Service accounts: names and selector ANDed, then with the selector.
        let s = entity_selector(
            &er(|e| {
                e.selector = "app == 'w'".into();
                e.service_accounts = Some(Box::new(ServiceAccountMatch {
                    names: vec!["web".into(), "api".into()],
                    selector: "tier == 'fe'".into(),
                }));
            }),
            "",
        )
        .unwrap();
        assert_eq!(
            canon(&s),
            "((pcsa.tier == \"fe\" && projectcalico.org/serviceaccount in {\"api\", \"web\"}) \
             && app == \"w\")"
        );
        // In a global policy with no namespace selector nothing is added.
        let s = entity_selector(&er(|e| e.selector = "has(a)".into()), "").unwrap();
        assert_eq!(s, "has(a)");
    }

    #[test]
    fn negated_selector_narrows_a_positive_one() {
        assert_eq!(
            combine_positive_and_negated("has(a)".into(), "has(b)"),
            ("(has(a)) && (!(has(b)))".to_string(), String::new())
        );
        assert_eq!(
            combine_positive_and_negated(String::new(), "has(b)"),
            (String::new(), "has(b)".to_string())
        );
    }
}
