//! Conformance harness: proves a broker crate meets the contract of [`crate::broker`].
//!
//! One call runs every core check, each gated on the [`Capabilities`] the connection declares:
//!
//! ```no_run
//! use ruststream::{conformance::Suite, Broker};
//!
//! async fn conformance<B: Broker + Clone>(broker: B) {
//!     let report = Suite::new(|| broker.clone().connect()).run().await;
//!     assert!(!report.passed.is_empty());
//! }
//! ```
//!
//! The factory is called once per connection a check needs; **every call must return a new,
//! independent connection to the same broker** (a message published on one is delivered to
//! subscriptions of another, and shutting one down leaves the others open). Clones of one
//! `MemoryBroker` share a broker, so the in-memory broker runs the suite this way too; a broker
//! whose every `connect` makes a private broker runs with [`Suite::private_connections`]
//! instead.
//!
//! Broker requirements the checks rely on: `subscribe` resolves once the subscription is
//! active; `publish` after `shutdown` (on any clone) is [`Error::Closed`](crate::Error::Closed);
//! headers arrive byte-exact per name (order across different names may change).
//!
//! Capability traits that need extra bounds have their own entry points:
//! [`Suite::run_request_reply`], [`Suite::run_batch`], [`Suite::run_transactions`],
//! [`Suite::run_delayed`]. [`Suite::stress`] repeats the core suite concurrently.
//!
//! Addresses are unique per run (`<prefix><sep><random run id><sep><check>…`), so suites can run
//! against a live, shared server. A failing check panics with the check, the step, and what was
//! expected versus what happened. Every broker call is bounded by a timeout: a hang is a failure,
//! never a stuck test.

mod checks;
mod extra;
mod order;
mod settle;

use std::fmt::{Debug, Display};
use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use futures_util::StreamExt;

use crate::broker::{Capabilities, Connection, SubscribeOptions};
use crate::capability::{BatchSubscriber, DelayedRedelivery, RequestReply, TransactionalPublisher};
use crate::{Address, IncomingMessage, OutgoingMessage, Result};

/// Something that opens connections to one broker: any `Fn() -> impl Future<Output =
/// Result<C>>`, typically `|| MyBroker::new(cfg.clone()).connect()`.
pub trait ConnectionFactory {
    /// The connection type.
    type Conn: Connection;
    /// Open a new connection to the broker under test.
    fn connect(&self) -> impl Future<Output = Result<Self::Conn>>;
}

impl<F, Fut, C> ConnectionFactory for F
where
    F: Fn() -> Fut,
    Fut: Future<Output = Result<C>>,
    C: Connection,
{
    type Conn = C;
    fn connect(&self) -> impl Future<Output = Result<C>> {
        self()
    }
}

/// Settings of a suite run.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct SuiteConfig {
    /// First address segment of every address the suite uses (default `"rsconf"`).
    pub prefix: String,
    /// Address segment separator (default `"."`; MQTT uses `"/"`).
    pub separator: String,
    /// Upper bound for any single broker operation or expected delivery (default 5 s).
    pub timeout: Duration,
    /// How long to watch a subscription to prove nothing (more) arrives (default 300 ms).
    pub quiet: Duration,
    /// Messages per publisher in the volume checks (default 50).
    pub messages: usize,
    /// Checks to skip by name (see [`CHECKS`]).
    pub skip: Vec<String>,
    /// When non-empty, run only these checks.
    pub only: Vec<String>,
    /// Whether connections from the factory share one broker (default `true`, as for every
    /// networked broker). Set it to `false` for a broker whose every `connect` makes a private
    /// broker (the in-memory one): each check then works on one connection and its clones, and
    /// the sub-steps that need a second connection to survive a shutdown are left out.
    pub shared_broker: bool,
}

impl Default for SuiteConfig {
    fn default() -> Self {
        SuiteConfig {
            prefix: "rsconf".to_owned(),
            separator: ".".to_owned(),
            timeout: Duration::from_secs(5),
            quiet: Duration::from_millis(300),
            messages: 50,
            skip: Vec::new(),
            only: Vec::new(),
            shared_broker: true,
        }
    }
}

/// Names of every check, core and capability.
pub const CHECKS: &[&str] = &[
    "round_trip",
    "metadata_round_trip",
    "topic_isolation",
    "wildcards",
    "concurrency",
    "flush_and_close",
    "ack",
    "nack_requeue",
    "nack_drop",
    "dead_letter",
    "ordering",
    "ordering_per_key",
    "queue_groups",
    "durable",
    "lifecycle",
    "request_reply",
    "batch",
    "transactions",
    "delayed_redelivery",
];

/// What a run did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Report {
    /// Checks that ran and passed.
    pub passed: Vec<&'static str>,
    /// Checks that did not run, with the reason (capability not declared, or skipped).
    pub skipped: Vec<(&'static str, String)>,
}

impl Report {
    /// Add the checks of `other` to this report.
    pub fn merge(&mut self, other: Report) {
        self.passed.extend(other.passed);
        self.skipped.extend(other.skipped);
    }
}

/// The conformance suite for the broker behind a [`ConnectionFactory`].
pub struct Suite<F> {
    factory: F,
    config: SuiteConfig,
}

impl<F: Debug> Debug for Suite<F> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Suite")
            .field("factory", &self.factory)
            .field("config", &self.config)
            .finish()
    }
}

impl<F: ConnectionFactory> Suite<F> {
    /// A suite with default settings.
    pub fn new(factory: F) -> Self {
        Suite {
            factory,
            config: SuiteConfig::default(),
        }
    }

    /// Replace all settings.
    pub fn config(mut self, config: SuiteConfig) -> Self {
        self.config = config;
        self
    }

    /// First address segment (default `"rsconf"`).
    pub fn prefix(mut self, prefix: impl Into<String>) -> Self {
        self.config.prefix = prefix.into();
        self
    }

    /// Address separator (default `"."`).
    pub fn separator(mut self, separator: impl Into<String>) -> Self {
        self.config.separator = separator.into();
        self
    }

    /// Per-operation timeout (default 5 s).
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.config.timeout = timeout;
        self
    }

    /// Quiet period used to prove no (re)delivery happens (default 300 ms).
    pub fn quiet(mut self, quiet: Duration) -> Self {
        self.config.quiet = quiet;
        self
    }

    /// Messages per publisher in the volume checks (default 50).
    pub fn messages(mut self, n: usize) -> Self {
        self.config.messages = n.max(1);
        self
    }

    /// Skip a check by name (see [`CHECKS`]).
    pub fn skip(mut self, check: impl Into<String>) -> Self {
        self.config.skip.push(check.into());
        self
    }

    /// Run only the named checks.
    pub fn only<I: IntoIterator<Item = S>, S: Into<String>>(mut self, checks: I) -> Self {
        self.config.only = checks.into_iter().map(Into::into).collect();
        self
    }

    /// The factory's connections do not share a broker (see [`SuiteConfig::shared_broker`]).
    pub fn private_connections(mut self) -> Self {
        self.config.shared_broker = false;
        self
    }

    /// The settings in use.
    pub fn settings(&self) -> &SuiteConfig {
        &self.config
    }

    /// Run every core check the connection's capabilities allow. Panics on the first failure.
    pub async fn run(&self) -> Report {
        let cx = self.context(new_run_id()).await;
        checks::run_core(&cx).await
    }

    /// Run the core suite `n` times concurrently (each run on its own addresses).
    pub async fn stress(&self, n: usize) -> Report {
        let runs = (0..n).map(|_| async {
            let cx = self.context(new_run_id()).await;
            checks::run_core(&cx).await
        });
        let mut report = Report::default();
        for r in futures_util::future::join_all(runs).await {
            report.merge(r);
        }
        report
    }

    /// Request/reply checks (for connections implementing [`RequestReply`]).
    pub async fn run_request_reply(&self) -> Report
    where
        F::Conn: RequestReply,
    {
        let cx = self.context(new_run_id()).await;
        cx.gate(
            "request_reply",
            cx.caps.request_reply,
            "request_reply",
            extra::request_reply,
        )
        .await
    }

    /// Batch subscription checks (for connections implementing [`BatchSubscriber`]).
    pub async fn run_batch(&self) -> Report
    where
        F::Conn: BatchSubscriber,
    {
        let cx = self.context(new_run_id()).await;
        cx.gate("batch", cx.caps.batch, "batch", extra::batch).await
    }

    /// Transactional publish checks (for connections implementing [`TransactionalPublisher`]).
    pub async fn run_transactions(&self) -> Report
    where
        F::Conn: TransactionalPublisher,
    {
        let cx = self.context(new_run_id()).await;
        cx.gate(
            "transactions",
            cx.caps.transactions,
            "transactions",
            extra::transactions,
        )
        .await
    }

    /// Delayed redelivery checks (for messages implementing [`DelayedRedelivery`]).
    pub async fn run_delayed(&self) -> Report
    where
        <F::Conn as crate::Subscriber>::Message: DelayedRedelivery,
    {
        let cx = self.context(new_run_id()).await;
        cx.gate(
            "delayed_redelivery",
            cx.caps.delayed_redelivery,
            "delayed_redelivery",
            extra::delayed_redelivery,
        )
        .await
    }

    /// The core suite plus every capability suite (for brokers implementing all the traits).
    pub async fn run_all(&self) -> Report
    where
        F::Conn: RequestReply + BatchSubscriber + TransactionalPublisher,
        <F::Conn as crate::Subscriber>::Message: DelayedRedelivery,
    {
        let mut report = self.run().await;
        report.merge(self.run_request_reply().await);
        report.merge(self.run_batch().await);
        report.merge(self.run_transactions().await);
        report.merge(self.run_delayed().await);
        report
    }

    async fn context(&self, run_id: String) -> Ctx<'_, F> {
        let mut cx = Ctx {
            factory: &self.factory,
            cfg: &self.config,
            run_id,
            check: "capabilities",
            caps: Capabilities::NONE,
        };
        let conn = cx.connect().await;
        cx.caps = conn.capabilities();
        cx.shutdown(conn).await;
        cx
    }
}

/// A per-run context: which check is running, address construction, bounded broker calls.
pub(crate) struct Ctx<'a, F> {
    factory: &'a F,
    cfg: &'a SuiteConfig,
    run_id: String,
    check: &'static str,
    caps: Capabilities,
}

impl<F: ConnectionFactory> Ctx<'_, F> {
    /// Run `check` if declared and selected; record the outcome.
    async fn gate<'s, Fut>(
        &'s self,
        name: &'static str,
        declared: bool,
        capability: &str,
        check: impl FnOnce(Ctx<'s, F>) -> Fut,
    ) -> Report
    where
        Fut: Future<Output = ()>,
    {
        let mut report = Report::default();
        let cfg = self.cfg;
        if cfg.skip.iter().any(|s| s == name)
            || (!cfg.only.is_empty() && !cfg.only.iter().any(|s| s == name))
        {
            report.skipped.push((name, "not selected".to_owned()));
        } else if !declared {
            report
                .skipped
                .push((name, format!("capability `{capability}` not declared")));
        } else {
            tracing::debug!(check = name, run = %self.run_id, "conformance check");
            check(Ctx {
                factory: self.factory,
                cfg,
                run_id: self.run_id.clone(),
                check: name,
                caps: self.caps,
            })
            .await;
            report.passed.push(name);
        }
        report
    }

    /// A unique concrete address for this run and check: `<prefix>.<run>.<check>.<parts…>`.
    fn addr(&self, parts: &[&str]) -> String {
        let sep = self.cfg.separator.as_str();
        let mut out = format!(
            "{}{sep}{}{sep}{}",
            self.cfg.prefix,
            self.run_id,
            self.check.replace('_', "")
        );
        for p in parts {
            out.push_str(sep);
            out.push_str(p);
        }
        out
    }

    /// A unique name usable as a durable / group name (letters, digits, `_`).
    fn name(&self, what: &str) -> String {
        format!("{}_{}_{what}", self.run_id, self.check)
    }

    fn fail(&self, step: &str, expected: impl Display, actual: impl Display) -> ! {
        panic!(
            "conformance check `{}` failed at step `{step}`: expected {expected}, got {actual}",
            self.check
        )
    }

    async fn within<T>(&self, step: &str, fut: impl Future<Output = T>) -> T {
        match tokio::time::timeout(self.cfg.timeout, fut).await {
            Ok(v) => v,
            Err(_) => self.fail(
                step,
                format!("completion within {:?}", self.cfg.timeout),
                "a hang (timed out)",
            ),
        }
    }

    async fn ok<T>(&self, step: &str, fut: impl Future<Output = Result<T>>) -> T {
        match self.within(step, fut).await {
            Ok(v) => v,
            Err(e) => self.fail(step, "Ok", format!("error: {e}")),
        }
    }

    async fn connect(&self) -> F::Conn {
        self.ok("connect", self.factory.connect()).await
    }

    async fn shutdown(&self, conn: F::Conn) {
        self.ok("shutdown", conn.shutdown()).await
    }

    /// A second connection to the same broker as `conn`: a new one when the factory's
    /// connections share a broker, otherwise a clone of `conn`.
    async fn peer(&self, conn: &F::Conn) -> F::Conn {
        if self.cfg.shared_broker {
            self.connect().await
        } else {
            conn.clone()
        }
    }

    /// Release a connection obtained from [`Ctx::peer`].
    async fn release(&self, conn: F::Conn) {
        if self.cfg.shared_broker {
            self.shutdown(conn).await;
        }
    }

    async fn subscribe(
        &self,
        conn: &F::Conn,
        address: &str,
        options: SubscribeOptions,
    ) -> Sub<F::Conn> {
        let template = match Address::parse(address) {
            Ok(a) => a,
            Err(e) => self.fail("parse address", "a valid template", e),
        };
        self.ok(
            &format!("subscribe to {address}"),
            crate::Subscriber::subscribe(conn, &template, options),
        )
        .await
    }

    async fn publish(&self, conn: &F::Conn, message: OutgoingMessage) {
        let step = format!("publish to {}", message.address);
        self.ok(&step, crate::Publisher::publish(conn, message))
            .await
    }

    /// The next message of `sub`, within the timeout.
    async fn recv<S, M>(&self, step: &str, sub: &mut S) -> M
    where
        S: futures_core::Stream<Item = Result<M>> + Unpin,
    {
        let next = match tokio::time::timeout(self.cfg.timeout, sub.next()).await {
            Ok(next) => next,
            Err(_) => self.fail(
                step,
                format!("a message within {:?}", self.cfg.timeout),
                "none (timed out)",
            ),
        };
        match next {
            Some(Ok(m)) => m,
            Some(Err(e)) => self.fail(step, "a message", format!("error: {e}")),
            None => self.fail(step, "a message", "the subscription ended"),
        }
    }

    /// Prove nothing arrives on `sub` for the quiet period.
    async fn quiet<S, M>(&self, step: &str, sub: &mut S)
    where
        S: futures_core::Stream<Item = Result<M>> + Unpin,
        M: IncomingMessage,
    {
        match tokio::time::timeout(self.cfg.quiet, sub.next()).await {
            Err(_) => {}
            Ok(Some(Ok(m))) => self.fail(
                step,
                format!("no delivery for {:?}", self.cfg.quiet),
                format!(
                    "a message on {} (attempt {}): {}",
                    m.address(),
                    m.attempt(),
                    show(m.payload())
                ),
            ),
            Ok(Some(Err(e))) => self.fail(step, "no delivery", format!("error: {e}")),
            Ok(None) => self.fail(
                step,
                "an open, silent subscription",
                "the subscription ended",
            ),
        }
    }

    /// Acknowledge; a broker without `ack` may answer `Ok` or `Unsupported`.
    async fn ack<M: IncomingMessage>(&self, step: &str, m: M) {
        match self.within(step, m.ack()).await {
            Ok(()) => {}
            Err(crate::Error::Unsupported(_)) if !self.caps.ack => {}
            Err(e) => self.fail(step, "ack to succeed", format!("error: {e}")),
        }
    }
}

type Sub<C> = <C as crate::Subscriber>::Subscription;

/// Printable form of a payload for failure messages.
fn show(payload: &[u8]) -> String {
    const MAX: usize = 64;
    let shown = &payload[..payload.len().min(MAX)];
    let mut s = match std::str::from_utf8(shown) {
        Ok(t) => format!("{t:?}"),
        Err(_) => format!("{shown:02x?}"),
    };
    if payload.len() > MAX {
        s.push_str(&format!(" … ({} bytes)", payload.len()));
    }
    s
}

/// A run id unique across processes and runs: lowercase letters and digits only.
fn new_run_id() -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let mut x =
        nanos ^ (u64::from(std::process::id()) << 32) ^ n.wrapping_mul(0x9E37_79B9_7F4A_7C15);
    // splitmix64 finaliser for spread
    x = (x ^ (x >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    x ^= x >> 31;
    let alphabet = b"abcdefghijklmnopqrstuvwxyz0123456789";
    let mut id = String::from("r");
    for _ in 0..10 {
        id.push(alphabet[(x % 36) as usize] as char);
        x /= 36;
    }
    id
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn run_ids_are_unique_and_address_safe() {
        let a = new_run_id();
        let b = new_run_id();
        assert_ne!(a, b);
        assert!(
            a.chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit())
        );
        assert_eq!(a.len(), 11);
    }

    #[test]
    fn addresses_use_prefix_separator_and_check() {
        let factory = || crate::Broker::connect(crate::memory::MemoryBroker::default());
        let cfg = SuiteConfig {
            separator: "/".to_owned(),
            ..SuiteConfig::default()
        };
        let cx = Ctx {
            factory: &factory,
            cfg: &cfg,
            run_id: "rabc".to_owned(),
            check: "round_trip",
            caps: Capabilities::NONE,
        };
        assert_eq!(cx.addr(&["a", "{id}"]), "rsconf/rabc/roundtrip/a/{id}");
        assert_eq!(cx.name("g"), "rabc_round_trip_g");
    }

    #[test]
    fn show_truncates_and_hexes() {
        assert_eq!(show(b"hi"), "\"hi\"");
        assert_eq!(show(&[0xff, 0x00]), "[ff, 00]");
        assert!(show(&[b'a'; 100]).ends_with("(100 bytes)"));
    }
}
