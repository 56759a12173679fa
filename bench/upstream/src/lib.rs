//! The bench service written with upstream `ruststream` 0.7.7's public API (crates.io, the
//! code-first crate that shares our name), the way its own benches write it
//! (`benches/consume_json.rs`, `benches/common/mod.rs`): a `#[subscriber]` handler taking the
//! decoded message by reference, a latch in the application state, the in-memory broker, JSON.
//!
//! Two messages: the bench's `Event {id, name, ts}` and upstream's own bench message
//! `Order {id: u64, quantity: u32}`.

use std::convert::Infallible;
use std::hint::black_box;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use ruststream::memory::prelude::*;
use serde::{Deserialize, Serialize};
use tokio::sync::Notify;

/// Errors of the upstream side.
pub type Error = Box<dyn std::error::Error + Send + Sync>;

/// The bench's event (same fields and JSON as the generated `Event` of `ruststream-bench`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Outgoing)]
pub struct Event {
    /// Event id.
    pub id: i64,
    /// Sensor name.
    pub name: String,
    /// Timestamp, milliseconds.
    pub ts: i64,
}

/// Upstream's own bench message (`benches/common/mod.rs`): two integers, a decode that
/// allocates nothing.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Outgoing)]
pub struct Order {
    /// Order id.
    pub id: u64,
    /// Quantity.
    pub quantity: u32,
}

/// Which message a service consumes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// [`Event`] on `bench.events`.
    Event,
    /// [`Order`] on `bench.orders`.
    Order,
}

impl Kind {
    /// The name the service subscribes to.
    pub fn name(self) -> &'static str {
        match self {
            Kind::Event => "bench.events",
            Kind::Order => "bench.orders",
        }
    }
}

/// Counts deliveries down and wakes the waiter on the last one (upstream's bench `Latch`).
#[derive(Clone, Debug, Default)]
pub struct Latch(Arc<Inner>);

#[derive(Debug, Default)]
struct Inner {
    remaining: AtomicUsize,
    drained: Notify,
}

impl Latch {
    /// Arms the latch for `count` deliveries.
    pub fn expect(&self, count: usize) {
        self.0.remaining.store(count, Ordering::Release);
    }

    /// One handled delivery.
    pub fn arrived(&self) {
        if self.0.remaining.fetch_sub(1, Ordering::Relaxed) == 1 {
            self.0.drained.notify_one();
        }
    }

    /// Deliveries still expected.
    pub fn remaining(&self) -> usize {
        self.0.remaining.load(Ordering::Acquire)
    }

    /// Resolves once every expected delivery was handled.
    pub async fn drained(&self) {
        while self.0.remaining.load(Ordering::Acquire) > 0 {
            self.0.drained.notified().await;
        }
    }
}

#[subscriber("bench.events")]
async fn on_event(event: &Event, ctx: &mut Context<'_, (), Latch>) -> HandlerOutcome {
    black_box(event);
    ctx.state().arrived();
    HandlerOutcome::ack()
}

#[subscriber("bench.orders")]
async fn on_order(order: &Order, ctx: &mut Context<'_, (), Latch>) -> HandlerOutcome {
    black_box((order.id, order.quantity));
    ctx.state().arrived();
    HandlerOutcome::ack()
}

/// A started upstream service on a fresh in-memory broker.
#[derive(Debug)]
pub struct Service {
    running: RunningApp,
    broker: MemoryBroker,
    /// The latch the handler counts down.
    pub latch: Latch,
    kind: Kind,
}

impl Service {
    /// Start a service consuming `kind`, expecting `expected` deliveries.
    pub async fn start(kind: Kind, expected: usize) -> Result<Service, Error> {
        let latch = Latch::default();
        latch.expect(expected);
        let broker = MemoryBroker::new();
        let state = latch.clone();
        let app = RustStream::new(AppInfo::new("bench", "0.0.0"))
            .on_startup(async move |()| Ok::<_, Infallible>(state))
            .with_broker(broker.clone(), move |b| match kind {
                Kind::Event => {
                    b.include(on_event);
                }
                Kind::Order => {
                    b.include(on_order);
                }
            });
        let running = app.start().await?;
        Ok(Service {
            running,
            broker,
            latch,
            kind,
        })
    }

    /// A publisher on the service's broker (typed publishing).
    pub fn sender(&self) -> Sender {
        Sender {
            inner: self.broker.publisher(),
            kind: self.kind,
        }
    }

    /// Graceful shutdown.
    pub async fn shutdown(self) -> Result<(), Error> {
        self.running.shutdown().await?;
        Ok(())
    }

    /// Drop the service without shutting it down (the `--no-work` runs: nothing consumed).
    pub fn abandon(self) {
        drop(self.running);
    }
}

/// Typed publishing the way an upstream service publishes (`message(&value).to(name)`).
#[derive(Debug, Clone)]
pub struct Sender {
    inner: ruststream::memory::MemoryPublisher,
    kind: Kind,
}

impl Sender {
    /// Publish an [`Event`] (JSON, upstream's default codec).
    pub async fn event(&self, event: &Event) -> Result<(), Error> {
        self.inner
            .message(event)
            .to(self.kind.name())
            .publish()
            .await?;
        Ok(())
    }

    /// Publish an [`Order`].
    pub async fn order(&self, order: &Order) -> Result<(), Error> {
        self.inner
            .message(order)
            .to(self.kind.name())
            .publish()
            .await?;
        Ok(())
    }
}
