//! Redis Streams with consumer groups: at-least-once delivery.
//!
//! - publish = `XADD` (pipelined by a background writer; see [`crate::entry`] for the fields);
//! - subscribe = `XREADGROUP` on a dedicated connection, one consumer per subscription;
//! - ack = `XACK`; `nack(false)` = `XACK` (dropped);
//! - `nack(true)` = the entry stays pending and is claimed back at once (`XCLAIM`), delivered
//!   again with `attempt` = its delivery count;
//! - entries left pending (a crashed or slow consumer) are reclaimed after
//!   [`StreamOptions::claim_idle`](crate::StreamOptions) by any consumer of the group;
//! - after `max_attempts` deliveries, and on `reject`, the entry is copied to the dead-letter
//!   stream (`XADD`) and acknowledged.
//!
//! Stream keys cannot be wildcarded, so a template with parameters is served by discovery:
//! every [`StreamOptions::discover_every`](crate::StreamOptions) the reader looks for matching
//! stream keys (`SCAN … MATCH <glob> TYPE stream`, results re-checked against the template;
//! keys ending in `:dlq` are skipped) and joins each with the subscription's group, starting
//! at the server time of `subscribe`, so entries added after subscribing are never missed —
//! they arrive at most one discovery interval late when their stream is new.

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use futures_core::Stream;
use redis::Value;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use ruststream::{
    Address, Broker, Capabilities, Connection, Error, Headers, IncomingMessage, OutgoingMessage,
    Publisher, Result, SubscribeOptions, Subscriber,
};
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;

use crate::entry::{self, Entry};
use crate::writer::{Writer, reply};
use crate::{Config, Scrubber};

/// A configured Redis Streams broker (no I/O until [`Broker::connect`]).
#[derive(Debug, Clone, Default)]
pub struct RedisStreams {
    config: Config,
}

impl RedisStreams {
    /// A broker for `config`.
    pub fn new(config: Config) -> Self {
        RedisStreams { config }
    }
}

pub(crate) fn manager_config(response_timeout: Duration) -> ConnectionManagerConfig {
    ConnectionManagerConfig::new()
        .set_response_timeout(Some(response_timeout))
        .set_connection_timeout(Some(Duration::from_secs(2)))
        .set_number_of_retries(3)
        .set_max_delay(Duration::from_secs(1))
}

pub(crate) fn instance_token() -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or_default();
    format!("{}-{:x}", std::process::id(), nanos & 0xffff_ffff_ffff)
}

impl Broker for RedisStreams {
    type Connection = StreamsConnection;

    fn name(&self) -> &'static str {
        "redis-streams"
    }

    async fn connect(self) -> Result<StreamsConnection> {
        let config = self.config;
        let scrub = Scrubber::new(&config);
        let client = redis::Client::open(config.url.as_str()).map_err(|e| scrub.error(e))?;
        let conn = ConnectionManager::new_with_config(
            client.clone(),
            manager_config(config.response_timeout),
        )
        .await
        .map_err(|e| scrub.error(e))?;
        let instance = instance_token();
        let writer = Writer::spawn(conn, config.max_pipeline, scrub.clone());
        let (shutdown, _) = watch::channel(false);
        Ok(StreamsConnection {
            inner: Arc::new(Inner {
                config,
                client,
                writer,
                scrub,
                closed: AtomicBool::new(false),
                shutdown: Arc::new(shutdown),
                next_id: AtomicU64::new(0),
                inbox: crate::reply::Inbox::new(&format!("streams.{instance}")),
                instance,
                replies: Arc::default(),
                inbox_channel: tokio::sync::OnceCell::new(),
            }),
        })
    }
}

pub(crate) struct Inner {
    config: Config,
    client: redis::Client,
    writer: Writer,
    scrub: Scrubber,
    closed: AtomicBool,
    shutdown: Arc<watch::Sender<bool>>,
    next_id: AtomicU64,
    instance: String,
    inbox: crate::reply::Inbox,
    /// Reply addresses learned to be Pub/Sub channels (FastStream's replies).
    replies: Arc<crate::reply::ReplyChannels>,
    /// The Pub/Sub connection the reply inbox is subscribed on, with FastStream's format.
    inbox_channel: tokio::sync::OnceCell<crate::PubSubConnection>,
}

/// A live Redis Streams connection (cheap to clone).
#[derive(Clone)]
pub struct StreamsConnection {
    pub(crate) inner: Arc<Inner>,
}

impl std::fmt::Debug for StreamsConnection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StreamsConnection")
            .field("config", &self.inner.config)
            .finish_non_exhaustive()
    }
}

impl StreamsConnection {
    pub(crate) fn is_closed(&self) -> bool {
        self.inner.closed.load(Ordering::Acquire)
    }

    pub(crate) fn writer(&self) -> &Writer {
        &self.inner.writer
    }

    pub(crate) fn maxlen(&self) -> Option<usize> {
        self.inner.config.streams.maxlen
    }

    pub(crate) fn format(&self) -> crate::MessageFormat {
        self.inner.config.message_format
    }
}

async fn create_group_at(writer: &Writer, key: &str, group: &str, start: &str) -> Result<()> {
    let mut cmd = redis::cmd("XGROUP");
    cmd.arg("CREATE")
        .arg(key)
        .arg(group)
        .arg(start)
        .arg("MKSTREAM");
    match reply(writer.send(cmd)).await {
        Ok(_) => Ok(()),
        Err(Error::Transport { message, .. }) if message.contains("BUSYGROUP") => Ok(()),
        Err(e) => Err(e),
    }
}

impl Publisher for StreamsConnection {
    fn publish(&self, message: OutgoingMessage) -> impl Future<Output = Result<()>> + Send {
        // Enqueue now, so call order is publish order even before the future is polled.
        let inner = &self.inner;
        let format = inner.config.message_format;
        let pending = if self.is_closed() {
            Err(Error::Closed)
        } else if inner.replies.is_channel(&message.address) {
            // A reply to a FastStream-format request: over Pub/Sub, where the requester waits,
            // in the format it reads.
            crate::pubsub::publish_cmd(crate::MessageFormat::FastStream, &message)
                .map(|cmd| inner.writer.send(cmd))
        } else {
            entry::xadd(&message, inner.config.streams.maxlen, format)
                .map(|cmd| inner.writer.send(cmd))
        };
        async move { reply(pending?).await.map(|_| ()) }
    }

    fn flush(&self) -> impl Future<Output = Result<()>> + Send {
        let done = self.inner.writer.flush();
        async move { done.await.map_err(|_| Error::Closed) }
    }
}

impl Subscriber for StreamsConnection {
    type Message = StreamMessage;
    type Subscription = StreamSubscription;

    async fn subscribe(
        &self,
        address: &Address,
        options: SubscribeOptions,
    ) -> Result<StreamSubscription> {
        if self.is_closed() {
            return Err(Error::Closed);
        }
        let inner = &self.inner;
        let so = &inner.config.streams;
        let n = inner.next_id.fetch_add(1, Ordering::Relaxed);
        let consumer = format!("{}-{}-{n}", so.consumer, inner.instance);
        let named = options
            .queue_group
            .clone()
            .or_else(|| options.durable.clone())
            .or_else(|| so.group.clone());
        let ephemeral = named.is_none();
        let group = named.unwrap_or_else(|| format!("ruststream:{}:{n}", inner.instance));
        let capacity = options
            .prefetch
            .map(|p| p as usize)
            .unwrap_or(so.batch)
            .max(1);
        let mut reader = ConnectionManager::new_with_config(
            inner.client.clone(),
            manager_config(so.block + inner.config.response_timeout),
        )
        .await
        .map_err(|e| inner.scrub.error(e))?;
        let (tx, rx) = mpsc::channel(capacity);
        let spec = SubSpec {
            group: group.clone(),
            consumer,
            writer: inner.writer.clone(),
            tx: tx.downgrade(),
            dead_letter: options
                .dead_letter
                .clone()
                .or_else(|| so.dead_letter.clone()),
            max_attempts: options.max_deliver.unwrap_or(so.max_attempts).max(1),
            claim_idle: so.claim_idle,
            scrub: inner.scrub.clone(),
            replies: inner.replies.clone(),
        };
        let streams: reader::Streams = Arc::new(Mutex::new(Vec::new()));
        let discovery = if address.is_concrete() {
            let key = address.as_str().to_owned();
            create_group_at(&inner.writer, &key, &group, "$").await?;
            streams
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .push(spec.for_key(key, "$".to_owned()));
            None
        } else {
            // Streams cannot be wildcarded: matching keys are found with SCAN, each joined at
            // the server time of this call so nothing added from now on is missed.
            let (secs, micros): (u64, u64) = redis::cmd("TIME")
                .query_async(&mut reader)
                .await
                .map_err(|e| inner.scrub.error(e))?;
            Some(Discovery {
                template: address.clone(),
                pattern: crate::pubsub::glob_pattern(address),
                // The group delivers ids greater than its start: start just before this
                // millisecond.
                start: format!(
                    "{}-{}",
                    (secs * 1000 + micros / 1000).saturating_sub(1),
                    u64::MAX
                ),
                every: so.discover_every,
                spec,
            })
        };
        let task = tokio::spawn(read_loop(
            streams.clone(),
            discovery,
            reader,
            tx,
            inner.shutdown.clone(),
            ReadSettings {
                block: so.block,
                claim_idle: so.claim_idle,
                count: capacity,
            },
        ));
        Ok(StreamSubscription {
            rx,
            guard: SubGuard {
                address: address.as_str().to_owned(),
                group,
                streams,
                writer: inner.writer.clone(),
                task,
                ephemeral,
            },
        })
    }
}

impl Connection for StreamsConnection {
    fn capabilities(&self) -> Capabilities {
        let mut c = Capabilities::NONE;
        c.ack = true;
        c.nack_requeue = true;
        c.dead_letter = true;
        c.headers = true;
        c.queue_groups = true;
        c.ordered = true;
        c.durable = true;
        c.batch = true;
        c.transactions = true;
        c.wildcards = true;
        c.request_reply = true;
        c.delayed_redelivery = true;
        c
    }

    async fn shutdown(self) -> Result<()> {
        if self.inner.closed.swap(true, Ordering::AcqRel) {
            return Ok(());
        }
        self.inner.shutdown.send_replace(true);
        if let Some(channel) = self.inner.inbox_channel.get() {
            let _ = channel.clone().shutdown().await;
        }
        if self.inner.inbox.started() {
            // The inbox stream belongs to this connection only.
            let mut del = redis::cmd("DEL");
            del.arg(self.inner.inbox.address());
            self.inner.writer.send_detached(del);
        }
        // Everything queued (publishes, acks) is written before we return.
        let _ = self.inner.writer.flush().await;
        Ok(())
    }
}

impl ruststream::capability::RequestReply for StreamsConnection {
    /// With [`MessageFormat::FastStream`](crate::MessageFormat) (the default) replies arrive on
    /// the Pub/Sub channel `ruststream.inbox.streams.<connection id>`, as FastStream's
    /// repliers publish them; with `RustStream`, on the reply stream of that name. Either is
    /// subscribed on the first request (the stream is deleted at shutdown).
    async fn request(
        &self,
        message: OutgoingMessage,
        timeout: Duration,
    ) -> Result<ruststream::capability::Reply> {
        if self.is_closed() {
            return Err(Error::Closed);
        }
        let inner = &self.inner;
        if inner.config.message_format == crate::MessageFormat::RustStream {
            return inner
                .inbox
                .request(self, self, message, timeout, &inner.instance)
                .await;
        }
        let channel = inner
            .inbox_channel
            .get_or_try_init(|| crate::RedisPubSub::new(inner.config.clone()).connect())
            .await?;
        inner
            .inbox
            .request(self, channel, message, timeout, &inner.instance)
            .await
    }
}

/// State shared by a subscription's reader task and its messages.
struct SubShared {
    key: String,
    group: String,
    consumer: String,
    /// Where the group starts when (re)created: `$`, or the subscription's start id.
    start: String,
    writer: Writer,
    tx: mpsc::WeakSender<Result<StreamMessage>>,
    dead_letter: String,
    max_attempts: u32,
    claim_idle: Duration,
    scrub: Scrubber,
    replies: Arc<crate::reply::ReplyChannels>,
}

impl SubShared {
    fn xack(&self, id: &str) -> redis::Cmd {
        let mut cmd = redis::cmd("XACK");
        cmd.arg(&self.key).arg(&self.group).arg(id);
        cmd
    }

    fn xclaim<'a>(&self, min_idle: Duration, ids: impl IntoIterator<Item = &'a str>) -> redis::Cmd {
        let mut cmd = redis::cmd("XCLAIM");
        cmd.arg(&self.key)
            .arg(&self.group)
            .arg(&self.consumer)
            .arg(u64::try_from(min_idle.as_millis()).unwrap_or(u64::MAX));
        for id in ids {
            cmd.arg(id);
        }
        cmd
    }

    /// Copy `entry` to the dead-letter stream, then acknowledge it.
    async fn dead_letter(&self, entry: &Entry, attempts: u32) -> Result<()> {
        let mut cmd = redis::cmd("XADD");
        cmd.arg(&self.dead_letter).arg("*");
        entry::push_fields(
            &mut cmd,
            &entry.payload,
            entry.reply_to.as_deref(),
            entry.correlation_id.as_deref(),
            entry.key.as_deref(),
            &entry.headers,
        );
        cmd.arg("dlq:stream")
            .arg(&self.key)
            .arg("dlq:id")
            .arg(&entry.id)
            .arg("dlq:attempts")
            .arg(attempts);
        reply(self.writer.send(cmd)).await?;
        reply(self.writer.send(self.xack(&entry.id))).await?;
        Ok(())
    }
}

mod message;
mod reader;

pub use message::StreamMessage;
pub use reader::StreamSubscription;
use reader::{Discovery, ReadSettings, SubGuard, SubSpec, read_loop};
