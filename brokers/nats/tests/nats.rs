//! NATS-specific behaviour beyond the harness: interoperability with plain NATS clients,
//! honest settlement on core NATS, max-deliver dead letters, credential scrubbing.

use std::time::Duration;

use futures_util::StreamExt;
use ruststream::capability::RequestReply;
use ruststream::testing::require_service;
use ruststream::{
    Address, Broker, Connection, Error, IncomingMessage, OutgoingMessage, Publisher,
    SubscribeOptions, Subscriber,
};
use ruststream_nats::{Config, JetStreamConfig, NatsBroker};

const NATS: &str = "127.0.0.1:4222";
const URL: &str = "nats://127.0.0.1:4222";
const WAIT: Duration = Duration::from_secs(5);

fn unique(prefix: &str) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or_default();
    format!("{prefix}.t{nanos}")
}

async fn next<S, M>(sub: &mut S) -> M
where
    S: futures_core::Stream<Item = ruststream::Result<M>> + Unpin,
{
    tokio::time::timeout(WAIT, sub.next())
        .await
        .expect("a message in time")
        .expect("stream open")
        .expect("no error")
}

#[tokio::test]
async fn plain_nats_clients_interoperate() {
    if !require_service("nats", NATS) {
        return;
    }
    let base = unique("rsinterop");
    let conn = NatsBroker::new(Config::new(URL)).connect().await.unwrap();
    let plain = async_nats::connect(URL).await.unwrap();

    // A plain client's JSON message with `Content-Type` reaches a parameterised subscription.
    let template = Address::parse(&format!("{base}.orders.{{orderId}}.created")).unwrap();
    let mut sub = conn
        .subscribe(&template, SubscribeOptions::new())
        .await
        .unwrap();
    let mut headers = async_nats::HeaderMap::new();
    headers.insert("Content-Type", "application/json");
    let subject = format!("{base}.orders.42.created");
    plain
        .publish_with_headers(subject.clone(), headers, r#"{"id":42}"#.into())
        .await
        .unwrap();
    plain.flush().await.unwrap();
    let m = next(&mut sub).await;
    assert_eq!(m.payload(), br#"{"id":42}"#);
    assert_eq!(m.content_type(), Some("application/json"));
    assert_eq!(m.address(), subject);
    assert_eq!(
        template.captures(m.address()).unwrap().get("orderId"),
        Some("42")
    );

    // Our `content-type` arrives as `content-type` (FastStream's spelling) at a plain subscriber.
    let mut plain_sub = plain.subscribe(format!("{base}.out")).await.unwrap();
    plain.flush().await.unwrap();
    tokio::time::sleep(Duration::from_millis(50)).await;
    conn.publish(
        OutgoingMessage::new(format!("{base}.out"), "{}").content_type("application/json"),
    )
    .await
    .unwrap();
    let raw = tokio::time::timeout(WAIT, plain_sub.next())
        .await
        .unwrap()
        .unwrap();
    let ct = raw.headers.as_ref().and_then(|h| h.get("content-type"));
    assert_eq!(ct.map(|v| v.as_str()), Some("application/json"));

    // Our request, answered by a plain responder through the standard reply subject.
    let mut responder = plain.subscribe(format!("{base}.svc")).await.unwrap();
    plain.flush().await.unwrap();
    tokio::time::sleep(Duration::from_millis(50)).await;
    let plain2 = plain.clone();
    let serve = tokio::spawn(async move {
        let req = responder.next().await.unwrap();
        let reply = req.reply.unwrap();
        assert!(reply.starts_with("_INBOX."), "standard inbox: {reply}");
        plain2.publish(reply, "pong".into()).await.unwrap();
        plain2.flush().await.unwrap();
    });
    let reply = conn
        .request(OutgoingMessage::new(format!("{base}.svc"), "ping"), WAIT)
        .await
        .unwrap();
    assert_eq!(reply.payload.as_ref(), b"pong");
    serve.await.unwrap();

    // A plain client's request, answered by our responder.
    let svc = Address::parse(&format!("{base}.svc2")).unwrap();
    let mut requests = conn.subscribe(&svc, SubscribeOptions::new()).await.unwrap();
    let conn2 = conn.clone();
    let serve = tokio::spawn(async move {
        let m = next(&mut requests).await;
        let to = m.reply_to().unwrap().to_owned();
        conn2
            .publish(OutgoingMessage::new(to, "pong2"))
            .await
            .unwrap();
        m.ack().await.unwrap();
    });
    let answer = plain
        .request(format!("{base}.svc2"), "ping".into())
        .await
        .unwrap();
    assert_eq!(answer.payload.as_ref(), b"pong2");
    serve.await.unwrap();
    conn.shutdown().await.unwrap();
}

#[tokio::test]
async fn an_implicit_content_type_is_not_sent_as_a_header() {
    if !require_service("nats", NATS) {
        return;
    }
    let base = unique("rsimplicit");
    let conn = NatsBroker::new(Config::new(URL).implicit_content_type("application/json"))
        .connect()
        .await
        .unwrap();
    let plain = async_nats::connect(URL).await.unwrap();
    let mut raw = plain.subscribe(format!("{base}.>")).await.unwrap();
    plain.flush().await.unwrap();
    tokio::time::sleep(Duration::from_millis(50)).await;
    let publish = |suffix: &str, content_type: &str| {
        OutgoingMessage::new(format!("{base}.{suffix}"), "{}").content_type(content_type)
    };
    conn.publish(publish("a", "application/json"))
        .await
        .unwrap();
    conn.publish(publish("b", "application/msgpack"))
        .await
        .unwrap();
    conn.publish(publish("c", "application/json").header("x-kept", "1"))
        .await
        .unwrap();
    let mut next_raw = async || {
        tokio::time::timeout(WAIT, raw.next())
            .await
            .expect("a message in time")
            .expect("subscription open")
    };

    // Only the implicit content type: a plain PUB, no header block at all.
    let a = next_raw().await;
    assert_eq!(a.subject.as_str(), format!("{base}.a"));
    assert!(a.headers.is_none(), "{:?}", a.headers);
    // Another content type still travels as `content-type`.
    let b = next_raw().await;
    let h = b.headers.expect("headers");
    assert_eq!(
        h.get("content-type").map(|v| v.as_str()),
        Some("application/msgpack")
    );
    // Other headers are sent; only the implicit content type is left out.
    let c = next_raw().await;
    let h = c.headers.expect("headers");
    assert_eq!(h.get("x-kept").map(|v| v.as_str()), Some("1"));
    assert!(h.get("content-type").is_none());
    conn.shutdown().await.unwrap();
}

#[tokio::test]
async fn core_nats_settles_honestly() {
    if !require_service("nats", NATS) {
        return;
    }
    let base = unique("rscore");
    let conn = NatsBroker::new(Config::new(URL)).connect().await.unwrap();
    let addr = Address::parse(&format!("{base}.x")).unwrap();
    let mut sub = conn
        .subscribe(&addr, SubscribeOptions::new())
        .await
        .unwrap();
    for _ in 0..2 {
        conn.publish(OutgoingMessage::new(format!("{base}.x"), "m"))
            .await
            .unwrap();
    }
    let m = next(&mut sub).await;
    assert_eq!(m.attempt(), 1);
    assert!(matches!(m.nack(true).await, Err(Error::Unsupported(_))));
    let m = next(&mut sub).await;
    m.ack().await.unwrap();
    let durable = conn
        .subscribe(&addr, SubscribeOptions::new().durable("d"))
        .await;
    assert!(matches!(durable, Err(Error::Unsupported(_))));
    let partial = Address::parse(&format!("{base}.orders-{{region}}")).unwrap();
    let refused = conn.subscribe(&partial, SubscribeOptions::new()).await;
    assert!(matches!(refused, Err(Error::InvalidAddress { .. })));
    let wildcard = conn
        .publish(OutgoingMessage::new(format!("{base}.*"), "m"))
        .await;
    assert!(matches!(wildcard, Err(Error::InvalidAddress { .. })));
    conn.shutdown().await.unwrap();
}

#[tokio::test]
async fn jetstream_max_deliver_dead_letters() {
    if !require_service("nats", NATS) {
        return;
    }
    let base = unique("rsjsdl");
    let js = JetStreamConfig::new("RSCONF_JS_DL", ["rsjsdl.>"])
        .memory_storage(true)
        .max_age(Duration::from_secs(600));
    let conn = NatsBroker::jetstream(Config::new(URL), js)
        .connect()
        .await
        .unwrap();
    let dlq = format!("{base}.dlq");
    let mut dead = conn
        .subscribe(&Address::parse(&dlq).unwrap(), SubscribeOptions::new())
        .await
        .unwrap();
    let opts = SubscribeOptions::new()
        .max_deliver(2)
        .dead_letter(dlq.clone());
    let mut sub = conn
        .subscribe(&Address::parse(&format!("{base}.work")).unwrap(), opts)
        .await
        .unwrap();
    conn.publish(OutgoingMessage::new(format!("{base}.work"), "poison").header("x-k", "v"))
        .await
        .unwrap();
    let m = next(&mut sub).await;
    assert_eq!(m.attempt(), 1);
    m.nack(true).await.unwrap();
    let m = next(&mut sub).await;
    assert_eq!(m.attempt(), 2);
    m.nack(true).await.unwrap();
    let d = next(&mut dead).await;
    assert_eq!(d.payload(), b"poison");
    assert_eq!(d.headers().get("x-k"), Some("v"));
    assert_eq!(d.headers().get("x-dead-letter-reason"), Some("max-deliver"));
    assert_eq!(
        d.headers().get("x-original-subject"),
        Some(format!("{base}.work").as_str())
    );
    d.ack().await.unwrap();
    let more = tokio::time::timeout(Duration::from_millis(300), sub.next()).await;
    assert!(more.is_err(), "a dead-lettered message is not redelivered");
    let again = tokio::time::timeout(Duration::from_millis(300), dead.next()).await;
    assert!(again.is_err(), "dead-lettered once");
    conn.shutdown().await.unwrap();
}

#[tokio::test]
async fn errors_never_carry_credentials() {
    let config = Config::new("nats://alice:hunter2@127.0.0.1:1")
        .user_password("bob", "s3cret-pw")
        .connect_timeout(Duration::from_millis(500));
    let shown = format!("{config:?}");
    assert!(
        !shown.contains("hunter2") && !shown.contains("s3cret-pw"),
        "{shown}"
    );
    let err = NatsBroker::new(config).connect().await.unwrap_err();
    let text = format!("{err} {err:?}");
    assert!(
        matches!(err, Error::Transport { broker: "nats", .. }),
        "{text}"
    );
    assert!(
        !text.contains("hunter2") && !text.contains("s3cret-pw"),
        "{text}"
    );
}

#[tokio::test]
async fn jetstream_dead_letters_messages_that_time_out_max_deliver_times() {
    if !require_service("nats", NATS) {
        return;
    }
    let base = unique("rsjsdl");
    let js = JetStreamConfig::new("RSCONF_JS_DL", ["rsjsdl.>"])
        .memory_storage(true)
        .max_age(Duration::from_secs(600))
        .ack_wait(Duration::from_millis(300));
    let conn = NatsBroker::jetstream(Config::new(URL), js)
        .connect()
        .await
        .unwrap();
    let dlq = format!("{base}.dlq");
    let mut dead = conn
        .subscribe(&Address::parse(&dlq).unwrap(), SubscribeOptions::new())
        .await
        .unwrap();
    let opts = SubscribeOptions::new()
        .max_deliver(2)
        .dead_letter(dlq.clone());
    let mut sub = conn
        .subscribe(&Address::parse(&format!("{base}.work")).unwrap(), opts)
        .await
        .unwrap();
    conn.publish(OutgoingMessage::new(format!("{base}.work"), "stuck").header("x-k", "v"))
        .await
        .unwrap();
    // A consumer that never settles (it crashed, or hangs): the server redelivers after the
    // ack wait, then gives up after max_deliver; the broker dead-letters the message.
    for attempt in 1..=2 {
        let m = next(&mut sub).await;
        assert_eq!(m.attempt(), attempt);
        drop(m);
    }
    let d = next(&mut dead).await;
    assert_eq!(d.payload(), b"stuck");
    assert_eq!(d.headers().get("x-k"), Some("v"));
    assert_eq!(d.headers().get("x-dead-letter-reason"), Some("max-deliver"));
    d.ack().await.unwrap();
    let more = tokio::time::timeout(Duration::from_millis(500), sub.next()).await;
    assert!(more.is_err(), "no delivery after max_deliver");
    let again = tokio::time::timeout(Duration::from_millis(500), dead.next()).await;
    assert!(again.is_err(), "dead-lettered once");
    conn.shutdown().await.unwrap();
}
