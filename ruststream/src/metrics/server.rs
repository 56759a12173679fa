//! A tiny HTTP/1.1 responder for `/metrics`, `/health` and a few static [`Pages`] (the
//! AsyncAPI documentation page) on tokio's `TcpListener`.
//!
//! One request per connection (`Connection: close`), `GET`/`HEAD` only, request heads capped
//! at 8 KiB and 5 s. Enough for Prometheus scrapers, orchestrator probes and a browser without
//! an HTTP framework in the build.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::JoinHandle;

use super::Metrics;
use crate::{Error, Result};

const MAX_HEAD: usize = 8 * 1024;
const READ_TIMEOUT: Duration = Duration::from_secs(5);

/// Whether the service is ready to take traffic (answers `/health`). Cheap to clone; all
/// clones share one flag. Starts not ready.
#[derive(Debug, Clone, Default)]
pub struct Readiness(Arc<AtomicBool>);

impl Readiness {
    /// A new flag, not ready.
    pub fn new() -> Self {
        Self::default()
    }
    /// Set the flag.
    pub fn set(&self, ready: bool) {
        self.0.store(ready, Ordering::SeqCst);
    }
    /// Read the flag.
    pub fn is_ready(&self) -> bool {
        self.0.load(Ordering::SeqCst)
    }
}

/// A running metrics/health endpoint; stops when [`MetricsServer::shutdown`] is called or the
/// value is dropped.
#[derive(Debug)]
pub struct MetricsServer {
    local_addr: SocketAddr,
    stop: watch::Sender<bool>,
    task: Option<JoinHandle<()>>,
}

impl MetricsServer {
    /// The bound address (useful with port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// Stop accepting and wait for the accept loop to end.
    pub async fn shutdown(mut self) {
        let _ = self.stop.send(true);
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
    }
}

impl Drop for MetricsServer {
    fn drop(&mut self) {
        let _ = self.stop.send(true);
    }
}

/// Static pages served beside `/metrics` and `/health`: path, content type, body. Cheap to
/// clone.
#[derive(Debug, Clone, Default)]
pub struct Pages(Arc<Vec<(String, String, String)>>);

impl Pages {
    /// No pages.
    pub fn new() -> Self {
        Self::default()
    }

    /// Answer `GET path` with `body` as `content_type` (builder style).
    pub fn with(
        mut self,
        path: impl Into<String>,
        content_type: impl Into<String>,
        body: impl Into<String>,
    ) -> Self {
        Arc::make_mut(&mut self.0).push((path.into(), content_type.into(), body.into()));
        self
    }

    fn get(&self, path: &str) -> Option<(&str, &str)> {
        self.0
            .iter()
            .find(|(p, _, _)| p == path)
            .map(|(_, t, b)| (t.as_str(), b.as_str()))
    }
}

/// Bind `addr` and answer `GET /metrics` (Prometheus text format) and `GET /health`
/// (`200 ready` or `503 not ready`, from `readiness`) until shut down.
pub async fn serve(
    addr: SocketAddr,
    metrics: Metrics,
    readiness: Readiness,
) -> Result<MetricsServer> {
    serve_pages(addr, Some(metrics), readiness, Pages::new()).await
}

/// [`serve`] with `pages` too; without `metrics`, `/metrics` is not found.
pub async fn serve_pages(
    addr: SocketAddr,
    metrics: Option<Metrics>,
    readiness: Readiness,
    pages: Pages,
) -> Result<MetricsServer> {
    let listener = TcpListener::bind(addr)
        .await
        .map_err(|e| Error::Config(format!("cannot bind the metrics address {addr}: {e}")))?;
    let local_addr = listener
        .local_addr()
        .map_err(|e| Error::Config(format!("metrics listener address: {e}")))?;
    let pages_log: Vec<String> = pages.0.iter().map(|(p, _, _)| p.clone()).collect();
    let has_metrics = metrics.is_some();
    let (stop, mut stopped) = watch::channel(false);
    let task = tokio::spawn(async move {
        loop {
            tokio::select! {
                _ = stopped.changed() => break,
                accepted = listener.accept() => match accepted {
                    Ok((stream, _peer)) => {
                        let metrics = metrics.clone();
                        let readiness = readiness.clone();
                        let pages = pages.clone();
                        tokio::spawn(async move {
                            if let Err(e) = respond(stream, metrics.as_ref(), &readiness, &pages).await {
                                tracing::debug!(error = %e, "metrics endpoint connection failed");
                            }
                        });
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, "metrics endpoint accept failed");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                    }
                },
            }
        }
    });
    if has_metrics {
        tracing::info!(%local_addr, "serving /metrics and /health");
    }
    if let Some(path) = pages_log.first() {
        tracing::info!(%local_addr, pages = ?pages_log, "serving the documentation at http://{local_addr}{path}");
    }
    Ok(MetricsServer {
        local_addr,
        stop,
        task: Some(task),
    })
}

async fn read_head(stream: &mut TcpStream) -> std::io::Result<Vec<u8>> {
    let mut head = Vec::with_capacity(512);
    let mut buf = [0u8; 1024];
    loop {
        let n = stream.read(&mut buf).await?;
        if n == 0 {
            return Ok(head);
        }
        head.extend_from_slice(&buf[..n]);
        if head.windows(4).any(|w| w == b"\r\n\r\n") || head.len() >= MAX_HEAD {
            return Ok(head);
        }
    }
}

async fn respond(
    mut stream: TcpStream,
    metrics: Option<&Metrics>,
    readiness: &Readiness,
    pages: &Pages,
) -> std::io::Result<()> {
    let head = match tokio::time::timeout(READ_TIMEOUT, read_head(&mut stream)).await {
        Ok(head) => head?,
        Err(_) => return Ok(()),
    };
    let line = head
        .split(|b| *b == b'\n')
        .next()
        .map(|l| String::from_utf8_lossy(l).trim_end().to_owned())
        .unwrap_or_default();
    let mut parts = line.split_whitespace();
    let method = parts.next().unwrap_or("");
    let target = parts.next().unwrap_or("");
    let path = target.split('?').next().unwrap_or("");
    let page = pages.get(path);
    let (status, content_type, body) = match (method, path, metrics) {
        ("GET" | "HEAD", _, _) if page.is_some() => {
            let (content_type, body) = page.unwrap_or_default();
            return write_response(&mut stream, method, "200 OK", content_type, body).await;
        }
        ("GET" | "HEAD", "/metrics", Some(metrics)) => (
            "200 OK",
            "text/plain; version=0.0.4; charset=utf-8",
            metrics.render(),
        ),
        ("GET" | "HEAD", "/health" | "/ready" | "/healthz" | "/readyz", _) => {
            if readiness.is_ready() {
                ("200 OK", "text/plain; charset=utf-8", "ready\n".to_owned())
            } else {
                (
                    "503 Service Unavailable",
                    "text/plain; charset=utf-8",
                    "not ready\n".to_owned(),
                )
            }
        }
        ("GET" | "HEAD", _, _) => (
            "404 Not Found",
            "text/plain; charset=utf-8",
            "not found\n".to_owned(),
        ),
        _ => (
            "405 Method Not Allowed",
            "text/plain; charset=utf-8",
            "method not allowed\n".to_owned(),
        ),
    };
    write_response(&mut stream, method, status, content_type, &body).await
}

async fn write_response(
    stream: &mut TcpStream,
    method: &str,
    status: &str,
    content_type: &str,
    body: &str,
) -> std::io::Result<()> {
    let mut response = format!(
        "HTTP/1.1 {status}\r\ncontent-type: {content_type}\r\ncontent-length: {}\r\n\
         x-content-type-options: nosniff\r\nconnection: close\r\n\r\n",
        body.len()
    )
    .into_bytes();
    if method != "HEAD" {
        response.extend_from_slice(body.as_bytes());
    }
    stream.write_all(&response).await?;
    stream.shutdown().await
}
