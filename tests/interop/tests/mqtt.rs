//! MQTT 5 (Mosquitto): the generated RustStream service and a FastStream app, both ways
//! (content type, correlation data, response topic and user properties carry the metadata).

use ruststream::Broker;
use ruststream_interop::scenario::{faststream_calls_rust, rust_calls_faststream};
use ruststream_interop::{Peer, require_peer, unique};
use ruststream_mqtt::{Config, Mqtt, MqttConnection};

const MOSQUITTO: (&str, &str) = ("mosquitto", "127.0.0.1:1883");

async fn connect() -> MqttConnection {
    Mqtt::new(Config::new("127.0.0.1", 1883))
        .connect()
        .await
        .expect("mqtt connects")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn faststream_calls_the_rust_service() {
    let Some(python) = require_peer(&[MOSQUITTO]) else {
        return;
    };
    let run = unique("m");
    let conn = connect().await;
    let mut peer = Peer::start(
        &python,
        "mqtt_peer.py",
        &["--run", &run, "--role", "client"],
    )
    .await;
    faststream_calls_rust(conn, &mut peer, &run).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_rust_client_calls_faststream() {
    let Some(python) = require_peer(&[MOSQUITTO]) else {
        return;
    };
    let run = unique("m");
    let conn = connect().await;
    let mut peer = Peer::start(
        &python,
        "mqtt_peer.py",
        &["--run", &run, "--role", "service"],
    )
    .await;
    rust_calls_faststream(conn, &mut peer, &run).await;
}
