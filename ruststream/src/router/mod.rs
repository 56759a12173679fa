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
//! | decode failure | [`DecodePolicy`]: `reject`, or publish to a dead-letter address and `ack` |
//! | handler error / timeout / panic, after retries | route dead letter (publish + `ack`) if set, else [`ErrorPolicy`] |
//!
//! Every outcome is counted in [`RouterStats`].
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
mod stats;

use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures_util::{FutureExt, StreamExt};
use serde::Serialize;
use serde::de::DeserializeOwned;
use tokio::sync::{OwnedSemaphorePermit, Semaphore, watch};
use tokio::task::{JoinHandle, JoinSet};
use tokio::time::Instant;

pub use context::{Context, FailureKind, HandlerError};
pub use middleware::{BoxFuture, ConsumeInfo, Middleware, Next};
pub use route::{Backoff, DecodePolicy, ErrorPolicy, RetryPolicy, Route};
pub use stats::{RouterStats, StatsSnapshot};

use context::{Meta, publish_through};
use stats::Counters;

use crate::memory::ORIGINAL_ADDRESS_HEADER;
use crate::message::names;
use crate::{Address, Connection, IncomingMessage, OutgoingMessage, Result, SubscribeOptions};

/// Header carrying the failure when the router dead-letters a message.
pub const ERROR_HEADER: &str = "x-error";

/// Pause after a subscription yields an error, before asking it again.
const SUBSCRIPTION_ERROR_PAUSE: Duration = Duration::from_millis(100);

/// Counts a message as in flight until dropped (also when its task is aborted).
struct InFlight<'a>(&'a Counters);

impl<'a> InFlight<'a> {
    fn new(c: &'a Counters) -> Self {
        c.in_flight(1);
        InFlight(c)
    }
}

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.0.in_flight(-1);
    }
}

type HandlerFn<C> =
    dyn Fn(&[u8], &str, Context<C>) -> BoxFuture<'static, Result<(), HandlerError>> + Send + Sync;
type Hook = Box<dyn FnOnce() -> BoxFuture<'static, Result<()>> + Send>;

struct RouteEntry<C> {
    route: Route,
    handler: Arc<HandlerFn<C>>,
}

/// Routes and middleware, ready to [`start`](Router::start) on a connection.
pub struct Router<C: Connection> {
    routes: Vec<RouteEntry<C>>,
    middleware: Vec<Arc<dyn Middleware>>,
    on_start: Vec<Hook>,
    after_start: Vec<Hook>,
    on_shutdown: Vec<Hook>,
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
        }
    }
}

fn decode_failure(e: crate::Error) -> BoxFuture<'static, Result<(), HandlerError>> {
    Box::pin(std::future::ready(Err(HandlerError::with_kind(
        FailureKind::Decode,
        e,
    ))))
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
        let f: Arc<HandlerFn<C>> = Arc::new(move |payload, content_type, ctx| {
            match crate::codec::decode::<T>(content_type, payload) {
                Ok(value) => Box::pin(handler(value, ctx)),
                Err(e) => decode_failure(e),
            }
        });
        self.routes.push(RouteEntry { route, handler: f });
        self
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
        let handler = Arc::new(handler);
        let reply_ct: Arc<str> = route
            .reply_content_type
            .as_deref()
            .unwrap_or(&route.content_type)
            .into();
        let reply_address = route.reply_address.clone().map(Arc::new);
        let f: Arc<HandlerFn<C>> = Arc::new(move |payload, content_type, ctx: Context<C>| {
            match crate::codec::decode::<T>(content_type, payload) {
                Ok(value) => {
                    let handler = Arc::clone(&handler);
                    let reply_ct = Arc::clone(&reply_ct);
                    let reply_address = reply_address.clone();
                    Box::pin(async move {
                        let reply = handler(value, ctx.clone()).await?;
                        send_reply(&ctx, &reply_ct, reply_address.as_deref(), reply).await
                    })
                }
                Err(e) => decode_failure(e),
            }
        });
        self.routes.push(RouteEntry { route, handler: f });
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
        for entry in self.routes {
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
            let rt = Arc::new(RouteRuntime {
                name: entry.route.name.as_str().into(),
                route: entry.route,
                handler: entry.handler,
                middleware: Arc::clone(&middleware),
                counters: Counters {
                    route: route_stats,
                    total: Arc::clone(&total),
                },
            });
            tasks.push(tokio::spawn(route_loop(
                rt,
                conn.clone(),
                sub,
                stop_rx.clone(),
            )));
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
    let payload = crate::codec::encode(content_type, &reply)?;
    drop(reply);
    let target = match (ctx.reply_to(), reply_address) {
        (Some(r), _) => r.to_owned(),
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
    ctx.publish_message(OutgoingMessage::new(target, payload).content_type(content_type))
        .await?;
    Ok(())
}

struct RouteRuntime<C: Connection> {
    name: Arc<str>,
    route: Route,
    handler: Arc<HandlerFn<C>>,
    middleware: Arc<[Arc<dyn Middleware>]>,
    counters: Counters,
}

/// Wait for the stop signal; return its drain deadline. Never resolves if the
/// [`RunningRouter`] was dropped (the routes keep running, detached).
async fn stopped(rx: &mut watch::Receiver<Option<Instant>>) -> Instant {
    loop {
        if rx.changed().await.is_err() {
            std::future::pending::<()>().await;
        }
        let v = *rx.borrow_and_update();
        if let Some(deadline) = v {
            return deadline;
        }
    }
}

#[derive(Debug, Default)]
struct DrainReport {
    drained: u64,
    aborted: u64,
}

async fn route_loop<C: Connection>(
    rt: Arc<RouteRuntime<C>>,
    conn: C,
    mut sub: C::Subscription,
    mut stop: watch::Receiver<Option<Instant>>,
) -> DrainReport {
    let slots = Arc::new(Semaphore::new(rt.route.concurrency));
    let mut set: JoinSet<()> = JoinSet::new();
    let deadline = loop {
        let permit = tokio::select! {
            biased;
            d = stopped(&mut stop) => break Some(d),
            Some(_) = set.join_next(), if !set.is_empty() => continue,
            p = Arc::clone(&slots).acquire_owned() => match p {
                Ok(p) => p,
                Err(_) => break None,
            },
        };
        let next = tokio::select! {
            biased;
            d = stopped(&mut stop) => break Some(d),
            m = sub.next() => m,
        };
        match next {
            Some(Ok(msg)) => {
                set.spawn(process(Arc::clone(&rt), conn.clone(), msg, permit));
            }
            Some(Err(e)) => {
                tracing::warn!(route = %rt.name, error = %e, "subscription error");
                // Do not spin on a failing transport.
                drop(permit);
                tokio::select! {
                    biased;
                    d = stopped(&mut stop) => break Some(d),
                    () = tokio::time::sleep(SUBSCRIPTION_ERROR_PAUSE) => {}
                }
            }
            None => {
                tracing::debug!(route = %rt.name, "subscription ended");
                break None;
            }
        }
    };
    // Stop taking new messages: unsubscribe, then drain what is in flight.
    drop(sub);
    let mut report = DrainReport::default();
    let drain = async {
        while set.join_next().await.is_some() {
            report.drained += 1;
        }
    };
    let finished = match deadline {
        Some(d) => tokio::time::timeout_at(d, drain).await.is_ok(),
        None => {
            drain.await;
            true
        }
    };
    if !finished {
        report.aborted = set.len() as u64;
        tracing::warn!(route = %rt.name, aborted = report.aborted, "drain deadline passed; aborting in-flight handlers");
        set.abort_all();
        while set.join_next().await.is_some() {}
    }
    report
}

fn panic_message(p: &(dyn std::any::Any + Send)) -> String {
    if let Some(s) = p.downcast_ref::<&str>() {
        (*s).to_owned()
    } else if let Some(s) = p.downcast_ref::<String>() {
        s.clone()
    } else {
        "non-string panic payload".to_owned()
    }
}

async fn process<C: Connection>(
    rt: Arc<RouteRuntime<C>>,
    conn: C,
    msg: C::Message,
    _slot: OwnedSemaphorePermit,
) {
    let c = &rt.counters;
    c.inc(|s| &s.received);
    let _in_flight = InFlight::new(c);
    let meta = Arc::new(Meta {
        route: Arc::clone(&rt.name),
        address: msg.address().to_owned(),
        params: rt.route.address.captures(msg.address()).unwrap_or_default(),
        headers: msg.headers().clone(),
        correlation_id: msg
            .correlation_id()
            .or_else(|| msg.headers().get(names::CORRELATION_ID))
            .map(str::to_owned),
        reply_to: msg.reply_to().map(str::to_owned),
    });
    let base = msg.attempt().max(1);
    let max = rt.route.retries.max_attempts;
    let mut retry = 0u32;
    let failure = loop {
        let attempt = base.saturating_add(retry);
        let ctx = Context {
            conn: conn.clone(),
            meta: Arc::clone(&meta),
            attempt,
            middleware: Arc::clone(&rt.middleware),
        };
        let content_type = msg.content_type().unwrap_or(&rt.route.content_type);
        let info = ConsumeInfo {
            route: &rt.name,
            address: &meta.address,
            headers: &meta.headers,
            payload: msg.payload(),
            attempt,
            correlation_id: meta.correlation_id.as_deref(),
        };
        match run_attempt(&rt, &info, content_type, ctx).await {
            Ok(()) => break None,
            Err(e) => {
                match e.kind() {
                    FailureKind::Decode => {}
                    FailureKind::Panic => {
                        c.inc(|s| &s.handler_errors);
                        c.inc(|s| &s.panics);
                    }
                    FailureKind::Timeout => {
                        c.inc(|s| &s.handler_errors);
                        c.inc(|s| &s.timeouts);
                    }
                    _ => c.inc(|s| &s.handler_errors),
                }
                if e.is_retryable() && attempt < max {
                    tracing::debug!(route = %rt.name, attempt, error = %e, "retrying");
                    c.inc(|s| &s.retries);
                    tokio::time::sleep(rt.route.retries.backoff.delay(retry)).await;
                    retry += 1;
                    continue;
                }
                break Some((e, attempt));
            }
        }
    };
    let result = match failure {
        None => msg.ack().await.map(|()| c.inc(|s| &s.acked)),
        Some((e, _)) if e.kind() == FailureKind::Decode => {
            c.inc(|s| &s.decode_failures);
            tracing::warn!(route = %rt.name, address = %meta.address, error = %e, "undecodable message");
            match &rt.route.on_decode_error {
                DecodePolicy::Reject => msg.reject().await.map(|()| c.inc(|s| &s.rejected)),
                DecodePolicy::DeadLetter(addr) => dead_letter(&rt, &conn, msg, addr, &e).await,
            }
        }
        Some((e, attempt)) => {
            tracing::warn!(route = %rt.name, address = %meta.address, attempt, error = %e, "handler failed");
            if let Some(addr) = &rt.route.dead_letter {
                dead_letter(&rt, &conn, msg, addr, &e).await
            } else {
                match rt.route.on_error {
                    ErrorPolicy::Nack { requeue: true } if max > 1 && attempt >= max => {
                        msg.reject().await.map(|()| c.inc(|s| &s.rejected))
                    }
                    ErrorPolicy::Nack { requeue } => {
                        msg.nack(requeue).await.map(|()| c.inc(|s| &s.nacked))
                    }
                    ErrorPolicy::Reject => msg.reject().await.map(|()| c.inc(|s| &s.rejected)),
                }
            }
        }
    };
    if let Err(e) = result {
        c.inc(|s| &s.settle_errors);
        tracing::warn!(route = %rt.name, error = %e, "settling failed");
    }
}

async fn run_attempt<C: Connection>(
    rt: &RouteRuntime<C>,
    info: &ConsumeInfo<'_>,
    content_type: &str,
    ctx: Context<C>,
) -> Result<(), HandlerError> {
    let chain = AssertUnwindSafe(async move {
        let handler = &rt.handler;
        if rt.middleware.is_empty() {
            handler(info.payload, content_type, ctx).await
        } else {
            let payload = info.payload;
            let next = Next {
                rest: &rt.middleware,
                terminal: Box::new(move || -> BoxFuture<'_, Result<(), HandlerError>> {
                    handler(payload, content_type, ctx)
                }),
            };
            next.run(info).await
        }
    })
    .catch_unwind();
    let outcome = match rt.route.timeout {
        Some(limit) => match tokio::time::timeout(limit, chain).await {
            Ok(r) => r,
            Err(_) => {
                return Err(HandlerError::with_kind(
                    FailureKind::Timeout,
                    format_args!("no result within {limit:?}"),
                ));
            }
        },
        None => chain.await,
    };
    outcome.unwrap_or_else(|p| {
        Err(HandlerError::with_kind(
            FailureKind::Panic,
            panic_message(&*p),
        ))
    })
}

async fn dead_letter<C: Connection>(
    rt: &RouteRuntime<C>,
    conn: &C,
    msg: C::Message,
    address: &str,
    error: &HandlerError,
) -> Result<()> {
    let mut out = OutgoingMessage::new(address, Bytes::copy_from_slice(msg.payload()))
        .with_headers(msg.headers().clone())
        .header(ERROR_HEADER, error.to_string())
        .header(ORIGINAL_ADDRESS_HEADER, msg.address());
    out.correlation_id = msg.correlation_id().map(str::to_owned);
    out.key = msg.key().map(Bytes::copy_from_slice);
    match publish_through(conn, &rt.middleware, out).await {
        Ok(()) => {
            rt.counters.inc(|s| &s.dead_lettered);
            msg.ack().await
        }
        Err(e) => {
            tracing::warn!(route = %rt.name, error = %e, "dead-letter publish failed; requeueing");
            let _ = msg.nack(true).await;
            Err(e)
        }
    }
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
