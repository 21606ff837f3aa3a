//! The manifest loader on arbitrary bytes: it must return documents or an error, never panic.
//! Calico resources that load must validate (ok or error) and serialise and read back; the
//! Kubernetes objects (NetworkPolicy, Namespace, ServiceAccount, Pod) must convert (ok or a
//! Kubernetes-worded error), and a converted policy must be one Calico's validation accepts.
#![no_main]

use brindle_model::k8s::{self, workload};
use brindle_model::{Document, Resource};
use libfuzzer_sys::fuzz_target;

fn round_trip(mut r: Resource) {
    let ok = brindle_model::validate(&r).is_ok();
    if ok {
        brindle_model::apply_defaults(&mut r);
    }
    let json = serde_json::to_vec(&r).expect("resources serialise");
    let back = Resource::from_json(r.kind(), &json).expect("own JSON reads back");
    assert_eq!(back, r);
    let mut stored = brindle_model::stored::to_stored(&r);
    brindle_model::stored::from_stored(&mut stored);
    assert_eq!(stored.name(), r.name());
}

fuzz_target!(|data: &[u8]| {
    // The Calico-only loader agrees with the general one on what it accepts.
    if let Ok(resources) = brindle_model::load_bytes("fuzz", data) {
        for r in resources {
            round_trip(r);
        }
    }
    let Ok(docs) = brindle_model::load_documents_bytes("fuzz", data) else {
        return;
    };
    for d in docs {
        match d {
            Document::Calico(r) => round_trip(r),
            Document::NetworkPolicy(np) => {
                if let Ok(p) = k8s::network_policy_to_calico(&np) {
                    let r = Resource::NetworkPolicy(p);
                    if let Err(e) = brindle_model::validate(&r) {
                        // Only a name made too long by the knp.default. prefix may fail.
                        assert!(
                            e.fields.iter().all(|f| f.field.ends_with("Metadata.Name")),
                            "converted policy invalid: {e}"
                        );
                    }
                    round_trip(r);
                }
            }
            Document::Namespace(ns) => {
                if workload::validate_namespace(&ns).is_ok() {
                    round_trip(Resource::Profile(k8s::namespace_to_profile(&ns)));
                }
            }
            Document::ServiceAccount(sa) => {
                if workload::validate_service_account(&sa).is_ok() {
                    round_trip(Resource::Profile(k8s::service_account_to_profile(&sa)));
                }
            }
            Document::Pod(pod) => {
                if let Ok(wep) = k8s::pod_to_workload_endpoint(&pod, "node1") {
                    round_trip(Resource::WorkloadEndpoint(wep));
                }
            }
        }
    }
});
