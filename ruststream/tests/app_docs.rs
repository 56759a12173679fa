//! The documentation page: `run` with a metrics address answers `/docs`, `/asyncapi.json` and
//! `/asyncapi.yaml`; `asyncapi serve` serves the page at `/`. No credentials on any of them.
#![cfg(feature = "app")]

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

use clap::Parser;
use ruststream::app::{App, Cli, ServerDoc, execute};
use ruststream::memory::MemoryBroker;
use ruststream::router::{HandlerError, Route};
use serde_json::Value;

const EMBEDDED: &str = r##"{
  "asyncapi": "3.0.0",
  "info": {"title": "Lights", "version": "1.2.3", "description": "Lights **on** <script>alert(1)</script>"},
  "channels": {
    "measured": {
      "address": "light/{id}/measured",
      "parameters": {"id": {"description": "Light id."}},
      "messages": {"lightMeasured": {"payload": {"type": "object", "required": ["lumens"],
        "properties": {"lumens": {"type": "integer", "minimum": 0, "description": "Light intensity."}}}}}
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

fn app() -> App<MemoryBroker> {
    App::new(MemoryBroker::default())
        .spec(EMBEDDED)
        .server(ServerDoc::new(
            "production",
            "mqtt://admin:hunter2@broker.internal:1883/?token=tok3n",
        ))
        .route(
            Route::new("audit/{kind}").unwrap().name("onAudit"),
            |_: Value, _ctx| async { Ok::<_, HandlerError>(()) },
        )
}

/// `GET path` → (status line, body).
fn get(addr: SocketAddr, path: &str) -> (String, String) {
    let mut stream = TcpStream::connect(addr).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    write!(stream, "GET {path} HTTP/1.1\r\nhost: x\r\n\r\n").unwrap();
    let mut text = String::new();
    stream.read_to_string(&mut text).unwrap();
    let (head, body) = text.split_once("\r\n\r\n").unwrap();
    (head.lines().next().unwrap().to_owned(), body.to_owned())
}

fn assert_page(html: &str) {
    for part in [
        "<title>Lights 1.2.3</title>",
        "id=\"op-onLightMeasured\"",
        "id=\"op-onAudit\"",
        "Light intensity.",
        "<strong>on</strong>",
        "&lt;script&gt;alert(1)&lt;/script&gt;",
        "broker.internal:1883",
    ] {
        assert!(html.contains(part), "`{part}` missing");
    }
    assert_eq!(
        html.matches("<script").count(),
        1,
        "only the page's own script"
    );
    assert!(!html.contains("hunter2") && !html.contains("tok3n"));
}

#[tokio::test]
async fn run_with_a_metrics_address_serves_the_page_at_docs() {
    let app = app().metrics_addr("127.0.0.1:0".parse().unwrap());
    assert_eq!(app.app_name(), "Lights");
    let running = app.start().await.unwrap();
    let addr = running.metrics_addr().unwrap();
    let pages = tokio::task::spawn_blocking(move || {
        ["/docs", "/asyncapi.json", "/asyncapi.yaml", "/metrics"].map(|p| get(addr, p))
    })
    .await
    .unwrap();
    for (status, _) in &pages {
        assert!(status.contains("200"), "{status}");
    }
    assert_page(&pages[0].1);
    let doc: Value = serde_json::from_str(&pages[1].1).unwrap();
    assert_eq!(doc["info"]["title"], "Lights");
    assert!(pages[2].1.starts_with("asyncapi: 3.0.0"));
    assert!(!pages[1].1.contains("hunter2") && !pages[2].1.contains("hunter2"));
    running.shutdown().await.unwrap();
}

#[test]
fn asyncapi_serve_serves_the_page() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let addr: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    let cli =
        Cli::try_parse_from(["svc", "asyncapi", "serve", "--addr", &addr.to_string()]).unwrap();
    // Serves until the test process ends.
    std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        runtime.block_on(execute(cli, || async { app() }))
    });
    let mut listening = false;
    for _ in 0..100 {
        if TcpStream::connect(addr).is_ok() {
            listening = true;
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(listening, "asyncapi serve did not listen on {addr}");
    let (status, html) = get(addr, "/");
    assert!(status.contains("200"), "{status}");
    assert_page(&html);
    assert!(get(addr, "/asyncapi.json").0.contains("200"));
    assert!(
        get(addr, "/metrics").0.contains("404"),
        "no metrics without `run`"
    );
}
