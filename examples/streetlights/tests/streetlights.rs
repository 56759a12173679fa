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
            "RUSTSTREAM_BROKER_URL",
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
        .env_remove("RUSTSTREAM_BROKER_URL")
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
        .args(["--broker-url", "mqtt://127.0.0.1:1883"])
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
            .env("RUSTSTREAM_BROKER_URL", "nats://127.0.0.1:4222")
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

/// On Kafka the same: the spec's `/` addresses are the `.` topics of the official
/// streetlights-kafka document, created on first use.
#[test]
fn demo_runs_on_kafka_too() {
    if !ruststream::testing::require_service("kafka", "127.0.0.1:9092") {
        return;
    }
    let out = Command::new(BIN)
        .env("RUSTSTREAM_BROKER_URL", "kafka://127.0.0.1:9092")
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
        "service: light 2 measured 500 lm -> dim to 50%",
        "light 1: got command Some(On)",
        "light 2: dimmed to 50%",
        "light 3: got command Some(Off)",
    ] {
        assert!(stdout.contains(line), "missing `{line}` in:\n{stdout}");
    }
}

/// Kills the child on drop (a failing test must not leave the service running).
struct KillOnDrop(Option<std::process::Child>);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        if let Some(child) = self.0.as_mut() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// `run` on NATS serves plain NATS clients: a measurement published on
/// `smartylighting.streetlights.1.0.event.<id>.lighting.measured` is answered on
/// `smartylighting.streetlights.1.0.action.<id>.turn.on`, and SIGTERM drains and exits 0.
#[tokio::test]
async fn run_on_nats_serves_plain_nats_clients() {
    if !ruststream::testing::require_service("nats", "127.0.0.1:4222") {
        return;
    }
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or_default();
    let id = format!("run{nanos}");
    let plain = async_nats::connect("nats://127.0.0.1:4222").await.unwrap();
    let mut turned_on = plain
        .subscribe(format!(
            "smartylighting.streetlights.1.0.action.{id}.turn.on"
        ))
        .await
        .unwrap();
    plain.flush().await.unwrap();
    let mut service = KillOnDrop(Some(
        Command::new(BIN)
            .arg("run")
            .env("RUSTSTREAM_BROKER_URL", "nats://127.0.0.1:4222")
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap(),
    ));
    // Core NATS is at most once: repeat the measurement until the service has subscribed.
    let measured = format!("smartylighting.streetlights.1.0.event.{id}.lighting.measured");
    let mut headers = async_nats::HeaderMap::new();
    headers.insert("Content-Type", "application/json");
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(15);
    let command = loop {
        assert!(
            tokio::time::Instant::now() < deadline,
            "no command from the service within 15 s"
        );
        plain
            .publish_with_headers(
                measured.clone(),
                headers.clone(),
                r#"{"lumens": 7, "sentAt": "2026-01-01T18:00:00Z"}"#.into(),
            )
            .await
            .unwrap();
        plain.flush().await.unwrap();
        if let Ok(Some(m)) =
            tokio::time::timeout(std::time::Duration::from_millis(300), turned_on.next()).await
        {
            break m;
        }
    };
    let body: Value = serde_json::from_slice(&command.payload).unwrap();
    assert_eq!(body["command"], "on");
    assert_eq!(body["sentAt"], "2026-01-01T18:00:00Z");

    // The service drains and exits 0 on SIGTERM.
    let child = service.0.take().unwrap();
    let status = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let out = tokio::task::spawn_blocking(move || child.wait_with_output())
        .await
        .unwrap()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.contains(&format!("service: light {id} measured 7 lm -> turn on")),
        "{stdout}"
    );
}

#[test]
fn a_bad_url_or_server_names_the_bad_part() {
    let out = Command::new(BIN)
        .args(["--broker-url", "nats://127.0.0.1:notaport"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("port `notaport`"));
    let out = Command::new(BIN)
        .args(["--server", "staging"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("lists: production"));
}

#[test]
fn the_spec_server_is_chosen_by_name() {
    // `--server production` renders the spec's `test.mosquitto.org:{port}` with a variable
    // value; `asyncapi gen` does not connect.
    let out = Command::new(BIN)
        .args(["asyncapi", "gen", "--format", "json"])
        .args(["--server", "production", "--server-var", "port=8883"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let doc: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        doc["servers"]["production"]["host"],
        "test.mosquitto.org:8883"
    );
}

#[test]
fn asyncapi_gen_on_nats_names_the_nats_server_without_credentials() {
    let out = Command::new(BIN)
        .args(["asyncapi", "gen", "--format", "json"])
        .env(
            "RUSTSTREAM_BROKER_URL",
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
        .args(["--broker-url", "carrier-pigeon://coop"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("no broker for `carrier-pigeon`"));
}
