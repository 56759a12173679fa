//! Loading never panics: mutated corpus documents, alias bombs, deep nesting.

mod common;

use std::path::Path;
use std::time::Instant;

use asyncapi::{LoadOptions, load_str};
use common::*;

/// A small deterministic generator (xorshift64*), so failures reproduce.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn below(&mut self, n: usize) -> usize {
        usize::try_from(self.next() % u64::try_from(n.max(1)).unwrap_or(1)).unwrap_or(0)
    }
}

const TOKENS: &[&str] = &[
    "{",
    "}",
    "[",
    "]",
    ": ",
    "- ",
    "&a ",
    "*a",
    "$ref: '#/nope'",
    "$ref: '../../x.yaml#/a'",
    "$ref: 'https://e.org/x'",
    "'",
    "\"",
    "\t",
    "~",
    "{x}",
    "null",
    "1e999",
    "!!binary",
    "#",
    "\n  ",
    "\n- ",
    "channel: 5",
    "address: '{'",
    "$ref: '#'",
    "$ref: '#/components'",
    "messages: [1]",
    "traits: [5]",
    "action: jump",
    "~1",
    "%",
    "\u{feff}",
    "\u{0}",
];

fn mutate(text: &str, rng: &mut Rng) -> String {
    let mut lines: Vec<String> = text.lines().map(str::to_string).collect();
    let steps = 1 + rng.below(4);
    for _ in 0..steps {
        if lines.is_empty() {
            lines.push(String::new());
        }
        let i = rng.below(lines.len());
        match rng.below(7) {
            0 => {
                lines.remove(i);
            }
            1 => {
                let l = lines[i].clone();
                lines.insert(i, l);
            }
            2 => {
                let j = rng.below(lines.len());
                lines.swap(i, j);
            }
            3 => {
                let t = TOKENS[rng.below(TOKENS.len())];
                let l = &mut lines[i];
                let mut at = rng.below(l.len() + 1);
                while !l.is_char_boundary(at) {
                    at -= 1;
                }
                l.insert_str(at, t);
            }
            4 => {
                let l = &mut lines[i];
                if rng.below(2) == 0 {
                    l.insert(0, ' ');
                } else if l.starts_with(' ') {
                    l.remove(0);
                }
            }
            5 => {
                let l = &mut lines[i];
                let mut at = rng.below(l.len() + 1);
                while !l.is_char_boundary(at) {
                    at -= 1;
                }
                l.truncate(at);
            }
            _ => lines.truncate(i),
        }
    }
    lines.join("\n")
}

#[test]
fn mutated_corpus_documents_never_panic() {
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    let mut loads = 0;
    let mut rejected = 0;
    let mut round_trip_failures = Vec::new();
    for doc in documents() {
        let text = std::fs::read_to_string(&doc).expect("corpus file");
        let options = LoadOptions {
            allow_outside_root: rng.below(2) == 0,
            ..options_for(&doc)
        };
        for _ in 0..40 {
            let mutated = mutate(&text, &mut rng);
            // Same folder: relative references still reach the real files.
            let result = load_str(&mutated, &doc, &options);
            loads += 1;
            match result {
                Ok(l) => {
                    // A loaded model can always be emitted, and reads back the same.
                    let yaml = asyncapi::emit::to_yaml(&l.document);
                    match load_str(&yaml, &doc.with_file_name("emitted.yaml"), &options) {
                        Ok(again) => {
                            let (mut a, mut b) = (l.document, again.document);
                            a.clear_sources();
                            b.clear_sources();
                            b.source_version.clone_from(&a.source_version);
                            // Emitting converts what 3.x writes otherwise (bindings fitted to
                            // the official schema, parameters the address does not use
                            // dropped): then the emitted documents must agree.
                            if a != b && asyncapi::emit::to_v3(&a) != asyncapi::emit::to_v3(&b) {
                                round_trip_failures.push(format!("{}:\n{mutated}", doc.display()));
                            }
                        }
                        // A mutation may break a binding in a way 2.x's schema does not see
                        // (it checks bindings loosely) and 3.x's does: that is a refusal with
                        // a reason, not a failed round trip.
                        Err(e)
                            if e.errors().all(|d| {
                                d.message.contains("official AsyncAPI")
                                    && d.pointer.contains("/bindings/")
                            }) => {}
                        Err(e) => {
                            round_trip_failures.push(format!("{}: {e}\n{mutated}", doc.display()))
                        }
                    }
                }
                Err(e) => {
                    rejected += 1;
                    assert!(e.has_errors(), "an Err always carries an error");
                    assert!(!e.to_string().is_empty());
                }
            }
        }
    }
    assert!(
        round_trip_failures.is_empty(),
        "{} round trips failed; first:\n{}",
        round_trip_failures.len(),
        round_trip_failures[0]
    );
    assert!(loads >= 1600);
    assert!(
        rejected > loads / 10,
        "mutations should break documents: {rejected}/{loads}"
    );
}

#[test]
fn yaml_alias_bombs_are_refused_quickly() {
    let mut text = String::from(
        "asyncapi: 3.0.0\ninfo: {title: T, version: '1'}\na0: &a0 [x, x, x, x, x, x, x, x, x, x]\n",
    );
    for i in 1..12 {
        let prev = format!("*a{}", i - 1);
        text.push_str(&format!(
            "a{i}: &a{i} [{}]\n",
            [prev.as_str(); 10].join(", ")
        ));
    }
    let start = Instant::now();
    let err = load_str(&text, Path::new("bomb.yaml"), &LoadOptions::default())
        .expect_err("alias bomb refused");
    assert!(start.elapsed().as_secs() < 10, "took {:?}", start.elapsed());
    let d = err.errors().next().expect("error");
    assert!(d.message.contains("invalid YAML"), "{err}");
}

fn nested_yaml_flow(depth: usize) -> String {
    format!(
        "asyncapi: 3.0.0\ninfo: {{title: T, version: '1'}}\nx-deep: {}1{}\n",
        "[".repeat(depth),
        "]".repeat(depth)
    )
}

fn nested_yaml_block(depth: usize) -> String {
    let mut s = String::from("asyncapi: 3.0.0\ninfo: {title: T, version: '1'}\nx-deep:\n");
    for i in 0..depth {
        s.push_str(&"  ".repeat(i + 1));
        s.push_str("k:\n");
    }
    s
}

fn nested_json(depth: usize) -> String {
    format!(
        "{{\"asyncapi\": \"3.0.0\", \"info\": {{\"title\": \"T\", \"version\": \"1\"}}, \"x-deep\": {}1{}}}",
        "[".repeat(depth),
        "]".repeat(depth)
    )
}

fn nested_schema(depth: usize) -> String {
    let mut s = String::from(
        "asyncapi: 3.0.0\ninfo: {title: T, version: '1'}\ncomponents:\n  schemas:\n    Deep:\n",
    );
    for i in 0..depth {
        s.push_str(&"  ".repeat(i + 3));
        s.push_str("properties:\n");
        s.push_str(&"  ".repeat(i + 4));
        s.push_str("p:\n");
    }
    s
}

#[test]
fn deep_nesting_does_not_overflow_the_stack() {
    for depth in [200, 2_000] {
        for (text, name) in [
            (nested_yaml_flow(depth), "flow.yaml"),
            (nested_yaml_block(depth), "block.yaml"),
            (nested_json(depth), "deep.json"),
            (nested_schema(depth), "schema.yaml"),
        ] {
            // Run on a small stack: a recursion that only bounded input keeps in check
            // would overflow here.
            let handle = std::thread::Builder::new()
                .stack_size(1 << 20)
                .spawn(
                    move || match load_str(&text, Path::new(name), &LoadOptions::default()) {
                        Ok(l) => {
                            let _ = asyncapi::emit::to_json(&l.document);
                            None
                        }
                        Err(e) => Some(e.to_string()),
                    },
                )
                .expect("thread");
            let outcome = handle.join().expect("no stack overflow or panic");
            if let Some(e) = outcome {
                assert!(e.contains("error"), "{name}/{depth}: {e}");
            }
        }
    }
}
