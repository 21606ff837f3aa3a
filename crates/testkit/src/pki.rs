//! A throwaway certificate authority with a server and a client certificate, made with the
//! `openssl` command, for TLS tests (etcd with `--client-cert-auth`).

use std::path::PathBuf;
use std::process::Command;

use crate::TempDir;

/// PEM files in a directory removed on drop. The server certificate is valid for `127.0.0.1`
/// and `localhost`.
pub struct Pki {
    pub ca: PathBuf,
    pub server_cert: PathBuf,
    pub server_key: PathBuf,
    pub client_cert: PathBuf,
    pub client_key: PathBuf,
    dir: TempDir,
}

impl Pki {
    /// Makes a CA (`name` in its subject, so two `Pki`s never trust each other) and signs a
    /// server and a client certificate with it.
    pub fn new(name: &str) -> Pki {
        let openssl = crate::require::command("openssl", "openssl");
        let dir = TempDir::new("pki");
        let p = |f: &str| dir.join(f);
        let run = |args: &[&str]| {
            crate::netns::run(Command::new(&openssl).args(args).current_dir(dir.path()));
        };
        let cn = crate::names::unique(&format!("{name}-ca-"));
        run(&[
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "2",
            "-subj",
            &format!("/CN={cn}"),
            "-keyout",
            "ca.key",
            "-out",
            "ca.pem",
        ]);
        std::fs::write(p("server.ext"), "subjectAltName=IP:127.0.0.1,DNS:localhost\n")
            .expect("write server.ext");
        std::fs::write(p("client.ext"), "extendedKeyUsage=clientAuth\n").expect("write client.ext");
        for (who, ext) in [("server", "server.ext"), ("client", "client.ext")] {
            let key = format!("{who}.key");
            let csr = format!("{who}.csr");
            let pem = format!("{who}.pem");
            run(&[
                "req",
                "-newkey",
                "rsa:2048",
                "-nodes",
                "-subj",
                &format!("/CN=brindle-{who}"),
                "-keyout",
                &key,
                "-out",
                &csr,
            ]);
            run(&[
                "x509",
                "-req",
                "-in",
                &csr,
                "-CA",
                "ca.pem",
                "-CAkey",
                "ca.key",
                "-CAcreateserial",
                "-days",
                "2",
                "-extfile",
                ext,
                "-out",
                &pem,
            ]);
        }
        Pki {
            ca: p("ca.pem"),
            server_cert: p("server.pem"),
            server_key: p("server.key"),
            client_cert: p("client.pem"),
            client_key: p("client.key"),
            dir,
        }
    }

    pub fn dir(&self) -> &std::path::Path {
        self.dir.path()
    }
}
