//! Payload codecs, selected by content type.
//!
//! Each codec is a zero-sized type implementing [`Codec`]; [`encode`] and [`decode`] dispatch on
//! a MIME type (parameters such as `; charset=utf-8` are ignored, `+json`/`+cbor` suffixes are
//! accepted). Decoding failures are [`Error::Codec`] values, never panics.
//!
//! ```
//! use ruststream::codec;
//! let bytes = codec::encode("application/json; charset=utf-8", &vec![1, 2, 3]).unwrap();
//! let back: Vec<u32> = codec::decode("application/json", &bytes).unwrap();
//! assert_eq!(back, [1, 2, 3]);
//! ```

use std::borrow::Cow;

use bytes::Bytes;
use serde::de::{DeserializeOwned, IntoDeserializer, Visitor};
use serde::{Deserializer, Serialize};

use crate::{Error, Result};

/// The default content type (`application/json`).
pub const DEFAULT_CONTENT_TYPE: &str = Json::CONTENT_TYPE;

/// Encodes values to payload bytes and decodes them back.
pub trait Codec {
    /// The MIME type this codec produces.
    const CONTENT_TYPE: &'static str;
    /// Encode `v`.
    fn encode<T: Serialize + ?Sized>(v: &T) -> Result<Bytes>;
    /// Decode a `T` from `b`.
    fn decode<T: DeserializeOwned>(b: &[u8]) -> Result<T>;
}

fn codec_error(content_type: &'static str, e: impl std::fmt::Display) -> Error {
    Error::Codec {
        content_type: Cow::Borrowed(content_type),
        message: e.to_string(),
    }
}

/// `application/json` via `serde_json` (the default).
#[derive(Debug, Clone, Copy, Default)]
pub struct Json;

impl Codec for Json {
    const CONTENT_TYPE: &'static str = "application/json";
    fn encode<T: Serialize + ?Sized>(v: &T) -> Result<Bytes> {
        serde_json::to_vec(v)
            .map(Bytes::from)
            .map_err(|e| codec_error(Self::CONTENT_TYPE, e))
    }
    fn decode<T: DeserializeOwned>(b: &[u8]) -> Result<T> {
        serde_json::from_slice(b).map_err(|e| codec_error(Self::CONTENT_TYPE, e))
    }
}

/// `text/plain`: UTF-8 text. Encodes strings (numbers and booleans as their text); decodes into
/// string-like types.
#[derive(Debug, Clone, Copy, Default)]
pub struct Text;

impl Codec for Text {
    const CONTENT_TYPE: &'static str = "text/plain";
    fn encode<T: Serialize + ?Sized>(v: &T) -> Result<Bytes> {
        match serde_json::to_value(v).map_err(|e| codec_error(Self::CONTENT_TYPE, e))? {
            serde_json::Value::String(s) => Ok(Bytes::from(s)),
            serde_json::Value::Number(n) => Ok(Bytes::from(n.to_string())),
            serde_json::Value::Bool(b) => Ok(Bytes::from(b.to_string())),
            other => Err(codec_error(
                Self::CONTENT_TYPE,
                format_args!("only strings, numbers and booleans are text, not {other}"),
            )),
        }
    }
    fn decode<T: DeserializeOwned>(b: &[u8]) -> Result<T> {
        let s = std::str::from_utf8(b).map_err(|e| codec_error(Self::CONTENT_TYPE, e))?;
        let de: serde::de::value::StrDeserializer<'_, serde::de::value::Error> =
            s.into_deserializer();
        T::deserialize(de).map_err(|e| codec_error(Self::CONTENT_TYPE, e))
    }
}

/// `application/octet-stream`: raw bytes passthrough. Encodes byte sequences (`Vec<u8>`,
/// `Bytes`, byte slices) and strings; decodes into byte containers or UTF-8 strings.
#[derive(Debug, Clone, Copy, Default)]
pub struct Binary;

impl Codec for Binary {
    const CONTENT_TYPE: &'static str = "application/octet-stream";
    fn encode<T: Serialize + ?Sized>(v: &T) -> Result<Bytes> {
        match serde_json::to_value(v).map_err(|e| codec_error(Self::CONTENT_TYPE, e))? {
            serde_json::Value::String(s) => Ok(Bytes::from(s)),
            serde_json::Value::Array(items) => items
                .iter()
                .map(|i| i.as_u64().and_then(|n| u8::try_from(n).ok()))
                .collect::<Option<Vec<u8>>>()
                .map(Bytes::from)
                .ok_or_else(|| codec_error(Self::CONTENT_TYPE, "not a byte sequence")),
            _ => Err(codec_error(Self::CONTENT_TYPE, "not a byte sequence")),
        }
    }
    fn decode<T: DeserializeOwned>(b: &[u8]) -> Result<T> {
        T::deserialize(RawBytes(b)).map_err(|e| codec_error(Self::CONTENT_TYPE, e))
    }
}

/// A deserializer over raw bytes: bytes for byte buffers, a sequence of `u8` for `Vec<u8>`, a
/// string when UTF-8 is asked for.
struct RawBytes<'a>(&'a [u8]);

impl<'de> Deserializer<'de> for RawBytes<'_> {
    type Error = serde::de::value::Error;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Self::Error> {
        visitor.visit_bytes(self.0)
    }
    fn deserialize_seq<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Self::Error> {
        visitor.visit_seq(serde::de::value::SeqDeserializer::new(
            self.0.iter().copied(),
        ))
    }
    fn deserialize_str<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Self::Error> {
        let s = std::str::from_utf8(self.0).map_err(serde::de::Error::custom)?;
        visitor.visit_str(s)
    }
    fn deserialize_string<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Self::Error> {
        self.deserialize_str(visitor)
    }
    fn deserialize_newtype_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        visitor: V,
    ) -> Result<V::Value, Self::Error> {
        visitor.visit_newtype_struct(self)
    }
    serde::forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char bytes byte_buf option unit
        unit_struct tuple tuple_struct map struct enum identifier ignored_any
    }
}

/// Deepest nesting the MessagePack codec decodes (serde_json's own limit is the same).
#[cfg(feature = "msgpack")]
const MAX_NESTING: usize = 128;

/// `application/msgpack` via `rmp-serde` (feature `msgpack`); structs are encoded as maps.
#[cfg(feature = "msgpack")]
#[derive(Debug, Clone, Copy, Default)]
pub struct MsgPack;

#[cfg(feature = "msgpack")]
impl Codec for MsgPack {
    const CONTENT_TYPE: &'static str = "application/msgpack";
    fn encode<T: Serialize + ?Sized>(v: &T) -> Result<Bytes> {
        rmp_serde::to_vec_named(v)
            .map(Bytes::from)
            .map_err(|e| codec_error(Self::CONTENT_TYPE, e))
    }
    fn decode<T: DeserializeOwned>(b: &[u8]) -> Result<T> {
        // rmp-serde allows 1024 levels by default, enough to overflow a 2 MiB stack (tokio's
        // worker default) in debug builds; use serde_json's limit instead.
        let mut de = rmp_serde::Deserializer::from_read_ref(b);
        de.set_max_depth(MAX_NESTING);
        T::deserialize(&mut de).map_err(|e| codec_error(Self::CONTENT_TYPE, e))
    }
}

/// `application/cbor` via `ciborium` (feature `cbor`).
#[cfg(feature = "cbor")]
#[derive(Debug, Clone, Copy, Default)]
pub struct Cbor;

#[cfg(feature = "cbor")]
impl Codec for Cbor {
    const CONTENT_TYPE: &'static str = "application/cbor";
    fn encode<T: Serialize + ?Sized>(v: &T) -> Result<Bytes> {
        let mut out = Vec::new();
        ciborium::into_writer(v, &mut out).map_err(|e| codec_error(Self::CONTENT_TYPE, e))?;
        Ok(Bytes::from(out))
    }
    fn decode<T: DeserializeOwned>(b: &[u8]) -> Result<T> {
        ciborium::from_reader(b).map_err(|e| codec_error(Self::CONTENT_TYPE, e))
    }
}

/// Which codec a content type selects.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Kind {
    /// [`Json`].
    Json,
    /// [`Text`].
    Text,
    /// [`Binary`].
    Binary,
    /// MessagePack (feature `msgpack`).
    MsgPack,
    /// CBOR (feature `cbor`).
    Cbor,
}

/// The essence of a MIME type: parameters dropped, whitespace trimmed (case is kept; compare
/// with `eq_ignore_ascii_case`).
pub fn essence(content_type: &str) -> &str {
    content_type
        .split_once(';')
        .map_or(content_type, |(e, _)| e)
        .trim()
}

/// The codec kind for a content type, or `None` when no codec handles it.
pub fn kind_of(content_type: &str) -> Option<Kind> {
    let e = essence(content_type);
    let is = |s: &str| e.eq_ignore_ascii_case(s);
    let ends = |suffix: &str| {
        e.len() > suffix.len() && e[e.len() - suffix.len()..].eq_ignore_ascii_case(suffix)
    };
    if is("application/json") || is("text/json") || ends("+json") {
        Some(Kind::Json)
    } else if is("text/plain") {
        Some(Kind::Text)
    } else if is("application/octet-stream") {
        Some(Kind::Binary)
    } else if is("application/msgpack")
        || is("application/x-msgpack")
        || is("application/vnd.msgpack")
    {
        Some(Kind::MsgPack)
    } else if is("application/cbor") || ends("+cbor") {
        Some(Kind::Cbor)
    } else {
        None
    }
}

fn unsupported(content_type: &str, why: &str) -> Error {
    Error::Codec {
        content_type: Cow::Owned(content_type.to_owned()),
        message: why.to_owned(),
    }
}

/// Encode `v` with the codec for `content_type`.
pub fn encode<T: Serialize + ?Sized>(content_type: &str, v: &T) -> Result<Bytes> {
    match kind_of(content_type) {
        Some(Kind::Json) => Json::encode(v),
        Some(Kind::Text) => Text::encode(v),
        Some(Kind::Binary) => Binary::encode(v),
        #[cfg(feature = "msgpack")]
        Some(Kind::MsgPack) => MsgPack::encode(v),
        #[cfg(feature = "cbor")]
        Some(Kind::Cbor) => Cbor::encode(v),
        #[allow(unreachable_patterns)]
        Some(_) => Err(unsupported(
            content_type,
            "codec not enabled (crate features `msgpack` / `cbor`)",
        )),
        None => Err(unsupported(content_type, "no codec for this content type")),
    }
}

/// Decode a `T` from `bytes` with the codec for `content_type`.
pub fn decode<T: DeserializeOwned>(content_type: &str, bytes: &[u8]) -> Result<T> {
    if content_type == DEFAULT_CONTENT_TYPE {
        // The common case, without parsing the content type.
        return Json::decode(bytes);
    }
    match kind_of(content_type) {
        Some(Kind::Json) => Json::decode(bytes),
        Some(Kind::Text) => Text::decode(bytes),
        Some(Kind::Binary) => Binary::decode(bytes),
        #[cfg(feature = "msgpack")]
        Some(Kind::MsgPack) => MsgPack::decode(bytes),
        #[cfg(feature = "cbor")]
        Some(Kind::Cbor) => Cbor::decode(bytes),
        #[allow(unreachable_patterns)]
        Some(_) => Err(unsupported(
            content_type,
            "codec not enabled (crate features `msgpack` / `cbor`)",
        )),
        None => Err(unsupported(content_type, "no codec for this content type")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use serde::Deserialize;

    #[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
    struct Sample {
        id: u64,
        name: String,
        tags: Vec<String>,
        score: Option<i32>,
        nested: Option<Box<Sample>>,
    }

    fn sample() -> impl Strategy<Value = Sample> {
        (
            any::<u64>(),
            ".*",
            proptest::collection::vec(".*", 0..4),
            any::<Option<i32>>(),
        )
            .prop_map(|(id, name, tags, score)| Sample {
                id,
                name,
                tags,
                score,
                nested: None,
            })
            .prop_recursive(2, 4, 1, |inner| {
                (inner, any::<u64>()).prop_map(|(n, id)| Sample {
                    id,
                    name: String::new(),
                    tags: vec![],
                    score: None,
                    nested: Some(Box::new(n)),
                })
            })
    }

    fn all_structured() -> Vec<&'static str> {
        #[allow(unused_mut)]
        let mut v = vec![
            "application/json",
            "application/cloudevents+json; charset=utf-8",
        ];
        #[cfg(feature = "msgpack")]
        v.push("application/msgpack");
        #[cfg(feature = "cbor")]
        v.push("application/cbor");
        v
    }

    proptest! {
        #[test]
        fn structured_round_trip(s in sample()) {
            for ct in all_structured() {
                let b = encode(ct, &s).unwrap();
                let back: Sample = decode(ct, &b).unwrap();
                prop_assert_eq!(&back, &s, "content type {}", ct);
            }
        }

        #[test]
        fn text_round_trip(s in ".*") {
            let b = encode("text/plain; charset=utf-8", &s).unwrap();
            prop_assert_eq!(&b[..], s.as_bytes());
            let back: String = decode("text/plain", &b).unwrap();
            prop_assert_eq!(back, s);
        }

        #[test]
        fn binary_round_trip(v in proptest::collection::vec(any::<u8>(), 0..256)) {
            let b = encode("application/octet-stream", &v).unwrap();
            prop_assert_eq!(&b[..], &v[..]);
            let back: Vec<u8> = decode("application/octet-stream", &b).unwrap();
            prop_assert_eq!(back, v);
        }

        #[test]
        fn json_decode_of_garbage_is_an_error_not_a_panic(v in proptest::collection::vec(any::<u8>(), 0..64)) {
            let _ = decode::<Sample>("application/json", &v);
        }
    }

    #[test]
    fn dispatch_rules() {
        assert_eq!(
            kind_of("Application/JSON ; charset=utf-8"),
            Some(Kind::Json)
        );
        assert_eq!(kind_of("application/vnd.api+json"), Some(Kind::Json));
        assert_eq!(kind_of("+json"), None);
        assert_eq!(kind_of("text/plain;charset=utf-8"), Some(Kind::Text));
        assert_eq!(kind_of("application/octet-stream"), Some(Kind::Binary));
        assert_eq!(kind_of("application/x-msgpack"), Some(Kind::MsgPack));
        assert_eq!(kind_of("application/xml"), None);
        assert!(matches!(
            encode("application/xml", &1),
            Err(Error::Codec { .. })
        ));
        assert!(matches!(
            decode::<u32>("application/xml", b"1"),
            Err(Error::Codec { .. })
        ));
    }

    #[test]
    fn decode_errors_are_values() {
        let e = decode::<Sample>("application/json", b"{not json").unwrap_err();
        assert!(
            matches!(&e, Error::Codec { content_type, .. } if content_type == "application/json")
        );
        assert!(decode::<String>("text/plain", &[0xff, 0xfe]).is_err());
        assert!(encode("text/plain", &vec![1, 2]).is_err());
        assert!(encode("application/octet-stream", &vec![1000]).is_err());
    }

    #[test]
    fn binary_into_bytes_and_string() {
        let b: Bytes = decode("application/octet-stream", b"\x00\x01abc").unwrap();
        assert_eq!(&b[..], b"\x00\x01abc");
        let s: String = decode("application/octet-stream", b"hello").unwrap();
        assert_eq!(s, "hello");
        let enc = encode("application/octet-stream", &Bytes::from_static(b"xyz")).unwrap();
        assert_eq!(&enc[..], b"xyz");
    }
}
