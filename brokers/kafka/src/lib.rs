//! Kafka broker for RustStream, built on [rdkafka](https://docs.rs/rdkafka) (librdkafka, built
//! from its bundled source: no system library needed).
//!
//! ```no_run
//! # async fn demo() -> ruststream::Result<()> {
//! use ruststream::{Broker, OutgoingMessage, Publisher};
//! use ruststream_kafka::{Config, KafkaBroker};
//!
//! let conn = KafkaBroker::new(Config::from_url("kafka://127.0.0.1:9092")?).connect().await?;
//! conn.publish(OutgoingMessage::new("orders.created", r#"{"id":1}"#).key("customer-7")).await?;
//! # Ok(()) }
//! ```
//!
//! ## Mapping
//!
//! | RustStream | Kafka |
//! |---|---|
//! | address | topic (`[a-zA-Z0-9._-]`, ≤ 249 characters); created on first use when missing ([`Config::create_topics`](Config#structfield.create_topics), with [`TopicSpec`]s from `kafka` channel bindings) |
//! | template `orders.{id}` | pattern subscription `^orders\.[a-zA-Z0-9_-]+$`; parameters come from the record's topic |
//! | `OutgoingMessage::key` | record key → partition (murmur2, as the Java client: other clients agree on the partition) |
//! | headers | record headers, in order, byte-exact, duplicates kept |
//! | correlation id, reply address | headers `correlation_id` and `reply_to` (FastStream's names; `correlation-id` is read too); `content-type` as is |
//! | queue group, durable name | consumer group (both: the queue group); a plain subscription has no group |
//!
//! A subscription with a group (its queue group, its durable name, a `groupId` binding for its
//! address, or [`Config::group_id`](Config#structfield.group_id)) joins that consumer group and
//! resumes from the group's commits; where the group has none it starts as
//! [`Config::offset_reset`](Config#structfield.offset_reset) says (earliest by default). A
//! plain subscription to a topic reads every partition from its end at subscribe time and
//! commits nothing; a plain subscription to a template uses a private group, so topics
//! created later are followed — matching topics are read from their beginning.
//! `subscribe` resolves once the group has assigned partitions (or the partitions are
//! assigned), so a record published right after it is delivered.
//!
//! ## Delivery: at least once
//!
//! - `ack`, `nack(false)` and `reject` settle the record's offset. Commits carry, per
//!   partition, the lowest offset not yet settled: with several handlers in flight, a record
//!   finished early never commits past one still running. They go out every
//!   [`Config::commit_interval`](Config#structfield.commit_interval), before partitions are
//!   revoked in a rebalance, when a subscription is dropped and at shutdown — a member
//!   leaving or joining loses nothing and commits nothing it did not handle (the new owner
//!   redelivers what was in flight: duplicates, never gaps).
//! - `nack(true)` redelivers the same record to the same subscription with `attempt() + 1`
//!   (its offset stays uncommitted meanwhile); `nack_with_delay` after a delay
//!   ([`DelayedRedelivery`](ruststream::capability::DelayedRedelivery)). A process that dies
//!   meanwhile leaves it to Kafka, which redelivers from the last commit with attempt 1.
//! - `reject`, and `nack(true)` at `SubscribeOptions::max_deliver`, publish the record (key,
//!   headers, plus `x-original-topic`) to the subscription's dead-letter topic, if it has one,
//!   then settle it.
//!
//! ## Capabilities
//!
//! Declared: ack, nack with requeue, dead letter, headers, queue groups, order per key
//! ([`Partitioned`](ruststream::capability::Partitioned)), durable, request/reply (a private
//! inbox topic per connection, see [`reply`]), batches, delayed redelivery, wildcards;
//! `ordered` only when every topic it creates has one partition (Kafka orders per
//! partition). Not declared: transactions — librdkafka has them, but this crate does not yet
//! drive the transactional producer, and the test server (tansu) was not verified for them.
//!
//! ## Tested against tansu
//!
//! The crate is tested against [tansu](https://crates.io/crates/tansu) 0.6.0, a
//! Kafka-protocol server (`.ci/run` installs and starts it), and its tests rely only on what
//! the Kafka protocol defines: topics are created through the admin API (not by the server's
//! auto-creation), consumer groups use the classic (eager) protocol, offsets are committed
//! with OffsetCommit — also for a group with no members yet, which is how a private template
//! subscription starts existing topics at their end. Seen on tansu: a new group hands out its
//! first partitions at once and waits about 3 s for a second member (like Kafka's
//! `group.initial.rebalance.delay.ms`); the conformance harness, the request/reply inbox, a
//! SIGKILL restart on durable storage and members joining and leaving mid-stream all pass
//! (see `tests/` and RELIABILITY.md). Transactions were not exercised, so they are not
//! declared.

//! ## Bindings
//!
//! [`Config::with_spec_bindings`] applies the generated `BINDINGS` table: see [`bindings`].
//! SASL/PLAIN works as built; TLS and SASL/SCRAM need the crate feature `ssl` (the system's
//! OpenSSL, libssl-dev). Secrets are redacted in `Debug` and in errors.

pub mod bindings;
mod config;
mod connection;
mod headers;
pub mod reply;
mod subscription;
mod topic;

pub use config::{Acks, Compression, Config, OffsetReset, Sasl, Security, TopicSpec};
pub use connection::{KafkaBroker, KafkaConnection};
pub use headers::{CORRELATION_ID, CORRELATION_ID_DASHED, REPLY_TO};
pub use subscription::{KafkaMessage, KafkaSubscription};
pub use topic::{check_topic, template_regex};
