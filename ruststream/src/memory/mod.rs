//! The embedded in-memory broker: the default transport and the test double.
//!
//! It implements the whole contract and every capability ([`Capabilities::ALL`]):
//!
//! - topics and template/wildcard subscriptions (`user/{id}/signup` receives `user/42/signup`);
//! - queue groups: each message goes to one member, round-robin (or by key hash when the
//!   message has a key, so one key stays in order); distinct groups each get every message;
//! - request/reply with an automatic inbox address (`_INBOX.<n>`) and correlation id;
//! - `nack(true)` and unsettled drops redeliver with `attempt + 1`; `reject` dead-letters to
//!   [`SubscribeOptions::dead_letter`](crate::SubscribeOptions::dead_letter) (or drops); delayed redelivery;
//! - bounded per-subscription buffers ([`MemoryConfig::buffer`]): `publish` waits while a
//!   subscriber's buffer is full, so a slow consumer slows the publisher and nothing is dropped;
//! - durable subscriptions keep their queue (undelivered and unsettled messages) across
//!   unsubscribe/resubscribe and across connections of the same [`MemoryBroker`];
//! - connections made from one [`MemoryBroker`] (or its clones) share it;
//! - `shutdown` ends the connection's subscriptions; later `publish`/`subscribe` on it return
//!   [`Error::Closed`](crate::Error::Closed).
//!
//! Payload, headers and address are shared (`Arc`) between every delivery of a message, so
//! consuming does not allocate in steady state.
//!
//! ```
//! # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
//! use futures_util::StreamExt;
//! use ruststream::memory::MemoryBroker;
//! use ruststream::{Address, Broker, IncomingMessage, OutgoingMessage, Publisher, SubscribeOptions, Subscriber};
//!
//! let conn = MemoryBroker::default().connect().await?;
//! let mut sub = conn.subscribe(&Address::parse("user/{id}")?, SubscribeOptions::new()).await?;
//! conn.publish(OutgoingMessage::new("user/42", "hi")).await?;
//! let msg = sub.next().await.unwrap()?;
//! assert_eq!(msg.payload(), b"hi");
//! msg.ack().await?;
//! # Ok::<(), Box<dyn std::error::Error>>(()) }).unwrap();
//! ```

mod connection;
mod message;
mod target;

use std::time::Duration;

use bytes::Bytes;

pub use connection::{MemoryBatches, MemoryConnection, MemorySubscription, MemoryTransaction};
pub use message::MemoryMessage;

use crate::{Broker, Capabilities, Headers, Result};

/// Configuration of the in-memory broker.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct MemoryConfig {
    /// Capacity of each subscription's buffer (per queue-group member). Publishing waits while
    /// the target buffer is full. At least 1.
    pub buffer: usize,
    /// Record every published message and every settlement (for tests; see
    /// [`MemoryConnection::published`] and [`MemoryConnection::settlements`]).
    pub record: bool,
}

impl Default for MemoryConfig {
    fn default() -> Self {
        MemoryConfig {
            buffer: 1024,
            record: false,
        }
    }
}

impl MemoryConfig {
    /// Default configuration (buffer 1024, no recording).
    pub fn new() -> Self {
        Self::default()
    }
    /// Set the per-subscription buffer capacity (values below 1 become 1).
    pub fn buffer(mut self, capacity: usize) -> Self {
        self.buffer = capacity.max(1);
        self
    }
    /// Record published messages and settlements.
    pub fn record(mut self, record: bool) -> Self {
        self.record = record;
        self
    }
}

/// The in-memory broker. Clones are the same broker: every connection made from it or from a
/// clone shares its topics, queue groups, durable queues and reply inboxes (a message published
/// on one connection reaches the subscriptions of the others; shutting one connection down
/// ends only its own subscriptions). [`MemoryBroker::new`] and [`MemoryBroker::default`] make
/// a new, separate broker.
///
/// ```
/// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
/// use futures_util::StreamExt;
/// use ruststream::memory::MemoryBroker;
/// use ruststream::{Address, IncomingMessage, OutgoingMessage, Publisher, SubscribeOptions, Subscriber};
///
/// let broker = MemoryBroker::default();
/// let (a, b) = (broker.clone().connect_now(), broker.connect_now());
/// let mut sub = a.subscribe(&Address::parse("t")?, SubscribeOptions::new()).await?;
/// b.publish(OutgoingMessage::new("t", "hi")).await?;
/// assert_eq!(sub.next().await.unwrap()?.payload(), b"hi");
/// # Ok::<(), Box<dyn std::error::Error>>(()) }).unwrap();
/// ```
#[derive(Debug, Clone)]
pub struct MemoryBroker {
    inner: std::sync::Arc<connection::Inner>,
}

impl Default for MemoryBroker {
    fn default() -> Self {
        Self::new(MemoryConfig::default())
    }
}

impl MemoryBroker {
    /// A new broker with `config`.
    pub fn new(config: MemoryConfig) -> Self {
        MemoryBroker {
            inner: connection::Inner::new(config),
        }
    }

    /// Connect synchronously (the in-memory broker does no I/O): a new connection to this
    /// broker.
    pub fn connect_now(self) -> MemoryConnection {
        MemoryConnection::from_inner(self.inner)
    }
}

impl Broker for MemoryBroker {
    type Connection = MemoryConnection;

    fn name(&self) -> &'static str {
        "memory"
    }

    async fn connect(self) -> Result<MemoryConnection> {
        Ok(self.connect_now())
    }
}

/// A published message as recorded by a connection with [`MemoryConfig::record`].
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct RecordedMessage {
    /// Concrete address it was published to.
    pub address: String,
    /// Payload.
    pub payload: Bytes,
    /// Headers.
    pub headers: Headers,
    /// Reply address.
    pub reply_to: Option<String>,
    /// Correlation id.
    pub correlation_id: Option<String>,
}

/// How a delivered message was settled.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Settled {
    /// `ack`.
    Acked,
    /// `nack(requeue)`.
    Nacked {
        /// Whether it was requeued.
        requeue: bool,
    },
    /// `nack_with_delay`.
    NackedWithDelay(Duration),
    /// `reject`.
    Rejected {
        /// Whether it went to a dead-letter address.
        dead_lettered: bool,
    },
    /// Dropped without settling (requeued).
    Dropped,
}

/// One settlement recorded by a connection with [`MemoryConfig::record`].
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Settlement {
    /// Concrete address of the message.
    pub address: String,
    /// Delivery attempt that was settled.
    pub attempt: u32,
    /// Correlation id of the message.
    pub correlation_id: Option<String>,
    /// The payload.
    pub payload: Bytes,
    /// The outcome.
    pub outcome: Settled,
}

/// The in-memory broker's capabilities: all of them.
pub const CAPABILITIES: Capabilities = Capabilities::ALL;

/// Header the broker adds when dead-lettering: the address the message was rejected on.
pub const ORIGINAL_ADDRESS_HEADER: &str = "x-original-address";
