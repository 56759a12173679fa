//! The corpus against the official AsyncAPI JSON Schemas (draft-07), and emitted 3.0.0
//! documents against the official 3.0.0 schema, with a load → emit → load round trip.

mod common;

use asyncapi::{emit, load, load_str};
use common::*;

#[test]
fn corpus_documents_match_their_official_schema() {
    let v2 = official_validator("2.6.0");
    let v3 = official_validator("3.0.0");
    let mut bad = Vec::new();
    for doc in documents() {
        let value = read_value(&doc);
        let validator = match value["asyncapi"].as_str() {
            Some("2.6.0") => &v2,
            Some("3.0.0") => &v3,
            other => panic!("{}: unexpected version {other:?}", doc.display()),
        };
        let errors = schema_errors(validator, &value);
        if is_adeo(&doc) {
            // The official schema rejects it too (the Kafka binding `key` reference).
            assert!(!errors.is_empty(), "adeo should not validate");
        } else if !errors.is_empty() {
            bad.push(format!("{}: {errors:?}", doc.display()));
        }
    }
    assert!(bad.is_empty(), "{}", bad.join("\n"));
}

/// 2.6.0 corpus documents whose bindings are invalid for every binding version the 3.0.0
/// schema knows.
const INVALID_SOURCE_BINDINGS: &[&str] = &[
    "spec-v2.6.0/gitter-streaming.yml",
    "spec-v2.6.0/operation-security.yml",
    "spec-v2.6.0/rpc-client.yml",
    "spec-v2.6.0/rpc-server.yml",
];

/// Removes every `bindings` member; returns how many were removed.
fn strip_bindings(v: &mut serde_json::Value) -> usize {
    match v {
        serde_json::Value::Object(m) => {
            let mut n = usize::from(m.remove("bindings").is_some());
            for child in m.values_mut() {
                n += strip_bindings(child);
            }
            n
        }
        serde_json::Value::Array(a) => a.iter_mut().map(strip_bindings).sum(),
        _ => 0,
    }
}

#[test]
fn emitted_documents_validate_and_round_trip() {
    let v3 = official_validator("3.0.0");
    let mut bad = Vec::new();
    for doc in documents() {
        if is_adeo(&doc) {
            continue;
        }
        let loaded = load(&doc, &options_for(&doc)).unwrap_or_else(|e| panic!("{e}"));
        let emitted = emit::to_v3(&loaded.document);
        let errors = if INVALID_SOURCE_BINDINGS.iter().any(|n| doc.ends_with(n)) {
            // These 2.6.0 examples carry bindings that no binding schema in the 3.0.0 schema
            // accepts (e.g. `http: {http: ...}`); bindings are copied verbatim, so check the
            // rest of the document, and that the source bindings really are kept.
            let mut stripped = emitted.clone();
            let removed = strip_bindings(&mut stripped);
            assert!(removed > 0, "{}: expected bindings", doc.display());
            assert!(
                !schema_errors(&v3, &emitted).is_empty(),
                "{}",
                doc.display()
            );
            schema_errors(&v3, &stripped)
        } else {
            schema_errors(&v3, &emitted)
        };
        if !errors.is_empty() {
            bad.push(format!(
                "{}: emitted document invalid: {errors:?}",
                doc.display()
            ));
            continue;
        }
        for (text, name) in [
            (emit::to_yaml(&loaded.document), "emitted.yaml"),
            (emit::to_json(&loaded.document), "emitted.json"),
        ] {
            let virtual_path = doc.with_file_name(name);
            let again = match load_str(&text, &virtual_path, &options_for(&doc)) {
                Ok(l) => l,
                Err(e) => {
                    bad.push(format!("{}: reload of {name} failed:\n{e}", doc.display()));
                    continue;
                }
            };
            assert!(
                again.files.is_empty(),
                "emitted documents reference no files"
            );
            let mut a = loaded.document.clone();
            let mut b = again.document;
            a.clear_sources();
            b.clear_sources();
            b.source_version.clone_from(&a.source_version);
            if a != b {
                bad.push(format!(
                    "{}: round trip through {name} changed the model:\n{a:#?}\n---\n{b:#?}",
                    doc.display()
                ));
            }
        }
    }
    assert!(bad.is_empty(), "{}", bad.join("\n\n"));
}
