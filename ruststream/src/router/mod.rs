//! The router: binds address templates to typed handlers and runs them.
//!
//! For each consumed message the router captures the address parameters, decodes the payload
//! by its `content-type` header (falling back to the route's content type), runs the
//! middleware chain and the handler under the route's timeout with panics caught, retries
//! retryable failures locally ([`RetryPolicy`]), then settles the message:
//!
//! | outcome | settlement |
//! | --- | --- |
//! | handler `Ok` | `ack` |
//! | decode failure, schema violation ([`validate`](crate::validate), generated routes), or payload over [`Route::max_payload`] | [`DecodePolicy`]: `reject`, or publish to a dead-letter address (with the reason in `x-error`) and `ack` |
//! | handler error / timeout / panic, after retries | route dead letter (publish + `ack`) if set, else [`ErrorPolicy`] |
//!
//! Every outcome is counted in [`RouterStats`].
//!
//! Each route runs [`concurrency`](Route::concurrency) worker tasks that share its
//! subscription; a worker takes a message only when it is free, so a slow route slows its
//! broker subscription (back-pressure). Handlers registered with [`Router::route`] are called
//! without boxing their future and the per-message metadata is reused, so consuming a message
//! allocates nothing in steady state unless the handler, middleware or a reply does.
//!
//! ```
//! # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
//! use std::time::Duration;
//! use ruststream::memory::MemoryBroker;
//! use ruststream::router::{Context, HandlerError, Route, Router};
//! use ruststream::{Broker, memory::MemoryConnection};
//!
//! let conn = MemoryBroker::default().connect().await?;
//! let mut router = Router::<MemoryConnection>::new();
//! router.route(Route::new("user/{id}/signup")?, |name: String, ctx: Context<MemoryConnection>| async move {
//!     ctx.publish(&format!("user/{}/welcome", ctx.param("id").unwrap_or("?")), "application/json", &name).await?;
//!     Ok::<_, HandlerError>(())
//! });
//! let running = router.start(conn.clone()).await?;
//! ruststream::client::publish(&conn, "user/7/signup".into(), "application/json", &"Ada", Default::default()).await?;
//! let report = running.shutdown(Duration::from_secs(1)).await?;
//! assert_eq!(report.aborted, 0);
//! # Ok::<(), Box<dyn std::error::Error>>(()) }).unwrap();
//! ```

mod context;
mod middleware;
mod route;
mod run;
mod stats;

use std::future::Future;
use std::marker::PhantomData;
use std::sync::Arc;
use std::time::Duration;

use serde::Serialize;
use serde::de::DeserializeOwned;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio::time::Instant;

pub use context::{Context, FailureKind, HandlerError};
pub use middleware::{BoxFuture, ConsumeInfo, Middleware, Next, PublishInfo};
pub use route::{Backoff, DecodePolicy, ErrorPolicy, RetryPolicy, Route};
pub use run::ERROR_HEADER;
pub use stats::{RouterStats, StatsSnapshot};

use run::{
    Boxed, Decoded, DrainReport, Invoke, Plain, RouteRuntime, StartArgs, boxed_decode_failure,
};
use stats::Counters;

use crate::{Address, Connection, OutgoingMessage, Result, SubscribeOptions};

type Hook = Box<dyn FnOnce() -> BoxFuture<'static, Result<()>> + Send>;
type Starter<C> = Box<dyn FnOnce(Route, StartArgs<C>) -> JoinHandle<DrainReport> + Send>;

struct RouteEntry<C: Connection> {
    route: Route,
    start: Starter<C>,
}

/// Routes and middleware, ready to [`start`](Router::start) on a connection.
pub struct Router<C: Connection> {
    routes: Vec<RouteEntry<C>>,
    middleware: Vec<Arc<dyn Middleware>>,
    on_start: Vec<Hook>,
    after_start: Vec<Hook>,
    on_shutdown: Vec<Hook>,
    max_payload: Option<usize>,
    on_decode_error: Option<DecodePolicy>,
}

impl<C: Connection> std::fmt::Debug for Router<C> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Router")
            .field(
                "routes",
                &self
                    .routes
                    .iter()
                    .map(|r| &r.route.name)
                    .collect::<Vec<_>>(),
            )
            .field("middleware", &self.middleware.len())
            .finish()
    }
}

impl<C: Connection> Default for Router<C> {
    fn default() -> Self {
        Router {
            routes: Vec::new(),
            middleware: Vec::new(),
            on_start: Vec::new(),
            after_start: Vec::new(),
            on_shutdown: Vec::new(),
            max_payload: None,
            on_decode_error: None,
        }
    }
}

fn hook<F, Fut>(f: F) -> Hook
where
    F: FnOnce() -> Fut + Send + 'static,
    Fut: Future<Output = Result<()>> + Send + 'static,
{
    Box::new(move || Box::pin(f()))
}

impl<C: Connection> Router<C> {
    /// An empty router.
    pub fn new() -> Self {
        Self::default()
    }

    /// Handle messages on `route` with `handler`, which gets the decoded payload and a
    /// [`Context`].
    pub fn route<T, F, Fut>(&mut self, route: Route, handler: F) -> &mut Self
    where
        T: DeserializeOwned + Send + 'static,
        F: Fn(T, Context<C>) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<(), HandlerError>> + Send + 'static,
    {
        self.push(
            route,
            Plain {
                handler,
                _types: PhantomData,
            },
        )
    }

    /// Like [`route`](Self::route), but `decode` turns the payload into `T`, given the
    /// message's content type (its `content-type` header, else the route's), instead of the
    /// codec. Generated code uses it to decode an operation's several messages by content type
    /// first. A decode error is handled as by [`route`](Self::route) (the route's
    /// [`DecodePolicy`]).
    pub fn route_with<T, D, F, Fut>(&mut self, route: Route, decode: D, handler: F) -> &mut Self
    where
        T: Send + 'static,
        D: Fn(&str, &[u8]) -> Result<T> + Send + Sync + 'static,
        F: Fn(T, Context<C>) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<(), HandlerError>> + Send + 'static,
    {
        self.push(
            route,
            Decoded {
                decode,
                handler,
                _types: PhantomData,
            },
        )
    }

    /// Handle requests on `route`: the handler's `R` is encoded with the route's reply content
    /// type and published to the request's `reply_to` (else the route's
    /// [`reply_address`](Route::reply_address) rendered with the request's parameters),
    /// carrying the request's correlation id. A reply that cannot be sent fails the attempt.
    pub fn route_reply<T, R, F, Fut>(&mut self, route: Route, handler: F) -> &mut Self
    where
        T: DeserializeOwned + Send + 'static,
        R: Serialize + Send + 'static,
        F: Fn(T, Context<C>) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<R, HandlerError>> + Send + 'static,
    {
        self.route_reply_with(route, crate::codec::decode::<T>, handler)
    }

    /// Like [`route_reply`](Self::route_reply), but `decode` turns the payload into `T` (as in
    /// [`route_with`](Self::route_with)); generated code passes
    /// [`validate::decode`](crate::validate::decode) to refuse requests that violate their
    /// schema.
    pub fn route_reply_with<T, R, D, F, Fut>(
        &mut self,
        route: Route,
        decode: D,
        handler: F,
    ) -> &mut Self
    where
        T: Send + 'static,
        R: Serialize + Send + 'static,
        D: Fn(&str, &[u8]) -> Result<T> + Send + Sync + 'static,
        F: Fn(T, Context<C>) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<R, HandlerError>> + Send + 'static,
    {
        let handler = Arc::new(handler);
        let reply_ct: Arc<str> = route
            .reply_content_type
            .as_deref()
            .unwrap_or(&route.content_type)
            .into();
        let reply_address = route.reply_address.clone().map(Arc::new);
        let f = Boxed(Box::new(
            move |payload, content_type, ctx: Context<C>| match decode(content_type, payload) {
                Ok(value) => {
                    let handler = Arc::clone(&handler);
                    let reply_ct = Arc::clone(&reply_ct);
                    let reply_address = reply_address.clone();
                    Box::pin(async move {
                        let reply = handler(value, ctx.clone()).await?;
                        send_reply(&ctx, &reply_ct, reply_address.as_deref(), reply).await
                    })
                }
                Err(e) => boxed_decode_failure(e),
            },
        ));
        self.push(route, f)
    }

    fn push<H: Invoke<C>>(&mut self, route: Route, handler: H) -> &mut Self {
        let start: Starter<C> = Box::new(move |route: Route, args: StartArgs<C>| {
            let rt = Arc::new(RouteRuntime {
                name: route.name.as_str().into(),
                route,
                handler,
                middleware: Arc::clone(&args.middleware),
                counters: args.counters.clone(),
            });
            tokio::spawn(run::supervise(rt, args))
        });
        self.routes.push(RouteEntry { route, start });
        self
    }

    /// Default payload size limit, in bytes, for the routes that set none with
    /// [`Route::max_payload`] (which see). Applies to every route at [`start`](Self::start),
    /// whenever it was added. Default: no limit.
    pub fn max_payload(&mut self, bytes: usize) -> &mut Self {
        self.max_payload = Some(bytes);
        self
    }

    /// Default settlement, for the routes that set none with [`Route::on_decode_error`], of
    /// messages that cannot be decoded or violate their schema: how to dead-letter what the
    /// routes of a generated `register` refuse. Applies to every route at
    /// [`start`](Self::start), whenever it was added. Default: [`DecodePolicy::Reject`].
    pub fn on_decode_error(&mut self, policy: DecodePolicy) -> &mut Self {
        self.on_decode_error = Some(policy);
        self
    }

    /// Add middleware; the first added is the outermost.
    pub fn layer<M: Middleware>(&mut self, middleware: M) -> &mut Self {
        self.middleware.push(Arc::new(middleware));
        self
    }

    /// Run `f` at start, before subscribing; an error aborts the start.
    pub fn on_start<F, Fut>(&mut self, f: F) -> &mut Self
    where
        F: FnOnce() -> Fut + Send + 'static,
        Fut: Future<Output = Result<()>> + Send + 'static,
    {
        self.on_start.push(hook(f));
        self
    }

    /// Run `f` once every route is subscribed and running.
    pub fn after_start<F, Fut>(&mut self, f: F) -> &mut Self
    where
        F: FnOnce() -> Fut + Send + 'static,
        Fut: Future<Output = Result<()>> + Send + 'static,
    {
        self.after_start.push(hook(f));
        self
    }

    /// Run `f` at shutdown, after in-flight messages drained and before the connection closes.
    pub fn on_shutdown<F, Fut>(&mut self, f: F) -> &mut Self
    where
        F: FnOnce() -> Fut + Send + 'static,
        Fut: Future<Output = Result<()>> + Send + 'static,
    {
        self.on_shutdown.push(hook(f));
        self
    }

    /// Names of the routes, in registration order.
    pub fn route_names(&self) -> impl Iterator<Item = &str> {
        self.routes.iter().map(|r| r.route.name.as_str())
    }

    /// Run the `on_start` hooks, subscribe every route, spawn their tasks (on the current tokio
    /// runtime), run the `after_start` hooks.
    pub async fn start(self, conn: C) -> Result<RunningRouter> {
        for h in self.on_start {
            h().await?;
        }
        let middleware: Arc<[Arc<dyn Middleware>]> = self.middleware.into();
        let total = Arc::new(RouterStats::default());
        let mut subscribed = Vec::with_capacity(self.routes.len());
        for mut entry in self.routes {
            if entry.route.max_payload.is_none() {
                entry.route.max_payload = self.max_payload;
            }
            if entry.route.on_decode_error.is_none() {
                entry
                    .route
                    .on_decode_error
                    .clone_from(&self.on_decode_error);
            }
            let mut opts = SubscribeOptions::new()
                .prefetch(u32::try_from(entry.route.concurrency).unwrap_or(u32::MAX));
            opts.queue_group = entry.route.queue_group.clone();
            opts.durable = entry.route.durable.clone();
            let sub = conn.subscribe(&entry.route.address, opts).await?;
            subscribed.push((entry, sub));
        }
        let (stop, stop_rx) = watch::channel(None);
        let mut tasks = Vec::with_capacity(subscribed.len());
        let mut routes = Vec::with_capacity(subscribed.len());
        for (entry, sub) in subscribed {
            let route_stats = Arc::new(RouterStats::default());
            routes.push((entry.route.name.clone(), Arc::clone(&route_stats)));
            let counters = Counters {
                route: route_stats,
                total: Arc::clone(&total),
                single_writer: entry.route.concurrency == 1,
            };
            tasks.push((entry.start)(
                entry.route,
                StartArgs {
                    conn: conn.clone(),
                    sub,
                    stop: stop_rx.clone(),
                    middleware: Arc::clone(&middleware),
                    counters,
                },
            ));
        }
        let closer = conn.clone();
        let mut running = RunningRouter {
            stop,
            tasks,
            total,
            routes,
            on_shutdown: self.on_shutdown,
            close: Some(Box::new(move || Box::pin(closer.shutdown()))),
        };
        for h in self.after_start {
            if let Err(e) = h().await {
                running.close = None;
                let _ = running.stop(Duration::ZERO).await;
                return Err(e);
            }
        }
        Ok(running)
    }
}

async fn send_reply<C: Connection, R: Serialize + Send>(
    ctx: &Context<C>,
    content_type: &str,
    reply_address: Option<&Address>,
    reply: R,
) -> Result<(), HandlerError> {
    let payload = crate::client::encode_payload(content_type, &reply)?;
    drop(reply);
    let target = match (ctx.reply_to(), reply_address) {
        (Some(r), _) => crate::client::address(r),
        (None, Some(template)) => template
            .render(|name| ctx.param(name))
            .map_err(|e| HandlerError::permanent(format_args!("reply address: {e}")))?,
        (None, None) => {
            tracing::warn!(
                route = ctx.route(),
                "request has no reply_to and the route no reply address; reply dropped"
            );
            return Ok(());
        }
    };
    let mut message = OutgoingMessage::new(target, payload);
    crate::client::add_content_type(&mut message.headers, content_type);
    ctx.publish_message(message).await?;
    Ok(())
}

/// What [`RunningRouter::shutdown`] did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct ShutdownReport {
    /// In-flight messages that finished during the drain.
    pub drained: u64,
    /// In-flight handlers aborted when the deadline passed (their messages stay unsettled, so
    /// an at-least-once broker redelivers them).
    pub aborted: u64,
    /// How long the shutdown took.
    pub elapsed: Duration,
}

/// A started router. Dropping it leaves the routes running (detached).
pub struct RunningRouter {
    stop: watch::Sender<Option<Instant>>,
    tasks: Vec<JoinHandle<DrainReport>>,
    total: Arc<RouterStats>,
    routes: Vec<(String, Arc<RouterStats>)>,
    on_shutdown: Vec<Hook>,
    close: Option<Hook>,
}

impl std::fmt::Debug for RunningRouter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RunningRouter")
            .field("routes", &self.routes.len())
            .field("stats", &self.total.snapshot())
            .finish()
    }
}

impl RunningRouter {
    /// Counters over all routes.
    pub fn stats(&self) -> &RouterStats {
        &self.total
    }
    /// A shared handle to the counters over all routes (for exporters).
    pub fn stats_handle(&self) -> Arc<RouterStats> {
        Arc::clone(&self.total)
    }
    /// Counters per route, by route name, in registration order.
    pub fn route_stats(&self) -> &[(String, Arc<RouterStats>)] {
        &self.routes
    }

    /// Stop taking new messages, let in-flight ones finish until `deadline` (then abort them),
    /// run the `on_shutdown` hooks and shut the connection down.
    pub async fn shutdown(mut self, deadline: Duration) -> Result<ShutdownReport> {
        let close = self.close.take();
        let report = self.stop(deadline).await?;
        if let Some(close) = close {
            close().await?;
        }
        Ok(report)
    }

    /// Like [`shutdown`](Self::shutdown) but leaves the connection open.
    pub async fn stop(mut self, deadline: Duration) -> Result<ShutdownReport> {
        let started = Instant::now();
        let _ = self.stop.send(Some(started + deadline));
        let mut report = ShutdownReport::default();
        for t in std::mem::take(&mut self.tasks) {
            match t.await {
                Ok(r) => {
                    report.drained += r.drained;
                    report.aborted += r.aborted;
                }
                Err(e) => tracing::warn!(error = %e, "route task failed"),
            }
        }
        let mut hook_error = None;
        for h in std::mem::take(&mut self.on_shutdown) {
            if let Err(e) = h().await {
                tracing::warn!(error = %e, "on_shutdown hook failed");
                hook_error.get_or_insert(e);
            }
        }
        report.elapsed = started.elapsed();
        match hook_error {
            Some(e) => Err(e),
            None => Ok(report),
        }
    }
}
