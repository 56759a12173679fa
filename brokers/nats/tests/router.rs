//! The RustStream router running on NATS: a request/reply route answering a plain NATS client,
//! and a JetStream route whose failures are redelivered by the server with growing attempts.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use ruststream::router::{Context, ErrorPolicy, HandlerError, Route, Router};
use ruststream::testing::require_service;
use ruststream::{Broker, OutgoingMessage, Publisher};
use ruststream_nats::{Config, JetStreamConfig, JetStreamConnection, NatsBroker, NatsConnection};
use serde_json::{Value, json};

const NATS: &str = "127.0.0.1:4222";
const URL: &str = "nats://127.0.0.1:4222";

fn unique(prefix: &str) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or_default();
    format!("{prefix}.t{nanos}")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reply_route_answers_a_plain_nats_request() {
    if !require_service("nats", NATS) {
        return;
    }
    let base = unique("rsrouter");
    let conn = NatsBroker::new(Config::new(URL)).connect().await.unwrap();
    let mut router = Router::<NatsConnection>::new();
    router.route_reply(
        Route::new(&format!("{base}.users.{{userId}}.get")).unwrap(),
        |req: Value, ctx: Context<NatsConnection>| async move {
            Ok::<_, HandlerError>(json!({
                "id": ctx.param("userId"),
                "fields": req["fields"],
            }))
        },
    );
    let running = router.start(conn.clone()).await.unwrap();

    let plain = async_nats::connect(URL).await.unwrap();
    let mut headers = async_nats::HeaderMap::new();
    headers.insert("Content-Type", "application/json");
    let request = async_nats::Request::new()
        .payload(r#"{"fields":["name"]}"#.into())
        .headers(headers)
        .timeout(Some(Duration::from_secs(5)));
    let reply = plain
        .send_request(format!("{base}.users.42.get"), request)
        .await
        .unwrap();
    let body: Value = serde_json::from_slice(&reply.payload).unwrap();
    assert_eq!(body, json!({"id": "42", "fields": ["name"]}));
    let ct = reply.headers.as_ref().and_then(|h| h.get("content-type"));
    assert_eq!(ct.map(|v| v.as_str()), Some("application/json"));
    running.shutdown(Duration::from_secs(2)).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_jetstream_route_is_redelivered_until_it_succeeds() {
    if !require_service("nats", NATS) {
        return;
    }
    let base = unique("rsjsrouter");
    let js = JetStreamConfig::new("RSCONF_JS_ROUTER", ["rsjsrouter.>"])
        .memory_storage(true)
        .max_age(Duration::from_secs(600))
        .durable_inactive_threshold(Duration::from_secs(60));
    let conn = NatsBroker::jetstream(Config::new(URL), js)
        .connect()
        .await
        .unwrap();
    let attempts = Arc::new(Mutex::new(Vec::new()));
    let (done_tx, mut done_rx) = tokio::sync::mpsc::unbounded_channel();
    let mut router = Router::<JetStreamConnection>::new();
    let seen = Arc::clone(&attempts);
    router.route(
        Route::new(&format!("{base}.orders.{{orderId}}"))
            .unwrap()
            .durable(format!("{}-worker", base.replace('.', "-")))
            .on_error(ErrorPolicy::Nack { requeue: true }),
        move |order: Value, ctx: Context<JetStreamConnection>| {
            let seen = Arc::clone(&seen);
            let done = done_tx.clone();
            async move {
                seen.lock().unwrap().push(ctx.attempt());
                if ctx.attempt() < 3 {
                    return Err(HandlerError::retryable("warehouse unavailable"));
                }
                let _ = done.send(order["id"].as_u64());
                Ok(())
            }
        },
    );
    let running = router.start(conn.clone()).await.unwrap();
    conn.publish(
        OutgoingMessage::new(format!("{base}.orders.7"), r#"{"id":7}"#)
            .content_type("application/json"),
    )
    .await
    .unwrap();
    let done = tokio::time::timeout(Duration::from_secs(10), done_rx.recv())
        .await
        .expect("handled within 10 s");
    assert_eq!(done, Some(Some(7)));
    assert_eq!(*attempts.lock().unwrap(), [1, 2, 3]);
    // Acked on success: no further delivery.
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(attempts.lock().unwrap().len(), 3);
    running.shutdown(Duration::from_secs(2)).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_message_without_content_type_is_decoded_by_the_route_declaration() {
    if !require_service("nats", NATS) {
        return;
    }
    let base = unique("rsimplicitroute");
    // Text, not JSON: decoding `hello` as JSON would fail, so a handled message shows the
    // route's declared content type was used for the header-less message.
    let config = Config::new(URL).implicit_content_type("text/plain");
    let conn = NatsBroker::new(config).connect().await.unwrap();
    let (done_tx, mut done_rx) = tokio::sync::mpsc::unbounded_channel();
    let mut router = Router::<NatsConnection>::new();
    router.route(
        Route::new(&format!("{base}.greetings"))
            .unwrap()
            .content_type("text/plain"),
        move |text: String, ctx: Context<NatsConnection>| {
            let done = done_tx.clone();
            async move {
                let _ = done.send((text, ctx.headers().get("content-type").map(str::to_owned)));
                Ok::<_, HandlerError>(())
            }
        },
    );
    let running = router.start(conn.clone()).await.unwrap();
    conn.publish(
        OutgoingMessage::new(format!("{base}.greetings"), "hello").content_type("text/plain"),
    )
    .await
    .unwrap();
    let got = tokio::time::timeout(Duration::from_secs(5), done_rx.recv())
        .await
        .expect("handled within 5 s")
        .unwrap();
    assert_eq!(got, ("hello".to_owned(), None));
    running.shutdown(Duration::from_secs(2)).await.unwrap();
}
