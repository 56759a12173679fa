//! The other direction of spec-first: a FastStream app (`python/pricing_app.py`, written the
//! FastStream way) exports its own AsyncAPI document; `build.rs` generates a Rust client from it
//! (`data/pricing-<broker>.asyncapi.json`); the client talks to the running app with no
//! hand-written binding code.
//!
//! FastStream 0.7.8 documents neither a handler's return value (no `reply`) nor the parameters
//! of `{param}` addresses, so the app uses fixed addresses and the generated client sends and
//! subscribes (events both ways); request/reply is covered by the other tests.

use std::process::Command;
use std::time::Duration;

use futures_util::StreamExt;
use ruststream::{Broker, IncomingMessage, SubscribeOptions};
use ruststream_interop::spec::{pricing_nats, pricing_redis};
use ruststream_interop::{Peer, python_dir, require_peer};
use serde_json::{Value, json};

const WAIT: Duration = Duration::from_secs(15);

/// The document the app exports now, as JSON.
fn export(python: &std::path::Path, broker: &str) -> Value {
    let out = Command::new(python)
        .arg(python_dir().join("pricing_app.py"))
        .args(["--broker", broker, "--export"])
        .current_dir(python_dir())
        .env("PYTHONDONTWRITEBYTECODE", "1")
        .output()
        .expect("the app runs");
    assert!(
        out.status.success(),
        "export failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("the export is JSON")
}

#[test]
fn the_committed_documents_are_what_faststream_exports() {
    let Some(python) = require_peer(&[]) else {
        return;
    };
    for broker in ["nats", "redis"] {
        let path = format!(
            "{}/data/pricing-{broker}.asyncapi.json",
            env!("CARGO_MANIFEST_DIR")
        );
        let committed: Value =
            serde_json::from_str(&std::fs::read_to_string(&path).expect("committed")).unwrap();
        assert_eq!(
            export(&python, broker),
            committed,
            "{path} is stale: regenerate it with \
             `python pricing_app.py --broker {broker} --export` (in tests/interop/python)"
        );
    }
}

/// Restock through the generated client; the app reports it and announces `restocked`, which
/// the generated subscription decodes; then a price request arrives typed at the app.
macro_rules! talk {
    ($spec:ident, $conn:expr, $peer:expr) => {{
        let client = $spec::Client::new($conn);
        let mut restocked = client
            .subscribe_restocked(SubscribeOptions::new())
            .await
            .expect("subscribed");
        client
            .restock(&$spec::Restock {
                item: "bolt".to_owned(),
                qty: 12,
            })
            .await
            .expect("restock sent");
        let seen = $peer
            .wait_for("the restock", WAIT, |e| e["channel"] == "restock")
            .await;
        assert_eq!(seen["body"], json!({"item": "bolt", "qty": 12}), "{seen}");
        assert_eq!(seen["content_type"], "application/json", "{seen}");
        let announced = match tokio::time::timeout(WAIT, restocked.next()).await {
            Ok(Some(Ok(m))) => m,
            other => panic!("no restocked event: {:?}", other.map(|o| o.map(|r| r.err()))),
        };
        assert_eq!(
            (announced.value.item.as_str(), announced.value.qty),
            ("bolt", 12)
        );
        assert_eq!(
            announced.message.correlation_id(),
            seen["correlation_id"].as_str(),
            "the app carried the restock's correlation id over"
        );
        client
            .price(&$spec::PriceRequest {
                item: "nut".to_owned(),
                qty: 2,
            })
            .await
            .expect("price request sent");
        let seen = $peer
            .wait_for("the price request", WAIT, |e| e["channel"] == "price")
            .await;
        assert_eq!(seen["body"], json!({"item": "nut", "qty": 2}), "{seen}");
        // The generated client validates against the exported schema (`qty >= 1`).
        let refused = client
            .price(&$spec::PriceRequest {
                item: "nut".to_owned(),
                qty: 0,
            })
            .await;
        assert!(refused.is_err(), "qty 0 violates the exported minimum");
    }};
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_generated_from_the_faststream_nats_document_talks_to_the_app() {
    let Some(python) = require_peer(&[("nats", "127.0.0.1:4222")]) else {
        return;
    };
    let mut peer = Peer::start(&python, "pricing_app.py", &["--broker", "nats"]).await;
    let conn =
        ruststream_nats::NatsBroker::new(ruststream_nats::Config::new("nats://127.0.0.1:4222"))
            .connect()
            .await
            .expect("nats");
    talk!(pricing_nats, conn, peer);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_generated_from_the_faststream_redis_document_talks_to_the_app() {
    let Some(python) = require_peer(&[("redis", "127.0.0.1:6379")]) else {
        return;
    };
    let mut peer = Peer::start(&python, "pricing_app.py", &["--broker", "redis"]).await;
    let conn =
        ruststream_redis::RedisPubSub::new(ruststream_redis::Config::new("redis://127.0.0.1:6379"))
            .connect()
            .await
            .expect("redis");
    talk!(pricing_redis, conn, peer);
}
