//! Build-time check of protocol bindings: a field the AsyncAPI binding of a protocol RustStream
//! has a broker for (AMQP, MQTT, NATS, Kafka) does not define is a warning naming the
//! operation, printed by [`crate::Config::compile`] as `cargo:warning` (the broker crates
//! warn again, at run time, about values they cannot honour).

use asyncapi::{Diagnostic, Document};
use serde_json::Value;

/// The fields each binding defines: `(protocol, level, fields)`; a nested object's fields as
/// `level.field` (AMQP's `exchange` and `queue`).
const KNOWN: &[(&str, &str, &[&str])] = &[
    (
        "amqp",
        "channel",
        &["is", "exchange", "queue", "bindingVersion"],
    ),
    (
        "amqp",
        "channel.exchange",
        &["name", "type", "durable", "autoDelete", "vhost"],
    ),
    (
        "amqp",
        "channel.queue",
        &["name", "durable", "exclusive", "autoDelete", "vhost"],
    ),
    (
        "amqp",
        "operation",
        &[
            "expiration",
            "userId",
            "cc",
            "priority",
            "deliveryMode",
            "mandatory",
            "bcc",
            "replyTo",
            "timestamp",
            "ack",
            "bindingVersion",
        ],
    ),
    (
        "amqp",
        "message",
        &["contentEncoding", "messageType", "bindingVersion"],
    ),
    ("mqtt", "channel", &["bindingVersion"]),
    (
        "mqtt",
        "operation",
        &["qos", "retain", "messageExpiryInterval", "bindingVersion"],
    ),
    (
        "mqtt",
        "message",
        &[
            "payloadFormatIndicator",
            "correlationData",
            "contentType",
            "responseTopic",
            "bindingVersion",
        ],
    ),
    ("nats", "channel", &["bindingVersion"]),
    ("nats", "operation", &["queue", "bindingVersion"]),
    ("nats", "message", &["bindingVersion"]),
    (
        "kafka",
        "channel",
        &[
            "topic",
            "partitions",
            "replicas",
            "topicConfiguration",
            "bindingVersion",
        ],
    ),
    (
        "kafka",
        "operation",
        &["groupId", "clientId", "bindingVersion"],
    ),
    (
        "kafka",
        "message",
        &[
            "key",
            "schemaIdLocation",
            "schemaIdPayloadEncoding",
            "schemaLookupStrategy",
            "bindingVersion",
        ],
    ),
];

fn known(protocol: &str, level: &str) -> Option<&'static [&'static str]> {
    KNOWN
        .iter()
        .find(|(p, l, _)| *p == protocol && *l == level)
        .map(|(_, _, fields)| *fields)
}

/// Unknown fields of one bindings object (`{"amqp": {…}, "mqtt": {…}}`) at `level`.
fn unknown_fields(bindings: &Value, level: &str, out: &mut Vec<String>) {
    let Some(protocols) = bindings.as_object() else {
        return;
    };
    for (protocol, binding) in protocols {
        let (Some(fields), Some(binding)) = (known(protocol, level), binding.as_object()) else {
            continue;
        };
        for (field, value) in binding {
            if !fields.contains(&field.as_str()) {
                out.push(format!("{protocol} {level} binding field `{field}`"));
                continue;
            }
            let nested = format!("{level}.{field}");
            if let (Some(inner), Some(map)) = (known(protocol, &nested), value.as_object()) {
                for key in map.keys().filter(|k| !inner.contains(&k.as_str())) {
                    out.push(format!("{protocol} {level} binding field `{field}.{key}`"));
                }
            }
        }
    }
}

/// A warning per operation for every field its channel, operation and message bindings have
/// that their AsyncAPI binding does not define.
pub(crate) fn check(doc: &Document) -> Vec<Diagnostic> {
    let mut out = Vec::new();
    for op in &doc.operations {
        let mut unknown = Vec::new();
        if let Some(channel) = doc.channels.iter().find(|c| c.id == op.channel) {
            unknown_fields(&channel.bindings, "channel", &mut unknown);
            let ids = if op.messages.is_empty() {
                &channel.messages
            } else {
                &op.messages
            };
            for message in doc.messages.iter().filter(|m| ids.contains(&m.id)) {
                unknown_fields(&message.bindings, "message", &mut unknown);
            }
        }
        unknown_fields(&op.bindings, "operation", &mut unknown);
        unknown.dedup();
        for field in unknown {
            out.push(Diagnostic::warning(
                &op.source,
                format!(
                    "operation `{}`: {field} is not defined by the AsyncAPI binding; it is \
                     ignored",
                    op.id
                ),
            ));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn finds_unknown_fields_of_known_protocols_only() {
        let mut out = Vec::new();
        unknown_fields(
            &json!({
                "amqp": {"is": "queue", "colour": 1, "queue": {"name": "q", "size": 2}},
                "nats": {"bindingVersion": "0.1.0"},
                "ws": {"anything": true},
            }),
            "channel",
            &mut out,
        );
        assert_eq!(
            out,
            [
                "amqp channel binding field `colour`",
                "amqp channel binding field `queue.size`"
            ]
        );
        let mut out = Vec::new();
        unknown_fields(
            &json!({"nats": {"queue": "w", "deliverPolicy": "all"}, "mqtt": {"qos": 1}}),
            "operation",
            &mut out,
        );
        assert_eq!(out, ["nats operation binding field `deliverPolicy`"]);
    }
}
