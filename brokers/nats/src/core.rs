//! Core NATS: at-most-once publish/subscribe, queue groups, request/reply.

use std::borrow::Cow;
use std::cell::{Cell, RefCell};
use std::fmt;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use async_nats::{Subject, subject::ToSubject};
use bytes::Bytes;
use futures_core::Stream;
use futures_util::StreamExt;
use ruststream::capability::{BatchSubscriber, Batched, Reply, RequestReply};
use ruststream::{
    Address, Broker, Capabilities, Connection, Error, Headers, IncomingMessage, OutgoingMessage,
    Publisher, Result, SubscribeOptions, Subscriber,
};
use tokio::sync::watch;

use crate::config::{Config, JetStreamConfig, transport};
use crate::jetstream::JetStreamBroker;
use crate::subject::SubjectMapping;
use crate::util::{UntilClosed, check_subject, from_nats_headers, to_nats_headers, until_closed};

/// Core NATS, configured but not connected.
#[derive(Debug, Clone, Default)]
pub struct NatsBroker {
    config: Config,
}

impl NatsBroker {
    /// A core NATS broker.
    pub fn new(config: Config) -> Self {
        NatsBroker { config }
    }

    /// A JetStream broker on the same connection settings.
    pub fn jetstream(config: Config, jetstream: JetStreamConfig) -> JetStreamBroker {
        JetStreamBroker::new(config, jetstream)
    }

    /// The settings.
    pub fn config(&self) -> &Config {
        &self.config
    }
}

impl Broker for NatsBroker {
    type Connection = NatsConnection;

    fn name(&self) -> &'static str {
        "nats"
    }

    async fn connect(self) -> Result<NatsConnection> {
        Ok(NatsConnection {
            shared: Arc::new(Shared::connect(&self.config).await?),
        })
    }
}

/// State shared by core and JetStream connections.
pub(crate) struct Shared {
    pub(crate) client: async_nats::Client,
    pub(crate) secrets: Vec<String>,
    pub(crate) subjects: SubjectMapping,
    /// [`Config::implicit_content_type`].
    pub(crate) implicit_content_type: Option<String>,
    timeout: Duration,
    closed: AtomicBool,
    close_tx: watch::Sender<bool>,
    client_closed: watch::Receiver<bool>,
}

impl fmt::Debug for Shared {
    // Not derived: `secrets` holds the credentials the error scrubber removes.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Shared")
            .field("client", &self.client)
            .field("secrets", &"<redacted>")
            .field("subjects", &self.subjects)
            .field("implicit_content_type", &self.implicit_content_type)
            .field("timeout", &self.timeout)
            .field("closed", &self.closed)
            .finish_non_exhaustive()
    }
}

impl Shared {
    pub(crate) async fn connect(config: &Config) -> Result<Shared> {
        let (client_closed_tx, client_closed) = watch::channel(false);
        let client = config.connect(client_closed_tx).await?;
        Ok(Shared {
            client,
            secrets: config.secrets(),
            subjects: config.subject_mapping,
            implicit_content_type: config.implicit_content_type.clone(),
            timeout: config.request_timeout,
            closed: AtomicBool::new(false),
            close_tx: watch::channel(false).0,
            client_closed,
        })
    }

    pub(crate) fn err(&self, e: impl std::fmt::Display) -> Error {
        transport(&e, &self.secrets)
    }

    #[inline]
    pub(crate) fn check_open(&self) -> Result<()> {
        if self.closed.load(Ordering::Acquire) {
            Err(Error::Closed)
        } else {
            Ok(())
        }
    }

    pub(crate) fn closed_signal(&self) -> watch::Receiver<bool> {
        self.close_tx.subscribe()
    }

    /// Wait until the server has processed everything sent so far (publishes, acks,
    /// subscribes and unsubscribes): a message sent to a private inbox through the server
    /// comes back only after everything before it on this connection was handled.
    /// (`async_nats::Client::flush` only writes the socket.)
    pub(crate) async fn flush(&self) -> Result<()> {
        let inbox = self.client.new_inbox();
        let mut echo = self
            .client
            .subscribe(inbox.clone())
            .await
            .map_err(|e| self.err(e))?;
        self.client
            .publish(inbox, Bytes::new())
            .await
            .map_err(|e| self.err(e))?;
        self.client.flush().await.map_err(|e| self.err(e))?;
        match tokio::time::timeout(self.timeout, echo.next()).await {
            Ok(Some(_)) => Ok(()),
            Ok(None) => Err(Error::Closed),
            Err(_) => Err(Error::Timeout(
                format!(
                    "nats server did not answer a flush within {:?}",
                    self.timeout
                )
                .into(),
            )),
        }
    }

    /// Flush, end subscriptions, drain and close the connection; resolves once the client
    /// has closed (bounded by the request timeout). Idempotent.
    pub(crate) async fn shutdown(&self) -> Result<()> {
        if self.closed.swap(true, Ordering::AcqRel) {
            return Ok(());
        }
        self.close_tx.send_replace(true);
        let flushed = self.flush().await;
        // Drain unsubscribes everything, delivers what is in flight, then closes.
        let drained = self.client.drain().await.map_err(|e| self.err(e));
        let mut client_closed = self.client_closed.clone();
        let closed = tokio::time::timeout(self.timeout, client_closed.wait_for(|c| *c)).await;
        if closed.is_err() {
            tracing::warn!(
                "nats client did not close within {:?} after drain",
                self.timeout
            );
        }
        flushed.and(drained)
    }

    /// NATS headers for `message` ([`to_nats_headers`] with this connection's implicit
    /// content type).
    #[inline]
    pub(crate) fn nats_headers(
        &self,
        message: &OutgoingMessage,
        reply_header: bool,
    ) -> Result<Option<async_nats::HeaderMap>> {
        to_nats_headers(message, reply_header, self.implicit_content_type.as_deref())
    }

    /// Everything a core publish needs, checked and mapped before the first `.await` (the
    /// publish future then holds only these, not the whole message).
    #[inline]
    pub(crate) fn prepare_core(&self, mut message: OutgoingMessage) -> Result<CorePublish> {
        let address = std::mem::take(&mut message.address);
        let subject = match self.subjects {
            SubjectMapping::Native => native_subject(address)?,
            SubjectMapping::Separator(_) => {
                let subject = self.subjects.publish_subject(&address)?.into_owned();
                // The mapped subject is a new string: the address goes back to the pool.
                ruststream::client::recycle_address(address);
                Subject::from(subject)
            }
        };
        let headers = self.nats_headers(&message, false)?;
        let OutgoingMessage {
            payload, reply_to, ..
        } = message;
        let reply = match reply_to {
            Some(r) => Some(OnceSubject::new(match self.subjects {
                SubjectMapping::Native => r,
                SubjectMapping::Separator(_) => self.subjects.publish_subject_owned(r)?,
            })),
            None => None,
        };
        Ok(CorePublish {
            subject: OnceSubject(Cell::new(Some(subject))),
            payload,
            reply,
            headers,
        })
    }
}

/// Subjects kept per thread by [`native_subject`].
const SUBJECT_CACHE: usize = 4;
/// Misses after which [`native_subject`] keeps the subject it missed.
const SUBJECT_CACHE_AFTER: u32 = 32;

/// Subjects published repeatedly on one thread. Their bytes are shared, so handing out one is
/// a reference count, and they were checked when they were kept.
struct SubjectCache {
    /// Subject, and whether it was used since the clock hand last passed it.
    entries: [Option<(Subject, bool)>; SUBJECT_CACHE],
    /// Misses since the last hit or the last subject kept.
    misses: u32,
    /// Next entry to consider replacing.
    hand: usize,
}

impl SubjectCache {
    const fn new() -> Self {
        SubjectCache {
            entries: [None, None, None, None],
            misses: 0,
            hand: 0,
        }
    }

    fn get(&mut self, address: &str) -> Option<Subject> {
        for (subject, used) in self.entries.iter_mut().flatten() {
            if subject.len() == address.len() && subject.as_str() == address {
                *used = true;
                self.misses = 0;
                return Some(subject.clone());
            }
        }
        None
    }

    /// Count a miss of `subject` (checked); keep it once misses have piled up, in place of one
    /// not used lately. An address that never repeats is thus rarely kept (keeping promotes
    /// its bytes to shared ones, an allocation).
    fn missed(&mut self, subject: &Subject) {
        self.misses += 1;
        if self.misses < SUBJECT_CACHE_AFTER {
            return;
        }
        self.misses = 0;
        for _ in 0..2 * SUBJECT_CACHE {
            let slot = &mut self.entries[self.hand];
            self.hand = (self.hand + 1) % SUBJECT_CACHE;
            match slot {
                Some((_, used @ true)) => *used = false,
                _ => {
                    *slot = Some((subject.clone(), false));
                    return;
                }
            }
        }
    }
}

thread_local! {
    static SUBJECTS: RefCell<SubjectCache> = const { RefCell::new(SubjectCache::new()) };
}

/// The subject for a native `address`: one this thread published to repeatedly (no check,
/// no conversion; the address string goes back to the client's pool, see
/// [`ruststream::client::recycle_address`]), or the checked address itself.
#[inline]
fn native_subject(address: String) -> Result<Subject> {
    let cached = SUBJECTS
        .try_with(|cache| cache.try_borrow_mut().ok()?.get(&address))
        .ok()
        .flatten();
    if let Some(subject) = cached {
        ruststream::client::recycle_address(address);
        return Ok(subject);
    }
    check_subject(&address, false)?;
    let subject = Subject::from(address);
    let _ = SUBJECTS.try_with(|cache| {
        if let Ok(mut cache) = cache.try_borrow_mut() {
            cache.missed(&subject);
        }
    });
    Ok(subject)
}

/// A core publish, ready to hand to async-nats.
pub(crate) struct CorePublish {
    subject: OnceSubject,
    payload: Bytes,
    reply: Option<OnceSubject>,
    headers: Option<async_nats::HeaderMap>,
}

/// A subject handed to async-nats without a copy. `ToSubject` for `String` copies the text,
/// and for `Subject` clones it (a `Bytes` made from a `String` allocates on its first clone);
/// this one gives its subject away: async-nats asks each publish for its subject once.
struct OnceSubject(Cell<Option<Subject>>);

impl OnceSubject {
    fn new(subject: String) -> Self {
        OnceSubject(Cell::new(Some(Subject::from(subject))))
    }
}

impl ToSubject for OnceSubject {
    fn to_subject(&self) -> Subject {
        self.0
            .take()
            .expect("async-nats takes a publish subject once")
    }
}

/// A live core NATS connection (cheap to clone).
///
/// Delivery is at most once: [`IncomingMessage::ack`] and `nack(false)` are accepted no-ops,
/// `nack(true)` returns [`Error::Unsupported`], `reject` drops (no dead letter). Use
/// [`JetStreamBroker`] for acknowledgements and redelivery.
#[derive(Debug, Clone)]
pub struct NatsConnection {
    shared: Arc<Shared>,
}

impl NatsConnection {
    /// True after [`Connection::shutdown`].
    pub fn is_closed(&self) -> bool {
        self.shared.check_open().is_err()
    }
}

impl Publisher for NatsConnection {
    fn publish(&self, message: OutgoingMessage) -> impl Future<Output = Result<()>> + Send {
        let prepared = self.shared.prepare_core(message);
        let shared = &*self.shared;
        // One async level over async-nats' publish: every level moves the inner future.
        async move {
            let CorePublish {
                subject,
                payload,
                reply,
                headers,
            } = prepared?;
            shared.check_open()?;
            let client = &shared.client;
            match (reply, headers) {
                (None, None) => client.publish(subject, payload).await,
                (None, Some(h)) => client.publish_with_headers(subject, h, payload).await,
                (Some(r), None) => client.publish_with_reply(subject, r, payload).await,
                (Some(r), Some(h)) => {
                    client
                        .publish_with_reply_and_headers(subject, r, h, payload)
                        .await
                }
            }
            .map_err(|e| shared.err(e))
        }
    }

    async fn flush(&self) -> Result<()> {
        self.shared.check_open()?;
        self.shared.flush().await
    }
}

impl Subscriber for NatsConnection {
    type Message = NatsMessage;
    type Subscription = NatsSubscription;

    async fn subscribe(
        &self,
        address: &Address,
        options: SubscribeOptions,
    ) -> Result<NatsSubscription> {
        self.shared.check_open()?;
        if options.durable.is_some() {
            return Err(Error::unsupported(
                "durable subscriptions need JetStream (NatsBroker::jetstream)",
            ));
        }
        let subject = self.shared.subjects.subscribe_subject(address)?;
        let client = &self.shared.client;
        let sub = match options.queue_group {
            Some(group) => client.queue_subscribe(subject, group).await,
            None => client.subscribe(subject).await,
        }
        .map_err(|e| self.shared.err(e))?;
        // Resolve once the server registered the interest, so a publish from another
        // connection right after `subscribe` is delivered.
        self.shared.flush().await?;
        Ok(NatsSubscription {
            inner: until_closed(sub, self.shared.closed_signal()),
            subjects: self.shared.subjects,
        })
    }
}

impl Connection for NatsConnection {
    fn capabilities(&self) -> Capabilities {
        let mut c = Capabilities::NONE;
        c.headers = true;
        c.queue_groups = true;
        c.ordered = true;
        c.request_reply = true;
        c.batch = true;
        c.wildcards = true;
        c
    }

    async fn shutdown(self) -> Result<()> {
        self.shared.shutdown().await
    }
}

/// Batches of core NATS messages, gathered client-side from an ordinary subscription.
pub type NatsBatches = Batched<NatsSubscription, NatsMessage>;

impl BatchSubscriber for NatsConnection {
    type Batches = NatsBatches;

    /// Batches are gathered client-side from an ordinary subscription.
    async fn subscribe_batch(
        &self,
        address: &Address,
        options: SubscribeOptions,
        max: usize,
        max_wait: Duration,
    ) -> Result<NatsBatches> {
        let sub = self.subscribe(address, options).await?;
        Ok(NatsBatches::new(sub, max, max_wait))
    }
}

impl RequestReply for NatsConnection {
    async fn request(&self, message: OutgoingMessage, timeout: Duration) -> Result<Reply> {
        self.shared.check_open()?;
        let mut message = self.shared.subjects.outgoing(message)?;
        let correlation = match message.correlation_id.clone() {
            Some(c) => c,
            None => {
                let c = self.shared.client.new_inbox();
                let c = c.rsplit('.').next().unwrap_or(&c).to_owned();
                message.correlation_id = Some(c.clone());
                c
            }
        };
        let headers = self.shared.nats_headers(&message, false)?;
        let mut request = async_nats::Request::new()
            .payload(message.payload)
            .timeout(Some(timeout));
        if let Some(h) = headers {
            request = request.headers(h);
        }
        let reply = self
            .shared
            .client
            .send_request(message.address, request)
            .await
            .map_err(|e| match e.kind() {
                async_nats::RequestErrorKind::TimedOut => {
                    Error::Timeout(format!("no reply within {timeout:?}").into())
                }
                async_nats::RequestErrorKind::NoResponders => {
                    self.shared.err("no responders for the request subject")
                }
                _ => self.shared.err(e),
            })?;
        let headers = from_nats_headers(reply.headers.as_ref());
        let correlation_id = crate::util::correlation_of(&headers)
            .map(str::to_owned)
            .or(Some(correlation));
        Ok(Reply::new(reply.payload, headers, correlation_id))
    }
}

/// A core NATS subscription.
pub struct NatsSubscription {
    inner: UntilClosed<async_nats::Subscriber>,
    subjects: SubjectMapping,
}

impl std::fmt::Debug for NatsSubscription {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NatsSubscription").finish_non_exhaustive()
    }
}

impl Stream for NatsSubscription {
    type Item = Result<NatsMessage>;
    #[inline]
    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let subjects = self.subjects;
        self.inner
            .poll_next_unpin(cx)
            .map(|m| m.map(|m| Ok(NatsMessage::received(m, subjects))))
    }
}

/// A message delivered by core NATS.
#[derive(Debug, Clone)]
pub struct NatsMessage {
    /// The address (the subject itself unless the subject mapping changed it: no copy).
    subject: Subject,
    payload: Bytes,
    headers: Headers,
    reply_to: Option<Subject>,
}

impl From<async_nats::Message> for NatsMessage {
    /// Subject and reply subject taken as they are ([`SubjectMapping::Native`]).
    fn from(m: async_nats::Message) -> Self {
        NatsMessage::received(m, SubjectMapping::Native)
    }
}

impl NatsMessage {
    /// A received message, its subject and reply subject mapped back to addresses.
    #[inline]
    pub(crate) fn received(m: async_nats::Message, subjects: SubjectMapping) -> Self {
        let async_nats::Message {
            subject,
            reply,
            payload,
            headers,
            ..
        } = m;
        let headers = match &headers {
            None => Headers::new(),
            Some(h) => from_nats_headers(Some(h)),
        };
        let (subject, reply_to) = match subjects {
            // The usual case, decided without a call.
            SubjectMapping::Native => (subject, reply),
            _ => (
                mapped(subject, subjects),
                reply.map(|r| mapped(r, subjects)),
            ),
        };
        NatsMessage {
            subject,
            payload,
            headers,
            reply_to,
        }
    }
}

/// `subject` as an address: itself (no copy), or its mapped form.
fn mapped(subject: Subject, subjects: SubjectMapping) -> Subject {
    match subjects.address(&subject) {
        Cow::Borrowed(_) => subject,
        Cow::Owned(address) => Subject::from(address),
    }
}

impl IncomingMessage for NatsMessage {
    fn payload(&self) -> &[u8] {
        &self.payload
    }
    fn headers(&self) -> &Headers {
        &self.headers
    }
    fn address(&self) -> &str {
        &self.subject
    }
    fn reply_to(&self) -> Option<&str> {
        self.reply_to.as_deref()
    }
    fn correlation_id(&self) -> Option<&str> {
        crate::util::correlation_of(&self.headers)
    }
    fn attempt(&self) -> u32 {
        1
    }
    /// Core NATS has no acknowledgements: accepted, nothing to do (the message is dropped
    /// here, not moved into the returned future).
    fn ack(self) -> impl Future<Output = Result<()>> + Send {
        drop(self);
        std::future::ready(Ok(()))
    }
    /// `nack(false)` drops (accepted); `nack(true)` is [`Error::Unsupported`]: core NATS
    /// cannot redeliver.
    async fn nack(self, requeue: bool) -> Result<()> {
        if requeue {
            Err(Error::unsupported(
                "core NATS cannot redeliver; use JetStream for nack with requeue",
            ))
        } else {
            Ok(())
        }
    }
    /// Dropped: core NATS has no dead letters.
    async fn reject(self) -> Result<()> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_subject_cache_keeps_a_repeated_subject_and_forgets_unused_ones() {
        let mut cache = SubjectCache::new();
        let a = Subject::from("orders.a");
        // Kept only once misses piled up.
        for _ in 0..SUBJECT_CACHE_AFTER - 1 {
            assert!(cache.get("orders.a").is_none());
            cache.missed(&a);
        }
        assert!(cache.get("orders.a").is_none());
        cache.missed(&a);
        assert_eq!(cache.get("orders.a").as_deref(), Some("orders.a"));
        // Not a prefix or another length.
        assert!(cache.get("orders.").is_none() && cache.get("orders.ab").is_none());
        // A hit resets the count; the full cache replaces entries not used lately.
        for i in 0..3 * SUBJECT_CACHE {
            let s = Subject::from(format!("other.{i}"));
            for _ in 0..SUBJECT_CACHE_AFTER {
                cache.missed(&s);
            }
            assert_eq!(cache.get(&s).as_deref(), Some(s.as_str()), "{i}");
        }
        let kept = cache.entries.iter().flatten().count();
        assert_eq!(kept, SUBJECT_CACHE);
    }
}
