//! MQTT 5 against the real Mosquitto on 127.0.0.1:1883.

use std::time::Duration;

use futures_util::StreamExt;
use ruststream::conformance::Suite;
use ruststream::{
    Address, Broker, Connection, Error, IncomingMessage, OutgoingMessage, Publisher,
    SubscribeOptions, Subscriber,
};
use ruststream_mqtt::{Config, Mqtt, Qos};

fn up() -> bool {
    ruststream::testing::require_service("mosquitto", "127.0.0.1:1883")
}

fn unique(what: &str) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    format!("rstest/{}-{nanos}/{what}", std::process::id())
}

fn config() -> Config {
    // Durable subscriptions leave sessions on the shared broker: let them expire soon.
    Config::new("127.0.0.1", 1883).session_expiry(Duration::from_secs(30))
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
async fn mqtt_passes_the_conformance_suite() {
    if !up() {
        return;
    }
    let suite = Suite::new(|| Mqtt::new(config()).connect())
        .separator("/")
        .prefix("rsmqtt");
    let report = suite.run().await;
    for check in [
        "round_trip",
        "ack",
        "queue_groups",
        "wildcards",
        "ordering",
        "durable",
        "lifecycle",
    ] {
        assert!(
            report.passed.contains(&check),
            "{check} did not run: {report:?}"
        );
    }
    let report = suite.run_request_reply().await;
    assert_eq!(report.passed, vec!["request_reply"], "{report:?}");
    let report = suite.run_batch().await;
    assert_eq!(report.passed, vec!["batch"], "{report:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_qos_round_trips_with_user_properties() {
    if !up() {
        return;
    }
    let base = unique("qos");
    let cfg = config()
        .qos_for(&format!("{base}/zero"), Qos::AtMostOnce)
        .qos_for(&format!("{base}/two"), Qos::ExactlyOnce);
    assert_eq!(cfg.qos_of(&format!("{base}/two")), Qos::ExactlyOnce);
    assert_eq!(cfg.qos_of(&format!("{base}/one")), Qos::AtLeastOnce);
    let conn = Mqtt::new(cfg).connect().await.unwrap();
    for level in ["zero", "one", "two"] {
        let topic = format!("{base}/{level}");
        let mut sub = conn
            .subscribe(&Address::parse(&topic).unwrap(), SubscribeOptions::new())
            .await
            .unwrap();
        let msg = OutgoingMessage::new(topic.clone(), level)
            .header("x-dup", "1")
            .header("content-type", "text/plain");
        let mut msg = msg;
        msg.headers.append("x-dup", "2");
        conn.publish(msg).await.unwrap();
        let m = next(&mut sub).await;
        assert_eq!(m.payload(), level.as_bytes());
        assert_eq!(m.headers().get_all("x-dup").collect::<Vec<_>>(), ["1", "2"]);
        assert_eq!(m.content_type(), Some("text/plain"));
        m.ack().await.unwrap();
    }
    conn.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn templates_with_partial_levels_are_filtered_exactly() {
    if !up() {
        return;
    }
    let base = unique("tpl");
    let conn = Mqtt::new(config()).connect().await.unwrap();
    let mut sub = conn
        .subscribe(
            &Address::parse(&format!("{base}/orders-{{region}}/created")).unwrap(),
            SubscribeOptions::new(),
        )
        .await
        .unwrap();
    conn.publish(OutgoingMessage::new(
        format!("{base}/invoices-eu/created"),
        "no",
    ))
    .await
    .unwrap();
    conn.publish(OutgoingMessage::new(
        format!("{base}/orders-eu/created"),
        "yes",
    ))
    .await
    .unwrap();
    let m = next(&mut sub).await;
    assert_eq!(m.payload(), b"yes");
    assert_eq!(m.address(), format!("{base}/orders-eu/created"));
    m.ack().await.unwrap();
    quiet(&mut sub, Duration::from_millis(300)).await;
    conn.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retained_messages_reach_late_subscribers() {
    if !up() {
        return;
    }
    let topic = unique("retained");
    let conn = Mqtt::new(config().retain_for(&topic))
        .connect()
        .await
        .unwrap();
    conn.publish(OutgoingMessage::new(topic.clone(), "last known"))
        .await
        .unwrap();
    let mut sub = conn
        .subscribe(&Address::parse(&topic).unwrap(), SubscribeOptions::new())
        .await
        .unwrap();
    let m = next(&mut sub).await;
    assert_eq!(m.payload(), b"last known");
    assert!(m.retained());
    m.ack().await.unwrap();
    // Clear the retained message (an empty retained payload deletes it).
    conn.publish(OutgoingMessage::new(topic.clone(), ""))
        .await
        .unwrap();
    conn.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nack_is_unsupported_and_capabilities_are_honest() {
    if !up() {
        return;
    }
    let topic = unique("nack");
    let conn = Mqtt::new(config()).connect().await.unwrap();
    let caps = conn.capabilities();
    assert!(caps.ack && caps.headers && caps.queue_groups && caps.request_reply && caps.wildcards);
    assert!(caps.durable);
    assert!(!caps.nack_requeue && !caps.dead_letter);
    let mut sub = conn
        .subscribe(&Address::parse(&topic).unwrap(), SubscribeOptions::new())
        .await
        .unwrap();
    conn.publish(OutgoingMessage::new(topic.clone(), "x"))
        .await
        .unwrap();
    let m = next(&mut sub).await;
    assert!(matches!(m.nack(true).await, Err(Error::Unsupported(_))));
    let err = conn
        .publish(OutgoingMessage::new("a/+/b", "x"))
        .await
        .unwrap_err();
    assert!(matches!(err, Error::InvalidAddress { .. }), "{err:?}");
    conn.shutdown().await.unwrap();
}

#[tokio::test]
async fn unreachable_broker_fails_to_connect_without_credentials_in_the_error() {
    let err = Mqtt::new(Config::new("127.0.0.1", 1).credentials("u", "hunter2secret"))
        .connect()
        .await
        .unwrap_err();
    let text = format!("{err} {err:?}");
    assert!(matches!(err, Error::Transport { .. }), "{text}");
    assert!(!text.contains("hunter2secret"), "{text}");
}
