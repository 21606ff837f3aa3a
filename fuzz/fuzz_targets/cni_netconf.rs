//! The CNI plugin's stdin decoder on arbitrary bytes: the network configuration (with its
//! `prevResult` and GC list) must decode or fail with a CNI error, never panic; a `prevResult`
//! that reads must write back in every supported version and read back the same (less the
//! fields the older versions do not carry). The bytes are also tried as `CNI_ARGS`.
#![no_main]

use brindle_cni::netconf::NetConf;
use brindle_cni::result::CniResult;
use brindle_cni::version::{SUPPORTED, Version};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = brindle_cni::cni_args::CniArgs::parse(text);
    }
    let Ok(conf) = NetConf::decode(data) else { return };
    let _ = conf.validate();
    let _ = conf.version();
    let _ = conf.valid_attachments().len();
    let Some(prev) = &conf.prev_result else { return };
    let Ok(r) = CniResult::from_value(prev) else { return };
    for v in SUPPORTED {
        let back = CniResult::from_value(&r.to_value(v)).expect("own result reads back");
        let mut want = r.clone();
        if !v.has_1_1_fields() {
            for i in &mut want.interfaces {
                i.mtu = None;
                i.socket_path = None;
                i.pci_id = None;
            }
            for rt in &mut want.routes {
                (rt.mtu, rt.advmss, rt.priority, rt.table, rt.scope) = (None, None, None, None, None);
            }
        }
        assert_eq!(back, want, "{v}");
    }
    let _ = Version::LATEST;
});
