//! The benchmarked service: code generated from `bench/asyncapi.yaml` by `build.rs`, and a
//! handler that counts what it gets.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use ruststream::Connection;
use ruststream::router::{Context, HandlerError};
use tokio::sync::Notify;

/// The generated code (types, `Handler`, `register`, `Client`).
#[allow(dead_code, missing_docs, clippy::all)]
pub mod spec {
    ruststream::include_spec!("bench_service");
}

pub use spec::{EchoReplyPayload, Event};

/// The event every pipeline sends (the baselines encode the same value).
pub fn sample_event(id: i64) -> Event {
    Event {
        id,
        name: "sensor-42".to_owned(),
        ts: 1_764_000_000_000,
    }
}

/// Counts handled messages and signals when a target count is reached.
#[derive(Debug)]
pub struct Counter {
    handled: AtomicU64,
    target: u64,
    /// Notified once when `target` messages were handled.
    pub done: Notify,
    /// Notified (all waiters) every [`PROGRESS_EVERY`] messages, for publishers that keep a
    /// bounded window of unhandled messages ([`Counter::wait_window`]).
    progress: Notify,
}

/// How often [`Counter`] wakes window-waiting publishers.
pub const PROGRESS_EVERY: u64 = 256;

impl Counter {
    /// A counter that fires after `target` messages.
    pub fn new(target: u64) -> Arc<Self> {
        Arc::new(Counter {
            handled: AtomicU64::new(0),
            target,
            done: Notify::new(),
            progress: Notify::new(),
        })
    }

    /// Count one message.
    pub fn hit(&self) {
        let handled = self.handled.fetch_add(1, Ordering::Relaxed) + 1;
        if handled == self.target {
            self.done.notify_one();
        }
        if handled % PROGRESS_EVERY == 0 {
            self.progress.notify_waiters();
        }
    }

    /// Wait until fewer than `window` of the `published` messages are unhandled (flow control
    /// for transports that drop what a slow subscriber cannot take, like core NATS). Fails
    /// after `stall` without progress.
    pub async fn wait_window(
        &self,
        published: u64,
        window: u64,
        stall: Duration,
    ) -> Result<(), String> {
        loop {
            let progress = self.progress.notified();
            tokio::pin!(progress);
            progress.as_mut().enable();
            let handled = self.handled();
            if published.saturating_sub(handled) < window {
                return Ok(());
            }
            if tokio::time::timeout(stall, progress).await.is_err() && self.handled() == handled {
                return Err(format!(
                    "no progress for {stall:?}: {handled} of {published} published messages handled (lost?)"
                ));
            }
        }
    }

    /// Messages counted so far.
    pub fn handled(&self) -> u64 {
        self.handled.load(Ordering::Relaxed)
    }
}

/// The handler implementation: `on_event` counts (optionally sleeping on every N-th message),
/// `echo` replies with the request's id.
#[derive(Debug)]
pub struct BenchService {
    counter: Arc<Counter>,
    slow: Option<(u64, Duration)>,
}

impl BenchService {
    /// A handler counting into `counter`.
    pub fn new(counter: Arc<Counter>) -> Self {
        BenchService {
            counter,
            slow: None,
        }
    }

    /// A handler that sleeps `sleep` on every `every`-th message.
    pub fn slow(counter: Arc<Counter>, every: u64, sleep: Duration) -> Self {
        BenchService {
            counter,
            slow: Some((every.max(1), sleep)),
        }
    }
}

impl spec::Handler for BenchService {
    async fn on_event<C: Connection>(
        &self,
        message: Event,
        _ctx: Context<C>,
    ) -> Result<(), HandlerError> {
        if let Some((every, sleep)) = self.slow
            && message.id.unsigned_abs() % every == 0
        {
            tokio::time::sleep(sleep).await;
        }
        std::hint::black_box(&message);
        self.counter.hit();
        Ok(())
    }

    async fn echo<C: Connection>(
        &self,
        message: Event,
        _ctx: Context<C>,
    ) -> Result<EchoReplyPayload, HandlerError> {
        Ok(EchoReplyPayload { id: message.id })
    }
}
