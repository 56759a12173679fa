//! The delivered message.

use super::*;

/// A message received over MQTT.
pub struct MqttMessage {
    pub(super) topic: String,
    pub(super) payload: Bytes,
    pub(super) headers: Headers,
    pub(super) reply_to: Option<String>,
    pub(super) correlation_id: Option<String>,
    pub(super) retained: bool,
    pub(super) dup: bool,
    pub(super) ack: Option<Arc<AckToken>>,
}

impl std::fmt::Debug for MqttMessage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MqttMessage")
            .field("topic", &self.topic)
            .field("retained", &self.retained)
            .field("dup", &self.dup)
            .finish_non_exhaustive()
    }
}

impl MqttMessage {
    pub(super) fn clone_without_ack(&self) -> MqttMessage {
        MqttMessage {
            topic: self.topic.clone(),
            payload: self.payload.clone(),
            headers: self.headers.clone(),
            reply_to: self.reply_to.clone(),
            correlation_id: self.correlation_id.clone(),
            retained: self.retained,
            dup: self.dup,
            ack: None,
        }
    }

    /// Whether the broker delivered this as a retained message.
    pub fn retained(&self) -> bool {
        self.retained
    }

    async fn settle(self) -> Result<()> {
        match self.ack {
            Some(token) => token.settle().await,
            None => Ok(()),
        }
    }
}

impl IncomingMessage for MqttMessage {
    fn payload(&self) -> &[u8] {
        &self.payload
    }

    fn headers(&self) -> &Headers {
        &self.headers
    }

    fn address(&self) -> &str {
        &self.topic
    }

    fn reply_to(&self) -> Option<&str> {
        self.reply_to.as_deref()
    }

    fn correlation_id(&self) -> Option<&str> {
        self.correlation_id
            .as_deref()
            .or_else(|| self.headers.get(ruststream::message::names::CORRELATION_ID))
    }

    /// `2` when the broker flagged the packet as a duplicate (a redelivery), else `1`.
    fn attempt(&self) -> u32 {
        if self.dup { 2 } else { 1 }
    }

    /// Send the `PUBACK` / `PUBREC` (QoS 1/2); nothing for QoS 0.
    async fn ack(self) -> Result<()> {
        self.settle().await
    }

    /// `nack(false)` acknowledges (drops). `nack(true)` returns [`Error::Unsupported`]: MQTT has
    /// no negative acknowledgement; the message stays unacknowledged and a persistent session
    /// gets it again only after a reconnect.
    async fn nack(self, requeue: bool) -> Result<()> {
        if requeue {
            return Err(Error::unsupported(
                "mqtt has no nack; an unacknowledged message is redelivered only after a \
                 reconnect of a persistent session",
            ));
        }
        self.settle().await
    }

    /// MQTT has no dead letter: acknowledged and dropped.
    async fn reject(self) -> Result<()> {
        self.settle().await
    }
}
