//! Both message formats on the real server: what one writes, the other reads (so services on
//! this crate's previous layout and on the FastStream default talk), on Streams and Pub/Sub.

use std::time::Duration;

use futures_util::StreamExt;
use ruststream::capability::RequestReply;
use ruststream::{
    Address, Broker, Connection, IncomingMessage, OutgoingMessage, Publisher, SubscribeOptions,
    Subscriber,
};
use ruststream_redis::{Config, MessageFormat, RedisPubSub, RedisStreams};

const URL: &str = "redis://127.0.0.1:6379";
const WAIT: Duration = Duration::from_secs(5);

fn up() -> bool {
    ruststream::testing::require_service("redis", "127.0.0.1:6379")
}

fn message(address: &str) -> OutgoingMessage {
    OutgoingMessage::new(address, &b"\x00\xffbody"[..])
        .content_type("application/octet-stream")
        .correlation_id("corr-1")
        .reply_to("somewhere")
        .key(&b"k1"[..])
        .with_headers(
            [("x-a", "1"), ("x-a", "2"), ("x-empty", "")]
                .into_iter()
                .collect(),
        )
}

fn check(m: &impl IncomingMessage, sent: &OutgoingMessage, what: &str) {
    assert_eq!(m.payload(), &sent.payload[..], "{what}: payload");
    assert_eq!(m.correlation_id(), Some("corr-1"), "{what}: correlation id");
    assert_eq!(m.reply_to(), Some("somewhere"), "{what}: reply-to");
    assert_eq!(m.key(), Some(&b"k1"[..]), "{what}: key");
    for (name, value) in sent.headers.iter() {
        assert!(
            m.headers().get_all(name).any(|v| v == value),
            "{what}: header {name}={value:?} in {:?}",
            m.headers()
        );
    }
    assert_eq!(
        m.headers().get_all("x-a").collect::<Vec<_>>(),
        ["1", "2"],
        "{what}: duplicates in order"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_format_reads_the_other_on_streams_and_pubsub() {
    if !up() {
        return;
    }
    let formats = [
        (MessageFormat::RustStream, MessageFormat::FastStream),
        (MessageFormat::FastStream, MessageFormat::RustStream),
    ];
    for (i, (writer, reader)) in formats.into_iter().enumerate() {
        let what = format!("{writer:?} → {reader:?}");
        let stream = format!("rsformats{}x{i}s", std::process::id());
        let w = RedisStreams::new(Config::new(URL).message_format(writer))
            .connect()
            .await
            .unwrap();
        let r = RedisStreams::new(Config::new(URL).message_format(reader))
            .connect()
            .await
            .unwrap();
        let mut sub = r
            .subscribe(&Address::parse(&stream).unwrap(), SubscribeOptions::new())
            .await
            .unwrap();
        let sent = message(&stream);
        w.publish(sent.clone()).await.unwrap();
        let m = tokio::time::timeout(WAIT, sub.next())
            .await
            .unwrap()
            .unwrap()
            .unwrap();
        check(&m, &sent, &format!("streams {what}"));
        m.ack().await.unwrap();
        drop(sub);
        w.shutdown().await.unwrap();
        r.shutdown().await.unwrap();

        let channel = format!("rsformats{}x{i}c", std::process::id());
        let w = RedisPubSub::new(Config::new(URL).message_format(writer))
            .connect()
            .await
            .unwrap();
        let r = RedisPubSub::new(Config::new(URL).message_format(reader))
            .connect()
            .await
            .unwrap();
        let mut sub = r
            .subscribe(&Address::parse(&channel).unwrap(), SubscribeOptions::new())
            .await
            .unwrap();
        let sent = message(&channel);
        w.publish(sent.clone()).await.unwrap();
        let m = tokio::time::timeout(WAIT, sub.next())
            .await
            .unwrap()
            .unwrap()
            .unwrap();
        check(&m, &sent, &format!("pub/sub {what}"));
        drop(sub);
        w.shutdown().await.unwrap();
        r.shutdown().await.unwrap();
        let mut raw = redis::Client::open(URL)
            .unwrap()
            .get_multiplexed_async_connection()
            .await
            .unwrap();
        let _: () = redis::cmd("DEL")
            .arg(&stream)
            .query_async(&mut raw)
            .await
            .unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn streams_requests_are_answered_over_pubsub_in_the_default_format() {
    if !up() {
        return;
    }
    let stream = format!("rsformats{}rpc", std::process::id());
    let server = RedisStreams::new(Config::new(URL)).connect().await.unwrap();
    let client = RedisStreams::new(Config::new(URL)).connect().await.unwrap();
    let mut sub = server
        .subscribe(&Address::parse(&stream).unwrap(), SubscribeOptions::new())
        .await
        .unwrap();
    let replier = server.clone();
    let serve = tokio::spawn(async move {
        let m = sub.next().await.unwrap().unwrap();
        let to = m.reply_to().expect("a reply address").to_owned();
        let corr = m.correlation_id().map(str::to_owned);
        let mut reply = OutgoingMessage::new(to.clone(), "pong");
        reply.correlation_id = corr;
        replier.publish(reply).await.unwrap();
        m.ack().await.unwrap();
        to
    });
    let reply = client
        .request(OutgoingMessage::new(stream.clone(), "ping"), WAIT)
        .await
        .unwrap();
    assert_eq!(&reply.payload[..], b"pong");
    let inbox = serve.await.unwrap();
    // The reply went over Pub/Sub: no reply stream was created.
    let mut raw = redis::Client::open(URL)
        .unwrap()
        .get_multiplexed_async_connection()
        .await
        .unwrap();
    let exists: u32 = redis::cmd("EXISTS")
        .arg(&inbox)
        .query_async(&mut raw)
        .await
        .unwrap();
    assert_eq!(exists, 0, "no reply stream {inbox}");
    server.shutdown().await.unwrap();
    client.shutdown().await.unwrap();
    let _: () = redis::cmd("DEL")
        .arg(&stream)
        .query_async(&mut raw)
        .await
        .unwrap();
}
