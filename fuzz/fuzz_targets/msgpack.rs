//! cargo-fuzz target `msgpack` (see `src/lib.rs`).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    ruststream_fuzz::msgpack(data);
});
