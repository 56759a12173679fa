//! Request/reply over RabbitMQ direct reply-to (`amq.rabbitmq.reply-to`).
//!
//! Each connection opens one reply channel that consumes the direct reply-to pseudo-queue
//! (no-ack, as RabbitMQ requires) and publishes the requests, so replies need no queue of
//! their own. Replies are matched to requests by correlation id. A responder replies by
//! publishing to the request's `reply_to` with the same correlation id; addresses starting
//! with `amq.rabbitmq.reply-to` are published to the default exchange, as RabbitMQ expects.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures_util::StreamExt;
use lapin::Channel;
use lapin::options::{BasicConsumeOptions, ConfirmSelectOptions};
use lapin::types::FieldTable;
use ruststream::capability::{Reply, RequestReply};
use ruststream::message::names;
use ruststream::{Error, OutgoingMessage, Result};
use tokio::sync::oneshot;

use crate::connection::{AmqpConnection, Inner, PublishError, unique_id};
use crate::headers::{from_properties, to_properties};
use crate::topology::{DIRECT_REPLY_TO, publish_target};

/// Removes a pending request when the request future ends (reply, timeout or drop).
struct PendingGuard<'a> {
    inner: &'a Inner,
    id: String,
}

impl Drop for PendingGuard<'_> {
    fn drop(&mut self) {
        if let Ok(mut pending) = self.inner.pending.lock() {
            pending.remove(&self.id);
        }
    }
}

/// The reply channel, (re)opened with its direct reply-to consumer when needed.
async fn reply_channel(inner: &Arc<Inner>) -> Result<Channel> {
    let mut guard = inner.reply_channel.lock().await;
    if let Some(channel) = guard.as_ref()
        && channel.status().connected()
    {
        return Ok(channel.clone());
    }
    let live = inner.live().await?;
    let setup = async {
        let channel = live.connection.create_channel().await?;
        if inner.config.publisher_confirms {
            channel
                .confirm_select(ConfirmSelectOptions::default())
                .await?;
        }
        let consumer = channel
            .basic_consume(
                DIRECT_REPLY_TO.into(),
                "".into(),
                BasicConsumeOptions {
                    no_ack: true,
                    ..BasicConsumeOptions::default()
                },
                FieldTable::default(),
            )
            .await?;
        Ok::<_, lapin::Error>((channel, consumer))
    };
    let (channel, mut consumer) = setup
        .await
        .map_err(|e| inner.err("opening the reply channel", &e))?;
    let dispatch = inner.clone();
    let task = tokio::spawn(async move {
        loop {
            let next = tokio::select! {
                next = consumer.next() => next,
                _ = dispatch.shutdown_signal() => break,
            };
            let Some(Ok(delivery)) = next else { break };
            let (headers, _) = from_properties(&delivery.properties);
            let correlation_id = delivery
                .properties
                .correlation_id()
                .as_ref()
                .map(|s| s.as_str().to_owned())
                .or_else(|| headers.get(names::CORRELATION_ID).map(str::to_owned));
            let Some(id) = correlation_id else {
                tracing::debug!("amqp reply without correlation id dropped");
                continue;
            };
            let waiter = dispatch.pending.lock().ok().and_then(|mut p| p.remove(&id));
            match waiter {
                Some(tx) => {
                    let reply = Reply::new(Bytes::from(delivery.data), headers, Some(id));
                    let _ = tx.send(reply);
                }
                None => tracing::debug!(correlation_id = %id, "amqp late or unknown reply dropped"),
            }
        }
    });
    inner.track(task);
    *guard = Some(channel.clone());
    Ok(channel)
}

impl RequestReply for AmqpConnection {
    async fn request(&self, mut message: OutgoingMessage, timeout: Duration) -> Result<Reply> {
        let inner = &self.inner;
        if inner.is_closed() {
            return Err(Error::Closed);
        }
        let id = match message.correlation_id.clone().or_else(|| {
            message
                .headers
                .get(names::CORRELATION_ID)
                .map(str::to_owned)
        }) {
            Some(id) => id,
            None => unique_id(),
        };
        message.correlation_id = Some(id.clone());
        message.reply_to = Some(DIRECT_REPLY_TO.to_owned());
        let target = publish_target(&inner.config, &message.address)?;
        let props = to_properties(&message, false, target.rule.map(|r| &r.message))?;

        let (tx, rx) = oneshot::channel();
        if let Ok(mut pending) = inner.pending.lock() {
            pending.insert(id.clone(), tx);
        }
        let _guard = PendingGuard {
            inner,
            id: id.clone(),
        };
        let work = async {
            let channel = reply_channel(inner).await?;
            match inner
                .publish_on(&channel, target, &message.payload, props)
                .await
            {
                Ok(()) => {}
                Err(PublishError::Transport(e)) => {
                    if inner.is_closed() {
                        return Err(Error::Closed);
                    }
                    return Err(inner.err("publishing the request", &e));
                }
                Err(refused) => return Err(refused.refused(&target, "request")),
            }
            tokio::select! {
                reply = rx => reply.map_err(|_| Error::Closed),
                _ = inner.shutdown_signal() => Err(Error::Closed),
            }
        };
        match tokio::time::timeout(timeout, work).await {
            Ok(result) => result,
            Err(_) => Err(Error::Timeout(
                format!(
                    "no reply to request on `{}` within {timeout:?}",
                    message.address
                )
                .into(),
            )),
        }
    }
}
