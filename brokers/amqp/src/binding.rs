//! AsyncAPI AMQP bindings (`bindings.amqp` of a channel, binding version 0.3.0) applied to the
//! broker configuration and to subscriptions.
//!
//! ```
//! use ruststream_amqp::{ChannelBinding, Config, ExchangeKind};
//! let bindings = serde_json::json!({
//!     "amqp": {
//!         "is": "routingKey",
//!         "exchange": { "name": "orders", "type": "topic", "durable": true, "autoDelete": false },
//!         "queue": { "name": "billing", "durable": true }
//!     }
//! });
//! let binding = ChannelBinding::from_bindings(&bindings).unwrap().unwrap();
//! let config = binding.configure(Config::default()).unwrap();
//! assert_eq!((config.exchange.as_str(), config.exchange_kind), ("orders", ExchangeKind::Topic));
//! assert_eq!(binding.subscribe_options().durable.as_deref(), Some("billing"));
//! ```

use ruststream::{Error, Result, SubscribeOptions};
use serde::Deserialize;

use crate::config::{Config, ExchangeKind};

/// The `amqp` channel binding.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct ChannelBinding {
    /// `routingKey` (the channel is an exchange routing key) or `queue`.
    pub is: Option<String>,
    /// The exchange, for `is: routingKey`.
    pub exchange: Option<ExchangeBinding>,
    /// The queue.
    pub queue: Option<QueueBinding>,
}

/// `exchange` of the AMQP channel binding.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct ExchangeBinding {
    /// Exchange name.
    pub name: Option<String>,
    /// `topic`, `direct`, `fanout`, `default` or `headers`.
    #[serde(rename = "type")]
    pub kind: Option<String>,
    /// Survives a broker restart.
    pub durable: Option<bool>,
    /// Deleted when the last queue is unbound.
    pub auto_delete: Option<bool>,
    /// Virtual host.
    pub vhost: Option<String>,
}

/// `queue` of the AMQP channel binding.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct QueueBinding {
    /// Queue name.
    pub name: Option<String>,
    /// Survives a broker restart.
    pub durable: Option<bool>,
    /// Used by one connection only.
    pub exclusive: Option<bool>,
    /// Deleted when the last consumer leaves.
    pub auto_delete: Option<bool>,
    /// Virtual host.
    pub vhost: Option<String>,
}

impl ChannelBinding {
    /// Read the `amqp` entry of a channel's `bindings` object (`Ok(None)` when it has none).
    pub fn from_bindings(bindings: &serde_json::Value) -> Result<Option<Self>> {
        match bindings.get("amqp") {
            None | Some(serde_json::Value::Null) => Ok(None),
            Some(amqp) => Self::from_json(amqp).map(Some),
        }
    }

    /// Parse the `amqp` binding object itself.
    pub fn from_json(amqp: &serde_json::Value) -> Result<Self> {
        ChannelBinding::deserialize(amqp)
            .map_err(|e| Error::Config(format!("invalid AsyncAPI amqp channel binding: {e}")))
    }

    /// Apply the exchange of an `is: routingKey` binding to `config` (name, type, durability,
    /// auto-delete). `headers` and `default` exchanges are refused: RustStream routes by
    /// routing key on an exchange of its own.
    pub fn configure(&self, mut config: Config) -> Result<Config> {
        let Some(exchange) = &self.exchange else {
            return Ok(config);
        };
        if let Some(name) = &exchange.name {
            config.exchange = name.clone();
        }
        if let Some(kind) = &exchange.kind {
            config.exchange_kind = match kind.as_str() {
                "topic" => ExchangeKind::Topic,
                "direct" => ExchangeKind::Direct,
                "fanout" => ExchangeKind::Fanout,
                other => {
                    return Err(Error::Config(format!(
                        "amqp binding: exchange type `{other}` is not supported (use topic, \
                         direct or fanout)"
                    )));
                }
            };
        }
        if let Some(durable) = exchange.durable {
            config.exchange_durable = durable;
        }
        if let Some(auto_delete) = exchange.auto_delete {
            config.exchange_auto_delete = auto_delete;
        }
        Ok(config)
    }

    /// Subscription options for the binding's queue: a named queue that is durable (or not
    /// declared otherwise) becomes a durable subscription of that name; a non-durable named
    /// queue becomes a queue group of that name (members share one queue). Without a queue
    /// name: default options (an exclusive queue per subscriber).
    pub fn subscribe_options(&self) -> SubscribeOptions {
        let options = SubscribeOptions::new();
        match &self.queue {
            Some(QueueBinding {
                name: Some(name),
                durable,
                exclusive,
                ..
            }) if *exclusive != Some(true) => {
                if durable.unwrap_or(true) {
                    options.durable(name.clone())
                } else {
                    options.queue_group(name.clone())
                }
            }
            _ => options,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn corpus_style_bindings() {
        let b = ChannelBinding::from_bindings(
            &json!({"amqp": {"is": "queue", "queue": {"exclusive": true}}}),
        )
        .unwrap()
        .unwrap();
        assert_eq!(b.is.as_deref(), Some("queue"));
        assert_eq!(b.subscribe_options(), SubscribeOptions::new());
        assert_eq!(b.configure(Config::default()).unwrap(), Config::default());
        let group =
            ChannelBinding::from_json(&json!({"queue": {"name": "w", "durable": false}})).unwrap();
        assert_eq!(group.subscribe_options().queue_group.as_deref(), Some("w"));
        assert!(
            ChannelBinding::from_bindings(&json!({"nats": {}}))
                .unwrap()
                .is_none()
        );
    }

    #[test]
    fn refuses_unsupported_exchange_types_and_bad_shapes() {
        let b = ChannelBinding::from_json(&json!({"exchange": {"type": "headers"}})).unwrap();
        assert!(matches!(
            b.configure(Config::default()),
            Err(Error::Config(_))
        ));
        assert!(ChannelBinding::from_json(&json!({"exchange": {"durable": "yes"}})).is_err());
    }
}
