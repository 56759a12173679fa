//! The broker contract: lifecycle, publishing, subscribing.
//!
//! A broker crate provides a configured value implementing [`Broker`] (no I/O yet);
//! [`Broker::connect`] yields its [`Connection`], which publishes ([`Publisher`]) and subscribes
//! ([`Subscriber`]); [`Connection::shutdown`] consumes it. Clones of a connection that outlive
//! the shutdown get [`Error::Closed`](crate::Error::Closed) — never a hang.

pub mod url;

use std::future::Future;

use futures_core::Stream;

use crate::{Address, IncomingMessage, OutgoingMessage, Result};

/// A configured, not yet connected broker.
pub trait Broker: Send + Sized + 'static {
    /// The connected form.
    type Connection: Connection;

    /// Short broker name for logs and metrics labels (`"memory"`, `"nats"`, …).
    fn name(&self) -> &'static str;

    /// Connect (I/O happens here, not when configuring).
    fn connect(self) -> impl Future<Output = Result<Self::Connection>> + Send;
}

/// A live broker connection: cheap to clone, shared by publishers and subscriptions.
pub trait Connection: Publisher + Subscriber + Clone + Send + Sync + 'static {
    /// What this broker can do beyond the mandatory contract.
    fn capabilities(&self) -> Capabilities;

    /// Flush pending publishes and settlements, close subscriptions, disconnect.
    ///
    /// Afterwards every clone's `publish`/`subscribe` returns
    /// [`Error::Closed`](crate::Error::Closed) and open subscriptions end.
    fn shutdown(self) -> impl Future<Output = Result<()>> + Send;
}

/// Publishes messages.
pub trait Publisher: Send + Sync {
    /// Publish one message to its concrete address. Resolves once the broker has taken it
    /// (for brokers with confirms: once confirmed).
    fn publish(&self, message: OutgoingMessage) -> impl Future<Output = Result<()>> + Send;

    /// Wait until everything published so far has reached the broker.
    fn flush(&self) -> impl Future<Output = Result<()>> + Send {
        async { Ok(()) }
    }
}

/// Subscribes to addresses; a subscription is a [`Stream`] of messages, so back-pressure comes
/// from polling.
pub trait Subscriber: Send + Sync {
    /// The delivered message type.
    type Message: IncomingMessage;
    /// The subscription stream. It ends when the connection shuts down.
    type Subscription: Stream<Item = Result<Self::Message>> + Send + Unpin + 'static;

    /// Subscribe to every concrete address matching `address` (a template; each broker maps
    /// `{param}` to its wildcard).
    fn subscribe(
        &self,
        address: &Address,
        options: SubscribeOptions,
    ) -> impl Future<Output = Result<Self::Subscription>> + Send;
}

/// Options for [`Subscriber::subscribe`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct SubscribeOptions {
    /// Competing consumers: each message goes to one member of the group.
    pub queue_group: Option<String>,
    /// Durable subscription name: a persistent broker resumes it after a restart.
    pub durable: Option<String>,
    /// Where the broker itself dead-letters rejected messages (if it supports that).
    pub dead_letter: Option<String>,
    /// Maximum unsettled messages the broker hands out at once (prefetch).
    pub prefetch: Option<u32>,
    /// Broker-side cap on deliveries before dead-lettering (where supported).
    pub max_deliver: Option<u32>,
}

impl SubscribeOptions {
    /// Default options.
    pub fn new() -> Self {
        Self::default()
    }
    /// Join a queue group.
    pub fn queue_group(mut self, group: impl Into<String>) -> Self {
        self.queue_group = Some(group.into());
        self
    }
    /// Make the subscription durable under `name`.
    pub fn durable(mut self, name: impl Into<String>) -> Self {
        self.durable = Some(name.into());
        self
    }
    /// Dead-letter address for rejected messages.
    pub fn dead_letter(mut self, address: impl Into<String>) -> Self {
        self.dead_letter = Some(address.into());
        self
    }
    /// Prefetch / max unsettled.
    pub fn prefetch(mut self, n: u32) -> Self {
        self.prefetch = Some(n);
        self
    }
    /// Broker-side max deliveries.
    pub fn max_deliver(mut self, n: u32) -> Self {
        self.max_deliver = Some(n);
        self
    }
}

/// What a connected broker declares it can do. The runtime and the conformance harness gate
/// behaviour and checks on these flags; a broker must not claim what it cannot do.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Capabilities {
    /// `ack` prevents redelivery (at-least-once delivery).
    pub ack: bool,
    /// `nack(true)` redelivers with a growing attempt count.
    pub nack_requeue: bool,
    /// `reject` moves the message to a dead-letter address.
    pub dead_letter: bool,
    /// Headers are carried.
    pub headers: bool,
    /// Queue groups (competing consumers).
    pub queue_groups: bool,
    /// Messages of one subscription arrive in publish order (single publisher).
    pub ordered: bool,
    /// Messages with the same key arrive in order ([`crate::capability::Partitioned`]).
    pub ordered_per_key: bool,
    /// Durable subscriptions survive a restart of the subscriber.
    pub durable: bool,
    /// [`crate::capability::RequestReply`].
    pub request_reply: bool,
    /// [`crate::capability::BatchSubscriber`].
    pub batch: bool,
    /// [`crate::capability::TransactionalPublisher`].
    pub transactions: bool,
    /// [`crate::capability::DelayedRedelivery`].
    pub delayed_redelivery: bool,
    /// Parameter templates are subscribable (wildcards).
    pub wildcards: bool,
}

impl Capabilities {
    /// Nothing beyond fire-and-forget publish/subscribe.
    pub const NONE: Capabilities = Capabilities {
        ack: false,
        nack_requeue: false,
        dead_letter: false,
        headers: false,
        queue_groups: false,
        ordered: false,
        ordered_per_key: false,
        durable: false,
        request_reply: false,
        batch: false,
        transactions: false,
        delayed_redelivery: false,
        wildcards: false,
    };

    /// Everything (the in-memory broker).
    pub const ALL: Capabilities = Capabilities {
        ack: true,
        nack_requeue: true,
        dead_letter: true,
        headers: true,
        queue_groups: true,
        ordered: true,
        ordered_per_key: true,
        durable: true,
        request_reply: true,
        batch: true,
        transactions: true,
        delayed_redelivery: true,
        wildcards: true,
    };
}
