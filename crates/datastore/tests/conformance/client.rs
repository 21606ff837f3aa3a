//! The typed client over each backend: Calico's resource semantics and the JSON helpers.

use std::sync::Arc;

use brindle_datastore::client::json;
use brindle_datastore::{Client, Datastore, ResourceError, ResourceEvent};
use brindle_model::{Kind, Resource, load_str};
use serde::{Deserialize, Serialize};

use crate::fixture::Fixture;

const POOL_KEY: &str = "/calico/resources/v3/projectcalico.org/ippools/default-ipv4-ippool";

fn pool(cidr: &str) -> Resource {
    let yaml = format!(
        "apiVersion: projectcalico.org/v3\nkind: IPPool\nmetadata:\n  name: default-ipv4-ippool\nspec:\n  cidr: {cidr}\n  ipipMode: Always\n  natOutgoing: true\n"
    );
    load_str("test", &yaml).unwrap().remove(0)
}

fn client(f: &Fixture) -> Client {
    Client::new(f.second_client())
}

/// Create sets uid and creationTimestamp, stores Calico's JSON without resourceVersion, and the
/// resourceVersion read back is the key's revision in decimal.
pub fn create_stores_calicos_json_and_versions_by_revision(f: &mut Fixture) {
    let c = client(f);
    let created = c.create(&pool("10.65.0.0/16")).unwrap();
    let meta = created.metadata();
    assert_eq!(meta.uid.len(), 36, "uid {:?}", meta.uid);
    let ts = meta.creation_timestamp.as_deref().unwrap();
    assert!(ts.ends_with('Z') && ts.len() == 20, "creationTimestamp {ts:?}");

    let raw = f
        .store()
        .get(POOL_KEY)
        .unwrap()
        .expect("stored under Calico's key");
    assert_eq!(meta.resource_version, raw.revision.to_string());
    let stored: serde_json::Value = serde_json::from_slice(&raw.value).unwrap();
    assert_eq!(stored["kind"], "IPPool");
    assert_eq!(stored["apiVersion"], "projectcalico.org/v3");
    assert_eq!(stored["spec"]["cidr"], "10.65.0.0/16");
    assert_eq!(stored["metadata"]["uid"], meta.uid.as_str());
    assert!(stored["metadata"].get("resourceVersion").is_none(), "{stored}");

    let got = c.must_get(Kind::IPPool, "", "default-ipv4-ippool").unwrap();
    assert_eq!(got, created);
    let listed = c.list(Kind::IPPool, None).unwrap();
    assert_eq!(listed.items, std::slice::from_ref(&created));
    assert!(listed.revision >= raw.revision);
    assert!(listed.undecodable.is_empty());
    match c.create(&pool("10.66.0.0/16")).unwrap_err() {
        e @ ResourceError::AlreadyExists(_) => assert_eq!(
            e.to_string(),
            "resource already exists: IPPool(default-ipv4-ippool) with error: <nil>"
        ),
        other => panic!("expected AlreadyExists, got {other:?}"),
    }
}

/// A value a newer Calico wrote (fields this version does not know): the strict client
/// refuses it naming the field, the lenient one (the agent's) reads it without them.
pub fn lenient_reads_drop_unknown_fields(f: &mut Fixture) {
    let newer =
        br#"{"kind":"IPPool","apiVersion":"projectcalico.org/v3","metadata":{"name":"default-ipv4-ippool"},
        "spec":{"cidr":"10.65.0.0/16","ipipMode":"Always","someNewerSetting":true}}"#;
    f.store().create(POOL_KEY, newer).unwrap();
    let err = client(f)
        .get(Kind::IPPool, "", "default-ipv4-ippool")
        .unwrap_err();
    assert!(err.to_string().contains("someNewerSetting"), "{err}");
    let c = Client::lenient(f.second_client());
    let Some(Resource::IPPool(p)) = c.get(Kind::IPPool, "", "default-ipv4-ippool").unwrap() else {
        panic!("no pool");
    };
    assert_eq!(p.spec.cidr, "10.65.0.0/16");
    assert!(!p.metadata.resource_version.is_empty());
    let listing = c.list(Kind::IPPool, None).unwrap();
    assert_eq!(listing.items.len(), 1);
    assert!(listing.undecodable.is_empty(), "{:?}", listing.undecodable);
    // The strict client lists it as a row it cannot decode, naming the field.
    let strict = client(f).list(Kind::IPPool, None).unwrap();
    assert!(strict.items.is_empty());
    assert!(
        strict.undecodable[0].error.contains("someNewerSetting"),
        "{:?}",
        strict.undecodable
    );
}

/// Update keeps uid and creation time, and compare-and-swaps on the given resourceVersion.
pub fn update_and_delete_honour_resource_version(f: &mut Fixture) {
    let c = client(f);
    let created = c.create(&pool("10.65.0.0/16")).unwrap();
    let mut changed = created.clone();
    changed.metadata_mut().labels.insert("zone".into(), "a".into());
    changed.metadata_mut().uid = "overwritten-by-user".into();
    let updated = c.update(&changed).unwrap();
    assert_eq!(updated.metadata().uid, created.metadata().uid);
    assert_eq!(
        updated.metadata().creation_timestamp,
        created.metadata().creation_timestamp
    );
    assert_eq!(updated.metadata().labels["zone"], "a");
    assert!(
        updated.metadata().resource_version.parse::<i64>().unwrap()
            > created.metadata().resource_version.parse::<i64>().unwrap()
    );
    // The stale version (the created one) is refused, naming both versions.
    let e = c.update(&changed).unwrap_err();
    assert!(matches!(e, ResourceError::OutOfDate { .. }), "{e:?}");
    assert!(
        e.to_string().contains(&format!(
            "resource version '{}' is out of date (latest: {})",
            created.metadata().resource_version,
            updated.metadata().resource_version
        )),
        "{e}"
    );
    let e = c
        .delete(
            Kind::IPPool,
            "",
            "default-ipv4-ippool",
            &created.metadata().resource_version,
        )
        .unwrap_err();
    assert!(matches!(e, ResourceError::OutOfDate { .. }), "{e:?}");
    let deleted = c
        .delete(
            Kind::IPPool,
            "",
            "default-ipv4-ippool",
            &updated.metadata().resource_version,
        )
        .unwrap();
    assert_eq!(deleted, updated);
    assert_eq!(
        c.delete(Kind::IPPool, "", "default-ipv4-ippool", "")
            .unwrap_err()
            .to_string(),
        "resource does not exist: IPPool(default-ipv4-ippool) with error: <nil>"
    );
}

/// apply creates, then replaces; ClusterInformation is read-only for users.
pub fn apply_creates_then_replaces(f: &mut Fixture) {
    let c = client(f);
    let first = c.apply(&pool("10.65.0.0/16")).unwrap();
    let mut again = pool("10.65.0.0/16");
    again.metadata_mut().labels.insert("x".into(), "y".into());
    let second = c.apply(&again).unwrap();
    assert_eq!(second.metadata().uid, first.metadata().uid);
    assert_eq!(second.metadata().labels["x"], "y");
    let info = load_str(
        "t",
        "apiVersion: projectcalico.org/v3\nkind: ClusterInformation\nmetadata:\n  name: default\nspec: {}\n",
    )
    .unwrap()
    .remove(0);
    assert!(matches!(c.apply(&info), Err(ResourceError::ReadOnly { .. })));
    c.create_unchecked(&info).unwrap();
}

/// A typed watch decodes puts and names deletes.
pub fn typed_watch_follows_a_kind(f: &mut Fixture) {
    let c = client(f);
    let rev = c.list(Kind::IPPool, None).unwrap().revision;
    let w = c.watch(Kind::IPPool, None, rev + 1).unwrap();
    let created = c.create(&pool("10.65.0.0/16")).unwrap();
    f.store()
        .create("/calico/resources/v3/projectcalico.org/nodes/n1", b"{}")
        .unwrap();
    let deleted = c.delete(Kind::IPPool, "", "default-ipv4-ippool", "").unwrap();
    let next = || {
        w.recv_timeout(std::time::Duration::from_secs(10))
            .unwrap()
            .unwrap()
            .unwrap()
    };
    assert_eq!(next(), ResourceEvent::Put(Box::new(created)));
    match next() {
        ResourceEvent::Delete {
            kind,
            namespace,
            name,
            ..
        } => assert_eq!(
            (kind, namespace.as_str(), name.as_str()),
            (Kind::IPPool, "", "default-ipv4-ippool")
        ),
        other => panic!("expected a delete, got {other:?}"),
    }
    drop(deleted);
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Counter {
    n: u64,
}

/// JSON objects under raw keys: typed get/list/create/update, modify with retries, and a value
/// that is not the expected JSON reported as corrupt, naming store and key.
pub fn json_objects_with_revisions(f: &mut Fixture) {
    let s: Arc<dyn Datastore> = f.second_client();
    let key = "/calico/ipam/v2/handle/k8s-pod-network.abc";
    let rev = json::create(s.as_ref(), key, &Counter { n: 1 }).unwrap();
    let got = json::get::<Counter>(s.as_ref(), key).unwrap().unwrap();
    assert_eq!((got.value.n, got.revision), (1, rev));
    let stale = got.revision;
    json::update(s.as_ref(), key, &Counter { n: 2 }, got.revision).unwrap();
    assert!(
        json::update(s.as_ref(), key, &Counter { n: 3 }, stale)
            .unwrap_err()
            .is_conflict()
    );

    std::thread::scope(|scope| {
        for _ in 0..4 {
            scope.spawn(|| {
                for _ in 0..25 {
                    json::modify::<Counter>(s.as_ref(), key, 1000, |c| {
                        c.n += 1;
                        true
                    })
                    .unwrap()
                    .unwrap();
                }
            });
        }
    });
    assert_eq!(
        json::get::<Counter>(s.as_ref(), key).unwrap().unwrap().value.n,
        102
    );
    assert!(
        json::modify::<Counter>(s.as_ref(), "/calico/ipam/v2/handle/none", 3, |_| true)
            .unwrap()
            .is_none()
    );

    s.create("/calico/ipam/v2/handle/bad", b"not json").unwrap();
    let e = json::list::<Counter>(s.as_ref(), "/calico/ipam/v2/handle/").unwrap_err();
    let text = e.to_string();
    assert!(
        text.contains(&s.describe()) && text.contains("/calico/ipam/v2/handle/bad"),
        "{text}"
    );
}

/// One row that does not decode (here: not JSON, and JSON of the wrong shape) fails neither a
/// listing of its kind nor the other rows: it is named, and deleting it by name removes it.
pub fn an_undecodable_row_stays_local(f: &mut Fixture) {
    let c = client(f);
    let good = c.create(&pool("10.65.0.0/16")).unwrap();
    let bad_key = "/calico/resources/v3/projectcalico.org/ippools/damaged";
    f.store().create(bad_key, b"\x00not json").unwrap();
    let wrong = "/calico/resources/v3/projectcalico.org/ippools/wrong-shape";
    f.store()
        .create(wrong, br#"{"kind":"IPPool","apiVersion":"projectcalico.org/v3","metadata":{"name":"wrong-shape"},"spec":{"cidr":12}}"#)
        .unwrap();
    let listed = c.list(Kind::IPPool, None).unwrap();
    assert_eq!(listed.items, std::slice::from_ref(&good));
    let named: Vec<(&str, &str)> = listed
        .undecodable
        .iter()
        .map(|u| (u.key.as_str(), u.identifier.as_str()))
        .collect();
    assert_eq!(
        named,
        [(bad_key, "IPPool(damaged)"), (wrong, "IPPool(wrong-shape)")]
    );
    assert!(
        listed.undecodable[0].error.contains(bad_key),
        "{:?}",
        listed.undecodable[0]
    );
    assert!(
        listed.undecodable[1]
            .error
            .contains("stored value is not a valid IPPool")
    );

    // Getting it by name says what is wrong; deleting it by name works.
    let e = c.get(Kind::IPPool, "", "damaged").unwrap_err();
    assert!(matches!(e, ResourceError::Corrupt(..)), "{e:?}");
    let deleted = c.delete(Kind::IPPool, "", "damaged", "").unwrap();
    assert_eq!(deleted.identifier(), "IPPool(damaged)");
    c.delete(Kind::IPPool, "", "wrong-shape", "").unwrap();
    let listed = c.list(Kind::IPPool, None).unwrap();
    assert_eq!((listed.items, listed.undecodable), (vec![good], vec![]));
}

fn policy(yaml_spec: &str) -> Resource {
    let yaml = format!(
        "apiVersion: projectcalico.org/v3\nkind: NetworkPolicy\nmetadata:\n  name: allow-web\n  namespace: prod\nspec:\n{yaml_spec}"
    );
    load_str("test", &yaml).unwrap().remove(0)
}

/// Policies as Calico's client writes them: the tier must exist (the built-in ones are created
/// on demand), tier/label/types defaulted, the plain name as key with v3.32's name annotation
/// (hidden on read); tiers' delete rules; the built-in default-allow profile.
pub fn policies_tiers_and_the_builtin_profile(f: &mut Fixture) {
    let c = client(f);
    let p = policy("  selector: app == 'web'\n  ingress:\n  - action: Allow\n");
    assert_eq!(
        c.create(&p).unwrap_err().to_string(),
        "resource does not exist: Tier(default) with error: <nil>"
    );
    c.ensure_builtin_tiers().unwrap();
    c.ensure_builtin_tiers().unwrap();
    let tiers = c.list(Kind::Tier, None).unwrap().items;
    let tiers: Vec<String> = tiers
        .iter()
        .map(|t| serde_json::to_string(&t.to_value()["spec"]).unwrap())
        .collect();
    assert_eq!(
        tiers,
        [
            r#"{"order":1000000,"defaultAction":"Deny"}"#,
            r#"{"order":1000,"defaultAction":"Pass"}"#,
            r#"{"order":10000000,"defaultAction":"Pass"}"#,
        ]
    );

    let created = c.create(&p).unwrap();
    let raw = f
        .store()
        .get("/calico/resources/v3/projectcalico.org/networkpolicies/prod/allow-web")
        .unwrap()
        .expect("stored under the plain name");
    let stored: serde_json::Value = serde_json::from_slice(&raw.value).unwrap();
    assert_eq!(
        stored["metadata"]["annotations"]["projectcalico.org/metadata"],
        r#"{"name":"allow-web"}"#
    );
    assert_eq!(stored["metadata"]["labels"]["projectcalico.org/tier"], "default");
    assert_eq!(
        serde_json::to_string(&stored["spec"]).unwrap(),
        r#"{"tier":"default","ingress":[{"action":"Allow"}],"selector":"app == 'web'","types":["Ingress"]}"#
    );
    let got = c.must_get(Kind::NetworkPolicy, "prod", "allow-web").unwrap();
    assert_eq!(got, created);
    assert!(got.metadata().annotations.is_empty(), "{:?}", got.metadata());
    // An update without the label gets it back.
    let mut changed = got.clone();
    changed.metadata_mut().labels.clear();
    let updated = c.update(&changed).unwrap();
    assert_eq!(updated.metadata().labels["projectcalico.org/tier"], "default");

    let in_tier = policy("  tier: security\n  selector: all()\n");
    assert_eq!(
        c.create(&in_tier).unwrap_err().to_string(),
        "resource does not exist: Tier(security) with error: <nil>"
    );
    let tier = load_str(
        "t",
        "apiVersion: projectcalico.org/v3\nkind: Tier\nmetadata:\n  name: security\nspec:\n  order: 100\n",
    )
    .unwrap()
    .remove(0);
    c.create(&tier).unwrap();
    let mut in_tier = in_tier;
    in_tier.metadata_mut().name = "security.audit".into();
    c.create(&in_tier).unwrap();
    assert_eq!(
        c.delete(Kind::Tier, "", "security", "").unwrap_err().to_string(),
        "operation delete is not supported on security: Cannot delete a non-empty tier"
    );
    assert_eq!(
        c.delete(Kind::Tier, "", "default", "").unwrap_err().to_string(),
        "operation Delete is not supported on default: Cannot delete default tier"
    );
    c.delete(Kind::NetworkPolicy, "prod", "security.audit", "")
        .unwrap();
    c.delete(Kind::Tier, "", "security", "").unwrap();

    let profiles = c.list(Kind::Profile, None).unwrap().items;
    let names: Vec<&str> = profiles.iter().map(Resource::name).collect();
    assert_eq!(names, ["projectcalico-default-allow"]);
    let p = c
        .must_get(Kind::Profile, "", "projectcalico-default-allow")
        .unwrap();
    assert_eq!(
        serde_json::to_string(&p.to_value()["spec"]).unwrap(),
        r#"{"ingress":[{"action":"Allow"}],"egress":[{"action":"Allow"}]}"#
    );
    assert_eq!(
        c.delete(Kind::Profile, "", "projectcalico-default-allow", "")
            .unwrap_err()
            .to_string(),
        "operation delete is not supported on Profile(projectcalico-default-allow): the built-in profile is not stored and cannot be changed"
    );
}
