//! Regression (found by the fuzz smoke test, `bench/tests/fuzz_smoke.rs`): a small, deeply nested
//! message must be refused with a codec error, never overflow the stack of the thread decoding
//! it (a stack overflow aborts the whole service). Decoding runs on a 2 MiB stack, tokio's
//! default for worker threads, into the types most prone to deep recursion.

#![cfg(all(feature = "msgpack", feature = "cbor"))]

use ruststream::codec;
use serde::Deserialize;

#[derive(Debug, Deserialize)]
#[serde(untagged)]
#[allow(dead_code)]
enum Tree {
    Leaf(f64),
    Text(String),
    Branch(Vec<Tree>),
}

/// Decode `payload` on a 2 MiB stack into a JSON value and an untagged enum; both must fail.
fn refused(content_type: &'static str, payload: Vec<u8>) {
    std::thread::Builder::new()
        .stack_size(2 << 20)
        .spawn(move || {
            assert!(codec::decode::<serde_json::Value>(content_type, &payload).is_err());
            assert!(codec::decode::<Tree>(content_type, &payload).is_err());
        })
        .expect("spawn")
        .join()
        .expect("decoding a nested payload panicked");
}

#[test]
fn deeply_nested_msgpack_is_refused() {
    // fixarray(1) nested 100,000 times (100 kB).
    refused(
        "application/msgpack",
        [vec![0x91; 100_000], vec![0xc0]].concat(),
    );
    // fixmap(1) {"a": …} nested.
    refused(
        "application/msgpack",
        [b"\x81\xa1a".repeat(50_000), vec![0xc0]].concat(),
    );
}

#[test]
fn deeply_nested_cbor_is_refused() {
    refused(
        "application/cbor",
        [vec![0x81; 100_000], vec![0xf6]].concat(),
    );
}

#[test]
fn deeply_nested_json_is_refused() {
    refused(
        "application/json",
        [b"[".repeat(100_000), b"]".repeat(100_000)].concat(),
    );
}
