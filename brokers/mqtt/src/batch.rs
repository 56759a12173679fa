//! Batch subscriptions over an ordinary subscription.

use std::time::Duration;

use ruststream::capability::{BatchSubscriber, Batched};
use ruststream::{Address, Result, SubscribeOptions, Subscriber};

use crate::{MqttConnection, MqttMessage, MqttSubscription};

/// Batches of [`MqttMessage`]s: up to `max` messages, or fewer once `max_wait` has passed since
/// the first message of the batch arrived.
pub type MqttBatches = Batched<MqttSubscription, MqttMessage>;

impl BatchSubscriber for MqttConnection {
    type Batches = MqttBatches;

    async fn subscribe_batch(
        &self,
        address: &Address,
        options: SubscribeOptions,
        max: usize,
        max_wait: Duration,
    ) -> Result<MqttBatches> {
        let sub = self.subscribe(address, options).await?;
        Ok(MqttBatches::new(sub, max, max_wait))
    }
}
