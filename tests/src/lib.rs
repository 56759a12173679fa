//! End-to-end tests across RustStream crates (in `tests/`), and the code generated at build
//! time for every AsyncAPI document of the corpus and of `data/codegen`: compiling this crate
//! proves that generated code compiles, warning-free under the workspace lints.

include!(concat!(env!("OUT_DIR"), "/specs.rs"));
