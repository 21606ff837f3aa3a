//! The health and metrics HTTP server (`brindle_agent::http`) against real TCP clients inside a
//! node namespace: wrong methods get 405, a client that stops sending its request head is cut
//! off after the header timeout, and 1000 connections open at once are all answered (by one
//! render of the metrics) while the server keeps serving. The agent's main loop is stood in for
//! by a task answering the server's queries; everything else is the server the agent runs.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use brindle_agent::http::{Limits, Routes, serve};
use brindle_agent::server::Query;
use brindle_testkit::netns::Netns;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;

const METRICS: &str = "# TYPE felix_active_local_endpoints gauge\nfelix_active_local_endpoints 3\n";
const HEADER_TIMEOUT: Duration = Duration::from_secs(1);

/// Starts the server on the namespace's loopback and a main loop answering `/metrics`; returns
/// its address and how many times the metrics were rendered.
async fn start() -> (SocketAddr, Arc<AtomicUsize>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (tx, mut rx) = mpsc::channel::<Query>(64);
    let renders = Arc::new(AtomicUsize::new(0));
    let counted = renders.clone();
    tokio::spawn(async move {
        while let Some(q) = rx.recv().await {
            match q {
                Query::Metrics(reply) => {
                    counted.fetch_add(1, Ordering::SeqCst);
                    let _ = reply.send(METRICS.to_string());
                }
                Query::View(reply) => {
                    let _ = reply.send(Err("no datastore in this test".into()));
                }
                // Dropped: the server answers 503, as when the main loop is gone.
                Query::Status(_) => {}
            }
        }
    });
    let limits = Limits {
        header_timeout: HEADER_TIMEOUT,
        ..Limits::default()
    };
    let routes = Routes {
        health: true,
        metrics: true,
    };
    tokio::spawn(serve(listener, routes, tx, limits));
    (addr, renders)
}

/// Sends `request` on a new connection and reads until the server closes it.
async fn exchange(addr: SocketAddr, request: &str) -> String {
    let mut s = TcpStream::connect(addr).await.unwrap();
    s.write_all(request.as_bytes()).await.unwrap();
    read_to_close(&mut s).await
}

async fn read_to_close(s: &mut TcpStream) -> String {
    let mut out = Vec::new();
    tokio::time::timeout(Duration::from_secs(30), s.read_to_end(&mut out))
        .await
        .expect("the server neither answered nor closed the connection in 30 s")
        .unwrap();
    String::from_utf8_lossy(&out).into_owned()
}

fn get(path: &str) -> String {
    format!("GET {path} HTTP/1.1\r\nHost: node\r\nConnection: close\r\n\r\n")
}

/// Runs `f` on a current-thread runtime inside a fresh node namespace.
fn in_node<F: std::future::Future<Output = ()>>(f: impl FnOnce() -> F + Send + 'static) {
    brindle_agent::limits::raise_nofile_limit().unwrap();
    let ns = Netns::new("http");
    let worker = ns.spawn_in(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(f());
    });
    let outcome = worker.join();
    drop(ns);
    if let Err(panic) = outcome {
        std::panic::resume_unwind(panic);
    }
}

#[test]
fn wrong_methods_get_405_and_unknown_paths_404() {
    in_node(|| async {
        let (addr, _) = start().await;
        let ok = exchange(addr, &get("/metrics")).await;
        assert!(ok.starts_with("HTTP/1.1 200 "), "GET /metrics: {ok}");
        assert!(ok.ends_with(METRICS), "GET /metrics body: {ok}");
        assert!(
            ok.to_ascii_lowercase()
                .contains("content-type: text/plain; version=0.0.4"),
            "{ok}"
        );

        for (method, path) in [("POST", "/metrics"), ("PUT", "/liveness"), ("DELETE", "/view")] {
            let r = exchange(
                addr,
                &format!("{method} {path} HTTP/1.1\r\nHost: node\r\nConnection: close\r\n\r\n"),
            )
            .await;
            assert!(r.starts_with("HTTP/1.1 405 "), "{method} {path}: {r}");
            assert!(
                r.to_ascii_lowercase().contains("allow: get, head"),
                "{method} {path}: {r}"
            );
            assert!(
                r.contains(&format!("method {method} not allowed on {path}")),
                "{r}"
            );
        }
        let r = exchange(addr, &get("/nothing-here")).await;
        assert!(r.starts_with("HTTP/1.1 404 "), "{r}");
        // A body is refused rather than read.
        let r = exchange(
            addr,
            "GET /metrics HTTP/1.1\r\nHost: node\r\nContent-Length: 5\r\nConnection: close\r\n\r\nhello",
        )
        .await;
        assert!(r.starts_with("HTTP/1.1 413 "), "{r}");
        // Probes while the main loop does not answer: 503, not a hang.
        let r = exchange(addr, &get("/readiness")).await;
        assert!(r.starts_with("HTTP/1.1 503 "), "{r}");
        // The page is served whole from the agent.
        let r = exchange(addr, &get("/view")).await;
        assert!(r.starts_with("HTTP/1.1 200 ") && r.contains("<svg"), "{r}");
    });
}

#[test]
fn a_client_that_stops_sending_is_closed_after_the_header_timeout() {
    in_node(|| async {
        let (addr, _) = start().await;
        // Half a request head, then silence (slowloris).
        let mut slow = TcpStream::connect(addr).await.unwrap();
        slow.write_all(b"GET /metrics HTTP/1.1\r\nHost: node\r\nX-Slow: ")
            .await
            .unwrap();
        let started = tokio::time::Instant::now();
        let got = read_to_close(&mut slow).await;
        assert!(!got.contains(" 200 "), "a partial request was answered: {got}");
        assert!(
            started.elapsed() >= HEADER_TIMEOUT - Duration::from_millis(100),
            "closed before the header timeout ({:?})",
            started.elapsed()
        );
        // An idle keep-alive connection is closed by the same timer.
        let mut idle = TcpStream::connect(addr).await.unwrap();
        idle.write_all(b"GET /metrics HTTP/1.1\r\nHost: node\r\n\r\n")
            .await
            .unwrap();
        let got = read_to_close(&mut idle).await;
        assert!(got.starts_with("HTTP/1.1 200 "), "{got}");
        // The server still serves others.
        let r = exchange(addr, &get("/metrics")).await;
        assert!(r.starts_with("HTTP/1.1 200 "), "{r}");
    });
}

#[test]
fn a_thousand_concurrent_connections_are_all_answered() {
    in_node(|| async {
        let (addr, renders) = start().await;
        // Every connection is open before any request is sent.
        let mut conns = Vec::with_capacity(1000);
        for _ in 0..1000 {
            conns.push(TcpStream::connect(addr).await.unwrap());
        }
        let mut tasks = tokio::task::JoinSet::new();
        for mut c in conns {
            tasks.spawn(async move {
                c.write_all(get("/metrics").as_bytes()).await.unwrap();
                read_to_close(&mut c).await
            });
        }
        let mut ok = 0;
        while let Some(r) = tasks.join_next().await {
            let r = r.unwrap();
            assert!(r.starts_with("HTTP/1.1 200 ") && r.ends_with(METRICS), "{r}");
            ok += 1;
        }
        assert_eq!(ok, 1000);
        // Concurrent scrapes share renders (one per second at most, plus the first).
        let n = renders.load(Ordering::SeqCst);
        assert!(n < 100, "{n} renders for 1000 scrapes");
        let r = exchange(addr, &get("/liveness")).await;
        assert!(r.starts_with("HTTP/1.1 503 "), "after the burst: {r}");
    });
}
