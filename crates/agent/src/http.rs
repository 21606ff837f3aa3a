//! The health and metrics HTTP server, on hyper's HTTP/1 server: `/liveness` and `/readiness`
//! (Calico's probe semantics) on the health address (`FELIX_HEALTHHOST:FELIX_HEALTHPORT`,
//! 127.0.0.1:9099 by default), `/metrics` on the metrics address
//! (`FELIX_PROMETHEUSMETRICSHOST:FELIX_PROMETHEUSMETRICSPORT`, 127.0.0.1:9091), everything on
//! one listener when both addresses are the same. `/view` and `/view.json` (the cluster
//! picture, [`crate::view`]) are served with the probes.
//!
//! What a client cannot do to it ([`Limits`]): take longer than the header timeout to send a
//! request head (slowloris; the same timer closes idle keep-alive connections), send headers
//! larger than 8 KiB or more than 32 of them (431), a body (413: no endpoint takes one), any
//! method but GET and HEAD (405 with `Allow`), hold a connection past its lifetime, or open more
//! connections than the cap (the rest wait in the kernel's backlog). Scrapes that arrive while
//! one is being rendered share its result, and a result is reused for a second, so a thousand
//! concurrent scrapes cost one render.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::header::{ALLOW, CACHE_CONTROL, CONTENT_TYPE, HeaderValue};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::TcpListener;
use tokio::sync::{Mutex, Semaphore, mpsc, oneshot};

use crate::error::{Error, Result};
use crate::server::Query;

/// What the server tolerates from a client.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// To receive a whole request head; also how long a keep-alive connection may sit idle.
    pub header_timeout: Duration,
    /// How long a connection may live at all (a client reading its response too slowly is cut
    /// off here).
    pub connection_lifetime: Duration,
    /// How long a request may wait for the agent's answer before 503.
    pub answer_timeout: Duration,
    /// Request head size (request line and headers).
    pub max_header_bytes: usize,
    pub max_headers: usize,
    /// Connections served at once; more wait to be accepted.
    pub max_connections: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            header_timeout: Duration::from_secs(5),
            connection_lifetime: Duration::from_secs(60),
            answer_timeout: Duration::from_secs(10),
            max_header_bytes: 8 * 1024,
            max_headers: 32,
            max_connections: 4096,
        }
    }
}

/// The endpoints one listener serves.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Routes {
    pub health: bool,
    pub metrics: bool,
}

/// Binds the listeners for the health and metrics addresses (one when they are equal). Each
/// connection is a descriptor: the agent raised its open-files limit at start
/// ([`crate::limits`]).
pub async fn bind(
    health: Option<SocketAddr>,
    metrics: Option<SocketAddr>,
) -> Result<Vec<(TcpListener, Routes)>> {
    let mut want: Vec<(SocketAddr, Routes)> = Vec::new();
    for (addr, r) in [
        (
            health,
            Routes {
                health: true,
                metrics: false,
            },
        ),
        (
            metrics,
            Routes {
                health: false,
                metrics: true,
            },
        ),
    ] {
        let Some(addr) = addr else { continue };
        match want.iter_mut().find(|(a, _)| *a == addr) {
            Some((_, routes)) => {
                routes.health |= r.health;
                routes.metrics |= r.metrics;
            }
            None => want.push((addr, r)),
        }
    }
    let mut out = Vec::new();
    for (addr, routes) in want {
        let what = if routes.health && routes.metrics {
            "health and metrics"
        } else if routes.health {
            "health"
        } else {
            "metrics"
        };
        let l = TcpListener::bind(addr)
            .await
            .map_err(|e| Error::Startup(format!("{what} listener {addr}: {e}")))?;
        tracing::info!(%addr, "{what} server listening");
        out.push((l, routes));
    }
    Ok(out)
}

/// One scrape result shared by the scrapes that wait for it.
#[derive(Default)]
struct ScrapeCache {
    last: Option<(Instant, Bytes)>,
}

/// How long a rendered scrape is reused.
const SCRAPE_REUSE: Duration = Duration::from_secs(1);

struct Shared {
    tx: mpsc::Sender<Query>,
    routes: Routes,
    limits: Limits,
    scrape: Mutex<ScrapeCache>,
}

/// Serves `listener` until the task is dropped.
pub async fn serve(listener: TcpListener, routes: Routes, tx: mpsc::Sender<Query>, limits: Limits) {
    let shared = Arc::new(Shared {
        tx,
        routes,
        limits,
        scrape: Mutex::new(ScrapeCache::default()),
    });
    let slots = Arc::new(Semaphore::new(limits.max_connections));
    let mut last_accept_error: Option<Instant> = None;
    loop {
        let Ok(permit) = slots.clone().acquire_owned().await else {
            return;
        };
        let stream = match listener.accept().await {
            Ok((s, _)) => s,
            Err(e) => {
                // Out of descriptors or memory: say so now and then, back off, keep serving.
                if last_accept_error.is_none_or(|t| t.elapsed() > Duration::from_secs(10)) {
                    tracing::warn!(error = %e, "health/metrics server: accept failed");
                    last_accept_error = Some(Instant::now());
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        let shared = shared.clone();
        tokio::spawn(async move {
            let svc = {
                let shared = shared.clone();
                service_fn(move |req| {
                    let shared = shared.clone();
                    async move { Ok::<_, Infallible>(handle(&shared, req).await) }
                })
            };
            let conn = http1::Builder::new()
                .timer(TokioTimer::new())
                .header_read_timeout(shared.limits.header_timeout)
                .max_buf_size(shared.limits.max_header_bytes.max(8192))
                .max_header_size(shared.limits.max_header_bytes)
                .max_headers(shared.limits.max_headers)
                .serve_connection(TokioIo::new(stream), svc);
            let _ = tokio::time::timeout(shared.limits.connection_lifetime, conn).await;
            drop(permit);
        });
    }
}

type Body = Full<Bytes>;

fn reply(code: StatusCode, ctype: &'static str, body: impl Into<Bytes>) -> Response<Body> {
    let mut r = Response::new(Full::new(body.into()));
    *r.status_mut() = code;
    r.headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static(ctype));
    r.headers_mut()
        .insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    r
}

const TEXT: &str = "text/plain; charset=utf-8";

/// Asks the main loop; `None` when it is gone or does not answer in time.
async fn ask<T>(s: &Shared, make: impl FnOnce(oneshot::Sender<T>) -> Query) -> Option<T> {
    let (otx, orx) = oneshot::channel();
    let asked = async {
        s.tx.send(make(otx)).await.ok()?;
        orx.await.ok()
    };
    tokio::time::timeout(s.limits.answer_timeout, asked)
        .await
        .ok()
        .flatten()
}

async fn scrape(s: &Shared) -> Option<Bytes> {
    let mut cache = s.scrape.lock().await;
    if let Some((at, text)) = &cache.last
        && at.elapsed() < SCRAPE_REUSE
    {
        return Some(text.clone());
    }
    let text = Bytes::from(ask(s, Query::Metrics).await?);
    cache.last = Some((Instant::now(), text.clone()));
    Some(text)
}

async fn handle(s: &Shared, req: Request<Incoming>) -> Response<Body> {
    let path = req.uri().path().to_string();
    let known = match path.as_str() {
        "/liveness" | "/readiness" | "/view" | "/view.json" => s.routes.health,
        "/metrics" => s.routes.metrics,
        _ => false,
    };
    if !known {
        return reply(StatusCode::NOT_FOUND, TEXT, "not found\n");
    }
    if req.method() != Method::GET && req.method() != Method::HEAD {
        let mut r = reply(
            StatusCode::METHOD_NOT_ALLOWED,
            TEXT,
            format!("method {} not allowed on {path}\n", req.method()),
        );
        r.headers_mut()
            .insert(ALLOW, HeaderValue::from_static("GET, HEAD"));
        return r;
    }
    // No endpoint takes a body: refuse one rather than read it.
    let has_body = req
        .headers()
        .get(hyper::header::CONTENT_LENGTH)
        .is_some_and(|v| v.as_bytes() != b"0")
        || req.headers().contains_key(hyper::header::TRANSFER_ENCODING);
    if has_body {
        return reply(
            StatusCode::PAYLOAD_TOO_LARGE,
            TEXT,
            "requests to this server carry no body\n",
        );
    }
    match path.as_str() {
        "/liveness" | "/readiness" => match ask(s, Query::Status).await {
            Some(st) => {
                let (ok, detail) = if path == "/liveness" {
                    (st.live, if st.live { "live" } else { "not live" }.to_string())
                } else if st.ready {
                    (true, "ready".to_string())
                } else {
                    (false, st.ready_detail.clone())
                };
                let code = if ok {
                    StatusCode::OK
                } else {
                    StatusCode::SERVICE_UNAVAILABLE
                };
                reply(code, TEXT, format!("{detail}\n"))
            }
            None => reply(StatusCode::SERVICE_UNAVAILABLE, TEXT, "agent not answering\n"),
        },
        "/metrics" => match scrape(s).await {
            Some(text) => reply(StatusCode::OK, crate::metrics::CONTENT_TYPE, text),
            None => reply(StatusCode::SERVICE_UNAVAILABLE, TEXT, "agent not answering\n"),
        },
        "/view" => reply(
            StatusCode::OK,
            "text/html; charset=utf-8",
            crate::view::page(None),
        ),
        "/view.json" => match ask(s, Query::View).await {
            Some(Ok(v)) => reply(
                StatusCode::OK,
                "application/json",
                serde_json::to_vec(&v).expect("a view serialises"),
            ),
            Some(Err(e)) => reply(StatusCode::SERVICE_UNAVAILABLE, TEXT, format!("{e}\n")),
            None => reply(StatusCode::SERVICE_UNAVAILABLE, TEXT, "agent not answering\n"),
        },
        _ => reply(StatusCode::NOT_FOUND, TEXT, "not found\n"),
    }
}
