//! Tracing helpers: W3C trace context (`traceparent`) and the span of a handled message.
//!
//! The trace context of a consumed message travels to the publishes its handler makes:
//! the consuming side gives the handling of the message a span of its own — same trace id as
//! the message's `traceparent` ([`TraceContext::from_headers`]), a new span id, the message's
//! span as parent; a new root when the message has none — and runs the handler inside
//! [`scope`] with it. Every publish made inside that scope through the handler's context,
//! [`inject_current`] or a [`Traced`] connection carries a `traceparent` with the same trace id
//! and a new span id whose parent is the handling span. With the `otel` feature,
//! `ruststream::otel::OtelMiddleware` records these spans and exports them.

use std::cell::Cell;
use std::future::Future;
use std::hash::{BuildHasher, Hash, Hasher};
use std::sync::atomic::{AtomicU64, Ordering};

use tracing::Instrument;

use crate::message::names::{TRACEPARENT, TRACESTATE};
use crate::router::{BoxFuture, ConsumeInfo, HandlerError, Middleware, Next};
use std::time::Duration;

use crate::capability::{Reply, RequestReply};
use crate::{
    Address, Capabilities, Connection, Headers, OutgoingMessage, Publisher, Result,
    SubscribeOptions, Subscriber,
};

/// A W3C trace context: trace id, parent (span) id and the sampled flag.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct TraceContext {
    /// 16-byte trace id, never all zero.
    pub trace_id: [u8; 16],
    /// 8-byte id of the span that made this context, never all zero.
    pub span_id: [u8; 8],
    /// The `sampled` trace flag.
    pub sampled: bool,
}

/// A random, non-zero id: splitmix64 over a per-thread state seeded from the std hasher's
/// random keys, the thread and the clock (ids must be unique, not unpredictable).
fn random_u64() -> u64 {
    fn seed() -> u64 {
        static COUNTER: AtomicU64 = AtomicU64::new(0);
        let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
        hasher.write_u64(COUNTER.fetch_add(1, Ordering::Relaxed));
        std::thread::current().id().hash(&mut hasher);
        if let Ok(now) = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH) {
            hasher.write_u128(now.as_nanos());
        }
        hasher.finish()
    }
    thread_local! {
        static STATE: Cell<u64> = Cell::new(seed());
    }
    STATE.with(|state| {
        loop {
            let x = state.get().wrapping_add(0x9e37_79b9_7f4a_7c15);
            state.set(x);
            let mut z = x;
            z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
            z ^= z >> 31;
            if z != 0 {
                return z;
            }
        }
    })
}

/// The value of a lower-case hex digit, or `0xff`.
const fn nibble(c: u8) -> u8 {
    match c {
        b'0'..=b'9' => c - b'0',
        b'a'..=b'f' => c - b'a' + 10,
        _ => 0xff,
    }
}

/// Decode `2 * N` lower-case hex digits.
fn hex_decode<const N: usize>(bytes: &[u8]) -> Option<[u8; N]> {
    if bytes.len() != N * 2 {
        return None;
    }
    let mut out = [0u8; N];
    let mut bad = 0u8;
    for (o, pair) in out.iter_mut().zip(bytes.chunks_exact(2)) {
        let (hi, lo) = (nibble(pair[0]), nibble(pair[1]));
        bad |= (hi | lo) & 0xf0;
        *o = (hi << 4) | (lo & 0x0f);
    }
    (bad == 0).then_some(out)
}

/// Lower-case hex of some bytes, formatted without allocating.
struct Hex<'a>(&'a [u8]);

impl std::fmt::Display for Hex<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.iter().try_for_each(|b| write!(f, "{b:02x}"))
    }
}

fn hex_encode(bytes: &[u8]) -> String {
    Hex(bytes).to_string()
}

impl TraceContext {
    /// A new trace (random ids, sampled).
    pub fn new_root() -> Self {
        let mut trace_id = [0u8; 16];
        trace_id[..8].copy_from_slice(&random_u64().to_be_bytes());
        trace_id[8..].copy_from_slice(&random_u64().to_be_bytes());
        TraceContext {
            trace_id,
            span_id: random_u64().to_be_bytes(),
            sampled: true,
        }
    }

    /// The context for work caused by this one: same trace, new span id.
    pub fn child(&self) -> Self {
        TraceContext {
            span_id: random_u64().to_be_bytes(),
            ..*self
        }
    }

    /// Parse a `traceparent` header value (`00-<trace id>-<parent id>-<flags>`). Returns `None`
    /// for anything the W3C spec says to ignore: wrong lengths, upper-case or non-hex digits,
    /// version `ff`, all-zero ids, or extra fields on version `00`.
    pub fn parse(value: &str) -> Option<Self> {
        // 00-<32 hex>-<16 hex>-<2 hex>: fixed positions.
        let b = value.trim().as_bytes();
        if b.len() < 55 || b[2] != b'-' || b[35] != b'-' || b[52] != b'-' {
            return None;
        }
        let [version]: [u8; 1] = hex_decode(&b[..2])?;
        // Version 00 has exactly these fields; later versions may append `-…`.
        if version == 0xff || (b.len() > 55 && (version == 0 || b[55] != b'-')) {
            return None;
        }
        let trace_id: [u8; 16] = hex_decode(&b[3..35])?;
        let span_id: [u8; 8] = hex_decode(&b[36..52])?;
        let [flags]: [u8; 1] = hex_decode(&b[53..55])?;
        if trace_id == [0; 16] || span_id == [0; 8] {
            return None;
        }
        Some(TraceContext {
            trace_id,
            span_id,
            sampled: flags & 1 == 1,
        })
    }

    /// The `traceparent` header value.
    pub fn to_traceparent(&self) -> String {
        format!(
            "00-{}-{}-{:02x}",
            hex_encode(&self.trace_id),
            hex_encode(&self.span_id),
            u8::from(self.sampled)
        )
    }

    /// The trace id as 32 lower-case hex digits.
    pub fn trace_id_hex(&self) -> String {
        hex_encode(&self.trace_id)
    }

    /// The context a message carries in its `traceparent` header, if valid.
    pub fn from_headers(headers: &Headers) -> Option<Self> {
        headers.get(TRACEPARENT).and_then(Self::parse)
    }

    /// Write this context as the `traceparent` header.
    pub fn inject(&self, headers: &mut Headers) {
        headers.insert(TRACEPARENT, self.to_traceparent());
    }
}

impl std::fmt::Display for TraceContext {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.to_traceparent())
    }
}

#[derive(Debug, Clone)]
struct Current {
    context: TraceContext,
    /// The consumed message's own context (the handling span's parent), if it had one.
    parent: Option<TraceContext>,
    state: Option<String>,
}

tokio::task_local! {
    static CURRENT: Current;
}

/// Run `future` with `context` as the current trace context (and `tracestate`, if the consumed
/// message carried one), so publishes made inside it continue the trace.
pub async fn scope<F: Future>(
    context: TraceContext,
    tracestate: Option<String>,
    future: F,
) -> F::Output {
    scope_with_parent(context, None, tracestate, future).await
}

/// [`scope`], remembering the consumed message's own context so that a copy of its
/// `traceparent` on a publish is recognised and replaced ([`stamp_target`]).
pub(crate) async fn scope_with_parent<F: Future>(
    context: TraceContext,
    parent: Option<TraceContext>,
    tracestate: Option<String>,
    future: F,
) -> F::Output {
    CURRENT
        .scope(
            Current {
                context,
                parent,
                state: tracestate,
            },
            future,
        )
        .await
}

/// The handling span's context when `message` should be stamped with a new child of it: the
/// task runs inside [`scope`] and the message has no valid `traceparent`, or carries the
/// handling span's own or the consumed message's (the router copies the latter). `None` when
/// outside a scope or when the caller set a `traceparent` of its own.
pub(crate) fn stamp_target(message: &OutgoingMessage) -> Option<TraceContext> {
    CURRENT
        .try_with(|c| match TraceContext::from_headers(&message.headers) {
            None => Some(c.context),
            Some(t) if t == c.context || Some(t) == c.parent => Some(c.context),
            Some(_) => None,
        })
        .ok()
        .flatten()
}

/// The handling span's context for a consumed message with these headers: a child of its
/// valid `traceparent` (same trace, new span id), else a new root. Also returns that
/// `traceparent` (the handling span's parent) and the `tracestate`.
pub(crate) fn handling_context(
    headers: &Headers,
) -> (TraceContext, Option<TraceContext>, Option<String>) {
    let parent = TraceContext::from_headers(headers);
    let context = parent.map_or_else(TraceContext::new_root, |p| p.child());
    (context, parent, headers.get(TRACESTATE).map(str::to_owned))
}

/// The trace context of the message being handled by the current task, if any.
pub fn current() -> Option<TraceContext> {
    CURRENT.try_with(|c| c.context).ok()
}

/// The trace context a consumed message continues: its valid `traceparent`, or a new root.
/// (The middleware hands the handler a child of it: see the [module docs](self).)
pub fn continue_from(headers: &Headers) -> TraceContext {
    TraceContext::from_headers(headers).unwrap_or_else(TraceContext::new_root)
}

/// Stamp an outgoing message with the current trace: when it has no `traceparent` yet and the
/// task runs inside [`scope`], add one (same trace id, new parent id) and the `tracestate`.
/// Returns whether a header was added.
pub fn inject_current(message: &mut OutgoingMessage) -> bool {
    if message.headers.get(TRACEPARENT).is_some() {
        return false;
    }
    CURRENT
        .try_with(|c| {
            c.context.child().inject(&mut message.headers);
            if let Some(state) = &c.state {
                message.headers.insert(TRACESTATE, state.clone());
            }
        })
        .is_ok()
}

/// The span of one handled message: `address`, `operation`, `correlation_id`, `trace_id` and
/// `span_id` (the handling span's).
pub fn message_span(
    address: &str,
    operation: &str,
    correlation_id: Option<&str>,
    context: &TraceContext,
) -> tracing::Span {
    tracing::info_span!(
        "message",
        address = %address,
        operation = %operation,
        correlation_id = %correlation_id.unwrap_or(""),
        trace_id = %Hex(&context.trace_id),
        span_id = %Hex(&context.span_id),
    )
}

/// Run the rest of the chain for `info` inside its [`message_span`] and a trace scope.
pub(crate) fn handle_in_scope<'a, F>(
    info: &'a ConsumeInfo<'a>,
    context: TraceContext,
    parent: Option<TraceContext>,
    state: Option<String>,
    handling: F,
) -> impl Future<Output = std::result::Result<(), HandlerError>> + Send + 'a
where
    F: Future<Output = std::result::Result<(), HandlerError>> + Send + 'a,
{
    let span = message_span(info.address, info.route, info.correlation_id, &context);
    scope_with_parent(context, parent, state, async move {
        let result = handling.await;
        match &result {
            Ok(()) => tracing::debug!(attempt = info.attempt, "handled"),
            Err(e) => tracing::debug!(attempt = info.attempt, error = %e, "handler failed"),
        }
        result
    })
    .instrument(span)
}

/// A publisher — or a whole [`Connection`] — that stamps every published message with the
/// current trace context ([`inject_current`]) before handing it on.
///
/// Publishes made through a handler's [`Context`](crate::router::Context) already continue the
/// trace; wrap the connection when a handler publishes around the context, e.g. with a
/// generated typed publisher: `spec::Publisher::new(Traced(ctx.connection().clone()))`
/// (prefer `spec::Publisher::from_context(&ctx)`: only publishes through the context are
/// recorded as OpenTelemetry spans).
#[derive(Debug, Clone)]
pub struct Traced<P>(pub P);

impl<P: Publisher> Publisher for Traced<P> {
    async fn publish(&self, mut message: OutgoingMessage) -> Result<()> {
        inject_current(&mut message);
        self.0.publish(message).await
    }

    async fn flush(&self) -> Result<()> {
        self.0.flush().await
    }
}

impl<S: Subscriber> Subscriber for Traced<S> {
    type Message = S::Message;
    type Subscription = S::Subscription;

    fn subscribe(
        &self,
        address: &Address,
        options: SubscribeOptions,
    ) -> impl Future<Output = Result<Self::Subscription>> + Send {
        self.0.subscribe(address, options)
    }
}

impl<C: Connection> Connection for Traced<C> {
    fn capabilities(&self) -> Capabilities {
        self.0.capabilities()
    }

    fn shutdown(self) -> impl Future<Output = Result<()>> + Send {
        self.0.shutdown()
    }
}

impl<C: RequestReply> RequestReply for Traced<C> {
    async fn request(&self, mut message: OutgoingMessage, timeout: Duration) -> Result<Reply> {
        inject_current(&mut message);
        self.0.request(message, timeout).await
    }
}

/// Router middleware: runs each handled message inside its [`message_span`] and a trace
/// [`scope`] — a handling span that continues the message's `traceparent` (or a new root) —
/// and gives every publish the handler makes a `traceparent` with the same trace id and a new
/// span id whose parent is the handling span.
#[derive(Debug, Clone, Copy, Default)]
pub struct TelemetryMiddleware;

impl Middleware for TelemetryMiddleware {
    fn consume<'a>(
        &'a self,
        info: &'a ConsumeInfo<'a>,
        next: Next<'a>,
    ) -> BoxFuture<'a, std::result::Result<(), HandlerError>> {
        let (context, parent, state) = handling_context(info.headers);
        Box::pin(handle_in_scope(info, context, parent, state, async move {
            next.run(info).await
        }))
    }

    fn publish(&self, message: &mut OutgoingMessage) -> Result<()> {
        if let Some(current) = stamp_target(message) {
            current.child().inject(&mut message.headers);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SAMPLE: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

    #[test]
    fn parses_and_renders_the_w3c_example() {
        let ctx = TraceContext::parse(SAMPLE).unwrap();
        assert_eq!(ctx.trace_id_hex(), "4bf92f3577b34da6a3ce929d0e0e4736");
        assert!(ctx.sampled);
        assert_eq!(ctx.to_traceparent(), SAMPLE);
    }

    #[test]
    fn rejects_what_the_spec_says_to_ignore() {
        for bad in [
            "",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7",
            "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",
            "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-extra",
            "00-4bf92f3577b34da6a3ce929d0e0e473-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-0g",
            "0g-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736_00f067aa0ba902b7-01",
            "01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00x",
            "00-4bf92f3577b34da6a3ce929d0e0e47é-00f067aa0ba902b7-01",
        ] {
            assert!(TraceContext::parse(bad).is_none(), "{bad:?} accepted");
        }
        // A future version may carry more fields.
        assert!(
            TraceContext::parse("01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00-x")
                .is_some()
        );
    }

    #[test]
    fn roots_and_children() {
        let root = TraceContext::new_root();
        let child = root.child();
        assert_eq!(root.trace_id, child.trace_id);
        assert_ne!(root.span_id, child.span_id);
        assert_ne!(root.trace_id, TraceContext::new_root().trace_id);
        assert_eq!(TraceContext::parse(&child.to_traceparent()), Some(child));
        let mut ids: std::collections::HashSet<[u8; 8]> =
            (0..10_000).map(|_| root.child().span_id).collect();
        let other: Vec<[u8; 8]> =
            std::thread::spawn(move || (0..10_000).map(|_| root.child().span_id).collect())
                .join()
                .unwrap();
        ids.extend(other);
        assert_eq!(ids.len(), 20_000, "span ids repeat");
    }

    #[tokio::test]
    async fn publishes_inside_a_scope_continue_the_trace() {
        let consumed = TraceContext::parse(SAMPLE).unwrap();
        let mut outside = OutgoingMessage::new("a", "x");
        assert!(!inject_current(&mut outside));
        let published = scope(consumed, Some("k=v".into()), async {
            assert_eq!(current(), Some(consumed));
            let mut m = OutgoingMessage::new("b", "y");
            assert!(inject_current(&mut m));
            m
        })
        .await;
        let carried = TraceContext::from_headers(&published.headers).unwrap();
        assert_eq!(carried.trace_id, consumed.trace_id);
        assert_ne!(carried.span_id, consumed.span_id);
        assert_eq!(published.headers.get(TRACESTATE), Some("k=v"));
    }

    #[tokio::test]
    async fn a_traced_connection_stamps_publishes_in_scope() {
        use crate::memory::MemoryBroker;
        use crate::{Broker, IncomingMessage};
        use futures_util::StreamExt;

        let conn = Traced(MemoryBroker::default().connect().await.unwrap());
        let mut sub = conn
            .subscribe(&Address::parse("out").unwrap(), SubscribeOptions::new())
            .await
            .unwrap();
        let consumed = TraceContext::new_root();
        scope(
            consumed,
            None,
            conn.publish(OutgoingMessage::new("out", "x")),
        )
        .await
        .unwrap();
        let delivered = sub.next().await.unwrap().unwrap();
        let carried = TraceContext::from_headers(delivered.headers()).unwrap();
        assert_eq!(carried.trace_id, consumed.trace_id);
        assert!(conn.capabilities().request_reply);
        conn.shutdown().await.unwrap();
    }
}
