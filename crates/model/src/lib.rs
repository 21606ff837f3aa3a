//! Calico `projectcalico.org/v3`-compatible resources: types, defaults, validation, selectors,
//! datastore keys and manifest loading. Pure: no I/O, no clocks, no sockets.
//!
//! Module map:
//! - [`kind`]: the kinds ([`Kind`]) with Calico's names, plurals, scope and CLI aliases.
//! - [`meta`]: `ObjectMeta`/`ListMeta`, the `kind`/`apiVersion` header fields, RFC 3339 times.
//! - [`resources`]: one module per kind (IPPool, BGPConfiguration, BGPPeer, BGPFilter, Node,
//!   FelixConfiguration, WorkloadEndpoint, ClusterInformation, IPAMConfiguration, Profile,
//!   NetworkPolicy and GlobalNetworkPolicy, NetworkSet and GlobalNetworkSet, Tier), the policy
//!   rule types (`policy_common`), the [`Resource`] enum over them and the `…List` types. JSON
//!   field names, order and omission follow Calico's Go types; unknown fields are rejected.
//! - [`gofloat`]: Go's JSON form of a float64 (a policy's or tier's `order`).
//! - [`numorstring`], [`duration`]: Calico's number-or-string scalars and Go durations.
//! - [`lenient`]: decoding that drops (and names) fields this version does not know, for
//!   long-running readers of the datastore; the CLI stays strict.
//! - [`ipam`]: the IPAM backend objects (AllocationBlock, BlockAffinity, IPAMHandle,
//!   IPAMConfig) with Calico's exact etcd JSON.
//! - [`k8s`]: Kubernetes NetworkPolicy, Namespace, ServiceAccount and Pod inputs and the
//!   conversions Calico's controllers and CNI plugin make from them (`knp.default.*` policies,
//!   `kns.*`/`ksa.*` profiles, endpoint labels and named ports).
//! - [`keys`]: Calico's etcd key layout, both directions.
//! - [`stored`]: where the stored form differs from the API form (policy names, v3.32).
//! - [`defaults`]: defaults written on create and the effective defaults (AS 64512, mesh on).
//! - [`validate`]: Calico's validation rules and messages; every error names kind, name, field.
//! - [`selector`]: Calico's label selector language (parse, evaluate, canonical text).
//! - [`load`]: manifests (single or multi-document YAML, JSON, lists, `…List` kinds), Calico
//!   resources and, as [`Document`]s, the Kubernetes objects of [`k8s`]; read a document at a
//!   time within [`Limits`] (depth, document size, stream length).
//! - [`error`]: the error types.
//!
//! No RFCs are implemented here; the reference is Calico's own API (`api/pkg/apis/projectcalico/v3`,
//! `libcalico-go`) and its resource reference
//! (<https://docs.tigera.io/calico/latest/reference/resources/overview>).

#![forbid(unsafe_code)]

pub mod defaults;
pub mod duration;
pub mod error;
pub mod gofloat;
pub mod ipam;
pub mod k8s;
pub mod keys;
pub mod kind;
pub mod lenient;
pub mod load;
pub mod meta;
pub mod numorstring;
pub mod resources;
pub mod selector;
pub mod stored;
pub mod validate;

pub use defaults::apply_defaults;
pub use error::{FieldError, KeyError, LoadError, SelectorError, ValidationError};
pub use keys::Key;
pub use kind::Kind;
pub use load::{
    Document, Limits, Loader, load_bytes, load_documents_bytes, load_documents_str, load_reader, load_str,
};
pub use meta::{API_VERSION, ListMeta, ObjectMeta};
pub use resources::{CalicoResource, List, Resource, ResourceList};
pub use selector::Selector;
pub use validate::{validate, validate_ippool_create, validate_ippool_update};
