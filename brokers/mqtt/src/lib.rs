//! RustStream broker on MQTT 5 (wrapping `rumqttc::v5`).
//!
//! - Address templates map to topic filters: a level holding `{param}` becomes `+`.
//! - QoS 0/1/2: [`Config::default_qos`] with per-address overrides ([`Config::qos_for`], or
//!   from AsyncAPI MQTT operation bindings with [`Config::with_spec_bindings`], see
//!   [`bindings`]) for publishing and subscribing.
//! - Headers travel as MQTT 5 user properties (order and duplicates kept); `content-type` also
//!   sets the content-type property; `correlation_id` ↔ correlation data, `reply_to` ↔
//!   response topic.
//! - Queue groups are shared subscriptions (`$share/<group>/<filter>`).
//! - Request/reply ([`RequestReply`](ruststream::capability::RequestReply)): each connection
//!   subscribes to its inbox `<reply_prefix>/<client id>`; replies are matched by correlation
//!   data.
//! - Retained messages: [`Config::retain`] / [`Config::retain_for`].
//! - Acks are manual: `ack` sends the `PUBACK`/`PUBREC` of a QoS 1/2 message. MQTT has no
//!   negative acknowledgement or dead letter: `nack(true)` returns
//!   [`Error::Unsupported`](ruststream::Error), `nack(false)` and `reject` acknowledge (drop).
//! - Sessions: clean by default; [`Config::persistent_session`] keeps subscriptions and queued
//!   QoS 1/2 messages across reconnects (at-least-once).
//! - Durable subscriptions (`SubscribeOptions::durable(name)`): each runs on its own persistent
//!   session with client id `<durable_prefix><name>`; dropping the subscription disconnects it
//!   without unsubscribing, so the broker queues QoS 1/2 messages until it resumes.
//!
//! ```no_run
//! use ruststream::{Broker, OutgoingMessage, Publisher};
//! use ruststream_mqtt::{Config, Mqtt};
//!
//! # async fn run() -> ruststream::Result<()> {
//! let conn = Mqtt::new(Config::new("127.0.0.1", 1883)).connect().await?;
//! conn.publish(OutgoingMessage::new("lights/1/on", "{}")).await?;
//! # Ok(()) }
//! ```

mod batch;
pub mod bindings;
mod config;
mod connection;
pub mod topic;

pub use batch::MqttBatches;
pub use config::{Config, Credentials, Qos};
pub use connection::{Mqtt, MqttConnection, MqttMessage, MqttSubscription};
