//! Redis Pub/Sub: fire-and-forget.
//!
//! Publish = `PUBLISH` (pipelined like Streams) of the message in the configured
//! [`MessageFormat`](crate::MessageFormat) (FastStream's by default; every format is read); subscribe
//! = `SUBSCRIBE` for a concrete address, `PSUBSCRIBE` for a template (`{param}` → `*`, results
//! filtered so a parameter never spans a `/` or `.`). Nothing is stored: a subscriber gets what
//! is published while it is connected; after a reconnect it resubscribes and what was
//! published in between is lost. No ack capability: `ack` and `reject` settle nothing (there is
//! nothing to settle), `nack` returns [`Error::Unsupported`]. No queue groups or durable
//! subscriptions: asking for them returns [`Error::Unsupported`].

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use futures_core::Stream;
use futures_util::StreamExt;
use redis::aio::ConnectionManager;
use ruststream::{
    Address, Broker, Capabilities, Connection, Error, Headers, IncomingMessage, OutgoingMessage,
    Publisher, Result, SubscribeOptions, Subscriber,
};
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;

use crate::envelope;
use crate::streams::manager_config;
use crate::writer::{Writer, reply};
use crate::{Config, Scrubber};

/// A configured Redis Pub/Sub broker (no I/O until [`Broker::connect`]).
#[derive(Debug, Clone, Default)]
pub struct RedisPubSub {
    config: Config,
}

impl RedisPubSub {
    /// A broker for `config` (its stream options are unused).
    pub fn new(config: Config) -> Self {
        RedisPubSub { config }
    }
}

struct Inner {
    config: Config,
    client: redis::Client,
    writer: Writer,
    scrub: Scrubber,
    closed: AtomicBool,
    shutdown: Arc<watch::Sender<bool>>,
    instance: String,
    inbox: crate::reply::Inbox,
}

/// A live Redis Pub/Sub connection (cheap to clone).
#[derive(Clone)]
pub struct PubSubConnection {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for PubSubConnection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PubSubConnection")
            .field("config", &self.inner.config)
            .finish_non_exhaustive()
    }
}

impl Broker for RedisPubSub {
    type Connection = PubSubConnection;

    fn name(&self) -> &'static str {
        "redis-pubsub"
    }

    async fn connect(self) -> Result<PubSubConnection> {
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
        let instance = crate::streams::instance_token();
        Ok(PubSubConnection {
            inner: Arc::new(Inner {
                config,
                client,
                writer,
                scrub,
                closed: AtomicBool::new(false),
                shutdown: Arc::new(shutdown),
                inbox: crate::reply::Inbox::new(&format!("pubsub.{instance}")),
                instance,
            }),
        })
    }
}

/// Escape Redis glob metacharacters in literal text.
fn glob_escape(s: &str, out: &mut String) {
    for c in s.chars() {
        if matches!(c, '*' | '?' | '[' | ']' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
}

pub(crate) fn glob_pattern(address: &Address) -> String {
    let mut out = String::with_capacity(address.as_str().len());
    for seg in address.segments() {
        match seg {
            ruststream::address::Segment::Literal(l) => glob_escape(l, &mut out),
            ruststream::address::Segment::Param(_) => out.push('*'),
        }
    }
    out
}

impl Publisher for PubSubConnection {
    fn publish(&self, message: OutgoingMessage) -> impl Future<Output = Result<()>> + Send {
        let pending = if self.inner.closed.load(Ordering::Acquire) {
            Err(Error::Closed)
        } else {
            publish_cmd(self.inner.config.message_format, &message)
                .map(|cmd| self.inner.writer.send(cmd))
        };
        async move { reply(pending?).await.map(|_| ()) }
    }

    fn flush(&self) -> impl Future<Output = Result<()>> + Send {
        let done = self.inner.writer.flush();
        async move { done.await.map_err(|_| Error::Closed) }
    }
}

/// `PUBLISH <channel> <message in format>`.
pub(crate) fn publish_cmd(
    format: crate::MessageFormat,
    message: &OutgoingMessage,
) -> Result<redis::Cmd> {
    let mut cmd = redis::cmd("PUBLISH");
    cmd.arg(&message.address)
        .arg(&envelope::encode_as(format, message)?[..]);
    Ok(cmd)
}

async fn open(
    client: &redis::Client,
    address: &Address,
    scrub: &Scrubber,
) -> Result<redis::aio::PubSub> {
    let mut ps = client
        .get_async_pubsub()
        .await
        .map_err(|e| scrub.error(e))?;
    if address.is_concrete() {
        ps.subscribe(address.as_str()).await
    } else {
        ps.psubscribe(glob_pattern(address)).await
    }
    .map_err(|e| scrub.error(e))?;
    Ok(ps)
}

impl Subscriber for PubSubConnection {
    type Message = PubSubMessage;
    type Subscription = PubSubSubscription;

    async fn subscribe(
        &self,
        address: &Address,
        options: SubscribeOptions,
    ) -> Result<PubSubSubscription> {
        if self.inner.closed.load(Ordering::Acquire) {
            return Err(Error::Closed);
        }
        if options.queue_group.is_some() {
            return Err(Error::unsupported(
                "redis pub/sub has no queue groups (use RedisStreams)",
            ));
        }
        if options.durable.is_some() {
            return Err(Error::unsupported(
                "redis pub/sub has no durable subscriptions (use RedisStreams)",
            ));
        }
        let ps = open(&self.inner.client, address, &self.inner.scrub).await?;
        let capacity = options.prefetch.map(|p| p as usize).unwrap_or(1024).max(1);
        let (tx, rx) = mpsc::channel(capacity);
        let task = tokio::spawn(forward(
            ps,
            self.inner.client.clone(),
            address.clone(),
            self.inner.scrub.clone(),
            tx,
            self.inner.shutdown.clone(),
        ));
        Ok(PubSubSubscription { rx, task })
    }
}

async fn forward(
    ps: redis::aio::PubSub,
    client: redis::Client,
    address: Address,
    scrub: Scrubber,
    tx: mpsc::Sender<Result<PubSubMessage>>,
    shutdown: Arc<watch::Sender<bool>>,
) {
    let mut stop = shutdown.subscribe();
    let mut stream = ps.into_on_message();
    let mut backoff = Duration::from_millis(50);
    loop {
        let msg = tokio::select! {
            m = stream.next() => m,
            _ = stop.wait_for(|s| *s) => return,
        };
        let Some(msg) = msg else {
            // Connection lost: resubscribe (messages published meanwhile are lost).
            loop {
                tokio::select! {
                    _ = tokio::time::sleep(backoff) => {}
                    _ = stop.wait_for(|s| *s) => return,
                }
                if tx.is_closed() {
                    return;
                }
                match open(&client, &address, &scrub).await {
                    Ok(ps) => {
                        stream = ps.into_on_message();
                        backoff = Duration::from_millis(50);
                        break;
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, "redis: pub/sub resubscribe failed");
                        backoff = (backoff * 2).min(Duration::from_secs(2));
                    }
                }
            }
            continue;
        };
        let channel = msg.get_channel_name();
        if !address.matches(channel) {
            continue;
        }
        let payload = Bytes::copy_from_slice(msg.get_payload_bytes());
        let (d, _) = envelope::decode_any(payload);
        let m = PubSubMessage {
            channel: channel.to_owned(),
            decoded: d,
        };
        let sent = tokio::select! {
            r = tx.send(Ok(m)) => r.is_ok(),
            _ = stop.wait_for(|s| *s) => false,
        };
        if !sent {
            return;
        }
    }
}

impl Connection for PubSubConnection {
    fn capabilities(&self) -> Capabilities {
        let mut c = Capabilities::NONE;
        c.headers = true;
        c.ordered = true;
        c.wildcards = true;
        c.request_reply = true;
        c
    }

    async fn shutdown(self) -> Result<()> {
        if self.inner.closed.swap(true, Ordering::AcqRel) {
            return Ok(());
        }
        self.inner.shutdown.send_replace(true);
        let _ = self.inner.writer.flush().await;
        Ok(())
    }
}

impl ruststream::capability::RequestReply for PubSubConnection {
    /// Replies arrive on the channel `ruststream.inbox.pubsub.<connection id>`, subscribed on
    /// the first request. Fire-and-forget: a reply published while nobody listens is lost (and
    /// the request times out).
    async fn request(
        &self,
        message: OutgoingMessage,
        timeout: Duration,
    ) -> Result<ruststream::capability::Reply> {
        if self.inner.closed.load(Ordering::Acquire) {
            return Err(Error::Closed);
        }
        self.inner
            .inbox
            .request(self, self, message, timeout, &self.inner.instance)
            .await
    }
}

/// A Pub/Sub subscription. Dropping it unsubscribes (closes its connection).
#[derive(Debug)]
pub struct PubSubSubscription {
    rx: mpsc::Receiver<Result<PubSubMessage>>,
    task: JoinHandle<()>,
}

impl Drop for PubSubSubscription {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Stream for PubSubSubscription {
    type Item = Result<PubSubMessage>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        self.rx.poll_recv(cx)
    }
}

/// A message received over Redis Pub/Sub.
#[derive(Debug)]
pub struct PubSubMessage {
    channel: String,
    decoded: envelope::Decoded,
}

impl IncomingMessage for PubSubMessage {
    fn payload(&self) -> &[u8] {
        &self.decoded.payload
    }

    fn headers(&self) -> &Headers {
        &self.decoded.headers
    }

    fn address(&self) -> &str {
        &self.channel
    }

    fn reply_to(&self) -> Option<&str> {
        self.decoded.reply_to.as_deref()
    }

    fn correlation_id(&self) -> Option<&str> {
        self.decoded.correlation_id.as_deref().or_else(|| {
            self.decoded
                .headers
                .get(ruststream::message::names::CORRELATION_ID)
        })
    }

    fn key(&self) -> Option<&[u8]> {
        self.decoded.key.as_deref()
    }

    fn attempt(&self) -> u32 {
        1
    }

    /// Nothing to settle: Pub/Sub never redelivers.
    async fn ack(self) -> Result<()> {
        Ok(())
    }

    async fn nack(self, _requeue: bool) -> Result<()> {
        Err(Error::unsupported(
            "redis pub/sub cannot nack (fire-and-forget; use RedisStreams)",
        ))
    }

    /// Dropped: Pub/Sub has no dead letter.
    async fn reject(self) -> Result<()> {
        Ok(())
    }
}
