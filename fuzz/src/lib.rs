//! The bodies of the fuzz targets, shared by the cargo-fuzz binaries (`fuzz_targets/`) and the
//! deterministic no-panic smoke test that CI runs (`bench/tests/fuzz_smoke.rs` includes this
//! file). Each body must return normally for every input: an `Err` is fine, a panic, a hang or
//! unbounded memory is a bug.

use std::collections::BTreeMap;
use std::path::Path;

use serde::{Deserialize, Serialize};

/// A payload type with the shapes generated code uses: required and optional fields, nested
/// structs, vectors, maps, string enums, tagged and untagged enums, recursion.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Sample {
    /// Integer.
    pub id: i64,
    /// String.
    pub name: String,
    /// Optional unsigned.
    #[serde(default)]
    pub ts: Option<u64>,
    /// Float.
    #[serde(default)]
    pub amount: Option<f64>,
    /// Vector of strings.
    #[serde(default)]
    pub tags: Vec<String>,
    /// String enum.
    #[serde(default)]
    pub status: Option<Status>,
    /// Internally tagged enum.
    #[serde(default)]
    pub shape: Option<Shape>,
    /// Untagged enum.
    #[serde(default)]
    pub value: Option<Either>,
    /// Map with arbitrary JSON values.
    #[serde(default)]
    pub extra: BTreeMap<String, serde_json::Value>,
    /// Recursion.
    #[serde(default)]
    pub child: Option<Box<Sample>>,
}

/// A string enum.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    /// New.
    New,
    /// Active.
    Active,
}

/// An internally tagged enum.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum Shape {
    /// A circle.
    Circle {
        /// Radius.
        radius: f64,
    },
    /// A square.
    Square {
        /// Side.
        side: f64,
    },
}

/// An untagged enum.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Either {
    /// A number.
    Number(f64),
    /// A text.
    Text(String),
    /// A list.
    List(Vec<Either>),
}

/// Decode `data` with `content_type` into every type a handler may ask for; re-encode what
/// decoded.
pub fn decode_all(content_type: &str, data: &[u8]) {
    use ruststream::codec::{decode, encode};
    if let Ok(v) = decode::<Sample>(content_type, data) {
        let _ = encode(content_type, &v);
    }
    if let Ok(v) = decode::<serde_json::Value>(content_type, data) {
        let _ = encode(content_type, &v);
    }
    let _ = decode::<String>(content_type, data);
    let _ = decode::<Vec<u8>>(content_type, data);
    let _ = decode::<bytes::Bytes>(content_type, data);
    let _ = decode::<f64>(content_type, data);
    let _ = decode::<Either>(content_type, data);
    let _ = decode::<Option<Vec<Status>>>(content_type, data);
}

/// The JSON codec.
pub fn json(data: &[u8]) {
    decode_all("application/json", data);
    decode_all("application/cloudevents+json; charset=utf-8", data);
}

/// The MessagePack codec.
pub fn msgpack(data: &[u8]) {
    decode_all("application/msgpack", data);
}

/// The CBOR codec.
pub fn cbor(data: &[u8]) {
    decode_all("application/cbor", data);
}

/// The text and binary codecs.
pub fn text(data: &[u8]) {
    decode_all("text/plain", data);
    decode_all("application/octet-stream", data);
}

/// The code generator (`ruststream-build`) on `data` as an AsyncAPI document.
pub fn generate(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    // Whatever loads must generate (or refuse with diagnostics) without panicking or
    // overflowing the stack. (The code comes from a parsed `syn::File`, printed back.)
    let config = ruststream_build::Config::new().emit_rerun_if_changed(false);
    let _ = config.generate_str(text, Path::new("/nonexistent-ruststream-fuzz/doc.yaml"));
}

/// The AsyncAPI loader, on `data` as YAML and as JSON. The virtual root folder does not
/// exist, so relative `$ref`s read nothing; network refs are refused by default.
pub fn loader(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let options = asyncapi::LoadOptions::default();
    for name in [
        "/nonexistent-ruststream-fuzz/doc.yaml",
        "/nonexistent-ruststream-fuzz/doc.json",
    ] {
        if let Ok(loaded) = asyncapi::load_str(text, Path::new(name), &options) {
            // What loaded must also emit.
            let _ = asyncapi::emit::to_json(&loaded.document);
            let _ = asyncapi::emit::to_yaml(&loaded.document);
        }
    }
}
