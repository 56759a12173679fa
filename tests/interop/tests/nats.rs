//! NATS (core): the generated RustStream service and a FastStream app, both ways.

use ruststream::Broker;
use ruststream_interop::scenario::{faststream_calls_rust, rust_calls_faststream};
use ruststream_interop::{Peer, require_peer, unique};
use ruststream_nats::{Config, NatsBroker};

const NATS: (&str, &str) = ("nats", "127.0.0.1:4222");

async fn connect() -> ruststream_nats::NatsConnection {
    NatsBroker::new(Config::new("nats://127.0.0.1:4222"))
        .connect()
        .await
        .expect("nats connects")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn faststream_calls_the_rust_service() {
    let Some(python) = require_peer(&[NATS]) else {
        return;
    };
    let run = unique("n");
    let mut peer = Peer::start(
        &python,
        "nats_peer.py",
        &["--run", &run, "--role", "client"],
    )
    .await;
    faststream_calls_rust(connect().await, &mut peer, &run).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_rust_client_calls_faststream() {
    let Some(python) = require_peer(&[NATS]) else {
        return;
    };
    let run = unique("n");
    let mut peer = Peer::start(
        &python,
        "nats_peer.py",
        &["--run", &run, "--role", "service"],
    )
    .await;
    rust_calls_faststream(connect().await, &mut peer, &run).await;
}
