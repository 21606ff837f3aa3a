//! The resource commands (calicoctl's `get`, `apply`, `create`, `replace`, `delete`, `patch`,
//! `label`, `validate`, `version`), `node` (run the agent, status) and `lab`, and what they
//! share: reading `-f` files (Calico resources, and Kubernetes NetworkPolicies converted as
//! Calico's controllers convert them), picking resources from `<KIND> <NAME>…`, calicoctl's
//! namespace rules and its error list format. [`cascade`]: what deleting a Node or an IPPool
//! also cleans up (IPAM, endpoints, per-node config).

pub mod cascade;
pub mod checksystem;
pub mod completion;
pub mod diags_network;
pub mod diags_redact;
pub mod get;
pub mod install_cni;
pub mod lab;
pub mod lab_apply;
pub mod lab_probe;
pub mod label;
pub mod node;
pub mod node_diags;
pub mod node_view;
pub mod patch;
pub mod version;
pub mod write;

use std::io::{BufRead, BufReader};

use anyhow::{Result, anyhow, bail};
use brindle_model::k8s::network_policy_to_calico;
use brindle_model::{Document, Kind, Limits, Loader, Resource};

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

/// A resource named by a file: a Calico resource, or the Calico NetworkPolicy
/// (`knp.default.<name>`) Calico's controllers keep for a Kubernetes NetworkPolicy.
#[derive(Debug, Clone)]
pub struct FileResource {
    pub resource: Resource,
    /// Converted from a `networking.k8s.io/v1 NetworkPolicy`: the only way to write a
    /// `knp.default.*` policy, as in Calico.
    pub from_kubernetes: bool,
}

/// Opens `-f FILE` (`-` for stdin) for reading a document at a time.
fn open_input(path: &str) -> Result<(String, Box<dyn BufRead>)> {
    if path == "-" {
        return Ok(("<stdin>".to_string(), Box::new(std::io::stdin().lock())));
    }
    let file =
        std::fs::File::open(path).map_err(|e| anyhow!("failed to execute command: open {path}: {e}"))?;
    Ok((path.to_string(), Box::new(BufReader::new(file))))
}

/// `-R` only means something with `-f DIR`.
pub fn recursive_needs_file(recursive: bool, filename: &Option<String>) -> Result<()> {
    if recursive && filename.is_none() {
        bail!("-R/--recursive needs -f/--filename DIR");
    }
    Ok(())
}

/// The files `-f PATH` reads: PATH itself (or `-`), or for a directory its `.yaml`, `.yml` and
/// `.json` files sorted by path, with `recursive` (`-R`) those of its subdirectories too
/// (calicoctl's `-f DIR` and `-R`). A directory without such files is an error.
pub fn input_files(path: &str, recursive: bool) -> Result<Vec<String>> {
    let p = std::path::Path::new(path);
    if path == "-" || !p.is_dir() {
        return Ok(vec![path.to_string()]);
    }
    let mut out = Vec::new();
    collect_dir(p, recursive, &mut out)?;
    if out.is_empty() {
        bail!("failed to execute command: {path}: no .yaml, .yml or .json files in the directory");
    }
    out.sort();
    Ok(out)
}

fn collect_dir(dir: &std::path::Path, recursive: bool, out: &mut Vec<String>) -> Result<()> {
    let entries = std::fs::read_dir(dir)
        .map_err(|e| anyhow!("failed to execute command: read directory {}: {e}", dir.display()))?;
    for entry in entries {
        let entry =
            entry.map_err(|e| anyhow!("failed to execute command: read directory {}: {e}", dir.display()))?;
        let path = entry.path();
        if path.is_dir() {
            if recursive {
                collect_dir(&path, recursive, out)?;
            }
            continue;
        }
        let manifest = path
            .extension()
            .and_then(|e| e.to_str())
            .is_some_and(|e| matches!(e, "yaml" | "yml" | "json"));
        if manifest {
            out.push(path.to_string_lossy().into_owned());
        }
    }
    Ok(())
}

/// Calls `f` with every document of `-f FILE` (`-` for stdin, or a directory's files, see
/// [`input_files`]), unchanged and in order, reading one document at a time within the loader's
/// [`Limits`].
pub fn for_each_document(
    path: &str,
    recursive: bool,
    mut f: impl FnMut(Document) -> Result<()>,
) -> Result<()> {
    for file in input_files(path, recursive)? {
        let (name, reader) = open_input(&file)?;
        for doc in Loader::documents(&name, reader, Limits::default()) {
            for d in doc.map_err(|e| anyhow!("failed to execute command: {e}"))? {
                f(d)?;
            }
        }
    }
    Ok(())
}

fn too_many(path: &str) -> anyhow::Error {
    anyhow!(
        "failed to execute command: {path}: more than the limit of {MAX_HELD_RESOURCES} resources to check before writing (split the input)"
    )
}

/// Reads `-f FILE` (`-` for stdin): every document, unchanged (at most
/// [`MAX_HELD_RESOURCES`]).
pub fn load_documents_file(path: &str) -> Result<Vec<Document>> {
    let mut out = Vec::new();
    for_each_document(path, false, |d| {
        if out.len() == MAX_HELD_RESOURCES {
            return Err(too_many(path));
        }
        out.push(d);
        Ok(())
    })?;
    Ok(out)
}

/// One document as a resource to write: namespace rules applied; a Kubernetes NetworkPolicy
/// checked as the API server would and converted; Namespaces, ServiceAccounts and Pods refused
/// (`brindle lab apply` takes them).
fn file_resource(doc: Document, ns: &NamespaceArgs) -> Result<FileResource> {
    match resource_or_lab_object(doc, ns)? {
        Ok(r) => Ok(r),
        Err(other) => bail!(
            "{}: Kubernetes {} objects go to a lab (`brindle lab apply --name LAB -f FILE`); this command takes Calico resources and Kubernetes NetworkPolicies",
            other.identifier(),
            other.kind_name()
        ),
    }
}

/// One document as a resource to write (as [`file_resource`]), or, for a Kubernetes
/// Namespace, ServiceAccount or Pod, the document as it is (only a lab takes those).
pub fn resource_or_lab_object(
    doc: Document,
    ns: &NamespaceArgs,
) -> Result<std::result::Result<FileResource, Document>> {
    let (mut resource, from_kubernetes) = match doc {
        Document::Calico(r) => (r, false),
        Document::NetworkPolicy(mut np) => {
            np.metadata.namespace = namespace_for(Kind::NetworkPolicy, &np.metadata.namespace, ns)?;
            let p = network_policy_to_calico(&np).map_err(|e| anyhow!("{e}"))?;
            (Resource::NetworkPolicy(p), true)
        }
        other => return Ok(Err(other)),
    };
    let kind = resource.kind();
    let current = resource.metadata().namespace.clone();
    resource.metadata_mut().namespace = namespace_for(kind, &current, ns)?;
    Ok(Ok(FileResource {
        resource,
        from_kubernetes,
    }))
}

/// Reads `-f FILE` (`-` for stdin, a directory's files with `-R` for its subdirectories) as
/// resources to write (see `file_resource`), at most [`MAX_HELD_RESOURCES`].
pub fn load_file(path: &str, recursive: bool, ns: &NamespaceArgs) -> Result<Vec<FileResource>> {
    let mut out = Vec::new();
    for_each_document(path, recursive, |d| {
        if out.len() == MAX_HELD_RESOURCES {
            return Err(too_many(path));
        }
        out.push(file_resource(d, ns)?);
        Ok(())
    })?;
    Ok(out)
}

/// What `lab apply`/`lab delete` read from `-f FILE`: the resources `apply`/`delete` take
/// (as [`load_file`]) and the Kubernetes Namespaces, ServiceAccounts and Pods, as they are
/// (at most [`MAX_HELD_RESOURCES`] in all).
pub fn load_lab_file(path: &str, ns: &NamespaceArgs) -> Result<(Vec<FileResource>, Vec<Document>)> {
    let mut out = Vec::new();
    let mut others = Vec::new();
    for_each_document(path, false, |d| {
        if out.len() + others.len() == MAX_HELD_RESOURCES {
            return Err(too_many(path));
        }
        match resource_or_lab_object(d, ns)? {
            Ok(r) => out.push(r),
            Err(other) => others.push(other),
        }
        Ok(())
    })?;
    Ok((out, others))
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

/// One resource named on the command line or in a file.
#[derive(Debug, Clone)]
pub struct Named {
    pub kind: Kind,
    pub namespace: String,
    pub name: String,
    pub resource_version: String,
    /// Named by a Kubernetes NetworkPolicy document.
    pub from_kubernetes: bool,
}

/// Resources named on the command line or in a file.
pub struct Selection {
    pub items: Vec<Named>,
}

impl Selection {
    pub fn from_resources(rs: Vec<FileResource>) -> Selection {
        Selection {
            items: rs
                .into_iter()
                .map(|f| {
                    let m = f.resource.metadata();
                    Named {
                        kind: f.resource.kind(),
                        namespace: m.namespace.clone(),
                        name: m.name.clone(),
                        resource_version: m.resource_version.clone(),
                        from_kubernetes: f.from_kubernetes,
                    }
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
                .map(|n| Named {
                    kind,
                    namespace: namespace.clone(),
                    name: n.clone(),
                    resource_version: String::new(),
                    from_kubernetes: false,
                })
                .collect(),
        })
    }

    pub fn single_kind(&self) -> Option<Kind> {
        let first = self.items.first()?.kind;
        self.items.iter().all(|i| i.kind == first).then_some(first)
    }
}

/// calicoctl refuses to write `knp.default.*` NetworkPolicies: they belong to Kubernetes
/// (`calicoctl/resourcemgr/networkpolicy.go`). Only a Kubernetes NetworkPolicy document may.
pub fn refuse_kubernetes_policy(kind: Kind, namespace: &str, name: &str, op: &str) -> Result<(), String> {
    if kind == Kind::NetworkPolicy && name.starts_with(brindle_model::resources::K8S_POLICY_PREFIX) {
        return Err(format!(
            "operation {op} is not supported on {}: kubernetes network policies must be managed through the kubernetes API",
            brindle_model::resources::identifier(kind, namespace, name)
        ));
    }
    Ok(())
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
