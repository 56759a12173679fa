//! RabbitMQ: the generated RustStream service and a FastStream app, both ways (events and
//! request/reply, headers and correlation ids), and the other direction of spec-first: the
//! AsyncAPI document FastStream exports for its own app (`specs/faststream-rabbit.json`, from
//! `python/rabbit_app.py`) → `ruststream-build` → a Rust client that talks to that app with no
//! hand-written binding code (exchange, queues and addresses all come from the document).

use std::time::Duration;

use futures_util::StreamExt;
use ruststream::capability::RequestReply;
use ruststream::{Broker, Connection, IncomingMessage, OutgoingMessage, SubscribeOptions};
use ruststream_amqp::{AmqpBroker, AmqpConnection, Config};
use ruststream_interop::scenario::{DELIVERY, faststream_calls_rust, rust_calls_faststream};
use ruststream_interop::{Peer, python_dir, require_peer, unique};
use serde_json::{Value, json};

/// Generated from FastStream's own document by `build.rs`.
#[allow(dead_code)]
mod faststream_rabbit {
    ruststream::include_spec!("faststream_rabbit");
}
use faststream_rabbit as fs;

const RABBIT: (&str, &str) = ("rabbitmq", "127.0.0.1:5672");

/// The topic exchange both stacks use for `specs/interop.yaml` (`rabbit_peer.py --exchange`).
const EXCHANGE: &str = "rsinterop";

async fn connect() -> AmqpConnection {
    let url = format!("amqp://guest:guest@127.0.0.1:5672/%2f?exchange={EXCHANGE}");
    AmqpBroker::new(Config::from_url(&url).expect("URL"))
        .connect()
        .await
        .expect("rabbitmq connects")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn faststream_calls_the_rust_service() {
    let Some(python) = require_peer(&[RABBIT]) else {
        return;
    };
    let run = unique("r");
    let mut peer = Peer::start(
        &python,
        "rabbit_peer.py",
        &["--run", &run, "--role", "client", "--exchange", EXCHANGE],
    )
    .await;
    faststream_calls_rust(connect().await, &mut peer, &run).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_rust_client_calls_faststream() {
    let Some(python) = require_peer(&[RABBIT]) else {
        return;
    };
    let run = unique("r");
    let mut peer = Peer::start(
        &python,
        "rabbit_peer.py",
        &["--run", &run, "--role", "service", "--exchange", EXCHANGE],
    )
    .await;
    rust_calls_faststream(connect().await, &mut peer, &run).await;
}

/// The address of operation `op` in the generated `ADDRESSES`.
fn address_of(op: &str) -> &'static str {
    fs::ADDRESSES
        .iter()
        .find(|(id, _)| *id == op)
        .map(|(_, a)| *a)
        .unwrap_or_else(|| panic!("no operation {op} in {:?}", fs::ADDRESSES))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_generated_from_faststreams_document_talks_to_its_app() {
    let Some(python) = require_peer(&[RABBIT]) else {
        return;
    };
    // The committed document is what this FastStream exports for the app.
    let export = std::process::Command::new(&python)
        .arg(python_dir().join("rabbit_app.py"))
        .arg("--export")
        .current_dir(python_dir())
        .output()
        .expect("rabbit_app.py --export runs");
    assert!(
        export.status.success(),
        "{}",
        String::from_utf8_lossy(&export.stderr)
    );
    let exported: Value = serde_json::from_slice(&export.stdout).expect("exported JSON");
    let committed: Value = serde_json::from_str(include_str!("../specs/faststream-rabbit.json"))
        .expect("committed JSON");
    assert_eq!(
        exported, committed,
        "specs/faststream-rabbit.json is stale: rerun python/rabbit_app.py --export"
    );

    let mut app = Peer::start(&python, "rabbit_app.py", &[]).await;

    // Everything from the document: the server's URL, and each operation's queue or
    // (default) exchange from its bindings.
    let url = fs::SERVERS[0].url(&[]).expect("server URL");
    assert_eq!(url, "amqp://127.0.0.1:5672");
    let config = Config::from_url(&url)
        .expect("URL")
        .with_spec_bindings(fs::BINDINGS, fs::ADDRESSES)
        .expect("bindings apply");
    assert!(
        config.binding_warnings().is_empty(),
        "{:?}",
        config.binding_warnings()
    );
    let conn = AmqpBroker::new(config).connect().await.expect("connects");
    let client = fs::Client::new(conn.clone());

    // Rust → FastStream event; FastStream's handler answers with a shipment it publishes on
    // the default exchange, which the generated subscription consumes.
    let mut shipments = client
        .subscribe_rsinterop_shipments_publisher(SubscribeOptions::new())
        .await
        .expect("subscribes to the shipments queue");
    let id = i64::from(std::process::id() % 100_000);
    client
        .rsinterop_orders_on_order_subscribe(&fs::Order {
            id,
            item: "cog".to_owned(),
            qty: 5,
        })
        .await
        .expect("order published");
    let order = app
        .wait_for("the order", DELIVERY, |e| {
            e["event"] == "received" && e["channel"] == "orders" && e["body"]["id"] == id
        })
        .await;
    assert_eq!(
        order["body"],
        json!({"id": id, "item": "cog", "qty": 5}),
        "{order}"
    );
    assert_eq!(order["content_type"], "application/json", "{order}");
    let shipment = loop {
        let next = tokio::time::timeout(DELIVERY, shipments.next())
            .await
            .expect("a shipment within the delivery time")
            .expect("subscription open")
            .expect("shipment decodes");
        let (shipment, message) = next.into_parts();
        message.ack().await.expect("ack");
        // A shipment left from an earlier run of this test is skipped.
        if shipment.order_id == id {
            break shipment;
        }
    };
    assert_eq!(shipment.carrier, "faststream");

    // Rust request → FastStream handler that returns a value: the generated payload type on
    // the operation's address; the reply comes back over direct reply-to.
    let request = fs::QuoteRequest {
        item: "cog".to_owned(),
        qty: 4,
    };
    let message = OutgoingMessage::new(
        address_of("rsinterop.quotes:_:OnQuoteSubscribe"),
        serde_json::to_vec(&request).expect("encodes"),
    )
    .content_type("application/json")
    .correlation_id("fs-quote-1")
    .header("x-tenant", "initech");
    let reply = conn
        .request(message, Duration::from_secs(10))
        .await
        .expect("FastStream answers");
    let body: Value = serde_json::from_slice(&reply.payload).expect("JSON reply");
    assert_eq!(
        body,
        json!({"item": "cog", "total": 10.0, "currency": "EUR"})
    );
    assert_eq!(reply.correlation_id.as_deref(), Some("fs-quote-1"));
    let seen = app
        .wait_for("the quote request", DELIVERY, |e| {
            e["event"] == "received" && e["channel"] == "quotes"
        })
        .await;
    assert_eq!(seen["correlation_id"], "fs-quote-1", "{seen}");
    assert_eq!(seen["headers"]["x-tenant"], "initech", "{seen}");
    conn.shutdown().await.expect("shuts down");
}
