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

/// 2.6.0 corpus documents whose bindings no binding version of the 3.0.0 schema accepts as
/// written (HTTP 0.1.0 `type`, AMQP `replyTo`, a nested `http`): the converter rewrites them
/// (`x-` extensions), so their round trip compares the emitted documents.
const CONVERTED_BINDINGS: &[&str] = &[
    "spec-v2.6.0/gitter-streaming.yml",
    "spec-v2.6.0/operation-security.yml",
    "spec-v2.6.0/rpc-client.yml",
    "spec-v2.6.0/rpc-server.yml",
];

#[test]
fn emitted_documents_validate_and_round_trip() {
    let v3 = official_validator("3.0.0");
    let v31 = official_validator("3.1.0");
    let mut bad = Vec::new();
    for doc in documents() {
        if is_adeo(&doc) {
            continue;
        }
        let loaded = load(&doc, &options_for(&doc)).unwrap_or_else(|e| panic!("{e}"));
        let emitted = emit::to_v3(&loaded.document);
        let mut errors = schema_errors(&v3, &emitted);
        errors.extend(schema_errors(
            &v31,
            &emit::to_version(&loaded.document, "3.1.0"),
        ));
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
            let converted = CONVERTED_BINDINGS.iter().any(|n| doc.ends_with(n));
            if converted && emit::to_v3(&a) != emit::to_v3(&b) {
                bad.push(format!(
                    "{}: round trip through {name} changed the emitted document",
                    doc.display()
                ));
            } else if !converted && a != b {
                bad.push(format!(
                    "{}: round trip through {name} changed the model:\n{a:#?}\n---\n{b:#?}",
                    doc.display()
                ));
            }
        }
    }
    assert!(bad.is_empty(), "{}", bad.join("\n\n"));
}
