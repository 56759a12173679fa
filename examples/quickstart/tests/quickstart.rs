//! Runs the quickstart binary: the demo, `asyncapi gen`, and `run` with health + SIGTERM.

use std::io::Read;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

const BIN: &str = env!("CARGO_BIN_EXE_quickstart");
const SCHEMA: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../tests/data/asyncapi-schemas/3.0.0.json"
);

fn output(args: &[&str]) -> (bool, String, String) {
    let out = Command::new(BIN)
        .args(args)
        .env("RUST_LOG", "warn")
        .output()
        .unwrap();
    (
        out.status.success(),
        String::from_utf8(out.stdout).unwrap(),
        String::from_utf8(out.stderr).unwrap(),
    )
}

#[test]
fn no_arguments_runs_the_demo_and_exits_0() {
    let (ok, stdout, stderr) = output(&[]);
    assert!(ok, "stdout:\n{stdout}\nstderr:\n{stderr}");
    for line in [
        "client: asking the service to greet Ada (En)",
        "handler: greeting Ada in En",
        "handler: greeting Amelie in Fr",
        "handler: greeting Grete in De",
        "client: got \"Hello, Ada!\" for Ada",
        "client: got \"Bonjour, Amelie !\" for Amelie",
        "client: got \"Hallo, Grete!\" for Grete",
        "done: 3 greetings",
    ] {
        assert!(stdout.contains(line), "missing `{line}` in:\n{stdout}");
    }
}

#[test]
fn asyncapi_gen_prints_a_valid_document() {
    let (ok, json, stderr) = output(&["asyncapi", "gen", "--format", "json"]);
    assert!(ok, "{stderr}");
    let doc: Value = serde_json::from_str(&json).unwrap();
    let schema: Value = serde_json::from_str(&std::fs::read_to_string(SCHEMA).unwrap()).unwrap();
    let validator = jsonschema::validator_for(&schema).unwrap();
    let errors: Vec<String> = validator.iter_errors(&doc).map(|e| e.to_string()).collect();
    assert!(errors.is_empty(), "{errors:?}\n{json}");
    assert_eq!(doc["info"]["title"], "Quickstart");
    assert_eq!(doc["operations"]["onGreet"]["action"], "receive");
    assert_eq!(doc["operations"]["sendGreeting"]["action"], "send");
    assert_eq!(doc["channels"]["greetRequests"]["address"], "greet/{name}");

    let (ok, yaml, stderr) = output(&["asyncapi", "gen"]);
    assert!(ok, "{stderr}");
    assert!(yaml.contains("asyncapi: 3.0.0"), "{yaml}");
    assert!(yaml.contains("address: greet/{name}"), "{yaml}");
}

fn http_get(addr: SocketAddr, path: &str) -> Option<String> {
    use std::io::Write;
    let mut stream = TcpStream::connect_timeout(&addr, Duration::from_millis(200)).ok()?;
    stream
        .write_all(format!("GET {path} HTTP/1.1\r\nHost: t\r\n\r\n").as_bytes())
        .ok()?;
    let mut response = String::new();
    stream.read_to_string(&mut response).ok()?;
    Some(response)
}

#[test]
fn run_serves_health_and_stops_gracefully_on_sigterm() {
    let addr = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let mut child = Command::new(BIN)
        .args(["run", "--metrics-addr", &addr.to_string()])
        .env("RUST_LOG", "info")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if let Some(r) = http_get(addr, "/health")
            && r.starts_with("HTTP/1.1 200")
        {
            break;
        }
        assert!(Instant::now() < deadline, "never became ready");
        std::thread::sleep(Duration::from_millis(50));
    }
    let metrics = http_get(addr, "/metrics").unwrap();
    assert!(
        metrics.contains(r#"ruststream_messages_received_total{app="quickstart",broker="memory",operation="onGreet"} 0"#),
        "{metrics}"
    );
    let killed = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    let status = child.wait().unwrap();
    let mut stderr = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut stderr)
        .unwrap();
    assert!(status.success(), "{status:?}\n{stderr}");
    assert!(stderr.contains("SIGTERM received"), "{stderr}");
    assert!(stderr.contains("stopped"), "{stderr}");
}

#[test]
fn run_exits_1_when_it_cannot_start() {
    let taken = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap();
    let out = Command::new(BIN)
        .args(["run", "--metrics-addr", &addr.to_string()])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("cannot bind the metrics address"),
        "{stderr}"
    );
}

#[test]
fn a_usage_error_exits_2() {
    let out = Command::new(BIN)
        .args(["asyncapi", "gen", "--format", "xml"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
}
