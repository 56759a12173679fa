//! Request/reply over Kafka: each connection that sends a request gets a private inbox topic
//! (`<reply_prefix>.<client id>.<random>`, one partition, deleted at shutdown); requests carry
//! it in the `reply_to` header and a correlation id in `correlation_id`, and replies are
//! matched by that id.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures_util::StreamExt;
use ruststream::capability::{Reply, RequestReply};
use ruststream::{
    Address, Error, IncomingMessage, OutgoingMessage, Result, SubscribeOptions, Subscriber,
};
use tokio::sync::oneshot;

use crate::connection::{KafkaConnection, unique_suffix};

/// The inbox of one connection.
pub(crate) struct Replies {
    pub(crate) topic: String,
    waiting: Mutex<HashMap<String, oneshot::Sender<Reply>>>,
}

/// Removes a request's entry however the request ends.
struct Waiting<'a> {
    replies: &'a Replies,
    id: String,
}

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        if let Ok(mut w) = self.replies.waiting.lock() {
            w.remove(&self.id);
        }
    }
}

fn topic_safe(s: &str) -> String {
    s.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect()
}

impl KafkaConnection {
    async fn replies(&self) -> Result<Arc<Replies>> {
        self.shared
            .replies
            .get_or_try_init(|| async {
                let config = &self.shared.config;
                let topic = format!(
                    "{}.{}.{}",
                    config.reply_prefix,
                    topic_safe(&config.client_id),
                    unique_suffix()
                );
                let address = Address::parse(&topic).map_err(|e| Error::InvalidAddress {
                    address: topic.clone(),
                    reason: e.to_string().into(),
                })?;
                let mut inbox = self.subscribe(&address, SubscribeOptions::new()).await?;
                let replies = Arc::new(Replies {
                    topic,
                    waiting: Mutex::new(HashMap::new()),
                });
                let dispatch = replies.clone();
                let task = tokio::spawn(async move {
                    while let Some(Ok(m)) = inbox.next().await {
                        let id = m.correlation_id().map(str::to_owned);
                        let waiter = id
                            .as_ref()
                            .and_then(|id| dispatch.waiting.lock().ok()?.remove(id));
                        if let Some(tx) = waiter {
                            let _ = tx.send(Reply::new(
                                bytes::Bytes::copy_from_slice(m.payload()),
                                m.headers().clone(),
                                id,
                            ));
                        } else {
                            tracing::debug!(correlation_id = ?id, "kafka: a reply nobody waits for (late or unknown)");
                        }
                        let _ = m.ack().await;
                    }
                });
                self.shared.track(task);
                Ok(replies)
            })
            .await
            .cloned()
    }
}

impl RequestReply for KafkaConnection {
    async fn request(&self, mut message: OutgoingMessage, timeout: Duration) -> Result<Reply> {
        if self.shared.is_closed() {
            return Err(Error::Closed);
        }
        let ask = async {
            let replies = self.replies().await?;
            let id = message.correlation_id.clone().unwrap_or_else(unique_suffix);
            message.correlation_id = Some(id.clone());
            message.reply_to = Some(replies.topic.clone());
            let (tx, rx) = oneshot::channel();
            replies
                .waiting
                .lock()
                .map_err(|_| Error::transport("kafka", "reply table poisoned"))?
                .insert(id.clone(), tx);
            let _waiting = Waiting {
                replies: &replies,
                id,
            };
            self.shared.publish(message).await?;
            rx.await.map_err(|_| Error::Closed)
        };
        match tokio::time::timeout(timeout, ask).await {
            Ok(reply) => reply,
            Err(_) => Err(Error::Timeout(
                format!("kafka: no reply within {timeout:?}").into(),
            )),
        }
    }
}
