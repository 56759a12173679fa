//! Subscriptions: one librdkafka consumer each, offsets committed only up to what was settled.
//!
//! A consumer task reads records and hands them to the [`KafkaSubscription`] stream through a
//! bounded channel (back-pressure: `prefetch`). Every delivered offset is *pending* until its
//! message is settled; per partition, the committable offset is the lowest pending one (or
//! the next after the highest delivered when nothing is pending), so out-of-order completions
//! never commit a gap. Commits go out every `commit_interval`, when partitions are revoked
//! (before another member takes them), when the subscription ends and at shutdown.
//! `nack(requeue)` keeps the offset pending and hands the same record back to the stream
//! with `attempt() + 1`; a record lost in a crash is redelivered by Kafka from the last
//! commit (attempt 1 again).

use std::collections::{HashMap, VecDeque};
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context as TaskContext, Poll};
use std::time::Duration;

use bytes::Bytes;
use futures_core::Stream;
use rdkafka::consumer::{
    BaseConsumer, CommitMode, Consumer, ConsumerContext, Rebalance, StreamConsumer,
};
use rdkafka::message::{BorrowedMessage, Headers as _, Message as _};
use rdkafka::types::RDKafkaErrorCode;
use rdkafka::{ClientContext, Offset, TopicPartitionList};
use ruststream::capability::DelayedRedelivery;
use ruststream::{Headers, IncomingMessage, OutgoingMessage, Result};
use tokio::sync::{mpsc, watch};

use crate::connection::Shared;
use crate::headers::{CORRELATION_ID, CORRELATION_ID_DASHED, REPLY_TO};

/// Offsets of one partition.
#[derive(Debug, Default)]
struct Partition {
    /// Delivered offsets in order, each with whether it is settled; settled ones leave from the
    /// front (offsets arrive in order per partition, so this is a queue).
    pending: VecDeque<(i64, bool)>,
    /// One past the highest delivered offset.
    next: i64,
    /// Last committed offset (or where consumption started).
    committed: i64,
    /// Bumped when the partition is revoked: settlements of older deliveries are ignored.
    epoch: u64,
    /// Revoked: the next delivery starts the offsets afresh.
    fresh: bool,
}

impl Partition {
    fn committable(&self) -> i64 {
        self.pending.front().map_or(self.next, |(o, _)| *o)
    }
}

/// Pending and committable offsets of a subscription, shared by its messages.
#[derive(Debug, Default)]
pub(crate) struct Tracker {
    parts: Mutex<HashMap<(Arc<str>, i32), Partition>>,
}

impl Tracker {
    fn delivered(&self, topic: &Arc<str>, partition: i32, offset: i64) -> u64 {
        let Ok(mut parts) = self.parts.lock() else {
            return 0;
        };
        let p = parts
            .entry((topic.clone(), partition))
            .or_insert_with(|| Partition {
                next: offset,
                committed: offset,
                ..Partition::default()
            });
        if p.fresh {
            p.fresh = false;
            p.next = offset;
            p.committed = offset;
        }
        match p.pending.back() {
            Some((last, _)) if *last >= offset => {
                // Out of order (a refetch): keep the queue sorted and without duplicates.
                if let Err(i) = p.pending.binary_search_by_key(&offset, |(o, _)| *o) {
                    p.pending.insert(i, (offset, false));
                }
            }
            _ => p.pending.push_back((offset, false)),
        }
        p.next = p.next.max(offset + 1);
        p.epoch
    }

    fn settled(&self, topic: &Arc<str>, partition: i32, offset: i64, epoch: u64) {
        if let Ok(mut parts) = self.parts.lock() {
            if let Some(p) = parts.get_mut(&(topic.clone(), partition)) {
                if p.epoch == epoch {
                    if let Ok(i) = p.pending.binary_search_by_key(&offset, |(o, _)| *o) {
                        p.pending[i].1 = true;
                    }
                    while p.pending.front().is_some_and(|(_, done)| *done) {
                        p.pending.pop_front();
                    }
                }
            }
        }
    }

    /// Offsets to commit for partitions (all, or only those in `only`) that moved on.
    fn to_commit(&self, only: Option<&TopicPartitionList>) -> TopicPartitionList {
        let mut tpl = TopicPartitionList::new();
        if let Ok(parts) = self.parts.lock() {
            for ((topic, partition), p) in parts.iter() {
                if only.is_some_and(|l| l.find_partition(topic, *partition).is_none()) {
                    continue;
                }
                let at = p.committable();
                if at > p.committed {
                    let _ = tpl.add_partition_offset(topic, *partition, Offset::Offset(at));
                }
            }
        }
        tpl
    }

    fn committed(&self, tpl: &TopicPartitionList) {
        if let Ok(mut parts) = self.parts.lock() {
            for e in tpl.elements() {
                if let (Offset::Offset(at), Some(p)) = (
                    e.offset(),
                    parts.get_mut(&(Arc::from(e.topic()), e.partition())),
                ) {
                    p.committed = p.committed.max(at);
                }
            }
        }
    }

    /// Forget revoked partitions: their records are another member's now.
    fn revoked(&self, tpl: &TopicPartitionList) {
        if let Ok(mut parts) = self.parts.lock() {
            for e in tpl.elements() {
                if let Some(p) = parts.get_mut(&(Arc::from(e.topic()), e.partition())) {
                    *p = Partition {
                        epoch: p.epoch + 1,
                        fresh: true,
                        ..Partition::default()
                    };
                }
            }
        }
    }
}

/// Consumer callbacks: commit what was handled before partitions move, and tell the
/// subscriber when the group gave it its partitions.
pub(crate) struct GroupContext {
    pub(crate) tracker: Arc<Tracker>,
    pub(crate) assigned: watch::Sender<u64>,
}

impl ClientContext for GroupContext {}

impl ConsumerContext for GroupContext {
    fn pre_rebalance(&self, consumer: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        if let Rebalance::Revoke(list) = rebalance {
            let tpl = self.tracker.to_commit(Some(list));
            if tpl.count() > 0 {
                match consumer.commit(&tpl, CommitMode::Sync) {
                    Ok(()) => self.tracker.committed(&tpl),
                    Err(e) => {
                        tracing::warn!(error = %e, "kafka: commit before revocation failed; those records will be redelivered")
                    }
                }
            }
            self.tracker.revoked(list);
        }
    }

    fn post_rebalance(&self, _consumer: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        if let Rebalance::Assign(_) = rebalance {
            self.assigned.send_modify(|n| *n += 1);
        }
    }
}

/// What a subscription's messages share.
pub(crate) struct SubShared {
    pub(crate) tracker: Arc<Tracker>,
    pub(crate) conn: Arc<Shared>,
    pub(crate) redeliver: mpsc::UnboundedSender<KafkaMessage>,
    pub(crate) dead_letter: Option<String>,
    pub(crate) max_deliver: Option<u32>,
}

/// A record delivered by a [`KafkaSubscription`].
pub struct KafkaMessage {
    topic: Arc<str>,
    /// The topic as an address (the same, unless `Config::address_separator` maps it).
    address: Arc<str>,
    partition: i32,
    offset: i64,
    epoch: u64,
    attempt: u32,
    payload: Bytes,
    key: Option<Bytes>,
    headers: Headers,
    sub: Arc<SubShared>,
}

impl std::fmt::Debug for KafkaMessage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KafkaMessage")
            .field("topic", &self.topic)
            .field("partition", &self.partition)
            .field("offset", &self.offset)
            .field("attempt", &self.attempt)
            .field("payload_len", &self.payload.len())
            .field("headers", &self.headers)
            .finish_non_exhaustive()
    }
}

impl KafkaMessage {
    /// The partition the record came from.
    pub fn partition(&self) -> i32 {
        self.partition
    }

    /// The record's offset in its partition.
    pub fn offset(&self) -> i64 {
        self.offset
    }

    fn settle(&self) {
        self.sub
            .tracker
            .settled(&self.topic, self.partition, self.offset, self.epoch);
    }

    fn requeue(mut self) {
        self.attempt += 1;
        let sub = self.sub.clone();
        if let Err(mpsc::error::SendError(m)) = sub.redeliver.send(self) {
            // The subscription is gone: the record stays uncommitted, Kafka redelivers it.
            drop(m);
        }
    }

    async fn dead_letter(self) -> Result<()> {
        if let Some(dlq) = self.sub.dead_letter.clone() {
            let mut out =
                OutgoingMessage::new(dlq, self.payload.clone()).with_headers(self.headers.clone());
            out.headers
                .insert("x-original-topic", self.topic.to_string());
            out.key = self.key.clone();
            self.sub.conn.publish(out).await?;
        }
        self.settle();
        Ok(())
    }
}

impl IncomingMessage for KafkaMessage {
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
        self.headers.get(REPLY_TO)
    }

    fn correlation_id(&self) -> Option<&str> {
        self.headers
            .get(CORRELATION_ID)
            .or_else(|| self.headers.get(CORRELATION_ID_DASHED))
    }

    fn key(&self) -> Option<&[u8]> {
        self.key.as_deref()
    }

    fn attempt(&self) -> u32 {
        self.attempt
    }

    async fn ack(self) -> Result<()> {
        self.settle();
        Ok(())
    }

    async fn nack(self, requeue: bool) -> Result<()> {
        if !requeue {
            self.settle();
            return Ok(());
        }
        if self.sub.max_deliver.is_some_and(|max| self.attempt >= max) {
            return self.dead_letter().await;
        }
        self.requeue();
        Ok(())
    }

    async fn reject(self) -> Result<()> {
        self.dead_letter().await
    }
}

impl DelayedRedelivery for KafkaMessage {
    async fn nack_with_delay(self, delay: Duration) -> Result<()> {
        if self.sub.max_deliver.is_some_and(|max| self.attempt >= max) {
            return self.dead_letter().await;
        }
        tokio::spawn(async move {
            tokio::time::sleep(delay).await;
            self.requeue();
        });
        Ok(())
    }
}

/// A stream of [`KafkaMessage`]s; it ends when the connection shuts down. Dropping it commits
/// what was settled and leaves the consumer group.
pub struct KafkaSubscription {
    records: mpsc::Receiver<KafkaMessage>,
    redelivered: mpsc::UnboundedReceiver<KafkaMessage>,
    _stop: watch::Sender<bool>,
}

impl std::fmt::Debug for KafkaSubscription {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KafkaSubscription").finish_non_exhaustive()
    }
}

impl Stream for KafkaSubscription {
    type Item = Result<KafkaMessage>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut TaskContext<'_>) -> Poll<Option<Self::Item>> {
        if let Poll::Ready(Some(m)) = self.redelivered.poll_recv(cx) {
            return Poll::Ready(Some(Ok(m)));
        }
        self.records.poll_recv(cx).map(|m| m.map(Ok))
    }
}

/// Everything a consumer task needs.
pub(crate) struct Consuming {
    pub(crate) consumer: Arc<StreamConsumer<GroupContext>>,
    /// Whether offsets are committed (group subscriptions).
    pub(crate) commits: bool,
    pub(crate) sub: Arc<SubShared>,
    pub(crate) commit_interval: Duration,
}

/// Start the task that feeds a subscription; returns the stream and the task's handle.
pub(crate) fn start(
    consuming: Consuming,
    prefetch: usize,
    redelivered: mpsc::UnboundedReceiver<KafkaMessage>,
    mut shutdown: watch::Receiver<bool>,
) -> (KafkaSubscription, tokio::task::JoinHandle<()>) {
    let (tx, rx) = mpsc::channel(prefetch.max(1));
    let (stop_tx, mut stop_rx) = watch::channel(false);
    let task = tokio::spawn(async move {
        let Consuming {
            consumer,
            commits,
            sub,
            commit_interval,
        } = consuming;
        let mut tick = tokio::time::interval(commit_interval);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut topics: HashMap<String, (Arc<str>, Arc<str>)> = HashMap::new();
        loop {
            let received = tokio::select! {
                biased;
                _ = stop_rx.changed() => break,
                _ = shutdown.wait_for(|s| *s) => break,
                _ = tick.tick(), if commits => {
                    commit(&consumer, &sub.tracker, CommitMode::Async);
                    continue;
                }
                r = consumer.recv() => r.map(|m| convert(&m, &mut topics, &sub)),
            };
            let msg = match received {
                Ok(msg) => msg,
                // A pattern that matches no topic yet (or a topic just created) is not news.
                Err(e)
                    if e.rdkafka_error_code()
                        == Some(RDKafkaErrorCode::UnknownTopicOrPartition) =>
                {
                    tracing::debug!(error = %e, "kafka: waiting for the topic");
                    continue;
                }
                Err(e) => {
                    tracing::warn!(error = %sub.conn.config.scrub(e), "kafka: consumer error");
                    continue;
                }
            };
            tokio::select! {
                biased;
                _ = stop_rx.changed() => break,
                _ = shutdown.wait_for(|s| *s) => break,
                sent = tx.send(msg) => if sent.is_err() { break },
            }
        }
        // Commit what was settled, then leave the group (librdkafka's close blocks: off the
        // async workers).
        let _ = tokio::task::spawn_blocking(move || {
            if commits {
                commit(&consumer, &sub.tracker, CommitMode::Sync);
            }
            drop(consumer);
        })
        .await;
    });
    (
        KafkaSubscription {
            records: rx,
            redelivered,
            _stop: stop_tx,
        },
        task,
    )
}

fn commit(consumer: &StreamConsumer<GroupContext>, tracker: &Tracker, mode: CommitMode) {
    let tpl = tracker.to_commit(None);
    if tpl.count() == 0 {
        return;
    }
    match consumer.commit(&tpl, mode) {
        Ok(()) => tracker.committed(&tpl),
        Err(e) => tracing::debug!(error = %e, "kafka: commit failed; retried with the next one"),
    }
}

fn convert(
    m: &BorrowedMessage<'_>,
    topics: &mut HashMap<String, (Arc<str>, Arc<str>)>,
    sub: &Arc<SubShared>,
) -> KafkaMessage {
    let (topic, address) = match topics.get(m.topic()) {
        Some(t) => t.clone(),
        None => {
            let topic: Arc<str> = Arc::from(m.topic());
            let address = match sub.conn.config.address_of(m.topic()) {
                std::borrow::Cow::Borrowed(_) => topic.clone(),
                std::borrow::Cow::Owned(a) => Arc::from(a),
            };
            topics.insert(m.topic().to_owned(), (topic.clone(), address.clone()));
            (topic, address)
        }
    };
    let mut headers = Headers::new();
    if let Some(hs) = m.headers() {
        headers = Headers::with_capacity(hs.count());
        for h in hs.iter() {
            let value = h.value.map(String::from_utf8_lossy).unwrap_or_default();
            headers.append(h.key, value);
        }
    }
    let epoch = sub.tracker.delivered(&topic, m.partition(), m.offset());
    KafkaMessage {
        topic,
        address,
        partition: m.partition(),
        offset: m.offset(),
        epoch,
        attempt: 1,
        payload: m.payload().map(Bytes::copy_from_slice).unwrap_or_default(),
        key: m.key().map(Bytes::copy_from_slice),
        headers,
        sub: sub.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commits_never_pass_an_unsettled_offset() {
        let t = Tracker::default();
        let topic: Arc<str> = Arc::from("t");
        for o in 10..15 {
            t.delivered(&topic, 0, o);
        }
        assert_eq!(t.to_commit(None).count(), 0, "nothing settled yet");
        // 12 and 13 finish first: the commit stays at 10.
        t.settled(&topic, 0, 12, 0);
        t.settled(&topic, 0, 13, 0);
        assert_eq!(t.to_commit(None).count(), 0);
        t.settled(&topic, 0, 10, 0);
        let tpl = t.to_commit(None);
        assert_eq!(
            tpl.find_partition("t", 0).unwrap().offset(),
            Offset::Offset(11)
        );
        t.committed(&tpl);
        t.settled(&topic, 0, 11, 0);
        t.settled(&topic, 0, 14, 0);
        assert_eq!(
            t.to_commit(None).find_partition("t", 0).unwrap().offset(),
            Offset::Offset(15),
            "everything settled: the next offset"
        );
    }

    #[test]
    fn settlements_from_before_a_revocation_are_ignored() {
        let t = Tracker::default();
        let topic: Arc<str> = Arc::from("t");
        let epoch = t.delivered(&topic, 1, 5);
        let mut list = TopicPartitionList::new();
        list.add_partition("t", 1);
        t.revoked(&list);
        let new_epoch = t.delivered(&topic, 1, 7);
        assert_ne!(epoch, new_epoch);
        t.settled(&topic, 1, 5, epoch);
        assert_eq!(t.to_commit(None).count(), 0, "offset 7 is still pending");
        t.settled(&topic, 1, 7, new_epoch);
        assert_eq!(
            t.to_commit(None).find_partition("t", 1).unwrap().offset(),
            Offset::Offset(8)
        );
    }
}
