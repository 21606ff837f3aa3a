//! ClusterInformation (`api/pkg/apis/projectcalico/v3/clusterinfo.go`): the `default` object
//! holding the cluster GUID, type, version and the datastore-ready flag.

use serde::{Deserialize, Serialize};

use super::resource;
use crate::meta::{ApiVersion, KindTag, ObjectMeta};

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ClusterInformation {
    #[serde(default)]
    pub kind: KindTag<ClusterInformation>,
    #[serde(default)]
    pub api_version: ApiVersion,
    #[serde(default)]
    pub metadata: ObjectMeta,
    #[serde(default)]
    pub spec: ClusterInformationSpec,
}
resource!(ClusterInformation, ClusterInformationSpec);

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClusterInformationSpec {
    #[serde(default, rename = "clusterGUID", skip_serializing_if = "String::is_empty")]
    pub cluster_guid: String,
    #[serde(default, rename = "clusterType", skip_serializing_if = "String::is_empty")]
    pub cluster_type: String,
    #[serde(default, rename = "calicoVersion", skip_serializing_if = "String::is_empty")]
    pub calico_version: String,
    #[serde(default, rename = "datastoreReady", skip_serializing_if = "Option::is_none")]
    pub datastore_ready: Option<bool>,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub variant: String,
}
