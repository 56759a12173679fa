//! Request/reply over either broker: each connection has an inbox address (a stream or a
//! channel named `ruststream.inbox.<connection id>`), subscribed on the first request; replies
//! are matched to requests by correlation id.

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures_util::StreamExt;
use ruststream::capability::Reply;
use ruststream::{
    Address, Error, IncomingMessage, OutgoingMessage, Publisher, Result, SubscribeOptions,
    Subscriber,
};
use tokio::sync::{OnceCell, oneshot};

type Pending = Arc<Mutex<HashMap<String, oneshot::Sender<Reply>>>>;

/// Reply addresses that are Pub/Sub channels, learned from delivered stream entries written in
/// FastStream's format (whose replies go over Pub/Sub): a Streams connection publishes to
/// these with `PUBLISH`. Bounded: the oldest are forgotten first.
#[derive(Debug, Default)]
pub(crate) struct ReplyChannels {
    /// Whether anything was learned (so publishes skip the lock until then).
    any: AtomicBool,
    known: Mutex<Learned>,
}

/// The learned channels, and the order they were learned in.
#[derive(Debug, Default)]
struct Learned {
    set: HashSet<String>,
    order: VecDeque<String>,
}

impl ReplyChannels {
    const MAX: usize = 4096;

    fn lock(&self) -> std::sync::MutexGuard<'_, Learned> {
        self.known.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Remember that `address` is a Pub/Sub channel.
    pub(crate) fn learn(&self, address: &str) {
        let mut known = self.lock();
        if known.set.contains(address) {
            return;
        }
        if known.order.len() >= Self::MAX
            && let Some(old) = known.order.pop_front()
        {
            known.set.remove(&old);
        }
        known.set.insert(address.to_owned());
        known.order.push_back(address.to_owned());
        self.any.store(true, Ordering::Release);
    }

    /// Whether `address` was learned as a Pub/Sub channel.
    pub(crate) fn is_channel(&self, address: &str) -> bool {
        self.any.load(Ordering::Acquire) && self.lock().set.contains(address)
    }
}

/// A connection's reply inbox.
pub(crate) struct Inbox {
    address: String,
    pending: Pending,
    started: OnceCell<()>,
    next: AtomicU64,
}

impl Inbox {
    pub(crate) fn new(instance: &str) -> Self {
        Inbox {
            address: format!("ruststream.inbox.{instance}"),
            pending: Arc::new(Mutex::new(HashMap::new())),
            started: OnceCell::new(),
            next: AtomicU64::new(0),
        }
    }

    /// The inbox address.
    pub(crate) fn address(&self) -> &str {
        &self.address
    }

    /// Whether the inbox was ever subscribed.
    pub(crate) fn started(&self) -> bool {
        self.started.initialized()
    }

    fn pending(&self) -> std::sync::MutexGuard<'_, HashMap<String, oneshot::Sender<Reply>>> {
        self.pending.lock().unwrap_or_else(|p| p.into_inner())
    }

    async fn start<S>(&self, conn: &S) -> Result<()>
    where
        S: Subscriber,
    {
        self.started
            .get_or_try_init(|| async {
                let address = Address::parse(&self.address).map_err(|e| Error::InvalidAddress {
                    address: self.address.clone(),
                    reason: e.to_string().into(),
                })?;
                let mut sub = conn.subscribe(&address, SubscribeOptions::new()).await?;
                let pending = self.pending.clone();
                tokio::spawn(async move {
                    while let Some(Ok(m)) = sub.next().await {
                        let corr = m.correlation_id().map(str::to_owned);
                        let waiter = corr.as_ref().and_then(|c| {
                            pending.lock().unwrap_or_else(|p| p.into_inner()).remove(c)
                        });
                        if let Some(w) = waiter {
                            let payload = bytes::Bytes::copy_from_slice(m.payload());
                            let _ = w.send(Reply::new(payload, m.headers().clone(), corr));
                        }
                        let _ = m.ack().await;
                    }
                });
                Ok(())
            })
            .await
            .map(|_| ())
    }

    /// Send `message` as a request from `conn`, with the inbox subscribed on `inbox`, and
    /// await its reply.
    pub(crate) async fn request<C, S>(
        &self,
        conn: &C,
        inbox: &S,
        mut message: OutgoingMessage,
        timeout: Duration,
        instance: &str,
    ) -> Result<Reply>
    where
        C: Publisher,
        S: Subscriber,
    {
        self.start(inbox).await?;
        let corr = message
            .correlation_id
            .clone()
            .unwrap_or_else(|| format!("{instance}-{}", self.next.fetch_add(1, Ordering::Relaxed)));
        message.correlation_id = Some(corr.clone());
        message.reply_to = Some(self.address.clone());
        let (tx, rx) = oneshot::channel();
        self.pending().insert(corr.clone(), tx);
        let outcome = tokio::time::timeout(timeout, async {
            conn.publish(message).await?;
            rx.await.map_err(|_| Error::Closed)
        })
        .await;
        match outcome {
            Ok(Ok(reply)) => Ok(reply),
            Ok(Err(e)) => {
                self.pending().remove(&corr);
                Err(e)
            }
            Err(_) => {
                self.pending().remove(&corr);
                Err(Error::Timeout(
                    format!("redis: no reply within {timeout:?}").into(),
                ))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn learned_channels_are_bounded() {
        let r = ReplyChannels::default();
        assert!(!r.is_channel("a"));
        r.learn("a");
        assert!(r.is_channel("a") && !r.is_channel("b"));
        for i in 0..ReplyChannels::MAX {
            r.learn(&i.to_string());
        }
        assert!(!r.is_channel("a"), "the oldest is forgotten");
        assert!(r.is_channel("0") && r.is_channel(&(ReplyChannels::MAX - 1).to_string()));
    }
}
