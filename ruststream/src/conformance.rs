//! Conformance harness for broker crates (in progress).
