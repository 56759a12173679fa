//! Runs the request-reply binary: typed replies in the demo, and a valid document.

use std::process::Command;

use serde_json::Value;

const BIN: &str = env!("CARGO_BIN_EXE_request-reply");
const SCHEMA: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../tests/data/asyncapi-schemas/3.0.0.json"
);

#[test]
fn demo_gets_typed_replies() {
    let out = Command::new(BIN).output().unwrap();
    let stdout = String::from_utf8(out.stdout).unwrap();
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for line in [
        "client: 100 Eur = 108.00 Usd (rate 1.080000)",
        "client: 3200 Jpy = 20.00 Eur (rate 0.006250)",
        "client: -5 Gbp -> Usd refused: amount must be positive, got -5",
    ] {
        assert!(stdout.contains(line), "missing `{line}` in:\n{stdout}");
    }
    let served = stdout
        .lines()
        .filter(|l| l.starts_with("service: request "))
        .count();
    assert_eq!(served, 3, "{stdout}");
    assert!(
        !stdout.contains("service: request - "),
        "every request carries a correlation id:\n{stdout}"
    );
}

#[test]
fn asyncapi_gen_is_valid() {
    let out = Command::new(BIN)
        .args(["asyncapi", "gen", "--format", "json"])
        .output()
        .unwrap();
    assert!(out.status.success());
    let doc: Value = serde_json::from_slice(&out.stdout).unwrap();
    let schema: Value = serde_json::from_str(&std::fs::read_to_string(SCHEMA).unwrap()).unwrap();
    let validator = jsonschema::validator_for(&schema).unwrap();
    let errors: Vec<String> = validator.iter_errors(&doc).map(|e| e.to_string()).collect();
    assert!(errors.is_empty(), "{errors:?}\n{doc:#}");
    assert_eq!(
        doc["operations"]["convert"]["reply"]["channel"]["$ref"],
        "#/channels/convertReply"
    );
}
