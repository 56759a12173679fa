//! RabbitMQ (AMQP 0.9.1) broker for RustStream, built on [`lapin`].
//!
//! - **Publishing**: every message goes to the configured exchange ([`Config::exchange`],
//!   direct, topic or fanout) with routing key = the concrete address. With publisher confirms
//!   (the default) `publish` resolves once RabbitMQ confirms the message.
//! - **Subscribing**: a template maps to a topic binding pattern, `{param}` → `*` per
//!   `.`-separated word (`/` is an ordinary character of a word; see [`topology`] for the
//!   details and the client-side check). Plain subscriptions get an exclusive, auto-delete
//!   queue each (a uniquely named one with [`QueueType::Quorum`]), so distinct subscribers
//!   each get every message; a queue group is one shared
//!   queue named `<exchange>/<template>/<group>`; a durable subscription is a durable queue
//!   named by [`SubscribeOptions::durable`](ruststream::SubscribeOptions).
//! - **Headers** travel in the AMQP header table (strings, order and duplicates kept);
//!   content type, correlation id, reply-to and message id also as AMQP properties.
//! - **Settlement**: `ack`, `nack(requeue)`, `reject` (dead-lettered through
//!   `x-dead-letter-exchange` when the subscription has a dead-letter address or
//!   [`Config::dead_letter_exchange`] is set, dropped otherwise). Attempt counts: see
//!   [`QueueType`].
//! - **Request/reply** over direct reply-to ([`ruststream::capability::RequestReply`]).
//! - **Reconnect**: on connection loss the connection is re-established with exponential
//!   backoff ([`Reconnect`]); exchanges are re-declared and every subscription re-declares its
//!   queue, binding, prefetch and consumer. Messages in named queues (queue groups, durable
//!   subscriptions, quorum queues) survive; an exclusive queue dies with its connection, so a
//!   plain classic subscription may miss what was published while it was disconnected.
//! - **AsyncAPI bindings**: [`Config::with_spec_bindings`] applies every operation's `amqp`
//!   channel, operation and message bindings from the generated `BINDINGS` table: each
//!   address gets its own exchange (`topic`, `direct`, `fanout`, `headers`, or the nameless
//!   `default` exchange) or queue (`is: queue`), declared on connect, and its message
//!   properties (`deliveryMode`, `priority`, `expiration`, `mandatory`, `cc`, …); see
//!   [`binding`].
//! - **URLs**: [`Config::from_url`] reads `amqp://user:password@host:port/vhost?options`.
//!
//! TLS (`amqps://`) is not compiled in.

pub mod binding;
mod config;
mod connection;
mod headers;
mod request;
mod subscription;
pub mod topology;

pub use binding::{
    AddressBinding, ChannelBinding, ExchangeBinding, ExchangeSpec, MessageOptions,
    OperationBinding, QueueBinding, QueueSpec,
};
pub use config::{Config, ExchangeKind, QueueOptions, QueueType, Reconnect};
pub use connection::{AmqpBroker, AmqpConnection};
pub use subscription::{AmqpMessage, AmqpSubscription};
