//! Subscriptions: queue declaration from options, consuming, reconnect, delivered messages.

use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use futures_core::Stream;
use futures_util::StreamExt;
use lapin::options::{
    BasicAckOptions, BasicCancelOptions, BasicConsumeOptions, BasicNackOptions, BasicQosOptions,
    BasicRejectOptions, QueueBindOptions, QueueDeclareOptions, QueueDeleteOptions,
};
use lapin::types::{AMQPValue, FieldTable, ShortString};
use lapin::{Channel, Consumer};
use ruststream::{Address, Error, Headers, IncomingMessage, Result, SubscribeOptions, Subscriber};
use tokio::sync::mpsc;

use crate::binding::AddressBinding;
use crate::config::{ExchangeKind, QueueType};
use crate::connection::{AmqpConnection, Inner, is_not_found, queue_declare_options, unique_id};
use crate::headers::from_properties;
use crate::topology::{Binding, MAX_KEY_LEN, binding_for};

/// Everything needed to (re-)declare a subscription's queue and consumer.
#[derive(Debug, Clone)]
pub(crate) struct Plan {
    address: Address,
    binding: Binding,
    /// The exchange the queue is bound to (`None`: consumed directly, an `is: queue` channel or
    /// a default-exchange queue) and the binding arguments (headers exchanges).
    exchange: Option<(String, FieldTable)>,
    /// Consume without acknowledgements (operation binding `ack: false`).
    no_ack: bool,
    /// The address delivered messages report when it is not their routing key (a queue
    /// consumed directly carries the queue's name there).
    fixed_address: Option<String>,
    /// `None`: server-named (exclusive classic queue).
    queue: Option<String>,
    durable: bool,
    exclusive: bool,
    auto_delete: bool,
    arguments: FieldTable,
    /// Delete the queue when the subscription ends (generated quorum queue names).
    delete_on_end: bool,
    /// The queue dead-letters, so `nack(false)` must ack to drop.
    dead_letters: bool,
    prefetch: u16,
}

fn queue_name_error(name: &str) -> Error {
    Error::Config(format!(
        "queue name `{name}` is longer than 255 bytes (AMQP limit)"
    ))
}

fn millis(d: Duration) -> AMQPValue {
    AMQPValue::LongLongInt(i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

impl Plan {
    pub(crate) fn new(
        inner: &Inner,
        address: &Address,
        options: &SubscribeOptions,
    ) -> Result<Self> {
        let c = &inner.config;
        let rule = c.binding_for(address.as_str());
        let (exchange, kind) = match rule {
            Some(r) if r.is_queue => ("", ExchangeKind::Default),
            Some(AddressBinding {
                exchange: Some(e), ..
            }) => (e.name.as_str(), e.kind),
            _ => (c.exchange.as_str(), c.exchange_kind),
        };
        let kind = if exchange.is_empty() {
            ExchangeKind::Default
        } else {
            kind
        };
        let binding = if rule.is_some_and(|r| r.is_queue) {
            // The channel is the queue: every message in it is the subscription's.
            Binding {
                pattern: String::new(),
                filter: false,
            }
        } else {
            binding_for(address, kind)?
        };
        let quorum = c.queue.queue_type == QueueType::Quorum;
        let mut arguments = FieldTable::default();
        if quorum {
            arguments.insert(
                "x-queue-type".into(),
                AMQPValue::LongString("quorum".into()),
            );
        }
        if let Some(ttl) = c.queue.message_ttl {
            arguments.insert("x-message-ttl".into(), millis(ttl));
        }
        let mut dead_letters = false;
        match (&c.dead_letter_exchange, &options.dead_letter) {
            (Some(dlx), routing_key) => {
                arguments.insert(
                    "x-dead-letter-exchange".into(),
                    AMQPValue::LongString(dlx.as_str().into()),
                );
                if let Some(key) = routing_key {
                    arguments.insert(
                        "x-dead-letter-routing-key".into(),
                        AMQPValue::LongString(key.as_str().into()),
                    );
                }
                dead_letters = true;
            }
            (None, Some(key)) => {
                if key.len() > MAX_KEY_LEN {
                    return Err(Error::InvalidAddress {
                        address: key.clone(),
                        reason: "longer than 255 bytes (AMQP routing key limit)".into(),
                    });
                }
                arguments.insert(
                    "x-dead-letter-exchange".into(),
                    AMQPValue::LongString(exchange.into()),
                );
                arguments.insert(
                    "x-dead-letter-routing-key".into(),
                    AMQPValue::LongString(key.as_str().into()),
                );
                dead_letters = true;
            }
            (None, None) => {}
        }
        if let Some(max) = options.max_deliver {
            if !quorum {
                return Err(Error::unsupported(
                    "max_deliver needs quorum queues (QueueType::Quorum); classic queues do \
                     not count deliveries",
                ));
            }
            let limit = i64::from(max.saturating_sub(1));
            arguments.insert("x-delivery-limit".into(), AMQPValue::LongLongInt(limit));
        }
        let prefetch = match options.prefetch {
            Some(n) => u16::try_from(n).unwrap_or(u16::MAX),
            None => c.prefetch,
        };
        let named = |name: String| -> Result<String> {
            if name.len() > MAX_KEY_LEN {
                return Err(queue_name_error(&name));
            }
            Ok(name)
        };
        let bind_arguments = if kind == ExchangeKind::Headers {
            let mut args = FieldTable::default();
            args.insert("x-match".into(), AMQPValue::LongString("all".into()));
            args
        } else {
            FieldTable::default()
        };
        let mut plan = Plan {
            address: address.clone(),
            binding,
            exchange: (kind != ExchangeKind::Default)
                .then(|| (exchange.to_owned(), bind_arguments)),
            no_ack: rule.is_some_and(|r| !r.ack),
            fixed_address: None,
            queue: None,
            durable: false,
            exclusive: true,
            auto_delete: true,
            arguments,
            delete_on_end: false,
            dead_letters,
            prefetch,
        };
        let named_queue = rule.and_then(|r| {
            r.queue
                .as_ref()
                .filter(|q| q.name.is_some() || plan.exchange.is_none())
                .map(|q| (r, q))
        });
        if plan.exchange.is_none() {
            // A queue the channel is or the default exchange routes to: named by the binding,
            // else by the (concrete) address; declared as the binding says, shared.
            let name = match rule {
                Some(r) => r.queue_name(address.as_str()),
                None => address.as_str(),
            };
            if !address.is_concrete() && name == address.as_str() {
                return Err(Error::InvalidAddress {
                    address: address.as_str().to_owned(),
                    reason: "a queue cannot be named by a template with parameters; name it in \
                             the channel's amqp queue binding"
                        .into(),
                });
            }
            let declare = queue_declare_options(named_queue.map(|(_, q)| q));
            if address.is_concrete() && name != address.as_str() {
                plan.fixed_address = Some(address.as_str().to_owned());
            }
            plan.queue = Some(named(name.to_owned())?);
            plan.durable = declare.durable;
            plan.exclusive = declare.exclusive;
            plan.auto_delete = declare.auto_delete;
        } else if let Some((_, q)) = named_queue {
            let declare = queue_declare_options(Some(q));
            plan.queue = Some(named(q.name.clone().unwrap_or_default())?);
            plan.durable = declare.durable;
            plan.exclusive = declare.exclusive;
            plan.auto_delete = declare.auto_delete;
        } else if let Some(durable) = &options.durable {
            plan.queue = Some(named(durable.clone())?);
            plan.durable = true;
            plan.exclusive = false;
            plan.auto_delete = false;
        } else if let Some(group) = &options.queue_group {
            let name = format!("{exchange}/{}/{group}", address.as_str());
            plan.queue = Some(named(name)?);
            plan.durable = c.queue.durable || quorum;
            plan.exclusive = false;
            plan.auto_delete = !plan.durable;
        } else if quorum {
            // Quorum queues cannot be exclusive or auto-delete: a unique name, deleted when the
            // subscription ends and expiring if the process dies first.
            plan.queue = Some(format!("{exchange}/sub/{}", unique_id()));
            plan.durable = true;
            plan.exclusive = false;
            plan.auto_delete = false;
            plan.delete_on_end = true;
            if c.queue.expires.is_none() {
                plan.arguments
                    .insert("x-expires".into(), millis(Duration::from_secs(60)));
            }
        }
        if plan.exchange.is_none() || named_queue.is_some() {
            // A queue the binding describes is declared as it says (and as on connect, and as
            // other clients of the document declare it): no arguments of the connection's
            // defaults (queue type, TTLs, its dead-letter exchange), only what this
            // subscription asks for.
            let keep: &[&str] = match (&options.dead_letter, options.max_deliver) {
                (Some(_), Some(_)) => &[
                    "x-dead-letter-exchange",
                    "x-dead-letter-routing-key",
                    "x-delivery-limit",
                ],
                (Some(_), None) => &["x-dead-letter-exchange", "x-dead-letter-routing-key"],
                (None, Some(_)) => &["x-delivery-limit"],
                (None, None) => &[],
            };
            let mut kept = FieldTable::default();
            for (key, value) in plan.arguments.inner() {
                if keep.contains(&key.as_str()) {
                    kept.insert(key.clone(), value.clone());
                }
            }
            plan.arguments = kept;
            plan.dead_letters = !keep.is_empty() && options.dead_letter.is_some();
        } else if plan.queue.is_some()
            && let Some(expires) = c.queue.expires
        {
            plan.arguments.insert("x-expires".into(), millis(expires));
        }
        Ok(plan)
    }

    /// Open a channel, declare and bind the queue, start consuming.
    async fn open(&self, inner: &Inner, connection: &lapin::Connection) -> lapin::Result<Open> {
        let channel = connection.create_channel().await?;
        let result = self.setup(inner, &channel).await;
        if result.is_err() && channel.status().connected() {
            let _ = channel.close(200, "setup failed".into()).await;
        }
        let (queue, consumer) = result?;
        Ok(Open {
            channel,
            consumer,
            queue,
        })
    }

    async fn setup(
        &self,
        inner: &Inner,
        channel: &Channel,
    ) -> lapin::Result<(ShortString, Consumer)> {
        if self.prefetch > 0 {
            channel
                .basic_qos(self.prefetch, BasicQosOptions::default())
                .await?;
        }
        let options = QueueDeclareOptions {
            durable: self.durable,
            exclusive: self.exclusive,
            auto_delete: self.auto_delete,
            ..QueueDeclareOptions::default()
        };
        // Re-declared here too: an auto-delete exchange may have gone with its last binding.
        inner.declare_exchanges(channel).await?;
        let name: ShortString = self.queue.as_deref().unwrap_or("").into();
        let queue = channel
            .queue_declare(name, options, self.arguments.clone())
            .await?;
        let queue = queue.name().clone();
        if let Some((exchange, arguments)) = &self.exchange {
            channel
                .queue_bind(
                    queue.clone(),
                    exchange.as_str().into(),
                    self.binding.pattern.as_str().into(),
                    QueueBindOptions::default(),
                    arguments.clone(),
                )
                .await?;
        }
        let consumer = channel
            .basic_consume(
                queue.clone(),
                "".into(),
                BasicConsumeOptions {
                    no_ack: self.no_ack,
                    ..BasicConsumeOptions::default()
                },
                FieldTable::default(),
            )
            .await?;
        Ok((queue, consumer))
    }
}

struct Open {
    channel: Channel,
    consumer: Consumer,
    queue: ShortString,
}

impl Subscriber for AmqpConnection {
    type Message = AmqpMessage;
    type Subscription = AmqpSubscription;

    async fn subscribe(
        &self,
        address: &Address,
        options: SubscribeOptions,
    ) -> Result<AmqpSubscription> {
        let inner = &self.inner;
        if inner.is_closed() {
            return Err(Error::Closed);
        }
        let plan = Plan::new(inner, address, &options)?;
        let mut tries = 0;
        let open = loop {
            let live = inner.live().await?;
            match plan.open(inner, &live.connection).await {
                Ok(open) => break open,
                // An auto-delete exchange went away between declare and bind: declare again.
                Err(e) if is_not_found(&e) && tries < 3 => tries += 1,
                Err(e) => return Err(inner.err(&format!("subscribing to `{address}`"), &e)),
            }
        };
        let capacity = usize::from(plan.prefetch.clamp(1, 1024));
        let (tx, rx) = mpsc::channel(capacity);
        let task = tokio::spawn(run(self.inner.clone(), plan, open, tx));
        inner.track(task);
        Ok(AmqpSubscription { rx })
    }
}

/// Forward deliveries into the subscription, re-subscribing after a connection loss.
async fn run(inner: Arc<Inner>, plan: Plan, mut open: Open, tx: mpsc::Sender<Result<AmqpMessage>>) {
    loop {
        let next = tokio::select! {
            next = open.consumer.next() => next,
            _ = tx.closed() => break,
            _ = inner.shutdown_signal() => break,
        };
        match next {
            Some(Ok(delivery)) => {
                if plan.binding.filter && !plan.address.matches(delivery.routing_key.as_str()) {
                    // Bound wider than the template (see `topology`): not ours.
                    if !plan.no_ack {
                        let _ = delivery.acker.ack(BasicAckOptions::default()).await;
                    }
                    continue;
                }
                let mut message =
                    AmqpMessage::new(&inner, delivery, plan.dead_letters, plan.no_ack);
                if let Some(address) = &plan.fixed_address {
                    message.address.clone_from(address);
                }
                tokio::select! {
                    sent = tx.send(Ok(message)) => if sent.is_err() { break },
                    _ = inner.shutdown_signal() => break,
                }
            }
            Some(Err(_)) | None => {
                if inner.is_closed() {
                    break;
                }
                tracing::warn!(address = %plan.address, "amqp consumer ended; re-subscribing");
                if open.channel.status().connected() {
                    // Cancelled by the server (queue deleted, …) on a live channel: release it.
                    let _ = open.channel.close(200, "re-subscribing".into()).await;
                }
                match resubscribe(&inner, &plan).await {
                    Ok(new) => open = new,
                    Err(Error::Closed) => break,
                    Err(e) => {
                        let _ = tx.send(Err(e)).await;
                        break;
                    }
                }
            }
        }
    }
    close(&plan, &open).await;
}

async fn resubscribe(inner: &Inner, plan: &Plan) -> Result<Open> {
    let mut delay = inner.config.reconnect.initial_delay;
    let mut failures = 0u32;
    loop {
        let live = inner.live().await?;
        match plan.open(inner, &live.connection).await {
            Ok(open) => {
                tracing::info!(address = %plan.address, "amqp re-subscribed");
                return Ok(open);
            }
            Err(e) => {
                failures += 1;
                if failures >= 10 {
                    return Err(inner.err(&format!("re-subscribing to `{}`", plan.address), &e));
                }
            }
        }
        inner.sleep(delay).await?;
        delay = (delay * 2).min(inner.config.reconnect.max_delay);
    }
}

async fn close(plan: &Plan, open: &Open) {
    if !open.channel.status().connected() {
        return;
    }
    let tag = open.consumer.tag();
    let _ = open
        .channel
        .basic_cancel(tag, BasicCancelOptions::default())
        .await;
    if plan.delete_on_end {
        let _ = open
            .channel
            .queue_delete(open.queue.clone(), QueueDeleteOptions::default())
            .await;
    }
    let _ = open.channel.close(200, "subscription ended".into()).await;
}

/// A subscription: a stream of [`AmqpMessage`]s. It ends when the connection shuts down;
/// dropping it cancels the consumer (unsettled messages go back to the queue).
#[derive(Debug)]
pub struct AmqpSubscription {
    rx: mpsc::Receiver<Result<AmqpMessage>>,
}

impl Stream for AmqpSubscription {
    type Item = Result<AmqpMessage>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        self.rx.poll_recv(cx)
    }
}

/// A message delivered by RabbitMQ.
///
/// [`attempt`](IncomingMessage::attempt) is `x-delivery-count + 1` on quorum queues; on
/// classic queues it is 1 for a first delivery and 2 for any redelivery (the `redelivered`
/// flag is all AMQP tells).
pub struct AmqpMessage {
    payload: Bytes,
    headers: Headers,
    address: String,
    reply_to: Option<String>,
    correlation_id: Option<String>,
    attempt: u32,
    redelivered: bool,
    dead_letters: bool,
    /// Consumed without acknowledgements: settling is a no-op.
    auto_acked: bool,
    acker: lapin::Acker,
    inner: Arc<Inner>,
}

impl std::fmt::Debug for AmqpMessage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AmqpMessage")
            .field("address", &self.address)
            .field("headers", &self.headers)
            .field("payload_len", &self.payload.len())
            .field("attempt", &self.attempt)
            .finish()
    }
}

impl AmqpMessage {
    fn new(
        inner: &Arc<Inner>,
        delivery: lapin::message::Delivery,
        dead_letters: bool,
        auto_acked: bool,
    ) -> Self {
        let (headers, delivery_count) = from_properties(&delivery.properties);
        let attempt = match delivery_count {
            Some(n) => u32::try_from(n.saturating_add(1)).unwrap_or(u32::MAX),
            None if delivery.redelivered => 2,
            None => 1,
        };
        let props = &delivery.properties;
        AmqpMessage {
            reply_to: props.reply_to().as_ref().map(|s| s.as_str().to_owned()),
            correlation_id: props
                .correlation_id()
                .as_ref()
                .map(|s| s.as_str().to_owned())
                .or_else(|| {
                    headers
                        .get(ruststream::message::names::CORRELATION_ID)
                        .map(str::to_owned)
                }),
            address: delivery.routing_key.as_str().to_owned(),
            payload: Bytes::from(delivery.data),
            headers,
            attempt,
            redelivered: delivery.redelivered,
            dead_letters,
            auto_acked,
            acker: delivery.acker,
            inner: inner.clone(),
        }
    }

    /// Whether RabbitMQ flagged this delivery as a redelivery.
    pub fn redelivered(&self) -> bool {
        self.redelivered
    }

    fn settled(&self, what: &str, result: lapin::Result<bool>) -> Result<()> {
        match result {
            Ok(true) => Ok(()),
            Ok(false) if self.inner.is_closed() => Err(Error::Closed),
            Ok(false) => Err(Error::transport(
                crate::connection::NAME,
                format!("cannot {what}: the channel closed; the broker will redeliver the message"),
            )),
            Err(_) if self.inner.is_closed() => Err(Error::Closed),
            Err(e) => Err(self.inner.err(what, &e)),
        }
    }
}

impl IncomingMessage for AmqpMessage {
    fn payload(&self) -> &[u8] {
        &self.payload
    }

    fn headers(&self) -> &Headers {
        &self.headers
    }

    fn address(&self) -> &str {
        &self.address
    }

    fn reply_to(&self) -> Option<&str> {
        self.reply_to.as_deref()
    }

    fn correlation_id(&self) -> Option<&str> {
        self.correlation_id.as_deref()
    }

    fn attempt(&self) -> u32 {
        self.attempt
    }

    async fn ack(self) -> Result<()> {
        if self.auto_acked {
            return Ok(());
        }
        let r = self.acker.ack(BasicAckOptions::default()).await;
        self.settled("ack", r)
    }

    /// With `requeue`, RabbitMQ delivers it again. Without, it is dropped; on a queue with a
    /// dead-letter exchange that means an ack, since AMQP `nack` would dead-letter it
    /// (dead-lettering is [`reject`](IncomingMessage::reject)'s job).
    async fn nack(self, requeue: bool) -> Result<()> {
        if self.auto_acked {
            return if requeue {
                Err(Error::unsupported(
                    "requeue: the operation's amqp binding says `ack: false`, so RabbitMQ \
                     considered the message settled on delivery",
                ))
            } else {
                Ok(())
            };
        }
        let r = if !requeue && self.dead_letters {
            self.acker.ack(BasicAckOptions::default()).await
        } else {
            let options = BasicNackOptions {
                requeue,
                ..BasicNackOptions::default()
            };
            self.acker.nack(options).await
        };
        self.settled("nack", r)
    }

    async fn reject(self) -> Result<()> {
        if self.auto_acked {
            return Ok(());
        }
        let r = self
            .acker
            .reject(BasicRejectOptions { requeue: false })
            .await;
        self.settled("reject", r)
    }
}
