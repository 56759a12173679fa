//! Helpers shared by the integration tests: the vendored corpus and the official schemas.

#![allow(dead_code)]

use std::path::{Path, PathBuf};

use asyncapi::LoadOptions;
use serde_json::Value;

/// The vendored corpus folder.
pub fn corpus() -> PathBuf {
    Path::new(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../tests/data/asyncapi-corpus"
    ))
    .to_path_buf()
}

/// Every corpus document (both versions, social-media services included), sorted.
pub fn documents() -> Vec<PathBuf> {
    let mut out = Vec::new();
    for version in ["spec-v2.6.0", "spec-v3.0.0"] {
        let dir = corpus().join(version);
        for e in std::fs::read_dir(&dir).expect("corpus folder") {
            let p = e.expect("corpus entry").path();
            if p.extension().is_some_and(|x| x == "yml") {
                out.push(p);
            }
        }
        for service in [
            "backend",
            "comments-service",
            "frontend",
            "notification-service",
            "public-api",
        ] {
            out.push(dir.join("social-media").join(service).join("asyncapi.yaml"));
        }
    }
    out.sort();
    assert!(
        out.len() >= 40,
        "corpus incomplete: {} documents",
        out.len()
    );
    out
}

/// `true` for the one corpus document the official parser rejects.
pub fn is_adeo(p: &Path) -> bool {
    p.ends_with("adeo-kafka-request-reply-asyncapi.yml")
}

/// The social-media services share `../common`: their root is the project folder.
pub fn options_for(doc: &Path) -> LoadOptions {
    let root = doc
        .ancestors()
        .find(|a| a.ends_with("social-media"))
        .map(Path::to_path_buf);
    LoadOptions {
        root,
        ..LoadOptions::default()
    }
}

/// Reads a YAML/JSON file as a JSON value.
pub fn read_value(p: &Path) -> Value {
    let text = std::fs::read_to_string(p).expect("readable");
    serde_norway::from_str(&text).expect("valid YAML")
}

/// A draft-07 validator for the official schema of `version` (`2.6.0`, `3.0.0`, `3.1.0`).
pub fn official_validator(version: &str) -> jsonschema::Validator {
    let p = Path::new(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../tests/data/asyncapi-schemas"
    ))
    .join(format!("{version}.json"));
    let schema: Value =
        serde_json::from_str(&std::fs::read_to_string(p).expect("schema file")).expect("JSON");
    jsonschema::draft7::options()
        .should_validate_formats(false)
        .build(&schema)
        .expect("official schema compiles")
}

/// The official validator's complaints about `doc` (empty when valid).
pub fn schema_errors(v: &jsonschema::Validator, doc: &Value) -> Vec<String> {
    v.iter_errors(doc)
        .map(|e| format!("{} at {}", e, e.instance_path))
        .collect()
}
