//! Feeding the metrics: a router middleware (handler durations; status and duration of the
//! publishes handlers make, labelled with the handling route) and a publisher wrapper
//! (publish status and durations of client code).

use std::collections::HashMap;
use std::sync::RwLock;
use std::time::Instant;

use super::{Metrics, OperationMetrics};
use crate::router::{BoxFuture, ConsumeInfo, HandlerError, Middleware, Next, PublishInfo};
use crate::{OutgoingMessage, Publisher, Result};

/// Router middleware recording, per route, the handler duration histogram and the publishes
/// made through the handler's context (replies and dead letters included) by status and
/// duration (the message counters come from the router's own stats, see
/// [`Metrics::watch_router`]).
#[derive(Debug)]
pub struct MetricsMiddleware {
    metrics: Metrics,
    broker: String,
    routes: RwLock<HashMap<String, OperationMetrics>>,
}

impl MetricsMiddleware {
    /// Record into `metrics` with the `broker` label.
    pub fn new(metrics: Metrics, broker: impl Into<String>) -> Self {
        MetricsMiddleware {
            metrics,
            broker: broker.into(),
            routes: RwLock::new(HashMap::new()),
        }
    }

    /// Run `f` with the metric handles of `route`, resolving them once per route (the steady
    /// state is one read lock and one lookup, no clone).
    fn operation(&self, route: &str, f: impl FnOnce(&OperationMetrics)) {
        if let Some(op) = self
            .routes
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .get(route)
        {
            return f(op);
        }
        let op = self.metrics.operation(&self.broker, route);
        f(&op);
        self.routes
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .insert(route.to_owned(), op);
    }
}

impl Middleware for MetricsMiddleware {
    fn consume<'a>(
        &'a self,
        info: &'a ConsumeInfo<'a>,
        next: Next<'a>,
    ) -> BoxFuture<'a, Result<(), HandlerError>> {
        Box::pin(async move {
            let started = Instant::now();
            let result = next.run(info).await;
            let took = started.elapsed();
            self.operation(info.route, |op| op.handler_took(took));
            result
        })
    }

    fn published(&self, info: &PublishInfo<'_>) {
        self.operation(info.route, |op| {
            op.published(info.result.is_ok(), info.elapsed)
        });
    }
}

/// A [`Publisher`] that records every publish (status `ok`/`error` and duration) under one
/// operation label. Wrap a connection (or a clone of it) that client code publishes through.
#[derive(Debug, Clone)]
pub struct MeteredPublisher<P> {
    inner: P,
    operation: OperationMetrics,
}

impl<P> MeteredPublisher<P> {
    /// Record publishes through `inner` as `operation` on `broker`.
    pub fn new(inner: P, metrics: &Metrics, broker: &str, operation: &str) -> Self {
        MeteredPublisher {
            inner,
            operation: metrics.operation(broker, operation),
        }
    }

    /// The wrapped publisher.
    pub fn get_ref(&self) -> &P {
        &self.inner
    }
}

impl<P: Publisher> Publisher for MeteredPublisher<P> {
    async fn publish(&self, message: OutgoingMessage) -> Result<()> {
        let started = Instant::now();
        let result = self.inner.publish(message).await;
        self.operation.published(result.is_ok(), started.elapsed());
        result
    }

    async fn flush(&self) -> Result<()> {
        self.inner.flush().await
    }
}
