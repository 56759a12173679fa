//! Batch subscriptions over an ordinary subscription.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use futures_core::Stream;
use ruststream::capability::BatchSubscriber;
use ruststream::{Address, Result, SubscribeOptions, Subscriber};

use crate::{MqttConnection, MqttMessage, MqttSubscription};

/// Batches of [`MqttMessage`]s: up to `max` messages, or fewer once `max_wait` has passed since
/// the first message of the batch arrived.
pub struct MqttBatches {
    sub: MqttSubscription,
    max: usize,
    max_wait: Duration,
    buf: Vec<MqttMessage>,
    timer: Option<Pin<Box<tokio::time::Sleep>>>,
    ended: bool,
}

impl std::fmt::Debug for MqttBatches {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MqttBatches")
            .field("subscription", &self.sub)
            .field("max", &self.max)
            .field("max_wait", &self.max_wait)
            .finish_non_exhaustive()
    }
}

impl Stream for MqttBatches {
    type Item = Result<Vec<MqttMessage>>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
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

impl BatchSubscriber for MqttConnection {
    type Batches = MqttBatches;

    async fn subscribe_batch(
        &self,
        address: &Address,
        options: SubscribeOptions,
        max: usize,
        max_wait: Duration,
    ) -> Result<MqttBatches> {
        let max = max.max(1);
        let sub = self.subscribe(address, options).await?;
        Ok(MqttBatches {
            sub,
            max,
            max_wait,
            buf: Vec::with_capacity(max),
            timer: None,
            ended: false,
        })
    }
}
