//! Kafka: the generated RustStream service and a FastStream (aiokafka) app, both ways, on the
//! Kafka-protocol server at 127.0.0.1:9092.
//!
//! FastStream 0.7.8 has no `request` on Kafka; its peer (`python/kafka_peer.py`) requests the
//! Kafka way instead: `reply_to` and `correlation_id` headers and a reply topic of its own,
//! which is what a RustStream reply operation answers.

use ruststream::Broker;
use ruststream_interop::scenario::{faststream_calls_rust, rust_calls_faststream};
use ruststream_interop::{Peer, require_peer, unique};
use ruststream_kafka::{Config, KafkaBroker, KafkaConnection};

const KAFKA: (&str, &str) = ("kafka", "127.0.0.1:9092");

/// A connection, and the run's topics created (aiokafka sees new topics only on its metadata
/// refresh, so the peer must find them when it starts).
async fn connect(run: &str) -> KafkaConnection {
    let conn = KafkaBroker::new(Config::new("127.0.0.1:9092").client_id("interop"))
        .connect()
        .await
        .expect("kafka connects");
    for channel in ["orders", "quotes", "shipments", "replies"] {
        conn.create_topic(&format!("interop.{run}.{channel}"))
            .await
            .expect("topic");
    }
    conn
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn faststream_calls_the_rust_service() {
    let Some(python) = require_peer(&[KAFKA]) else {
        return;
    };
    let run = unique("k");
    let conn = connect(&run).await;
    let mut peer = Peer::start(
        &python,
        "kafka_peer.py",
        &["--run", &run, "--role", "client"],
    )
    .await;
    faststream_calls_rust(conn, &mut peer, &run).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_rust_client_calls_faststream() {
    let Some(python) = require_peer(&[KAFKA]) else {
        return;
    };
    let run = unique("k");
    let conn = connect(&run).await;
    let mut peer = Peer::start(
        &python,
        "kafka_peer.py",
        &["--run", &run, "--role", "service"],
    )
    .await;
    rust_calls_faststream(conn, &mut peer, &run).await;
}

/// Keys and partitions as other Kafka clients see them: a record FastStream (aiokafka)
/// publishes with a key and one the Rust side publishes with the same key land on the same
/// partition of a three-partition topic (both hash keys with murmur2, as the Java client),
/// and each side reads the other's key, headers and JSON value.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keys_land_on_the_partition_other_clients_choose() {
    use futures_util::StreamExt;
    use ruststream::{IncomingMessage, OutgoingMessage, Publisher, SubscribeOptions, Subscriber};

    let Some(python) = require_peer(&[KAFKA]) else {
        return;
    };
    let run = unique("k");
    let topic = format!("interop.{run}.keyed");
    let conn = KafkaBroker::new(Config::new("127.0.0.1:9092").partitions(3))
        .connect()
        .await
        .expect("kafka connects");
    conn.create_topic(&topic).await.expect("topic");
    conn.create_topic(&format!("interop.{run}.replies"))
        .await
        .expect("topic");
    let mut sub = conn
        .subscribe(&topic.parse().expect("address"), SubscribeOptions::new())
        .await
        .expect("subscribe");
    let mut peer = Peer::start(&python, "kafka_peer.py", &["--run", &run, "--role", "keys"]).await;

    peer.call(serde_json::json!({
        "op": "publish", "to": topic, "body": {"from": "faststream"},
        "headers": {"x-origin": "faststream", "x-kafka-key": "customer-7"},
    }))
    .await;
    conn.publish(
        OutgoingMessage::new(topic.clone(), r#"{"from":"rust"}"#)
            .key("customer-7")
            .content_type("application/json")
            .header("x-origin", "rust"),
    )
    .await
    .expect("publish");

    let mut partitions = std::collections::BTreeMap::new();
    for _ in 0..2 {
        let m = tokio::time::timeout(std::time::Duration::from_secs(15), sub.next())
            .await
            .expect("a keyed record")
            .expect("stream open")
            .expect("record");
        assert_eq!(m.key(), Some(b"customer-7".as_slice()));
        let value: serde_json::Value = serde_json::from_slice(m.payload()).expect("JSON value");
        let origin = m.headers().get("x-origin").expect("x-origin").to_owned();
        assert_eq!(value["from"], origin.as_str(), "{value}");
        partitions.insert(origin, m.partition());
        m.ack().await.expect("ack");
    }
    assert_eq!(
        partitions.get("rust"),
        partitions.get("faststream"),
        "one key, one partition: {partitions:?}"
    );
    for origin in ["faststream", "rust"] {
        let seen = peer
            .wait_for("a keyed record", std::time::Duration::from_secs(15), |e| {
                e["channel"] == "keyed" && e["headers"]["x-origin"] == origin
            })
            .await;
        assert_eq!(seen["key"], "customer-7", "{seen}");
        assert_eq!(seen["body"]["from"], origin, "{seen}");
        assert_eq!(
            seen["partition"],
            serde_json::json!(partitions[origin]),
            "{seen}"
        );
    }
}
