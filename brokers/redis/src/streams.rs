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
//! Stream keys cannot be wildcarded, so templates with parameters are refused with
//! [`Error::Unsupported`].

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
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
                instance: instance_token(),
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
}

async fn create_group(writer: &Writer, key: &str, group: &str) -> Result<()> {
    let mut cmd = redis::cmd("XGROUP");
    cmd.arg("CREATE")
        .arg(key)
        .arg(group)
        .arg("$")
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
        let pending = (!self.is_closed()).then(|| {
            self.inner
                .writer
                .send(entry::xadd(&message, self.inner.config.streams.maxlen))
        });
        async move {
            match pending {
                Some(rx) => reply(rx).await.map(|_| ()),
                None => Err(Error::Closed),
            }
        }
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
        if !address.is_concrete() {
            return Err(Error::unsupported(
                "redis streams: stream keys cannot be wildcarded; subscribe to a concrete \
                 address (templates with parameters are supported by RedisPubSub)",
            ));
        }
        let inner = &self.inner;
        let so = &inner.config.streams;
        let key = address.as_str().to_owned();
        let n = inner.next_id.fetch_add(1, Ordering::Relaxed);
        let consumer = format!("{}-{}-{n}", so.consumer, inner.instance);
        let named = options
            .queue_group
            .clone()
            .or_else(|| options.durable.clone())
            .or_else(|| so.group.clone());
        let ephemeral = named.is_none();
        let group = named.unwrap_or_else(|| format!("ruststream:{}:{n}", inner.instance));
        create_group(&inner.writer, &key, &group).await?;

        let capacity = options
            .prefetch
            .map(|p| p as usize)
            .unwrap_or(so.batch)
            .max(1);
        let reader = ConnectionManager::new_with_config(
            inner.client.clone(),
            manager_config(so.block + inner.config.response_timeout),
        )
        .await
        .map_err(|e| inner.scrub.error(e))?;
        let (tx, rx) = mpsc::channel(capacity);
        let dead_letter = options
            .dead_letter
            .clone()
            .or_else(|| so.dead_letter.clone())
            .unwrap_or_else(|| format!("{key}:dlq"));
        let shared = Arc::new(SubShared {
            key,
            group,
            consumer,
            writer: inner.writer.clone(),
            tx: tx.downgrade(),
            dead_letter,
            max_attempts: options.max_deliver.unwrap_or(so.max_attempts).max(1),
            claim_idle: so.claim_idle,
            scrub: inner.scrub.clone(),
        });
        let task = tokio::spawn(read_loop(
            shared.clone(),
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
                shared,
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
        c.delayed_redelivery = true;
        c
    }

    async fn shutdown(self) -> Result<()> {
        if self.inner.closed.swap(true, Ordering::AcqRel) {
            return Ok(());
        }
        self.inner.shutdown.send_replace(true);
        // Everything queued (publishes, acks) is written before we return.
        let _ = self.inner.writer.flush().await;
        Ok(())
    }
}

/// State shared by a subscription's reader task and its messages.
struct SubShared {
    key: String,
    group: String,
    consumer: String,
    writer: Writer,
    tx: mpsc::WeakSender<Result<StreamMessage>>,
    dead_letter: String,
    max_attempts: u32,
    claim_idle: Duration,
    scrub: Scrubber,
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

struct ReadSettings {
    block: Duration,
    claim_idle: Duration,
    count: usize,
}

async fn read_loop(
    sh: Arc<SubShared>,
    mut conn: ConnectionManager,
    tx: mpsc::Sender<Result<StreamMessage>>,
    shutdown: Arc<watch::Sender<bool>>,
    settings: ReadSettings,
) {
    let mut stop = shutdown.subscribe();
    let claim_every =
        (settings.claim_idle / 2).clamp(Duration::from_millis(50), Duration::from_secs(5));
    let mut next_claim = Instant::now();
    let mut backoff = Duration::from_millis(50);
    loop {
        if *stop.borrow() || tx.is_closed() {
            return;
        }
        if Instant::now() >= next_claim {
            match reclaim(&sh, &mut conn, settings.claim_idle, settings.count).await {
                Ok(messages) => {
                    for m in messages {
                        if !deliver(&tx, &mut stop, m).await {
                            return;
                        }
                    }
                }
                Err(e) => {
                    tracing::debug!(error = %sh.scrub.scrub(e), stream = %sh.key, "redis: reclaim failed")
                }
            }
            next_claim = Instant::now() + claim_every;
        }
        // Consume without blocking (atomically with reading the newest id), then wait for new
        // entries with a plain `XREAD BLOCK`, which claims nothing: abandoning that wait (on
        // drop or shutdown) can never leave an entry pending on a consumer that is gone.
        let mut pipe = redis::pipe();
        pipe.atomic();
        pipe.cmd("XREADGROUP")
            .arg("GROUP")
            .arg(&sh.group)
            .arg(&sh.consumer)
            .arg("COUNT")
            .arg(settings.count)
            .arg("STREAMS")
            .arg(&sh.key)
            .arg(">");
        pipe.cmd("XREVRANGE")
            .arg(&sh.key)
            .arg("+")
            .arg("-")
            .arg("COUNT")
            .arg(1);
        let result: redis::RedisResult<(Value, Value)> = pipe.query_async(&mut conn).await;
        let error = match result {
            Ok((read, newest)) => {
                backoff = Duration::from_millis(50);
                let entries = entry::parse_read(read);
                if !entries.is_empty() {
                    for (id, entry) in entries {
                        match entry {
                            Some(entry) => {
                                let m = StreamMessage {
                                    sub: sh.clone(),
                                    entry,
                                    attempt: 1,
                                };
                                if !deliver(&tx, &mut stop, m).await {
                                    return;
                                }
                            }
                            None => sh.writer.send_detached(sh.xack(&id)),
                        }
                    }
                    continue;
                }
                let last = entry::parse_entries(newest)
                    .into_iter()
                    .next()
                    .map(|(id, _)| id)
                    .unwrap_or_else(|| "0-0".to_owned());
                let wait = settings
                    .block
                    .min(next_claim.saturating_duration_since(Instant::now()))
                    .max(Duration::from_millis(1));
                let mut cmd = redis::cmd("XREAD");
                cmd.arg("BLOCK")
                    .arg(u64::try_from(wait.as_millis()).unwrap_or(u64::MAX))
                    .arg("COUNT")
                    .arg(1)
                    .arg("STREAMS")
                    .arg(&sh.key)
                    .arg(last);
                let waited = tokio::select! {
                    r = cmd.query_async::<Value>(&mut conn) => r,
                    _ = stop.wait_for(|s| *s) => return,
                    _ = tx.closed() => return,
                };
                match waited {
                    Ok(_) => continue,
                    Err(e) => e,
                }
            }
            Err(e) => e,
        };
        if tx.is_closed() {
            // Dropped meanwhile (its per-subscription group may be gone on purpose).
            return;
        }
        let msg = sh.scrub.scrub(&error);
        if msg.contains("NOGROUP") {
            // The stream or group vanished (deleted, or a server restart without persistence):
            // recreate it and go on.
            if let Err(e) = create_group(&sh.writer, &sh.key, &sh.group).await {
                tracing::warn!(error = %e, stream = %sh.key, "redis: recreating group failed");
            }
        } else {
            tracing::warn!(error = %msg, stream = %sh.key, "redis: reading failed; retrying");
        }
        tokio::select! {
            _ = tokio::time::sleep(backoff) => {}
            _ = stop.wait_for(|s| *s) => return,
            _ = tx.closed() => return,
        }
        backoff = (backoff * 2).min(Duration::from_secs(2));
    }
}

async fn deliver(
    tx: &mpsc::Sender<Result<StreamMessage>>,
    stop: &mut watch::Receiver<bool>,
    m: StreamMessage,
) -> bool {
    tokio::select! {
        r = tx.send(Ok(m)) => r.is_ok(),
        _ = stop.wait_for(|s| *s) => false,
    }
}

/// Claim entries of the group idle for at least `claim_idle`; dead-letter those that reached
/// the attempt limit and return the others for delivery.
async fn reclaim(
    sh: &Arc<SubShared>,
    conn: &mut ConnectionManager,
    claim_idle: Duration,
    count: usize,
) -> redis::RedisResult<Vec<StreamMessage>> {
    let idle_ms = u64::try_from(claim_idle.as_millis()).unwrap_or(u64::MAX);
    let mut cmd = redis::cmd("XPENDING");
    cmd.arg(&sh.key)
        .arg(&sh.group)
        .arg("IDLE")
        .arg(idle_ms)
        .arg("-")
        .arg("+")
        .arg(count);
    let pending = entry::parse_pending(cmd.query_async::<Value>(conn).await?);
    if pending.is_empty() {
        return Ok(Vec::new());
    }
    let claimed = entry::parse_entries(
        sh.xclaim(claim_idle, pending.iter().map(|(id, _)| id.as_str()))
            .query_async::<Value>(conn)
            .await?,
    );
    let mut out = Vec::with_capacity(claimed.len());
    for (id, entry) in claimed {
        let delivered = pending
            .iter()
            .find(|(p, _)| *p == id)
            .map(|(_, n)| *n)
            .unwrap_or(1);
        match entry {
            None => sh.writer.send_detached(sh.xack(&id)),
            Some(entry) if delivered >= sh.max_attempts => {
                if let Err(e) = sh.dead_letter(&entry, delivered).await {
                    tracing::warn!(error = %e, stream = %sh.key, "redis: dead-lettering failed");
                }
            }
            Some(entry) => out.push(StreamMessage {
                sub: sh.clone(),
                entry,
                attempt: delivered.saturating_add(1),
            }),
        }
    }
    Ok(out)
}

/// A subscription: a stream of [`StreamMessage`]s. Dropping it stops reading; a
/// per-subscription group is destroyed, a named group keeps its pending entries for others.
pub struct StreamSubscription {
    rx: mpsc::Receiver<Result<StreamMessage>>,
    guard: SubGuard,
}

impl std::fmt::Debug for StreamSubscription {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StreamSubscription")
            .field("stream", &self.guard.shared.key)
            .field("group", &self.guard.shared.group)
            .finish_non_exhaustive()
    }
}

impl StreamSubscription {
    /// The consumer group this subscription reads with.
    pub fn group(&self) -> &str {
        &self.guard.shared.group
    }
}

struct SubGuard {
    shared: Arc<SubShared>,
    task: JoinHandle<()>,
    ephemeral: bool,
}

impl Drop for SubGuard {
    fn drop(&mut self) {
        // The reader task notices the closed channel and ends on its own; it is not aborted
        // so that a read in flight is never cut between consuming and delivering.
        let _ = &self.task;
        if self.ephemeral {
            let mut cmd = redis::cmd("XGROUP");
            cmd.arg("DESTROY")
                .arg(&self.shared.key)
                .arg(&self.shared.group);
            self.shared.writer.send_detached(cmd);
        }
    }
}

impl Stream for StreamSubscription {
    type Item = Result<StreamMessage>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        self.rx.poll_recv(cx)
    }
}

/// Claim an entry back at once (bumps its delivery count) and queue it for its subscription.
async fn redeliver(sub: Arc<SubShared>, id: String, attempt: u32) -> Result<()> {
    let claimed = reply(sub.writer.send(sub.xclaim(Duration::ZERO, [id.as_str()]))).await?;
    let Some((id, entry)) = entry::parse_entries(claimed).into_iter().next() else {
        // No longer pending (acknowledged elsewhere): nothing to redeliver.
        return Ok(());
    };
    let Some(entry) = entry else {
        // Trimmed from the stream while pending.
        return reply(sub.writer.send(sub.xack(&id))).await.map(|_| ());
    };
    if let Some(tx) = sub.tx.upgrade() {
        let m = StreamMessage {
            sub: sub.clone(),
            entry,
            attempt: attempt.saturating_add(1),
        };
        // Not awaited here: the caller may be the one who has to drain the subscription.
        tokio::spawn(async move {
            let _ = tx.send(Ok(m)).await;
        });
    }
    // Otherwise the subscription is gone; the entry stays pending and another consumer of the
    // group reclaims it after `claim_idle`.
    Ok(())
}

/// A message delivered from a stream through a consumer group.
pub struct StreamMessage {
    sub: Arc<SubShared>,
    entry: Entry,
    attempt: u32,
}

impl std::fmt::Debug for StreamMessage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StreamMessage")
            .field("stream", &self.sub.key)
            .field("id", &self.entry.id)
            .field("attempt", &self.attempt)
            .finish_non_exhaustive()
    }
}

impl StreamMessage {
    /// The stream entry id (`<ms>-<seq>`).
    pub fn id(&self) -> &str {
        &self.entry.id
    }
}

impl IncomingMessage for StreamMessage {
    fn payload(&self) -> &[u8] {
        &self.entry.payload
    }

    fn headers(&self) -> &Headers {
        &self.entry.headers
    }

    fn address(&self) -> &str {
        &self.sub.key
    }

    fn reply_to(&self) -> Option<&str> {
        self.entry.reply_to.as_deref()
    }

    fn correlation_id(&self) -> Option<&str> {
        self.entry.correlation_id.as_deref().or_else(|| {
            self.entry
                .headers
                .get(ruststream::message::names::CORRELATION_ID)
        })
    }

    fn key(&self) -> Option<&[u8]> {
        self.entry.key.as_deref()
    }

    fn attempt(&self) -> u32 {
        self.attempt
    }

    async fn ack(self) -> Result<()> {
        reply(self.sub.writer.send(self.sub.xack(&self.entry.id)))
            .await
            .map(|_| ())
    }

    async fn nack(self, requeue: bool) -> Result<()> {
        if !requeue {
            return self.ack().await;
        }
        if self.attempt >= self.sub.max_attempts {
            return self.sub.dead_letter(&self.entry, self.attempt).await;
        }
        redeliver(self.sub, self.entry.id, self.attempt).await
    }

    async fn reject(self) -> Result<()> {
        self.sub.dead_letter(&self.entry, self.attempt).await
    }
}

impl ruststream::capability::DelayedRedelivery for StreamMessage {
    /// Redelivered to this subscription no sooner than `delay`: until then the entry stays
    /// pending and this consumer keeps resetting its idle time, so other group members do not
    /// reclaim it early. (If this process dies meanwhile, a group member reclaims it after
    /// `claim_idle`.) After `max_attempts` deliveries it is dead-lettered instead.
    async fn nack_with_delay(self, delay: Duration) -> Result<()> {
        if self.attempt >= self.sub.max_attempts {
            return self.sub.dead_letter(&self.entry, self.attempt).await;
        }
        let StreamMessage {
            sub,
            entry,
            attempt,
        } = self;
        tokio::spawn(async move {
            let deadline = tokio::time::Instant::now() + delay;
            let touch_every = (sub.claim_idle / 3).max(Duration::from_millis(10));
            loop {
                let now = tokio::time::Instant::now();
                if now >= deadline {
                    break;
                }
                tokio::time::sleep((deadline - now).min(touch_every)).await;
                if tokio::time::Instant::now() < deadline {
                    // Reset the idle time without counting a delivery.
                    let mut cmd = sub.xclaim(Duration::ZERO, [entry.id.as_str()]);
                    cmd.arg("JUSTID");
                    sub.writer.send_detached(cmd);
                }
            }
            if let Err(e) = redeliver(sub, entry.id, attempt).await {
                tracing::warn!(error = %e, "redis: delayed redelivery failed");
            }
        });
        Ok(())
    }
}
