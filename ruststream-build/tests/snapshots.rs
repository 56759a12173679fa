//! Snapshot tests: each focused spec in `tests/data/codegen` generates exactly the committed
//! `.rs` file beside it. Set `UPDATE_SNAPSHOTS=1` to rewrite the snapshots.

use std::path::{Path, PathBuf};

use ruststream_build::{Config, Error};

fn data_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/data/codegen")
}

fn specs() -> Vec<PathBuf> {
    let mut specs: Vec<PathBuf> = std::fs::read_dir(data_dir())
        .expect("tests/data/codegen exists")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "yaml" || e == "yml"))
        .filter(|p| !p.to_string_lossy().contains("invalid"))
        .collect();
    specs.sort();
    specs
}

#[test]
fn generated_code_matches_snapshots() {
    let update = std::env::var_os("UPDATE_SNAPSHOTS").is_some_and(|v| v == "1");
    let specs = specs();
    assert!(specs.len() >= 5, "focused specs missing: {specs:?}");
    let mut mismatched = Vec::new();
    for spec in &specs {
        let code = Config::new()
            .generate_string(spec)
            .unwrap_or_else(|e| panic!("{}: {e}", spec.display()));
        let snapshot = spec.with_extension("rs");
        if update {
            std::fs::write(&snapshot, &code).expect("write snapshot");
            continue;
        }
        let expected = std::fs::read_to_string(&snapshot).unwrap_or_default();
        if expected != code {
            mismatched.push(snapshot.display().to_string());
        }
    }
    assert!(
        mismatched.is_empty(),
        "generated code differs from the snapshots (rerun with UPDATE_SNAPSHOTS=1 and review the diff): {mismatched:?}"
    );
}

#[test]
fn generation_is_deterministic() {
    for spec in specs() {
        let a = Config::new().generate_string(&spec).expect("generates");
        let b = Config::new().generate_string(&spec).expect("generates");
        assert_eq!(a, b, "{}", spec.display());
    }
}

#[test]
fn invalid_spec_gives_a_formatted_error() {
    let spec = data_dir().join("invalid-dangling-ref.yaml");
    let err = Config::new()
        .generate_string(&spec)
        .expect_err("the spec is invalid");
    assert!(matches!(err, Error::Spec(_)), "{err:?}");
    let text = err.to_string();
    assert!(text.contains("invalid-dangling-ref.yaml:"), "{text}");
    assert!(text.contains("error"), "{text}");
    assert!(text.contains("Missing"), "names the dangling ref: {text}");
    // What `fn main() -> Result<(), Box<dyn Error>>` in build.rs prints is the same text.
    assert_eq!(format!("{err:?}"), text);
}

#[test]
fn compile_writes_the_module_file() {
    let dir = std::env::temp_dir().join(format!("ruststream-build-compile-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let out = Config::new()
        .emit_rerun_if_changed(false)
        .out_dir(&dir)
        .compile(data_dir().join("service.yaml"))
        .expect("compiles");
    assert_eq!(out, dir.join("accounts_service.rs"));
    let code = std::fs::read_to_string(&out).expect("written");
    assert!(code.contains("pub trait Handler"));
    let renamed = Config::new()
        .emit_rerun_if_changed(false)
        .module_name("accounts")
        .side(ruststream_build::Side::Client)
        .out_dir(&dir)
        .compile(data_dir().join("service.yaml"))
        .expect("compiles");
    let client_only = std::fs::read_to_string(&renamed).expect("written");
    assert!(client_only.contains("pub struct Client"));
    assert!(!client_only.contains("pub trait Handler"));
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn bad_options_are_errors_not_panics() {
    let spec = data_dir().join("structs.yaml");
    let err = Config::new()
        .type_attribute(".", "not an attribute")
        .generate_string(&spec)
        .expect_err("bad attribute");
    assert!(matches!(err, Error::Config(_)), "{err}");
    let err = Config::new()
        .replace_type("Reading", "1 + 2")
        .generate_string(&spec)
        .expect_err("bad type");
    assert!(matches!(err, Error::Config(_)), "{err}");
}

#[test]
fn options_change_the_output() {
    let spec = data_dir().join("structs.yaml");
    let code = Config::new()
        .formats(ruststream_build::Formats::new().chrono(true).uuid(true))
        .type_attribute("Reading", "#[derive(Default)]")
        .generate_string(&spec)
        .expect("generates");
    assert!(
        code.contains("::chrono::DateTime<::chrono::FixedOffset>"),
        "{code}"
    );
    assert!(code.contains("::uuid::Uuid"), "{code}");
    assert!(code.contains("#[derive(Default)]"), "{code}");
    let code = Config::new()
        .replace_type("Level", "crate::Level")
        .generate_string(data_dir().join("enums.yaml"))
        .expect("generates");
    assert!(code.contains("pub level: crate::Level,"), "{code}");
    assert!(!code.contains("pub enum Level"), "{code}");
}

#[test]
fn every_file_read_is_reported_once() {
    let corpus = data_dir().join("../asyncapi-corpus/spec-v3.0.0/social-media");
    let generated = Config::new()
        .root(&corpus)
        .generate(&corpus.join("backend/asyncapi.yaml"))
        .expect("generates");
    let names: Vec<String> = generated
        .files
        .iter()
        .map(|f| {
            f.file_name()
                .unwrap_or_default()
                .to_string_lossy()
                .into_owned()
        })
        .collect();
    assert_eq!(names[0], "asyncapi.yaml", "{names:?}");
    assert!(names.len() > 1, "the shared files are reported: {names:?}");
    let mut unique = generated.files.clone();
    unique.sort();
    unique.dedup();
    assert_eq!(unique.len(), generated.files.len(), "{names:?}");
}

#[test]
fn schemas_that_only_reference_each_other_are_refused() {
    let spec = data_dir().join("invalid-ref-cycle.yaml");
    let err = Config::new()
        .generate_string(&spec)
        .expect_err("no type in the cycle");
    let Error::Spec(diagnostics) = &err else {
        panic!("{err}")
    };
    let messages: Vec<&str> = diagnostics.errors().map(|d| d.message.as_str()).collect();
    assert_eq!(
        messages,
        [
            "schema `A` is a reference cycle with no type in it: A -> B -> A",
            "schema `B` is a reference cycle with no type in it: B -> A -> B",
        ]
    );
    assert!(err.to_string().contains("#/components/schemas/A"), "{err}");
}
