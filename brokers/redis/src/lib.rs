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
//! **Wire format.** By default ([`MessageFormat::FastStream`]) both write FastStream's Redis
//! message format (its `BinaryMessageFormatV1`, documented in [`faststream`]): a Pub/Sub message
//! is the binary blob, a stream entry is one `__data__` field holding it; headers, the
//! correlation id (`correlation_id`), the reply address (`reply_to`, a Pub/Sub channel) and
//! the content type travel inside. So a RustStream service and a
//! [FastStream](https://faststream.ag2.ai) app on the same Redis exchange events and answer
//! each other's requests with no configuration (`tests/interop` checks it against FastStream
//! 0.7.8). Every format is read whatever is configured: FastStream's binary and older JSON
//! envelopes, the layouts this crate wrote before ([`entry`] fields, the [`envelope`]), and
//! plain payloads from any Redis client; [`MessageFormat::RustStream`] writes the old layouts,
//! for peers on an older version of this crate.
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
pub mod faststream;
mod pubsub;
mod reply;
mod streams;
mod writer;

pub(crate) use config::Scrubber;
pub use config::{Config, MessageFormat, StreamOptions};
pub use extras::{StreamBatches, StreamsTransaction};
pub use pubsub::{PubSubConnection, PubSubMessage, PubSubSubscription, RedisPubSub};
pub use streams::{RedisStreams, StreamMessage, StreamSubscription, StreamsConnection};
