//! The message delivered by the in-memory broker.

use std::sync::Arc;
use std::time::Duration;

use super::target::{Envelope, TargetHandle};
use super::{ORIGINAL_ADDRESS_HEADER, Settled};
use crate::capability::DelayedRedelivery;
use crate::{Headers, IncomingMessage, OutgoingMessage, Publisher, Result};

/// A message delivered by a [`MemorySubscription`](super::MemorySubscription).
///
/// Dropping it unsettled requeues it (attempt + 1), like an at-least-once broker whose ack
/// deadline passed.
#[derive(Debug)]
pub struct MemoryMessage {
    /// `None` only once settled.
    env: Option<Envelope>,
    target: Arc<TargetHandle>,
}

impl MemoryMessage {
    pub(crate) fn new(env: Envelope, target: Arc<TargetHandle>) -> Self {
        MemoryMessage {
            env: Some(env),
            target,
        }
    }

    #[inline]
    fn env(&self) -> &Envelope {
        self.env
            .as_ref()
            .expect("an unsettled message has its envelope")
    }

    /// Settle: record `outcome` and take the envelope.
    fn settle(&mut self, outcome: Settled) -> Option<Envelope> {
        let env = self.env.take()?;
        if self.target.record
            && let Some(inner) = self.target.inner.upgrade()
        {
            inner.record_settlement(&env, &self.target, outcome);
        }
        Some(env)
    }
}

impl Drop for MemoryMessage {
    fn drop(&mut self) {
        if let Some(env) = self.settle(Settled::Dropped) {
            self.target.requeue(env.next_attempt());
        }
    }
}

impl IncomingMessage for MemoryMessage {
    #[inline]
    fn payload(&self) -> &[u8] {
        &self.env().data.payload
    }
    #[inline]
    fn headers(&self) -> &Headers {
        &self.env().data.headers
    }
    #[inline]
    fn address(&self) -> &str {
        self.env().address(&self.target)
    }
    #[inline]
    fn reply_to(&self) -> Option<&str> {
        self.env().data.reply_to.as_deref()
    }
    #[inline]
    fn correlation_id(&self) -> Option<&str> {
        self.env().data.correlation_id.as_deref()
    }
    #[inline]
    fn key(&self) -> Option<&[u8]> {
        self.env().data.key.as_deref()
    }
    #[inline]
    fn attempt(&self) -> u32 {
        self.env().attempt
    }

    async fn ack(mut self) -> Result<()> {
        if let Some(env) = self.settle(Settled::Acked) {
            self.target.recycle(env.data);
        }
        Ok(())
    }

    async fn nack(mut self, requeue: bool) -> Result<()> {
        if let Some(env) = self.settle(Settled::Nacked { requeue })
            && requeue
        {
            self.target.requeue(env.next_attempt());
        }
        Ok(())
    }

    async fn reject(mut self) -> Result<()> {
        let dead_letter = self.target.dead_letter.clone();
        let Some(env) = self.settle(Settled::Rejected {
            dead_lettered: dead_letter.is_some(),
        }) else {
            return Ok(());
        };
        let (Some(dl), Some(inner)) = (dead_letter, self.target.inner.upgrade()) else {
            return Ok(());
        };
        let data = &env.data;
        let mut out = OutgoingMessage::new(dl, data.payload.clone())
            .with_headers(data.headers.clone())
            .header(ORIGINAL_ADDRESS_HEADER, env.address(&self.target));
        out.key = data.key.clone();
        out.reply_to = data.reply_to.clone();
        out.correlation_id = data.correlation_id.clone();
        super::MemoryConnection::from_inner(inner)
            .publish(out)
            .await
    }
}

impl DelayedRedelivery for MemoryMessage {
    async fn nack_with_delay(mut self, delay: Duration) -> Result<()> {
        let Some(env) = self.settle(Settled::NackedWithDelay(delay)) else {
            return Ok(());
        };
        let target = Arc::clone(&self.target);
        let env = env.next_attempt();
        tokio::spawn(async move {
            tokio::time::sleep(delay).await;
            target.requeue(env);
        });
        Ok(())
    }
}
