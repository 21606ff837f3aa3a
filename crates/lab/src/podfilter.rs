//! What `lab probe --from`/`--to` take to pick pods: `NAMESPACE/POD` (either side `*`), a bare
//! namespace, or a Calico selector over the labels of the pods' WorkloadEndpoints.

use brindle_model::Selector;

use crate::error::{Error, Result};
use crate::state::PodRecord;

/// What `--from` and `--to` take: `NAMESPACE/POD` (either side `*`), a bare namespace, or a
/// Calico selector over the labels of the pods' WorkloadEndpoints (`pod == 'a' &&
/// projectcalico.org/namespace == 'x'`).
#[derive(Debug, Clone)]
pub enum PodFilter {
    Name { namespace: String, pod: String },
    Selector(Selector),
}

impl PodFilter {
    pub fn parse(s: &str) -> Result<PodFilter> {
        let s = s.trim();
        let selector_like = s.contains(['=', '(', '!', ' ', '\'', '"', '&', '|']);
        if !selector_like {
            let (ns, pod) = s.split_once('/').unwrap_or((s, "*"));
            if !ns.is_empty() && !pod.contains('/') {
                return Ok(PodFilter::Name {
                    namespace: ns.to_string(),
                    pod: if pod.is_empty() {
                        "*".into()
                    } else {
                        pod.to_string()
                    },
                });
            }
        }
        Selector::parse(s)
            .map(PodFilter::Selector)
            .map_err(|e| Error::Invalid(format!("pod selector {s:?}: {e}")))
    }

    pub fn matches(&self, pod: &PodRecord) -> bool {
        match self {
            PodFilter::Name { namespace, pod: name } => {
                (namespace == "*" || *namespace == pod.namespace) && (name == "*" || *name == pod.name)
            }
            PodFilter::Selector(s) => s.matches(&pod.labels),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pod(ns: &str, name: &str) -> PodRecord {
        PodRecord {
            name: name.into(),
            namespace: ns.into(),
            labels: [
                ("pod".to_string(), name.to_string()),
                ("projectcalico.org/namespace".to_string(), ns.to_string()),
            ]
            .into(),
            node: "n".into(),
            netns: "x".into(),
            container_id: "c".into(),
            ip: None,
            ips: Vec::new(),
            host_if: None,
            listening: Vec::new(),
        }
    }

    #[test]
    fn filters() {
        let (xa, yb) = (pod("x", "a"), pod("y", "b"));
        let f = PodFilter::parse("x/a").unwrap();
        assert!(f.matches(&xa) && !f.matches(&yb));
        let f = PodFilter::parse("x").unwrap();
        assert!(f.matches(&xa) && !f.matches(&yb));
        let f = PodFilter::parse("*/b").unwrap();
        assert!(!f.matches(&xa) && f.matches(&yb));
        let f = PodFilter::parse("pod == 'b'").unwrap();
        assert!(!f.matches(&xa) && f.matches(&yb));
        let f = PodFilter::parse("projectcalico.org/namespace in {'x', 'y'}").unwrap();
        assert!(f.matches(&xa) && f.matches(&yb));
        let e = PodFilter::parse("pod ==").unwrap_err().to_string();
        assert!(e.contains("pod selector \"pod ==\""), "{e}");
    }
}
