//! IPAMConfiguration (`api/pkg/apis/projectcalico/v3/ipamconfig.go`): the v3 face of the IPAM
//! settings, name `default`. (The IPAM code itself reads the backend object
//! [`crate::ipam::IpamConfig`] at `/calico/ipam/v2/config`.)

use serde::{Deserialize, Serialize};

use super::resource;
use crate::meta::{ApiVersion, KindTag, ObjectMeta};

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct IPAMConfiguration {
    #[serde(default)]
    pub kind: KindTag<IPAMConfiguration>,
    #[serde(default)]
    pub api_version: ApiVersion,
    #[serde(default)]
    pub metadata: ObjectMeta,
    #[serde(default)]
    pub spec: IPAMConfigurationSpec,
}
resource!(IPAMConfiguration, IPAMConfigurationSpec);

fn is_zero_i32(n: &i32) -> bool {
    *n == 0
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct IPAMConfigurationSpec {
    #[serde(default)]
    pub strict_affinity: bool,
    #[serde(default, skip_serializing_if = "is_zero_i32")]
    pub max_blocks_per_host: i32,
    #[serde(default = "yes")]
    pub auto_allocate_blocks: bool,
    #[serde(
        default,
        rename = "kubeVirtVMAddressPersistence",
        skip_serializing_if = "Option::is_none"
    )]
    pub kube_virt_vm_address_persistence: Option<String>,
    #[serde(default, skip_serializing_if = "is_zero_i32")]
    pub ip_cooldown_seconds: i32,
}

fn yes() -> bool {
    true
}

impl Default for IPAMConfigurationSpec {
    /// Calico's defaults: no strict affinity, blocks allocated automatically.
    fn default() -> Self {
        IPAMConfigurationSpec {
            strict_affinity: false,
            max_blocks_per_host: 0,
            auto_allocate_blocks: true,
            kube_virt_vm_address_persistence: None,
            ip_cooldown_seconds: 0,
        }
    }
}
