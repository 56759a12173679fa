//! Redis Streams against the real server on 127.0.0.1:6379.

use std::time::Duration;

use futures_util::StreamExt;
use ruststream::conformance::Suite;
use ruststream::{
    Address, Broker, Connection, Error, IncomingMessage, OutgoingMessage, Publisher,
    SubscribeOptions, Subscriber,
};
use ruststream_redis::{Config, RedisStreams, StreamOptions};

const URL: &str = "redis://127.0.0.1:6379";

fn up() -> bool {
    ruststream::testing::require_service("redis", "127.0.0.1:6379")
}

fn unique(what: &str) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    format!("rstest{}{nanos}.{what}", std::process::id())
}

/// Delete every key starting with `prefix` (test cleanup).
async fn cleanup(prefix: &str) {
    let client = redis::Client::open(URL).unwrap();
    let mut conn = client.get_multiplexed_async_connection().await.unwrap();
    let keys: Vec<String> = redis::cmd("KEYS")
        .arg(format!("{prefix}*"))
        .query_async(&mut conn)
        .await
        .unwrap();
    for k in keys {
        let _: () = redis::cmd("DEL")
            .arg(k)
            .query_async(&mut conn)
            .await
            .unwrap();
    }
}

async fn next<S: futures_core::Stream<Item = ruststream::Result<M>> + Unpin, M>(s: &mut S) -> M {
    tokio::time::timeout(Duration::from_secs(5), s.next())
        .await
        .expect("a message within 5 s")
        .expect("stream open")
        .expect("no error")
}

async fn quiet<S: futures_core::Stream<Item = ruststream::Result<M>> + Unpin, M>(
    s: &mut S,
    d: Duration,
) {
    if let Ok(Some(_)) = tokio::time::timeout(d, s.next()).await {
        panic!("expected no delivery");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn streams_pass_the_conformance_suite() {
    if !up() {
        return;
    }
    let prefix = format!("rsredis{}", std::process::id());
    let config = Config::new(URL).streams(
        StreamOptions::new()
            .block(Duration::from_millis(500))
            .discover_every(Duration::from_millis(100)),
    );
    let suite = Suite::new(|| RedisStreams::new(config.clone()).connect()).prefix(prefix.clone());
    let mut report = suite.run().await;
    for extra in [
        suite.run_batch().await,
        suite.run_transactions().await,
        suite.run_delayed().await,
        suite.run_request_reply().await,
    ] {
        report.passed.extend(extra.passed);
    }
    cleanup(&prefix).await;
    for check in [
        "round_trip",
        "ack",
        "nack_requeue",
        "dead_letter",
        "queue_groups",
        "durable",
        "lifecycle",
        "wildcards",
        "batch",
        "transactions",
        "delayed_redelivery",
        "request_reply",
    ] {
        assert!(
            report.passed.contains(&check),
            "{check} did not run: {report:?}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nack_dead_letters_after_max_attempts() {
    if !up() {
        return;
    }
    let stream = unique("maxatt");
    let dlq = format!("{stream}.dead");
    let conn = RedisStreams::new(Config::new(URL).streams(StreamOptions::new().max_attempts(3)))
        .connect()
        .await
        .unwrap();
    let mut dead = conn
        .subscribe(&Address::parse(&dlq).unwrap(), SubscribeOptions::new())
        .await
        .unwrap();
    let mut sub = conn
        .subscribe(
            &Address::parse(&stream).unwrap(),
            SubscribeOptions::new().dead_letter(dlq.clone()),
        )
        .await
        .unwrap();
    conn.publish(OutgoingMessage::new(stream.clone(), "poison").header("x-a", "1"))
        .await
        .unwrap();
    for attempt in 1..=3 {
        let m = next(&mut sub).await;
        assert_eq!(m.attempt(), attempt);
        assert_eq!(m.payload(), b"poison");
        m.nack(true).await.unwrap();
    }
    quiet(&mut sub, Duration::from_millis(300)).await;
    let d = next(&mut dead).await;
    assert_eq!(d.payload(), b"poison");
    assert_eq!(d.headers().get("x-a"), Some("1"));
    d.ack().await.unwrap();
    drop((sub, dead));
    conn.shutdown().await.unwrap();
    cleanup(&stream).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unsettled_entries_are_reclaimed_by_another_group_member() {
    if !up() {
        return;
    }
    let stream = unique("reclaim");
    let addr = Address::parse(&stream).unwrap();
    let config = Config::new(URL).streams(
        StreamOptions::new()
            .claim_idle(Duration::from_millis(300))
            .block(Duration::from_millis(100)),
    );
    let a = RedisStreams::new(config.clone()).connect().await.unwrap();
    let b = RedisStreams::new(config).connect().await.unwrap();
    let opts = SubscribeOptions::new().queue_group("workers");
    let mut sub_a = a.subscribe(&addr, opts.clone()).await.unwrap();
    a.publish(OutgoingMessage::new(stream.clone(), "job"))
        .await
        .unwrap();
    let m = next(&mut sub_a).await;
    assert_eq!(m.attempt(), 1);
    // Consumer A "crashes": the entry is neither acked nor nacked.
    drop(m);
    drop(sub_a);
    a.shutdown().await.unwrap();

    let mut sub_b = b.subscribe(&addr, opts).await.unwrap();
    let m = next(&mut sub_b).await;
    assert_eq!(m.payload(), b"job");
    assert_eq!(m.attempt(), 2, "a reclaimed entry counts its deliveries");
    m.ack().await.unwrap();
    quiet(&mut sub_b, Duration::from_millis(800)).await;
    drop(sub_b);
    b.shutdown().await.unwrap();
    cleanup(&stream).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn templates_discover_matching_streams() {
    if !up() {
        return;
    }
    let base = unique("tpl");
    let conn = RedisStreams::new(
        Config::new(URL).streams(
            StreamOptions::new()
                .discover_every(Duration::from_millis(100))
                .block(Duration::from_millis(100)),
        ),
    )
    .connect()
    .await
    .unwrap();
    let caps = conn.capabilities();
    assert!(caps.ack && caps.nack_requeue && caps.dead_letter && caps.queue_groups && caps.durable);
    assert!(caps.wildcards && caps.request_reply && !caps.ordered_per_key);
    let mut sub = conn
        .subscribe(
            &Address::parse(&format!("{base}.{{region}}.orders")).unwrap(),
            SubscribeOptions::new(),
        )
        .await
        .unwrap();
    // Streams created after subscribing are found; their first entries are not missed.
    for (key, body) in [
        (format!("{base}.eu.orders"), "eu"),
        (format!("{base}.eu.x.orders"), "no: two levels"),
        (format!("{base}.us.orders"), "us"),
        (format!("{base}.us.orders:dlq"), "no: a dead-letter stream"),
    ] {
        conn.publish(OutgoingMessage::new(key, body)).await.unwrap();
    }
    let mut got = Vec::new();
    for _ in 0..2 {
        let m = next(&mut sub).await;
        got.push((
            m.address().to_owned(),
            String::from_utf8(m.payload().to_vec()).unwrap(),
        ));
        m.ack().await.unwrap();
    }
    got.sort();
    assert_eq!(
        got,
        [
            (format!("{base}.eu.orders"), "eu".to_owned()),
            (format!("{base}.us.orders"), "us".to_owned())
        ]
    );
    quiet(&mut sub, Duration::from_millis(500)).await;
    let mut streams = sub.streams();
    streams.sort();
    assert_eq!(
        streams,
        [format!("{base}.eu.orders"), format!("{base}.us.orders")]
    );
    drop(sub);
    conn.shutdown().await.unwrap();
    cleanup(&base).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_publishes_are_pipelined_and_all_arrive() {
    if !up() {
        return;
    }
    let stream = unique("pipe");
    let conn = RedisStreams::new(Config::new(URL)).connect().await.unwrap();
    let n = 20_000;
    // Futures enqueue on creation: call order is stream order even though they are awaited
    // together.
    let pending: Vec<_> = (0..n)
        .map(|i| conn.publish(OutgoingMessage::new(stream.clone(), i.to_string())))
        .collect();
    for r in futures_util::future::join_all(pending).await {
        r.unwrap();
    }
    conn.flush().await.unwrap();
    let client = redis::Client::open(URL).unwrap();
    let mut raw = client.get_multiplexed_async_connection().await.unwrap();
    let len: usize = redis::cmd("XLEN")
        .arg(&stream)
        .query_async(&mut raw)
        .await
        .unwrap();
    assert_eq!(len, n);
    let first: redis::Value = redis::cmd("XRANGE")
        .arg(&stream)
        .arg("-")
        .arg("+")
        .arg("COUNT")
        .arg(1)
        .query_async(&mut raw)
        .await
        .unwrap();
    let text = format!("{first:?}");
    // The default layout is FastStream's: one `__data__` field (see `entry`).
    assert!(text.contains("__data__"), "documented field layout: {text}");
    conn.shutdown().await.unwrap();
    cleanup(&stream).await;
}

#[tokio::test]
async fn errors_never_carry_the_password() {
    // Nothing listens on port 1.
    let err = RedisStreams::new(Config::new("redis://app:hunter2secret@127.0.0.1:1"))
        .connect()
        .await
        .unwrap_err();
    let text = format!("{err} {err:?}");
    assert!(matches!(err, Error::Transport { .. }), "{text}");
    assert!(!text.contains("hunter2secret"), "{text}");
}
