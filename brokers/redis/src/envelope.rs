//! The Pub/Sub envelope: how headers travel over Redis Pub/Sub, which has none.
//!
//! By default messages are written in FastStream's format ([`crate::faststream`]); the envelope
//! below is RustStream's own, written with [`MessageFormat::RustStream`](crate::MessageFormat)
//! and always read. [`encode_as`] and [`decode_any`] choose between them.
//!
//! In RustStream's envelope, a message with no headers, reply address, correlation id or key is published as its raw
//! payload (so plain Redis clients interoperate). Otherwise the published bytes are:
//!
//! ```text
//! magic      5 bytes   0x00 'R' 'S' 'E' '1'
//! flags      1 byte    bit 0: reply-to, bit 1: correlation id, bit 2: key
//! count      u32 BE    number of headers
//! headers    count × (u32 BE name length, name, u32 BE value length, value)   (UTF-8, in order)
//! reply-to   u32 BE length + bytes      (when flag bit 0)
//! corr. id   u32 BE length + bytes      (when flag bit 1)
//! key        u32 BE length + bytes      (when flag bit 2)
//! payload    the rest
//! ```
//!
//! A raw payload that happens to start with the magic is always enveloped, so decoding is
//! exact. Bytes that do not start with the magic are a raw payload.

use bytes::{BufMut, Bytes, BytesMut};
use ruststream::{Headers, OutgoingMessage, Result};

use crate::MessageFormat;
use crate::faststream;

/// The first bytes of an enveloped message.
pub const MAGIC: &[u8; 5] = b"\x00RSE1";

const REPLY_TO: u8 = 1;
const CORRELATION: u8 = 2;
const KEY: u8 = 4;

/// A decoded Pub/Sub message.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Decoded {
    /// Payload.
    pub payload: Bytes,
    /// Headers in order.
    pub headers: Headers,
    /// Reply address.
    pub reply_to: Option<String>,
    /// Correlation id.
    pub correlation_id: Option<String>,
    /// Partition key.
    pub key: Option<Bytes>,
}

/// Whether `message` carries nothing but a payload that no reader takes for an envelope (so
/// FastStream's format writes it as it is).
fn plain_for_faststream(message: &OutgoingMessage) -> bool {
    message.headers.is_empty()
        && message.reply_to.is_none()
        && message.correlation_id.is_none()
        && message.key.is_none()
        && !message.payload.starts_with(MAGIC)
        && !faststream::is_binary(&message.payload)
        && message.payload.first() != Some(&b'{')
}

/// Encode a message in `format`: the bytes of a Pub/Sub message, or of a stream entry's
/// `__data__` field ([`MessageFormat::FastStream`]).
///
/// # Errors
/// `Error::InvalidHeader` when a header does not fit FastStream's format.
pub fn encode_as(format: MessageFormat, message: &OutgoingMessage) -> Result<Bytes> {
    match format {
        MessageFormat::FastStream if plain_for_faststream(message) => Ok(message.payload.clone()),
        MessageFormat::FastStream => faststream::encode(message),
        MessageFormat::RustStream => Ok(encode(message)),
    }
}

/// Where a decoded message's bytes came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    /// FastStream's binary or JSON envelope (its reply address is a Pub/Sub channel).
    FastStream,
    /// RustStream's envelope.
    RustStream,
    /// A plain payload (or a malformed envelope, delivered as it is).
    Plain,
}

/// Decode the bytes of a Pub/Sub message (or of a stream entry's `__data__` field) in any
/// format: FastStream's binary envelope, its JSON envelope, RustStream's envelope, or a plain
/// payload. A malformed envelope is delivered as a plain payload (a warning is logged).
pub fn decode_any(bytes: Bytes) -> (Decoded, Source) {
    let plain = |bytes: Bytes| Decoded {
        payload: bytes,
        ..Decoded::default()
    };
    if faststream::is_binary(&bytes) {
        return match faststream::decode_binary(&bytes) {
            Some(d) => (d, Source::FastStream),
            None => {
                tracing::warn!("redis: malformed FastStream message; delivered as raw payload");
                (plain(bytes), Source::Plain)
            }
        };
    }
    if bytes.starts_with(MAGIC) {
        return match decode(bytes.clone()) {
            Some(d) => (d, Source::RustStream),
            None => {
                tracing::warn!("redis: malformed pub/sub envelope; delivered as raw payload");
                (plain(bytes), Source::Plain)
            }
        };
    }
    if let Some(d) = faststream::decode_json(&bytes) {
        return (d, Source::FastStream);
    }
    (plain(bytes), Source::Plain)
}

/// Encode a message in RustStream's envelope.
pub fn encode(message: &OutgoingMessage) -> Bytes {
    let plain = message.headers.is_empty()
        && message.reply_to.is_none()
        && message.correlation_id.is_none()
        && message.key.is_none()
        && !message.payload.starts_with(MAGIC);
    if plain {
        return message.payload.clone();
    }
    let mut flags = 0;
    if message.reply_to.is_some() {
        flags |= REPLY_TO;
    }
    if message.correlation_id.is_some() {
        flags |= CORRELATION;
    }
    if message.key.is_some() {
        flags |= KEY;
    }
    let mut out = BytesMut::with_capacity(64 + message.payload.len());
    out.put_slice(MAGIC);
    out.put_u8(flags);
    out.put_u32(len32(message.headers.len()));
    let put = |out: &mut BytesMut, b: &[u8]| {
        out.put_u32(len32(b.len()));
        out.put_slice(b);
    };
    for (k, v) in message.headers.iter() {
        put(&mut out, k.as_bytes());
        put(&mut out, v.as_bytes());
    }
    if let Some(r) = &message.reply_to {
        put(&mut out, r.as_bytes());
    }
    if let Some(c) = &message.correlation_id {
        put(&mut out, c.as_bytes());
    }
    if let Some(k) = &message.key {
        put(&mut out, k);
    }
    out.put_slice(&message.payload);
    out.freeze()
}

fn len32(n: usize) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX)
}

/// Decode published bytes; `None` when they start with the magic but are malformed.
pub fn decode(bytes: Bytes) -> Option<Decoded> {
    if !bytes.starts_with(MAGIC) {
        return Some(Decoded {
            payload: bytes,
            ..Decoded::default()
        });
    }
    let mut pos = MAGIC.len();
    let flags = *bytes.get(pos)?;
    pos += 1;
    let u32_at = |pos: &mut usize| -> Option<usize> {
        let b = bytes.get(*pos..*pos + 4)?;
        *pos += 4;
        Some(u32::from_be_bytes([b[0], b[1], b[2], b[3]]) as usize)
    };
    let chunk = |pos: &mut usize| -> Option<Bytes> {
        let n = u32_at(pos)?;
        let end = pos.checked_add(n)?;
        if end > bytes.len() {
            return None;
        }
        let c = bytes.slice(*pos..end);
        *pos = end;
        Some(c)
    };
    let text = |b: Bytes| String::from_utf8(b.to_vec()).ok();
    let count = u32_at(&mut pos)?;
    let mut headers = Headers::with_capacity(count.min(1024));
    for _ in 0..count {
        let k = text(chunk(&mut pos)?)?;
        let v = text(chunk(&mut pos)?)?;
        headers.append(k, v);
    }
    let mut d = Decoded {
        headers,
        ..Decoded::default()
    };
    if flags & REPLY_TO != 0 {
        d.reply_to = Some(text(chunk(&mut pos)?)?);
    }
    if flags & CORRELATION != 0 {
        d.correlation_id = Some(text(chunk(&mut pos)?)?);
    }
    if flags & KEY != 0 {
        d.key = Some(chunk(&mut pos)?);
    }
    d.payload = bytes.slice(pos..);
    Some(d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip() {
        let m = OutgoingMessage::new("c", &b"\x00\x01payload"[..])
            .with_headers([("a", "1"), ("", ""), ("a", "ü")].into_iter().collect())
            .reply_to("r")
            .correlation_id("id")
            .key(&b"k"[..]);
        let d = decode(encode(&m)).unwrap();
        assert_eq!(d.headers, m.headers);
        assert_eq!(d.payload, m.payload);
        assert_eq!(d.reply_to.as_deref(), Some("r"));
        assert_eq!(d.correlation_id.as_deref(), Some("id"));
        assert_eq!(d.key.as_deref(), Some(&b"k"[..]));
    }

    #[test]
    fn every_format_is_read() {
        let m = OutgoingMessage::new("c", "{}")
            .correlation_id("id")
            .reply_to("r");
        for format in [MessageFormat::FastStream, MessageFormat::RustStream] {
            let (d, _) = decode_any(encode_as(format, &m).unwrap());
            assert_eq!(d.correlation_id.as_deref(), Some("id"), "{format:?}");
            assert_eq!(d.reply_to.as_deref(), Some("r"), "{format:?}");
            assert_eq!(&d.payload[..], b"{}", "{format:?}");
        }
        let (_, source) = decode_any(encode_as(MessageFormat::FastStream, &m).unwrap());
        assert_eq!(source, Source::FastStream);
        // Plain payloads stay plain, unless a reader could take them for an envelope.
        let plain = OutgoingMessage::new("c", "hello");
        assert_eq!(
            &encode_as(MessageFormat::FastStream, &plain).unwrap()[..],
            b"hello"
        );
        let json = OutgoingMessage::new("c", r#"{"data":"x"}"#);
        let enc = encode_as(MessageFormat::FastStream, &json).unwrap();
        assert!(faststream::is_binary(&enc));
        assert_eq!(decode_any(enc).0.payload, json.payload);
        assert_eq!(
            decode_any(Bytes::from_static(b"\x89BIN\r\n\x1a\n\x00\x01junk")).1,
            Source::Plain
        );
    }

    #[test]
    fn raw_and_magic_payloads() {
        let plain = OutgoingMessage::new("c", "hello");
        assert_eq!(&encode(&plain)[..], b"hello");
        let tricky = OutgoingMessage::new("c", &b"\x00RSE1xyz"[..]);
        let enc = encode(&tricky);
        assert_ne!(enc, tricky.payload);
        assert_eq!(decode(enc).unwrap().payload, tricky.payload);
        assert!(decode(Bytes::from_static(b"\x00RSE1\x00\x00\x00\x00\x09")).is_none());
    }
}
