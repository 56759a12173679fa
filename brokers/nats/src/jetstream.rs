//! JetStream: persistent, at-least-once delivery with acks, redelivery, durable consumers and
//! dead letters.
//!
//! Every subscription is a pull consumer on the configured stream, filtered by the
//! subscription's subject:
//! - plain subscription → ephemeral consumer, new messages only;
//! - `queue_group(g)` → the named consumer `g`, shared by every member (each message goes to
//!   one member); distinct groups are distinct consumers and each get every message;
//! - `durable(d)` → the durable consumer `d`, which resumes where it stopped after a restart.
//!
//! Settlement: `ack` → `+ACK`; `nack(true)` → `-NAK` (redelivered, attempt + 1);
//! `nack(false)` → `+TERM` (dropped); `reject` → published to the subscription's dead-letter
//! subject (when set) then `+TERM`; `nack_with_delay(d)` → `-NAK` with delay. The attempt is
//! the server's delivery count.
//!
//! Max-deliver → dead letter (when a subscription has both `max_deliver` and `dead_letter`):
//! a `nack(true)` on the last allowed delivery dead-letters the message at once; a message that
//! runs out of deliveries without being settled (ack timeouts, crashed consumers) is
//! dead-lettered from the server's `MAX_DELIVERIES` advisory. Dead letters are plain NATS
//! publishes of the original payload and headers plus `x-dead-letter-reason`
//! (`rejected` / `max-deliver`) and `x-original-subject`; point the dead-letter subject into a
//! stream to keep them.

use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use async_nats::jetstream::{self, AckKind, consumer, stream};
use futures_core::Stream;
use futures_util::StreamExt;
use ruststream::capability::{BatchSubscriber, Batched, DelayedRedelivery};
use ruststream::{
    Address, Broker, Capabilities, Connection, Headers, IncomingMessage, OutgoingMessage,
    Publisher, Result, SubscribeOptions, Subscriber,
};

use crate::config::{Config, JetStreamConfig};
use crate::core::Shared;
use crate::util::{
    REPLY_TO_HEADER, check_subject, from_nats_headers, to_nats_headers, until_closed,
};

/// Header added to a dead-lettered message: why it was dead-lettered
/// (`rejected` or `max-deliver`).
pub const DEAD_LETTER_REASON_HEADER: &str = "x-dead-letter-reason";
/// Header added to a dead-lettered message: the subject it was consumed from.
pub const DEAD_LETTER_SUBJECT_HEADER: &str = "x-original-subject";

/// JetStream, configured but not connected.
#[derive(Debug, Clone)]
pub struct JetStreamBroker {
    config: Config,
    jetstream: JetStreamConfig,
}

impl JetStreamBroker {
    /// A JetStream broker: connection settings plus the stream to use.
    pub fn new(config: Config, jetstream: JetStreamConfig) -> Self {
        JetStreamBroker { config, jetstream }
    }
}

impl Broker for JetStreamBroker {
    type Connection = JetStreamConnection;

    fn name(&self) -> &'static str {
        "nats-jetstream"
    }

    async fn connect(self) -> Result<JetStreamConnection> {
        let shared = Shared::connect(&self.config).await?;
        let mut context = jetstream::new(shared.client.clone());
        context.set_timeout(self.config.request_timeout);
        let cfg = &self.jetstream;
        let stream = if cfg.create_stream {
            context
                .get_or_create_stream(stream::Config {
                    name: cfg.stream.clone(),
                    subjects: cfg.subjects.clone(),
                    storage: if cfg.memory_storage {
                        stream::StorageType::Memory
                    } else {
                        stream::StorageType::File
                    },
                    num_replicas: cfg.replicas,
                    max_age: cfg.max_age,
                    duplicate_window: cfg.duplicate_window,
                    ..Default::default()
                })
                .await
                .map_err(|e| shared.err(format!("stream {}: {e}", cfg.stream)))?
        } else {
            context
                .get_stream(&cfg.stream)
                .await
                .map_err(|e| shared.err(format!("stream {}: {e}", cfg.stream)))?
        };
        Ok(JetStreamConnection {
            inner: Arc::new(Inner {
                shared,
                context,
                stream,
                config: self.jetstream,
            }),
        })
    }
}

#[derive(Debug)]
struct Inner {
    shared: Shared,
    context: jetstream::Context,
    stream: stream::Stream,
    config: JetStreamConfig,
}

/// A live JetStream connection (cheap to clone).
#[derive(Debug, Clone)]
pub struct JetStreamConnection {
    inner: Arc<Inner>,
}

impl JetStreamConnection {
    /// The stream this connection publishes to and consumes from.
    pub fn stream_name(&self) -> &str {
        &self.inner.config.stream
    }

    /// Delete a durable or queue-group consumer (it is otherwise kept by the server).
    pub async fn delete_consumer(&self, name: &str) -> Result<()> {
        self.inner.shared.check_open()?;
        self.inner
            .stream
            .delete_consumer(&consumer_name(name))
            .await
            .map(|_| ())
            .map_err(|e| self.inner.shared.err(e))
    }
}

/// Consumer names cannot contain `.`, `*`, `>`, whitespace, `/` or `\`.
fn consumer_name(name: &str) -> String {
    name.chars()
        .map(|c| {
            if c.is_whitespace() || matches!(c, '.' | '*' | '>' | '/' | '\\') {
                '_'
            } else {
                c
            }
        })
        .collect()
}

impl Publisher for JetStreamConnection {
    /// Publish and wait for the stream's confirmation.
    async fn publish(&self, message: OutgoingMessage) -> Result<()> {
        let shared = &self.inner.shared;
        shared.check_open()?;
        let message = shared.subjects.outgoing(message)?;
        let headers = shared.nats_headers(&message, true)?;
        let ack = match headers {
            Some(h) => {
                self.inner
                    .context
                    .publish_with_headers(message.address, h, message.payload)
                    .await
            }
            None => {
                self.inner
                    .context
                    .publish(message.address, message.payload)
                    .await
            }
        }
        .map_err(|e| shared.err(e))?;
        ack.await.map(|_| ()).map_err(|e| shared.err(e))
    }

    async fn flush(&self) -> Result<()> {
        self.inner.shared.check_open()?;
        self.inner.shared.flush().await
    }
}

impl Subscriber for JetStreamConnection {
    type Message = JetStreamMessage;
    type Subscription = JetStreamSubscription;

    async fn subscribe(
        &self,
        address: &Address,
        options: SubscribeOptions,
    ) -> Result<JetStreamSubscription> {
        let inner = &self.inner;
        inner.shared.check_open()?;
        let filter = inner.shared.subjects.subscribe_subject(address)?;
        let dead_letter = match options.dead_letter.as_deref() {
            Some(d) => Some(inner.shared.subjects.publish_subject(d)?.into_owned()),
            None => None,
        };
        let cfg = &inner.config;
        let max_deliver = options.max_deliver.or(cfg.max_deliver);
        let named = options
            .durable
            .as_deref()
            .or(options.queue_group.as_deref());
        let mut config = consumer::pull::Config {
            filter_subject: filter,
            ack_policy: consumer::AckPolicy::Explicit,
            ack_wait: cfg.ack_wait,
            max_deliver: max_deliver.map_or(-1, i64::from),
            deliver_policy: if named.is_some() && cfg.replay_existing {
                consumer::DeliverPolicy::All
            } else {
                consumer::DeliverPolicy::New
            },
            ..Default::default()
        };
        if let Some(n) = options.prefetch {
            config.max_ack_pending = i64::from(n.max(1));
        }
        let consumer = match named {
            Some(name) => {
                let name = consumer_name(name);
                config.durable_name = Some(name.clone());
                if let Some(t) = cfg.durable_inactive_threshold {
                    config.inactive_threshold = t;
                }
                inner.stream.get_or_create_consumer(&name, config).await
            }
            None => {
                config.inactive_threshold = cfg.ephemeral_inactive_threshold;
                inner.stream.create_consumer(config).await
            }
        }
        .map_err(|e| inner.shared.err(format!("consumer: {e}")))?;
        // Without a prefetch, async-nats's default batch.
        let batch = options.prefetch.map_or(200, |n| n.max(1) as usize);
        let messages = crate::pull::messages(
            inner.shared.client.clone(),
            inner.context.clone(),
            &cfg.stream,
            &consumer.cached_info().name,
            batch,
        )
        .await
        .map_err(|e| inner.shared.err(format!("consumer: {e}")))?;
        // Messages that exhaust max_deliver without a nack (ack timeouts, crashed consumers)
        // are dead-lettered from the server's max-deliveries advisory.
        let watcher = match (&dead_letter, max_deliver) {
            (Some(dlq), Some(_)) => Some(
                self.watch_max_deliveries(&consumer.cached_info().name, dlq)
                    .await?,
            ),
            _ => None,
        };
        let settle = Arc::new(Settle {
            client: inner.shared.client.clone(),
            secrets: inner.shared.secrets.clone(),
            subjects: inner.shared.subjects,
            dead_letter,
            max_deliver,
        });
        let secrets = inner.shared.secrets.clone();
        let stream = until_closed(messages, inner.shared.closed_signal()).map(move |item| {
            // The watcher lives as long as the subscription stream.
            let _watcher = &watcher;
            match item {
                Ok(m) => JetStreamMessage::new(m, settle.clone()),
                Err(e) => Err(crate::config::transport(&e, &secrets)),
            }
        });
        Ok(JetStreamSubscription {
            inner: Box::pin(stream),
        })
    }
}

/// Aborts a background task when dropped.
#[derive(Debug)]
struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

impl JetStreamConnection {
    /// Dead-letter every message the server gives up on for `consumer` (its
    /// `MAX_DELIVERIES` advisory), fetched from the stream by sequence. Members of a queue
    /// group share the work through a queue subscription, so each message is dead-lettered once.
    async fn watch_max_deliveries(&self, consumer: &str, dlq: &str) -> Result<AbortOnDrop> {
        let inner = &self.inner;
        check_subject(dlq, false)?;
        let subject = format!(
            "$JS.EVENT.ADVISORY.CONSUMER.MAX_DELIVERIES.{}.{consumer}",
            inner.config.stream
        );
        let mut advisories = inner
            .shared
            .client
            .queue_subscribe(subject, format!("rs-dlq-{consumer}"))
            .await
            .map_err(|e| inner.shared.err(e))?;
        inner.shared.flush().await?;
        let client = inner.shared.client.clone();
        let stream = inner.stream.clone();
        let secrets = inner.shared.secrets.clone();
        let dlq = dlq.to_owned();
        let task = tokio::spawn(async move {
            while let Some(advisory) = advisories.next().await {
                let Some(seq) = stream_seq(&advisory.payload) else {
                    tracing::warn!("nats: max-deliveries advisory without stream_seq");
                    continue;
                };
                let raw = match stream.get_raw_message(seq).await {
                    Ok(raw) => raw,
                    Err(e) => {
                        let e = crate::config::scrub(&e.to_string(), &secrets);
                        tracing::warn!(seq, error = %e, "nats: cannot fetch message to dead-letter");
                        continue;
                    }
                };
                let mut headers = raw.headers;
                headers.insert(DEAD_LETTER_REASON_HEADER, "max-deliver");
                headers.insert(DEAD_LETTER_SUBJECT_HEADER, raw.subject.as_str());
                let sent = client
                    .publish_with_headers(dlq.clone(), headers, raw.payload)
                    .await;
                if let Err(e) = sent {
                    let e = crate::config::scrub(&e.to_string(), &secrets);
                    tracing::warn!(seq, error = %e, "nats: dead-letter publish failed");
                }
            }
        });
        Ok(AbortOnDrop(task))
    }
}

/// `stream_seq` of a JetStream advisory (JSON).
fn stream_seq(payload: &[u8]) -> Option<u64> {
    let v: serde_json::Value = serde_json::from_slice(payload).ok()?;
    v.get("stream_seq")?.as_u64()
}

/// Batches of JetStream messages; each message is settled on its own.
pub type JetStreamBatches = Batched<JetStreamSubscription, JetStreamMessage>;

impl BatchSubscriber for JetStreamConnection {
    type Batches = JetStreamBatches;

    /// A pull consumer fetching up to `max` messages per pull (unless `prefetch` says
    /// otherwise); each message is settled on its own.
    async fn subscribe_batch(
        &self,
        address: &Address,
        mut options: SubscribeOptions,
        max: usize,
        max_wait: Duration,
    ) -> Result<JetStreamBatches> {
        if options.prefetch.is_none() {
            options.prefetch = Some(u32::try_from(max.max(1)).unwrap_or(u32::MAX));
        }
        let sub = self.subscribe(address, options).await?;
        Ok(JetStreamBatches::new(sub, max, max_wait))
    }
}

impl Connection for JetStreamConnection {
    fn capabilities(&self) -> Capabilities {
        let mut c = Capabilities::NONE;
        c.ack = true;
        c.nack_requeue = true;
        c.dead_letter = true;
        c.headers = true;
        c.queue_groups = true;
        c.ordered = true;
        c.durable = true;
        c.delayed_redelivery = true;
        c.batch = true;
        c.wildcards = true;
        c
    }

    async fn shutdown(self) -> Result<()> {
        self.inner.shared.shutdown().await
    }
}

/// A JetStream subscription (a pull consumer's message stream).
pub struct JetStreamSubscription {
    inner: Pin<Box<dyn Stream<Item = Result<JetStreamMessage>> + Send>>,
}

impl std::fmt::Debug for JetStreamSubscription {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JetStreamSubscription")
            .finish_non_exhaustive()
    }
}

impl Stream for JetStreamSubscription {
    type Item = Result<JetStreamMessage>;
    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        self.inner.as_mut().poll_next(cx)
    }
}

/// Per-subscription settlement settings.
struct Settle {
    client: async_nats::Client,
    secrets: Vec<String>,
    subjects: crate::SubjectMapping,
    /// A NATS subject (already mapped).
    dead_letter: Option<String>,
    max_deliver: Option<u32>,
}

impl std::fmt::Debug for Settle {
    // Not derived: `secrets` holds the credentials the error scrubber removes.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Settle")
            .field("client", &self.client)
            .field("secrets", &"<redacted>")
            .field("subjects", &self.subjects)
            .field("dead_letter", &self.dead_letter)
            .field("max_deliver", &self.max_deliver)
            .finish()
    }
}

/// A message delivered by JetStream.
#[derive(Debug)]
pub struct JetStreamMessage {
    message: jetstream::Message,
    /// The subject, mapped back to an address.
    address: String,
    /// The `reply-to` header, mapped back to an address.
    reply_to: Option<String>,
    headers: Headers,
    attempt: u32,
    settle: Arc<Settle>,
}

impl JetStreamMessage {
    fn new(message: jetstream::Message, settle: Arc<Settle>) -> Result<Self> {
        let attempt = message
            .info()
            .map(|i| u32::try_from(i.delivered.max(1)).unwrap_or(u32::MAX))
            .map_err(|e| crate::config::transport(&e, &settle.secrets))?;
        let headers = from_nats_headers(message.message.headers.as_ref());
        let subjects = settle.subjects;
        Ok(JetStreamMessage {
            address: subjects.address(&message.message.subject).into_owned(),
            reply_to: headers
                .get(REPLY_TO_HEADER)
                .map(|r| subjects.address(r).into_owned()),
            headers,
            message,
            attempt,
            settle,
        })
    }

    async fn settle(&self, kind: AckKind) -> Result<()> {
        self.message
            .ack_with(kind)
            .await
            .map_err(|e| crate::config::transport(&e, &self.settle.secrets))
    }

    /// Publish a copy to the dead-letter subject, then terminate. Without a dead-letter
    /// subject, just terminate.
    async fn dead_letter(self, reason: &str) -> Result<()> {
        if let Some(dlq) = &self.settle.dead_letter {
            let mut out = OutgoingMessage::new(dlq.clone(), self.message.message.payload.clone())
                .with_headers(self.headers.clone());
            out.headers.insert(DEAD_LETTER_REASON_HEADER, reason);
            out.headers.insert(
                DEAD_LETTER_SUBJECT_HEADER,
                self.message.message.subject.as_str(),
            );
            check_subject(&out.address, false)?;
            let headers = to_nats_headers(&out, false, None)?.unwrap_or_default();
            let client = &self.settle.client;
            let err = |e: &dyn std::fmt::Display| crate::config::transport(e, &self.settle.secrets);
            client
                .publish_with_headers(out.address, headers, out.payload)
                .await
                .map_err(|e| err(&e))?;
            client.flush().await.map_err(|e| err(&e))?;
        }
        self.settle(AckKind::Term).await
    }
}

impl IncomingMessage for JetStreamMessage {
    fn payload(&self) -> &[u8] {
        &self.message.message.payload
    }
    fn headers(&self) -> &Headers {
        &self.headers
    }
    fn address(&self) -> &str {
        &self.address
    }
    /// From the `reply-to` header (JetStream does not store the reply subject).
    fn reply_to(&self) -> Option<&str> {
        self.reply_to.as_deref()
    }
    fn correlation_id(&self) -> Option<&str> {
        crate::util::correlation_of(&self.headers)
    }
    fn attempt(&self) -> u32 {
        self.attempt
    }
    async fn ack(self) -> Result<()> {
        self.settle(AckKind::Ack).await
    }
    async fn nack(self, requeue: bool) -> Result<()> {
        if !requeue {
            return self.settle(AckKind::Term).await;
        }
        let last = self.settle.max_deliver.is_some_and(|m| self.attempt >= m);
        if last {
            return self.dead_letter("max-deliver").await;
        }
        self.settle(AckKind::Nak(None)).await
    }
    async fn reject(self) -> Result<()> {
        self.dead_letter("rejected").await
    }
}

impl DelayedRedelivery for JetStreamMessage {
    async fn nack_with_delay(self, delay: Duration) -> Result<()> {
        let last = self.settle.max_deliver.is_some_and(|m| self.attempt >= m);
        if last {
            return self.dead_letter("max-deliver").await;
        }
        self.settle(AckKind::Nak(Some(delay))).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn advisory_sequence_is_read() {
        let adv = br#"{"type":"io.nats.jetstream.advisory.v1.max_deliver","stream":"S","consumer":"c","stream_seq":42,"deliveries":3}"#;
        assert_eq!(stream_seq(adv), Some(42));
        assert_eq!(stream_seq(b"{}"), None);
        assert_eq!(stream_seq(b"not json"), None);
    }

    #[test]
    fn consumer_names_are_sanitised() {
        assert_eq!(consumer_name("orders.eu workers/*"), "orders_eu_workers__");
        assert_eq!(consumer_name("plain_name-1"), "plain_name-1");
    }
}
