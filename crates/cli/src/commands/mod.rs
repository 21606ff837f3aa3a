//! The resource commands (calicoctl's `get`, `apply`, `create`, `replace`, `delete`, `patch`,
//! `validate`, `version`), `node` (run the agent, status) and `lab`, and what they share: reading `-f` files, picking resources from
//! `<KIND> <NAME>…`, calicoctl's namespace rules and its error list format. [`cascade`]: what
//! deleting a Node or an IPPool also cleans up (IPAM, endpoints, per-node config).

pub mod cascade;
pub mod get;
pub mod lab;
pub mod node;
pub mod patch;
pub mod version;
pub mod write;

use std::io::{BufRead, BufReader};

use anyhow::{Result, anyhow, bail};
use brindle_model::{Kind, Limits, Loader, Resource};

use crate::args::NamespaceArgs;

/// Go's `%v` of a `[]error`: `[first second]`.
pub fn go_list(errors: &[String]) -> String {
    format!("[{}]", errors.join(" "))
}

/// The kind shared by every resource, if there is exactly one.
pub fn single_kind(resources: &[Resource]) -> Option<Kind> {
    let first = resources.first()?.kind();
    resources.iter().all(|r| r.kind() == first).then_some(first)
}

/// The most resources a command holds to check them all before writing any (`apply`, `create`,
/// `replace`, `delete -f`, `get -f`). `validate` streams and has only the loader's limits.
pub const MAX_HELD_RESOURCES: usize = 100_000;

/// Opens `-f FILE` (`-` for stdin) for reading a document at a time.
fn open_input(path: &str) -> Result<(String, Box<dyn BufRead>)> {
    if path == "-" {
        return Ok(("<stdin>".to_string(), Box::new(std::io::stdin().lock())));
    }
    let file =
        std::fs::File::open(path).map_err(|e| anyhow!("failed to execute command: open {path}: {e}"))?;
    Ok((path.to_string(), Box::new(BufReader::new(file))))
}

/// Calls `f` with every resource of `-f FILE` (`-` for stdin) in order, namespace rules
/// applied, reading one document at a time within the loader's [`Limits`].
pub fn for_each_resource(
    path: &str,
    ns: &NamespaceArgs,
    mut f: impl FnMut(Resource) -> Result<()>,
) -> Result<()> {
    let (name, reader) = open_input(path)?;
    for doc in Loader::new(&name, reader, Limits::default()) {
        for mut r in doc.map_err(|e| anyhow!("failed to execute command: {e}"))? {
            let kind = r.kind();
            let current = r.metadata().namespace.clone();
            r.metadata_mut().namespace = namespace_for(kind, &current, ns)?;
            f(r)?;
        }
    }
    Ok(())
}

/// Reads every resource of `-f FILE` (`-` for stdin), at most [`MAX_HELD_RESOURCES`], and
/// applies the namespace rules to each.
pub fn load_file(path: &str, ns: &NamespaceArgs) -> Result<Vec<Resource>> {
    let mut resources = Vec::new();
    for_each_resource(path, ns, |r| {
        if resources.len() == MAX_HELD_RESOURCES {
            bail!(
                "failed to execute command: {path}: more than the limit of {MAX_HELD_RESOURCES} resources to check before writing (split the input)"
            );
        }
        resources.push(r);
        Ok(())
    })?;
    Ok(resources)
}

/// calicoctl's `handleNamespace`: the namespace a resource ends up with, or why the
/// combination is refused. An empty result with `-A` means "every namespace".
pub fn namespace_for(kind: Kind, resource_ns: &str, ns: &NamespaceArgs) -> Result<String> {
    let cli_ns = ns.namespace.as_deref().unwrap_or("");
    if kind.namespaced() {
        if ns.all_namespaces && !cli_ns.is_empty() {
            bail!("cannot use both --namespace and --all-namespaces flags at the same time");
        }
        return Ok(match (resource_ns.is_empty(), cli_ns.is_empty()) {
            (true, false) => cli_ns.to_string(),
            (false, _) if ns.all_namespaces => String::new(),
            (true, true) if ns.all_namespaces => String::new(),
            (true, true) => "default".to_string(),
            (false, true) => resource_ns.to_string(),
            (false, false) if resource_ns != cli_ns => {
                bail!("resource namespace does not match client namespace. {resource_ns} != {cli_ns}")
            }
            (false, false) => resource_ns.to_string(),
        });
    }
    if !resource_ns.is_empty() {
        bail!(
            "namespace should not be specified for a non-namespaced resource. {kind} is not a namespaced resource"
        );
    }
    if ns.all_namespaces || !cli_ns.is_empty() {
        bail!("{kind} is not namespaced");
    }
    Ok(String::new())
}

/// Resources named on the command line or in a file: (kind, namespace, name, resourceVersion).
pub struct Selection {
    pub items: Vec<(Kind, String, String, String)>,
}

impl Selection {
    pub fn from_resources(rs: Vec<Resource>) -> Selection {
        Selection {
            items: rs
                .into_iter()
                .map(|r| {
                    let m = r.metadata();
                    (
                        r.kind(),
                        m.namespace.clone(),
                        m.name.clone(),
                        m.resource_version.clone(),
                    )
                })
                .collect(),
        }
    }

    /// `<KIND> <NAME>…`; with `names_required`, at least one name.
    pub fn from_args(
        kind: &str,
        names: &[String],
        ns: &NamespaceArgs,
        names_required: bool,
    ) -> Result<Selection> {
        let kind = parse_kind(kind)?;
        if names_required && names.is_empty() {
            bail!("no resources specified");
        }
        if names.iter().any(String::is_empty) {
            bail!("resource name may not be empty");
        }
        let namespace = namespace_for(kind, "", ns)?;
        Ok(Selection {
            items: names
                .iter()
                .map(|n| (kind, namespace.clone(), n.clone(), String::new()))
                .collect(),
        })
    }

    pub fn single_kind(&self) -> Option<Kind> {
        let first = self.items.first()?.0;
        self.items.iter().all(|i| i.0 == first).then_some(first)
    }
}

/// A kind from a CLI alias (`ippool`, `ipp`, `IPPool`, …).
pub fn parse_kind(s: &str) -> Result<Kind> {
    Kind::from_alias(s).ok_or_else(|| anyhow!("resource type '{s}' is not supported"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ns(n: Option<&str>, all: bool) -> NamespaceArgs {
        NamespaceArgs {
            namespace: n.map(str::to_string),
            all_namespaces: all,
        }
    }

    #[test]
    fn namespace_rules() {
        let w = Kind::WorkloadEndpoint;
        assert_eq!(namespace_for(w, "", &ns(None, false)).unwrap(), "default");
        assert_eq!(namespace_for(w, "", &ns(Some("a"), false)).unwrap(), "a");
        assert_eq!(namespace_for(w, "b", &ns(None, false)).unwrap(), "b");
        assert_eq!(namespace_for(w, "b", &ns(None, true)).unwrap(), "");
        assert!(
            namespace_for(w, "b", &ns(Some("a"), false))
                .unwrap_err()
                .to_string()
                .contains("b != a")
        );
        assert!(namespace_for(w, "", &ns(Some("a"), true)).is_err());
        let p = Kind::IPPool;
        assert_eq!(namespace_for(p, "", &ns(None, false)).unwrap(), "");
        assert_eq!(
            namespace_for(p, "", &ns(Some("a"), false))
                .unwrap_err()
                .to_string(),
            "IPPool is not namespaced"
        );
        assert!(namespace_for(p, "x", &ns(None, false)).is_err());
    }

    #[test]
    fn error_lists_like_go() {
        assert_eq!(go_list(&["a".into(), "b c".into()]), "[a b c]");
    }
}
