//! RustStream broker on Redis.
//!
//! Two broker values share one [`Config`]:
//!
//! - [`RedisStreams`]: Redis Streams with consumer groups — at-least-once delivery with ack
//!   (`XACK`), requeue with attempt counts (pending entries claimed back with `XCLAIM`), dead
//!   letter after a maximum number of deliveries, queue groups, durable subscriptions, batches,
//!   `MULTI`/`EXEC` transactions, delayed redelivery, and address templates by discovering
//!   matching streams, and request/reply. Publishing is pipelined: a background writer batches queued `XADD`s into pipelines.
//! - [`RedisPubSub`]: Redis Pub/Sub — fire-and-forget, with pattern subscriptions for address
//!   templates and headers carried in a documented [`envelope`].
//!
//! ```no_run
//! use ruststream::{Broker, Publisher, OutgoingMessage};
//! use ruststream_redis::{Config, RedisStreams};
//!
//! # async fn run() -> ruststream::Result<()> {
//! let conn = RedisStreams::new(Config::new("redis://127.0.0.1:6379")).connect().await?;
//! conn.publish(OutgoingMessage::new("orders", "{}").content_type("application/json")).await?;
//! # Ok(()) }
//! ```

mod config;
pub mod entry;
pub mod envelope;
mod extras;
mod pubsub;
mod reply;
mod streams;
mod writer;

pub(crate) use config::Scrubber;
pub use config::{Config, StreamOptions};
pub use extras::{StreamBatches, StreamsTransaction};
pub use pubsub::{PubSubConnection, PubSubMessage, PubSubSubscription, RedisPubSub};
pub use streams::{RedisStreams, StreamMessage, StreamSubscription, StreamsConnection};
