//! Helpers for tests of RustStream services and broker crates.

use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

/// Whether a test that needs the service at `addr` (e.g. `"127.0.0.1:4222"`) can run.
///
/// Returns `true` when a TCP connection succeeds. When it fails: with `CI=true` in the
/// environment this panics (a CI run must not silently skip), otherwise it prints the reason to
/// stderr and returns `false` so the caller can return early.
///
/// This is a blocking check with a short timeout, meant for the start of a test.
pub fn require_service(name: &str, addr: &str) -> bool {
    let reachable = addr
        .parse::<SocketAddr>()
        .ok()
        .and_then(|a| TcpStream::connect_timeout(&a, Duration::from_secs(2)).ok())
        .is_some();
    if reachable {
        return true;
    }
    let msg = format!("{name} is not reachable at {addr}");
    if std::env::var("CI").is_ok_and(|v| v == "true" || v == "1") {
        panic!("{msg}: CI requires it (start it as .ci/run does)");
    }
    eprintln!("skipping: {msg}");
    false
}

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::memory::{
    MemoryBroker, MemoryConfig, MemoryConnection, RecordedMessage, Settled, Settlement,
};
use crate::router::{Router, RunningRouter, ShutdownReport, StatsSnapshot};
use crate::{Error, OutgoingMessage, Publisher, Result};

/// A router running on a fresh in-memory broker that records every publish and settlement.
///
/// ```
/// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
/// use std::time::Duration;
/// use ruststream::memory::{MemoryConnection, Settled};
/// use ruststream::router::{Context, HandlerError, Route, Router};
/// use ruststream::testing::TestApp;
///
/// let mut router = Router::<MemoryConnection>::new();
/// router.route(Route::new("in")?, |n: u32, ctx: Context<MemoryConnection>| async move {
///     ctx.publish("out", "application/json", &(n * 2)).await?;
///     Ok::<_, HandlerError>(())
/// });
/// let app = TestApp::start(router).await?;
/// app.publish("in", &21).await?;
/// app.wait_settled(1, Duration::from_secs(5)).await?;
/// assert_eq!(app.decoded::<u32>("out")?, [42]);
/// assert_eq!(app.settlements()[0].outcome, Settled::Acked);
/// app.shutdown(Duration::from_secs(1)).await?;
/// # Ok::<(), Box<dyn std::error::Error>>(()) }).unwrap();
/// ```
#[derive(Debug)]
pub struct TestApp {
    conn: MemoryConnection,
    running: RunningRouter,
}

impl TestApp {
    /// Start `router` on a new in-memory broker (default config, recording on).
    pub async fn start(router: Router<MemoryConnection>) -> Result<TestApp> {
        Self::start_with(router, MemoryConfig::new()).await
    }

    /// Start `router` on a new in-memory broker with `config` (recording is forced on).
    pub async fn start_with(
        router: Router<MemoryConnection>,
        config: MemoryConfig,
    ) -> Result<TestApp> {
        let conn = MemoryBroker::new(config.record(true)).connect_now();
        let running = router.start(conn.clone()).await?;
        Ok(TestApp { conn, running })
    }

    /// The broker connection (publish, subscribe, request directly).
    pub fn connection(&self) -> &MemoryConnection {
        &self.conn
    }

    /// The running router (stats per route).
    pub fn router(&self) -> &RunningRouter {
        &self.running
    }

    /// Router counters over all routes.
    pub fn stats(&self) -> StatsSnapshot {
        self.running.stats().snapshot()
    }

    /// Publish `value` as JSON to `address`.
    pub async fn publish<T: Serialize + ?Sized>(&self, address: &str, value: &T) -> Result<()> {
        self.publish_as(address, crate::codec::DEFAULT_CONTENT_TYPE, value)
            .await
    }

    /// Publish `value` encoded as `content_type` to `address`.
    pub async fn publish_as<T: Serialize + ?Sized>(
        &self,
        address: &str,
        content_type: &str,
        value: &T,
    ) -> Result<()> {
        crate::client::publish(
            &self.conn,
            address.to_owned(),
            content_type,
            value,
            crate::Headers::new(),
        )
        .await
    }

    /// Publish a prepared message.
    pub async fn publish_message(&self, message: OutgoingMessage) -> Result<()> {
        self.conn.publish(message).await
    }

    /// Send a JSON request and decode the reply.
    pub async fn request<T: Serialize + ?Sized, R: DeserializeOwned>(
        &self,
        address: &str,
        value: &T,
        timeout: Duration,
    ) -> Result<R> {
        crate::client::request(
            &self.conn,
            address.to_owned(),
            crate::codec::DEFAULT_CONTENT_TYPE,
            value,
            timeout,
        )
        .await
    }

    /// Wait until at least `n` settlements (ack, nack, reject, delayed nack; not drops) were
    /// recorded, or fail with [`Error::Timeout`].
    pub async fn wait_settled(&self, n: usize, timeout: Duration) -> Result<()> {
        let settled = || {
            self.conn
                .settlements()
                .iter()
                .filter(|s| s.outcome != Settled::Dropped)
                .count()
        };
        self.wait_until(timeout, || settled() >= n)
            .await
            .map_err(|_| Error::Timeout(format!("{} of {n} settlements", settled()).into()))
    }

    /// Poll `condition` until it holds, or fail with [`Error::Timeout`] after `timeout`.
    pub async fn wait_until(&self, timeout: Duration, condition: impl Fn() -> bool) -> Result<()> {
        let end = tokio::time::Instant::now() + timeout;
        loop {
            if condition() {
                return Ok(());
            }
            if tokio::time::Instant::now() >= end {
                return Err(Error::Timeout("condition not met".into()));
            }
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
    }

    /// Every message published so far (by the test and by the handlers).
    pub fn published(&self) -> Vec<RecordedMessage> {
        self.conn.published()
    }

    /// Messages published to `address`.
    pub fn published_to(&self, address: &str) -> Vec<RecordedMessage> {
        self.conn
            .published()
            .into_iter()
            .filter(|m| m.address == address)
            .collect()
    }

    /// Payloads published to `address`, decoded by their content type (default JSON).
    pub fn decoded<T: DeserializeOwned>(&self, address: &str) -> Result<Vec<T>> {
        self.published_to(address)
            .iter()
            .map(|m| {
                let ct = m
                    .headers
                    .get(crate::message::names::CONTENT_TYPE)
                    .unwrap_or(crate::codec::DEFAULT_CONTENT_TYPE);
                crate::codec::decode(ct, &m.payload)
            })
            .collect()
    }

    /// Every settlement so far, in order.
    pub fn settlements(&self) -> Vec<Settlement> {
        self.conn.settlements()
    }

    /// Settlements of messages on `address`.
    pub fn settlements_on(&self, address: &str) -> Vec<Settlement> {
        self.conn
            .settlements()
            .into_iter()
            .filter(|s| s.address == address)
            .collect()
    }

    /// Shut the router down (drain within `deadline`) and the broker with it.
    pub async fn shutdown(self, deadline: Duration) -> Result<ShutdownReport> {
        self.running.shutdown(deadline).await
    }
}
