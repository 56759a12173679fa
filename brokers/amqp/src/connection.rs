//! The broker, its connection, publishing, reconnect and shutdown.

use std::collections::HashMap;
use std::hash::{BuildHasher, Hasher};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex as StdMutex};
use std::time::Duration;

use lapin::options::{
    BasicPublishOptions, ConfirmSelectOptions, ExchangeDeclareOptions, QueueDeclareOptions,
};
use lapin::types::FieldTable;
use lapin::uri::AMQPUri;
use lapin::{BasicProperties, Channel, Confirmation, ConnectionProperties};
use ruststream::capability::Reply;
use ruststream::{Broker, Capabilities, Error, OutgoingMessage, Publisher, Result};
use tokio::sync::{Mutex, oneshot, watch};
use tokio::task::JoinHandle;

use crate::binding::{ExchangeSpec, QueueSpec};
use crate::config::{Config, ExchangeKind, QueueType};
use crate::headers::to_properties;
use crate::topology::{Target, publish_target};

/// Broker name used in errors and logs.
pub(crate) const NAME: &str = "amqp";

/// A configured RabbitMQ broker; [`Broker::connect`] opens the connection.
///
/// ```no_run
/// use ruststream::{Broker, Connection};
/// use ruststream_amqp::{AmqpBroker, Config};
/// # async fn f() -> ruststream::Result<()> {
/// let connection = AmqpBroker::new(Config::default()).connect().await?;
/// connection.shutdown().await
/// # }
/// ```
#[derive(Debug, Clone)]
pub struct AmqpBroker {
    config: Config,
}

impl AmqpBroker {
    /// A broker with this configuration (no I/O yet).
    pub fn new(config: Config) -> Self {
        AmqpBroker { config }
    }

    /// The configuration.
    pub fn config(&self) -> &Config {
        &self.config
    }
}

impl Broker for AmqpBroker {
    type Connection = AmqpConnection;

    fn name(&self) -> &'static str {
        NAME
    }

    async fn connect(self) -> Result<AmqpConnection> {
        self.config.validate()?;
        let uri: AMQPUri = self.config.uri.parse().map_err(|e: String| {
            Error::Config(format!(
                "invalid AMQP URI `{}`: {}",
                self.config.redacted_uri(),
                self.config.scrub(&e)
            ))
        })?;
        let (shutdown, _) = watch::channel(false);
        let inner = Arc::new(Inner {
            config: self.config,
            uri,
            live: Mutex::new(None),
            generation: AtomicU64::new(0),
            closed: AtomicBool::new(false),
            shutdown,
            tasks: StdMutex::new(Vec::new()),
            reply_channel: Mutex::new(None),
            pending: StdMutex::new(HashMap::new()),
        });
        let live = inner.connect_once().await?;
        *inner.live.lock().await = Some(live);
        Ok(AmqpConnection { inner })
    }
}

/// The live parts of one AMQP connection.
#[derive(Clone)]
pub(crate) struct Live {
    pub(crate) connection: Arc<lapin::Connection>,
    pub(crate) publish: Channel,
    pub(crate) generation: u64,
}

pub(crate) struct Inner {
    pub(crate) config: Config,
    uri: AMQPUri,
    live: Mutex<Option<Live>>,
    generation: AtomicU64,
    closed: AtomicBool,
    shutdown: watch::Sender<bool>,
    tasks: StdMutex<Vec<JoinHandle<()>>>,
    pub(crate) reply_channel: Mutex<Option<Channel>>,
    pub(crate) pending: StdMutex<HashMap<String, oneshot::Sender<Reply>>>,
}

impl Inner {
    pub(crate) fn is_closed(&self) -> bool {
        self.closed.load(Ordering::Acquire)
    }

    /// A transport error without credentials.
    pub(crate) fn err(&self, context: &str, error: &lapin::Error) -> Error {
        Error::transport(NAME, self.config.scrub(&format!("{context}: {error}")))
    }

    /// Resolves once shutdown has begun.
    pub(crate) async fn shutdown_signal(&self) {
        let mut rx = self.shutdown.subscribe();
        let _ = rx.wait_for(|closed| *closed).await;
    }

    /// Sleep for `delay`, or fail with [`Error::Closed`] when shutdown begins first.
    pub(crate) async fn sleep(&self, delay: Duration) -> Result<()> {
        tokio::select! {
            _ = tokio::time::sleep(delay) => Ok(()),
            _ = self.shutdown_signal() => Err(Error::Closed),
        }
    }

    pub(crate) fn track(&self, task: JoinHandle<()>) {
        if let Ok(mut tasks) = self.tasks.lock() {
            tasks.retain(|t| !t.is_finished());
            tasks.push(task);
        }
    }

    /// Declare the exchanges this connection publishes to.
    pub(crate) async fn declare_exchanges(&self, channel: &Channel) -> lapin::Result<()> {
        let c = &self.config;
        let options = ExchangeDeclareOptions {
            durable: c.exchange_durable,
            auto_delete: c.exchange_auto_delete,
            ..ExchangeDeclareOptions::default()
        };
        if c.exchange_kind != ExchangeKind::Default {
            channel
                .exchange_declare(
                    c.exchange.as_str().into(),
                    c.exchange_kind.to_lapin(),
                    options,
                    FieldTable::default(),
                )
                .await?;
        }
        if let Some(dlx) = &c.dead_letter_exchange {
            channel
                .exchange_declare(
                    dlx.as_str().into(),
                    ExchangeKind::Topic.to_lapin(),
                    options,
                    FieldTable::default(),
                )
                .await?;
        }
        let mut seen: Vec<&str> = Vec::new();
        for exchange in c.bindings.iter().filter_map(|r| r.exchange.as_ref()) {
            if !exchange.declared() || seen.contains(&exchange.name.as_str()) {
                continue;
            }
            seen.push(&exchange.name);
            self.declare_exchange(channel, exchange).await?;
        }
        Ok(())
    }

    /// Declare one exchange a binding names.
    pub(crate) async fn declare_exchange(
        &self,
        channel: &Channel,
        exchange: &ExchangeSpec,
    ) -> lapin::Result<()> {
        let options = ExchangeDeclareOptions {
            durable: exchange.durable,
            auto_delete: exchange.auto_delete,
            ..ExchangeDeclareOptions::default()
        };
        channel
            .exchange_declare(
                exchange.name.as_str().into(),
                exchange.kind.to_lapin(),
                options,
                FieldTable::default(),
            )
            .await
    }

    /// Declare the queues of `is: queue` channels, so what is published to them before
    /// anyone consumes is kept.
    async fn declare_channel_queues(&self, channel: &Channel) -> lapin::Result<()> {
        for rule in self.config.bindings.iter().filter(|r| r.is_queue) {
            if !rule.address.is_concrete() && rule.queue.as_ref().is_none_or(|q| q.name.is_none()) {
                continue; // named by each concrete address: declared when subscribed
            }
            let name = rule.queue_name(rule.address.as_str());
            let options = queue_declare_options(rule.queue.as_ref());
            channel
                .queue_declare(name.into(), options, FieldTable::default())
                .await?;
        }
        Ok(())
    }

    /// A publish channel (confirm mode when configured) with the exchanges declared.
    async fn open_publish_channel(&self, connection: &lapin::Connection) -> lapin::Result<Channel> {
        let channel = connection.create_channel().await?;
        if self.config.publisher_confirms {
            channel
                .confirm_select(ConfirmSelectOptions::default())
                .await?;
        }
        self.declare_exchanges(&channel).await?;
        self.declare_channel_queues(&channel).await?;
        Ok(channel)
    }

    /// One connection attempt: connect, open the publish channel, declare the exchanges.
    async fn connect_once(&self) -> Result<Live> {
        self.try_connect().await.map_err(|e| match e {
            ConnectError::Retry(e) | ConnectError::Refused(e) => e,
        })
    }

    async fn try_connect(&self) -> std::result::Result<Live, ConnectError> {
        let mut props = ConnectionProperties::default();
        if let Some(name) = &self.config.connection_name {
            props = props.with_connection_name(name.as_str().into());
        }
        let connect = lapin::Connection::connect_uri(self.uri.clone(), props);
        let connection = tokio::time::timeout(self.config.connect_timeout, connect)
            .await
            .map_err(|_| {
                ConnectError::Retry(Error::Timeout(
                    format!("connecting to {}", self.config.redacted_uri()).into(),
                ))
            })?
            .map_err(|e| {
                let context = format!("connecting to {}", self.config.redacted_uri());
                ConnectError::Retry(self.err(&context, &e))
            })?;
        let publish = match self.open_publish_channel(&connection).await {
            Ok(channel) => channel,
            Err(e) => {
                let _ = connection.close(200, "setup failed".into()).await;
                let error = self.err("declaring the exchange", &e);
                // The broker refused the topology (e.g. the exchange exists with another type):
                // retrying cannot help.
                return Err(if e.is_amqp_error() {
                    ConnectError::Refused(error)
                } else {
                    ConnectError::Retry(error)
                });
            }
        };
        let generation = self.generation.fetch_add(1, Ordering::AcqRel) + 1;
        tracing::debug!(generation, uri = %self.config.redacted_uri(), "amqp connected");
        Ok(Live {
            connection: Arc::new(connection),
            publish,
            generation,
        })
    }

    /// The current connection, re-established (with backoff) if it was lost.
    pub(crate) async fn live(&self) -> Result<Live> {
        if self.is_closed() {
            return Err(Error::Closed);
        }
        let mut guard = self.live.lock().await;
        if self.is_closed() {
            return Err(Error::Closed);
        }
        if let Some(live) = guard.as_ref()
            && live.connection.status().connected()
        {
            if live.publish.status().connected() {
                return Ok(live.clone());
            }
            // Only the channel died (e.g. an auto-deleted exchange): open a new one.
            match self.open_publish_channel(&live.connection).await {
                Ok(publish) => {
                    let live = Live {
                        publish,
                        ..live.clone()
                    };
                    *guard = Some(live.clone());
                    return Ok(live);
                }
                Err(e) => {
                    let error = self.config.scrub(&e.to_string());
                    tracing::warn!(%error, "amqp channel reopen failed; reconnecting");
                }
            }
        }
        let policy = self.config.reconnect.clone();
        if !policy.enabled {
            return Err(Error::transport(
                NAME,
                "connection lost and reconnect is disabled",
            ));
        }
        if let Some(old) = guard.take() {
            let _ = old.connection.close(200, "reconnecting".into()).await;
        }
        let mut delay = policy.initial_delay;
        let mut attempts = 0u32;
        loop {
            let attempt = tokio::select! {
                attempt = self.try_connect() => attempt,
                _ = self.shutdown_signal() => return Err(Error::Closed),
            };
            match attempt {
                Ok(live) => {
                    tracing::info!(generation = live.generation, "amqp reconnected");
                    *guard = Some(live.clone());
                    return Ok(live);
                }
                Err(ConnectError::Refused(e)) => return Err(e),
                Err(ConnectError::Retry(e)) => {
                    attempts += 1;
                    tracing::warn!(attempts, error = %e, "amqp reconnect failed");
                    if policy.max_attempts.is_some_and(|max| attempts >= max) {
                        return Err(e);
                    }
                }
            }
            self.sleep(delay).await?;
            delay = (delay * 2).min(policy.max_delay);
        }
    }

    /// Publish on `channel`, awaiting the confirm when confirms are on.
    pub(crate) async fn publish_on(
        &self,
        channel: &Channel,
        target: Target<'_>,
        payload: &[u8],
        props: BasicProperties,
    ) -> std::result::Result<(), PublishError> {
        let mandatory = target.rule.is_some_and(|r| r.message.mandatory);
        let confirm = channel
            .basic_publish(
                target.exchange.into(),
                target.routing_key.into(),
                BasicPublishOptions {
                    mandatory,
                    ..BasicPublishOptions::default()
                },
                payload,
                props,
            )
            .await
            .map_err(PublishError::Transport)?;
        match confirm.await.map_err(PublishError::Transport)? {
            Confirmation::Nack(_) => Err(PublishError::Nacked),
            Confirmation::Ack(Some(_)) if mandatory => Err(PublishError::Returned),
            Confirmation::Ack(_) | Confirmation::NotRequested => Ok(()),
        }
    }
}

enum ConnectError {
    /// Worth another attempt (network, timeout, server not ready).
    Retry(Error),
    /// The broker refused the setup; another attempt would fail the same way.
    Refused(Error),
}

pub(crate) enum PublishError {
    Transport(lapin::Error),
    Nacked,
    /// A mandatory message no queue was bound for.
    Returned,
}

impl PublishError {
    /// The error for a message the broker refused (`what`: "message", "request").
    pub(crate) fn refused(&self, target: &Target<'_>, what: &str) -> Error {
        match self {
            PublishError::Transport(e) => {
                Error::transport(NAME, format!("publishing the {what}: {e}"))
            }
            PublishError::Nacked => {
                Error::transport(NAME, format!("the broker refused (nacked) the {what}"))
            }
            PublishError::Returned => Error::transport(
                NAME,
                format!(
                    "unroutable {what}: no queue is bound for routing key `{}` on exchange `{}` \
                     (the operation's binding is mandatory)",
                    target.routing_key,
                    if target.exchange.is_empty() {
                        "(default)"
                    } else {
                        target.exchange
                    }
                ),
            ),
        }
    }
}

/// Declare options of a binding's queue (a durable, shared queue when the binding says nothing).
pub(crate) fn queue_declare_options(queue: Option<&QueueSpec>) -> QueueDeclareOptions {
    match queue {
        Some(q) => QueueDeclareOptions {
            durable: q.durable,
            exclusive: q.exclusive,
            auto_delete: q.auto_delete,
            ..QueueDeclareOptions::default()
        },
        None => QueueDeclareOptions {
            durable: true,
            ..QueueDeclareOptions::default()
        },
    }
}

/// Whether `error` is RabbitMQ's 404 (e.g. an auto-delete exchange vanished between declare and
/// use by a concurrent unbind): worth retrying after re-declaring.
pub(crate) fn is_not_found(error: &lapin::Error) -> bool {
    use lapin::protocol::{AMQPErrorKind, AMQPSoftError};
    matches!(error.kind(), lapin::ErrorKind::ProtocolError(e)
        if matches!(e.kind(), AMQPErrorKind::Soft(AMQPSoftError::NOTFOUND)))
}

/// Process-unique, hard-to-guess id (queue names, correlation ids).
pub(crate) fn unique_id() -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u64(n);
    h.write_u32(std::process::id());
    if let Ok(t) = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH) {
        h.write_u128(t.as_nanos());
    }
    format!("{:016x}{n:x}", h.finish())
}

/// A connection to RabbitMQ: cheap to clone; publishes, subscribes, requests.
#[derive(Clone)]
pub struct AmqpConnection {
    pub(crate) inner: Arc<Inner>,
}

impl std::fmt::Debug for AmqpConnection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AmqpConnection")
            .field("config", &self.inner.config)
            .field("closed", &self.inner.is_closed())
            .finish()
    }
}

impl AmqpConnection {
    /// The configuration this connection was made with.
    pub fn config(&self) -> &Config {
        &self.inner.config
    }

    /// How many times the connection has been established (1 until the first reconnect).
    pub fn generation(&self) -> u64 {
        self.inner.generation.load(Ordering::Acquire)
    }
}

impl Publisher for AmqpConnection {
    async fn publish(&self, message: OutgoingMessage) -> Result<()> {
        let inner = &self.inner;
        if inner.is_closed() {
            return Err(Error::Closed);
        }
        let target = publish_target(&inner.config, &message.address)?;
        let props = to_properties(
            &message,
            inner.config.persistent,
            target.rule.map(|r| &r.message),
        )?;
        // Retries on a fresh channel/connection: a publish whose confirm was lost may be
        // delivered twice (at-least-once), never silently dropped.
        let mut last = None;
        for _ in 0..3 {
            let live = inner.live().await?;
            match inner
                .publish_on(&live.publish, target, &message.payload, props.clone())
                .await
            {
                Ok(()) => return Ok(()),
                Err(PublishError::Transport(e)) => {
                    if inner.is_closed() {
                        return Err(Error::Closed);
                    }
                    tracing::debug!(error = %inner.config.scrub(&e.to_string()), "amqp publish failed; retrying");
                    last = Some(e);
                }
                Err(refused) => return Err(refused.refused(&target, "message")),
            }
        }
        Err(match last {
            Some(e) => inner.err("publishing", &e),
            None => Error::transport(NAME, "publishing failed"),
        })
    }

    async fn flush(&self) -> Result<()> {
        let inner = &self.inner;
        let live = inner.live().await?;
        if inner.config.publisher_confirms {
            live.publish
                .wait_for_confirms()
                .await
                .map_err(|e| inner.err("waiting for confirms", &e))?;
        }
        Ok(())
    }
}

impl ruststream::Connection for AmqpConnection {
    fn capabilities(&self) -> Capabilities {
        let c = &self.inner.config;
        let mut caps = Capabilities::NONE;
        caps.ack = true;
        caps.nack_requeue = c.queue.queue_type == QueueType::Quorum;
        caps.dead_letter = true;
        caps.headers = true;
        caps.queue_groups = true;
        caps.ordered = true;
        caps.durable = true;
        caps.request_reply = true;
        // The default exchange routes to the queue named by the routing key: no templates.
        caps.wildcards = !matches!(
            c.exchange_kind,
            ExchangeKind::Direct | ExchangeKind::Default
        );
        caps
    }

    async fn shutdown(self) -> Result<()> {
        let inner = &self.inner;
        if inner.closed.swap(true, Ordering::AcqRel) {
            return Ok(());
        }
        inner.shutdown.send_replace(true);
        let tasks: Vec<JoinHandle<()>> = match inner.tasks.lock() {
            Ok(mut tasks) => tasks.drain(..).collect(),
            Err(_) => Vec::new(),
        };
        for task in tasks {
            // Subscriptions clean up (cancel, delete their temporary queues) and end.
            if tokio::time::timeout(Duration::from_secs(5), task)
                .await
                .is_err()
            {
                tracing::warn!("amqp subscription did not stop within 5s");
            }
        }
        if let Ok(mut pending) = inner.pending.lock() {
            pending.clear();
        }
        let live = inner.live.lock().await.take();
        if let Some(live) = live {
            if inner.config.publisher_confirms && live.publish.status().connected() {
                let _ = live.publish.wait_for_confirms().await;
            }
            if live.connection.status().connected() {
                live.connection
                    .close(200, "shutdown".into())
                    .await
                    .map_err(|e| inner.err("closing", &e))?;
            }
        }
        Ok(())
    }
}
