//! The `ruststream-build` binary: generate, check and convert, with exit codes and no panics.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn data(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../tests/data")
        .join(rel)
}

fn run(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_ruststream-build"))
        .args(args)
        .output()
        .expect("the binary runs")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[test]
fn generate_prints_the_requested_side() {
    let spec = data("codegen/service.yaml");
    let out = run(&["generate", spec.to_str().unwrap(), "--side", "client"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let code = text(&out.stdout);
    assert!(code.contains("pub struct Client<C>"), "{code}");
    assert!(!code.contains("pub trait Handler"), "{code}");
    let out = run(&["generate", spec.to_str().unwrap(), "--side", "app"]);
    let code = text(&out.stdout);
    assert!(code.contains("pub trait Handler") && !code.contains("pub struct Client<C>"));
}

#[test]
fn check_accepts_a_valid_document() {
    let spec = data("asyncapi-corpus/spec-v3.0.0/streetlights-mqtt-asyncapi.yml");
    let out = run(&["check", spec.to_str().unwrap()]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(text(&out.stderr).contains("valid"));
}

#[test]
fn check_rejects_with_located_diagnostics() {
    let spec = data("asyncapi-corpus/spec-v3.0.0/adeo-kafka-request-reply-asyncapi.yml");
    let out = run(&["check", spec.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    let err = text(&out.stderr);
    assert!(err.contains("error"), "{err}");
    assert!(
        err.contains("adeo-kafka-request-reply-asyncapi.yml:"),
        "file:line: {err}"
    );
    assert!(!err.contains("panicked"), "{err}");
}

#[test]
fn generate_and_check_never_panic_on_missing_or_broken_files() {
    for args in [
        vec!["check", "/nonexistent/asyncapi.yaml"],
        vec!["generate", "/nonexistent/asyncapi.yaml"],
    ] {
        let out = run(&args);
        assert_eq!(out.status.code(), Some(1), "{args:?}");
        assert!(!text(&out.stderr).contains("panicked"), "{args:?}");
    }
    let spec = data("codegen/invalid-dangling-ref.yaml");
    let out = run(&["generate", spec.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    let err = text(&out.stderr);
    assert!(err.contains("invalid-dangling-ref.yaml:"), "{err}");
    assert!(out.stdout.is_empty());
}

#[test]
fn convert_prints_asyncapi_3_json_and_yaml() {
    let spec = data("asyncapi-corpus/spec-v2.6.0/streetlights-kafka.yml");
    // 3.1.0 by default, as the newest official tools.
    let out = run(&["convert", spec.to_str().unwrap(), "--format", "json"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON");
    assert_eq!(doc["asyncapi"], "3.1.0");
    let out = run(&["convert", spec.to_str().unwrap()]);
    assert!(out.status.success());
    assert!(text(&out.stdout).contains("asyncapi: 3.1.0"));
    let out = run(&["convert", spec.to_str().unwrap(), "--to", "3.0.0"]);
    assert!(out.status.success());
    assert!(text(&out.stdout).contains("asyncapi: 3.0.0"));
}

#[test]
fn generate_resolves_multi_file_projects_with_root() {
    // The official multi-file example loads by default: the root is the nearest folder with
    // a `Cargo.toml` or `.git` (here the `tests` crate).
    let spec = data("asyncapi-corpus/spec-v3.0.0/social-media/backend/asyncapi.yaml");
    let root = data("asyncapi-corpus/spec-v3.0.0/social-media");
    let out = run(&["generate", spec.to_str().unwrap()]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    // A root that the references leave is refused, and the hint names the CLI flags.
    let backend = data("asyncapi-corpus/spec-v3.0.0/social-media/backend");
    let out = run(&[
        "check",
        spec.to_str().unwrap(),
        "--root",
        backend.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(1), "escaping --root is refused");
    let err = text(&out.stderr);
    assert!(err.contains("escapes the spec's root folder"), "{err}");
    assert!(
        err.contains("`--root <DIR>`") && err.contains("`--allow-outside-root`"),
        "{err}"
    );
    assert!(!err.contains("LoadOptions"), "{err}");
    let out = run(&[
        "check",
        spec.to_str().unwrap(),
        "--root",
        backend.to_str().unwrap(),
        "--allow-outside-root",
    ]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let out = run(&[
        "generate",
        spec.to_str().unwrap(),
        "--root",
        root.to_str().unwrap(),
    ]);
    assert!(out.status.success(), "{}", text(&out.stderr));
}
