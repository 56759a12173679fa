//! The conformance harness against the in-memory broker, and against deliberately faulty
//! wrappers of it to prove the checks can fail.
#![cfg(feature = "conformance")]

use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use futures_core::Stream;
use futures_util::FutureExt;
use ruststream::conformance::{CHECKS, Suite};
use ruststream::memory::{MemoryBroker, MemoryConnection, MemoryMessage, MemorySubscription};
use ruststream::{
    Address, Broker, Capabilities, Connection, Headers, IncomingMessage, OutgoingMessage,
    Publisher, Result, SubscribeOptions, Subscriber,
};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn memory_passes_every_check() {
    // Connections from clones of one broker share it: the cross-connection sub-steps (a
    // durable subscription resumed on a new connection, shutdown flushes acks, publish then
    // shut down) run too.
    let broker = MemoryBroker::default();
    let report = Suite::new(move || broker.clone().connect())
        .quiet(Duration::from_millis(150))
        .run_all()
        .await;
    assert_eq!(report.skipped, vec![], "memory declares every capability");
    let mut passed = report.passed.clone();
    passed.sort_unstable();
    let mut all = CHECKS.to_vec();
    all.sort_unstable();
    assert_eq!(passed, all);
}

#[tokio::test]
async fn memory_passes_on_a_current_thread_runtime() {
    let broker = MemoryBroker::default();
    Suite::new(move || broker.clone().connect())
        .quiet(Duration::from_millis(100))
        .run()
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn memory_stress() {
    let broker = MemoryBroker::default();
    let report = Suite::new(move || broker.clone().connect())
        .quiet(Duration::from_millis(100))
        .messages(20)
        .stress(4)
        .await;
    assert_eq!(
        report.passed.iter().filter(|c| **c == "round_trip").count(),
        4
    );
}

/// Which fault a [`Faulty`] connection injects.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Fault {
    /// Publishing drops the `x-empty` header.
    DropHeader,
    /// Acking a message delivers it again.
    RedeliverAfterAck,
    /// `shutdown` never completes.
    HangOnShutdown,
    /// Every tenth publish is silently lost.
    LoseEveryTenth,
    /// `attempt()` is always 1, even on redelivery.
    AttemptStuck,
    /// Subscriptions ignore their queue group (every member gets every message).
    IgnoreQueueGroup,
}

/// The in-memory broker with one fault injected.
#[derive(Debug, Clone)]
struct Faulty {
    inner: MemoryConnection,
    fault: Fault,
    published: std::sync::Arc<std::sync::atomic::AtomicUsize>,
}

impl Publisher for Faulty {
    async fn publish(&self, mut message: OutgoingMessage) -> Result<()> {
        match self.fault {
            Fault::DropHeader => {
                message.headers.remove("x-empty");
            }
            Fault::LoseEveryTenth => {
                let n = self
                    .published
                    .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                if n % 10 == 9 {
                    return Ok(());
                }
            }
            _ => {}
        }
        self.inner.publish(message).await
    }
}

impl Subscriber for Faulty {
    type Message = FaultyMessage;
    type Subscription = FaultySubscription;

    async fn subscribe(
        &self,
        address: &Address,
        mut options: SubscribeOptions,
    ) -> Result<FaultySubscription> {
        if self.fault == Fault::IgnoreQueueGroup {
            options.queue_group = None;
        }
        Ok(FaultySubscription {
            inner: self.inner.subscribe(address, options).await?,
            conn: self.clone(),
        })
    }
}

impl Connection for Faulty {
    fn capabilities(&self) -> Capabilities {
        self.inner.capabilities()
    }

    async fn shutdown(self) -> Result<()> {
        if self.fault == Fault::HangOnShutdown {
            std::future::pending::<()>().await;
        }
        self.inner.shutdown().await
    }
}

struct FaultySubscription {
    inner: MemorySubscription,
    conn: Faulty,
}

impl Stream for FaultySubscription {
    type Item = Result<FaultyMessage>;
    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let conn = self.conn.clone();
        Pin::new(&mut self.inner)
            .poll_next(cx)
            .map(|o| o.map(|r| r.map(|inner| FaultyMessage { inner, conn })))
    }
}

struct FaultyMessage {
    inner: MemoryMessage,
    conn: Faulty,
}

impl IncomingMessage for FaultyMessage {
    fn payload(&self) -> &[u8] {
        self.inner.payload()
    }
    fn headers(&self) -> &Headers {
        self.inner.headers()
    }
    fn address(&self) -> &str {
        self.inner.address()
    }
    fn reply_to(&self) -> Option<&str> {
        self.inner.reply_to()
    }
    fn correlation_id(&self) -> Option<&str> {
        self.inner.correlation_id()
    }
    fn attempt(&self) -> u32 {
        if self.conn.fault == Fault::AttemptStuck {
            return 1;
        }
        self.inner.attempt()
    }
    async fn ack(self) -> Result<()> {
        if self.conn.fault == Fault::RedeliverAfterAck {
            let again = OutgoingMessage::new(self.inner.address(), self.inner.payload().to_vec())
                .with_headers(self.inner.headers().clone());
            self.inner.ack().await?;
            return self.conn.inner.publish(again).await;
        }
        self.inner.ack().await
    }
    async fn nack(self, requeue: bool) -> Result<()> {
        self.inner.nack(requeue).await
    }
    async fn reject(self) -> Result<()> {
        self.inner.reject().await
    }
}

/// Run `checks` against a faulty broker; return the failure message (panics if none).
async fn failure(fault: Fault, checks: &[&str]) -> String {
    let suite = Suite::new(move || async move {
        Ok(Faulty {
            inner: MemoryBroker::default().connect().await?,
            fault,
            published: Default::default(),
        })
    })
    .private_connections()
    .timeout(Duration::from_millis(500))
    .only(checks.iter().copied());
    match std::panic::AssertUnwindSafe(suite.run())
        .catch_unwind()
        .await
    {
        Ok(report) => panic!("{fault:?} passed {checks:?} unnoticed: {report:?}"),
        Err(panic) => panic
            .downcast_ref::<String>()
            .cloned()
            .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
            .unwrap_or_default(),
    }
}

#[tokio::test]
async fn a_dropped_header_fails_round_trip() {
    let msg = failure(Fault::DropHeader, &["round_trip"]).await;
    assert!(msg.contains("`round_trip`"), "{msg}");
    assert!(msg.contains("header \"x-empty\""), "{msg}");
}

#[tokio::test]
async fn redelivery_after_ack_fails_ack() {
    let msg = failure(Fault::RedeliverAfterAck, &["ack"]).await;
    assert!(msg.contains("`ack`"), "{msg}");
    assert!(msg.contains("an acked message is not redelivered"), "{msg}");
}

#[tokio::test]
async fn redelivery_after_ack_fails_the_durable_and_volume_checks_too() {
    for check in ["durable", "concurrency", "queue_groups"] {
        let msg = failure(Fault::RedeliverAfterAck, &[check]).await;
        assert!(msg.contains(&format!("`{check}`")), "{msg}");
    }
}

#[tokio::test]
async fn a_hanging_shutdown_fails_instead_of_hanging() {
    let msg = failure(Fault::HangOnShutdown, &["lifecycle"]).await;
    assert!(msg.contains("shutdown"), "{msg}");
    assert!(msg.contains("a hang"), "{msg}");
}

#[tokio::test]
async fn lost_messages_fail_concurrency() {
    let msg = failure(Fault::LoseEveryTenth, &["concurrency"]).await;
    assert!(msg.contains("`concurrency`"), "{msg}");
    assert!(msg.contains("none (timed out)"), "{msg}");
}

#[tokio::test]
async fn a_stuck_attempt_count_fails_nack_requeue() {
    let msg = failure(Fault::AttemptStuck, &["nack_requeue"]).await;
    assert!(msg.contains("`nack_requeue`"), "{msg}");
    assert!(msg.contains("expected attempt 2, got 1"), "{msg}");
}

#[tokio::test]
async fn ignoring_queue_groups_fails_queue_groups() {
    let msg = failure(Fault::IgnoreQueueGroup, &["queue_groups"]).await;
    assert!(msg.contains("`queue_groups`"), "{msg}");
}
