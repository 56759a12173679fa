//! Redis Pub/Sub against the real server on 127.0.0.1:6379.

use std::time::Duration;

use futures_util::StreamExt;
use ruststream::conformance::Suite;
use ruststream::{
    Address, Broker, Connection, Error, IncomingMessage, OutgoingMessage, Publisher,
    SubscribeOptions, Subscriber,
};
use ruststream_redis::{Config, RedisPubSub};

const URL: &str = "redis://127.0.0.1:6379";

fn up() -> bool {
    ruststream::testing::require_service("redis", "127.0.0.1:6379")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pubsub_passes_the_conformance_suite() {
    if !up() {
        return;
    }
    let suite = Suite::new(|| RedisPubSub::new(Config::new(URL)).connect())
        .prefix(format!("rspubsub{}", std::process::id()));
    let mut report = suite.run().await;
    report.passed.extend(suite.run_request_reply().await.passed);
    for check in [
        "round_trip",
        "metadata_round_trip",
        "wildcards",
        "ordering",
        "lifecycle",
        "request_reply",
    ] {
        assert!(
            report.passed.contains(&check),
            "{check} did not run: {report:?}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn templates_use_patterns_matched_exactly_and_nack_is_unsupported() {
    if !up() {
        return;
    }
    let base = format!("rspstest{}", std::process::id());
    let conn = RedisPubSub::new(Config::new(URL)).connect().await.unwrap();
    let caps = conn.capabilities();
    assert!(
        caps.headers && caps.wildcards && !caps.ack && !caps.nack_requeue && !caps.queue_groups
    );
    let mut sub = conn
        .subscribe(
            &Address::parse(&format!("{base}.user.{{id}}.signup")).unwrap(),
            SubscribeOptions::new(),
        )
        .await
        .unwrap();
    // `*` in a Redis pattern also matches dots; the template does not.
    conn.publish(OutgoingMessage::new(
        format!("{base}.user.a.b.signup"),
        "no",
    ))
    .await
    .unwrap();
    conn.publish(OutgoingMessage::new(format!("{base}.user.42.signup"), "yes").header("h", "v"))
        .await
        .unwrap();
    let m = tokio::time::timeout(Duration::from_secs(5), sub.next())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert_eq!(m.payload(), b"yes");
    assert_eq!(m.headers().get("h"), Some("v"));
    assert!(matches!(m.nack(true).await, Err(Error::Unsupported(_))));
    let err = conn
        .subscribe(
            &Address::parse(&base).unwrap(),
            SubscribeOptions::new().queue_group("g"),
        )
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Unsupported(_)), "{err:?}");
    conn.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plain_redis_clients_interoperate() {
    if !up() {
        return;
    }
    let channel = format!("rspsraw{}", std::process::id());
    let conn = RedisPubSub::new(Config::new(URL)).connect().await.unwrap();
    let mut sub = conn
        .subscribe(&Address::parse(&channel).unwrap(), SubscribeOptions::new())
        .await
        .unwrap();
    let client = redis::Client::open(URL).unwrap();
    let mut raw = client.get_multiplexed_async_connection().await.unwrap();
    let _: i64 = redis::cmd("PUBLISH")
        .arg(&channel)
        .arg("plain text")
        .query_async(&mut raw)
        .await
        .unwrap();
    let m = tokio::time::timeout(Duration::from_secs(5), sub.next())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert_eq!(m.payload(), b"plain text");
    assert!(m.headers().is_empty());
    conn.shutdown().await.unwrap();
}
