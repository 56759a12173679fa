//! Redis Streams and Pub/Sub: the generated RustStream service and a FastStream app, both
//! ways, each side in its default configuration (FastStream's message format is this crate's
//! default).

use std::time::Duration;

use ruststream::Broker;
use ruststream_interop::scenario::{faststream_calls_rust, rust_calls_faststream};
use ruststream_interop::{Peer, require_peer, unique};
use ruststream_redis::{Config, RedisPubSub, RedisStreams, StreamOptions};

const REDIS: (&str, &str) = ("redis", "127.0.0.1:6379");
const URL: &str = "redis://127.0.0.1:6379";

/// The default configuration, with template discovery sped up for the test.
fn config() -> Config {
    Config::new(URL).streams(StreamOptions::new().discover_every(Duration::from_millis(100)))
}

async fn peer(kind: &str, role: &str, run: &str) -> Option<Peer> {
    let python = require_peer(&[REDIS])?;
    Some(
        Peer::start(
            &python,
            "redis_peer.py",
            &["--run", run, "--role", role, "--kind", kind],
        )
        .await,
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn streams_faststream_calls_the_rust_service() {
    let run = unique("rs");
    let Some(mut peer) = peer("stream", "client", &run).await else {
        return;
    };
    let conn = RedisStreams::new(config()).connect().await.expect("redis");
    faststream_calls_rust(conn, &mut peer, &run).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn streams_the_rust_client_calls_faststream() {
    let run = unique("rs");
    let Some(mut peer) = peer("stream", "service", &run).await else {
        return;
    };
    let conn = RedisStreams::new(config()).connect().await.expect("redis");
    rust_calls_faststream(conn, &mut peer, &run).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pubsub_faststream_calls_the_rust_service() {
    let run = unique("rp");
    let Some(mut peer) = peer("channel", "client", &run).await else {
        return;
    };
    let conn = RedisPubSub::new(config()).connect().await.expect("redis");
    faststream_calls_rust(conn, &mut peer, &run).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pubsub_the_rust_client_calls_faststream() {
    let run = unique("rp");
    let Some(mut peer) = peer("channel", "service", &run).await else {
        return;
    };
    let conn = RedisPubSub::new(config()).connect().await.expect("redis");
    rust_calls_faststream(conn, &mut peer, &run).await;
}

/// The byte-level fixtures of `ruststream_redis::faststream`'s unit tests are what FastStream
/// 0.7.8 writes, and FastStream parses what the crate writes
/// (`brokers/redis/tests/data/faststream/make_fixtures.py --check`).
#[test]
fn the_redis_format_fixtures_agree_with_faststream() {
    let Some(python) = require_peer(&[]) else {
        return;
    };
    let script = ruststream_interop::workspace_root()
        .join("brokers/redis/tests/data/faststream/make_fixtures.py");
    let out = std::process::Command::new(&python)
        .arg(&script)
        .arg("--check")
        .env("PYTHONDONTWRITEBYTECODE", "1")
        .output()
        .expect("python runs");
    assert!(
        out.status.success(),
        "{}: {}{}",
        script.display(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}
