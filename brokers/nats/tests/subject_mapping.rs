//! `Config::address_separator('/')` against the real NATS server on 127.0.0.1:4222: `/`
//! addresses travel as `.` subjects (what a plain NATS client sees), wildcard parameters
//! match, received addresses and reply-tos come back in `/` form, the router matches its
//! templates, and addresses that would change meaning are refused.

use std::time::Duration;

use futures_util::StreamExt;
use ruststream::capability::RequestReply;
use ruststream::router::{Context, HandlerError, Route, Router};
use ruststream::testing::require_service;
use ruststream::{
    Address, Broker, Connection, Error, IncomingMessage, OutgoingMessage, Publisher,
    SubscribeOptions, Subscriber,
};
use ruststream_nats::{Config, JetStreamConfig, NatsBroker, NatsConnection};
use serde_json::{Value, json};

const NATS: &str = "127.0.0.1:4222";
const URL: &str = "nats://127.0.0.1:4222";
const WAIT: Duration = Duration::from_secs(5);

/// A unique first part of an address (letters and digits only).
fn unique(prefix: &str) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or_default();
    format!("{prefix}/t{nanos}")
}

fn slash() -> Config {
    Config::new(URL).address_separator('/')
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
async fn slash_addresses_travel_as_nats_subjects() {
    if !require_service("nats", NATS) {
        return;
    }
    let base = unique("rsmap");
    let wire = base.replace('/', ".");
    let conn = NatsBroker::new(slash()).connect().await.unwrap();
    let plain = async_nats::connect(URL).await.unwrap();

    // A plain client subscribed to the mapped wildcard sees the `.` subject.
    let mut plain_sub = plain
        .subscribe(format!("{wire}.lights.*.measured"))
        .await
        .unwrap();
    plain.flush().await.unwrap();
    // A RustStream subscription on the `/` template with a parameter.
    let template = Address::parse(&format!("{base}/lights/{{lightId}}/measured")).unwrap();
    let mut sub = conn
        .subscribe(&template, SubscribeOptions::new())
        .await
        .unwrap();

    conn.publish(
        OutgoingMessage::new(format!("{base}/lights/42/measured"), r#"{"lumens":5}"#)
            .content_type("application/json")
            .reply_to(format!("{base}/replies/42")),
    )
    .await
    .unwrap();
    let seen = tokio::time::timeout(WAIT, plain_sub.next())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(seen.subject.as_str(), format!("{wire}.lights.42.measured"));
    assert_eq!(
        seen.reply.as_deref(),
        Some(format!("{wire}.replies.42").as_str())
    );
    let m = next(&mut sub).await;
    let address = format!("{base}/lights/42/measured");
    assert_eq!(m.address(), address);
    assert_eq!(m.reply_to(), Some(format!("{base}/replies/42").as_str()));
    let params = template.captures(m.address()).expect("template matches");
    assert_eq!(params.get("lightId"), Some("42"));

    // A plain client's `.` subject arrives as a `/` address.
    plain
        .publish(format!("{wire}.lights.7.measured"), "{}".into())
        .await
        .unwrap();
    plain.flush().await.unwrap();
    let m = next(&mut sub).await;
    assert_eq!(m.address(), format!("{base}/lights/7/measured"));
    assert_eq!(
        template.captures(m.address()).unwrap().get("lightId"),
        Some("7")
    );

    // The multi-token wildcard is a whole `/` token.
    let mut all = conn
        .subscribe(
            &Address::parse(&format!("{base}/>")).unwrap(),
            SubscribeOptions::new(),
        )
        .await
        .unwrap();
    conn.publish(OutgoingMessage::new(format!("{base}/a/b/c"), "deep"))
        .await
        .unwrap();
    assert_eq!(next(&mut all).await.address(), format!("{base}/a/b/c"));
    conn.shutdown().await.unwrap();
}

#[tokio::test]
async fn addresses_that_would_change_meaning_are_refused() {
    if !require_service("nats", NATS) {
        return;
    }
    let conn = NatsBroker::new(slash()).connect().await.unwrap();
    for address in ["rsmap/v1.2/x", "rsmap/*/x", "rsmap/>", "rsmap//x"] {
        let err = conn
            .publish(OutgoingMessage::new(address, "x"))
            .await
            .unwrap_err();
        assert!(
            matches!(&err, Error::InvalidAddress { address: a, .. } if a == address),
            "{address}: {err:?}"
        );
    }
    let err = conn
        .publish(OutgoingMessage::new("rsmap/x", "x").reply_to("a.b"))
        .await
        .unwrap_err();
    assert!(matches!(err, Error::InvalidAddress { .. }), "{err:?}");
    for template in ["rsmap/v1.{id}/x", "rsmap/x{id}/y", "rsmap/a*/b"] {
        let err = conn
            .subscribe(&Address::parse(template).unwrap(), SubscribeOptions::new())
            .await
            .expect_err("refused");
        assert!(
            matches!(&err, Error::InvalidAddress { .. }),
            "{template}: {err:?}"
        );
        assert!(err.to_string().contains(template), "{err}");
    }
    conn.shutdown().await.unwrap();
    let err = NatsBroker::new(Config::new(URL).address_separator('*'))
        .connect()
        .await
        .expect_err("refused");
    assert!(matches!(err, Error::Config(_)), "{err:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn request_reply_and_the_router_use_slash_addresses() {
    if !require_service("nats", NATS) {
        return;
    }
    let base = unique("rsmaprouter");
    let wire = base.replace('/', ".");
    let conn = NatsBroker::new(slash()).connect().await.unwrap();
    let mut router = Router::<NatsConnection>::new();
    router.route_reply(
        Route::new(&format!("{base}/users/{{userId}}/get")).unwrap(),
        |_: Value, ctx: Context<NatsConnection>| async move {
            Ok::<_, HandlerError>(json!({ "id": ctx.param("userId") }))
        },
    );
    let running = router.start(conn.clone()).await.unwrap();

    // A plain NATS request on the `.` subject reaches the `/` route and gets its reply.
    let plain = async_nats::connect(URL).await.unwrap();
    let reply = tokio::time::timeout(
        WAIT,
        plain.request(format!("{wire}.users.42.get"), "{}".into()),
    )
    .await
    .unwrap()
    .unwrap();
    let body: Value = serde_json::from_slice(&reply.payload).unwrap();
    assert_eq!(body, json!({"id": "42"}));

    // A RustStream request on the `/` address too.
    let requester = NatsBroker::new(slash()).connect().await.unwrap();
    let reply = requester
        .request(
            OutgoingMessage::new(format!("{base}/users/7/get"), "{}")
                .content_type("application/json"),
            WAIT,
        )
        .await
        .unwrap();
    let body: Value = serde_json::from_slice(&reply.payload).unwrap();
    assert_eq!(body, json!({"id": "7"}));
    running.shutdown(Duration::from_secs(2)).await.unwrap();
    requester.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn jetstream_maps_addresses_reply_tos_and_dead_letters() {
    if !require_service("nats", NATS) {
        return;
    }
    let base = unique("rsjsmap");
    let wire = base.replace('/', ".");
    // Stream subjects stay NATS subjects.
    let js = JetStreamConfig::new("RSCONF_JS_MAP", ["rsjsmap.>"])
        .memory_storage(true)
        .max_age(Duration::from_secs(600));
    let conn = NatsBroker::jetstream(slash(), js).connect().await.unwrap();
    let plain = async_nats::connect(URL).await.unwrap();
    let mut dead = plain.subscribe(format!("{wire}.dead")).await.unwrap();
    plain.flush().await.unwrap();
    let template = Address::parse(&format!("{base}/orders/{{id}}")).unwrap();
    let mut sub = conn
        .subscribe(
            &template,
            SubscribeOptions::new().dead_letter(format!("{base}/dead")),
        )
        .await
        .unwrap();
    conn.publish(
        OutgoingMessage::new(format!("{base}/orders/9"), "o9").reply_to(format!("{base}/r")),
    )
    .await
    .unwrap();
    let m = next(&mut sub).await;
    assert_eq!(m.address(), format!("{base}/orders/9"));
    assert_eq!(m.reply_to(), Some(format!("{base}/r").as_str()));
    assert_eq!(template.captures(m.address()).unwrap().get("id"), Some("9"));
    m.reject().await.unwrap();
    let d = tokio::time::timeout(WAIT, dead.next())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(d.payload.as_ref(), b"o9");
    let original = d.headers.as_ref().and_then(|h| h.get("x-original-subject"));
    assert_eq!(
        original.map(|v| v.as_str().to_owned()),
        Some(format!("{wire}.orders.9"))
    );
    conn.shutdown().await.unwrap();
}
