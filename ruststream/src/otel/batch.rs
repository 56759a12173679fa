//! The batch span processor: a bounded queue in front of a background export thread.

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, SyncSender, TrySendError};
use std::task::{Context as TaskContext, Poll, Wake};
use std::time::{Duration, Instant};

use opentelemetry::Context;
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::error::{OTelSdkError, OTelSdkResult};
use opentelemetry_sdk::trace::{Span, SpanData, SpanExporter, SpanProcessor};

/// Queue and batch sizes of a [`BatchProcessor`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BatchConfig {
    /// Spans waiting for export at most; more are dropped (and counted). Default 2048.
    pub max_queue_size: usize,
    /// Spans per export at most. Default 512.
    pub max_export_batch_size: usize,
    /// Export what is queued at least this often. Default 1 s.
    pub scheduled_delay: Duration,
}

impl Default for BatchConfig {
    fn default() -> Self {
        BatchConfig {
            max_queue_size: 2048,
            max_export_batch_size: 512,
            scheduled_delay: Duration::from_secs(1),
        }
    }
}

impl BatchConfig {
    /// The defaults, overridden by `OTEL_BSP_MAX_QUEUE_SIZE`, `OTEL_BSP_MAX_EXPORT_BATCH_SIZE`
    /// and `OTEL_BSP_SCHEDULE_DELAY` (milliseconds) where they hold a positive number.
    pub fn from_env() -> Self {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    /// [`from_env`](Self::from_env) reading variables through `lookup`.
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Self {
        let number = |name: &str| {
            lookup(name)
                .and_then(|v| v.trim().parse::<u64>().ok())
                .filter(|&n| n > 0)
        };
        let mut config = BatchConfig::default();
        if let Some(n) = number("OTEL_BSP_MAX_QUEUE_SIZE") {
            config.max_queue_size = usize::try_from(n).unwrap_or(usize::MAX);
        }
        if let Some(n) = number("OTEL_BSP_MAX_EXPORT_BATCH_SIZE") {
            config.max_export_batch_size = usize::try_from(n).unwrap_or(usize::MAX);
        }
        if let Some(ms) = number("OTEL_BSP_SCHEDULE_DELAY") {
            config.scheduled_delay = Duration::from_millis(ms);
        }
        config
    }
}

/// What a [`BatchProcessor`] has done so far. Cheap to clone; all clones see the same counts.
#[derive(Debug, Clone, Default)]
pub struct ExportStats {
    inner: Arc<Counts>,
}

#[derive(Debug, Default)]
struct Counts {
    exported: AtomicU64,
    dropped: AtomicU64,
    failed: AtomicU64,
    failed_exports: AtomicU64,
}

impl ExportStats {
    /// Spans the exporter accepted.
    pub fn exported(&self) -> u64 {
        self.inner.exported.load(Ordering::Relaxed)
    }

    /// Spans dropped because the queue was full or the processor shut down.
    pub fn dropped(&self) -> u64 {
        self.inner.dropped.load(Ordering::Relaxed)
    }

    /// Spans in exports that failed.
    pub fn failed(&self) -> u64 {
        self.inner.failed.load(Ordering::Relaxed)
    }

    /// Exports (batches) that failed.
    pub fn failed_exports(&self) -> u64 {
        self.inner.failed_exports.load(Ordering::Relaxed)
    }
}

enum Msg {
    Span(Box<SpanData>),
    Resource(Resource),
    Flush(SyncSender<OTelSdkResult>),
    Shutdown(SyncSender<OTelSdkResult>),
}

/// A [`SpanProcessor`] that queues finished, sampled spans in a bounded queue and exports them
/// in batches from a background thread (`ruststream-otel`).
///
/// Ending a span never blocks: when the queue is full the span is dropped and counted
/// ([`ExportStats::dropped`]). A batch goes out when it is full or every
/// [`scheduled_delay`](BatchConfig::scheduled_delay); [`force_flush`](SpanProcessor::force_flush)
/// and shutdown export everything queued before returning.
///
/// The exporter's futures run on that thread with a minimal executor, not on an async
/// runtime: use an exporter that needs none (as [`OtlpHttpJsonExporter`](super::OtlpHttpJsonExporter)).
#[derive(Debug)]
pub struct BatchProcessor {
    tx: SyncSender<Msg>,
    stats: ExportStats,
    shut_down: AtomicBool,
}

impl BatchProcessor {
    /// Start the export thread for `exporter`.
    pub fn new<E: SpanExporter + 'static>(
        exporter: E,
        config: BatchConfig,
    ) -> std::io::Result<Self> {
        let (tx, rx) = mpsc::sync_channel(config.max_queue_size.max(1));
        let stats = ExportStats::default();
        let counts = Arc::clone(&stats.inner);
        std::thread::Builder::new()
            .name("ruststream-otel".into())
            .spawn(move || export_loop(exporter, config, &rx, &counts))?;
        Ok(BatchProcessor {
            tx,
            stats,
            shut_down: AtomicBool::new(false),
        })
    }

    /// The processor's counters.
    pub fn stats(&self) -> ExportStats {
        self.stats.clone()
    }

    fn control(
        &self,
        make: impl FnOnce(SyncSender<OTelSdkResult>) -> Msg,
        timeout: Duration,
    ) -> OTelSdkResult {
        let (reply, answer) = mpsc::sync_channel(1);
        self.tx
            .send(make(reply))
            .map_err(|_| OTelSdkError::AlreadyShutdown)?;
        answer
            .recv_timeout(timeout)
            .map_err(|_| OTelSdkError::Timeout(timeout))?
    }
}

impl SpanProcessor for BatchProcessor {
    fn on_start(&self, _span: &mut Span, _cx: &Context) {}

    fn on_end(&self, span: SpanData) {
        if !span.span_context.is_sampled() {
            return;
        }
        if self.shut_down.load(Ordering::Acquire) {
            self.stats.inner.dropped.fetch_add(1, Ordering::Relaxed);
            return;
        }
        match self.tx.try_send(Msg::Span(Box::new(span))) {
            Ok(()) => {}
            Err(TrySendError::Full(_) | TrySendError::Disconnected(_)) => {
                self.stats.inner.dropped.fetch_add(1, Ordering::Relaxed);
            }
        }
    }

    fn force_flush(&self) -> OTelSdkResult {
        self.control(Msg::Flush, Duration::from_secs(30))
    }

    fn shutdown_with_timeout(&self, timeout: Duration) -> OTelSdkResult {
        if self.shut_down.swap(true, Ordering::AcqRel) {
            return Err(OTelSdkError::AlreadyShutdown);
        }
        self.control(Msg::Shutdown, timeout)
    }

    fn set_resource(&mut self, resource: &Resource) {
        // The thread applies it before any span (the channel is ordered).
        let _ = self.tx.send(Msg::Resource(resource.clone()));
    }
}

fn export_loop<E: SpanExporter>(
    mut exporter: E,
    config: BatchConfig,
    rx: &Receiver<Msg>,
    counts: &Counts,
) {
    let max_batch = config.max_export_batch_size.max(1);
    let mut batch: Vec<SpanData> = Vec::with_capacity(max_batch.min(1024));
    let export = |exporter: &E, batch: &mut Vec<SpanData>| -> OTelSdkResult {
        if batch.is_empty() {
            return Ok(());
        }
        let spans = std::mem::take(batch);
        let n = spans.len() as u64;
        let result = block_on(exporter.export(spans));
        match &result {
            Ok(()) => counts.exported.fetch_add(n, Ordering::Relaxed),
            Err(e) => {
                tracing::warn!(error = %e, spans = n, "exporting spans failed");
                counts.failed_exports.fetch_add(1, Ordering::Relaxed);
                counts.failed.fetch_add(n, Ordering::Relaxed)
            }
        };
        result
    };
    let mut deadline = Instant::now() + config.scheduled_delay;
    loop {
        let wait = deadline.saturating_duration_since(Instant::now());
        match rx.recv_timeout(wait) {
            Ok(Msg::Span(span)) => {
                batch.push(*span);
                if batch.len() >= max_batch {
                    let _ = export(&exporter, &mut batch);
                    deadline = Instant::now() + config.scheduled_delay;
                }
            }
            Ok(Msg::Resource(resource)) => exporter.set_resource(&resource),
            Ok(Msg::Flush(reply)) => {
                let result = export(&exporter, &mut batch).and(exporter.force_flush());
                let _ = reply.send(result);
            }
            Ok(Msg::Shutdown(reply)) => {
                let result = export(&exporter, &mut batch).and(exporter.shutdown());
                let _ = reply.send(result);
                break;
            }
            Err(RecvTimeoutError::Timeout) => {
                let _ = export(&exporter, &mut batch);
                deadline = Instant::now() + config.scheduled_delay;
            }
            Err(RecvTimeoutError::Disconnected) => {
                let _ = export(&exporter, &mut batch);
                let _ = exporter.shutdown();
                break;
            }
        }
    }
    // Spans still queued after a shutdown are not exported.
    while let Ok(msg) = rx.try_recv() {
        if matches!(msg, Msg::Span(_)) {
            counts.dropped.fetch_add(1, Ordering::Relaxed);
        }
    }
}

/// Run a future to completion on this thread (exporters' futures need no runtime).
fn block_on<F: Future>(future: F) -> F::Output {
    struct Unpark(std::thread::Thread);
    impl Wake for Unpark {
        fn wake(self: Arc<Self>) {
            self.0.unpark();
        }
    }
    let waker = Arc::new(Unpark(std::thread::current())).into();
    let mut cx = TaskContext::from_waker(&waker);
    let mut future = std::pin::pin!(future);
    loop {
        if let Poll::Ready(out) = future.as_mut().poll(&mut cx) {
            return out;
        }
        std::thread::park();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use opentelemetry::InstrumentationScope;
    use opentelemetry::trace::{SpanContext, SpanId, SpanKind, Status, TraceFlags, TraceId};
    use opentelemetry_sdk::trace::{SpanEvents, SpanLinks};
    use std::sync::Mutex;
    use std::time::SystemTime;

    /// Signals each export on `entered`, then waits for a token on `gate`.
    #[derive(Debug)]
    struct Gated {
        entered: Mutex<mpsc::Sender<usize>>,
        gate: Mutex<Receiver<()>>,
    }

    impl SpanExporter for Gated {
        async fn export(&self, batch: Vec<SpanData>) -> OTelSdkResult {
            let _ = self.entered.lock().unwrap().send(batch.len());
            self.gate
                .lock()
                .unwrap()
                .recv()
                .map_err(|_| OTelSdkError::InternalFailure("gate closed".into()))
        }
    }

    fn span(id: u64, sampled: bool) -> SpanData {
        let flags = if sampled {
            TraceFlags::SAMPLED
        } else {
            TraceFlags::default()
        };
        SpanData {
            span_context: SpanContext::new(
                TraceId::from(1),
                SpanId::from(id),
                flags,
                false,
                Default::default(),
            ),
            parent_span_id: SpanId::INVALID,
            parent_span_is_remote: false,
            span_kind: SpanKind::Internal,
            name: "s".into(),
            start_time: SystemTime::now(),
            end_time: SystemTime::now(),
            attributes: Vec::new(),
            dropped_attributes_count: 0,
            events: SpanEvents::default(),
            links: SpanLinks::default(),
            status: Status::Unset,
            instrumentation_scope: InstrumentationScope::default(),
        }
    }

    #[test]
    fn a_full_queue_drops_and_counts_and_shutdown_flushes() {
        let (entered_tx, entered) = mpsc::channel();
        let (gate, gate_rx) = mpsc::channel();
        let exporter = Gated {
            entered: Mutex::new(entered_tx),
            gate: Mutex::new(gate_rx),
        };
        let config = BatchConfig {
            max_queue_size: 2,
            max_export_batch_size: 1,
            scheduled_delay: Duration::from_secs(3600),
        };
        let processor = BatchProcessor::new(exporter, config).unwrap();
        let stats = processor.stats();
        processor.on_end(span(1, true));
        // The thread now sits in the first export: the queue holds two more, then drops.
        assert_eq!(entered.recv().unwrap(), 1);
        processor.on_end(span(2, false)); // not sampled: never queued
        for id in 3..7 {
            processor.on_end(span(id, true));
        }
        assert_eq!(stats.dropped(), 2);
        for _ in 0..3 {
            gate.send(()).unwrap();
        }
        processor.shutdown().unwrap();
        assert_eq!(
            (stats.exported(), stats.dropped(), stats.failed()),
            (3, 2, 0)
        );
        // After shutdown spans are dropped, not queued.
        processor.on_end(span(8, true));
        assert_eq!(stats.dropped(), 3);
        assert!(matches!(
            processor.shutdown(),
            Err(OTelSdkError::AlreadyShutdown)
        ));
    }

    #[test]
    fn batch_sizes_from_the_environment() {
        let config = BatchConfig::from_lookup(|name| match name {
            "OTEL_BSP_MAX_QUEUE_SIZE" => Some("16".into()),
            "OTEL_BSP_SCHEDULE_DELAY" => Some("250".into()),
            "OTEL_BSP_MAX_EXPORT_BATCH_SIZE" => Some("zero".into()),
            _ => None,
        });
        assert_eq!(config.max_queue_size, 16);
        assert_eq!(config.scheduled_delay, Duration::from_millis(250));
        assert_eq!(config.max_export_batch_size, 512);
    }
}
