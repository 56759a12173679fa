//! Delivery targets: one per subscription, queue group or durable name, with bounded
//! per-member buffers.

use std::collections::VecDeque;
use std::hash::{Hash, Hasher};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::task::Waker;

use bytes::Bytes;
use tokio::sync::Notify;

use super::connection::Inner;
use crate::{Address, Error, Headers, Result};

pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// The immutable part of a published message, shared by every delivery.
#[derive(Debug)]
pub(crate) struct Data {
    /// The concrete address; `None` when it is the (concrete) template of every target the
    /// message went to, so the publisher's `String` need not travel with the message.
    pub(crate) address: Option<String>,
    pub(crate) payload: Bytes,
    pub(crate) headers: Headers,
    pub(crate) reply_to: Option<String>,
    pub(crate) correlation_id: Option<String>,
    pub(crate) key: Option<Bytes>,
}

/// Most spent [`Data`] a subscription collects between two batches (passed on to its
/// member's spares, which hold at most the buffer capacity).
pub(crate) const BIN: usize = 128;

/// `data` in a spent allocation from `spare` if there is one, else in a new one.
fn reuse(spare: &mut Vec<Arc<Data>>, data: Data) -> Arc<Data> {
    if let Some(mut arc) = spare.pop()
        && let Some(slot) = Arc::get_mut(&mut arc)
    {
        *slot = data;
        return arc;
    }
    Arc::new(data)
}

/// What a publisher queues: a message's data for one target (allocated, or reusing a spent
/// allocation, once a member is chosen), or an envelope already shared.
pub(crate) trait Offer {
    fn key(&self) -> Option<&Bytes>;
    fn into_envelope(self, spare: &mut Vec<Arc<Data>>) -> Envelope;
}

impl Offer for Envelope {
    fn key(&self) -> Option<&Bytes> {
        self.data.key.as_ref()
    }
    fn into_envelope(self, _: &mut Vec<Arc<Data>>) -> Envelope {
        self
    }
}

impl Offer for Data {
    fn key(&self) -> Option<&Bytes> {
        self.key.as_ref()
    }
    fn into_envelope(self, spare: &mut Vec<Arc<Data>>) -> Envelope {
        Envelope {
            data: reuse(spare, self),
            attempt: 1,
        }
    }
}

/// One delivery of a message.
#[derive(Debug)]
pub(crate) struct Envelope {
    pub(crate) data: Arc<Data>,
    pub(crate) attempt: u32,
}

impl Envelope {
    /// The same message for its next delivery attempt.
    pub(crate) fn next_attempt(self) -> Envelope {
        Envelope {
            data: self.data,
            attempt: self.attempt.saturating_add(1),
        }
    }

    /// The concrete address, when queued to `target`.
    #[inline]
    pub(crate) fn address<'a>(&'a self, target: &'a Target) -> &'a str {
        self.data
            .address
            .as_deref()
            .unwrap_or_else(|| target.template.as_str())
    }
}

#[derive(Debug, Default)]
pub(crate) struct MemberState {
    pub(crate) buffer: VecDeque<Envelope>,
    pub(crate) redeliver: VecDeque<Envelope>,
    pub(crate) waker: Option<Waker>,
    pub(crate) closed: bool,
    /// Spent message allocations handed back by the subscription, for publishers to reuse.
    pub(crate) spare: Vec<Arc<Data>>,
    /// Size of the subscription's last batch taken out of `buffer`: an upper bound of
    /// [`Member::undelivered`], which publishers read only when it matters.
    pub(crate) lent: usize,
}

/// A value alone on its cache line.
#[derive(Debug, Default)]
#[repr(align(64))]
pub(crate) struct Padded<T>(pub(crate) T);

/// One consumer (subscription stream) of a target.
#[derive(Debug, Default)]
pub(crate) struct Member {
    pub(crate) state: Mutex<MemberState>,
    /// Set with `state.closed` by [`Member::close`], so the subscription can tell without the
    /// lock while it hands out its batch.
    closed: AtomicBool,
    /// Messages of the subscription's batch not handed out yet: they still count against the
    /// buffer capacity. Written (plain stores) only by the subscription, on every message; on
    /// its own cache line, read by publishers only when `buffer + lent` says full.
    pub(crate) undelivered: Padded<AtomicUsize>,
}

impl MemberState {
    /// Whether a publisher may add a message (`capacity` messages queued or in the batch).
    fn has_room(&self, member: &Member, capacity: usize) -> bool {
        self.buffer.len() + self.lent < capacity
            || self.buffer.len() + member.undelivered.0.load(Ordering::Acquire) < capacity
    }
}

impl Member {
    fn push(&self, env: Envelope, redelivery: bool) {
        let mut st = lock(&self.state);
        if redelivery {
            st.redeliver.push_back(env);
        } else {
            st.buffer.push_back(env);
        }
        if let Some(w) = st.waker.take() {
            w.wake();
        }
    }

    /// True once [`Member::close`]d (its connection shut down).
    pub(crate) fn is_closed(&self) -> bool {
        self.closed.load(Ordering::Acquire)
    }

    pub(crate) fn close(&self) {
        let mut st = lock(&self.state);
        self.closed.store(true, Ordering::Release);
        st.closed = true;
        st.buffer.clear();
        st.redeliver.clear();
        if let Some(w) = st.waker.take() {
            w.wake();
        }
    }
}

#[derive(Debug, Default)]
pub(crate) struct TargetState {
    pub(crate) members: Vec<Arc<Member>>,
    next: usize,
    /// Messages waiting for a member (durable targets without consumers).
    parked: VecDeque<Envelope>,
    pub(crate) closed: bool,
}

/// Where matching messages are queued.
#[derive(Debug)]
pub(crate) struct Target {
    pub(crate) template: Address,
    /// The template has no parameters: it matches only its own text.
    pub(crate) concrete: bool,
    pub(crate) group: Option<String>,
    pub(crate) durable: Option<String>,
    pub(crate) dead_letter: Option<String>,
    pub(crate) capacity: usize,
    /// The broker records settlements ([`MemoryConfig::record`](super::MemoryConfig::record)).
    pub(crate) record: bool,
    pub(crate) state: Mutex<TargetState>,
    /// Publishers waiting for buffer space.
    pub(crate) space: Notify,
    pub(crate) inner: Weak<Inner>,
}

impl Target {
    pub(crate) fn new(
        template: Address,
        group: Option<String>,
        durable: Option<String>,
        dead_letter: Option<String>,
        capacity: usize,
        record: bool,
        inner: Weak<Inner>,
    ) -> Self {
        Target {
            concrete: template.is_concrete(),
            template,
            group,
            durable,
            dead_letter,
            capacity: capacity.max(1),
            record,
            state: Mutex::new(TargetState::default()),
            space: Notify::new(),
            inner,
        }
    }

    /// Whether a message published to `address` goes here.
    pub(crate) fn matches(&self, address: &str) -> bool {
        if self.concrete {
            self.template.as_str() == address
        } else {
            self.template.matches(address)
        }
    }

    /// Queue `env` if some eligible member has room (or the target is closed); give it back
    /// when every buffer is full.
    pub(crate) fn try_offer<E: Offer>(
        &self,
        env: E,
        publisher_closed: &AtomicBool,
    ) -> std::result::Result<Result<()>, E> {
        let mut st = lock(&self.state);
        if st.closed {
            let connection_closed =
                publisher_closed.load(Ordering::Acquire) || self.inner.strong_count() == 0;
            // Otherwise the subscription went away meanwhile: it no longer matches.
            return Ok(if connection_closed {
                Err(Error::Closed)
            } else {
                Ok(())
            });
        }
        let n = st.members.len();
        if n == 0 {
            if st.parked.len() < self.capacity {
                st.parked.push_back(env.into_envelope(&mut Vec::new()));
                return Ok(Ok(()));
            }
            return Err(env);
        }
        let (start, tries) = match env.key() {
            Some(key) => (key_slot(key, n), 1),
            None => (st.next % n, n),
        };
        for i in 0..tries {
            let idx = (start + i) % n;
            let member = &st.members[idx];
            let mut ms = lock(&member.state);
            if ms.has_room(member, self.capacity) {
                let env = env.into_envelope(&mut ms.spare);
                ms.buffer.push_back(env);
                if let Some(w) = ms.waker.take() {
                    w.wake();
                }
                drop(ms);
                st.next = (idx + 1) % n;
                return Ok(Ok(()));
            }
        }
        Err(env)
    }

    /// Queue `env`, waiting while every eligible member's buffer is full. `publisher_closed`
    /// is the publishing connection's shutdown flag: a wait ends with [`Error::Closed`] when
    /// it is set.
    pub(crate) async fn offer(
        &self,
        mut env: Envelope,
        publisher_closed: &AtomicBool,
    ) -> Result<()> {
        loop {
            // Registered before trying, so a pop between the try and the await wakes us.
            let notified = self.space.notified();
            match self.try_offer(env, publisher_closed) {
                Ok(done) => return done,
                Err(back) => env = back,
            }
            notified.await;
            if publisher_closed.load(Ordering::Acquire) || self.inner.strong_count() == 0 {
                return Err(Error::Closed);
            }
        }
    }

    /// Put a message back for redelivery (never waits: bounded by what was handed out).
    pub(crate) fn requeue(&self, env: Envelope) {
        let mut st = lock(&self.state);
        if st.closed {
            tracing::debug!(address = %env.address(self), "subscription gone; requeued message dropped");
            return;
        }
        let n = st.members.len();
        if n == 0 {
            st.parked.push_back(env);
            return;
        }
        let idx = st.next % n;
        st.next = (idx + 1) % n;
        st.members[idx].push(env, true);
    }

    /// Add a consumer; a durable target hands it what was parked. False when the target was
    /// closed meanwhile (its last member left): subscribe to a fresh one instead.
    pub(crate) fn join(&self, member: Arc<Member>) -> bool {
        let mut st = lock(&self.state);
        if st.closed {
            return false;
        }
        let parked = std::mem::take(&mut st.parked);
        let had_parked = !parked.is_empty();
        for env in parked {
            member.push(env, true);
        }
        st.members.push(member);
        drop(st);
        if had_parked {
            // Publishers waiting on a full parking queue can go on.
            self.space.notify_waiters();
        }
        true
    }

    /// True once closed (unsubscribed for good or shut down).
    pub(crate) fn is_closed(&self) -> bool {
        lock(&self.state).closed
    }

    /// Remove a consumer; its queued messages go to the other members (or are parked for a
    /// durable target). Returns true when the target is now unused and must be unregistered.
    pub(crate) fn leave(&self, member: &Arc<Member>) -> bool {
        let mut st = lock(&self.state);
        st.members.retain(|m| !Arc::ptr_eq(m, member));
        let leftovers: Vec<Envelope> = {
            let mut ms = lock(&member.state);
            ms.closed = true;
            member.closed.store(true, Ordering::Release);
            let mut v: Vec<Envelope> = ms.redeliver.drain(..).collect();
            v.extend(ms.buffer.drain(..));
            v
        };
        let unused = st.members.is_empty() && self.durable.is_none();
        if unused {
            st.closed = true;
        } else {
            for env in leftovers {
                let n = st.members.len();
                if n == 0 {
                    st.parked.push_back(env);
                } else {
                    let idx = st.next % n;
                    st.next = (idx + 1) % n;
                    st.members[idx].push(env, true);
                }
            }
        }
        drop(st);
        self.space.notify_waiters();
        unused
    }
}

/// A subscription's own handle on its target: what its messages hold, so the reference count
/// they change on every message is not the target's own, which publishers change on theirs
/// (two threads would pass that cache line back and forth on every message).
#[derive(Debug)]
pub(crate) struct TargetHandle {
    pub(crate) target: Arc<Target>,
    /// Spent message allocations of acked messages, passed on to the member's `spare` when
    /// the subscription takes its next batch.
    pub(crate) bin: Mutex<Vec<Arc<Data>>>,
}

impl TargetHandle {
    pub(crate) fn new(target: Arc<Target>) -> Self {
        TargetHandle {
            target,
            bin: Mutex::new(Vec::with_capacity(BIN)),
        }
    }

    /// Keep a settled message's allocation for reuse, unless another delivery shares it.
    pub(crate) fn recycle(&self, mut data: Arc<Data>) {
        if let Some(d) = Arc::get_mut(&mut data) {
            // Release the payload now (it may be big); the rest is small and dropped when the
            // allocation is reused.
            d.payload = Bytes::new();
            let mut bin = lock(&self.bin);
            if bin.len() < BIN {
                bin.push(data);
            }
        }
    }
}

impl std::ops::Deref for TargetHandle {
    type Target = Target;

    fn deref(&self) -> &Target {
        &self.target
    }
}

fn key_slot(key: &[u8], n: usize) -> usize {
    let mut h = std::collections::hash_map::DefaultHasher::new();
    key.hash(&mut h);
    // Truncation is fine: only the remainder matters.
    (h.finish() % n as u64) as usize
}
