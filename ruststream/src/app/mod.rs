//! The app runner and its command line (feature `app`).
//!
//! An [`App`] is a broker, a [`Router`] with the generated services and hand-written routes
//! registered on it, lifecycle hooks, and what the app tells the world: its name, its
//! embedded AsyncAPI document, its servers, an optional `/metrics` + `/health` address.
//! [`run_cli`] (or `#[ruststream::app]`, which generates a `main` calling it) turns it into a
//! program:
//!
//! - `run` — start, serve until SIGINT/SIGTERM, drain in-flight messages within the shutdown
//!   timeout; the exit code is non-zero when start or shutdown failed;
//! - `asyncapi gen [--format yaml|json] [--out FILE]` — print the AsyncAPI 3.0.0 document;
//! - `asyncapi serve [--addr 127.0.0.1:8080]` — serve it as an HTML page (rendered by
//!   `asyncapi::html` from the normalised model; no network), `/asyncapi.json` and
//!   `/asyncapi.yaml` beside it; `run` with a metrics address serves the page at `/docs`;
//! - no command — run the app's [demo](App::demo) if it has one (start, run the demo against
//!   the live connection, shut down), else `run`.
//!
//! Every command takes `--server <name>` (`RUSTSTREAM_SERVER`: a server of the document, its
//! URL rendered from the generated `SERVERS` with `--server-var name=value` over the
//! variables' defaults) and `--broker-url <url>` (`RUSTSTREAM_BROKER_URL`, which wins):
//! [`run_cli_with_servers`] hands the choice to the builder, which turns the URL into a
//! broker with that broker crate's `Config::from_url` (the core names no broker).
//!
//! Every handled message goes through the telemetry middleware (a `tracing` span, `traceparent`
//! on the handler's publishes) and the metrics middleware unless switched off with
//! [`App::telemetry`] / [`App::metrics`]; with the `otel` feature, `App::otel` records and
//! exports OpenTelemetry spans (module `ruststream::otel`).
//!
//! ```no_run
//! use ruststream::app::App;
//! use ruststream::memory::MemoryBroker;
//! use ruststream::router::{HandlerError, Route};
//!
//! async fn build() -> App<MemoryBroker> {
//!     let mut app = App::new(MemoryBroker::default()).name("greeter");
//!     app.router().route(
//!         Route::new("greet/{name}").unwrap().name("onGreet"),
//!         |_: serde_json::Value, _ctx| async { Ok::<_, HandlerError>(()) },
//!     );
//!     app
//! }
//!
//! fn main() -> std::process::ExitCode {
//!     ruststream::app::run_cli(build)
//! }
//! ```

pub mod cli;
pub mod spec;

use std::future::Future;
use std::net::SocketAddr;
use std::path::Path;
use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;
use serde_json::Value;

use crate::metrics::{Metrics, MetricsMiddleware, MetricsServer, Readiness};
use crate::router::{BoxFuture, Route, Router, RunningRouter, ShutdownReport, StatsSnapshot};
use crate::telemetry::TelemetryMiddleware;
use crate::{Broker, Connection, Error, Result};

pub use cli::{AsyncapiCommand, ChosenServer, Cli, Command, Format, init_tracing};
pub use spec::{Action, RouteDoc, SafeUrl, ServerDoc};

type ConnHook<C> = Box<dyn FnOnce(C) -> BoxFuture<'static, Result<()>> + Send>;

/// A service: broker, router, hooks and what it documents. See the [module docs](self).
pub struct App<B: Broker> {
    name: String,
    version: String,
    /// Whether [`App::name`] / [`App::version`] set them (else the spec's `info` does).
    named: (bool, bool),
    broker: B,
    router: Router<B::Connection>,
    shutdown_timeout: Duration,
    metrics_addr: Option<SocketAddr>,
    spec: Option<String>,
    servers: Vec<ServerDoc>,
    routes: Vec<RouteDoc>,
    on_connect: Vec<ConnHook<B::Connection>>,
    demo: Option<ConnHook<B::Connection>>,
    telemetry: bool,
    metrics_middleware: bool,
    #[cfg(feature = "otel")]
    otel: Option<crate::otel::Otel>,
}

impl<B: Broker> std::fmt::Debug for App<B> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("App")
            .field("name", &self.name)
            .field("broker", &self.broker.name())
            .field("router", &self.router)
            .field("shutdown_timeout", &self.shutdown_timeout)
            .field("metrics_addr", &self.metrics_addr)
            .field("servers", &self.servers.len())
            .field("telemetry", &self.telemetry)
            .field("metrics", &self.metrics_middleware)
            .finish_non_exhaustive()
    }
}

impl<B: Broker> App<B> {
    /// An app on `broker` with an empty router, named `ruststream-app` (until a
    /// [spec](Self::spec) gives its `info.title` and `info.version`), 10 s shutdown timeout,
    /// no metrics endpoint, telemetry and metrics middleware on.
    pub fn new(broker: B) -> Self {
        App {
            name: "ruststream-app".to_owned(),
            version: "0.1.0".to_owned(),
            named: (false, false),
            broker,
            router: Router::new(),
            shutdown_timeout: Duration::from_secs(10),
            metrics_addr: None,
            spec: None,
            servers: Vec::new(),
            routes: Vec::new(),
            on_connect: Vec::new(),
            demo: None,
            telemetry: true,
            metrics_middleware: true,
            #[cfg(feature = "otel")]
            otel: None,
        }
    }

    /// Whether to run the telemetry middleware (on by default): a `tracing` span per handled
    /// message and a `traceparent` continuing the trace on each publish the handler makes
    /// ([`TelemetryMiddleware`]). Off, publishes carry the consumed message's `traceparent`
    /// unchanged. An `otel` pipeline (feature `otel`) keeps it on (spans need it).
    pub fn telemetry(mut self, enabled: bool) -> Self {
        self.telemetry = enabled;
        self
    }

    /// Whether to run the metrics middleware (on by default): handler duration histogram and
    /// the status and duration of the publishes handlers make ([`MetricsMiddleware`]). The
    /// message counters come from the router's own stats and stay exported either way.
    ///
    /// With telemetry and metrics off (and no middleware of your own) a message's handling
    /// goes through no middleware chain at all: no boxed future per message.
    pub fn metrics(mut self, enabled: bool) -> Self {
        self.metrics_middleware = enabled;
        self
    }

    /// Record OpenTelemetry spans for handled messages and their publishes and export them
    /// (feature `otel`; see [`crate::otel`]), e.g. `app.otel(Otel::from_env()?)`. The pipeline
    /// starts with the app (`service.name` defaults to the app's name) and is flushed and shut
    /// down after the drain at graceful shutdown.
    #[cfg(feature = "otel")]
    pub fn otel(mut self, otel: crate::otel::Otel) -> Self {
        self.otel = Some(otel);
        self
    }

    /// Name (the `app` metrics label, the document title when the spec has none); without
    /// it, the spec's `info.title`.
    pub fn name(mut self, name: impl Into<String>) -> Self {
        self.name = name.into();
        self.named.0 = true;
        self
    }

    /// Version (the document's `info.version` when the spec has none); without it, the
    /// spec's `info.version`.
    pub fn version(mut self, version: impl Into<String>) -> Self {
        self.version = version.into();
        self.named.1 = true;
        self
    }

    /// The app's name: [`App::name`], else the spec's `info.title`, else `ruststream-app`.
    pub fn app_name(&self) -> &str {
        &self.name
    }

    /// The app's version: [`App::version`], else the spec's `info.version`, else `0.1.0`.
    pub fn app_version(&self) -> &str {
        &self.version
    }

    /// The router: register generated services, routes, middleware and hooks on it.
    pub fn router(&mut self) -> &mut Router<B::Connection> {
        &mut self.router
    }

    /// Configure the router in builder style, e.g. register a generated service:
    /// `app.with_router(|r| my_spec::register(r, MyService))?`.
    pub fn with_router<E>(
        mut self,
        f: impl FnOnce(&mut Router<B::Connection>) -> std::result::Result<(), E>,
    ) -> std::result::Result<Self, E> {
        f(&mut self.router)?;
        Ok(self)
    }

    /// A hand-written route; it is also added to the emitted document (as `receive`, payload
    /// schema `{}`; use [`document_route`](Self::document_route) to describe it better).
    pub fn route<T, F, Fut>(mut self, route: Route, handler: F) -> Self
    where
        T: serde::de::DeserializeOwned + Send + 'static,
        F: Fn(T, crate::router::Context<B::Connection>) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = std::result::Result<(), crate::router::HandlerError>> + Send + 'static,
    {
        if !self
            .routes
            .iter()
            .any(|r| r.operation == route.route_name())
        {
            self.routes.push(RouteDoc::receive(
                route.route_name(),
                route.address().as_str(),
            ));
        }
        self.router.route(route, handler);
        self
    }

    /// Describe a hand-written route or publish target in the emitted document (replaces the
    /// description [`route`](Self::route) made for the same operation).
    pub fn document_route(mut self, doc: RouteDoc) -> Self {
        self.routes.retain(|r| r.operation != doc.operation);
        self.routes.push(doc);
        self
    }

    /// The embedded AsyncAPI 3.x document (JSON) of the generated code. Its `info.title` and
    /// `info.version` name the app unless [`App::name`] / [`App::version`] say otherwise.
    pub fn spec(mut self, json: impl Into<String>) -> Self {
        let json = json.into();
        if let Ok(doc) = serde_json::from_str::<Value>(&json) {
            let info = |key: &str| {
                doc.pointer(&format!("/info/{key}"))
                    .and_then(Value::as_str)
                    .filter(|s| !s.trim().is_empty())
                    .map(str::to_owned)
            };
            if let (false, Some(title)) = (self.named.0, info("title")) {
                self.name = title;
            }
            if let (false, Some(version)) = (self.named.1, info("version")) {
                self.version = version;
            }
        }
        self.spec = Some(json);
        self
    }

    /// A server to list in the emitted document (credentials in its URL are never emitted).
    pub fn server(mut self, server: ServerDoc) -> Self {
        self.servers.push(server);
        self
    }

    /// How long `run` waits for in-flight messages at shutdown before aborting them.
    pub fn shutdown_timeout(mut self, timeout: Duration) -> Self {
        self.shutdown_timeout = timeout;
        self
    }

    /// Serve `/metrics` and `/health` on `addr` while running.
    pub fn metrics_addr(mut self, addr: SocketAddr) -> Self {
        self.metrics_addr = Some(addr);
        self
    }

    /// Run `f` with the live connection once connected, before the routes subscribe (create
    /// topology, warm caches, …). An error aborts the start.
    pub fn on_connect<F, Fut>(mut self, f: F) -> Self
    where
        F: FnOnce(B::Connection) -> Fut + Send + 'static,
        Fut: Future<Output = Result<()>> + Send + 'static,
    {
        self.on_connect.push(Box::new(move |c| Box::pin(f(c))));
        self
    }

    /// Run `f` once the routes are started.
    pub fn after_start<F, Fut>(mut self, f: F) -> Self
    where
        F: FnOnce() -> Fut + Send + 'static,
        Fut: Future<Output = Result<()>> + Send + 'static,
    {
        self.router.after_start(f);
        self
    }

    /// Run `f` at shutdown, after the drain and before the connection closes.
    pub fn on_shutdown<F, Fut>(mut self, f: F) -> Self
    where
        F: FnOnce() -> Fut + Send + 'static,
        Fut: Future<Output = Result<()>> + Send + 'static,
    {
        self.router.on_shutdown(f);
        self
    }

    /// What the program does when started with no command: start the app, run `f` with a
    /// clone of the live connection (e.g. an in-process client sending a few messages), then
    /// shut down gracefully. The exit code is `f`'s result.
    pub fn demo<F, Fut>(mut self, f: F) -> Self
    where
        F: FnOnce(B::Connection) -> Fut + Send + 'static,
        Fut: Future<Output = Result<()>> + Send + 'static,
    {
        self.demo = Some(Box::new(move |c| Box::pin(f(c))));
        self
    }

    /// The AsyncAPI 3.0.0 document: embedded spec, hand-written routes, configured servers.
    pub fn document(&self) -> Value {
        spec::document(
            &self.name,
            &self.version,
            self.spec.as_deref(),
            &self.servers,
            &self.routes,
        )
    }

    /// The document rendered as YAML or JSON.
    pub fn render_document(&self, format: Format) -> Result<String> {
        let doc = self.document();
        match format {
            Format::Json => serde_json::to_string_pretty(&doc)
                .map(|mut s| {
                    s.push('\n');
                    s
                })
                .map_err(|e| Error::Config(format!("rendering the document: {e}"))),
            Format::Yaml => serde_norway::to_string(&doc)
                .map_err(|e| Error::Config(format!("rendering the document: {e}"))),
        }
    }

    /// The documentation pages: the HTML page at each of `html_paths`, and `/asyncapi.json`
    /// and `/asyncapi.yaml`.
    ///
    /// # Errors
    /// When the document cannot be rendered.
    pub fn doc_pages(&self, html_paths: &[&str]) -> Result<crate::metrics::Pages> {
        let json = self.render_document(Format::Json)?;
        let yaml = self.render_document(Format::Yaml)?;
        let html = docs_html(&json);
        let mut pages = crate::metrics::Pages::new();
        for path in html_paths {
            pages = pages.with(*path, "text/html; charset=utf-8", html.clone());
        }
        Ok(pages.with("/asyncapi.json", "application/json", json).with(
            "/asyncapi.yaml",
            "application/yaml; charset=utf-8",
            yaml,
        ))
    }

    /// Connect, start the metrics endpoint (if configured) and the OpenTelemetry pipeline
    /// (if configured), start the router with the telemetry and metrics middleware (unless
    /// switched off), and mark the app ready.
    pub async fn start(mut self) -> Result<RunningApp<B::Connection>> {
        let broker_name = self.broker.name();
        let metrics = Metrics::new(self.name.clone())?;
        let readiness = Readiness::new();
        let server = match self.metrics_addr {
            Some(addr) => {
                let pages = self.doc_pages(&["/docs"])?;
                Some(
                    crate::metrics::serve_pages(
                        addr,
                        Some(metrics.clone()),
                        readiness.clone(),
                        pages,
                    )
                    .await?,
                )
            }
            None => None,
        };
        #[cfg(feature = "otel")]
        let otel = self.otel.take().map(|o| o.start(&self.name));
        #[cfg(feature = "otel")]
        if let Some(stats) = otel.as_ref().and_then(|o| o.stats())
            && let Err(e) = export_span_stats(&metrics, stats.clone())
        {
            stop_otel(otel).await;
            return Err(e);
        }
        #[cfg(feature = "otel")]
        let traced_by_otel = match &otel {
            Some(pipeline) => {
                self.router.layer(pipeline.middleware(broker_name));
                true
            }
            None => false,
        };
        #[cfg(not(feature = "otel"))]
        let traced_by_otel = false;
        if self.telemetry && !traced_by_otel {
            self.router.layer(TelemetryMiddleware);
        }
        if self.metrics_middleware {
            self.router
                .layer(MetricsMiddleware::new(metrics.clone(), broker_name));
        }
        tracing::info!(app = %self.name, version = %self.version, broker = broker_name, "connecting");
        let conn = match self.broker.connect().await {
            Ok(conn) => conn,
            Err(e) => {
                #[cfg(feature = "otel")]
                stop_otel(otel).await;
                return Err(e);
            }
        };
        let routes: Vec<String> = self.router.route_names().map(str::to_owned).collect();
        let started = async {
            for hook in self.on_connect {
                hook(conn.clone()).await?;
            }
            self.router.start(conn.clone()).await
        };
        let router = match started.await {
            Ok(router) => router,
            Err(e) => {
                // Do not leave a half-started app connected.
                if let Err(close) = conn.shutdown().await {
                    tracing::warn!(error = %close, "closing the connection after a failed start");
                }
                #[cfg(feature = "otel")]
                stop_otel(otel).await;
                return Err(e);
            }
        };
        metrics.watch_router(broker_name, router.route_stats());
        readiness.set(true);
        tracing::info!(app = %self.name, version = %self.version, routes = ?routes, "started");
        Ok(RunningApp {
            name: self.name,
            conn,
            router,
            metrics,
            readiness,
            server,
            shutdown_timeout: self.shutdown_timeout,
            demo: self.demo,
            #[cfg(feature = "otel")]
            otel,
        })
    }

    /// Start, serve until `signal` resolves, then shut down gracefully.
    pub async fn run_until(self, signal: impl Future<Output = ()>) -> Result<ShutdownReport> {
        let running = self.start().await?;
        signal.await;
        running.shutdown().await
    }
}

/// A started [`App`].
pub struct RunningApp<C> {
    name: String,
    conn: C,
    router: RunningRouter,
    metrics: Metrics,
    readiness: Readiness,
    server: Option<MetricsServer>,
    shutdown_timeout: Duration,
    demo: Option<ConnHook<C>>,
    #[cfg(feature = "otel")]
    otel: Option<crate::otel::OtelPipeline>,
}

/// `ruststream_otel_spans_total{app, outcome}`: spans exported, dropped (full queue) and lost in
/// failed exports.
#[cfg(feature = "otel")]
fn export_span_stats(metrics: &Metrics, stats: crate::otel::ExportStats) -> Result<()> {
    let error = |e: prometheus::Error| Error::Config(format!("metrics registry: {e}"));
    let spans = prometheus::IntCounterVec::new(
        prometheus::Opts::new(
            "ruststream_otel_spans_total",
            "OpenTelemetry spans by export outcome (exported, dropped, failed).",
        ),
        &["app", "outcome"],
    )
    .map_err(error)?;
    metrics
        .registry()
        .register(Box::new(spans.clone()))
        .map_err(error)?;
    let app = metrics.app().to_owned();
    let [exported, dropped, failed] =
        ["exported", "dropped", "failed"].map(|o| spans.with_label_values(&[app.as_str(), o]));
    metrics.on_sync(move || {
        crate::metrics::catch_up(&exported, stats.exported());
        crate::metrics::catch_up(&dropped, stats.dropped());
        crate::metrics::catch_up(&failed, stats.failed());
    });
    Ok(())
}

#[cfg(feature = "otel")]
async fn stop_otel(otel: Option<crate::otel::OtelPipeline>) {
    if let Some(pipeline) = otel
        && let Err(e) = pipeline.shutdown().await
    {
        tracing::warn!(error = %e, "shutting down the span export");
    }
}

impl<C: crate::Connection> std::fmt::Debug for RunningApp<C> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RunningApp")
            .field("name", &self.name)
            .field("router", &self.router)
            .field("metrics_addr", &self.metrics_addr())
            .finish_non_exhaustive()
    }
}

impl<C: crate::Connection> RunningApp<C> {
    /// A clone of the live connection (to publish into the app, e.g. from a client).
    pub fn connection(&self) -> C {
        self.conn.clone()
    }

    /// The app's metrics.
    pub fn metrics(&self) -> &Metrics {
        &self.metrics
    }

    /// Where `/metrics` and `/health` are served, if they are.
    pub fn metrics_addr(&self) -> Option<SocketAddr> {
        self.server.as_ref().map(MetricsServer::local_addr)
    }

    /// Counters over all routes.
    pub fn stats(&self) -> StatsSnapshot {
        self.router.stats().snapshot()
    }

    /// The OpenTelemetry pipeline (feature `otel`), if [`App::otel`] configured one: its
    /// provider, export counters, [`flush`](crate::otel::OtelPipeline::flush).
    #[cfg(feature = "otel")]
    pub fn otel(&self) -> Option<&crate::otel::OtelPipeline> {
        self.otel.as_ref()
    }

    /// Stop taking messages, drain in flight within the shutdown timeout, run the shutdown
    /// hooks, close the connection, export the remaining spans (feature `otel`) and close the
    /// metrics endpoint.
    pub async fn shutdown(self) -> Result<ShutdownReport> {
        self.readiness.set(false);
        tracing::info!(app = %self.name, timeout = ?self.shutdown_timeout, "shutting down");
        let result = self.router.shutdown(self.shutdown_timeout).await;
        #[cfg(feature = "otel")]
        stop_otel(self.otel).await;
        if let Some(server) = self.server {
            server.shutdown().await;
        }
        match &result {
            Ok(report) => {
                tracing::info!(drained = report.drained, aborted = report.aborted, elapsed = ?report.elapsed, "stopped")
            }
            Err(e) => tracing::error!(error = %e, "shutdown failed"),
        }
        result
    }
}

/// What an app builder returns: an [`App`], or a `Result` of one (so the builder can use `?`,
/// e.g. on a generated `register` function).
pub trait IntoApp<B: Broker> {
    /// The app, or why it could not be built.
    fn into_app(self) -> Result<App<B>>;
}

impl<B: Broker> IntoApp<B> for App<B> {
    fn into_app(self) -> Result<App<B>> {
        Ok(self)
    }
}

impl<B: Broker, E: std::fmt::Display> IntoApp<B> for std::result::Result<App<B>, E> {
    fn into_app(self) -> Result<App<B>> {
        self.map_err(|e| Error::Config(format!("building the app: {e}")))
    }
}

/// Resolves on SIGINT (Ctrl-C) or, on Unix, SIGTERM.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        if let Err(e) = tokio::signal::ctrl_c().await {
            tracing::error!(error = %e, "cannot listen for Ctrl-C");
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(e) => {
                tracing::error!(error = %e, "cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => tracing::info!("SIGINT received"),
        () = term => tracing::info!("SIGTERM received"),
    }
}

/// The HTML page of an emitted document (`json`), or a page saying why it cannot be read.
fn docs_html(json: &str) -> String {
    let options = asyncapi::LoadOptions::default();
    match asyncapi::load_str(json, Path::new("asyncapi.json"), &options) {
        Ok(loaded) => asyncapi::html::render(&loaded.document),
        Err(e) => format!(
            "<!doctype html><meta charset=\"utf-8\"><title>AsyncAPI</title>\
             <p>The document cannot be read:</p><pre>{}</pre>",
            asyncapi::html::esc(&e.to_string())
        ),
    }
}

/// `asyncapi serve`: the page at `/` (and `/docs`) until Ctrl-C or SIGTERM.
async fn serve_docs<B: Broker>(app: &App<B>, addr: SocketAddr) -> Result<()> {
    let pages = app.doc_pages(&["/", "/index.html", "/docs"])?;
    let readiness = Readiness::new();
    readiness.set(true);
    let server = crate::metrics::serve_pages(addr, None, readiness, pages).await?;
    tracing::info!(
        app = %app.name,
        "AsyncAPI page at http://{}/ ; press Ctrl-C (or send SIGTERM) to stop",
        server.local_addr()
    );
    shutdown_signal().await;
    server.shutdown().await;
    Ok(())
}

fn write_output(text: &str, out: Option<&Path>) -> Result<()> {
    use std::io::Write;
    match out {
        Some(path) => std::fs::write(path, text)
            .map_err(|e| Error::Config(format!("cannot write {}: {e}", path.display()))),
        None => std::io::stdout()
            .lock()
            .write_all(text.as_bytes())
            .map_err(|e| Error::Config(format!("cannot write to stdout: {e}"))),
    }
}

/// Run a parsed command against the app built by `build`. This is [`run_cli`] without the
/// argument parsing, tracing set-up and runtime (for tests and custom mains).
pub async fn execute<B, F, Fut>(cli: Cli, build: F) -> Result<()>
where
    B: Broker,
    F: FnOnce() -> Fut,
    Fut: Future,
    Fut::Output: IntoApp<B>,
{
    let app = build().await.into_app()?;
    execute_app(cli, app).await
}

/// [`execute`] for an app whose broker the command line chooses: `build` gets the server
/// `--broker-url` or `--server` (from `servers`, the generated `SERVERS`) names, or `None`
/// when neither is given. This is [`run_cli_with_servers`] without the argument parsing,
/// tracing set-up and runtime.
///
/// # Errors
/// An unknown server or variable (see [`Cli::chosen_server`]), then as [`execute`].
pub async fn execute_with_servers<B, F, Fut>(
    cli: Cli,
    servers: &[crate::broker::url::ServerSpec],
    build: F,
) -> Result<()>
where
    B: Broker,
    F: FnOnce(Option<ChosenServer>) -> Fut,
    Fut: Future,
    Fut::Output: IntoApp<B>,
{
    let chosen = cli.chosen_server(servers)?;
    if let Some(c) = &chosen {
        tracing::info!(server = ?c.name, url = %crate::broker::url::redact(&c.url), "broker server chosen");
    }
    let app = build(chosen).await.into_app()?;
    execute_app(cli, app).await
}

async fn execute_app<B: Broker>(cli: Cli, mut app: App<B>) -> Result<()> {
    match cli.command {
        Some(Command::Asyncapi {
            command: AsyncapiCommand::Gen { format, out },
        }) => write_output(&app.render_document(format)?, out.as_deref()),
        Some(Command::Asyncapi {
            command: AsyncapiCommand::Serve { addr },
        }) => serve_docs(&app, addr).await,
        Some(Command::Run { metrics_addr }) => {
            if let Some(addr) = metrics_addr {
                app = app.metrics_addr(addr);
            }
            serve(app).await
        }
        None if app.demo.is_some() => {
            // A demo is a one-shot command: quiet unless the log filter says otherwise.
            cli::quiet_default_filter();
            let mut running = app.start().await?;
            let demo = running.demo.take();
            let outcome = match demo {
                Some(demo) => demo(running.connection()).await,
                None => Ok(()),
            };
            let report = running.shutdown().await?;
            if report.aborted > 0 {
                return Err(Error::Timeout(
                    format!(
                        "{} in-flight handler(s) aborted at shutdown",
                        report.aborted
                    )
                    .into(),
                ));
            }
            outcome
        }
        None => serve(app).await,
    }
}

async fn serve<B: Broker>(app: App<B>) -> Result<()> {
    let running = app.start().await?;
    tracing::info!("serving; press Ctrl-C (or send SIGTERM) to stop");
    shutdown_signal().await;
    let report = running.shutdown().await?;
    if report.aborted > 0 {
        return Err(Error::Timeout(
            format!(
                "{} in-flight handler(s) aborted after the shutdown timeout",
                report.aborted
            )
            .into(),
        ));
    }
    Ok(())
}

/// The whole program: parse the command line, initialise tracing (stderr; `--log`, else
/// `RUST_LOG`, else `info` for `run` and `warn` otherwise), start a multi-threaded tokio runtime, build the app with `build` and run the
/// command. Returns the exit code: 0 on success, 1 on failure, 2 on a usage error.
///
/// `build` returns an [`App`] or a `Result` of one ([`IntoApp`]); a build error exits 1.
/// `#[ruststream::app]` on `async fn build() -> App<…>` generates a `main` calling this.
pub fn run_cli<B, F, Fut>(build: F) -> ExitCode
where
    B: Broker,
    F: FnOnce() -> Fut,
    Fut: Future,
    Fut::Output: IntoApp<B>,
{
    main_with(|cli| execute(cli, build))
}

/// [`run_cli`] for an app whose broker the command line chooses: `--server <name>`
/// (`RUSTSTREAM_SERVER`) picks a server of `servers` (the generated `SERVERS`; `--server-var
/// name=value` overrides a variable's default), `--broker-url <url>`
/// (`RUSTSTREAM_BROKER_URL`) gives the URL itself. `build` receives the choice (`None` when
/// the command line makes none) and turns the URL into a broker with that broker crate's
/// `Config::from_url`:
///
/// ```no_run
/// use ruststream::app::{App, ChosenServer, run_cli_with_servers};
/// use ruststream::broker::url::ServerSpec;
/// use ruststream::memory::MemoryBroker;
/// # const SERVERS: &[ServerSpec] = &[];
/// fn main() -> std::process::ExitCode {
///     run_cli_with_servers(SERVERS, |server: Option<ChosenServer>| async move {
///         match server {
///             // e.g. Some(s) if s.scheme() == "nats" => NatsBroker::new(Config::from_url(&s.url)?)
///             Some(s) => Err(format!("no broker for `{}` in this example", s.scheme())),
///             None => Ok(App::new(MemoryBroker::default())),
///         }
///     })
/// }
/// ```
pub fn run_cli_with_servers<B, F, Fut>(
    servers: &[crate::broker::url::ServerSpec],
    build: F,
) -> ExitCode
where
    B: Broker,
    F: FnOnce(Option<ChosenServer>) -> Fut,
    Fut: Future,
    Fut::Output: IntoApp<B>,
{
    main_with(|cli| execute_with_servers(cli, servers, build))
}

/// The server this process's command line chooses (see [`Cli::chosen_server`]), for a `main`
/// that picks its broker type by the URL's [scheme](ChosenServer::scheme) and then calls
/// [`run_cli`] (as `examples/streetlights` does). A command line that does not parse gives
/// `Ok(None)`: [`run_cli`] reports it.
///
/// # Errors
/// As [`Cli::chosen_server`].
pub fn chosen_server(servers: &[crate::broker::url::ServerSpec]) -> Result<Option<ChosenServer>> {
    match Cli::try_parse() {
        Ok(cli) => cli.chosen_server(servers),
        Err(_) => Ok(None),
    }
}

fn main_with<F, Fut>(run: F) -> ExitCode
where
    F: FnOnce(Cli) -> Fut,
    Fut: Future<Output = Result<()>>,
{
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let _ = e.print();
            return if e.use_stderr() {
                ExitCode::from(2)
            } else {
                ExitCode::SUCCESS
            };
        }
    };
    // A service logs its lifecycle; one-shot commands (a demo, `asyncapi gen`) stay quiet.
    let default_filter = match cli.command {
        Some(Command::Asyncapi {
            command: AsyncapiCommand::Gen { .. },
        }) => "warn",
        _ => "info",
    };
    init_tracing(cli.log.as_deref(), default_filter);
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            tracing::error!(error = %e, "cannot start the tokio runtime");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!(error = %e, "failed");
            ExitCode::FAILURE
        }
    }
}
