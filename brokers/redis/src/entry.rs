//! The stream-entry field layout and parsing of stream replies.
//!
//! By default ([`MessageFormat::FastStream`](crate::MessageFormat)) a message is one stream
//! entry with one field, `__data__`, holding the message in FastStream's format (see
//! [`crate::faststream`]), as FastStream writes and reads it. An entry with a `__data__` field
//! is read that way (its value may also be RustStream's Pub/Sub envelope or a plain payload).
//!
//! With [`MessageFormat::RustStream`](crate::MessageFormat), and for every entry without
//! `__data__`, a message is one stream entry whose fields are, in this order:
//!
//! | field            | value                                   | present          |
//! |------------------|-----------------------------------------|------------------|
//! | `payload`        | the payload bytes                       | always           |
//! | `reply-to`       | reply address                           | when set         |
//! | `correlation-id` | correlation id                          | when set         |
//! | `key`            | partition key bytes                     | when set         |
//! | `h:<name>`       | one header value (order and duplicates kept) | per header  |
//!
//! Dead-lettered entries additionally carry `dlq:stream`, `dlq:id` and `dlq:attempts` (the
//! original stream, entry id and delivery count). Unknown fields are ignored, so other writers
//! can add their own; an entry without `payload` is delivered with an empty payload.

use bytes::Bytes;
use redis::{Cmd, Value};
use ruststream::{Headers, OutgoingMessage, Result};

use crate::MessageFormat;
use crate::envelope::{self, Source};
use crate::faststream::DATA_FIELD;

/// Field name of the payload.
pub const PAYLOAD: &str = "payload";
/// Field name of the reply address.
pub const REPLY_TO: &str = "reply-to";
/// Field name of the correlation id.
pub const CORRELATION_ID: &str = "correlation-id";
/// Field name of the partition key.
pub const KEY: &str = "key";
/// Prefix of header fields.
pub const HEADER_PREFIX: &str = "h:";

/// One decoded entry.
#[derive(Debug, Clone, Default)]
pub(crate) struct Entry {
    pub id: String,
    pub payload: Bytes,
    pub headers: Headers,
    pub reply_to: Option<String>,
    pub correlation_id: Option<String>,
    pub key: Option<Bytes>,
    /// The reply address is a Pub/Sub channel (FastStream's rule), not a stream.
    pub pubsub_reply: bool,
}

/// Append the fields of a message to an `XADD` command.
pub(crate) fn push_fields(
    cmd: &mut Cmd,
    payload: &[u8],
    reply_to: Option<&str>,
    correlation_id: Option<&str>,
    key: Option<&[u8]>,
    headers: &Headers,
) {
    cmd.arg(PAYLOAD).arg(payload);
    if let Some(r) = reply_to {
        cmd.arg(REPLY_TO).arg(r);
    }
    if let Some(c) = correlation_id {
        cmd.arg(CORRELATION_ID).arg(c);
    }
    if let Some(k) = key {
        cmd.arg(KEY).arg(k);
    }
    let mut name = String::new();
    for (k, v) in headers.iter() {
        name.clear();
        name.push_str(HEADER_PREFIX);
        name.push_str(k);
        cmd.arg(name.as_str()).arg(v);
    }
}

/// `XADD <stream> [MAXLEN ~ n] * <fields>` for an outgoing message in `format`.
pub(crate) fn xadd(
    message: &OutgoingMessage,
    maxlen: Option<usize>,
    format: MessageFormat,
) -> Result<Cmd> {
    let mut cmd = redis::cmd("XADD");
    cmd.arg(&message.address);
    if let Some(n) = maxlen {
        cmd.arg("MAXLEN").arg("~").arg(n);
    }
    cmd.arg("*");
    if format == MessageFormat::FastStream {
        cmd.arg(DATA_FIELD)
            .arg(&envelope::encode_as(format, message)?[..]);
        return Ok(cmd);
    }
    push_fields(
        &mut cmd,
        &message.payload,
        message.reply_to.as_deref(),
        message.correlation_id.as_deref(),
        message.key.as_deref(),
        &message.headers,
    );
    Ok(cmd)
}

fn bytes_of(v: Value) -> Option<Vec<u8>> {
    match v {
        Value::BulkString(b) => Some(b),
        Value::SimpleString(s) => Some(s.into_bytes()),
        Value::Int(i) => Some(i.to_string().into_bytes()),
        _ => None,
    }
}

fn string_of(v: Value) -> Option<String> {
    bytes_of(v).map(|b| {
        String::from_utf8(b).unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned())
    })
}

/// Parse one `[id, [field, value, …]]` entry. Returns the id and `None` fields for entries
/// that were deleted (trimmed) but are still pending.
pub(crate) fn parse_entry(v: Value) -> Option<(String, Option<Entry>)> {
    let Value::Array(mut parts) = v else {
        return None;
    };
    if parts.len() != 2 {
        return None;
    }
    let fields = parts.pop()?;
    let id = string_of(parts.pop()?)?;
    let list = match fields {
        Value::Array(list) => list,
        Value::Map(pairs) => pairs.into_iter().flat_map(|(k, v)| [k, v]).collect(),
        Value::Nil => return Some((id, None)),
        _ => return None,
    };
    let mut entry = Entry {
        id: id.clone(),
        ..Entry::default()
    };
    let mut it = list.into_iter();
    while let (Some(k), Some(v)) = (it.next(), it.next()) {
        let Some(k) = string_of(k) else { continue };
        if let Some(name) = k.strip_prefix(HEADER_PREFIX) {
            if let Some(v) = string_of(v) {
                entry.headers.append(name, v);
            }
            continue;
        }
        match k.as_str() {
            DATA_FIELD => {
                let (d, source) =
                    envelope::decode_any(bytes_of(v).map(Bytes::from).unwrap_or_default());
                entry.payload = d.payload;
                entry.headers = d.headers;
                entry.pubsub_reply = source == Source::FastStream && d.reply_to.is_some();
                entry.reply_to = d.reply_to;
                entry.correlation_id = d.correlation_id;
                entry.key = d.key;
                // The envelope is the whole message: other fields are another writer's.
                return Some((id, Some(entry)));
            }
            PAYLOAD => entry.payload = bytes_of(v).map(Bytes::from).unwrap_or_default(),
            REPLY_TO => entry.reply_to = string_of(v),
            CORRELATION_ID => entry.correlation_id = string_of(v),
            KEY => entry.key = bytes_of(v).map(Bytes::from),
            _ => {}
        }
    }
    Some((id, Some(entry)))
}

/// Parse a list of entries (the reply of `XCLAIM`, or one stream of `XREADGROUP`).
pub(crate) fn parse_entries(v: Value) -> Vec<(String, Option<Entry>)> {
    match v {
        Value::Array(items) => items.into_iter().filter_map(parse_entry).collect(),
        _ => Vec::new(),
    }
}

/// Parse an `XREADGROUP` reply over several streams into `(stream, id, entry)`.
pub(crate) fn parse_read_keyed(v: Value) -> Vec<(String, String, Option<Entry>)> {
    let streams: Vec<(Value, Value)> = match v {
        Value::Array(items) => items
            .into_iter()
            .filter_map(|s| match s {
                Value::Array(mut kv) if kv.len() == 2 => {
                    let entries = kv.pop()?;
                    let key = kv.pop()?;
                    Some((key, entries))
                }
                _ => None,
            })
            .collect(),
        Value::Map(pairs) => pairs,
        _ => Vec::new(),
    };
    let mut out = Vec::new();
    for (key, entries) in streams {
        let Some(key) = string_of(key) else { continue };
        for (id, entry) in parse_entries(entries) {
            out.push((key.clone(), id, entry));
        }
    }
    out
}

/// Parse an `XPENDING … IDLE` extended reply into `(id, delivery count)`.
pub(crate) fn parse_pending(v: Value) -> Vec<(String, u32)> {
    let Value::Array(items) = v else {
        return Vec::new();
    };
    items
        .into_iter()
        .filter_map(|item| {
            let Value::Array(parts) = item else {
                return None;
            };
            let mut it = parts.into_iter();
            let id = string_of(it.next()?)?;
            let count = match it.nth(2)? {
                Value::Int(n) => u32::try_from(n).unwrap_or(u32::MAX),
                other => string_of(other)?.parse().ok()?,
            };
            Some((id, count))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entry_round_trip_keeps_header_order_and_duplicates() {
        let msg = OutgoingMessage::new("s", &b"\x00\xffbin"[..])
            .reply_to("r")
            .correlation_id("c")
            .with_headers([("a", "1"), ("b", ""), ("a", "2")].into_iter().collect());
        let cmd = xadd(&msg, Some(10), MessageFormat::RustStream).unwrap();
        let args: Vec<Vec<u8>> = cmd
            .args_iter()
            .filter_map(|a| match a {
                redis::Arg::Simple(b) => Some(b.to_vec()),
                _ => None,
            })
            .collect();
        // XADD s MAXLEN ~ 10 * then fields
        let fields: Vec<Value> = args[6..].iter().cloned().map(Value::BulkString).collect();
        let (id, entry) = parse_entry(Value::Array(vec![
            Value::BulkString(b"1-0".to_vec()),
            Value::Array(fields),
        ]))
        .unwrap();
        let entry = entry.unwrap();
        assert_eq!(id, "1-0");
        assert_eq!(&entry.payload[..], b"\x00\xffbin");
        assert_eq!(entry.headers, msg.headers);
        assert_eq!(entry.reply_to.as_deref(), Some("r"));
        assert_eq!(entry.correlation_id.as_deref(), Some("c"));
        assert!(!entry.pubsub_reply);
    }

    #[test]
    fn faststream_entries_round_trip() {
        let msg = OutgoingMessage::new("s", &b"\x00\xffbin"[..])
            .reply_to("r")
            .correlation_id("c")
            .with_headers([("a", "1"), ("b", ""), ("a", "2")].into_iter().collect());
        let cmd = xadd(&msg, None, MessageFormat::FastStream).unwrap();
        let args: Vec<Vec<u8>> = cmd
            .args_iter()
            .filter_map(|a| match a {
                redis::Arg::Simple(b) => Some(b.to_vec()),
                _ => None,
            })
            .collect();
        // XADD s * __data__ <blob>
        assert_eq!(args[3], DATA_FIELD.as_bytes());
        assert_eq!(args.len(), 5);
        let fields: Vec<Value> = args[3..].iter().cloned().map(Value::BulkString).collect();
        let (_, entry) = parse_entry(Value::Array(vec![
            Value::BulkString(b"1-0".to_vec()),
            Value::Array(fields),
        ]))
        .unwrap();
        let entry = entry.unwrap();
        assert_eq!(&entry.payload[..], b"\x00\xffbin");
        assert_eq!(entry.headers, msg.headers);
        assert_eq!(entry.reply_to.as_deref(), Some("r"));
        assert_eq!(entry.correlation_id.as_deref(), Some("c"));
        assert!(entry.pubsub_reply, "FastStream replies go over Pub/Sub");
    }
}
