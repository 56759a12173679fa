//! cargo-fuzz target `generate` (see `src/lib.rs`).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    ruststream_fuzz::generate(data);
});
