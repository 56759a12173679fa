//! Runs the streetlights binary: the demo and `asyncapi gen` (valid, no credentials).

use std::process::Command;

use futures_util::StreamExt;
use serde_json::Value;

const BIN: &str = env!("CARGO_BIN_EXE_streetlights");
const SCHEMA: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../tests/data/asyncapi-schemas/3.0.0.json"
);

#[test]
fn demo_commands_each_light_by_its_measurement() {
    let out = Command::new(BIN).output().unwrap();
    let stdout = String::from_utf8(out.stdout).unwrap();
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert!(out.status.success(), "{stdout}\n{stderr}");
    for line in [
        "service: light 1 measured 42 lm -> turn on",
        "service: light 2 measured 500 lm -> dim to 50%",
        "service: light 3 measured 5000 lm -> turn off",
        "light 1: got command Some(On)",
        "light 2: dimmed to 50%",
        "light 3: got command Some(Off)",
    ] {
        assert!(stdout.contains(line), "missing `{line}` in:\n{stdout}");
    }
}

#[test]
fn asyncapi_gen_is_valid_and_strips_credentials() {
    let out = Command::new(BIN)
        .args(["asyncapi", "gen", "--format", "json"])
        .env(
            "STREETLIGHTS_SERVER_URL",
            "mqtt://lamplighter:s3cr3t@lights.example:1883",
        )
        .output()
        .unwrap();
    let json = String::from_utf8(out.stdout).unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        !json.contains("s3cr3t") && !json.contains("lamplighter"),
        "{json}"
    );
    let doc: Value = serde_json::from_str(&json).unwrap();
    let schema: Value = serde_json::from_str(&std::fs::read_to_string(SCHEMA).unwrap()).unwrap();
    let validator = jsonschema::validator_for(&schema).unwrap();
    let errors: Vec<String> = validator.iter_errors(&doc).map(|e| e.to_string()).collect();
    assert!(errors.is_empty(), "{errors:?}\n{json}");
    assert_eq!(doc["servers"]["production"]["host"], "lights.example:1883");
    assert_eq!(doc["servers"]["production"]["protocol"], "mqtt");
    assert_eq!(
        doc["channels"]["lightingMeasured"]["address"],
        "smartylighting/streetlights/1/0/event/{streetlightId}/lighting/measured"
    );
    for (op, action) in [
        ("receiveLightMeasurement", "receive"),
        ("turnOn", "send"),
        ("turnOff", "send"),
        ("dimLight", "send"),
        ("receiveHeartbeat", "receive"),
    ] {
        assert_eq!(doc["operations"][op]["action"], action, "{op}");
    }

    // Without a configured server the spec's own servers stay.
    let out = Command::new(BIN)
        .args(["asyncapi", "gen", "--format", "json"])
        .env_remove("STREETLIGHTS_SERVER_URL")
        .output()
        .unwrap();
    let doc: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(validator.is_valid(&doc));
    assert_eq!(
        doc["servers"]["production"]["host"],
        "test.mosquitto.org:{port}"
    );
}

#[test]
fn demo_runs_on_mqtt_too() {
    if !ruststream::testing::require_service("Mosquitto", "127.0.0.1:1883") {
        return;
    }
    let out = Command::new(BIN)
        .env("STREETLIGHTS_BROKER", "mqtt")
        .env("STREETLIGHTS_SERVER_URL", "mqtt://127.0.0.1:1883")
        .output()
        .unwrap();
    let stdout = String::from_utf8(out.stdout).unwrap();
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for line in [
        "service: light 1 measured 42 lm -> turn on",
        "light 1: got command Some(On)",
        "light 2: dimmed to 50%",
        "light 3: got command Some(Off)",
    ] {
        assert!(stdout.contains(line), "missing `{line}` in:\n{stdout}");
    }
}

/// On NATS the spec's `/` addresses travel as `.` subjects; a plain NATS client watching
/// `smartylighting.streetlights.1.0.action.*.turn.on` sees the service's command.
#[tokio::test]
async fn demo_runs_on_nats_too() {
    if !ruststream::testing::require_service("nats", "127.0.0.1:4222") {
        return;
    }
    let plain = async_nats::connect("nats://127.0.0.1:4222").await.unwrap();
    let mut turned_on = plain
        .subscribe("smartylighting.streetlights.1.0.action.*.turn.on")
        .await
        .unwrap();
    plain.flush().await.unwrap();
    let out = tokio::task::spawn_blocking(|| {
        Command::new(BIN)
            .env("STREETLIGHTS_BROKER", "nats")
            .env("STREETLIGHTS_SERVER_URL", "nats://127.0.0.1:4222")
            .output()
    })
    .await
    .unwrap()
    .unwrap();
    let stdout = String::from_utf8(out.stdout).unwrap();
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for line in [
        "service: light 1 measured 42 lm -> turn on",
        "service: light 2 measured 500 lm -> dim to 50%",
        "service: light 3 measured 5000 lm -> turn off",
        "light 1: got command Some(On)",
        "light 2: dimmed to 50%",
        "light 3: got command Some(Off)",
    ] {
        assert!(stdout.contains(line), "missing `{line}` in:\n{stdout}");
    }
    let seen = tokio::time::timeout(std::time::Duration::from_secs(5), turned_on.next())
        .await
        .expect("the plain client saw the command")
        .unwrap();
    assert_eq!(
        seen.subject.as_str(),
        "smartylighting.streetlights.1.0.action.1.turn.on"
    );
    let body: Value = serde_json::from_slice(&seen.payload).unwrap();
    assert_eq!(body["command"], "on");
}

#[test]
fn a_bad_nats_url_is_a_usage_error() {
    let out = Command::new(BIN)
        .env("STREETLIGHTS_BROKER", "nats")
        .env("STREETLIGHTS_SERVER_URL", "mqtt://127.0.0.1:1883")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("nats://"));
}

#[test]
fn asyncapi_gen_on_nats_names_the_nats_server_without_credentials() {
    let out = Command::new(BIN)
        .args(["asyncapi", "gen", "--format", "json"])
        .env("STREETLIGHTS_BROKER", "nats")
        .env(
            "STREETLIGHTS_SERVER_URL",
            "nats://lamplighter:s3cr3t@lights.example:4222",
        )
        .output()
        .unwrap();
    let json = String::from_utf8(out.stdout).unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        !json.contains("s3cr3t") && !json.contains("lamplighter"),
        "{json}"
    );
    let doc: Value = serde_json::from_str(&json).unwrap();
    assert_eq!(doc["servers"]["production"]["host"], "lights.example:4222");
    assert_eq!(doc["servers"]["production"]["protocol"], "nats");
    // The document keeps the spec's `/` addresses; only the wire uses `.`.
    assert_eq!(
        doc["channels"]["lightingMeasured"]["address"],
        "smartylighting/streetlights/1/0/event/{streetlightId}/lighting/measured"
    );
}

#[test]
fn an_unknown_broker_is_a_usage_error() {
    let out = Command::new(BIN)
        .env("STREETLIGHTS_BROKER", "carrier-pigeon")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("unknown STREETLIGHTS_BROKER"));
}
