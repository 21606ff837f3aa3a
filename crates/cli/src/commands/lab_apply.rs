//! `brindle lab apply|delete --name LAB -f FILE|-`: Kubernetes Namespaces, ServiceAccounts
//! and Pods (the lab plays the API server, kubelet and Calico's controllers for them,
//! `brindle_lab::k8s`) and everything `brindle apply|delete` takes (Calico resources,
//! Kubernetes NetworkPolicies), through the same code as those commands, in the lab's
//! datastore.
//!
//! Every document is checked before anything is written. Apply goes namespaces and service
//! accounts, then policies and other resources, then pods (so a pod meets its policies from
//! its first packet); delete goes the other way. Kubernetes objects are reported in kubectl's
//! words (`pod/a created`), Calico resources in calicoctl's.

use anyhow::{Result, anyhow, bail};
use brindle_lab::Lab;
use brindle_lab::k8s::K8sObjects;
use brindle_model::Document;

use super::write::{apply_resources, check_resources, delete_selection};
use super::{FileResource, Selection, load_lab_file};
use crate::args::NamespaceArgs;

fn read(path: &str) -> Result<(Vec<FileResource>, K8sObjects)> {
    let (resources, others) = load_lab_file(path, &NamespaceArgs::default())?;
    let mut objs = K8sObjects::default();
    for d in others {
        match d {
            Document::Namespace(n) => objs.namespaces.push(n),
            Document::ServiceAccount(s) => objs.service_accounts.push(s),
            Document::Pod(p) => objs.pods.push(p),
            Document::Calico(_) | Document::NetworkPolicy(_) => unreachable!("split off above"),
        }
    }
    objs.default_namespaces();
    Ok((resources, objs))
}

/// `lab apply`.
pub fn apply(name: &str, path: &str) -> Result<()> {
    let mut lab = Lab::open(name)?;
    let (resources, objs) = read(path)?;
    if resources.is_empty() && objs.is_empty() {
        println!("No resources specified");
        return Ok(());
    }
    let client = lab.client()?;
    let mut errors = lab.check_apply(&client, &objs)?;
    if !resources.is_empty() {
        errors.extend(check_resources(&client, &resources)?);
    }
    if !errors.is_empty() {
        bail!("nothing applied:\n  {}", errors.join("\n  "));
    }
    for line in lab.apply_namespaces(&client, &objs)? {
        println!("{line}");
    }
    if !resources.is_empty() {
        apply_resources(&client, &resources)?;
    }
    for line in lab.apply_pods(&client, &objs.pods)? {
        println!("{line}");
    }
    Ok(())
}

/// `lab delete`.
pub fn delete(name: &str, path: &str) -> Result<()> {
    let mut lab = Lab::open(name)?;
    let (resources, objs) = read(path)?;
    if resources.is_empty() && objs.is_empty() {
        println!("No resources specified");
        return Ok(());
    }
    let client = lab.client()?;
    let mut errors = lab.check_delete(&client, &objs)?;
    for f in &resources {
        let (kind, m) = (f.resource.kind(), f.resource.metadata());
        if client
            .get(kind, &m.namespace, &m.name)
            .map_err(|e| anyhow!("{e}"))?
            .is_none()
        {
            errors.push(format!(
                "resource does not exist: {} with error: <nil>",
                brindle_model::resources::identifier(kind, &m.namespace, &m.name)
            ));
        }
    }
    if !errors.is_empty() {
        bail!("nothing deleted:\n  {}", errors.join("\n  "));
    }
    for line in lab.delete_pods(&client, &objs.pods)? {
        println!("{line}");
    }
    if !resources.is_empty() {
        delete_selection(&client, &Selection::from_resources(resources), false)?;
    }
    for line in lab.delete_namespaces(&client, &objs)? {
        println!("{line}");
    }
    Ok(())
}
