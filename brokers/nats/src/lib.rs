//! NATS broker for RustStream, built on [async-nats](https://docs.rs/async-nats).
//!
//! Two brokers share one [`Config`]:
//!
//! - [`NatsBroker`] — core NATS: subjects, wildcard subscriptions (`{param}` → `*`), queue
//!   groups, headers, request/reply through reply inboxes. Delivery is at most once, so
//!   `ack`/`nack(false)` are accepted no-ops, `nack(true)` is
//!   [`Unsupported`](ruststream::Error::Unsupported) and `reject` drops.
//! - [`JetStreamBroker`] (`NatsBroker::jetstream(config, JetStreamConfig::new(..))`) —
//!   persistent streams with explicit ack/nack/term, delivery counts, delayed nack, durable and
//!   queue-group consumers and dead letters (see [`jetstream`]).
//!
//! Both implement [`BatchSubscriber`](ruststream::capability::BatchSubscriber) (batches of up
//! to `max` messages, closed `max_wait` after their first message). Capabilities declared:
//!
//! | | core | JetStream |
//! |---|---|---|
//! | ack / nack requeue / dead letter / durable / delayed redelivery | no | yes |
//! | headers, queue groups, wildcards, ordered (one publisher), batch | yes | yes |
//! | request/reply | yes | no (the stream would answer requests with publish acks) |
//!
//! Addresses are NATS subjects (`orders.{id}.created`) unless [`Config::address_separator`]
//! says they use another separator: with `'/'`, an AsyncAPI address such as
//! `smartylighting/streetlights/1/0/event/{streetlightId}/lighting/measured` is subscribed as
//! `smartylighting.streetlights.1.0.event.*.lighting.measured` and received messages report
//! the `/` form as their address, so the router and generated code work unchanged (see
//! [`SubjectMapping`]).
//!
//! AsyncAPI NATS operation bindings (`queue`) map to
//! [`SubscribeOptions::queue_group`](ruststream::SubscribeOptions::queue_group) with
//! [`bindings::operation_queue`] / [`bindings::subscribe_options`].
//!
//! Interoperability with other NATS clients: payloads are sent as-is, the contract's
//! `content-type` header travels as `content-type`, the spelling FastStream reads (and any
//! spelling of it is read back as `content-type`; [`Config::implicit_content_type`] leaves one
//! content type out, for consumers whose routes declare it), the correlation id travels in the
//! `correlation-id` header and in FastStream's `correlation_id` (either is read), and requests
//! use standard reply subjects (`_INBOX.…`), so a plain `nats req`, `msg.Respond` or a
//! FastStream app (`broker.request`, handlers that return a value) interoperates.
//!
//! ```no_run
//! # async fn demo() -> ruststream::Result<()> {
//! use ruststream::{Broker, OutgoingMessage, Publisher};
//! use ruststream_nats::{Config, NatsBroker};
//!
//! let conn = NatsBroker::new(Config::new("nats://127.0.0.1:4222")).connect().await?;
//! conn.publish(OutgoingMessage::new("orders.created", r#"{"id":1}"#).content_type("application/json"))
//!     .await?;
//! # Ok(()) }
//! ```
//!
//! Errors are [`ruststream::Error`]; client failures map to
//! [`Transport`](ruststream::Error::Transport) with credentials scrubbed from the text.

pub mod bindings;
mod config;
mod core;
pub mod jetstream;
mod pull;
mod subject;
mod util;

pub use config::{Auth, Config, JetStreamConfig, Tls};
pub use core::{NatsBatches, NatsBroker, NatsConnection, NatsMessage, NatsSubscription};
pub use jetstream::{
    JetStreamBatches, JetStreamBroker, JetStreamConnection, JetStreamMessage, JetStreamSubscription,
};
pub use subject::SubjectMapping;
pub use util::{FASTSTREAM_CORRELATION_ID, NATS_CONTENT_TYPE, REPLY_TO_HEADER, subject_for};
