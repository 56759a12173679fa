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
