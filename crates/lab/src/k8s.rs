//! The lab plays Kubernetes' part for `lab apply` and `lab delete`: the API server (checks,
//! defaults, the objects kept where the CNI plugin reads them, `brindle_model::k8s::stored`),
//! kubelet (a Pod becomes a pod made through the CNI plugin on its node) and Calico's
//! kube-controllers on an etcd datastore (a Namespace's labels reach its `kns.` Profile, a
//! ServiceAccount's its `ksa.` Profile, a Pod's label changes its WorkloadEndpoint).
//!
//! Everything an apply or delete names is checked before anything is written; messages are
//! Kubernetes' (`namespaces "x" not found`) and kubectl's (`pod/a created`).

use std::collections::BTreeMap;

use brindle_datastore::{Client, ResourceError, Revision};
use brindle_model::k8s::workload::{
    self, apply_namespace_defaults, apply_pod_defaults, default_service_account, namespace_profile_name,
    service_account_profile_name,
};
use brindle_model::k8s::{
    Namespace, Pod, ServiceAccount, namespace_to_profile, service_account_to_profile, stored,
};
use brindle_model::resources::{K8S_POLICY_PREFIX, WorkloadEndpoint};
use brindle_model::{Kind, Resource};

use crate::error::{Error, Result};
use crate::lab::Lab;

/// The annotation naming the address a pod gets (Calico's CNI plugin honours it).
pub const IP_ADDRS_ANNOTATION: &str = "cni.projectcalico.org/ipAddrs";

/// The Kubernetes objects of one `lab apply` or `lab delete`.
#[derive(Debug, Clone, Default)]
pub struct K8sObjects {
    pub namespaces: Vec<Namespace>,
    pub service_accounts: Vec<ServiceAccount>,
    pub pods: Vec<Pod>,
}

impl K8sObjects {
    pub fn is_empty(&self) -> bool {
        self.namespaces.is_empty() && self.service_accounts.is_empty() && self.pods.is_empty()
    }

    /// Namespaced objects without a namespace go to `default`, as with kubectl.
    pub fn default_namespaces(&mut self) {
        for m in self
            .service_accounts
            .iter_mut()
            .map(|s| &mut s.metadata)
            .chain(self.pods.iter_mut().map(|p| &mut p.metadata))
        {
            if m.namespace.is_empty() {
                m.namespace = "default".into();
            }
        }
    }
}

fn ds(what: &str, e: impl std::fmt::Display) -> Error {
    Error::step(what, e)
}

fn now() -> Option<String> {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or_default();
    Some(brindle_model::meta::rfc3339_utc(secs))
}

/// Reads a stored object: `None` when absent.
fn get_stored<T>(
    c: &Client,
    key: &str,
    decode: fn(&str, &[u8]) -> std::result::Result<T, String>,
) -> Result<Option<(T, Revision)>> {
    match c.store().get(key).map_err(|e| ds(&format!("read {key}"), e))? {
        Some(kv) => Ok(Some((
            decode(key, &kv.value).map_err(|e| ds("read", e))?,
            kv.revision,
        ))),
        None => Ok(None),
    }
}

/// Creates or replaces (compare-and-swap on `revision`) a stored object.
fn put_stored<T: serde::Serialize>(
    c: &Client,
    key: &str,
    object: &T,
    revision: Option<Revision>,
) -> Result<()> {
    let bytes = stored::encode(object);
    let what = format!("write {key}");
    match revision {
        None => c.store().create(key, &bytes).map(drop),
        Some(r) => c.store().update(key, &bytes, r).map(drop),
    }
    .map_err(|e| ds(&what, e))
}

fn delete_stored(c: &Client, key: &str) -> Result<()> {
    match c.store().delete(key, None) {
        Ok(_) => Ok(()),
        Err(e) if e.is_not_found() => Ok(()),
        Err(e) => Err(ds(&format!("delete {key}"), e)),
    }
}

/// Writes a Profile the way a controller does: only when what is stored differs.
fn sync_profile(c: &Client, p: brindle_model::resources::Profile) -> Result<()> {
    let what = format!("write Profile {}", p.metadata.name);
    match c
        .get(Kind::Profile, "", &p.metadata.name)
        .map_err(|e| ds(&what, e))?
    {
        Some(Resource::Profile(old)) if old.spec == p.spec => Ok(()),
        _ => c.apply(&Resource::Profile(p)).map(drop).map_err(|e| ds(&what, e)),
    }
}

fn delete_resource(c: &Client, kind: Kind, namespace: &str, name: &str) -> Result<()> {
    match c.delete(kind, namespace, name, "") {
        Ok(_) | Err(ResourceError::NotFound(_)) => Ok(()),
        Err(e) => Err(ds(&format!("delete {kind} {name}"), e)),
    }
}

/// The address a pod asks for with `cni.projectcalico.org/ipAddrs` (a JSON list), as the
/// plugin's `IP=` argument.
fn ip_args(pod: &Pod) -> std::result::Result<String, String> {
    let Some(a) = pod.metadata.annotations.get(IP_ADDRS_ANNOTATION) else {
        return Ok(String::new());
    };
    let list: Vec<String> = serde_json::from_str(a)
        .map_err(|e| format!("annotation {IP_ADDRS_ANNOTATION}: {a:?} is not a JSON list: {e}"))?;
    match list.as_slice() {
        [] => Ok(String::new()),
        [ip] => ip
            .parse::<std::net::IpAddr>()
            .map(|ip| format!(";IP={ip}"))
            .map_err(|_| format!("annotation {IP_ADDRS_ANNOTATION}: {ip:?} is not an IP address")),
        _ => Err(format!(
            "annotation {IP_ADDRS_ANNOTATION}: the lab assigns one address per pod, got {a}"
        )),
    }
}

impl Lab {
    /// The typed client of the lab's datastore, opened from inside the first node (the only
    /// place an etcd on the fabric is reachable from; the client's threads stay there).
    pub fn client(&self) -> Result<Client> {
        let env = self.node_env(&self.plan().nodes[0]);
        let ns = brindle_netlink::NetnsFd::named(&self.plan().nodes[0].netns)?;
        ns.run(|| -> Result<Client> {
            let cfg = brindle_datastore::DatastoreConfig::resolve(&Default::default(), |k| {
                env.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone())
            })
            .map_err(|e| ds("open the lab's datastore", e))?;
            let store = brindle_datastore::open(&cfg).map_err(|e| ds("open the lab's datastore", e))?;
            Ok(Client::new(store))
        })?
    }

    /// Every reason `objs` cannot be applied (empty: it can), before anything is written.
    pub fn check_apply(&self, c: &Client, objs: &K8sObjects) -> Result<Vec<String>> {
        let mut errors = Vec::new();
        for ns in &objs.namespaces {
            if let Err(e) = workload::validate_namespace(ns) {
                errors.push(e.to_string());
            }
        }
        for sa in &objs.service_accounts {
            if let Err(e) = workload::validate_service_account(sa) {
                errors.push(e.to_string());
            }
        }
        let ns_exists = |ns: &str| -> Result<bool> {
            Ok(objs.namespaces.iter().any(|n| n.metadata.name == ns)
                || get_stored(c, &stored::namespace_key(ns), stored::decode_namespace)?.is_some())
        };
        for sa in &objs.service_accounts {
            if !ns_exists(&sa.metadata.namespace)? {
                errors.push(format!("namespaces \"{}\" not found", sa.metadata.namespace));
            }
        }
        for pod in &objs.pods {
            let (ns, name) = (&pod.metadata.namespace, &pod.metadata.name);
            if let Err(e) = workload::validate_pod(pod) {
                errors.push(e.to_string());
                continue;
            }
            if pod.spec.host_network {
                errors.push(format!(
                    "pod {ns}/{name}: spec.hostNetwork: true is not supported: a lab pod has its own network namespace"
                ));
                continue;
            }
            if let Err(e) = ip_args(pod) {
                errors.push(format!("pod {ns}/{name}: {e}"));
            }
            if !ns_exists(ns)? {
                errors.push(format!("namespaces \"{ns}\" not found"));
                continue;
            }
            let mut p = pod.clone();
            apply_pod_defaults(&mut p);
            let sa = &p.spec.service_account_name;
            let sa_exists = objs
                .service_accounts
                .iter()
                .any(|s| s.metadata.namespace == *ns && s.metadata.name == *sa)
                || sa == workload::DEFAULT_SERVICE_ACCOUNT
                || get_stored(
                    c,
                    &stored::service_account_key(ns, sa),
                    stored::decode_service_account,
                )?
                .is_some();
            if !sa_exists {
                errors.push(format!(
                    "pods \"{name}\" is forbidden: error looking up service account {ns}/{sa}: serviceaccount \"{sa}\" not found"
                ));
            }
            match get_stored(c, &stored::pod_key(ns, name), stored::decode_pod)? {
                Some((old, _)) => {
                    let mut new = p.clone();
                    if new.spec.node_name.is_empty() {
                        new.spec.node_name = old.spec.node_name.clone();
                    }
                    if new.spec != old.spec {
                        errors.push(format!(
                            "The Pod \"{name}\" is invalid: spec: Forbidden: pod updates may not change fields other than `spec.containers[*].image`,`spec.initContainers[*].image`,`spec.activeDeadlineSeconds`,`spec.tolerations` (only additions to existing tolerations),`spec.terminationGracePeriodSeconds` (allow it to be set to 1 if it was previously negative)"
                        ));
                    }
                }
                None => {
                    let node = &p.spec.node_name;
                    if !node.is_empty() && self.plan().node(node).is_none() {
                        let nodes: Vec<&str> = self.plan().nodes.iter().map(|n| n.name.as_str()).collect();
                        errors.push(format!(
                            "pod {ns}/{name}: spec.nodeName: {node} is not a node of lab {} (nodes: {})",
                            self.name(),
                            nodes.join(", ")
                        ));
                    }
                }
            }
        }
        Ok(errors)
    }

    /// Applies the namespaces then the service accounts of `objs` (kubectl's lines, e.g.
    /// `namespace/x created`). A new namespace gets its `default` service account.
    pub fn apply_namespaces(&mut self, c: &Client, objs: &K8sObjects) -> Result<Vec<String>> {
        let mut out = Vec::new();
        for ns in &objs.namespaces {
            out.push(apply_namespace(c, ns)?);
        }
        for sa in &objs.service_accounts {
            out.push(apply_service_account(c, sa)?);
        }
        Ok(out)
    }

    /// Applies pods: a new one is stored (where the CNI plugin reads it) and made through the
    /// plugin on its node (`spec.nodeName`, else the node with the fewest pods); an existing
    /// one's new labels reach its WorkloadEndpoint, as Calico's pod controller does.
    pub fn apply_pods(&mut self, c: &Client, pods: &[Pod]) -> Result<Vec<String>> {
        let mut out = Vec::new();
        for pod in pods {
            out.push(self.apply_pod(c, pod)?);
        }
        Ok(out)
    }

    fn apply_pod(&mut self, c: &Client, pod: &Pod) -> Result<String> {
        let mut pod = pod.clone();
        apply_pod_defaults(&mut pod);
        let (ns, name) = (pod.metadata.namespace.clone(), pod.metadata.name.clone());
        let key = stored::pod_key(&ns, &name);
        let recorded = self.state().pod(&format!("{ns}/{name}")).cloned();
        match get_stored(c, &key, stored::decode_pod)? {
            Some((old, rev)) => {
                pod.spec.node_name = old.spec.node_name.clone();
                pod.metadata.uid = old.metadata.uid.clone();
                pod.metadata.creation_timestamp = old.metadata.creation_timestamp.clone();
                if pod.metadata.labels == old.metadata.labels
                    && pod.metadata.annotations == old.metadata.annotations
                {
                    return Ok(format!("pod/{name} unchanged"));
                }
                put_stored(c, &key, &pod, Some(rev))?;
                if pod.metadata.labels != old.metadata.labels {
                    self.sync_pod_endpoint(c, &pod)?;
                }
                Ok(format!("pod/{name} configured"))
            }
            None if recorded.is_some() => {
                // A pod of a lab made before pods were stored: store it and sync its labels.
                pod.spec.node_name = recorded.expect("some").node;
                pod.metadata.uid = brindle_datastore::client::new_uid();
                pod.metadata.creation_timestamp = now();
                put_stored(c, &key, &pod, None)?;
                self.sync_pod_endpoint(c, &pod)?;
                Ok(format!("pod/{name} configured"))
            }
            None => {
                let node = self.place_pod(&pod.spec.node_name)?;
                pod.spec.node_name = node.clone();
                pod.metadata.uid = brindle_datastore::client::new_uid();
                pod.metadata.creation_timestamp = now();
                let extra = ip_args(&pod).map_err(|e| Error::Invalid(format!("pod {ns}/{name}: {e}")))?;
                let extra = format!("{extra};K8S_POD_UID={}", pod.metadata.uid);
                // Stored before the ADD: the plugin reads it to write a complete endpoint.
                put_stored(c, &key, &pod, None)?;
                let labels = endpoint_labels(&pod);
                if let Err(e) = self.attach_k8s_pod(&ns, &name, &node, &labels, &extra) {
                    let _ = delete_stored(c, &key);
                    return Err(e);
                }
                // The plugin writes the endpoint complete from the stored Pod; this is the pod
                // controller's resync, a no-op then (and the fields' writer where the plugin
                // does not read Pods).
                self.sync_pod_endpoint(c, &pod)?;
                Ok(format!("pod/{name} created"))
            }
        }
    }

    /// Calico's pod controller: the endpoint's labels (and what else the Pod decides: profiles,
    /// service account, named ports) follow the Pod's. Writes only when they differ, so after a
    /// plugin that wrote the endpoint complete at ADD this reads and changes nothing.
    pub(crate) fn sync_pod_endpoint(&mut self, c: &Client, pod: &Pod) -> Result<()> {
        let (ns, name) = (&pod.metadata.namespace, &pod.metadata.name);
        let want = workload::pod_to_workload_endpoint(pod, &pod.spec.node_name)
            .map_err(|e| Error::Invalid(e.to_string()))?;
        let what = format!(
            "update WorkloadEndpoint {ns}/{} of pod {ns}/{name}",
            want.metadata.name
        );
        let same = |w: &WorkloadEndpoint| {
            w.metadata.labels == want.metadata.labels
                && w.spec.profiles == want.spec.profiles
                && w.spec.service_account_name == want.spec.service_account_name
                && w.spec.ports == want.spec.ports
        };
        let mut done = false;
        for _ in 0..10 {
            let current = c
                .get(Kind::WorkloadEndpoint, ns, &want.metadata.name)
                .map_err(|e| ds(&what, e))?;
            let Some(Resource::WorkloadEndpoint(mut wep)) = current else {
                return Err(ds(&what, "the pod's endpoint does not exist"));
            };
            if same(&wep) {
                done = true;
                break;
            }
            wep.metadata.labels = want.metadata.labels.clone();
            wep.spec.profiles = want.spec.profiles.clone();
            wep.spec.service_account_name = want.spec.service_account_name.clone();
            wep.spec.ports = want.spec.ports.clone();
            match c.update(&Resource::WorkloadEndpoint(wep)) {
                Ok(_) => {
                    done = true;
                    break;
                }
                Err(e) if e.is_conflict() || matches!(e, ResourceError::OutOfDate { .. }) => continue,
                Err(e) => return Err(ds(&what, e)),
            }
        }
        if !done {
            return Err(ds(&what, "still changing under us after 10 tries"));
        }
        if let Some(p) = self
            .state_mut()
            .pods
            .iter_mut()
            .find(|p| p.namespace == *ns && p.name == *name)
        {
            p.labels = want.metadata.labels.clone();
        }
        self.save()
    }

    /// Every reason `objs` cannot be deleted (an object that does not exist, the `default`
    /// namespace), before anything is deleted.
    pub fn check_delete(&self, c: &Client, objs: &K8sObjects) -> Result<Vec<String>> {
        let mut errors = Vec::new();
        for ns in &objs.namespaces {
            let name = &ns.metadata.name;
            if name == "default" {
                errors.push("namespaces \"default\" is forbidden: this namespace may not be deleted".into());
            } else if get_stored(c, &stored::namespace_key(name), stored::decode_namespace)?.is_none() {
                errors.push(format!("namespaces \"{name}\" not found"));
            }
        }
        for sa in &objs.service_accounts {
            let m = &sa.metadata;
            if get_stored(
                c,
                &stored::service_account_key(&m.namespace, &m.name),
                stored::decode_service_account,
            )?
            .is_none()
            {
                errors.push(format!("serviceaccounts \"{}\" not found", m.name));
            }
        }
        for pod in &objs.pods {
            let m = &pod.metadata;
            if self.state().pod(&format!("{}/{}", m.namespace, m.name)).is_none() {
                errors.push(format!("pods \"{}\" not found", m.name));
            }
        }
        Ok(errors)
    }

    /// Deletes pods: the plugin's DEL, their namespaces, the stored objects.
    pub fn delete_pods(&mut self, c: &Client, pods: &[Pod]) -> Result<Vec<String>> {
        let mut out = Vec::new();
        for pod in pods {
            let m = &pod.metadata;
            self.delete_pod(c, &m.namespace, &m.name)?;
            out.push(format!("pod \"{}\" deleted", m.name));
        }
        Ok(out)
    }

    fn delete_pod(&mut self, c: &Client, namespace: &str, name: &str) -> Result<()> {
        self.remove_pod(namespace, name)?;
        delete_stored(c, &stored::pod_key(namespace, name))
    }

    /// Deletes service accounts, then namespaces with everything in them Kubernetes deletes
    /// (pods, service accounts, NetworkPolicies, so their `knp.default.` policies) and their
    /// `kns.` Profile.
    pub fn delete_namespaces(&mut self, c: &Client, objs: &K8sObjects) -> Result<Vec<String>> {
        let mut out = Vec::new();
        for sa in &objs.service_accounts {
            let m = &sa.metadata;
            delete_service_account(c, &m.namespace, &m.name)?;
            out.push(format!("serviceaccount \"{}\" deleted", m.name));
        }
        for ns in &objs.namespaces {
            let name = ns.metadata.name.clone();
            let pods: Vec<String> = self
                .state()
                .pods
                .iter()
                .filter(|p| p.namespace == name)
                .map(|p| p.name.clone())
                .collect();
            for p in pods {
                self.delete_pod(c, &name, &p)?;
            }
            let accounts = c
                .store()
                .list(&stored::service_accounts_prefix(&name))
                .map_err(|e| ds("list service accounts", e))?;
            for kv in accounts.items {
                if let Some(sa) = kv.key.rsplit('/').next() {
                    delete_service_account(c, &name, sa)?;
                }
            }
            let policies = c
                .list(Kind::NetworkPolicy, Some(&name))
                .map_err(|e| ds("list NetworkPolicies", e))?;
            for p in policies.items {
                let pname = &p.metadata().name;
                if pname.starts_with(K8S_POLICY_PREFIX) {
                    delete_resource(c, Kind::NetworkPolicy, &name, pname)?;
                }
            }
            delete_resource(c, Kind::Profile, "", &namespace_profile_name(&name))?;
            delete_stored(c, &stored::namespace_key(&name))?;
            out.push(format!("namespace \"{name}\" deleted"));
        }
        Ok(out)
    }

    /// What `lab up` stores for its own pods before making them: the `default` namespace (and
    /// its service account) and a Pod per seed pod on its node, so the plugin writes them
    /// complete endpoints like any other pod.
    pub(crate) fn store_seed_objects(&self) -> Result<()> {
        let c = self.client()?;
        apply_namespace(
            &c,
            &Namespace {
                metadata: brindle_model::ObjectMeta::named("default"),
                ..Default::default()
            },
        )?;
        for p in &self.plan().pods {
            let mut pod = seed_pod(&p.namespace, &p.name, &p.node);
            pod.metadata.uid = brindle_datastore::client::new_uid();
            pod.metadata.creation_timestamp = now();
            let key = stored::pod_key(&p.namespace, &p.name);
            if get_stored(&c, &key, stored::decode_pod)?.is_none() {
                put_stored(&c, &key, &pod, None)?;
            }
        }
        Ok(())
    }
}

impl Lab {
    /// The pod controller's resync for the seed's pods, once made (their endpoints' fields as
    /// their stored Pods say; their labels recorded for selectors over pods).
    pub(crate) fn sync_seed_endpoints(&mut self) -> Result<()> {
        let c = self.client()?;
        let pods: Vec<(String, String, String)> = self
            .state()
            .pods
            .iter()
            .map(|p| (p.namespace.clone(), p.name.clone(), p.node.clone()))
            .collect();
        for (ns, name, node) in pods {
            self.sync_pod_endpoint(&c, &seed_pod(&ns, &name, &node))?;
        }
        Ok(())
    }
}

/// Stores a namespace and writes its `kns.` Profile; a new namespace gets its `default`
/// service account (as the service-account controller makes it).
fn apply_namespace(c: &Client, ns: &Namespace) -> Result<String> {
    let mut ns = ns.clone();
    apply_namespace_defaults(&mut ns);
    let name = ns.metadata.name.clone();
    let key = stored::namespace_key(&name);
    match get_stored(c, &key, stored::decode_namespace)? {
        Some((old, rev)) => {
            ns.metadata.uid = old.metadata.uid.clone();
            ns.metadata.creation_timestamp = old.metadata.creation_timestamp.clone();
            if labels_and_annotations(&ns.metadata) == labels_and_annotations(&old.metadata) {
                // Re-applied unchanged; the profile is written again in case it was lost.
                sync_profile(c, namespace_to_profile(&ns))?;
                return Ok(format!("namespace/{name} unchanged"));
            }
            put_stored(c, &key, &ns, Some(rev))?;
            sync_profile(c, namespace_to_profile(&ns))?;
            Ok(format!("namespace/{name} configured"))
        }
        None => {
            ns.metadata.uid = brindle_datastore::client::new_uid();
            ns.metadata.creation_timestamp = now();
            put_stored(c, &key, &ns, None)?;
            sync_profile(c, namespace_to_profile(&ns))?;
            let sa = default_service_account(&name);
            if get_stored(
                c,
                &stored::service_account_key(&name, &sa.metadata.name),
                stored::decode_service_account,
            )?
            .is_none()
            {
                apply_service_account(c, &sa)?;
            }
            Ok(format!("namespace/{name} created"))
        }
    }
}

fn labels_and_annotations(
    m: &brindle_model::ObjectMeta,
) -> (&BTreeMap<String, String>, &BTreeMap<String, String>) {
    (&m.labels, &m.annotations)
}

/// Stores a service account and writes its `ksa.` Profile.
fn apply_service_account(c: &Client, sa: &ServiceAccount) -> Result<String> {
    let mut sa = sa.clone();
    let (ns, name) = (sa.metadata.namespace.clone(), sa.metadata.name.clone());
    let key = stored::service_account_key(&ns, &name);
    let profile = service_account_to_profile(&sa);
    match get_stored(c, &key, stored::decode_service_account)? {
        Some((old, rev)) => {
            sa.metadata.uid = old.metadata.uid.clone();
            sa.metadata.creation_timestamp = old.metadata.creation_timestamp.clone();
            sync_profile(c, profile.clone())?;
            if labels_and_annotations(&sa.metadata) == labels_and_annotations(&old.metadata) {
                return Ok(format!("serviceaccount/{name} unchanged"));
            }
            put_stored(c, &key, &sa, Some(rev))?;
            Ok(format!("serviceaccount/{name} configured"))
        }
        None => {
            sa.metadata.uid = brindle_datastore::client::new_uid();
            sa.metadata.creation_timestamp = now();
            put_stored(c, &key, &sa, None)?;
            sync_profile(c, profile.clone())?;
            Ok(format!("serviceaccount/{name} created"))
        }
    }
}

fn delete_service_account(c: &Client, namespace: &str, name: &str) -> Result<()> {
    delete_resource(
        c,
        Kind::Profile,
        "",
        &service_account_profile_name(namespace, name),
    )?;
    delete_stored(c, &stored::service_account_key(namespace, name))
}

/// The Pod `lab up` stores for one of its own pods: no labels, one container, on its node.
pub(crate) fn seed_pod(namespace: &str, name: &str, node: &str) -> Pod {
    let mut pod = Pod {
        metadata: brindle_model::ObjectMeta::namespaced(namespace, name),
        ..Default::default()
    };
    pod.spec.node_name = node.to_string();
    pod.spec.containers.push(brindle_model::k8s::Container {
        name: "pod".into(),
        ..Default::default()
    });
    apply_pod_defaults(&mut pod);
    pod
}

/// The labels of a pod's WorkloadEndpoint (its own, `projectcalico.org/namespace`,
/// `…/orchestrator`, `…/serviceaccount`), as the lab records them for selectors over pods.
pub fn endpoint_labels(pod: &Pod) -> BTreeMap<String, String> {
    workload::pod_to_workload_endpoint(pod, &pod.spec.node_name)
        .map(|w: WorkloadEndpoint| w.metadata.labels)
        .unwrap_or_else(|_| pod.metadata.labels.clone())
}
