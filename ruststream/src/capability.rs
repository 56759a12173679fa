//! Optional capabilities. A broker implements the traits it supports and declares them in
//! [`Capabilities`](crate::Capabilities); none of them is part of the mandatory contract.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context as TaskContext, Poll};
use std::time::Duration;

use bytes::Bytes;
use futures_core::Stream;

use crate::{
    Address, Connection, Headers, IncomingMessage, OutgoingMessage, Result, SubscribeOptions,
};

/// A reply received for a request.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Reply {
    /// Encoded reply payload.
    pub payload: Bytes,
    /// Reply headers.
    pub headers: Headers,
    /// Correlation id the reply carried.
    pub correlation_id: Option<String>,
}

impl Reply {
    /// Build a reply value (for broker implementations).
    pub fn new(payload: Bytes, headers: Headers, correlation_id: Option<String>) -> Self {
        Reply {
            payload,
            headers,
            correlation_id,
        }
    }
}

/// Request/reply: publish a request and await the one reply that correlates with it.
///
/// The responder publishes its reply to the request's `reply_to` with the same correlation id,
/// through the ordinary [`Publisher`](crate::Publisher).
pub trait RequestReply: Connection {
    /// Send `message` as a request; resolve with its reply, or [`Error::Timeout`](crate::Error)
    /// after `timeout`. The broker fills in `reply_to` and, when absent, the correlation id.
    fn request(
        &self,
        message: OutgoingMessage,
        timeout: Duration,
    ) -> impl Future<Output = Result<Reply>> + Send;
}

/// Batch subscription: messages delivered in batches of up to `max` or after `max_wait`.
pub trait BatchSubscriber: Connection {
    /// The batch stream.
    type Batches: Stream<Item = Result<Vec<Self::Message>>> + Send + Unpin + 'static;

    /// Subscribe in batches.
    fn subscribe_batch(
        &self,
        address: &Address,
        options: SubscribeOptions,
        max: usize,
        max_wait: Duration,
    ) -> impl Future<Output = Result<Self::Batches>> + Send;
}

/// Batches from an ordinary subscription: up to `max` messages, or fewer once `max_wait` has
/// passed since the first message of the batch arrived; the last partial batch is delivered when
/// the subscription ends. Broker crates use it to implement [`BatchSubscriber`] on top of their
/// subscription stream.
pub struct Batched<S, M> {
    sub: S,
    max: usize,
    max_wait: Duration,
    buf: Vec<M>,
    timer: Option<Pin<Box<tokio::time::Sleep>>>,
    ended: bool,
}

impl<S, M> Batched<S, M>
where
    S: Stream<Item = Result<M>> + Unpin,
{
    /// Batch `subscription` into groups of at most `max` (at least 1) messages.
    pub fn new(subscription: S, max: usize, max_wait: Duration) -> Self {
        let max = max.max(1);
        Batched {
            sub: subscription,
            max,
            max_wait,
            buf: Vec::with_capacity(max.min(1024)),
            timer: None,
            ended: false,
        }
    }
}

// Buffered messages are never pinned, so only the subscription decides.
impl<S: Unpin, M> Unpin for Batched<S, M> {}

impl<S: fmt::Debug, M> fmt::Debug for Batched<S, M> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Batched")
            .field("subscription", &self.sub)
            .field("max", &self.max)
            .field("max_wait", &self.max_wait)
            .field("buffered", &self.buf.len())
            .finish_non_exhaustive()
    }
}

impl<S, M> Stream for Batched<S, M>
where
    S: Stream<Item = Result<M>> + Unpin,
{
    type Item = Result<Vec<M>>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut TaskContext<'_>) -> Poll<Option<Self::Item>> {
        let this = &mut *self;
        while !this.ended && this.buf.len() < this.max {
            match Pin::new(&mut this.sub).poll_next(cx) {
                Poll::Ready(Some(Ok(m))) => {
                    if this.buf.is_empty() {
                        this.timer = Some(Box::pin(tokio::time::sleep(this.max_wait)));
                    }
                    this.buf.push(m);
                }
                Poll::Ready(Some(Err(e))) => return Poll::Ready(Some(Err(e))),
                Poll::Ready(None) => this.ended = true,
                Poll::Pending => break,
            }
        }
        let due = this.buf.len() >= this.max
            || this.ended
            || this
                .timer
                .as_mut()
                .is_some_and(|t| t.as_mut().poll(cx).is_ready());
        if due && !this.buf.is_empty() {
            this.timer = None;
            return Poll::Ready(Some(Ok(std::mem::take(&mut this.buf))));
        }
        if this.ended {
            return Poll::Ready(None);
        }
        Poll::Pending
    }
}

/// An open publish transaction: all messages become visible on commit, none on abort.
pub trait Transaction: Send {
    /// Stage a message.
    fn publish(&mut self, message: OutgoingMessage) -> impl Future<Output = Result<()>> + Send;
    /// Make every staged message visible.
    fn commit(self) -> impl Future<Output = Result<()>> + Send;
    /// Discard every staged message.
    fn abort(self) -> impl Future<Output = Result<()>> + Send;
}

/// Transactional publishing.
pub trait TransactionalPublisher: Connection {
    /// The transaction type.
    type Transaction: Transaction;
    /// Begin a transaction.
    fn begin(&self) -> impl Future<Output = Result<Self::Transaction>> + Send;
}

/// Key-ordered (partitioned) delivery: messages with the same [`OutgoingMessage::key`] are
/// delivered in publish order, even to a queue group.
pub trait Partitioned: Connection {
    /// Number of partitions behind `address`.
    fn partitions(&self, address: &str) -> impl Future<Output = Result<u32>> + Send;
}

/// Redelivery after a delay, on the message type.
pub trait DelayedRedelivery: IncomingMessage {
    /// Negatively acknowledge; the broker redelivers no sooner than `delay`.
    fn nack_with_delay(self, delay: Duration) -> impl Future<Output = Result<()>> + Send;
}
