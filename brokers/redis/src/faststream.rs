//! FastStream's Redis message format, so a RustStream service and a
//! [FastStream](https://faststream.ag2.ai) app on the same Redis talk with no configuration.
//!
//! FastStream (0.6 and later; `BinaryMessageFormatV1` is the default of its `RedisBroker`)
//! publishes one binary blob per message: the value of a Pub/Sub `PUBLISH`, or the `__data__`
//! field of a stream entry. All integers are big-endian:
//!
//! ```text
//! magic         8 bytes   0x89 'B' 'I' 'N' 0x0D 0x0A 0x1A 0x0A
//! version       u16       1
//! headers_start u32       offset of `count` (always 18)
//! data_start    u32       offset of the payload
//! count         u16       number of headers
//! headers       count × (u16 name length, name, u16 value length, value)   (UTF-8)
//! payload       the rest (from `data_start`)
//! ```
//!
//! FastStream's message metadata travels as headers: `correlation_id` (always written by
//! FastStream), `reply_to` (the **Pub/Sub channel** a reply is published to, also for requests
//! sent over a stream) and `content-type`. This crate maps them to and from
//! [`OutgoingMessage::correlation_id`] / [`IncomingMessage::correlation_id`], the reply address,
//! and the `content-type` header; a partition key travels as `x-ruststream-key` (hex). Other
//! headers pass through in order, duplicates kept. Names and values longer than 65,535 bytes
//! cannot be written (`Error::InvalidHeader`).
//!
//! FastStream's older JSON envelope, `{"data": "<payload text>", "headers": {…}}`, is read too
//! (an object with a string `data` and, optionally, a `headers` object of strings, and no other
//! keys), with the same header mapping.
//!
//! [`IncomingMessage::correlation_id`]: ruststream::IncomingMessage::correlation_id

use bytes::{BufMut, Bytes, BytesMut};
use ruststream::message::names;
use ruststream::{Error, Headers, OutgoingMessage, Result};

use crate::envelope::Decoded;

/// The first bytes of a `BinaryMessageFormatV1` message.
pub const MAGIC: &[u8; 8] = b"\x89BIN\x0d\x0a\x1a\x0a";
/// The format version this crate writes and reads.
pub const VERSION: u16 = 1;
/// The stream entry field FastStream keeps the message in.
pub const DATA_FIELD: &str = "__data__";
/// FastStream's correlation id header.
pub const CORRELATION_ID: &str = "correlation_id";
/// FastStream's reply address header (a Pub/Sub channel).
pub const REPLY_TO: &str = "reply_to";
/// The header carrying a partition key (lowercase hex of its bytes).
pub const KEY: &str = "x-ruststream-key";

const HEADERS_START: usize = MAGIC.len() + 2 + 4 + 4;

/// Whether `bytes` start like a `BinaryMessageFormatV1` message.
pub fn is_binary(bytes: &[u8]) -> bool {
    bytes.starts_with(MAGIC)
}

fn short(n: usize, what: &str) -> Result<u16> {
    u16::try_from(n).map_err(|_| Error::InvalidHeader {
        name: what.to_owned(),
        reason: "FastStream's Redis format holds at most 65,535 bytes per header name or value, and 65,535 headers".into(),
    })
}

/// Encode `message` as `BinaryMessageFormatV1`.
///
/// # Errors
/// [`Error::InvalidHeader`] when a header name or value (or their number) exceeds the
/// format's 16-bit lengths.
pub fn encode(message: &OutgoingMessage) -> Result<Bytes> {
    let mut pairs: Vec<(&str, std::borrow::Cow<'_, str>)> =
        Vec::with_capacity(message.headers.len() + 3);
    let has = |name: &str| message.headers.get(name).is_some();
    let correlation = message
        .correlation_id
        .as_deref()
        .or_else(|| message.headers.get(names::CORRELATION_ID));
    if let Some(c) = correlation.filter(|_| !has(CORRELATION_ID)) {
        pairs.push((CORRELATION_ID, c.into()));
    }
    if let Some(r) = message.reply_to.as_deref() {
        pairs.push((REPLY_TO, r.into()));
    }
    if let Some(k) = message.key.as_deref() {
        pairs.push((KEY, hex(k).into()));
    }
    for (name, value) in message.headers.iter() {
        pairs.push((name, value.into()));
    }
    let count = short(pairs.len(), "(header count)")?;
    let mut head = BytesMut::with_capacity(64);
    for (name, value) in &pairs {
        head.put_u16(short(name.len(), name)?);
        head.put_slice(name.as_bytes());
        head.put_u16(short(value.len(), name)?);
        head.put_slice(value.as_bytes());
    }
    let data_start = HEADERS_START + 2 + head.len();
    let mut out = BytesMut::with_capacity(data_start + message.payload.len());
    out.put_slice(MAGIC);
    out.put_u16(VERSION);
    out.put_u32(HEADERS_START as u32);
    out.put_u32(u32::try_from(data_start).unwrap_or(u32::MAX));
    out.put_u16(count);
    out.put_slice(&head);
    out.put_slice(&message.payload);
    Ok(out.freeze())
}

/// Decode a `BinaryMessageFormatV1` message; `None` when `bytes` are not one (wrong magic or
/// version) or are malformed.
pub fn decode_binary(bytes: &Bytes) -> Option<Decoded> {
    if !is_binary(bytes) {
        return None;
    }
    let u16_at = |pos: usize| -> Option<usize> {
        let b = bytes.get(pos..pos + 2)?;
        Some(u16::from_be_bytes([b[0], b[1]]) as usize)
    };
    let u32_at = |pos: usize| -> Option<usize> {
        let b = bytes.get(pos..pos + 4)?;
        Some(u32::from_be_bytes([b[0], b[1], b[2], b[3]]) as usize)
    };
    let mut pos = MAGIC.len();
    if u16_at(pos)? != usize::from(VERSION) {
        return None;
    }
    pos += 2;
    let headers_start = u32_at(pos)?;
    let data_start = u32_at(pos + 4)?;
    if data_start > bytes.len() {
        return None;
    }
    pos = headers_start;
    let count = u16_at(pos)?;
    pos += 2;
    let mut text = || -> Option<String> {
        let n = u16_at(pos)?;
        let s = bytes.get(pos + 2..pos + 2 + n)?;
        pos += 2 + n;
        String::from_utf8(s.to_vec()).ok()
    };
    let mut pairs = Vec::with_capacity(count);
    for _ in 0..count {
        let name = text()?;
        let value = text()?;
        pairs.push((name, value));
    }
    Some(from_pairs(pairs, bytes.slice(data_start..)))
}

/// Decode FastStream's older JSON envelope (`{"data": "…", "headers": {…}}`); `None` when
/// `bytes` are anything else.
pub fn decode_json(bytes: &Bytes) -> Option<Decoded> {
    if bytes.first() != Some(&b'{') {
        return None;
    }
    let serde_json::Value::Object(map) = serde_json::from_slice(bytes).ok()? else {
        return None;
    };
    if map.keys().any(|k| k != "data" && k != "headers") {
        return None;
    }
    let serde_json::Value::String(data) = map.get("data")? else {
        return None;
    };
    let mut pairs = Vec::new();
    match map.get("headers") {
        None | Some(serde_json::Value::Null) => {}
        Some(serde_json::Value::Object(h)) => {
            for (name, value) in h {
                let value = match value {
                    serde_json::Value::String(s) => s.clone(),
                    other => other.to_string(),
                };
                pairs.push((name.clone(), value));
            }
        }
        Some(_) => return None,
    }
    Some(from_pairs(pairs, Bytes::from(data.clone().into_bytes())))
}

/// The metadata headers (the first of each name) become fields; the rest stay headers.
fn from_pairs(pairs: Vec<(String, String)>, payload: Bytes) -> Decoded {
    let mut d = Decoded {
        payload,
        headers: Headers::with_capacity(pairs.len()),
        ..Decoded::default()
    };
    for (name, value) in pairs {
        match name.as_str() {
            CORRELATION_ID if d.correlation_id.is_none() => d.correlation_id = Some(value),
            REPLY_TO if d.reply_to.is_none() => {
                // FastStream writes an empty `reply_to` for "none".
                if !value.is_empty() {
                    d.reply_to = Some(value);
                }
            }
            KEY if d.key.is_none() => match unhex(&value) {
                Some(k) => d.key = Some(Bytes::from(k)),
                None => d.headers.append(name, value),
            },
            _ => d.headers.append(name, value),
        }
    }
    d
}

fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push(DIGITS[usize::from(b >> 4)] as char);
        s.push(DIGITS[usize::from(b & 15)] as char);
    }
    s
}

fn unhex(s: &str) -> Option<Vec<u8>> {
    if !s.len().is_multiple_of(2) {
        return None;
    }
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(s.get(i..i + 2)?, 16).ok())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `tests/data/faststream/*.bin`: written by FastStream 0.7.8 itself
    /// (`tests/data/faststream/make_fixtures.py`).
    fn fixture(name: &str) -> Bytes {
        let path = format!(
            "{}/tests/data/faststream/{name}",
            env!("CARGO_MANIFEST_DIR")
        );
        Bytes::from(std::fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e}")))
    }

    #[test]
    fn reads_what_faststream_wrote() {
        let d = decode_binary(&fixture("binary_request.bin")).expect("a binary message");
        assert_eq!(&d.payload[..], br#"{"item": "bolt", "qty": 3}"#);
        assert_eq!(d.correlation_id.as_deref(), Some("corr-1"));
        assert_eq!(d.reply_to.as_deref(), Some("reply.channel"));
        assert_eq!(d.headers.get("content-type"), Some("application/json"));
        assert_eq!(d.headers.get("x-tenant"), Some("acme"));
        assert_eq!(
            d.headers.get(CORRELATION_ID),
            None,
            "metadata is not a header"
        );

        let d = decode_binary(&fixture("binary_plain.bin")).expect("a binary message");
        assert_eq!(&d.payload[..], b"hello");
        assert_eq!(d.headers.get("content-type"), Some("text/plain"));
        assert_eq!(d.correlation_id.as_deref(), Some("corr-2"));
        assert_eq!(d.reply_to, None);

        let d = decode_json(&fixture("json_envelope.json")).expect("a JSON envelope");
        assert_eq!(&d.payload[..], br#"{"item":"bolt","qty":3}"#);
        assert_eq!(d.correlation_id.as_deref(), Some("corr-3"));
        assert_eq!(d.reply_to.as_deref(), Some("reply.channel"));
        assert_eq!(d.headers.get("x-tenant"), Some("acme"));
    }

    #[test]
    fn writes_what_faststream_writes() {
        // FastStream orders headers: correlation_id, content-type, reply_to, then the user's;
        // this crate writes reply_to before the headers, so compare decoded, and the bytes of
        // a message whose header order matches.
        let m = OutgoingMessage::new("c", "hello")
            .correlation_id("corr-2")
            .content_type("text/plain");
        assert_eq!(encode(&m).unwrap(), fixture("binary_plain.bin"));
        let m = OutgoingMessage::new("c", r#"{"item": "bolt", "qty": 3}"#)
            .correlation_id("corr-1")
            .reply_to("reply.channel")
            .with_headers(
                [("content-type", "application/json"), ("x-tenant", "acme")]
                    .into_iter()
                    .collect(),
            );
        let ours = decode_binary(&encode(&m).unwrap()).unwrap();
        let theirs = decode_binary(&fixture("binary_request.bin")).unwrap();
        assert_eq!(ours, theirs);
    }

    /// What this crate writes for a request with headers, a key and a binary payload:
    /// `tests/data/faststream/ruststream_request.bin`, which `make_fixtures.py` checks
    /// FastStream 0.7.8 parses to the same payload and headers. Rewrite it with
    /// `RUSTSTREAM_WRITE_FIXTURES=1` after a deliberate format change.
    #[test]
    fn faststream_reads_what_this_crate_writes() {
        let m = OutgoingMessage::new("c", &b"\x00\xffpayload"[..])
            .correlation_id("corr-9")
            .reply_to("ruststream.inbox.x")
            .key(&b"k"[..])
            .with_headers(
                [
                    ("content-type", "application/octet-stream"),
                    ("x-tenant", "acme"),
                ]
                .into_iter()
                .collect(),
            );
        let bytes = encode(&m).unwrap();
        let path = format!(
            "{}/tests/data/faststream/ruststream_request.bin",
            env!("CARGO_MANIFEST_DIR")
        );
        if std::env::var_os("RUSTSTREAM_WRITE_FIXTURES").is_some() {
            std::fs::write(&path, &bytes).unwrap();
        }
        assert_eq!(bytes, fixture("ruststream_request.bin"));
    }

    #[test]
    fn round_trip_keeps_order_duplicates_key_and_binary_payloads() {
        let m = OutgoingMessage::new("c", &b"\x00\xff\x89BIN"[..])
            .with_headers([("a", "1"), ("", ""), ("a", "ü")].into_iter().collect())
            .reply_to("r")
            .correlation_id("id")
            .key(&b"k\x00"[..]);
        let d = decode_binary(&encode(&m).unwrap()).unwrap();
        assert_eq!(d.headers, m.headers);
        assert_eq!(d.payload, m.payload);
        assert_eq!(d.reply_to.as_deref(), Some("r"));
        assert_eq!(d.correlation_id.as_deref(), Some("id"));
        assert_eq!(d.key.as_deref(), Some(&b"k\x00"[..]));
    }

    #[test]
    fn refuses_what_does_not_fit_and_rejects_garbage() {
        let long = "x".repeat(70_000);
        let m = OutgoingMessage::new("c", "p")
            .with_headers([("h", long.as_str())].into_iter().collect());
        assert!(matches!(encode(&m), Err(Error::InvalidHeader { .. })));
        let enc = encode(&OutgoingMessage::new("c", "payload").correlation_id("c")).unwrap();
        assert!(
            decode_binary(&enc.slice(..enc.len() - 3)).is_some(),
            "payload cut short is still a message"
        );
        assert!(
            decode_binary(&enc.slice(..20)).is_none(),
            "headers cut short"
        );
        assert!(decode_binary(&Bytes::from_static(b"plain")).is_none());
        assert!(decode_json(&Bytes::from_static(br#"{"data":"x","other":1}"#)).is_none());
        assert!(decode_json(&Bytes::from_static(br#"{"data":1}"#)).is_none());
        assert!(decode_json(&Bytes::from_static(br#"[1]"#)).is_none());
    }
}
