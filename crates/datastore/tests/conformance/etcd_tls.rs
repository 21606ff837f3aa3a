//! What only etcd has: TLS with client certificates.

use brindle_datastore::{DatastoreConfig, Error, open};
use brindle_testkit::{Etcd, Pki};

use crate::fixture::etcd_config;

pub fn tls_with_client_certificates() {
    let pki = Pki::new("etcd");
    let etcd = Etcd::start_tls(&pki);
    assert!(etcd.endpoint().starts_with("https://"));
    let mut config = etcd_config(etcd.endpoint());
    config.ca_file = Some(pki.ca.clone());
    config.cert_file = Some(pki.client_cert.clone());
    config.key_file = Some(pki.client_key.clone());
    let s = open(&DatastoreConfig::Etcd(config.clone())).unwrap();
    let r = s
        .create("/calico/resources/v3/projectcalico.org/ippools/p", b"{}")
        .unwrap();
    assert_eq!(
        s.get("/calico/resources/v3/projectcalico.org/ippools/p")
            .unwrap()
            .unwrap()
            .revision,
        r
    );

    // Without a client certificate the server refuses us.
    let mut no_cert = config.clone();
    no_cert.cert_file = None;
    no_cert.key_file = None;
    let e = open(&DatastoreConfig::Etcd(no_cert)).map(|_| ()).unwrap_err();
    eprintln!("without a client certificate: {e}");
    assert!(
        e.is_unavailable() && e.to_string().contains(etcd.endpoint()),
        "{e:?}"
    );

    // A CA that did not sign the server: the handshake fails, naming the endpoint.
    let stranger = Pki::new("other");
    let mut wrong_ca = config.clone();
    wrong_ca.ca_file = Some(stranger.ca.clone());
    let e = open(&DatastoreConfig::Etcd(wrong_ca)).map(|_| ()).unwrap_err();
    eprintln!("with a foreign CA: {e}");
    assert!(
        e.is_unavailable() && e.to_string().contains(etcd.endpoint()),
        "{e:?}"
    );
}

pub fn unusable_tls_settings_are_configuration_errors() {
    let pki = Pki::new("etcd");
    let mut config = etcd_config("https://127.0.0.1:1");
    config.ca_file = Some(pki.dir().join("missing-ca.pem"));
    match open(&DatastoreConfig::Etcd(config.clone())).map(|_| ()) {
        Err(e @ Error::Config { .. }) => assert!(e.to_string().contains("missing-ca.pem"), "{e}"),
        other => panic!("expected a configuration error, got {other:?}"),
    }
    config.ca_file = Some(pki.ca.clone());
    config.endpoints = vec!["http://127.0.0.1:1".into()];
    match open(&DatastoreConfig::Etcd(config)).map(|_| ()) {
        Err(e @ Error::Config { .. }) => assert!(e.to_string().contains("http://127.0.0.1:1"), "{e}"),
        other => panic!("expected a configuration error, got {other:?}"),
    }
}
