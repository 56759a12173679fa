//! The running side of a route: a fixed set of workers per route (one per concurrency slot)
//! sharing the subscription, so handling a message spawns nothing; per-worker metadata reused
//! from message to message; settlement by policy.

use std::future::Future;
use std::marker::PhantomData;
use std::panic::AssertUnwindSafe;
use std::pin::Pin;
use std::sync::Arc;
use std::task::Poll;
use std::time::Duration;

use bytes::Bytes;
use futures_util::future::{Either, Ready, ready};
use futures_util::{FutureExt, StreamExt};
use serde::de::DeserializeOwned;
use tokio::sync::{Notify, watch};
use tokio::task::JoinSet;
use tokio::time::Instant;

use super::context::{Meta, publish_through};
use super::stats::Counters;
use super::{
    BoxFuture, ConsumeInfo, Context, DecodePolicy, ErrorPolicy, FailureKind, HandlerError,
    Middleware, Next, Route,
};
use crate::memory::ORIGINAL_ADDRESS_HEADER;
use crate::message::names;
use crate::{Connection, IncomingMessage, OutgoingMessage, Params, Result};

/// Header carrying the failure when the router dead-letters a message.
pub const ERROR_HEADER: &str = "x-error";

/// Pause after a subscription yields an error, before asking it again.
const SUBSCRIPTION_ERROR_PAUSE: Duration = Duration::from_millis(100);

/// Decode and call a handler; one implementation per kind of route, monomorphised, so the
/// handler's future is not boxed.
pub(crate) trait Invoke<C: Connection>: Send + Sync + 'static {
    type Fut: Future<Output = Result<(), HandlerError>> + Send + 'static;
    fn invoke(&self, payload: &[u8], content_type: &str, ctx: Context<C>) -> Self::Fut;
}

fn decode_error(e: crate::Error) -> HandlerError {
    HandlerError::invalid(e)
}

/// A `route` handler.
pub(crate) struct Plain<T, F, Fut> {
    pub(crate) handler: F,
    pub(crate) _types: PhantomData<fn(T) -> Fut>,
}

impl<C, T, F, Fut> Invoke<C> for Plain<T, F, Fut>
where
    C: Connection,
    T: DeserializeOwned + Send + 'static,
    F: Fn(T, Context<C>) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<(), HandlerError>> + Send + 'static,
{
    type Fut = Either<Fut, Ready<Result<(), HandlerError>>>;

    fn invoke(&self, payload: &[u8], content_type: &str, ctx: Context<C>) -> Self::Fut {
        match crate::codec::decode::<T>(content_type, payload) {
            Ok(value) => Either::Left((self.handler)(value, ctx)),
            Err(e) => Either::Right(ready(Err(decode_error(e)))),
        }
    }
}

/// A `route_with` handler: its own decode function instead of the codec.
pub(crate) struct Decoded<T, D, F, Fut> {
    pub(crate) decode: D,
    pub(crate) handler: F,
    pub(crate) _types: PhantomData<fn(T) -> Fut>,
}

impl<C, T, D, F, Fut> Invoke<C> for Decoded<T, D, F, Fut>
where
    C: Connection,
    T: Send + 'static,
    D: Fn(&str, &[u8]) -> crate::Result<T> + Send + Sync + 'static,
    F: Fn(T, Context<C>) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<(), HandlerError>> + Send + 'static,
{
    type Fut = Either<Fut, Ready<Result<(), HandlerError>>>;

    fn invoke(&self, payload: &[u8], content_type: &str, ctx: Context<C>) -> Self::Fut {
        match (self.decode)(content_type, payload) {
            Ok(value) => Either::Left((self.handler)(value, ctx)),
            Err(e) => Either::Right(ready(Err(decode_error(e)))),
        }
    }
}

/// A handler erased behind a boxed future (reply routes, which publish anyway).
pub(crate) struct Boxed<C>(
    #[allow(clippy::type_complexity)]
    pub(crate)  Box<
        dyn Fn(&[u8], &str, Context<C>) -> BoxFuture<'static, Result<(), HandlerError>>
            + Send
            + Sync,
    >,
);

impl<C: Connection> Invoke<C> for Boxed<C> {
    type Fut = BoxFuture<'static, Result<(), HandlerError>>;

    fn invoke(&self, payload: &[u8], content_type: &str, ctx: Context<C>) -> Self::Fut {
        (self.0)(payload, content_type, ctx)
    }
}

/// A decode failure as a boxed future (for [`Boxed`] handlers).
pub(crate) fn boxed_decode_failure(
    e: crate::Error,
) -> BoxFuture<'static, Result<(), HandlerError>> {
    Box::pin(ready(Err(decode_error(e))))
}

/// Counts a worker's message in flight until dropped (also when the worker is aborted).
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

/// Everything a route's workers share.
pub(crate) struct RouteRuntime<H> {
    pub(crate) name: Arc<str>,
    pub(crate) route: Route,
    pub(crate) handler: H,
    pub(crate) middleware: Arc<[Arc<dyn Middleware>]>,
    pub(crate) counters: Counters,
}

/// What a route's supervisor is started with.
pub(crate) struct StartArgs<C: Connection> {
    pub(crate) conn: C,
    pub(crate) sub: C::Subscription,
    pub(crate) stop: watch::Receiver<Option<Instant>>,
    pub(crate) middleware: Arc<[Arc<dyn Middleware>]>,
    pub(crate) counters: Counters,
}

/// What a route did during shutdown.
#[derive(Debug, Default)]
pub(crate) struct DrainReport {
    pub(crate) drained: u64,
    pub(crate) aborted: u64,
}

/// Wait for the stop signal; return its drain deadline. Never resolves if the
/// [`RunningRouter`](super::RunningRouter) was dropped (the routes keep running, detached).
async fn stopped(rx: &mut watch::Receiver<Option<Instant>>) -> Instant {
    loop {
        let current = *rx.borrow_and_update();
        if let Some(deadline) = current {
            return deadline;
        }
        if rx.changed().await.is_err() {
            std::future::pending::<()>().await;
        }
    }
}

/// Whether the stop signal was sent: one atomic load (the signal is sent once, `None` to
/// `Some(deadline)`, and the workers' receivers never mark it seen), where `borrow` would take
/// the channel's lock on every message.
fn is_stopped(stop: &watch::Receiver<Option<Instant>>) -> bool {
    match stop.has_changed() {
        Ok(changed) => changed,
        // The router handle is gone: the value still tells.
        Err(_) => stop.borrow().is_some(),
    }
}

/// Drive `fut` unless the stop signal wins. A stop already signalled is seen (cheaply, through
/// `stop`) before `fut` is polled, so no new message is taken after it; the worker's pinned
/// `stop_fut` (created once per worker, not once per message) is polled only while `fut` is
/// pending, so an idle worker still wakes on the signal. Returns `None` when stopped.
async fn unless_stopped<F: Future, S: Future<Output = Instant>>(
    stop: &watch::Receiver<Option<Instant>>,
    stop_fut: Pin<&mut S>,
    fut: F,
) -> Option<F::Output> {
    unless_stopped_or(stop, stop_fut, fut, || {}).await
}

/// [`unless_stopped`], calling `on_pending` each time `fut` is not ready.
async fn unless_stopped_or<F: Future, S: Future<Output = Instant>>(
    stop: &watch::Receiver<Option<Instant>>,
    mut stop_fut: Pin<&mut S>,
    fut: F,
    mut on_pending: impl FnMut(),
) -> Option<F::Output> {
    let mut fut = std::pin::pin!(fut);
    std::future::poll_fn(|cx| {
        if is_stopped(stop) {
            return Poll::Ready(None);
        }
        if let Poll::Ready(v) = fut.as_mut().poll(cx) {
            return Poll::Ready(Some(v));
        }
        on_pending();
        stop_fut.as_mut().poll(cx).map(|_| None)
    })
    .await
}

/// A route's subscription, shared by its workers: one worker at a time takes it out to wait
/// for the next message and puts it back before handling that message. A plain mutex guards
/// only the take and the put (never held across an `.await`); workers that find it out wait
/// for its return. Whoever holds it after the stop signal drops it (unsubscribes): the
/// supervisor when it is in its slot, else the worker that has it out.
struct SharedSubscription<S> {
    slot: std::sync::Mutex<Slot<S>>,
    /// Signalled when the subscription is put back (only with more than one worker).
    returned: Notify,
    /// More than one worker shares it.
    shared: bool,
}

enum Slot<S> {
    /// In its slot, free to take.
    Here(S),
    /// Taken by a worker waiting for a message.
    Out,
    /// Unsubscribed (stopped, or the stream ended).
    Gone,
}

impl<S> SharedSubscription<S> {
    fn new(sub: S, workers: usize) -> Self {
        SharedSubscription {
            slot: std::sync::Mutex::new(Slot::Here(sub)),
            returned: Notify::new(),
            shared: workers > 1,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Slot<S>> {
        self.slot.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Take the subscription out, waiting while another worker has it; `None` when it is gone
    /// or the stop signal came.
    async fn take<F: Future<Output = Instant>>(
        &self,
        stop: &watch::Receiver<Option<Instant>>,
        mut stop_fut: Pin<&mut F>,
    ) -> Option<S> {
        loop {
            let returned = self.returned.notified();
            {
                let mut slot = self.lock();
                match std::mem::replace(&mut *slot, Slot::Out) {
                    Slot::Here(s) => return Some(s),
                    Slot::Out => {}
                    Slot::Gone => {
                        *slot = Slot::Gone;
                        return None;
                    }
                }
            }
            unless_stopped(stop, stop_fut.as_mut(), returned).await?;
        }
    }

    /// Put the subscription back; after the stop signal, drop it instead (unsubscribe).
    fn put_back(&self, sub: S, stop: &watch::Receiver<Option<Instant>>) {
        let mut slot = self.lock();
        if is_stopped(stop) {
            *slot = Slot::Gone;
            drop(slot);
            drop(sub);
            return;
        }
        *slot = Slot::Here(sub);
        drop(slot);
        if self.shared {
            self.returned.notify_one();
        }
    }

    /// Unsubscribe now if the subscription is in its slot (after the stop signal).
    fn unsubscribe(&self) {
        let taken = {
            let mut slot = self.lock();
            if matches!(*slot, Slot::Out) {
                return;
            }
            std::mem::replace(&mut *slot, Slot::Gone)
        };
        drop(taken);
    }

    /// The stream ended: nobody takes it again.
    fn end(&self) {
        *self.lock() = Slot::Gone;
        self.returned.notify_waiters();
    }
}

/// Run a route: `concurrency` workers, then drain them by the deadline on stop.
pub(crate) async fn supervise<C: Connection, H: Invoke<C>>(
    rt: Arc<RouteRuntime<H>>,
    args: StartArgs<C>,
) -> DrainReport {
    let StartArgs {
        conn,
        sub,
        mut stop,
        ..
    } = args;
    let sub = Arc::new(SharedSubscription::new(sub, rt.route.concurrency));
    let mut workers = JoinSet::new();
    for _ in 0..rt.route.concurrency {
        workers.spawn(worker::<C, H>(
            Arc::clone(&rt),
            conn.clone(),
            Arc::clone(&sub),
            stop.clone(),
        ));
    }
    let mut report = DrainReport::default();
    let tally = |report: &mut DrainReport, r: Result<bool, tokio::task::JoinError>| match r {
        Ok(true) => report.drained += 1,
        Ok(false) => {}
        Err(e) => tracing::warn!(error = %e, "route worker failed"),
    };
    let deadline = loop {
        tokio::select! {
            biased;
            d = stopped(&mut stop) => break Some(d),
            r = workers.join_next() => match r {
                Some(r) => tally(&mut report, r),
                None => break None,
            },
        }
    };
    let Some(deadline) = deadline else {
        return report;
    };
    // Stop taking new messages: unsubscribe (a worker waiting for a message with the
    // subscription out drops it itself on seeing the stop).
    sub.unsubscribe();
    let finished = {
        let drain = async {
            while let Some(r) = workers.join_next().await {
                tally(&mut report, r);
            }
        };
        tokio::time::timeout_at(deadline, drain).await.is_ok()
    };
    if !finished {
        report.aborted = workers.len() as u64;
        tracing::warn!(route = %rt.name, aborted = report.aborted, "drain deadline passed; aborting in-flight handlers");
        workers.abort_all();
        while workers.join_next().await.is_some() {}
    }
    report
}

/// Reused from message to message by one worker.
struct Scratch<C> {
    meta: Arc<Meta<C>>,
    ranges: Vec<std::ops::Range<usize>>,
}

fn set_opt(dst: &mut Option<String>, src: Option<&str>) {
    match (dst.as_mut(), src) {
        (Some(d), Some(s)) => {
            d.clear();
            d.push_str(s);
        }
        (None, Some(s)) => *dst = Some(s.to_owned()),
        (_, None) => *dst = None,
    }
}

impl<C: Connection> Scratch<C> {
    fn new(
        name: Arc<str>,
        route: &Route,
        conn: C,
        middleware: &Arc<[Arc<dyn Middleware>]>,
    ) -> Self {
        let template = if route.address.is_concrete() {
            route.address.as_str()
        } else {
            ""
        };
        Scratch {
            meta: Arc::new(Meta {
                conn,
                middleware: (!middleware.is_empty()).then(|| Arc::clone(middleware)),
                route: name,
                address: String::new(),
                template: template.into(),
                from_template: false,
                params: Params::default(),
                headers: crate::Headers::new(),
                correlation_id: None,
                reply_to: None,
            }),
            ranges: Vec::new(),
        }
    }

    /// Fill the metadata for `msg`, in place when no handler kept a previous `Context`.
    fn fill<M: IncomingMessage>(&mut self, route: &Route, msg: &M) {
        if Arc::get_mut(&mut self.meta).is_none() {
            self.meta = Arc::new(Meta {
                conn: self.meta.conn.clone(),
                middleware: self.meta.middleware.clone(),
                route: Arc::clone(&self.meta.route),
                address: String::new(),
                template: Arc::clone(&self.meta.template),
                from_template: false,
                params: Params::default(),
                headers: crate::Headers::new(),
                correlation_id: None,
                reply_to: None,
            });
        }
        if let Some(m) = Arc::get_mut(&mut self.meta) {
            let address = msg.address();
            // A template without parameters: nothing to capture, and usually nothing to copy.
            m.from_template = !m.template.is_empty() && *m.template == *address;
            if m.from_template {
                m.params.clear();
            } else {
                m.address.clear();
                m.address.push_str(address);
                route
                    .address
                    .capture_into(address, &mut self.ranges, &mut m.params);
            }
            m.headers.clone_from(msg.headers());
            let cid = msg
                .correlation_id()
                .or_else(|| msg.headers().get(names::CORRELATION_ID));
            set_opt(&mut m.correlation_id, cid);
            set_opt(&mut m.reply_to, msg.reply_to());
        }
    }
}

/// Take messages one at a time and handle them. Returns whether it finished a message after
/// the stop signal (a drained message).
async fn worker<C: Connection, H: Invoke<C>>(
    rt: Arc<RouteRuntime<H>>,
    conn: C,
    sub: Arc<SharedSubscription<C::Subscription>>,
    stop: watch::Receiver<Option<Instant>>,
) -> bool {
    let mut scratch = Scratch::new(
        Arc::clone(&rt.name),
        &rt.route,
        conn.clone(),
        &rt.middleware,
    );
    // One stop-signal future for the worker's lifetime; it owns its own receiver.
    let mut stop_rx = stop.clone();
    let mut stop_fut = std::pin::pin!(async move { stopped(&mut stop_rx).await });
    // The only worker of its route keeps the subscription (no slot round trip per message) and
    // drops it itself as soon as the stop signal comes, also while handling a message.
    let exclusive = !sub.shared;
    let mut held: Option<C::Subscription> = None;
    // Counts this worker's message in flight: from taking a message until the subscription
    // has no next one ready (not per message: two reference counts less for each message of
    // a busy streak; a worker handles one message at a time, so the count is the same).
    let mut busy: Option<InFlight<'_>> = None;
    loop {
        let next = {
            let mut s = match held.take() {
                Some(s) => s,
                None => {
                    busy = None;
                    match sub.take(&stop, stop_fut.as_mut()).await {
                        Some(s) => s,
                        None => return false,
                    }
                }
            };
            // Going idle (nothing in flight) while no message is ready.
            let m = unless_stopped_or(&stop, stop_fut.as_mut(), s.next(), || busy = None).await;
            // Stopped while waiting: `s` is dropped here (unsubscribed).
            let Some(m) = m else {
                return false;
            };
            let Some(m) = m else {
                tracing::debug!(route = %rt.name, "subscription ended");
                sub.end();
                drop(s);
                return false;
            };
            if exclusive {
                held = Some(s);
            } else {
                sub.put_back(s, &stop);
            }
            m
        };
        match next {
            Ok(msg) => {
                if busy.is_none() {
                    busy = Some(InFlight::new(&rt.counters));
                }
                if held.is_some() {
                    let mut handling = std::pin::pin!(process(&rt, &conn, msg, &mut scratch));
                    std::future::poll_fn(|cx| {
                        if handling.as_mut().poll(cx).is_ready() {
                            return Poll::Ready(());
                        }
                        // Polled only while `held`: once it completed, the signal was sent
                        // and the subscription dropped.
                        if held.is_some() && stop_fut.as_mut().poll(cx).is_ready() {
                            held = None;
                        }
                        Poll::Pending
                    })
                    .await;
                } else {
                    process(&rt, &conn, msg, &mut scratch).await;
                }
                if is_stopped(&stop) {
                    return true;
                }
            }
            Err(e) => {
                busy = None;
                tracing::warn!(route = %rt.name, error = %e, "subscription error");
                // Do not spin on a failing transport.
                let pause = tokio::time::sleep(SUBSCRIPTION_ERROR_PAUSE);
                if unless_stopped(&stop, stop_fut.as_mut(), pause)
                    .await
                    .is_none()
                {
                    return false;
                }
            }
        }
    }
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

async fn process<C: Connection, H: Invoke<C>>(
    rt: &RouteRuntime<H>,
    conn: &C,
    msg: C::Message,
    scratch: &mut Scratch<C>,
) {
    let c = &rt.counters;
    c.inc(|s| &s.received);
    scratch.fill(&rt.route, &msg);
    let meta = &scratch.meta;
    let base = msg.attempt().max(1);
    let max = rt.route.retries.max_attempts;
    let mut retry = 0u32;
    let oversized = rt
        .route
        .max_payload
        .filter(|&limit| msg.payload().len() > limit)
        .map(|limit| {
            let e = HandlerError::with_kind(
                FailureKind::Decode,
                format_args!(
                    "payload of {} bytes exceeds max_payload of {limit} bytes",
                    msg.payload().len()
                ),
            );
            (e, base)
        });
    let failure = if oversized.is_some() {
        oversized
    } else {
        loop {
            let attempt = base.saturating_add(retry);
            let ctx = Context {
                meta: Arc::clone(meta),
                attempt,
            };
            let content_type = msg.content_type().unwrap_or(&rt.route.content_type);
            let info = ConsumeInfo {
                route: &rt.name,
                address: meta.address(),
                headers: &meta.headers,
                payload: msg.payload(),
                attempt,
                correlation_id: meta.correlation_id.as_deref(),
            };
            match run_attempt(rt, &info, content_type, ctx).await {
                Ok(()) => break None,
                Err(e) => {
                    match e.kind() {
                        FailureKind::Decode | FailureKind::Validation => {}
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
        }
    };
    let result = match failure {
        None => msg.ack().await.map(|()| c.inc(|s| &s.acked)),
        Some((e, _)) if matches!(e.kind(), FailureKind::Decode | FailureKind::Validation) => {
            if e.kind() == FailureKind::Validation {
                c.inc(|s| &s.validation_failures);
                tracing::warn!(route = %rt.name, address = %meta.address(), error = %e, "message violates its schema");
            } else {
                c.inc(|s| &s.decode_failures);
                tracing::warn!(route = %rt.name, address = %meta.address(), error = %e, "undecodable message");
            }
            match rt
                .route
                .on_decode_error
                .as_ref()
                .unwrap_or(&DecodePolicy::Reject)
            {
                DecodePolicy::Reject => msg.reject().await.map(|()| c.inc(|s| &s.rejected)),
                DecodePolicy::DeadLetter(addr) => dead_letter(rt, conn, msg, addr, &e).await,
            }
        }
        Some((e, attempt)) => {
            tracing::warn!(route = %rt.name, address = %meta.address(), attempt, error = %e, "handler failed");
            if let Some(addr) = &rt.route.dead_letter {
                dead_letter(rt, conn, msg, addr, &e).await
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

async fn run_attempt<C: Connection, H: Invoke<C>>(
    rt: &RouteRuntime<H>,
    info: &ConsumeInfo<'_>,
    content_type: &str,
    ctx: Context<C>,
) -> Result<(), HandlerError> {
    let chain = AssertUnwindSafe(async move {
        let handler = &rt.handler;
        if rt.middleware.is_empty() {
            handler.invoke(info.payload, content_type, ctx).await
        } else {
            let payload = info.payload;
            let next = Next {
                rest: &rt.middleware,
                terminal: Box::new(move || -> BoxFuture<'_, Result<(), HandlerError>> {
                    Box::pin(handler.invoke(payload, content_type, ctx))
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

async fn dead_letter<C: Connection, H>(
    rt: &RouteRuntime<H>,
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
    match publish_through(conn, &rt.middleware, &rt.name, out).await {
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
