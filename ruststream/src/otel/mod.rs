//! OpenTelemetry trace export (feature `otel`).
//!
//! With an [`Otel`] pipeline, each handled message and each publish its handler makes is an
//! OpenTelemetry span, recorded through the OpenTelemetry SDK (`opentelemetry_sdk`) and
//! exported in the background:
//!
//! - the **handling span** (kind `CONSUMER`, named `process {route}`) continues the message's
//!   `traceparent`: same trace id, its parent is the span that published the message — so a
//!   trace goes on across services and brokers. A message without one starts a trace;
//! - each **publish** made through the handler's context (replies included) is a child span
//!   (kind `PRODUCER`, named `send`), and the published message's `traceparent` names it as
//!   the parent, so the consumer on the other side continues from it;
//! - attributes follow the OpenTelemetry messaging semantic conventions:
//!   `messaging.system` (the broker), `messaging.destination.name` (the concrete address),
//!   `messaging.operation.type` / `messaging.operation.name` (`process` or `send`),
//!   `messaging.message.conversation_id` (the correlation id), `messaging.message.id` (from a
//!   `message-id` header, when there is one), `messaging.message.body.size`, `error.type` and
//!   an error status on failure; plus `ruststream.route` (the operation) and
//!   `ruststream.attempt`; a failed handling has `error.type` (the failure kind) and an error
//!   status;
//! - the handler runs with the handling span as the current OpenTelemetry context, so spans it
//!   starts with the `opentelemetry` API (e.g. through `opentelemetry::global`, once
//!   [`OtelPipeline::provider`] is registered there) are its children.
//!
//! Export never blocks the handler path: ending a span puts it in the bounded queue of a
//! [`BatchProcessor`] (full queue: the span is dropped and counted in [`ExportStats`]); a
//! background thread sends batches to the exporter; shutting the pipeline down (the app does
//! it at graceful shutdown, after the drain) exports what is left. The built-in
//! [`OtlpHttpJsonExporter`] posts OTLP JSON to a collector's `/v1/traces` over plain HTTP/1.1
//! without an HTTP stack dependency; any other `SpanExporter` plugs in with
//! [`Otel::exporter`], and a fully configured `SdkTracerProvider` with [`Otel::provider`].
//!
//! With the app runner:
//!
//! ```no_run
//! # #[cfg(feature = "app")]
//! # async fn build() -> ruststream::Result<ruststream::app::App<ruststream::memory::MemoryBroker>> {
//! use ruststream::app::App;
//! use ruststream::memory::MemoryBroker;
//! use ruststream::otel::Otel;
//!
//! // OTEL_EXPORTER_OTLP_ENDPOINT (default http://localhost:4318), OTEL_SERVICE_NAME (default:
//! // the app's name), OTEL_EXPORTER_OTLP_HEADERS, OTEL_BSP_*; OTEL_SDK_DISABLED=true turns it off.
//! Ok(App::new(MemoryBroker::default()).name("orders").otel(Otel::from_env()?))
//! # }
//! ```
//!
//! On a bare [`Router`](crate::router::Router), layer [`OtelPipeline::middleware`] *instead
//! of* [`TelemetryMiddleware`](crate::telemetry::TelemetryMiddleware) (it does its work too),
//! and [`shutdown`](OtelPipeline::shutdown) the pipeline after the router.

mod batch;
mod http;
mod otlp;

pub use batch::{BatchConfig, BatchProcessor, ExportStats};
pub use otlp::{DEFAULT_ENDPOINT, OtlpHttpJsonExporter};

/// The OpenTelemetry crates this module is built on, for naming their types
/// (`SpanExporter`, `SdkTracerProvider`, …) at the same versions.
pub mod reexports {
    pub use opentelemetry;
    pub use opentelemetry_sdk;
}

use std::cell::RefCell;
use std::sync::Arc;

use opentelemetry::context::FutureExt as _;
use opentelemetry::trace::{
    Span as _, SpanContext, SpanKind, Status, TraceContextExt, TraceFlags, TraceId, TraceState,
    Tracer as _, TracerProvider as _,
};
use opentelemetry::{Context, InstrumentationScope, KeyValue};
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::trace::{SdkTracer, SdkTracerProvider, Span, SpanExporter};

use crate::message::names::{CORRELATION_ID, TRACESTATE};
use crate::router::{
    BoxFuture, ConsumeInfo, FailureKind, HandlerError, Middleware, Next, PublishInfo,
};
use crate::telemetry::{self, TraceContext};
use crate::{Error, OutgoingMessage, Result};

/// The header a message id is read from for `messaging.message.id`.
pub const MESSAGE_ID_HEADER: &str = "message-id";

enum Source {
    Processor(BatchProcessor),
    Provider(SdkTracerProvider),
    Disabled,
}

/// How spans are exported: an exporter behind a [`BatchProcessor`], or a provider of your own.
/// Start it with [`start`](Self::start) (the app does, with `App::otel`).
pub struct Otel {
    source: Source,
    service_name: Option<String>,
}

impl std::fmt::Debug for Otel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let source = match &self.source {
            Source::Processor(_) => "batch processor",
            Source::Provider(_) => "tracer provider",
            Source::Disabled => "disabled",
        };
        f.debug_struct("Otel")
            .field("source", &source)
            .field("service_name", &self.service_name)
            .finish()
    }
}

fn env_true(name: &str) -> bool {
    std::env::var(name).is_ok_and(|v| v.trim().eq_ignore_ascii_case("true"))
}

impl Otel {
    /// The built-in OTLP/HTTP JSON exporter configured by the standard environment variables
    /// ([`OtlpHttpJsonExporter::from_env`], [`BatchConfig::from_env`]); `OTEL_SDK_DISABLED=true`
    /// or `OTEL_TRACES_EXPORTER=none` gives a [disabled](Self::disabled) pipeline. The SDK
    /// reads `OTEL_TRACES_SAMPLER` / `OTEL_TRACES_SAMPLER_ARG` (default: parent-based, always on).
    pub fn from_env() -> Result<Self> {
        let exporter = std::env::var("OTEL_TRACES_EXPORTER").unwrap_or_default();
        if env_true("OTEL_SDK_DISABLED") || exporter.trim().eq_ignore_ascii_case("none") {
            return Ok(Self::disabled());
        }
        Self::exporter(OtlpHttpJsonExporter::from_env()?)
    }

    /// Export with `exporter` through a [`BatchProcessor`] (sizes from [`BatchConfig::from_env`]).
    pub fn exporter<E: SpanExporter + 'static>(exporter: E) -> Result<Self> {
        Self::exporter_with(exporter, BatchConfig::from_env())
    }

    /// Export with `exporter` through a [`BatchProcessor`] with these sizes.
    pub fn exporter_with<E: SpanExporter + 'static>(
        exporter: E,
        config: BatchConfig,
    ) -> Result<Self> {
        let processor = BatchProcessor::new(exporter, config)
            .map_err(|e| Error::Config(format!("starting the span export thread: {e}")))?;
        Ok(Otel {
            source: Source::Processor(processor),
            service_name: None,
        })
    }

    /// Record spans with a provider you configured (sampler, processors, resource, exporter).
    /// It is flushed, not shut down, when the pipeline shuts down.
    pub fn provider(provider: SdkTracerProvider) -> Self {
        Otel {
            source: Source::Provider(provider),
            service_name: None,
        }
    }

    /// No spans recorded or exported (trace context is still propagated).
    pub fn disabled() -> Self {
        Otel {
            source: Source::Disabled,
            service_name: None,
        }
    }

    /// The `service.name` resource attribute. Without it: `OTEL_SERVICE_NAME`, else the name
    /// given to [`start`](Self::start) (the app's name). Not used with [`provider`](Self::provider).
    pub fn service_name(mut self, name: impl Into<String>) -> Self {
        self.service_name = Some(name.into());
        self
    }

    /// Build the tracer provider; `default_service_name` applies when neither
    /// [`service_name`](Self::service_name) nor `OTEL_SERVICE_NAME` is set.
    pub fn start(self, default_service_name: &str) -> OtelPipeline {
        let (provider, stats, owned) = match self.source {
            Source::Processor(processor) => {
                let stats = processor.stats();
                let name = self.service_name.or_else(|| {
                    std::env::var("OTEL_SERVICE_NAME")
                        .ok()
                        .filter(|n| !n.trim().is_empty())
                });
                let resource = Resource::builder()
                    .with_service_name(name.unwrap_or_else(|| default_service_name.to_owned()))
                    .build();
                let provider = SdkTracerProvider::builder()
                    .with_span_processor(processor)
                    .with_resource(resource)
                    .build();
                (Some(provider), Some(stats), true)
            }
            Source::Provider(provider) => (Some(provider), None, false),
            Source::Disabled => (None, None, false),
        };
        OtelPipeline {
            provider,
            stats,
            owned,
        }
    }
}

/// A started [`Otel`]: the tracer provider spans are recorded with.
#[derive(Debug)]
pub struct OtelPipeline {
    provider: Option<SdkTracerProvider>,
    stats: Option<ExportStats>,
    /// Built by [`Otel::start`] (shut down with the pipeline) rather than given.
    owned: bool,
}

impl OtelPipeline {
    /// The tracer provider, `None` when disabled. Register it with
    /// `opentelemetry::global::set_tracer_provider` to put your own spans in the same export.
    pub fn provider(&self) -> Option<&SdkTracerProvider> {
        self.provider.as_ref()
    }

    /// Export counters, when the pipeline runs a [`BatchProcessor`].
    pub fn stats(&self) -> Option<&ExportStats> {
        self.stats.as_ref()
    }

    /// The router middleware recording spans, with `messaging.system` = `system` (the broker;
    /// see [`messaging_system`]). A disabled pipeline's only propagates trace context.
    pub fn middleware(&self, system: &str) -> OtelMiddleware {
        OtelMiddleware {
            tracer: self.provider.as_ref().map(|p| {
                p.tracer_with_scope(
                    InstrumentationScope::builder("ruststream")
                        .with_version(env!("CARGO_PKG_VERSION"))
                        .build(),
                )
            }),
            system: Arc::from(messaging_system(system)),
        }
    }

    /// Export every span ended so far (blocks a blocking-pool thread, not the runtime).
    pub async fn flush(&self) -> Result<()> {
        let Some(provider) = self.provider.clone() else {
            return Ok(());
        };
        blocking(move || provider.force_flush()).await
    }

    /// Export what is left and stop: a provider built by [`Otel::start`] is shut down, one
    /// given with [`Otel::provider`] only flushed.
    pub async fn shutdown(self) -> Result<()> {
        let Some(provider) = self.provider else {
            return Ok(());
        };
        if self.owned {
            blocking(move || provider.shutdown()).await
        } else {
            blocking(move || provider.force_flush()).await
        }
    }
}

async fn blocking(
    f: impl FnOnce() -> opentelemetry_sdk::error::OTelSdkResult + Send + 'static,
) -> Result<()> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| Error::Config(format!("span export task: {e}")))?
        .map_err(|e| Error::Config(format!("span export: {e}")))
}

/// The `messaging.system` value for a broker's [`name`](crate::Broker::name): the semantic
/// conventions' well-known value where there is one (`rabbitmq` for AMQP), else the broker
/// family (`nats`, `redis`, `mqtt`, `memory`, …).
pub fn messaging_system(broker: &str) -> &str {
    let family = broker.split(['-', '_']).next().unwrap_or(broker);
    match family {
        "amqp" | "lapin" => "rabbitmq",
        _ => family,
    }
}

tokio::task_local! {
    /// Publish spans started by the `publish` hook, ended by `published` (by address, in order).
    static PENDING: RefCell<Vec<(String, Span)>>;
}

/// Ends the handling span when the handling future finishes — or is dropped (timeout, panic),
/// which marks the span as failed.
struct Handling {
    span: Option<Span>,
}

impl Handling {
    fn finish(&mut self, result: &std::result::Result<(), HandlerError>) {
        if let Some(mut span) = self.span.take() {
            if let Err(e) = result {
                span.set_attribute(KeyValue::new("error.type", failure_kind(e.kind())));
                span.set_status(Status::error(e.to_string()));
            }
            span.end();
        }
    }
}

impl Drop for Handling {
    fn drop(&mut self) {
        if let Some(mut span) = self.span.take() {
            span.set_attribute(KeyValue::new("error.type", "cancelled"));
            span.set_status(Status::error(
                "handling did not complete (timeout or panic)",
            ));
            span.end();
        }
    }
}

fn failure_kind(kind: FailureKind) -> &'static str {
    match kind {
        FailureKind::Retryable => "retryable",
        FailureKind::Permanent => "permanent",
        FailureKind::Decode => "decode",
        FailureKind::Validation => "validation",
        FailureKind::Timeout => "timeout",
        FailureKind::Panic => "panic",
    }
}

fn error_type(e: &Error) -> &'static str {
    match e {
        Error::Closed => "closed",
        Error::Unsupported(_) => "unsupported",
        Error::Timeout(_) => "timeout",
        Error::InvalidAddress { .. } => "invalid_address",
        Error::InvalidHeader { .. } => "invalid_header",
        Error::Codec { .. } => "codec",
        Error::Validation { .. } => "validation",
        Error::Transport { .. } => "transport",
        Error::Config(_) => "config",
    }
}

fn span_context(ctx: &TraceContext, remote: bool, state: Option<&str>) -> SpanContext {
    SpanContext::new(
        TraceId::from_bytes(ctx.trace_id),
        opentelemetry::trace::SpanId::from_bytes(ctx.span_id),
        if ctx.sampled {
            TraceFlags::SAMPLED
        } else {
            TraceFlags::default()
        },
        remote,
        state
            .and_then(|s| s.parse::<TraceState>().ok())
            .unwrap_or_default(),
    )
}

fn trace_context(sc: &SpanContext) -> Option<TraceContext> {
    sc.is_valid().then(|| TraceContext {
        trace_id: sc.trace_id().to_bytes(),
        span_id: sc.span_id().to_bytes(),
        sampled: sc.is_sampled(),
    })
}

fn size(len: usize) -> i64 {
    i64::try_from(len).unwrap_or(i64::MAX)
}

/// Router middleware recording OpenTelemetry spans (see the [module docs](self)); it also does
/// what [`TelemetryMiddleware`](crate::telemetry::TelemetryMiddleware) does (`tracing` span,
/// `traceparent` on publishes), so use it instead of that one. Made by
/// [`OtelPipeline::middleware`].
#[derive(Debug)]
pub struct OtelMiddleware {
    tracer: Option<SdkTracer>,
    system: Arc<str>,
}

impl Middleware for OtelMiddleware {
    fn consume<'a>(
        &'a self,
        info: &'a ConsumeInfo<'a>,
        next: Next<'a>,
    ) -> BoxFuture<'a, std::result::Result<(), HandlerError>> {
        let (fallback, parent, state) = telemetry::handling_context(info.headers);
        let Some(tracer) = &self.tracer else {
            return Box::pin(telemetry::handle_in_scope(
                info,
                fallback,
                parent,
                state,
                async move { next.run(info).await },
            ));
        };
        let parent_cx = match &parent {
            Some(p) => {
                Context::new().with_remote_span_context(span_context(p, true, state.as_deref()))
            }
            None => Context::new(),
        };
        let mut attributes = vec![
            KeyValue::new("messaging.system", Arc::clone(&self.system)),
            KeyValue::new("messaging.operation.type", "process"),
            KeyValue::new("messaging.operation.name", "process"),
            KeyValue::new("messaging.destination.name", info.address.to_owned()),
            KeyValue::new("messaging.message.body.size", size(info.payload.len())),
            KeyValue::new("ruststream.route", info.route.to_owned()),
            KeyValue::new("ruststream.attempt", i64::from(info.attempt)),
        ];
        if let Some(cid) = info.correlation_id {
            attributes.push(KeyValue::new(
                "messaging.message.conversation_id",
                cid.to_owned(),
            ));
        }
        if let Some(id) = info.headers.get(MESSAGE_ID_HEADER) {
            attributes.push(KeyValue::new("messaging.message.id", id.to_owned()));
        }
        let span = tracer
            .span_builder(format!("process {}", info.route))
            .with_kind(SpanKind::Consumer)
            .with_attributes(attributes)
            .start_with_context(tracer, &parent_cx);
        let context = trace_context(span.span_context()).unwrap_or(fallback);
        // The handler runs with the handling span as the current OpenTelemetry context, so
        // spans it starts through the `opentelemetry` API are children of it.
        let handler_cx = Context::new().with_remote_span_context(span_context(
            &context,
            false,
            state.as_deref(),
        ));
        let mut handling = Handling { span: Some(span) };
        Box::pin(
            PENDING.scope(
                RefCell::new(Vec::new()),
                telemetry::handle_in_scope(
                    info,
                    context,
                    parent,
                    state,
                    async move {
                        let result = next.run(info).await;
                        handling.finish(&result);
                        result
                    }
                    .with_context(handler_cx),
                ),
            ),
        )
    }

    fn publish(&self, message: &mut OutgoingMessage) -> Result<()> {
        let Some(current) = telemetry::stamp_target(message) else {
            return Ok(());
        };
        let Some(tracer) = &self.tracer else {
            current.child().inject(&mut message.headers);
            return Ok(());
        };
        let parent_cx = Context::new().with_remote_span_context(span_context(
            &current,
            false,
            message.headers.get(TRACESTATE),
        ));
        let mut attributes = vec![
            KeyValue::new("messaging.system", Arc::clone(&self.system)),
            KeyValue::new("messaging.operation.type", "send"),
            KeyValue::new("messaging.operation.name", "send"),
            KeyValue::new("messaging.destination.name", message.address.clone()),
            KeyValue::new("messaging.message.body.size", size(message.payload.len())),
        ];
        if let Some(cid) = message
            .correlation_id
            .as_deref()
            .or_else(|| message.headers.get(CORRELATION_ID))
        {
            attributes.push(KeyValue::new(
                "messaging.message.conversation_id",
                cid.to_owned(),
            ));
        }
        if let Some(id) = message.headers.get(MESSAGE_ID_HEADER) {
            attributes.push(KeyValue::new("messaging.message.id", id.to_owned()));
        }
        let span = tracer
            .span_builder("send")
            .with_kind(SpanKind::Producer)
            .with_attributes(attributes)
            .start_with_context(tracer, &parent_cx);
        trace_context(span.span_context())
            .unwrap_or_else(|| current.child())
            .inject(&mut message.headers);
        let address = message.address.clone();
        // Outside a handling scope of this middleware the span just ends (on drop).
        let _ = PENDING.try_with(|p| p.borrow_mut().push((address, span)));
        Ok(())
    }

    fn published(&self, info: &PublishInfo<'_>) {
        let span = PENDING
            .try_with(|p| {
                let mut pending = p.borrow_mut();
                let i = pending.iter().position(|(a, _)| a == info.address)?;
                Some(pending.remove(i).1)
            })
            .ok()
            .flatten();
        let Some(mut span) = span else {
            return;
        };
        span.set_attribute(KeyValue::new("ruststream.route", info.route.to_owned()));
        if let Err(e) = info.result {
            span.set_attribute(KeyValue::new("error.type", error_type(e)));
            span.set_status(Status::error(e.to_string()));
        }
        span.end();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messaging_system_names() {
        assert_eq!(messaging_system("nats-jetstream"), "nats");
        assert_eq!(messaging_system("redis-streams"), "redis");
        assert_eq!(messaging_system("amqp"), "rabbitmq");
        assert_eq!(messaging_system("memory"), "memory");
        assert_eq!(messaging_system("mqtt"), "mqtt");
    }
}
