//! Every document of the vendored AsyncAPI corpus loads and normalises cleanly.

mod common;

use asyncapi::load;
use common::*;

#[test]
fn every_corpus_document_loads_without_warnings() {
    let mut failures = Vec::new();
    for doc in documents() {
        if is_adeo(&doc) {
            continue; // tested in normalise.rs: it gives precise errors
        }
        match load(&doc, &options_for(&doc)) {
            Ok(l) => {
                let d = &l.document;
                assert!(!d.info.title.is_empty(), "{}", doc.display());
                assert_eq!(l.files[0], doc);
                assert!(l.warnings.is_empty(), "{}: {:?}", doc.display(), l.warnings);
                assert!(!d.channels.is_empty(), "{}", doc.display());
                for op in &d.operations {
                    let ch = d.channel(&op.channel).expect("operation channel exists");
                    for m in &op.messages {
                        assert!(ch.messages.contains(m), "{}: {}", doc.display(), op.id);
                        assert!(d.message(m).is_some());
                    }
                    assert!(op.source.line.is_some(), "{}: {}", doc.display(), op.id);
                }
                for m in &d.messages {
                    assert!(m.source.line.is_some(), "{}: {}", doc.display(), m.id);
                    assert!(!m.content_type.is_empty());
                }
                for c in &d.channels {
                    assert!(c.source.line.is_some(), "{}: {}", doc.display(), c.id);
                }
            }
            Err(e) => failures.push(format!("{}:\n{e}", doc.display())),
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}
