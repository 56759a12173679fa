//! The connected in-memory broker and its subscriptions.

use std::collections::{HashMap, VecDeque};
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock, Weak};
use std::task::{Context, Poll};
use std::time::Duration;

use futures_core::Stream;
use tokio::sync::oneshot;

use super::message::MemoryMessage;
use super::target::{Data, Envelope, Member, Target, TargetHandle, lock};
use super::{MemoryConfig, RecordedMessage, Settled, Settlement};
use crate::capability::{
    BatchSubscriber, Partitioned, Reply, RequestReply, Transaction, TransactionalPublisher,
};
use crate::message::names;
use crate::{
    Address, Capabilities, Connection, Error, OutgoingMessage, Publisher, Result, SubscribeOptions,
    Subscriber,
};

/// Prefix of the automatic reply inboxes used by [`RequestReply::request`].
pub const INBOX_PREFIX: &str = "_INBOX.";

#[derive(Debug, Default)]
struct Recording {
    published: Vec<RecordedMessage>,
    settlements: Vec<Settlement>,
}

/// The broker: what every connection to one [`MemoryBroker`](super::MemoryBroker) shares.
#[derive(Debug)]
pub(crate) struct Inner {
    config: MemoryConfig,
    targets: RwLock<Vec<Arc<Target>>>,
    /// Reply inboxes waiting for a reply, with the id of the requesting connection.
    pending: Mutex<HashMap<String, (u64, oneshot::Sender<Reply>)>>,
    next_id: AtomicU64,
    recording: Option<Mutex<Recording>>,
}

/// One connection: its shutdown flag and its subscriptions (ended by its shutdown).
#[derive(Debug)]
struct Conn {
    inner: Arc<Inner>,
    id: u64,
    closed: AtomicBool,
    subscriptions: Mutex<Vec<(Weak<Target>, Weak<Member>)>>,
}

impl Inner {
    pub(crate) fn new(config: MemoryConfig) -> Arc<Self> {
        let recording = config.record.then(|| Mutex::new(Recording::default()));
        Arc::new(Inner {
            config,
            targets: RwLock::new(Vec::new()),
            pending: Mutex::new(HashMap::new()),
            next_id: AtomicU64::new(1),
            recording,
        })
    }

    pub(crate) fn record_settlement(&self, env: &Envelope, target: &Target, outcome: Settled) {
        if let Some(rec) = &self.recording {
            lock(rec).settlements.push(Settlement {
                address: env.address(target).to_owned(),
                attempt: env.attempt,
                correlation_id: env.data.correlation_id.clone(),
                payload: env.data.payload.clone(),
                outcome,
            });
        }
    }

    fn unregister(&self, target: &Arc<Target>) {
        let mut targets = self.targets.write().unwrap_or_else(|e| e.into_inner());
        targets.retain(|t| !Arc::ptr_eq(t, target));
    }
}

/// A connection to the in-memory broker. Cheap to clone: clones are the same connection
/// (shutting one down shuts them all). Every connection made from one
/// [`MemoryBroker`](super::MemoryBroker) (or its clones) shares its topics, queue groups,
/// durable queues and reply inboxes.
#[derive(Debug, Clone)]
pub struct MemoryConnection {
    /// One `Arc` (the broker is reached through it), so a clone per handled message (the
    /// router's `Context`) is one reference count, not two.
    conn: Arc<Conn>,
}

impl MemoryConnection {
    /// A connection to a new, private broker.
    #[cfg(test)]
    pub(crate) fn new(config: MemoryConfig) -> Self {
        Self::from_inner(Inner::new(config))
    }

    /// A new connection to the broker `inner`.
    pub(crate) fn from_inner(inner: Arc<Inner>) -> Self {
        let id = inner.next_id.fetch_add(1, Ordering::Relaxed);
        MemoryConnection {
            conn: Arc::new(Conn {
                inner,
                id,
                closed: AtomicBool::new(false),
                subscriptions: Mutex::new(Vec::new()),
            }),
        }
    }

    /// True after [`Connection::shutdown`].
    pub fn is_closed(&self) -> bool {
        self.conn.closed.load(Ordering::Acquire)
    }

    /// Number of registered delivery targets of the broker (subscriptions, queue groups,
    /// durable queues).
    pub fn targets(&self) -> usize {
        self.conn
            .inner
            .targets
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .len()
    }

    /// Every message published so far (empty unless [`MemoryConfig::record`]).
    pub fn published(&self) -> Vec<RecordedMessage> {
        self.conn
            .inner
            .recording
            .as_ref()
            .map(|r| lock(r).published.clone())
            .unwrap_or_default()
    }

    /// Every settlement so far (empty unless [`MemoryConfig::record`]).
    pub fn settlements(&self) -> Vec<Settlement> {
        self.conn
            .inner
            .recording
            .as_ref()
            .map(|r| lock(r).settlements.clone())
            .unwrap_or_default()
    }

    fn check_open(&self) -> Result<()> {
        if self.is_closed() {
            Err(Error::Closed)
        } else {
            Ok(())
        }
    }

    fn next_id(&self) -> u64 {
        self.conn.inner.next_id.fetch_add(1, Ordering::Relaxed)
    }

    fn find_or_create_target(&self, address: &Address, options: &SubscribeOptions) -> Arc<Target> {
        let mut targets = self
            .conn
            .inner
            .targets
            .write()
            .unwrap_or_else(|e| e.into_inner());
        let existing = targets.iter().find(|t| {
            if t.is_closed() {
                false
            } else if let Some(d) = &options.durable {
                t.durable.as_deref() == Some(d.as_str())
            } else if let Some(g) = &options.queue_group {
                t.durable.is_none()
                    && t.group.as_deref() == Some(g.as_str())
                    && t.template.as_str() == address.as_str()
            } else {
                false
            }
        });
        if let Some(t) = existing {
            return Arc::clone(t);
        }
        let t = Arc::new(Target::new(
            address.clone(),
            options.queue_group.clone(),
            options.durable.clone(),
            options.dead_letter.clone(),
            self.conn.inner.config.buffer,
            self.conn.inner.config.record,
            Arc::downgrade(&self.conn.inner),
        ));
        targets.push(Arc::clone(&t));
        t
    }
}

impl Publisher for MemoryConnection {
    async fn publish(&self, message: OutgoingMessage) -> Result<()> {
        self.check_open()?;
        let OutgoingMessage {
            address,
            payload,
            headers,
            key,
            reply_to,
            correlation_id,
            ..
        } = message;
        if address.is_empty() {
            return Err(Error::InvalidAddress {
                address,
                reason: "empty".into(),
            });
        }
        let correlation_id =
            correlation_id.or_else(|| headers.get(names::CORRELATION_ID).map(str::to_owned));
        if let Some(rec) = &self.conn.inner.recording {
            lock(rec).published.push(RecordedMessage {
                address: address.clone(),
                payload: payload.clone(),
                headers: headers.clone(),
                reply_to: reply_to.clone(),
                correlation_id: correlation_id.clone(),
            });
        }
        if address.starts_with(INBOX_PREFIX) {
            let waiter = lock(&self.conn.inner.pending).remove(&address);
            if let Some((_, tx)) = waiter {
                let subscribed = self
                    .conn
                    .inner
                    .targets
                    .read()
                    .unwrap_or_else(|e| e.into_inner())
                    .iter()
                    .any(|t| t.matches(&address));
                if !subscribed {
                    // The usual reply: only the requester wants it, nothing to copy.
                    let _ = tx.send(Reply::new(payload, headers, correlation_id));
                    crate::client::recycle_address(address);
                    return Ok(());
                }
                let reply = Reply::new(payload.clone(), headers.clone(), correlation_id.clone());
                let _ = tx.send(reply);
            }
        }
        // The first matching target apart, so the common single-subscriber publish does not
        // allocate a vector (collecting an empty iterator does not allocate), and is queued
        // without touching the target's reference count unless it has to wait for room (its
        // data then reuses an allocation the subscription handed back, when it has one).
        let (first, rest, data) = {
            let targets = self
                .conn
                .inner
                .targets
                .read()
                .unwrap_or_else(|e| e.into_inner());
            let mut matching = targets.iter().filter(|t| t.matches(&address));
            let Some(first) = matching.next() else {
                return Ok(());
            };
            let rest: Vec<Arc<Target>> = matching.cloned().collect();
            // A concrete template matches only its own text: the address need not be kept
            // (it goes back to the publisher's thread for reuse).
            let address = if !first.concrete || rest.iter().any(|t| !t.concrete) {
                Some(address)
            } else {
                crate::client::recycle_address(address);
                None
            };
            let data = Data {
                address,
                payload,
                headers,
                reply_to,
                correlation_id,
                key,
            };
            if rest.is_empty() {
                match first.try_offer(data, &self.conn.closed) {
                    Ok(done) => return done,
                    Err(data) => (Arc::clone(first), rest, Arc::new(data)),
                }
            } else {
                (Arc::clone(first), rest, Arc::new(data))
            }
        };
        for t in std::iter::once(first).chain(rest) {
            t.offer(
                Envelope {
                    data: Arc::clone(&data),
                    attempt: 1,
                },
                &self.conn.closed,
            )
            .await?;
        }
        Ok(())
    }
}

/// Most messages a subscription takes out of its buffer under one lock.
const BATCH: usize = 32;

/// A subscription stream of the in-memory broker. Dropping it unsubscribes (a durable queue
/// stays and keeps collecting messages).
///
/// It takes up to 32 queued messages at a time (at most a quarter of the buffer) out of its
/// shared buffer: one lock for the batch, not one per message, so a busy publisher and
/// consumer rarely meet on the lock.
/// Messages of a batch count against [`MemoryConfig::buffer`] until they are handed out, so
/// the buffer bound holds; dropping the subscription puts an unconsumed batch back.
#[derive(Debug)]
pub struct MemorySubscription {
    target: Arc<Target>,
    /// What its messages hold (see [`TargetHandle`]).
    handle: Arc<TargetHandle>,
    member: Arc<Member>,
    /// The current batch, in order.
    batch: VecDeque<Envelope>,
    /// Publishers were woken: yield before handing out the next message.
    yield_next: bool,
}

impl MemorySubscription {
    /// Messages waiting for this subscription (not counting redeliveries); never more than
    /// [`MemoryConfig::buffer`].
    pub fn queued(&self) -> usize {
        lock(&self.member.state).buffer.len() + self.batch.len()
    }

    fn deliver(&self, env: Envelope) -> Poll<Option<Result<MemoryMessage>>> {
        Poll::Ready(Some(Ok(MemoryMessage::new(env, Arc::clone(&self.handle)))))
    }

    /// The connection shut down: what is left of the batch goes back to the target (its other
    /// members, or parked for a durable queue), as the shutdown did with the buffer.
    fn hand_back(&mut self) {
        for env in self.batch.drain(..) {
            self.target.requeue(env);
        }
    }
}

impl Stream for MemorySubscription {
    type Item = Result<MemoryMessage>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = self.get_mut();
        if std::mem::take(&mut this.yield_next) {
            // Publishers were woken while handing out the last message: yield (see below).
            cx.waker().wake_by_ref();
            return Poll::Pending;
        }
        if let Some(env) = this.batch.pop_front() {
            if !this.member.is_closed() {
                this.member
                    .undelivered
                    .0
                    .store(this.batch.len(), Ordering::Release);
                return this.deliver(env);
            }
            this.batch.push_front(env);
            this.hand_back();
            return Poll::Ready(None);
        }
        let mut st = lock(&this.member.state);
        if st.closed {
            return Poll::Ready(None);
        }
        if let Some(env) = st.redeliver.pop_front() {
            drop(st);
            return this.deliver(env);
        }
        let spares = this.target.capacity.min(1024);
        if st.spare.len() < spares {
            let mut bin = lock(&this.handle.bin);
            let room = (spares - st.spare.len()).min(bin.len());
            let from = bin.len() - room;
            st.spare.extend(bin.drain(from..));
        }
        // The last batch is handed out: what counts against the capacity now is the buffer.
        // Publishers wait only while the buffer is full; wake them once it has drained to half
        // its capacity, not on every batch (a waiting publisher then refills half a buffer per
        // wake-up).
        let half = this.target.capacity / 2;
        let queued = st.buffer.len();
        if queued <= half && queued + st.lent > half {
            // Drained to half by the last batch: wake publishers, then yield before taking
            // more. On a multi-threaded runtime a task woken from a worker thread waits in
            // that thread's "next task" slot, which other threads cannot take, until the task
            // that woke it yields: without the yield this consumer would drain the buffer
            // before the publisher it woke could run at all, and the two would take turns on
            // one thread. Yielding runs the publisher here and lets an idle thread take over
            // this task, so both run at once.
            st.lent = 0;
            drop(st);
            this.target.space.notify_waiters();
            cx.waker().wake_by_ref();
            return Poll::Pending;
        }
        // A batch of at most a quarter of the capacity, so waiting publishers are woken about
        // when they were when messages were taken one at a time.
        let take = queued.min(BATCH).min((this.target.capacity / 4).max(1));
        this.batch.extend(st.buffer.drain(..take));
        st.lent = take;
        let next = this.batch.pop_front();
        this.member
            .undelivered
            .0
            .store(this.batch.len(), Ordering::Release);
        // Handing out this message reaches half (batches of one, on small buffers).
        let low = queued > half && st.buffer.len() + this.batch.len() <= half;
        if next.is_none() {
            match &mut st.waker {
                Some(w) if w.will_wake(cx.waker()) => {}
                w => *w = Some(cx.waker().clone()),
            }
        }
        drop(st);
        if low {
            this.target.space.notify_waiters();
            // Yield before the next message (see above).
            this.yield_next = next.is_some();
        }
        match next {
            Some(env) => this.deliver(env),
            None => Poll::Pending,
        }
    }
}

impl Drop for MemorySubscription {
    fn drop(&mut self) {
        if !self.batch.is_empty() {
            if self.member.is_closed() {
                self.hand_back();
            } else {
                // Back to the front of the buffer, in order, for `leave` to pass on.
                let mut st = lock(&self.member.state);
                while let Some(env) = self.batch.pop_back() {
                    st.buffer.push_front(env);
                }
                st.lent = 0;
                self.member.undelivered.0.store(0, Ordering::Release);
            }
        }
        if self.target.leave(&self.member)
            && let Some(inner) = self.target.inner.upgrade()
        {
            inner.unregister(&self.target);
        }
    }
}

impl Subscriber for MemoryConnection {
    type Message = MemoryMessage;
    type Subscription = MemorySubscription;

    async fn subscribe(
        &self,
        address: &Address,
        options: SubscribeOptions,
    ) -> Result<MemorySubscription> {
        self.check_open()?;
        let member = Arc::new(Member::default());
        loop {
            let target = self.find_or_create_target(address, &options);
            if target.join(Arc::clone(&member)) {
                {
                    let mut subs = lock(&self.conn.subscriptions);
                    subs.retain(|(_, m)| m.strong_count() > 0);
                    subs.push((Arc::downgrade(&target), Arc::downgrade(&member)));
                }
                if self.is_closed() {
                    // Shut down while subscribing: do not hand out a stream that never ends.
                    if target.leave(&member) {
                        self.conn.inner.unregister(&target);
                    }
                    member.close();
                    return Err(Error::Closed);
                }
                return Ok(MemorySubscription {
                    handle: Arc::new(TargetHandle::new(Arc::clone(&target))),
                    target,
                    member,
                    batch: VecDeque::with_capacity(BATCH),
                    yield_next: false,
                });
            }
            self.check_open()?;
        }
    }
}

impl Connection for MemoryConnection {
    fn capabilities(&self) -> Capabilities {
        Capabilities::ALL
    }

    async fn shutdown(self) -> Result<()> {
        if self.conn.closed.swap(true, Ordering::AcqRel) {
            return Ok(());
        }
        // End this connection's subscriptions only: what they held goes back to their target
        // (the other members of a queue group, or a durable queue, which outlives it).
        let subscriptions = std::mem::take(&mut *lock(&self.conn.subscriptions));
        for (target, member) in subscriptions {
            if let (Some(target), Some(member)) = (target.upgrade(), member.upgrade()) {
                if target.leave(&member) {
                    self.conn.inner.unregister(&target);
                }
                member.close();
            }
        }
        // Publishes of this connection waiting for buffer space end with `Closed`.
        let targets: Vec<Arc<Target>> = self
            .conn
            .inner
            .targets
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        for t in targets {
            t.space.notify_waiters();
        }
        // Its requests waiting for a reply end with `Closed`.
        lock(&self.conn.inner.pending).retain(|_, (owner, _)| *owner != self.conn.id);
        Ok(())
    }
}

/// `prefix` followed by `n` in decimal (what `format!` does, without its machinery).
fn numbered(prefix: &str, n: u64) -> String {
    let mut digits = itoa::Buffer::new();
    let digits = digits.format(n);
    let mut s = String::with_capacity(prefix.len() + digits.len());
    s.push_str(prefix);
    s.push_str(digits);
    s
}

impl RequestReply for MemoryConnection {
    async fn request(&self, mut message: OutgoingMessage, timeout: Duration) -> Result<Reply> {
        self.check_open()?;
        let id = self.next_id();
        let inbox = numbered(INBOX_PREFIX, id);
        if message.correlation_id.is_none() {
            message.correlation_id = Some(
                message
                    .headers
                    .get(names::CORRELATION_ID)
                    .map_or_else(|| numbered("mem-", id), str::to_owned),
            );
        }
        if let Some(cid) = &message.correlation_id
            && message.headers.get(names::CORRELATION_ID).is_none()
        {
            message
                .headers
                .append_named(names::CORRELATION_ID, cid.clone());
        }
        message.reply_to = Some(inbox.clone());
        let (tx, rx) = oneshot::channel();
        lock(&self.conn.inner.pending).insert(inbox.clone(), (self.conn.id, tx));
        if let Err(e) = self.publish(message).await {
            lock(&self.conn.inner.pending).remove(&inbox);
            return Err(e);
        }
        match tokio::time::timeout(timeout, rx).await {
            Ok(Ok(reply)) => Ok(reply),
            Ok(Err(_)) => Err(Error::Closed),
            Err(_) => {
                lock(&self.conn.inner.pending).remove(&inbox);
                Err(Error::Timeout(
                    format!("no reply within {timeout:?}").into(),
                ))
            }
        }
    }
}

/// Batches of messages from the in-memory broker ([`BatchSubscriber`]).
pub type MemoryBatches = crate::capability::Batched<MemorySubscription, MemoryMessage>;

impl BatchSubscriber for MemoryConnection {
    type Batches = MemoryBatches;

    async fn subscribe_batch(
        &self,
        address: &Address,
        options: SubscribeOptions,
        max: usize,
        max_wait: Duration,
    ) -> Result<MemoryBatches> {
        let sub = self.subscribe(address, options).await?;
        Ok(MemoryBatches::new(sub, max, max_wait))
    }
}

/// A publish transaction of the in-memory broker: staged messages are published on commit.
#[derive(Debug)]
pub struct MemoryTransaction {
    conn: MemoryConnection,
    staged: Vec<OutgoingMessage>,
}

impl Transaction for MemoryTransaction {
    async fn publish(&mut self, message: OutgoingMessage) -> Result<()> {
        self.conn.check_open()?;
        self.staged.push(message);
        Ok(())
    }

    async fn commit(self) -> Result<()> {
        self.conn.check_open()?;
        for m in self.staged {
            self.conn.publish(m).await?;
        }
        Ok(())
    }

    async fn abort(self) -> Result<()> {
        Ok(())
    }
}

impl TransactionalPublisher for MemoryConnection {
    type Transaction = MemoryTransaction;

    async fn begin(&self) -> Result<MemoryTransaction> {
        self.check_open()?;
        Ok(MemoryTransaction {
            conn: self.clone(),
            staged: Vec::new(),
        })
    }
}

impl Partitioned for MemoryConnection {
    /// One logical partition per address; keyed messages to a queue group stick to one member.
    async fn partitions(&self, _address: &str) -> Result<u32> {
        self.check_open()?;
        Ok(1)
    }
}

#[cfg(test)]
mod tests {
    use futures_util::{FutureExt, StreamExt};

    use super::*;

    #[test]
    fn numbered_writes_the_decimal_number() {
        for n in [0, 7, 10, 4_294_967_296, u64::MAX] {
            assert_eq!(numbered("_INBOX.", n), format!("_INBOX.{n}"));
        }
    }

    #[tokio::test]
    async fn a_closed_group_target_is_never_joined() {
        let c = MemoryConnection::new(MemoryConfig::default());
        let a = Address::parse("g").unwrap();
        let opts = SubscribeOptions::new().queue_group("g");
        let first = c.subscribe(&a, opts.clone()).await.unwrap();
        let old = Arc::clone(&first.target);
        // The race: the last member has left (target closed) but it is not unregistered yet.
        assert!(old.leave(&first.member));
        assert!(!old.join(Arc::new(Member::default())));
        let mut second = c.subscribe(&a, opts).await.unwrap();
        assert!(!Arc::ptr_eq(&second.target, &old), "a fresh group target");
        drop(first);
        assert_eq!(c.targets(), 1);
        c.publish(OutgoingMessage::new("g", "x")).await.unwrap();
        let m = second.next().now_or_never().flatten().unwrap().unwrap();
        assert_eq!(crate::IncomingMessage::payload(&m), b"x");
    }
}
