//! `brindle install-cni`'s template handling on arbitrary text (a `CNI_NETWORK_CONFIG` or a
//! template file): substitution and the checks before anything is written must accept or refuse
//! it with an error, never panic; what passes is a JSON object whose every placeholder is gone.
#![no_main]

use brindle_cni::install::template::{Inputs, Values, check, render};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let env = |k: &str| match k {
        "ETCD_ENDPOINTS" => Some("https://10.0.0.1:2379".to_string()),
        "CNI_MTU" => Some("0".to_string()),
        _ => None,
    };
    let inputs = Inputs {
        host_conf_dir: "/etc/cni/net.d".into(),
        hostname: "node".into(),
        ..Inputs::default()
    };
    let rendered = render(text, &Values::new(&env, &inputs));
    if let Ok(c) = check(&rendered, "fuzz") {
        assert!(c.json.is_object());
        assert!(!rendered.contains("__ETCD_ENDPOINTS__"));
    }
});
