//! The thread that owns the async etcd client.
//!
//! The [`Datastore`](crate::Datastore) trait is synchronous, etcd-client is async (tonic). The
//! client lives on a dedicated OS thread running its own current-thread tokio runtime; callers
//! send it jobs over an unbounded channel (sending never blocks and needs no runtime) and wait
//! for the answer on a std channel with a deadline. So the trait can be called from any thread,
//! including from inside another tokio runtime (where `block_on` would panic), and one gRPC
//! connection serves all threads of the process, requests in flight concurrently. Every job is
//! bounded by the request timeout on both sides of the channel: nothing waits forever for an
//! unreachable cluster.

use std::future::Future;
use std::pin::Pin;
use std::sync::mpsc;
use std::thread::JoinHandle;
use std::time::Duration;

use etcd_client::{Certificate, Client, ConnectOptions, Identity, TlsOptions};
use tokio::sync::mpsc::{UnboundedSender, unbounded_channel};

use crate::config::EtcdConfig;
use crate::{Error, Result};

type Job = Box<dyn FnOnce(Client) -> Pin<Box<dyn Future<Output = ()> + Send>> + Send>;

/// Handle on the client thread. Dropping the last handle stops the thread (after in-flight
/// requests are abandoned) and joins it.
pub(crate) struct Worker {
    jobs: Option<UnboundedSender<Job>>,
    thread: Option<JoinHandle<()>>,
    pub(crate) store: String,
    pub(crate) request_timeout: Duration,
}

impl Drop for Worker {
    fn drop(&mut self) {
        // Closing the channel ends the thread's receive loop; its runtime then drops the
        // remaining tasks (watch streams included).
        self.jobs.take();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Worker {
    /// Starts the thread, connects, and checks the cluster answers (a `status` call) within the
    /// connect timeout.
    pub(crate) fn start(store: String, config: &EtcdConfig) -> Result<Worker> {
        let options = connect_options(&store, config)?;
        let (jobs_tx, mut jobs_rx) = unbounded_channel::<Job>();
        let (ready_tx, ready_rx) = mpsc::channel::<Result<()>>();
        let endpoints = config.endpoints.clone();
        let connect_timeout = config.connect_timeout;
        let name = store.clone();
        let thread = std::thread::Builder::new()
            .name("etcd-client".into())
            .spawn(move || {
                let rt = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
                    Ok(rt) => rt,
                    Err(e) => {
                        let _ = ready_tx.send(Err(Error::Backend {
                            store: name,
                            op: "connect",
                            key: None,
                            detail: format!("cannot start the client runtime: {e}"),
                        }));
                        return;
                    }
                };
                rt.block_on(async move {
                    let client = match tokio::time::timeout(connect_timeout, connect(&endpoints, options))
                        .await
                    {
                        Ok(Ok(c)) => c,
                        Ok(Err(e)) => {
                            let _ = ready_tx.send(Err(map_error(&name, "connect", None, e)));
                            return;
                        }
                        Err(_) => {
                            let _ = ready_tx.send(Err(timed_out(&name, "connect", None, connect_timeout)));
                            return;
                        }
                    };
                    let _ = ready_tx.send(Ok(()));
                    while let Some(job) = jobs_rx.recv().await {
                        tokio::spawn(job(client.clone()));
                    }
                });
            })
            .map_err(|e| Error::Backend {
                store: store.clone(),
                op: "connect",
                key: None,
                detail: format!("cannot start the client thread: {e}"),
            })?;
        let mut worker = Worker {
            jobs: Some(jobs_tx),
            thread: Some(thread),
            store: store.clone(),
            request_timeout: config.request_timeout,
        };
        match ready_rx.recv_timeout(connect_timeout + Duration::from_secs(1)) {
            Ok(Ok(())) => Ok(worker),
            Ok(Err(e)) => Err(e),
            Err(_) => {
                // The thread is stuck past its own timeout; do not wait for it.
                worker.thread.take();
                Err(timed_out(&store, "connect", None, connect_timeout))
            }
        }
    }

    /// Runs `f` on the client thread, bounded by the request timeout, and waits for its result.
    pub(crate) fn call<T, F, Fut>(&self, op: &'static str, key: Option<&str>, f: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(Client) -> Fut + Send + 'static,
        Fut: Future<Output = Result<T>> + Send + 'static,
    {
        let (tx, rx) = mpsc::sync_channel::<Result<T>>(1);
        let timeout = self.request_timeout;
        let (store, owned_key) = (self.store.clone(), key.map(str::to_string));
        self.spawn(move |client| async move {
            let result = match tokio::time::timeout(timeout, f(client)).await {
                Ok(r) => r,
                Err(_) => Err(timed_out(&store, op, owned_key.as_deref(), timeout)),
            };
            let _ = tx.send(result);
        })?;
        // The job answers within `timeout`; the margin covers scheduling on the client thread.
        rx.recv_timeout(timeout + Duration::from_secs(1))
            .unwrap_or_else(|_| Err(timed_out(&self.store, op, key, timeout)))
    }

    /// Starts a task on the client thread (used for watches) and returns at once.
    pub(crate) fn spawn<F, Fut>(&self, f: F) -> Result<()>
    where
        F: FnOnce(Client) -> Fut + Send + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        let job: Job = Box::new(move |client| Box::pin(f(client)));
        self.jobs
            .as_ref()
            .and_then(|j| j.send(job).ok())
            .ok_or_else(|| Error::Unavailable {
                store: self.store.clone(),
                detail: "the etcd client thread has stopped".into(),
            })
    }
}

async fn connect(
    endpoints: &[String],
    options: ConnectOptions,
) -> std::result::Result<Client, etcd_client::Error> {
    let mut client = Client::connect(endpoints, Some(options)).await?;
    // The channel connects lazily; a status call proves a member answers (and that TLS and
    // authentication are accepted) before we report the store open.
    client.status().await?;
    Ok(client)
}

fn connect_options(store: &str, config: &EtcdConfig) -> Result<ConnectOptions> {
    let read = |what: &str, path: &std::path::Path| {
        std::fs::read(path).map_err(|e| Error::Config {
            store: store.into(),
            detail: format!("cannot read the etcd {what} {}: {e}", path.display()),
        })
    };
    let mut options = ConnectOptions::new()
        .with_connect_timeout(config.connect_timeout)
        // HTTP/2 pings find a dead peer (network partition, frozen member) that TCP would
        // only notice after minutes; watches then reconnect to another endpoint.
        .with_keep_alive(Duration::from_secs(5), Duration::from_secs(3))
        .with_keep_alive_while_idle(true);
    let tls_wanted = config.ca_file.is_some() || config.cert_file.is_some();
    if tls_wanted {
        if let Some(plain) = config.endpoints.iter().find(|e| e.starts_with("http://")) {
            return Err(Error::Config {
                store: store.into(),
                detail: format!("TLS files are given but endpoint {plain} is http:// (use https://)"),
            });
        }
        let mut tls = TlsOptions::new();
        if let Some(ca) = &config.ca_file {
            tls = tls.ca_certificate(Certificate::from_pem(read("CA file", ca)?));
        }
        if let (Some(cert), Some(key)) = (&config.cert_file, &config.key_file) {
            tls = tls.identity(Identity::from_pem(
                read("certificate file", cert)?,
                read("key file", key)?,
            ));
        }
        options = options.with_tls(tls);
    }
    if let (Some(user), Some(password)) = (&config.username, &config.password) {
        options = options.with_user(user.clone(), password.0.clone());
    }
    Ok(options)
}

pub(crate) fn timed_out(store: &str, op: &str, key: Option<&str>, after: Duration) -> Error {
    Error::Unavailable {
        store: store.into(),
        detail: format!(
            "{op}{}: no answer within {:.1} s",
            key.map(|k| format!(" {k}")).unwrap_or_default(),
            after.as_secs_f64()
        ),
    }
}

/// Maps a client error to ours: transport trouble and gRPC `Unavailable`/`DeadlineExceeded`
/// are [`Error::Unavailable`]; a compacted revision is reported by the caller (it knows the
/// prefix); bad credentials are a configuration error; the rest is a backend error.
pub(crate) fn map_error(store: &str, op: &'static str, key: Option<&str>, e: etcd_client::Error) -> Error {
    use etcd_client::Error as E;
    use tonic::Code;
    let with_key = |detail: String| {
        format!(
            "{op}{}: {detail}",
            key.map(|k| format!(" {k}")).unwrap_or_default()
        )
    };
    match e {
        E::TransportError(t) => Error::Unavailable {
            store: store.into(),
            detail: with_key(transport_detail(&t)),
        },
        E::IoError(io) => Error::Unavailable {
            store: store.into(),
            detail: with_key(io.to_string()),
        },
        // A status carrying a source error was made on this side from a broken connection
        // (h2 or I/O error); etcd's own answers carry none.
        E::GRpcStatus(s)
            if matches!(
                s.code(),
                Code::Unavailable | Code::DeadlineExceeded | Code::Cancelled
            ) || std::error::Error::source(&s).is_some() =>
        {
            Error::Unavailable {
                store: store.into(),
                detail: with_key(status_detail(&s)),
            }
        }
        // Wrong user or password (etcd answers InvalidArgument), or a role without access to
        // the key: the credentials in the configuration are the problem.
        E::GRpcStatus(s)
            if matches!(s.code(), Code::Unauthenticated | Code::PermissionDenied)
                || s.message().contains("authentication failed") =>
        {
            Error::Config {
                store: store.into(),
                detail: with_key(status_detail(&s)),
            }
        }
        E::InvalidArgs(m) | E::EndpointError(m) => Error::Config {
            store: store.into(),
            detail: with_key(m),
        },
        E::InvalidUri(u) => Error::Config {
            store: store.into(),
            detail: with_key(format!("invalid endpoint URL: {u}")),
        },
        other => Error::Backend {
            store: store.into(),
            op,
            key: key.map(str::to_string),
            detail: match other {
                E::GRpcStatus(s) => status_detail(&s),
                o => o.to_string(),
            },
        },
    }
}

/// True for etcd's "required revision has been compacted".
pub(crate) fn is_compacted(e: &etcd_client::Error) -> bool {
    matches!(e, etcd_client::Error::GRpcStatus(s) if s.message().contains("compacted"))
}

fn status_detail(s: &tonic::Status) -> String {
    with_sources(s.message().to_string(), s)
}

/// tonic's transport error says only "transport error"; the cause (connection refused, TLS
/// handshake failure) is in its source chain.
fn transport_detail(t: &tonic::transport::Error) -> String {
    with_sources(t.to_string(), t)
}

/// The message and its root cause (the innermost source), which is what a reader needs:
/// "transport error: Connection refused (os error 111)". The layers in between repeat one
/// another.
fn with_sources(mut detail: String, e: &(dyn std::error::Error + 'static)) -> String {
    let mut root = None;
    let mut source = e.source();
    while let Some(inner) = source {
        root = Some(inner.to_string());
        source = inner.source();
    }
    if let Some(root) = root.filter(|r| !detail.contains(r.as_str())) {
        detail.push_str(": ");
        detail.push_str(&root);
    }
    detail
}
