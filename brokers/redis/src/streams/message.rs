//! The delivered message and its settlement.

use super::*;

/// Claim an entry back at once (bumps its delivery count) and queue it for its subscription.
async fn redeliver(sub: Arc<SubShared>, id: String, attempt: u32) -> Result<()> {
    let claimed = reply(sub.writer.send(sub.xclaim(Duration::ZERO, [id.as_str()]))).await?;
    let Some((id, entry)) = entry::parse_entries(claimed).into_iter().next() else {
        // No longer pending (acknowledged elsewhere): nothing to redeliver.
        return Ok(());
    };
    let Some(entry) = entry else {
        // Trimmed from the stream while pending.
        return reply(sub.writer.send(sub.xack(&id))).await.map(|_| ());
    };
    if let Some(tx) = sub.tx.upgrade() {
        let m = StreamMessage::new(sub.clone(), entry, attempt.saturating_add(1));
        // Not awaited here: the caller may be the one who has to drain the subscription.
        tokio::spawn(async move {
            let _ = tx.send(Ok(m)).await;
        });
    }
    // Otherwise the subscription is gone; the entry stays pending and another consumer of the
    // group reclaims it after `claim_idle`.
    Ok(())
}

/// A message delivered from a stream through a consumer group.
pub struct StreamMessage {
    pub(super) sub: Arc<SubShared>,
    pub(super) entry: Entry,
    pub(super) attempt: u32,
}

impl std::fmt::Debug for StreamMessage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StreamMessage")
            .field("stream", &self.sub.key)
            .field("id", &self.entry.id)
            .field("attempt", &self.attempt)
            .finish_non_exhaustive()
    }
}

impl StreamMessage {
    /// A delivery of `entry`; a Pub/Sub reply address it carries is learned by the connection.
    pub(super) fn new(sub: Arc<SubShared>, entry: Entry, attempt: u32) -> Self {
        if entry.pubsub_reply
            && let Some(r) = &entry.reply_to
        {
            sub.replies.learn(r);
        }
        StreamMessage {
            sub,
            entry,
            attempt,
        }
    }

    /// The stream entry id (`<ms>-<seq>`).
    pub fn id(&self) -> &str {
        &self.entry.id
    }
}

impl IncomingMessage for StreamMessage {
    fn payload(&self) -> &[u8] {
        &self.entry.payload
    }

    fn headers(&self) -> &Headers {
        &self.entry.headers
    }

    fn address(&self) -> &str {
        &self.sub.key
    }

    fn reply_to(&self) -> Option<&str> {
        self.entry.reply_to.as_deref()
    }

    fn correlation_id(&self) -> Option<&str> {
        self.entry.correlation_id.as_deref().or_else(|| {
            self.entry
                .headers
                .get(ruststream::message::names::CORRELATION_ID)
        })
    }

    fn key(&self) -> Option<&[u8]> {
        self.entry.key.as_deref()
    }

    fn attempt(&self) -> u32 {
        self.attempt
    }

    async fn ack(self) -> Result<()> {
        reply(self.sub.writer.send(self.sub.xack(&self.entry.id)))
            .await
            .map(|_| ())
    }

    async fn nack(self, requeue: bool) -> Result<()> {
        if !requeue {
            return self.ack().await;
        }
        if self.attempt >= self.sub.max_attempts {
            return self.sub.dead_letter(&self.entry, self.attempt).await;
        }
        redeliver(self.sub, self.entry.id, self.attempt).await
    }

    async fn reject(self) -> Result<()> {
        self.sub.dead_letter(&self.entry, self.attempt).await
    }
}

impl ruststream::capability::DelayedRedelivery for StreamMessage {
    /// Redelivered to this subscription no sooner than `delay`: until then the entry stays
    /// pending and this consumer keeps resetting its idle time, so other group members do not
    /// reclaim it early. (If this process dies meanwhile, a group member reclaims it after
    /// `claim_idle`.) After `max_attempts` deliveries it is dead-lettered instead.
    async fn nack_with_delay(self, delay: Duration) -> Result<()> {
        if self.attempt >= self.sub.max_attempts {
            return self.sub.dead_letter(&self.entry, self.attempt).await;
        }
        let StreamMessage {
            sub,
            entry,
            attempt,
        } = self;
        tokio::spawn(async move {
            let deadline = tokio::time::Instant::now() + delay;
            let touch_every = (sub.claim_idle / 3).max(Duration::from_millis(10));
            loop {
                let now = tokio::time::Instant::now();
                if now >= deadline {
                    break;
                }
                tokio::time::sleep((deadline - now).min(touch_every)).await;
                if tokio::time::Instant::now() < deadline {
                    // Reset the idle time without counting a delivery.
                    let mut cmd = sub.xclaim(Duration::ZERO, [entry.id.as_str()]);
                    cmd.arg("JUSTID");
                    sub.writer.send_detached(cmd);
                }
            }
            if let Err(e) = redeliver(sub, entry.id, attempt).await {
                tracing::warn!(error = %e, "redis: delayed redelivery failed");
            }
        });
        Ok(())
    }
}
