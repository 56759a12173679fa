//! [`KafkaBroker`] and its [`KafkaConnection`]: one producer shared by every publish, one
//! consumer per subscription.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rdkafka::consumer::{Consumer, StreamConsumer};
use rdkafka::producer::{FutureProducer, FutureRecord, Producer};
use rdkafka::util::Timeout;
use rdkafka::{Offset, TopicPartitionList};
use ruststream::capability::{BatchSubscriber, Batched, Partitioned};
use ruststream::{
    Address, Broker, Capabilities, Connection, Error, OutgoingMessage, Publisher, Result,
    SubscribeOptions, Subscriber,
};
use tokio::sync::{OnceCell, mpsc, watch};
use tokio::task::JoinHandle;

use crate::Config;
use crate::headers::record_headers;
use crate::reply::Replies;
use crate::subscription::{
    self, Consuming, GroupContext, KafkaMessage, KafkaSubscription, SubShared, Tracker,
};
use crate::topic::{Topics, check_topic, template_regex};

/// A configured Kafka broker; [`Broker::connect`] opens the producer and checks that the
/// cluster answers.
#[derive(Debug, Clone)]
pub struct KafkaBroker {
    config: Config,
}

impl KafkaBroker {
    /// A broker for `config`.
    pub fn new(config: Config) -> Self {
        KafkaBroker { config }
    }
}

impl Broker for KafkaBroker {
    type Connection = KafkaConnection;

    fn name(&self) -> &'static str {
        "kafka"
    }

    async fn connect(self) -> Result<KafkaConnection> {
        let config = self.config;
        let producer: FutureProducer = config
            .producer_config()?
            .create()
            .map_err(|e| config.transport("producer", e))?;
        // librdkafka connects lazily: ask for metadata so a wrong address fails here.
        let probe = producer.clone();
        let timeout = config.request_timeout;
        tokio::task::spawn_blocking(move || probe.client().fetch_metadata(None, timeout))
            .await
            .map_err(|e| Error::transport("kafka", e))?
            .map_err(|e| {
                config.transport(&format!("connect to {}", config.bootstrap_servers), e)
            })?;
        let topics = Topics::new(&config)?;
        let (shutdown, _) = watch::channel(false);
        Ok(KafkaConnection {
            shared: Arc::new(Shared {
                config,
                producer,
                topics,
                closed: AtomicBool::new(false),
                shutdown,
                tasks: Mutex::new(Vec::new()),
                replies: OnceCell::new(),
            }),
        })
    }
}

/// What every clone of a connection (and every message it delivered) shares.
pub(crate) struct Shared {
    pub(crate) config: Config,
    producer: FutureProducer,
    pub(crate) topics: Topics,
    closed: AtomicBool,
    shutdown: watch::Sender<bool>,
    tasks: Mutex<Vec<JoinHandle<()>>>,
    pub(crate) replies: OnceCell<Arc<Replies>>,
}

impl Shared {
    pub(crate) fn is_closed(&self) -> bool {
        self.closed.load(Ordering::Acquire)
    }

    pub(crate) fn track(&self, task: JoinHandle<()>) {
        if let Ok(mut tasks) = self.tasks.lock() {
            tasks.retain(|t| !t.is_finished());
            tasks.push(task);
        }
    }

    pub(crate) fn on_shutdown(&self) -> watch::Receiver<bool> {
        self.shutdown.subscribe()
    }

    /// Publish, without the closed check (dead letters of messages settled late still go out
    /// while the producer lives).
    pub(crate) async fn send(&self, mut message: OutgoingMessage) -> Result<()> {
        if let Some(reply) = &message.reply_to {
            if let std::borrow::Cow::Owned(t) = self.config.topic_of(reply)? {
                message.reply_to = Some(t);
            }
        }
        let topic = self.config.topic_of(&message.address)?;
        check_topic(&topic)?;
        self.topics.ensure(&self.config, &topic).await?;
        let mut record = FutureRecord::<[u8], [u8]>::to(&topic).payload(&message.payload[..]);
        if let Some(key) = &message.key {
            record = record.key(&key[..]);
        }
        if let Some(headers) = record_headers(&message) {
            record = record.headers(headers);
        }
        let sent = self
            .producer
            .send(record, Timeout::After(self.config.delivery_timeout))
            .await;
        match sent {
            Ok(_) => {
                drop(topic);
                ruststream::client::recycle_address(message.address);
                Ok(())
            }
            Err((e, _)) => Err(self
                .config
                .transport(&format!("publish to `{}`", message.address), e)),
        }
    }

    pub(crate) async fn publish(&self, message: OutgoingMessage) -> Result<()> {
        if self.is_closed() {
            return Err(Error::Closed);
        }
        self.send(message).await
    }
}

/// A live connection: cheap to clone; every clone shares the producer and the subscriptions'
/// lifecycle.
#[derive(Clone)]
pub struct KafkaConnection {
    pub(crate) shared: Arc<Shared>,
}

impl std::fmt::Debug for KafkaConnection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KafkaConnection")
            .field("config", &self.shared.config)
            .field("closed", &self.shared.is_closed())
            .finish_non_exhaustive()
    }
}

impl KafkaConnection {
    /// The configuration this connection was opened with.
    pub fn config(&self) -> &Config {
        &self.shared.config
    }

    /// Create `address`'s topic now when it is missing (as publishing and subscribing do on
    /// first use), for peers that must see it before anything is published.
    ///
    /// # Errors
    /// [`Error::Closed`] after shutdown, [`Error::InvalidAddress`] for names Kafka refuses,
    /// [`Error::Transport`] when the server refuses to create it.
    pub async fn create_topic(&self, address: &str) -> Result<()> {
        if self.shared.is_closed() {
            return Err(Error::Closed);
        }
        let config = &self.shared.config;
        let topic = config.topic_of(address)?;
        check_topic(&topic)?;
        self.shared.topics.ensure(config, &topic).await
    }

    fn group_for(&self, address: &Address, options: &SubscribeOptions) -> Option<String> {
        options
            .queue_group
            .clone()
            .or_else(|| options.durable.clone())
            .or_else(|| self.shared.config.group_of(address).map(str::to_owned))
            .or_else(|| self.shared.config.group_id.clone())
    }
}

impl Publisher for KafkaConnection {
    async fn publish(&self, message: OutgoingMessage) -> Result<()> {
        self.shared.publish(message).await
    }

    async fn flush(&self) -> Result<()> {
        if self.shared.is_closed() {
            return Err(Error::Closed);
        }
        flush(&self.shared).await
    }
}

async fn flush(shared: &Shared) -> Result<()> {
    let producer = shared.producer.clone();
    let timeout = shared.config.delivery_timeout;
    tokio::task::spawn_blocking(move || producer.flush(timeout))
        .await
        .map_err(|e| Error::transport("kafka", e))?
        .map_err(|e| shared.config.transport("flush", e))
}

/// A fresh, unguessable-enough suffix for private group and inbox names.
pub(crate) fn unique_suffix() -> String {
    use std::hash::{BuildHasher, Hasher};
    use std::sync::atomic::AtomicU64;
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u64(COUNTER.fetch_add(1, Ordering::Relaxed));
    h.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or_default(),
    );
    h.write_u32(std::process::id());
    format!("{:016x}", h.finish())
}

impl Subscriber for KafkaConnection {
    type Message = KafkaMessage;
    type Subscription = KafkaSubscription;

    async fn subscribe(
        &self,
        address: &Address,
        options: SubscribeOptions,
    ) -> Result<KafkaSubscription> {
        let shared = &self.shared;
        if shared.is_closed() {
            return Err(Error::Closed);
        }
        let config = &shared.config;
        // Groups from bindings name the application's addresses.
        let group = self.group_for(address, &options);
        let mapped;
        let address = match config.topic_of(address.as_str())? {
            std::borrow::Cow::Borrowed(_) => address,
            std::borrow::Cow::Owned(t) => {
                mapped = Address::parse(&t).map_err(|e| Error::InvalidAddress {
                    address: address.as_str().to_owned(),
                    reason: e.to_string().into(),
                })?;
                &mapped
            }
        };
        let topic = address.is_concrete().then(|| address.as_str().to_owned());
        let pattern = match &topic {
            Some(t) => {
                check_topic(t)?;
                shared.topics.ensure(config, t).await?;
                None
            }
            None => Some(template_regex(address)?),
        };
        let tracker = Arc::new(Tracker::default());
        let (assigned_tx, mut assigned) = watch::channel(0u64);
        let context = GroupContext {
            tracker: tracker.clone(),
            assigned: assigned_tx,
        };
        // A template without a group needs a group to follow new topics: a private one that
        // starts every matching topic at its beginning and commits nothing. (librdkafka wants a
        // group id even for manual assignment; that one is private too and never joins.)
        let private_group = (group.is_none() && pattern.is_some())
            .then(|| format!("{}.{}", config.client_id, unique_suffix()));
        let unjoined = format!("{}.assign.{}", config.client_id, unique_suffix());
        let mut consumer_config = config.consumer_config(Some(
            group
                .as_deref()
                .or(private_group.as_deref())
                .unwrap_or(&unjoined),
        ))?;
        if private_group.is_some() {
            consumer_config.set("auto.offset.reset", "earliest");
        }
        let consumer: StreamConsumer<GroupContext> =
            consumer_config
                .create_with_context(context)
                .map_err(|e| config.transport("consumer", e))?;
        let consumer = Arc::new(consumer);
        let commits = group.is_some();
        let matching = if pattern.is_some() {
            matching_partitions(&consumer, address, config, private_group.is_some()).await
        } else {
            0
        };
        if commits || private_group.is_some() {
            let subscription = pattern.as_deref().or(topic.as_deref()).unwrap_or_default();
            consumer
                .subscribe(&[subscription])
                .map_err(|e| config.transport(&format!("subscribe to `{address}`"), e))?;
        } else if let Some(t) = &topic {
            assign_at_end(&consumer, t, config).await?;
        }
        let (redeliver, redelivered) = mpsc::unbounded_channel();
        let sub = Arc::new(SubShared {
            tracker,
            conn: shared.clone(),
            redeliver,
            dead_letter: options.dead_letter.clone(),
            max_deliver: options.max_deliver,
        });
        let prefetch = options.prefetch.map_or(config.prefetch, |p| p as usize);
        let (stream, task) = subscription::start(
            Consuming {
                consumer,
                commits,
                sub,
                commit_interval: config.commit_interval,
            },
            prefetch,
            redelivered,
            shared.on_shutdown(),
        );
        shared.track(task);
        if pattern.is_some() && matching == 0 {
            // A pattern that matches nothing yet gets no assignment until a topic appears;
            // records of topics created later are read from their beginning, so nothing is
            // missed.
            let brief = config.request_timeout.min(Duration::from_secs(2));
            let _ = tokio::time::timeout(brief, assigned.wait_for(|n| *n > 0)).await;
        } else if commits || matching > 0 {
            // Active once the group handed out its partitions.
            let wait = config.session_timeout + config.request_timeout;
            if tokio::time::timeout(wait, assigned.wait_for(|n| *n > 0))
                .await
                .is_err()
            {
                return Err(Error::Timeout(
                    format!("kafka: no partition assignment for `{address}` within {wait:?}")
                        .into(),
                ));
            }
        }
        Ok(stream)
    }
}

/// The partitions of the topics that already match `template`. With `commit_ends` (a private
/// template subscription, which sees what is published after it started) the private group's
/// offsets are committed at their current ends before it joins, so those topics start there
/// while topics created later start at their beginning. When the server refuses, those topics
/// are read from their beginning instead, with a warning.
async fn matching_partitions(
    consumer: &Arc<StreamConsumer<GroupContext>>,
    template: &Address,
    config: &Config,
    commit_ends: bool,
) -> usize {
    let consumer = consumer.clone();
    let shown = template.to_string();
    let template = template.clone();
    let timeout = config.request_timeout;
    let result = tokio::task::spawn_blocking(move || -> rdkafka::error::KafkaResult<usize> {
        let metadata = consumer.fetch_metadata(None, timeout)?;
        let mut tpl = TopicPartitionList::new();
        for t in metadata
            .topics()
            .iter()
            .filter(|t| template.matches(t.name()))
        {
            for p in t.partitions() {
                let high = if commit_ends {
                    consumer.fetch_watermarks(t.name(), p.id(), timeout)?.1
                } else {
                    0
                };
                tpl.add_partition_offset(t.name(), p.id(), Offset::Offset(high))?;
            }
        }
        if commit_ends && tpl.count() > 0 {
            consumer.commit(&tpl, rdkafka::consumer::CommitMode::Sync)?;
        }
        Ok(tpl.count())
    })
    .await;
    match result {
        Ok(Ok(n)) => n,
        Ok(Err(e)) => {
            tracing::warn!(
                error = %config.scrub(e),
                "kafka: could not look up (or start at their end) the existing topics of `{shown}`; they are read from their beginning"
            );
            0
        }
        Err(e) => {
            tracing::warn!(error = %e, "kafka: start offsets task failed");
            0
        }
    }
}

/// Assign every partition of `topic` at its current end: the subscription sees what is
/// published from now on, with no group.
async fn assign_at_end(
    consumer: &Arc<StreamConsumer<GroupContext>>,
    topic: &str,
    config: &Config,
) -> Result<()> {
    let consumer = consumer.clone();
    let topic = topic.to_owned();
    let timeout = config.request_timeout;
    let result = tokio::task::spawn_blocking(move || -> rdkafka::error::KafkaResult<()> {
        let metadata = consumer.fetch_metadata(Some(&topic), timeout)?;
        let mut tpl = TopicPartitionList::new();
        for t in metadata.topics() {
            for p in t.partitions() {
                let (_, high) = consumer.fetch_watermarks(&topic, p.id(), timeout)?;
                tpl.add_partition_offset(&topic, p.id(), Offset::Offset(high))?;
            }
        }
        consumer.assign(&tpl)
    })
    .await
    .map_err(|e| Error::transport("kafka", e))?;
    result.map_err(|e| config.transport("assign partitions", e))
}

impl Connection for KafkaConnection {
    fn capabilities(&self) -> Capabilities {
        let mut c = Capabilities::NONE;
        c.ack = true;
        c.nack_requeue = true;
        c.dead_letter = true;
        c.headers = true;
        c.queue_groups = true;
        // Kafka orders per partition: one subscription sees publish order only when its
        // topics have one partition.
        c.ordered = self.shared.config.partitions == 1
            && self
                .shared
                .config
                .topics
                .values()
                .all(|t| t.partitions.is_none_or(|p| p == 1));
        c.ordered_per_key = true;
        c.durable = true;
        c.request_reply = true;
        c.batch = true;
        c.delayed_redelivery = true;
        c.wildcards = true;
        c
    }

    async fn shutdown(self) -> Result<()> {
        let shared = &self.shared;
        if shared.closed.swap(true, Ordering::AcqRel) {
            return Ok(());
        }
        let _ = shared.shutdown.send(true);
        let tasks = shared
            .tasks
            .lock()
            .map(|mut t| std::mem::take(&mut *t))
            .unwrap_or_default();
        for task in tasks {
            let _ = task.await;
        }
        if let Some(replies) = shared.replies.get() {
            shared.topics.delete(&shared.config, &replies.topic).await;
        }
        flush(shared).await
    }
}

impl BatchSubscriber for KafkaConnection {
    type Batches = Batched<KafkaSubscription, KafkaMessage>;

    async fn subscribe_batch(
        &self,
        address: &Address,
        options: SubscribeOptions,
        max: usize,
        max_wait: Duration,
    ) -> Result<Self::Batches> {
        let sub = self.subscribe(address, options).await?;
        Ok(Batched::new(sub, max, max_wait))
    }
}

impl Partitioned for KafkaConnection {
    async fn partitions(&self, address: &str) -> Result<u32> {
        check_topic(address)?;
        let producer = self.shared.producer.clone();
        let topic = address.to_owned();
        let timeout = self.shared.config.request_timeout;
        let metadata = tokio::task::spawn_blocking(move || {
            producer.client().fetch_metadata(Some(&topic), timeout)
        })
        .await
        .map_err(|e| Error::transport("kafka", e))?
        .map_err(|e| self.shared.config.transport("metadata", e))?;
        let n = metadata
            .topics()
            .iter()
            .find(|t| t.name() == address)
            .map_or(0, |t| t.partitions().len());
        Ok(u32::try_from(n).unwrap_or(u32::MAX))
    }
}
