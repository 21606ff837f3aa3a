//! `apply`, `create`, `replace`, `delete` and `validate` with calicoctl's reporting:
//! `Successfully applied 1 'IPPool' resource(s)`, `Partial success: …`, `hit error(s): [...]`.
//!
//! Unlike calicoctl, every document of a file is validated (including pool overlaps among the
//! file's pools and against the stored ones) before anything is written: a bad file changes
//! nothing. Kubernetes NetworkPolicies are written as the `knp.default.*` policies Calico's
//! controllers make of them; Calico NetworkPolicies with that prefix are refused, as calicoctl
//! refuses them. Writing policies or tiers first makes sure the built-in tiers exist
//! (calicoctl's `EnsureInitialized`; the agent also creates them at start).

use anyhow::{Result, anyhow};
use brindle_model::resources::IPPool;
use brindle_model::{Document, Kind, Resource, validate, validate_ippool_create};

use super::{FileResource, Selection, go_list, load_file, refuse_kubernetes_policy, single_kind};
use crate::args::{CreateArgs, DeleteArgs, FileArgs};
use crate::client::{Client, ResourceError};

#[derive(Clone, Copy, PartialEq, Eq)]
enum Action {
    Apply,
    Create,
    Replace,
}

impl Action {
    fn verb(self) -> (&'static str, &'static str) {
        match self {
            Action::Apply => ("apply", "applied"),
            Action::Create => ("create", "created"),
            Action::Replace => ("replace", "replaced"),
        }
    }

    /// The operation calicoctl names when it refuses a `knp.default.*` policy.
    fn refused_op(self) -> &'static str {
        match self {
            Action::Apply | Action::Create => "create or apply",
            Action::Replace => "apply or replace",
        }
    }
}

/// Checks every resource before any write; returns the errors found.
fn precheck(client: &Client, action: Action, files: &[FileResource]) -> Result<Vec<String>> {
    let mut errors = Vec::new();
    for f in files.iter().filter(|f| !f.from_kubernetes) {
        let (m, kind) = (f.resource.metadata(), f.resource.kind());
        if let Err(e) = refuse_kubernetes_policy(kind, &m.namespace, &m.name, action.refused_op()) {
            errors.push(e);
        }
    }
    let resources: Vec<&Resource> = files.iter().map(|f| &f.resource).collect();
    let mut pools: Vec<IPPool> = Vec::new();
    let needs_pools = resources.iter().any(|r| r.kind() == Kind::IPPool);
    let stored: Vec<IPPool> = if needs_pools {
        client
            .list(Kind::IPPool, None)?
            .items
            .into_iter()
            .filter_map(|r| match r {
                Resource::IPPool(p) => Some(p),
                _ => None,
            })
            .collect()
    } else {
        Vec::new()
    };
    for r in resources {
        if let Err(e) = validate(r) {
            errors.push(e.to_string());
            continue;
        }
        if let Resource::IPPool(p) = r {
            let exists = stored.iter().any(|s| s.metadata.name == p.metadata.name);
            if !exists && action != Action::Replace {
                let mut others = stored.clone();
                others.extend(pools.iter().cloned());
                if let Err(e) = validate_ippool_create(p, &others) {
                    errors.push(e.to_string());
                }
            }
            pools.push(p.clone());
        }
    }
    Ok(errors)
}

/// calicoctl's summary for apply/create/replace.
fn report(action: Action, kind: Option<Kind>, total: usize, handled: usize, errors: &[String]) -> Result<()> {
    let (verb, past) = action.verb();
    let kind_q = kind.map(|k| format!("'{k}' "));
    if handled == 0 {
        return Err(anyhow!(match (total, &kind_q) {
            (1, _) => format!(
                "failed to {verb} '{}' resource: {}",
                kind.map(|k| k.name()).unwrap_or(""),
                go_list(errors)
            ),
            (_, Some(k)) => format!("failed to {verb} any {k}resources: {}", go_list(errors)),
            (_, None) => format!("failed to {verb} any resources: {}", go_list(errors)),
        }));
    }
    if errors.is_empty() {
        match &kind_q {
            Some(k) => println!("Successfully {past} {handled} {k}resource(s)"),
            None => println!("Successfully {past} {handled} resource(s)"),
        }
        return Ok(());
    }
    match &kind_q {
        Some(k) => println!(
            "Partial success: {past} the first {handled} out of {total} {}resources:",
            k
        ),
        None => println!("Partial success: {past} the first {handled} out of {total} resources:"),
    }
    let hit = if action == Action::Apply {
        "hit error(s)"
    } else {
        "hit error"
    };
    Err(anyhow!("{hit}: {}", go_list(errors)))
}

fn write(client: &Client, action: Action, file: &FileArgs, skip_exists: bool) -> Result<()> {
    let files = load_file(&file.filename, file.recursive, &file.ns)?;
    write_resources(client, action, &files, skip_exists)
}

/// Why `apply` of `files` would fail, before anything is written (the lab checks its
/// Kubernetes objects and these together).
pub fn check_resources(client: &Client, files: &[FileResource]) -> Result<Vec<String>> {
    precheck(client, Action::Apply, files)
}

/// `apply` of resources already read (the lab's `lab apply` hands its Calico resources and
/// NetworkPolicies here).
pub fn apply_resources(client: &Client, files: &[FileResource]) -> Result<()> {
    write_resources(client, Action::Apply, files, false)
}

fn write_resources(client: &Client, action: Action, files: &[FileResource], skip_exists: bool) -> Result<()> {
    let resources: Vec<Resource> = files.iter().map(|f| f.resource.clone()).collect();
    let kind = single_kind(&resources);
    if resources.is_empty() {
        println!("No resources specified");
        return Ok(());
    }
    let errors = precheck(client, action, files)?;
    if !errors.is_empty() {
        return report(action, kind, resources.len(), 0, &errors);
    }
    // As calicoctl's tryEnsureInitialized (a failure is not the user's error), but only when
    // the file has policies or tiers: on a node the agent has made the tiers already.
    let needs_tiers = resources.iter().any(|r| {
        matches!(
            r.kind(),
            Kind::NetworkPolicy | Kind::GlobalNetworkPolicy | Kind::Tier
        )
    });
    if needs_tiers && let Err(e) = client.ensure_builtin_tiers() {
        tracing::debug!(error = %e, "could not create the built-in tiers");
    }
    let mut handled = 0;
    let mut errors = Vec::new();
    for r in &resources {
        let res = match action {
            Action::Apply => client.apply(r),
            Action::Create => client.create(r),
            Action::Replace => client.update(r),
        };
        match res {
            Ok(_) => handled += 1,
            Err(ResourceError::AlreadyExists(_)) if skip_exists => handled += 1,
            Err(e) => {
                errors.push(e.to_string());
                // calicoctl stops a replace at the first error.
                if action == Action::Replace {
                    break;
                }
            }
        }
    }
    report(action, kind, resources.len(), handled, &errors)
}

pub fn apply(client: &Client, a: &FileArgs) -> Result<()> {
    write(client, Action::Apply, a, false)
}

pub fn create(client: &Client, a: &CreateArgs) -> Result<()> {
    write(client, Action::Create, &a.file, a.skip_exists)
}

pub fn replace(client: &Client, a: &FileArgs) -> Result<()> {
    write(client, Action::Replace, a, false)
}

/// How many validation errors `validate` reports; a stream of many bad documents is still read
/// to its end (within the loader's limits), and the rest are counted.
const MAX_REPORTED_ERRORS: usize = 1000;

/// `validate -f`: load and validate only (no datastore needed), one document at a time, so a
/// long stream is checked in the memory of one document. Kubernetes objects are checked as the
/// API server would (and NetworkPolicies converted and checked as Calico policies).
pub fn validate_file(a: &FileArgs) -> Result<()> {
    use brindle_model::k8s::{network_policy_to_calico, workload};
    let mut errors: Vec<String> = Vec::new();
    let mut more_errors = 0usize;
    let (mut count, mut kind, mut mixed) = (0usize, None, false);
    super::for_each_document(&a.filename, a.recursive, |d| {
        count += 1;
        match kind {
            None => kind = Some(d.kind_name()),
            Some(k) if k != d.kind_name() => mixed = true,
            Some(_) => {}
        }
        let checked = match d {
            Document::Calico(mut r) => {
                let ns = r.metadata().namespace.clone();
                let ns = super::namespace_for(r.kind(), &ns, &a.ns)?;
                r.metadata_mut().namespace = ns;
                validate(&r).map_err(|e| e.to_string())
            }
            Document::NetworkPolicy(np) => network_policy_to_calico(&np)
                .map_err(|e| e.to_string())
                .and_then(|p| validate(&Resource::NetworkPolicy(p)).map_err(|e| e.to_string())),
            Document::Namespace(n) => workload::validate_namespace(&n).map_err(|e| e.to_string()),
            Document::ServiceAccount(s) => workload::validate_service_account(&s).map_err(|e| e.to_string()),
            Document::Pod(p) => workload::validate_pod(&p).map_err(|e| e.to_string()),
        };
        if let Err(e) = checked {
            if errors.len() < MAX_REPORTED_ERRORS {
                errors.push(e);
            } else {
                more_errors += 1;
            }
        }
        Ok(())
    })?;
    if errors.is_empty() {
        match kind.filter(|_| !mixed) {
            Some(k) => println!("Successfully validated {count} '{k}' resource(s)"),
            None => println!("Successfully validated {count} resource(s)"),
        }
        Ok(())
    } else {
        if more_errors > 0 {
            errors.push(format!("and {more_errors} more invalid resources"));
        }
        Err(anyhow!("hit error(s): {}", go_list(&errors)))
    }
}

pub fn delete(client: &Client, a: &DeleteArgs) -> Result<()> {
    super::recursive_needs_file(a.recursive, &a.filename)?;
    let sel = match &a.filename {
        Some(f) => Selection::from_resources(load_file(f, a.recursive, &a.ns)?),
        None => Selection::from_args(a.kind.as_deref().unwrap_or(""), &a.names, &a.ns, true)?,
    };
    delete_selection(client, &sel, a.skip_not_exists)
}

/// `delete` of resources already named (also the lab's `lab delete`).
pub fn delete_selection(client: &Client, sel: &Selection, skip_not_exists: bool) -> Result<()> {
    if sel.items.is_empty() {
        println!("No resources specified");
        return Ok(());
    }
    let kind = sel.single_kind();
    let mut handled = 0;
    let mut errors = Vec::new();
    for n in &sel.items {
        let (k, ns, name, rv) = (&n.kind, &n.namespace, &n.name, &n.resource_version);
        if !n.from_kubernetes
            && let Err(e) = refuse_kubernetes_policy(*k, ns, name, "delete")
        {
            errors.push(e);
            continue;
        }
        if let Err(e) = super::cascade::before_delete(client, *k, ns, name, rv) {
            errors.push(e);
            continue;
        }
        match client.delete(*k, ns, name, rv) {
            Ok(_) => handled += 1,
            Err(ResourceError::NotFound(_)) if skip_not_exists => handled += 1,
            Err(e) => errors.push(e.to_string()),
        }
    }
    if handled > 0 {
        match kind {
            Some(k) => println!("Successfully deleted {handled} '{k}' resource(s)"),
            None => println!("Successfully deleted {handled} resource(s)"),
        }
    }
    if errors.is_empty() {
        return Ok(());
    }
    let lines: Vec<String> = errors
        .iter()
        .map(|e| match kind {
            Some(k) => format!("Failed to delete '{k}' resource: {e}"),
            None => format!("Failed to delete resource: {e}"),
        })
        .collect();
    Err(anyhow!(lines.join("\n")))
}
