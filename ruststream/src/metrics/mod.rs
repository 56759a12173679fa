//! Prometheus metrics (feature `metrics`).
//!
//! One [`Metrics`] value per app holds a private [`prometheus::Registry`] with the series below,
//! every one labelled `app`, `broker` and `operation`:
//!
//! | series | type | extra label |
//! | --- | --- | --- |
//! | `ruststream_messages_received_total` | counter | |
//! | `ruststream_messages_handled_total` | counter | `outcome` = `ack`, `nack`, `reject`, `dead_letter` |
//! | `ruststream_handler_duration_seconds` | histogram | |
//! | `ruststream_messages_in_flight` | gauge | |
//! | `ruststream_decode_failures_total` | counter | |
//! | `ruststream_validation_failures_total` | counter | |
//! | `ruststream_handler_panics_total` | counter | |
//! | `ruststream_messages_published_total` | counter | `status` = `ok`, `error` |
//! | `ruststream_publish_duration_seconds` | histogram | |
//!
//! Per-instance progress: when several instances of one service share the work (a queue
//! group, a consumer group, competing consumers on one queue), give each a name with
//! [`Metrics::with_instance`] or the `RUSTSTREAM_INSTANCE` environment variable (read by
//! [`Metrics::new`], so by the app runner) and every series of the table
//! also carries a `service_instance` label, so `sum by (service_instance) (ruststream_messages_handled_total)`
//! shows the spread. (Not `instance`: Prometheus sets that to the scrape target itself and
//! would rename ours to `exported_instance`.) Without a name there is no such label.
//!
//! With an OpenTelemetry pipeline (feature `otel`), the app also exports
//! `ruststream_otel_spans_total{app, outcome}` (`exported`, `dropped`, `failed`).
//!
//! The hot path resolves label values once: [`Metrics::operation`] returns an
//! [`OperationMetrics`] with the handles of one operation, whose methods are plain atomic
//! updates. [`serve`] answers `GET /metrics` (text exposition) and `GET /health` (readiness) on
//! an opt-in address.

mod observe;
mod server;

pub use observe::{MeteredPublisher, MetricsMiddleware};
pub use server::{MetricsServer, Pages, Readiness, serve, serve_pages};

use std::sync::{Arc, Mutex};
use std::time::Duration;

use prometheus::{
    Encoder, Histogram, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge,
    IntGaugeVec, Opts, Registry, TextEncoder,
};

use crate::router::{RouterStats, StatsSnapshot};
use crate::{Error, Result};

const LABELS: &[&str] = &["app", "broker", "operation"];

/// The label naming the instance of a service (see [`Metrics::with_instance`]).
pub const INSTANCE_LABEL: &str = "service_instance";

/// The environment variable [`Metrics::new`] reads the instance name from.
pub const INSTANCE_ENV: &str = "RUSTSTREAM_INSTANCE";

/// Buckets for handler and publish durations, in seconds (100 µs … 10 s).
const DURATION_BUCKETS: &[f64] = &[
    0.0001, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

/// How a handled message was settled.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Outcome {
    /// Acknowledged (processed).
    Ack,
    /// Negatively acknowledged (redelivery or drop).
    Nack,
    /// Rejected (unprocessable).
    Reject,
    /// Sent to a dead-letter address.
    DeadLetter,
}

impl Outcome {
    /// The `outcome` label value.
    pub const fn as_str(self) -> &'static str {
        match self {
            Outcome::Ack => "ack",
            Outcome::Nack => "nack",
            Outcome::Reject => "reject",
            Outcome::DeadLetter => "dead_letter",
        }
    }
}

/// The metrics of one app: a registry and the RustStream series in it. Cheap to clone.
#[derive(Clone)]
pub struct Metrics {
    inner: Arc<Inner>,
}

struct Inner {
    app: String,
    instance: Option<String>,
    registry: Registry,
    received: IntCounterVec,
    handled: IntCounterVec,
    handler_duration: HistogramVec,
    in_flight: IntGaugeVec,
    decode_failures: IntCounterVec,
    validation_failures: IntCounterVec,
    panics: IntCounterVec,
    published: IntCounterVec,
    publish_duration: HistogramVec,
    /// Routers whose per-route stats are exported at every scrape.
    watched: Mutex<Vec<(OperationMetrics, Arc<RouterStats>)>>,
    /// Run at every sync, to bring series fed from elsewhere up to date.
    on_sync: Mutex<Vec<SyncHook>>,
}

type SyncHook = Box<dyn Fn() + Send + Sync>;

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Metrics")
            .field("app", &self.inner.app)
            .field("instance", &self.inner.instance)
            .finish_non_exhaustive()
    }
}

fn config_error(e: prometheus::Error) -> Error {
    Error::Config(format!("metrics registry: {e}"))
}

impl Metrics {
    /// A fresh registry with every RustStream series, labelled with `app`, and with
    /// `service_instance` when the `RUSTSTREAM_INSTANCE` environment variable is set and not
    /// empty (see [`Metrics::with_instance`]).
    pub fn new(app: impl Into<String>) -> Result<Self> {
        let instance = std::env::var(INSTANCE_ENV).ok().filter(|v| !v.is_empty());
        Metrics::build(app.into(), instance)
    }

    /// A fresh registry whose series also carry `service_instance="<instance>"`, to tell the
    /// instances of one service apart (an empty `instance` adds no label).
    ///
    /// ```
    /// use ruststream::metrics::Metrics;
    /// let metrics = Metrics::with_instance("billing", "billing-7f9c")?;
    /// metrics.operation("nats", "onInvoice");
    /// assert!(metrics.render().contains(r#"service_instance="billing-7f9c""#));
    /// assert_eq!(metrics.instance(), Some("billing-7f9c"));
    /// # Ok::<(), ruststream::Error>(())
    /// ```
    pub fn with_instance(app: impl Into<String>, instance: impl Into<String>) -> Result<Self> {
        let instance = instance.into();
        Metrics::build(app.into(), (!instance.is_empty()).then_some(instance))
    }

    fn build(app: String, instance: Option<String>) -> Result<Self> {
        let registry = Registry::new();
        let opts = |name: &str, help: &str| match &instance {
            Some(i) => Opts::new(name, help).const_label(INSTANCE_LABEL, i.as_str()),
            None => Opts::new(name, help),
        };
        let counter = |name: &str, help: &str, extra: &[&str]| -> Result<IntCounterVec> {
            let labels: Vec<&str> = LABELS.iter().chain(extra).copied().collect();
            let vec = IntCounterVec::new(opts(name, help), &labels).map_err(config_error)?;
            registry
                .register(Box::new(vec.clone()))
                .map_err(config_error)?;
            Ok(vec)
        };
        let histogram = |name: &str, help: &str| -> Result<HistogramVec> {
            let opts = HistogramOpts {
                common_opts: opts(name, help),
                buckets: DURATION_BUCKETS.to_vec(),
            };
            let vec = HistogramVec::new(opts, LABELS).map_err(config_error)?;
            registry
                .register(Box::new(vec.clone()))
                .map_err(config_error)?;
            Ok(vec)
        };
        let received = counter(
            "ruststream_messages_received_total",
            "Messages delivered to a route.",
            &[],
        )?;
        let handled = counter(
            "ruststream_messages_handled_total",
            "Messages settled by a route, by outcome.",
            &["outcome"],
        )?;
        let decode_failures = counter(
            "ruststream_decode_failures_total",
            "Messages whose payload could not be decoded.",
            &[],
        )?;
        let validation_failures = counter(
            "ruststream_validation_failures_total",
            "Messages that decoded but violate their schema.",
            &[],
        )?;
        let panics = counter(
            "ruststream_handler_panics_total",
            "Handler invocations that panicked.",
            &[],
        )?;
        let published = counter(
            "ruststream_messages_published_total",
            "Messages published, by status.",
            &["status"],
        )?;
        let handler_duration = histogram(
            "ruststream_handler_duration_seconds",
            "Time from delivery to settlement of a message.",
        )?;
        let publish_duration = histogram(
            "ruststream_publish_duration_seconds",
            "Time a publish took until the broker took the message.",
        )?;
        let in_flight = IntGaugeVec::new(
            opts(
                "ruststream_messages_in_flight",
                "Messages being handled right now.",
            ),
            LABELS,
        )
        .map_err(config_error)?;
        registry
            .register(Box::new(in_flight.clone()))
            .map_err(config_error)?;
        Ok(Metrics {
            inner: Arc::new(Inner {
                app,
                instance,
                registry,
                received,
                handled,
                handler_duration,
                in_flight,
                decode_failures,
                validation_failures,
                panics,
                published,
                publish_duration,
                watched: Mutex::new(Vec::new()),
                on_sync: Mutex::new(Vec::new()),
            }),
        })
    }

    /// The `app` label value.
    pub fn app(&self) -> &str {
        &self.inner.app
    }

    /// The `service_instance` label value, if this instance has a name.
    pub fn instance(&self) -> Option<&str> {
        self.inner.instance.as_deref()
    }

    /// The registry, to register your own collectors beside RustStream's.
    pub fn registry(&self) -> &Registry {
        &self.inner.registry
    }

    /// The handles of one operation (resolve once, update per message).
    pub fn operation(&self, broker: &str, operation: &str) -> OperationMetrics {
        let i = &self.inner;
        let l = [i.app.as_str(), broker, operation];
        let with = |extra: &'static str| [l[0], l[1], l[2], extra];
        OperationMetrics {
            received: i.received.with_label_values(&l),
            ack: i.handled.with_label_values(&with(Outcome::Ack.as_str())),
            nack: i.handled.with_label_values(&with(Outcome::Nack.as_str())),
            reject: i.handled.with_label_values(&with(Outcome::Reject.as_str())),
            dead_letter: i
                .handled
                .with_label_values(&with(Outcome::DeadLetter.as_str())),
            handler_duration: i.handler_duration.with_label_values(&l),
            in_flight: i.in_flight.with_label_values(&l),
            decode_failures: i.decode_failures.with_label_values(&l),
            validation_failures: i.validation_failures.with_label_values(&l),
            panics: i.panics.with_label_values(&l),
            published_ok: i.published.with_label_values(&with("ok")),
            published_error: i.published.with_label_values(&with("error")),
            publish_duration: i.publish_duration.with_label_values(&l),
        }
    }

    /// Export a running router's per-route counters ([`RunningRouter::route_stats`]) under
    /// `broker`; they are read at every [`render`](Self::render).
    ///
    /// [`RunningRouter::route_stats`]: crate::router::RunningRouter::route_stats
    pub fn watch_router(&self, broker: &str, routes: &[(String, Arc<RouterStats>)]) {
        let mut watched = self
            .inner
            .watched
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        for (name, stats) in routes {
            watched.push((self.operation(broker, name), Arc::clone(stats)));
        }
    }

    /// Bring the exported counters up to the watched routers' stats (done by `render`).
    pub fn sync(&self) {
        let watched = self
            .inner
            .watched
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        for (op, stats) in watched.iter() {
            op.sync(&stats.snapshot());
        }
        drop(watched);
        let hooks = self
            .inner
            .on_sync
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        for hook in hooks.iter() {
            hook();
        }
    }

    /// Run `f` at every [`sync`](Self::sync) (so at every scrape): bring series of your own in
    /// the [`registry`](Self::registry) up to counts kept elsewhere.
    pub fn on_sync(&self, f: impl Fn() + Send + Sync + 'static) {
        self.inner
            .on_sync
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .push(Box::new(f));
    }

    /// Everything in the registry in the Prometheus text exposition format (after a
    /// [`sync`](Self::sync)).
    pub fn render(&self) -> String {
        self.sync();
        let mut out = Vec::new();
        let families = self.inner.registry.gather();
        // Encoding into a Vec only fails on invalid metric data, which this registry never holds.
        if let Err(e) = TextEncoder::new().encode(&families, &mut out) {
            tracing::warn!(error = %e, "encoding metrics failed");
        }
        String::from_utf8(out).unwrap_or_default()
    }
}

/// The metric handles of one operation (label values resolved). Cheap to clone.
#[derive(Clone, Debug)]
pub struct OperationMetrics {
    received: IntCounter,
    ack: IntCounter,
    nack: IntCounter,
    reject: IntCounter,
    dead_letter: IntCounter,
    handler_duration: Histogram,
    in_flight: IntGauge,
    decode_failures: IntCounter,
    validation_failures: IntCounter,
    panics: IntCounter,
    published_ok: IntCounter,
    published_error: IntCounter,
    publish_duration: Histogram,
}

/// Move `counter` forward to `total` (counters never go back).
pub(crate) fn catch_up(counter: &IntCounter, total: u64) {
    let seen = counter.get();
    if total > seen {
        counter.inc_by(total - seen);
    }
}

impl OperationMetrics {
    /// Bring the message counters and the in-flight gauge up to a route's [`RouterStats`]
    /// snapshot (the router counts; this exports). Counters only move forward.
    pub fn sync(&self, stats: &StatsSnapshot) {
        catch_up(&self.received, stats.received);
        catch_up(&self.ack, stats.acked);
        catch_up(&self.nack, stats.nacked);
        catch_up(&self.reject, stats.rejected);
        catch_up(&self.dead_letter, stats.dead_lettered);
        catch_up(&self.decode_failures, stats.decode_failures);
        catch_up(&self.validation_failures, stats.validation_failures);
        catch_up(&self.panics, stats.panics);
        self.in_flight.set(stats.in_flight);
    }

    /// The count of messages settled with `outcome` so far.
    pub fn handled(&self, outcome: Outcome) -> u64 {
        match outcome {
            Outcome::Ack => self.ack.get(),
            Outcome::Nack => self.nack.get(),
            Outcome::Reject => self.reject.get(),
            Outcome::DeadLetter => self.dead_letter.get(),
        }
    }

    /// Record one handler attempt's duration (decode + middleware + handler).
    pub fn handler_took(&self, took: Duration) {
        self.handler_duration.observe(took.as_secs_f64());
    }

    /// Record a publish, its result and how long it took.
    pub fn published(&self, ok: bool, took: Duration) {
        if ok {
            self.published_ok.inc();
        } else {
            self.published_error.inc();
        }
        self.publish_duration.observe(took.as_secs_f64());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::Ordering;

    #[test]
    fn series_follow_router_stats() {
        let metrics = Metrics::new("svc").unwrap();
        let op = metrics.operation("memory", "onLightMeasured");
        let stats = RouterStats::default();
        stats.received.fetch_add(3, Ordering::Relaxed);
        stats.acked.fetch_add(1, Ordering::Relaxed);
        stats.dead_lettered.fetch_add(1, Ordering::Relaxed);
        stats.decode_failures.fetch_add(1, Ordering::Relaxed);
        stats.validation_failures.fetch_add(1, Ordering::Relaxed);
        stats.panics.fetch_add(1, Ordering::Relaxed);
        stats.in_flight.fetch_add(1, Ordering::Relaxed);
        op.sync(&stats.snapshot());
        op.sync(&stats.snapshot());
        op.handler_took(Duration::from_millis(3));
        op.published(false, Duration::from_millis(2));
        let text = metrics.render();
        for line in [
            r#"ruststream_messages_received_total{app="svc",broker="memory",operation="onLightMeasured"} 3"#,
            r#"ruststream_messages_in_flight{app="svc",broker="memory",operation="onLightMeasured"} 1"#,
            r#"ruststream_messages_handled_total{app="svc",broker="memory",operation="onLightMeasured",outcome="dead_letter"} 1"#,
            r#"ruststream_messages_handled_total{app="svc",broker="memory",operation="onLightMeasured",outcome="ack"} 1"#,
            r#"ruststream_messages_handled_total{app="svc",broker="memory",operation="onLightMeasured",outcome="nack"} 0"#,
            r#"ruststream_decode_failures_total{app="svc",broker="memory",operation="onLightMeasured"} 1"#,
            r#"ruststream_validation_failures_total{app="svc",broker="memory",operation="onLightMeasured"} 1"#,
            r#"ruststream_handler_panics_total{app="svc",broker="memory",operation="onLightMeasured"} 1"#,
            r#"ruststream_messages_published_total{app="svc",broker="memory",operation="onLightMeasured",status="error"} 1"#,
            r#"ruststream_handler_duration_seconds_count{app="svc",broker="memory",operation="onLightMeasured"} 1"#,
            r#"ruststream_publish_duration_seconds_count{app="svc",broker="memory",operation="onLightMeasured"} 1"#,
        ] {
            assert!(text.contains(line), "missing `{line}` in\n{text}");
        }
        assert_eq!(op.handled(Outcome::Ack), 1);
        assert!(
            !text.contains(INSTANCE_LABEL),
            "no instance label by default"
        );
    }

    #[test]
    fn instances_are_told_apart_by_a_label() {
        let metrics = Metrics::with_instance("svc", "svc-2").unwrap();
        let op = metrics.operation("nats", "onJob");
        let stats = RouterStats::default();
        stats.acked.fetch_add(7, Ordering::Relaxed);
        op.sync(&stats.snapshot());
        op.handler_took(Duration::from_millis(1));
        let text = metrics.render();
        for line in [
            r#"ruststream_messages_handled_total{app="svc",broker="nats",operation="onJob",outcome="ack",service_instance="svc-2"} 7"#,
            r#"ruststream_messages_in_flight{app="svc",broker="nats",operation="onJob",service_instance="svc-2"} 0"#,
            r#"ruststream_handler_duration_seconds_count{app="svc",broker="nats",operation="onJob",service_instance="svc-2"} 1"#,
        ] {
            assert!(text.contains(line), "missing `{line}` in\n{text}");
        }
        assert_eq!(metrics.instance(), Some("svc-2"));
        assert_eq!(Metrics::with_instance("svc", "").unwrap().instance(), None);
    }
}
