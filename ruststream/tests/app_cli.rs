//! The app CLI: `asyncapi gen` (valid AsyncAPI 3.0.0, no credentials) and graceful `run`.
#![cfg(feature = "app")]

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use clap::Parser;
use ruststream::app::{App, Cli, Format, RouteDoc, ServerDoc, execute};
use ruststream::memory::MemoryBroker;
use ruststream::router::{HandlerError, Route};
use ruststream::{Headers, client};
use serde_json::{Value, json};

const SCHEMA: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../tests/data/asyncapi-schemas/3.0.0.json"
);

fn assert_valid_asyncapi(doc: &Value) {
    let schema: Value = serde_json::from_str(&std::fs::read_to_string(SCHEMA).unwrap()).unwrap();
    let validator = jsonschema::validator_for(&schema).unwrap();
    let errors: Vec<String> = validator
        .iter_errors(doc)
        .map(|e| format!("{} at {}", e, e.instance_path))
        .collect();
    assert!(
        errors.is_empty(),
        "invalid AsyncAPI 3.0.0:\n{}\n{doc:#}",
        errors.join("\n")
    );
}

const EMBEDDED: &str = r##"{
  "asyncapi": "3.0.0",
  "info": {"title": "Lights", "version": "1.2.3", "description": "Spec from the generated code."},
  "servers": {"spec-server": {"host": "example.org", "protocol": "mqtt"}},
  "channels": {
    "measured": {
      "address": "light/{id}/measured",
      "servers": [{"$ref": "#/servers/spec-server"}],
      "parameters": {"id": {"description": "Light id."}},
      "messages": {"lightMeasured": {"payload": {"type": "object", "properties": {"lumens": {"type": "integer"}}}}}
    }
  },
  "operations": {
    "onLightMeasured": {
      "action": "receive",
      "channel": {"$ref": "#/channels/measured"},
      "messages": [{"$ref": "#/channels/measured/messages/lightMeasured"}]
    }
  }
}"##;

fn build() -> App<MemoryBroker> {
    App::new(MemoryBroker::default())
        .name("lights")
        .spec(EMBEDDED)
        .server(
            ServerDoc::new(
                "production",
                "mqtt://admin:hunter2@broker.internal:1883/?token=tok3n",
            )
            .description("Production broker"),
        )
        .server(ServerDoc::new("local", "nats://127.0.0.1:4222"))
        .route(
            Route::new("audit/{kind}").unwrap().name("onAudit"),
            |_: Value, _ctx| async { Ok::<_, HandlerError>(()) },
        )
        .document_route(
            RouteDoc::send("publishAlert", "alerts/{level}")
                .payload(json!({"type": "string"}))
                .description("Alerts the service raises."),
        )
}

fn gen_to_file(format: &str) -> String {
    let dir = std::env::temp_dir().join(format!("ruststream-app-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let out = dir.join(format!("asyncapi.{format}"));
    let cli = Cli::try_parse_from([
        "lights",
        "asyncapi",
        "gen",
        "--format",
        format,
        "--out",
        out.to_str().unwrap(),
    ])
    .unwrap();
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(execute(cli, || async { build() }))
        .unwrap();
    std::fs::read_to_string(out).unwrap()
}

#[test]
fn asyncapi_gen_json_is_valid_and_has_no_credentials() {
    let text = gen_to_file("json");
    for secret in ["admin", "hunter2", "tok3n", "token"] {
        assert!(!text.contains(secret), "`{secret}` leaked:\n{text}");
    }
    let doc: Value = serde_json::from_str(&text).unwrap();
    assert_valid_asyncapi(&doc);
    assert_eq!(doc["asyncapi"], "3.0.0");
    assert_eq!(doc["info"]["title"], "Lights");
    assert_eq!(doc["servers"]["production"]["host"], "broker.internal:1883");
    assert_eq!(doc["servers"]["production"]["protocol"], "mqtt");
    assert_eq!(doc["servers"]["local"]["protocol"], "nats");
    assert!(
        doc["servers"].get("spec-server").is_none(),
        "configured servers replace the spec's"
    );
    assert_eq!(
        doc["channels"]["measured"]["address"],
        "light/{id}/measured"
    );
    assert_eq!(doc["operations"]["onAudit"]["action"], "receive");
    assert_eq!(doc["channels"]["onAudit"]["address"], "audit/{kind}");
    assert_eq!(doc["operations"]["publishAlert"]["action"], "send");
}

#[test]
fn asyncapi_gen_yaml_is_the_same_document() {
    let yaml = gen_to_file("yaml");
    assert!(!yaml.contains("hunter2"));
    let doc: Value = serde_norway::from_str(&yaml).unwrap();
    assert_valid_asyncapi(&doc);
    assert_eq!(doc, build().document());
    assert_eq!(
        build().render_document(Format::Json).unwrap(),
        gen_to_file("json")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn run_drains_in_flight_messages_before_exiting() {
    let done = Arc::new(AtomicU32::new(0));
    let counted = Arc::clone(&done);
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let (started_tx, started) = tokio::sync::mpsc::channel::<()>(8);
    let app = App::new(MemoryBroker::default())
        .shutdown_timeout(Duration::from_secs(5))
        .route(
            Route::new("slow").unwrap().concurrency(4),
            move |_: u32, _ctx| {
                let counted = Arc::clone(&counted);
                let started_tx = started_tx.clone();
                async move {
                    let _ = started_tx.send(()).await;
                    tokio::time::sleep(Duration::from_millis(300)).await;
                    counted.fetch_add(1, Ordering::SeqCst);
                    Ok::<_, HandlerError>(())
                }
            },
        );
    let running = app.start().await.unwrap();
    let conn = running.connection();
    let mut started = started;
    let serving = tokio::spawn(async move {
        let _ = stopped.await;
        running.shutdown().await
    });
    for i in 0..3u32 {
        client::publish(&conn, "slow".into(), "application/json", &i, Headers::new())
            .await
            .unwrap();
    }
    for _ in 0..3 {
        started.recv().await.unwrap();
    }
    stop.send(()).unwrap();
    let report = serving.await.unwrap().unwrap();
    assert_eq!(
        done.load(Ordering::SeqCst),
        3,
        "every in-flight handler finished"
    );
    assert_eq!(report.drained, 3);
    assert_eq!(report.aborted, 0);
}

#[test]
fn the_schema_check_rejects_an_invalid_document() {
    let schema: Value = serde_json::from_str(&std::fs::read_to_string(SCHEMA).unwrap()).unwrap();
    let validator = jsonschema::validator_for(&schema).unwrap();
    let mut doc = build().document();
    assert!(validator.is_valid(&doc));
    doc["operations"]["onAudit"]["action"] = json!("publish");
    assert!(!validator.is_valid(&doc));
}

#[tokio::test]
async fn a_failing_start_hook_fails_the_start_and_closes_the_connection() {
    let (tx, rx) = tokio::sync::oneshot::channel();
    let result = App::new(MemoryBroker::default())
        .on_connect(
            move |conn: ruststream::memory::MemoryConnection| async move {
                let _ = tx.send(conn);
                Err(ruststream::Error::Config("no topology".into()))
            },
        )
        .start()
        .await;
    assert!(matches!(result, Err(ruststream::Error::Config(m)) if m == "no topology"));
    let conn = rx.await.unwrap();
    assert!(conn.is_closed(), "the connection is shut down");
}

/// `execute_with_servers`: the builder receives the server the command line chose, rendered
/// from the document's `SERVERS`, and an unknown server fails before anything is built.
#[tokio::test]
async fn the_builder_gets_the_chosen_server() {
    use ruststream::app::{ChosenServer, execute_with_servers};
    use ruststream::broker::url::ServerSpec;
    const SERVERS: &[ServerSpec] = &[ServerSpec::new(
        "production",
        "mqtt",
        "lights.example:{port}",
        "",
        &[("port", "1883")],
    )];
    let dir = std::env::temp_dir().join(format!("rs-servers-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let out = dir.join("doc.json");
    let out_arg = out.display().to_string();
    let args = [
        "svc",
        "asyncapi",
        "gen",
        "--format",
        "json",
        "--out",
        &out_arg,
        "--server",
        "production",
        "--server-var",
        "port=8883",
    ];
    let seen = Arc::new(std::sync::Mutex::new(None));
    let keep = seen.clone();
    execute_with_servers(
        Cli::try_parse_from(args).unwrap(),
        SERVERS,
        |server| async move {
            *keep.lock().unwrap() = server.clone();
            let server: ChosenServer = server.expect("a server was chosen");
            App::new(MemoryBroker::default())
                .name("lights")
                .server(ServerDoc::new(server.name.unwrap_or_default(), server.url))
        },
    )
    .await
    .unwrap();
    let chosen = seen.lock().unwrap().clone().unwrap();
    assert_eq!(chosen.url, "mqtt://lights.example:8883");
    let doc: Value = serde_json::from_str(&std::fs::read_to_string(&out).unwrap()).unwrap();
    assert_eq!(doc["servers"]["production"]["host"], "lights.example:8883");

    let unknown = Cli::try_parse_from(["svc", "--server", "staging"]).unwrap();
    let built = Arc::new(AtomicU32::new(0));
    let count = built.clone();
    let err = execute_with_servers(unknown, SERVERS, |_| async move {
        count.fetch_add(1, Ordering::SeqCst);
        App::new(MemoryBroker::default())
    })
    .await
    .unwrap_err();
    assert!(err.to_string().contains("lists: production"), "{err}");
    assert_eq!(built.load(Ordering::SeqCst), 0);
    let _ = std::fs::remove_dir_all(dir);
}
