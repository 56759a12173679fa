//! Headers ↔ AMQP header table and basic properties.
//!
//! Every header travels in the AMQP header table as a long string, so any AMQP client reads
//! it. The table is a map, so order and duplicate names need help: a name given more than once
//! is carried as an array of strings, and when the order differs from the table's sorted order
//! the original order travels in [`ORDER_HEADER`] (removed again on delivery). `content-type`,
//! `correlation-id` and `message-id` are also set as the AMQP properties of the same name, and a
//! message from another client that has only the properties gets them as headers.

use lapin::BasicProperties;
use lapin::types::{AMQPValue, FieldArray, FieldTable, LongString, ShortString};
use ruststream::message::names;
use ruststream::{Error, Headers, OutgoingMessage, Result};

use crate::binding::MessageOptions;

/// Carries the original header order when it is not the table's sorted order.
pub(crate) const ORDER_HEADER: &str = "x-ruststream-header-order";
/// RabbitMQ's delivery counter on quorum queues.
pub(crate) const DELIVERY_COUNT: &str = "x-delivery-count";
/// The `message-id` header mirrored into the AMQP property.
pub(crate) const MESSAGE_ID: &str = "message-id";

fn short(name: &str, value: &str) -> Result<ShortString> {
    ShortString::try_new(value).map_err(|_| Error::InvalidHeader {
        name: name.to_owned(),
        reason: "longer than 255 bytes, the AMQP limit for this field".into(),
    })
}

/// Basic properties (headers table, content type, correlation id, reply-to, message id,
/// delivery mode) for `message`, with the properties of its address's binding (`options`).
pub(crate) fn to_properties(
    message: &OutgoingMessage,
    persistent: bool,
    options: Option<&MessageOptions>,
) -> Result<BasicProperties> {
    let mut table = FieldTable::default();
    let mut names_in_order: Vec<&str> = Vec::with_capacity(message.headers.len());
    let mut duplicates = false;
    for (name, value) in message.headers.iter() {
        if name == ORDER_HEADER {
            return Err(Error::InvalidHeader {
                name: name.to_owned(),
                reason: "reserved by ruststream-amqp".into(),
            });
        }
        let key = short(name, name)?;
        let value = AMQPValue::LongString(LongString::from(value.as_bytes()));
        match table.inner().get(name) {
            None => {
                table.insert(key, value);
            }
            Some(AMQPValue::FieldArray(existing)) => {
                let mut array = existing.clone();
                array.push(value);
                table.insert(key, AMQPValue::FieldArray(array));
                duplicates = true;
            }
            Some(first) => {
                let array = FieldArray::from(vec![first.clone(), value]);
                table.insert(key, AMQPValue::FieldArray(array));
                duplicates = true;
            }
        }
        names_in_order.push(name);
    }
    if duplicates || !names_in_order.is_sorted() {
        let order: Vec<AMQPValue> = names_in_order
            .iter()
            .map(|n| AMQPValue::LongString(LongString::from(n.as_bytes())))
            .collect();
        table.insert(ORDER_HEADER.into(), AMQPValue::FieldArray(order.into()));
    }
    let keys = |keys: &[String]| {
        let keys: Vec<AMQPValue> = keys
            .iter()
            .map(|k| AMQPValue::LongString(LongString::from(k.as_bytes())))
            .collect();
        AMQPValue::FieldArray(keys.into())
    };
    if let Some(o) = options {
        if !o.cc.is_empty() {
            table.insert("CC".into(), keys(&o.cc));
        }
        if !o.bcc.is_empty() {
            table.insert("BCC".into(), keys(&o.bcc));
        }
    }

    let mut props = BasicProperties::default().with_headers(table);
    match options.and_then(|o| o.delivery_mode) {
        Some(mode) => props = props.with_delivery_mode(mode),
        None if persistent => props = props.with_delivery_mode(2),
        None => {}
    }
    if let Some(o) = options {
        if let Some(p) = o.priority {
            props = props.with_priority(p);
        }
        if let Some(ms) = o.expiration {
            props = props.with_expiration(ms.to_string().into());
        }
        if let Some(user) = &o.user_id {
            props = props.with_user_id(short("user-id", user)?);
        }
        if o.timestamp {
            let now = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_secs());
            props = props.with_timestamp(now);
        }
        if let Some(e) = &o.content_encoding {
            props = props.with_content_encoding(short("content-encoding", e)?);
        }
        if let Some(t) = &o.message_type {
            props = props.with_type(short("type", t)?);
        }
        if message.reply_to.is_none()
            && let Some(r) = &o.reply_to
        {
            props = props.with_reply_to(short("reply-to", r)?);
        }
    }
    if let Some(ct) = message.headers.get(names::CONTENT_TYPE) {
        props = props.with_content_type(short(names::CONTENT_TYPE, ct)?);
    }
    let correlation = message
        .correlation_id
        .as_deref()
        .or_else(|| message.headers.get(names::CORRELATION_ID));
    if let Some(id) = correlation {
        props = props.with_correlation_id(short(names::CORRELATION_ID, id)?);
    }
    if let Some(id) = message.headers.get(MESSAGE_ID) {
        props = props.with_message_id(short(MESSAGE_ID, id)?);
    }
    if let Some(reply_to) = &message.reply_to {
        props = props.with_reply_to(short("reply-to", reply_to)?);
    }
    Ok(props)
}

/// A header value as text, for the value types other clients commonly use.
fn value_text(value: &AMQPValue) -> Option<String> {
    Some(match value {
        AMQPValue::LongString(s) => String::from_utf8_lossy(s.as_bytes()).into_owned(),
        AMQPValue::ShortString(s) => s.as_str().to_owned(),
        AMQPValue::Boolean(b) => b.to_string(),
        AMQPValue::ShortShortInt(n) => n.to_string(),
        AMQPValue::ShortShortUInt(n) => n.to_string(),
        AMQPValue::ShortInt(n) => n.to_string(),
        AMQPValue::ShortUInt(n) => n.to_string(),
        AMQPValue::LongInt(n) => n.to_string(),
        AMQPValue::LongUInt(n) => n.to_string(),
        AMQPValue::LongLongInt(n) => n.to_string(),
        AMQPValue::Timestamp(n) => n.to_string(),
        AMQPValue::Float(n) => n.to_string(),
        AMQPValue::Double(n) => n.to_string(),
        AMQPValue::ByteArray(b) => String::from_utf8_lossy(b.as_slice()).into_owned(),
        _ => return None,
    })
}

fn values_of(value: &AMQPValue) -> Vec<String> {
    match value {
        AMQPValue::FieldArray(items) => items.as_slice().iter().filter_map(value_text).collect(),
        other => value_text(other).into_iter().collect(),
    }
}

/// Delivered headers and the quorum-queue delivery count (when present).
pub(crate) fn from_properties(props: &BasicProperties) -> (Headers, Option<u64>) {
    let mut headers = Headers::new();
    let mut delivery_count = None;
    if let Some(table) = props.headers() {
        let map = table.inner();
        let mut pending: Vec<(&str, std::collections::VecDeque<String>)> = map
            .iter()
            .filter(|(k, _)| k.as_str() != ORDER_HEADER && k.as_str() != DELIVERY_COUNT)
            .map(|(k, v)| (k.as_str(), values_of(v).into()))
            .collect();
        if let Some(order) = map.get(ORDER_HEADER) {
            for name in values_of(order) {
                if let Some((_, values)) = pending.iter_mut().find(|(k, _)| *k == name)
                    && let Some(value) = values.pop_front()
                {
                    headers.append(name, value);
                }
            }
        }
        for (name, values) in pending {
            for value in values {
                headers.append(name, value);
            }
        }
        delivery_count = map.get(DELIVERY_COUNT).and_then(|v| match v {
            AMQPValue::LongLongInt(n) => u64::try_from(*n).ok(),
            AMQPValue::LongInt(n) => u64::try_from(*n).ok(),
            AMQPValue::LongUInt(n) => Some(u64::from(*n)),
            AMQPValue::ShortInt(n) => u64::try_from(*n).ok(),
            AMQPValue::ShortUInt(n) => Some(u64::from(*n)),
            AMQPValue::ShortShortUInt(n) => Some(u64::from(*n)),
            AMQPValue::ShortShortInt(n) => u64::try_from(*n).ok(),
            _ => None,
        });
    }
    let from_props = [
        (names::CONTENT_TYPE, props.content_type()),
        (names::CORRELATION_ID, props.correlation_id()),
        (MESSAGE_ID, props.message_id()),
    ];
    for (name, value) in from_props {
        if let Some(value) = value
            && headers.get(name).is_none()
        {
            headers.append(name, value.as_str());
        }
    }
    (headers, delivery_count)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn round_trip(headers: Headers) -> Headers {
        let msg = OutgoingMessage::new("a", "x").with_headers(headers);
        from_properties(&to_properties(&msg, true, None).unwrap()).0
    }

    #[test]
    fn order_duplicates_and_empty_values_survive() {
        let h: Headers = [("z", "1"), ("a", ""), ("z", "2"), ("m", "ü")]
            .into_iter()
            .collect();
        assert_eq!(round_trip(h.clone()), h);
        let sorted: Headers = [("a", "1"), ("b", "2")].into_iter().collect();
        let props = to_properties(
            &OutgoingMessage::new("a", "").with_headers(sorted.clone()),
            false,
            None,
        )
        .unwrap();
        assert!(!props.headers().as_ref().unwrap().contains_key(ORDER_HEADER));
        assert_eq!(
            round_trip(sorted),
            [("a", "1"), ("b", "2")].into_iter().collect()
        );
        let many: Headers = (0..100)
            .map(|i| (format!("h{i}"), format!("v{i}")))
            .collect();
        assert_eq!(round_trip(many.clone()), many);
    }

    #[test]
    fn properties_mirror_and_fill_headers() {
        let msg = OutgoingMessage::new("a", "x")
            .content_type("application/json")
            .correlation_id("c1")
            .reply_to("r");
        let props = to_properties(&msg, true, None).unwrap();
        assert_eq!(
            props.content_type().as_ref().unwrap().as_str(),
            "application/json"
        );
        assert_eq!(props.correlation_id().as_ref().unwrap().as_str(), "c1");
        assert_eq!(props.reply_to().as_ref().unwrap().as_str(), "r");
        let (h, _) = from_properties(&props);
        assert_eq!(h.get("content-type"), Some("application/json"));
        assert_eq!(h.get("correlation-id"), Some("c1"));
        let foreign = BasicProperties::default().with_content_type("text/plain".into());
        assert_eq!(
            from_properties(&foreign).0.get("content-type"),
            Some("text/plain")
        );
    }

    #[test]
    fn refuses_long_names_and_reserved_header() {
        let long = OutgoingMessage::new("a", "").header("x".repeat(256), "v");
        assert!(matches!(
            to_properties(&long, true, None),
            Err(Error::InvalidHeader { .. })
        ));
        let reserved = OutgoingMessage::new("a", "").header(ORDER_HEADER, "v");
        assert!(matches!(
            to_properties(&reserved, true, None),
            Err(Error::InvalidHeader { .. })
        ));
    }
}
