//! Every document of the vendored AsyncAPI corpus loads and normalises.

use std::path::{Path, PathBuf};

use asyncapi::{LoadOptions, load};

fn corpus() -> PathBuf {
    Path::new(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../tests/data/asyncapi-corpus"
    ))
    .to_path_buf()
}

fn documents() -> Vec<PathBuf> {
    let mut out = Vec::new();
    for version in ["spec-v2.6.0", "spec-v3.0.0"] {
        let dir = corpus().join(version);
        for e in std::fs::read_dir(&dir).unwrap() {
            let p = e.unwrap().path();
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
    out
}

/// The social-media services share `../common`: their root is the project folder.
fn options_for(doc: &Path) -> LoadOptions {
    let root = doc
        .ancestors()
        .find(|a| a.ends_with("social-media"))
        .map(Path::to_path_buf);
    LoadOptions {
        root,
        ..LoadOptions::default()
    }
}

#[test]
fn every_corpus_document_loads() {
    let mut failures = Vec::new();
    for doc in documents() {
        if doc.ends_with("adeo-kafka-request-reply-asyncapi.yml") {
            continue;
        }
        match load(&doc, &options_for(&doc)) {
            Ok(l) => {
                assert!(!l.document.info.title.is_empty(), "{}", doc.display());
                assert_eq!(l.files[0], doc);
                for w in &l.warnings {
                    eprintln!("{w}");
                }
            }
            Err(e) => failures.push(format!("{}:\n{e}", doc.display())),
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}
