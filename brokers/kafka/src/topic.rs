//! Addresses as Kafka topics: validation, templates as topic regexes, topic creation.

use std::collections::HashSet;
use std::sync::Mutex;

use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::types::RDKafkaErrorCode;
use ruststream::address::Segment;
use ruststream::{Address, Error, Result};

use crate::Config;

/// Longest topic name Kafka accepts.
const MAX_TOPIC_LEN: usize = 249;

/// Check that `topic` is a legal Kafka topic name (`[a-zA-Z0-9._-]`, 1–249 characters, not
/// `.` or `..`).
///
/// # Errors
/// [`Error::InvalidAddress`] saying why.
pub fn check_topic(topic: &str) -> Result<()> {
    let reason = if topic.is_empty() {
        "a Kafka topic cannot be empty"
    } else if topic.len() > MAX_TOPIC_LEN {
        "a Kafka topic has at most 249 characters"
    } else if topic == "." || topic == ".." {
        "`.` and `..` are not Kafka topics"
    } else if !topic
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
    {
        "a Kafka topic holds only ASCII letters, digits, `.`, `_` and `-`"
    } else {
        return Ok(());
    };
    Err(Error::InvalidAddress {
        address: topic.to_owned(),
        reason: reason.into(),
    })
}

/// The librdkafka subscription pattern of a template: `orders.{id}` → `^orders\.[a-zA-Z0-9_-]+$`
/// (a parameter value is one or more topic characters other than `.`).
///
/// # Errors
/// [`Error::InvalidAddress`] when a literal part holds characters no topic can have.
pub fn template_regex(address: &Address) -> Result<String> {
    let mut out = String::from("^");
    for segment in address.segments() {
        match segment {
            Segment::Literal(l) => {
                for c in l.chars() {
                    match c {
                        '.' => out.push_str("\\."),
                        c if c.is_ascii_alphanumeric() || c == '_' || c == '-' => out.push(c),
                        _ => {
                            return Err(Error::InvalidAddress {
                                address: address.as_str().to_owned(),
                                reason: "a Kafka topic holds only ASCII letters, digits, `.`, `_` and `-`".into(),
                            });
                        }
                    }
                }
            }
            Segment::Param(_) => out.push_str("[a-zA-Z0-9_-]+"),
        }
    }
    out.push('$');
    Ok(out)
}

/// Creates missing topics once per connection.
pub(crate) struct Topics {
    admin: AdminClient<DefaultClientContext>,
    known: Mutex<HashSet<String>>,
}

impl Topics {
    pub(crate) fn new(config: &Config) -> Result<Topics> {
        let admin = config
            .client_config()?
            .create()
            .map_err(|e| config.transport("admin client", e))?;
        Ok(Topics {
            admin,
            known: Mutex::new(HashSet::new()),
        })
    }

    fn is_known(&self, topic: &str) -> bool {
        self.known.lock().is_ok_and(|k| k.contains(topic))
    }

    /// Make sure `topic` exists (creating it as `config` says), unless creation is off.
    pub(crate) async fn ensure(&self, config: &Config, topic: &str) -> Result<()> {
        if !config.create_topics || self.is_known(topic) {
            return Ok(());
        }
        let spec = config.topic_spec(topic);
        let partitions = spec.and_then(|s| s.partitions).unwrap_or(config.partitions);
        let replicas = spec.and_then(|s| s.replicas).unwrap_or(config.replicas);
        let mut new = NewTopic::new(topic, partitions, TopicReplication::Fixed(replicas));
        if let Some(spec) = spec {
            for (k, v) in &spec.config {
                new = new.set(k, v);
            }
        }
        let options = AdminOptions::new()
            .request_timeout(Some(config.request_timeout))
            .operation_timeout(Some(config.request_timeout));
        let results = self
            .admin
            .create_topics([&new], &options)
            .await
            .map_err(|e| config.transport(&format!("create topic `{topic}`"), e))?;
        for r in results {
            match r {
                Ok(_) | Err((_, RDKafkaErrorCode::TopicAlreadyExists)) => {}
                Err((name, code)) => {
                    return Err(config.transport(&format!("create topic `{name}`"), code));
                }
            }
        }
        if let Ok(mut k) = self.known.lock() {
            k.insert(topic.to_owned());
        }
        Ok(())
    }

    /// Delete `topic` (best effort, for reply inboxes).
    pub(crate) async fn delete(&self, config: &Config, topic: &str) {
        let options = AdminOptions::new().operation_timeout(Some(config.request_timeout));
        if let Err(e) = self.admin.delete_topics(&[topic], &options).await {
            tracing::debug!(topic, error = %config.scrub(e), "kafka: could not delete the reply topic");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn topic_names() {
        assert!(check_topic("orders.created-v1_x").is_ok());
        for bad in ["", ".", "..", "a/b", "a b", "ä", &"x".repeat(250)] {
            assert!(
                matches!(check_topic(bad), Err(Error::InvalidAddress { .. })),
                "{bad}"
            );
        }
    }

    #[test]
    fn templates_become_anchored_patterns() {
        let a = Address::parse(
            "smartylighting.streetlights.1.0.event.{streetlightId}.lighting.measured",
        )
        .unwrap();
        assert_eq!(
            template_regex(&a).unwrap(),
            r"^smartylighting\.streetlights\.1\.0\.event\.[a-zA-Z0-9_-]+\.lighting\.measured$"
        );
        let a = Address::parse("orders-{region}").unwrap();
        assert_eq!(template_regex(&a).unwrap(), "^orders-[a-zA-Z0-9_-]+$");
        let a = Address::parse("a/{b}").unwrap();
        assert!(template_regex(&a).is_err());
    }
}
