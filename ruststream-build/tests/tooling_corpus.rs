//! Every document of `tests/data/asyncapi-tooling-fixtures` that the loader accepts generates
//! code for both sides, and the code parses. (Which documents are accepted is pinned in
//! `asyncapi/tests/tooling_corpus.rs`; a sample is compiled by the `tests` crate.)

use std::path::{Path, PathBuf};

use ruststream_build::{Config, Side};

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/data/asyncapi-tooling-fixtures")
}

#[test]
fn every_accepted_tooling_document_generates_code_that_parses() {
    let index = std::fs::read_to_string(fixtures().join("INDEX.tsv")).expect("INDEX.tsv");
    let mut generated = 0;
    let mut failures = Vec::new();
    for rel in index.lines().skip(1).filter_map(|l| l.split('\t').next()) {
        let path = fixtures().join(rel);
        if asyncapi::load(&path, &asyncapi::LoadOptions::default()).is_err() {
            continue;
        }
        match Config::new()
            .side(Side::Both)
            .emit_rerun_if_changed(false)
            .generate(&path)
        {
            Ok(g) => match syn::parse_file(&g.code) {
                Ok(_) => generated += 1,
                Err(e) => failures.push(format!("{rel}: generated code does not parse: {e}")),
            },
            Err(e) => failures.push(format!("{rel}: {e}")),
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
    assert!(generated >= 55, "only {generated} documents generated");
}
